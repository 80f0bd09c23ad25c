package handlers

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/xorest/xorest/transfer/cloudinit"
	"github.com/xorest/xorest/xo/xapi"
)

// configDriveName is the name of the config drive VDI, XO's.
const configDriveName = "XO CloudConfigDrive"

// addConfigDrive gives vm the cloud-init config drive of the cloud_config
// and network_config arguments, as XO's createCloudInitConfigDrive does:
// a FAT image labelled cidata (transfer/cloudinit; instance-id = the VM's
// uuid) in a new VDI of the image's size named "XO CloudConfigDrive", on
// the SR of the VM's first disk (the pool's default SR when it has none),
// written with PUT /import_raw_vdi through the pool's XAPI client
// (xapi.Client.PutImport: its TLS settings, a task whose error is
// returned) and attached as a read-write disk on the first free device
// (attachDisk). Without cloud_config it
// does nothing. The VDI goes if a later step fails; the VM's other disks
// are the caller's.
//
// Unlike XO, no MBR is added for Windows (viridian) guests.
func addConfigDrive(ctx context.Context, a *actionCall, vm xapi.Ref) error {
	userData, networkConfig := cloudInitArgs(a.args)
	if userData == "" {
		return nil
	}
	c := a.client
	rec, err := xapi.GetRecord[xapi.VM](ctx, c, vm)
	if err != nil {
		return fmt.Errorf("VM.get_record %s: %w", vm, err)
	}
	img, err := cloudinit.Image(cloudinit.Config{
		InstanceID: rec.UUID, UserData: userData, NetworkConfig: networkConfig, Time: time.Now().UTC(),
	})
	if err != nil {
		return InvalidParameters("cloud_config: "+err.Error(), nil)
	}
	sr, err := firstDiskSR(ctx, c, rec)
	if err != nil {
		return err
	}
	if sr.IsNull() {
		if sr, err = defaultSR(ctx, a); err != nil {
			return fmt.Errorf("config drive: %w", err)
		}
	}
	var vdi xapi.Ref
	if err := c.CallInto(ctx, &vdi, "VDI.create", map[string]any{
		"name_label": configDriveName, "name_description": "", "SR": sr, "virtual_size": int64(len(img)),
		"type": "user", "sharable": false, "read_only": false, "other_config": map[string]string{},
		"xenstore_data": map[string]string{}, "sm_config": map[string]string{}, "tags": []string{},
	}); err != nil {
		return fmt.Errorf("config drive: VDI.create: %w", err)
	}
	// Through the client's transfer transport: the pool's TLS settings
	// (CA, pinned fingerprints) apply, as to every other call.
	_, err = c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(vdi)}, "format": {"raw"}},
		bytes.NewReader(img), int64(len(img)), "xorest: cloud-init config drive")
	if err == nil {
		err = attachDisk(ctx, c, vm, vdi)
	}
	if err != nil {
		_, _ = c.Call(context.WithoutCancel(ctx), "VDI.destroy", vdi)
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

// firstDiskSR returns the SR of the VDI of vm's first Disk VBD (in the
// order of VM.VBDs, as XO picks it), or the null ref.
func firstDiskSR(ctx context.Context, c *xapi.Client, vm *xapi.VM) (xapi.Ref, error) {
	for _, ref := range vm.VBDs {
		vbd, err := xapi.GetRecord[xapi.VBD](ctx, c, ref)
		if err != nil {
			return "", fmt.Errorf("VBD.get_record %s: %w", ref, err)
		}
		if vbd.Type != "Disk" || vbd.VDI.IsNull() {
			continue
		}
		vdi, err := xapi.GetRecord[xapi.VDI](ctx, c, vbd.VDI)
		if err != nil {
			return "", fmt.Errorf("VDI.get_record %s: %w", vbd.VDI, err)
		}
		return vdi.SR, nil
	}
	return xapi.NullRef, nil
}
