package handlers

import (
	"context"
	"fmt"

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
	}
}

// vdiActions are the actions of VDIs.
func vdiActions() []action {
	return []action{
		{name: "migrate", summary: "Move the VDI to another SR (VDI.pool_migrate); the result is {id} of the VDI, which changes", run: vdiMigrate, created: "vdis",
			params: []actionParam{{name: "srId", typ: "string", kind: "SR", description: "The destination SR"}}},
	}
}

// vdiMigrate is VDI.pool_migrate(vdi, sr, {}); the result is {"id": the
// new VDI's uuid}.
func vdiMigrate(ctx context.Context, a *actionCall) (any, error) {
	v, err := a.client.CallAsyncWait(ctx, "VDI.pool_migrate", a.ref, a.refs["srId"], map[string]string{})
	if err != nil {
		return nil, fmt.Errorf("VDI.pool_migrate %s: %w", a.ref, err)
	}
	return newObjectID(ctx, a.client, "VDI", xapi.Ref(fmt.Sprint(v)))
}

// plugActions are the connect and disconnect actions of VBDs and VIFs.
func plugActions(class string) []action {
	return []action{
		{name: "connect", summary: "Plug the " + class + " into its running VM (" + class + ".plug)", run: void(class + ".plug")},
		{name: "disconnect", summary: "Unplug the " + class + " from its running VM (" + class + ".unplug_force)", run: void(class + ".unplug_force")},
	}
}
