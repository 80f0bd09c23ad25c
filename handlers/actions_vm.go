package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/xorest/xorest/xo/xapi"
)

// vmActions are the actions of VMs (reference §F.2, §F.3).
func vmActions() []action {
	return []action{
		{name: "start", summary: "Start the VM (on hostId when given)", run: vmStart,
			params: []actionParam{{name: "hostId", typ: "string", optional: true, kind: "host", description: "The host to start the VM on"}}},
		{name: "clean_shutdown", summary: "Shut the VM down cleanly", run: void("VM.clean_shutdown")},
		{name: "clean_reboot", summary: "Reboot the VM cleanly", run: void("VM.clean_reboot")},
		{name: "hard_shutdown", summary: "Power the VM off", run: void("VM.hard_shutdown")},
		{name: "hard_reboot", summary: "Reset the VM", run: void("VM.hard_reboot")},
		{name: "pause", summary: "Pause the VM", run: void("VM.pause")},
		{name: "unpause", summary: "Unpause the VM", run: void("VM.unpause")},
		{name: "suspend", summary: "Suspend the VM", run: void("VM.suspend")},
		{name: "resume", summary: "Resume a suspended VM", run: void("VM.resume", false, true)},
		{name: "snapshot", summary: "Snapshot the VM; the result is {id} of the snapshot", run: vmSnapshot, created: "vm-snapshots",
			params: []actionParam{{name: "name_label", typ: "string", optional: true, description: "The snapshot's name (default: the VM's)"}}},
		{name: "clone", summary: "Clone the VM (fast clone); the result is {id} of the new VM", run: vmClone, created: "vms",
			params: []actionParam{{name: "name_label", typ: "string", optional: true, description: "The new VM's name (default: the VM's)"}}},
		{name: "migrate", summary: "Migrate the running VM to another host of the pool (VM.pool_migrate)", run: vmMigrate,
			params: []actionParam{{name: "hostId", typ: "string", kind: "host", description: "The destination host"}}},
	}
}

// vmSnapshotActions are the actions of VM snapshots.
func vmSnapshotActions() []action {
	return []action{
		{name: "revert", summary: "Revert the VM to this snapshot (VM.revert), restarting it if it was running when the snapshot was taken", run: vmRevert},
	}
}

// vmStart starts a VM with VM.start(vm, false, false), or
// VM.start_on(vm, host, false, false) with hostId.
func vmStart(ctx context.Context, a *actionCall) (any, error) {
	if host, ok := a.refs["hostId"]; ok {
		return void("VM.start_on", host, false, false)(ctx, a)
	}
	return void("VM.start", false, false)(ctx, a)
}

// vmMigrate migrates a VM within its pool.
func vmMigrate(ctx context.Context, a *actionCall) (any, error) {
	return void("VM.pool_migrate", a.refs["hostId"], map[string]string{})(ctx, a)
}

// vmSnapshot is XO's snapshot (reference §F.4): VM.snapshot, then the
// snapshot is made a non-template (LICENCE_RESTRICTION ignored, as XO
// does); the result is {"id": snapshot uuid}.
func vmSnapshot(ctx context.Context, a *actionCall) (any, error) {
	name := a.str("name_label", idString(a.obj["name_label"]))
	v, err := a.client.CallAsyncWait(ctx, "VM.snapshot", a.ref, name)
	if err != nil {
		return nil, fmt.Errorf("VM.snapshot %s: %w", a.ref, err)
	}
	snap := xapi.Ref(fmt.Sprint(v))
	if _, err := a.client.Call(ctx, "VM.set_is_a_template", snap, false); err != nil && !errors.Is(err, &xapi.Error{Code: "LICENCE_RESTRICTION"}) {
		return nil, fmt.Errorf("VM.set_is_a_template %s: %w", snap, err)
	}
	return newObjectID(ctx, a.client, "VM", snap)
}

// vmClone is VM.clone(vm, name); the result is {"id": new VM uuid}.
func vmClone(ctx context.Context, a *actionCall) (any, error) {
	name := a.str("name_label", idString(a.obj["name_label"]))
	v, err := a.client.CallAsyncWait(ctx, "VM.clone", a.ref, name)
	if err != nil {
		return nil, fmt.Errorf("VM.clone %s: %w", a.ref, err)
	}
	return newObjectID(ctx, a.client, "VM", xapi.Ref(fmt.Sprint(v)))
}

// newObjectID is the result of actions that create an object: {"id": its uuid}.
func newObjectID(ctx context.Context, c *xapi.Client, class string, ref xapi.Ref) (any, error) {
	var uuid string
	if err := c.CallInto(ctx, &uuid, class+".get_uuid", ref); err != nil {
		return nil, fmt.Errorf("%s.get_uuid %s: %w", class, ref, err)
	}
	return map[string]any{"id": uuid}, nil
}

// vmRevert is XO's revert: Async.VM.revert(snapshot), then, when the VM
// was running at snapshot time (snapshot_info power-state-at-snapshot),
// the VM is resumed (a checkpoint leaves it suspended) or started.
func vmRevert(ctx context.Context, a *actionCall) (any, error) {
	snap, err := xapi.GetRecord[xapi.VM](ctx, a.client, a.ref)
	if err != nil {
		return nil, fmt.Errorf("VM.get_record %s: %w", a.ref, err)
	}
	if _, err := a.client.CallAsyncWait(ctx, "VM.revert", a.ref); err != nil {
		return nil, fmt.Errorf("VM.revert %s: %w", a.ref, err)
	}
	if snap.SnapshotInfo["power-state-at-snapshot"] != "Running" || snap.SnapshotOf.IsNull() {
		return nil, nil
	}
	var state string
	if err := a.client.CallInto(ctx, &state, "VM.get_power_state", snap.SnapshotOf); err != nil {
		return nil, fmt.Errorf("VM.get_power_state %s: %w", snap.SnapshotOf, err)
	}
	method, args := "VM.start", []any{snap.SnapshotOf, false, false}
	switch state {
	case "Running":
		return nil, nil
	case "Suspended":
		method, args = "VM.resume", []any{snap.SnapshotOf, false, false}
	}
	if _, err := a.client.CallAsyncWait(ctx, method, args...); err != nil {
		return nil, fmt.Errorf("%s %s after the revert: %w", method, snap.SnapshotOf, err)
	}
	return nil, nil
}
