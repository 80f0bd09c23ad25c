package handlers

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// hostActions are the actions of hosts.
func hostActions() []action {
	return []action{
		{name: "enable", summary: "Enable the host (host.enable)", run: void("host.enable")},
		{name: "disable", summary: "Disable the host: no new VM starts on it (host.disable)", run: void("host.disable")},
		{name: "clean_reboot", summary: "Disable the host, migrate its VMs away (host.evacuate) and reboot it", run: hostPower("host.reboot")},
		{name: "clean_shutdown", summary: "Disable the host, migrate its VMs away (host.evacuate) and shut it down", run: hostPower("host.shutdown")},
		{name: "restart_toolstack", summary: "Restart the host's toolstack (host.restart_agent)", run: void("host.restart_agent")},
	}
}

// hostPower disables a host, evacuates it, then runs method (reboot or
// shutdown), as XO's clean reboot and shutdown do. A host whose VMs cannot
// go elsewhere stays disabled and the error says why.
func hostPower(method string) func(context.Context, *actionCall) (any, error) {
	return func(ctx context.Context, a *actionCall) (any, error) {
		for _, m := range []string{"host.disable", "host.evacuate", method} {
			if _, err := a.client.CallAsyncWait(ctx, m, a.ref); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m, a.ref, err)
			}
		}
		return nil, nil
	}
}

// srActions are the actions of SRs.
func srActions() []action {
	return []action{
		{name: "scan", summary: "Rescan the SR for disks (SR.scan)", run: void("SR.scan")},
		{name: "reclaim_space", summary: "Release the SR's free space to the storage array (the trim plugin on the pool master; LVM-based SRs only)", run: srReclaimSpace},
	}
}

// srReclaimSpace is XO's reclaimSpace: host.call_plugin(master, "trim",
// "do_trim", {sr_uuid}) as a task. The plugin answers "True", or an XML
// document with the error (trimError); like XO, that error is reported
// with its errcode as the code (e.g. UnsupportedSRForTrim for an SR that is
// not LVM-based) and its errmsg as the parameter.
func srReclaimSpace(ctx context.Context, a *actionCall) (any, error) {
	c := a.client
	pool, err := poolRecord(ctx, a)
	if err != nil {
		return nil, err
	}
	uuid := idString(a.obj["uuid"])
	v, err := c.CallAsyncWait(ctx, "host.call_plugin", pool.Master, "trim", "do_trim", map[string]string{"sr_uuid": uuid})
	if err != nil {
		return nil, fmt.Errorf("host.call_plugin trim do_trim %s: %w", uuid, err)
	}
	out := fmt.Sprint(v)
	if strings.EqualFold(out, "true") {
		return nil, nil
	}
	if te, ok := trimError(out); ok {
		return nil, fmt.Errorf("trim %s: %w", uuid, te)
	}
	return nil, fmt.Errorf("trim %s: unexpected answer %q", uuid, out)
}

// trimError parses the error document of sm's trim_util.do_trim:
//
//	<?xml version="1.0" ?><trim_response><key_value_pair><key>errcode</key>
//	<value>UnsupportedSRForTrim</value></key_value_pair><key_value_pair>
//	<key>errmsg</key><value>Trim on [uuid] not supported</value>
//	</key_value_pair></trim_response>
//
// into an *xapi.Error {errcode, [errmsg]}. It reports false for anything
// else (no trim_response, no errcode).
func trimError(doc string) (*xapi.Error, bool) {
	var resp struct {
		XMLName xml.Name `xml:"trim_response"`
		Pairs   []struct {
			Key   string `xml:"key"`
			Value string `xml:"value"`
		} `xml:"key_value_pair"`
	}
	if err := xml.Unmarshal([]byte(doc), &resp); err != nil {
		return nil, false
	}
	var code, msg string
	for _, p := range resp.Pairs {
		switch strings.TrimSpace(p.Key) {
		case "errcode":
			code = strings.TrimSpace(p.Value)
		case "errmsg":
			msg = strings.TrimSpace(p.Value)
		}
	}
	if code == "" {
		return nil, false
	}
	return &xapi.Error{Code: code, Params: []string{msg}}, true
}

// vdiActions are the actions of VDIs.
func vdiActions() []action {
	return []action{
		{name: "migrate", summary: "Move the VDI to another SR (VDI.pool_migrate); the result is {id} of the VDI, which changes", run: vdiMigrate, created: "vdis",
			params: []actionParam{{name: "srId", typ: "string", kind: "SR", description: "The destination SR"}}},
	}
}

// vdiMigrate is XO's moveVdi: VDI.pool_migrate(vdi, sr, {}); where XAPI
// cannot migrate (NO_HOSTS_AVAILABLE, LICENCE_RESTRICTION,
// VDI_NEEDS_VM_FOR_MIGRATE), a VDI no running VM uses is copied to the SR
// (VDI.copy), its VBDs are recreated on the copy and the original is
// destroyed. The result is {"id": the new VDI's uuid}.
func vdiMigrate(ctx context.Context, a *actionCall) (any, error) {
	c := a.client
	sr := a.refs["srId"]
	v, err := c.CallAsyncWait(ctx, "VDI.pool_migrate", a.ref, sr, map[string]string{})
	if err == nil {
		return newObjectID(ctx, c, "VDI", xapi.Ref(fmt.Sprint(v)))
	}
	if !errors.Is(err, &xapi.Error{Code: "NO_HOSTS_AVAILABLE"}) && !errors.Is(err, &xapi.Error{Code: "LICENCE_RESTRICTION"}) &&
		!errors.Is(err, &xapi.Error{Code: "VDI_NEEDS_VM_FOR_MIGRATE"}) {
		return nil, fmt.Errorf("VDI.pool_migrate %s: %w", a.ref, err)
	}
	migrateErr := err
	vdi, err := xapi.GetRecord[xapi.VDI](ctx, c, a.ref)
	if err != nil {
		return nil, fmt.Errorf("VDI.get_record %s: %w", a.ref, err)
	}
	vbds := make([]*xapi.VBD, 0, len(vdi.VBDs))
	for _, ref := range vdi.VBDs {
		vbd, err := xapi.GetRecord[xapi.VBD](ctx, c, ref)
		if err != nil {
			return nil, fmt.Errorf("VBD.get_record %s: %w", ref, err)
		}
		if vbd.CurrentlyAttached {
			// Copying would need the VM stopped: keep XAPI's answer.
			return nil, fmt.Errorf("VDI.pool_migrate %s: %w", a.ref, migrateErr)
		}
		vbds = append(vbds, vbd)
	}
	v, err = c.CallAsyncWait(ctx, "VDI.copy", a.ref, sr)
	if err != nil {
		return nil, fmt.Errorf("VDI.copy %s (after VDI.pool_migrate failed with %v): %w", a.ref, migrateErr, err)
	}
	copied := xapi.Ref(fmt.Sprint(v))
	for i, vbd := range vbds {
		if _, err := c.Call(ctx, "VBD.destroy", vdi.VBDs[i]); err != nil {
			return nil, fmt.Errorf("VBD.destroy %s (the copy %s is kept): %w", vdi.VBDs[i], copied, err)
		}
		if _, err := c.Call(ctx, "VBD.create", map[string]any{
			"VM": vbd.VM, "VDI": copied, "userdevice": vbd.Userdevice, "bootable": vbd.Bootable, "mode": vbd.Mode,
			"type": vbd.Type, "empty": false, "unpluggable": vbd.Unpluggable, "other_config": orEmpty(vbd.OtherConfig),
			"qos_algorithm_type": vbd.QosAlgorithmType, "qos_algorithm_params": orEmpty(vbd.QosAlgorithmParams),
		}); err != nil {
			return nil, fmt.Errorf("VBD.create on the copy %s: %w", copied, err)
		}
	}
	if _, err := c.CallAsyncWait(ctx, "VDI.destroy", a.ref); err != nil {
		return nil, fmt.Errorf("VDI.destroy %s after copying it to %s: %w", a.ref, copied, err)
	}
	return newObjectID(ctx, c, "VDI", copied)
}

// plugActions are the connect and disconnect actions of VBDs and VIFs.
func plugActions(class string) []action {
	return []action{
		{name: "connect", summary: "Plug the " + class + " into its running VM (" + class + ".plug)", run: void(class + ".plug")},
		{name: "disconnect", summary: "Unplug the " + class + " from its running VM (" + class + ".unplug_force)", run: void(class + ".unplug_force")},
	}
}

// orEmpty returns m, or an empty map for nil (XAPI wants a struct).
func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
