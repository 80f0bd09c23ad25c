package xapisim

import (
	"maps"
	"slices"
	"time"
)

// vdiOperationError is the part of xapi_vdi.ml check_operation_error the
// simulator models: operations in progress, VBDs attached (VDI_IN_USE) or
// busy, and the rules for unmanaged, snapshot and ISO VDIs.
func vdiOperationError(tx *Tx, ref, op string) *Fault {
	rec, ok := tx.GetClass("VDI", ref)
	if !ok {
		return NewFault("HANDLE_INVALID", "VDI", ref)
	}
	for _, task := range slices.Sorted(maps.Keys(strMap(rec, "current_operations"))) {
		if cur := strMap(rec, "current_operations")[task]; cur != "copy" {
			return NewFault("OTHER_OPERATION_IN_PROGRESS", "VDI", ref, cur, task)
		}
	}
	live := false
	switch op {
	case "snapshot", "resize_online", "blocked", "clone", "revert_to", "mirror", "enable_cbt", "disable_cbt", "data_destroy":
		live = true
	}
	for _, vbd := range strSet(rec, "VBDs") {
		vr, ok := tx.GetClass("VBD", vbd)
		if !ok {
			continue
		}
		attached := vr["currently_attached"].(bool)
		if attached && !live && !(op == "copy" && str(vr, "mode") == "RO") {
			return NewFault("VDI_IN_USE", ref, op)
		}
	}
	for _, vbd := range strSet(rec, "VBDs") {
		vr, ok := tx.GetClass("VBD", vbd)
		if !ok {
			continue
		}
		cur := strMap(vr, "current_operations")
		if len(cur) > 0 && op != "data_destroy" {
			task := slices.Sorted(maps.Keys(cur))[0]
			return NewFault("OTHER_OPERATION_IN_PROGRESS", "VDI", ref, cur[task], task)
		}
	}
	if !rec["managed"].(bool) {
		return NewFault("VDI_NOT_MANAGED", ref)
	}
	srRec, _ := tx.GetClass("SR", str(rec, "SR"))
	if str(srRec, "content_type") == "iso" {
		switch op {
		case "destroy", "forget", "update", "copy", "generate_config", "force_unlock", "blocked":
		default:
			return NewFault("SR_OPERATION_NOT_SUPPORTED", str(rec, "SR"))
		}
	}
	if rec["is_a_snapshot"].(bool) && (op == "resize" || op == "resize_online" || op == "snapshot") {
		return NewFault("VDI_IS_A_SNAPSHOT", ref)
	}
	if str(rec, "type") == "suspend" && (op == "resize" || op == "resize_online" || op == "snapshot" || op == "clone") {
		return NewFault("VDI_INCOMPATIBLE_TYPE", ref, "suspend")
	}
	return nil
}

// updateVDIAllowedOperations recomputes VDI.allowed_operations.
func updateVDIAllowedOperations(tx *Tx, ref string) {
	rec, ok := tx.GetClass("VDI", ref)
	if !ok {
		return
	}
	ops := allowedOperations([]string{"clone", "copy", "resize", "resize_online", "snapshot", "destroy", "forget", "update",
		"generate_config", "enable_cbt", "disable_cbt", "data_destroy", "list_changed_blocks", "set_on_boot",
		"mirror", "force_unlock", "blocked"}, func(op string) bool { return vdiOperationError(tx, ref, op) == nil })
	setAllowedOperations(tx, ref, rec, ops)
}

// copyVDI makes a snapshot ("snapshot"/"checkpoint"), clone or full copy
// ("copy", into sr unless NULL) of vdi and returns the new VDI.
func copyVDI(tx *Tx, vdi, kind, sr string, now time.Time) string {
	src, _ := tx.GetClass("VDI", vdi)
	rec := src.Clone()
	for _, f := range []string{"uuid", "VBDs", "snapshots", "crash_dumps", "current_operations", "allowed_operations"} {
		rec[f] = cloneValue(NewRecord("VDI")[f])
	}
	rec["location"] = tx.NewUUID()
	rec["is_a_snapshot"] = false
	rec["snapshot_of"] = NullRef
	rec["snapshot_time"] = epoch
	rec["cbt_enabled"] = false
	sm := maps.Clone(strMap(src, "sm_config"))
	delete(sm, "vhd-parent")
	switch kind {
	case "snapshot", "checkpoint":
		rec["is_a_snapshot"] = true
		rec["snapshot_of"] = vdi
		rec["snapshot_time"] = now
		rec["physical_utilisation"] = int64(0)
		sm["vhd-parent"] = str(src, "uuid")
	case "clone":
		sm["vhd-parent"] = str(src, "uuid")
	case "copy":
		if isRef(sr) {
			rec["SR"] = sr
		}
	}
	rec["sm_config"] = sm
	oc := maps.Clone(strMap(src, "other_config"))
	rec["other_config"] = oc
	out := newObject(tx, "VDI", rec)
	updateVDIAllowedOperations(tx, out)
	// Adjust the SR's usage by the new VDI instead of summing every VDI of
	// the SR again: snapshotting 10,000 VMs would otherwise be quadratic.
	addSRUsage(tx, str(rec, "SR"), rec["virtual_size"].(int64), rec["physical_utilisation"].(int64))
	return out
}

// destroyVDIRecord deletes a VDI, its VBDs, and any VM.suspend_VDI that
// points at it (xapi_vdi.ml destroy_and_data_destroy_common).
func destroyVDIRecord(tx *Tx, vdi string) {
	rec, ok := tx.GetClass("VDI", vdi)
	if !ok {
		return
	}
	sr := str(rec, "SR")
	for _, vbd := range slices.Clone(strSet(rec, "VBDs")) {
		vr, _ := tx.GetClass("VBD", vbd)
		vm := str(vr, "VM")
		deleteObject(tx, vbd)
		updateVMAllowedOperations(tx, vm)
	}
	for _, vm := range tx.All("VM") {
		vr, _ := tx.GetClass("VM", vm)
		if str(vr, "suspend_VDI") == vdi {
			tx.Modify(vm)["suspend_VDI"] = NullRef
		}
	}
	deleteObject(tx, vdi)
	updateSRUsage(tx, sr)
	updateSRAllowedOperations(tx, sr)
}

// registerVDI registers the VDI messages.
func registerVDI(s *Simulator) {
	s.Register("VDI.create", Method{Handler: vdiCreate, Params: 1, Async: true})
	s.Register("VDI.destroy", Method{Handler: vdiDestroy, Params: 1, Async: true})
	s.Register("VDI.snapshot", Method{Handler: vdiCopyOp("snapshot"), Params: 2, Defaults: 1, Async: true})
	s.Register("VDI.clone", Method{Handler: vdiCopyOp("clone"), Params: 2, Defaults: 1, Async: true})
	s.Register("VDI.copy", Method{Handler: vdiCopyOp("copy"), Params: 4, Defaults: 3, Async: true})
	s.Register("VDI.resize", Method{Handler: vdiResize("resize"), Params: 2, Async: true})
	s.Register("VDI.resize_online", Method{Handler: vdiResize("resize_online"), Params: 2, Async: true})
	s.Register("VDI.forget", Method{Handler: vdiForget, Params: 1, Async: true})
	s.Register("VDI.pool_migrate", Method{Handler: vdiPoolMigrate, Params: 3, Async: true})
}

// vdiPoolMigrate implements VDI.pool_migrate(vdi, sr, options), live
// storage migration: the VDI must be attached to a running VM
// (VDI_NEEDS_VM_FOR_MIGRATE otherwise). The disk is copied to sr, the
// VBDs move to the copy and the original goes; the new ref is returned.
func vdiPoolMigrate(c *Call) (any, error) {
	sr, err := c.String(1)
	if err != nil {
		return nil, err
	}
	if _, err := c.Struct(2); err != nil {
		return nil, err
	}
	return vdiOperation(c, "mirror", func(tx *Tx, vdi string) (any, error) {
		if _, ok := tx.GetClass("SR", sr); !ok {
			return nil, NewFault("HANDLE_INVALID", "SR", sr)
		}
		rec, _ := tx.GetClass("VDI", vdi)
		running := false
		for _, vbd := range strSet(rec, "VBDs") {
			br, _ := tx.GetClass("VBD", vbd)
			vm, _ := tx.GetClass("VM", str(br, "VM"))
			running = running || (br["currently_attached"].(bool) && str(vm, "power_state") == "Running")
		}
		if !running {
			return nil, NewFault("VDI_NEEDS_VM_FOR_MIGRATE", vdi)
		}
		out := copyVDI(tx, vdi, "copy", sr, c.Sim.Now())
		for _, vbd := range slices.Clone(strSet(rec, "VBDs")) {
			setRef(tx, vbd, "VDI", out)
		}
		for _, sn := range slices.Clone(strSet(rec, "snapshots")) {
			setRef(tx, sn, "snapshot_of", out)
		}
		deleteObject(tx, vdi)
		updateSRUsage(tx, str(rec, "SR"))
		updateVDIAllowedOperations(tx, out)
		return out, nil
	})
}

// vdiCreate implements VDI.create(record): SR, virtual_size, type,
// sharable, read_only and other_config are required; the SR must accept
// new VDIs.
func vdiCreate(c *Call) (any, error) {
	args, err := c.Struct(0)
	if err != nil {
		return nil, err
	}
	fields, err := constructorFields(c, "VDI", args)
	if err != nil {
		return nil, err
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		sr := str(fields, "SR")
		srRec, ok := tx.GetClass("SR", sr)
		if !ok {
			return NewFault("HANDLE_INVALID", "SR", sr)
		}
		if !srPlugged(tx, srRec) {
			return NewFault("SR_NO_PBDS", sr)
		}
		if !slices.Contains(strSet(srRec, "allowed_operations"), "vdi_create") {
			return NewFault("OPERATION_NOT_ALLOWED", "SR does not support vdi_create")
		}
		if size := fields["virtual_size"].(int64); size < 0 {
			return NewFault("INVALID_VALUE", "virtual_size", "negative")
		}
		if _, ok := fields["type"]; !ok || str(fields, "type") == "" {
			return NewFault("INVALID_VALUE", "type", "")
		}
		fields["managed"] = true
		fields["location"] = tx.NewUUID()
		fields["physical_utilisation"] = int64(0)
		sm := maps.Clone(strMap(fields, "sm_config"))
		if sm["image-format"] == "" {
			sm["vdi_type"] = "vhd"
		}
		fields["sm_config"] = sm
		ref = newObject(tx, "VDI", fields)
		updateVDIAllowedOperations(tx, ref)
		updateSRUsage(tx, sr)
		updateSRAllowedOperations(tx, sr)
		return nil
	})
	return ref, err
}

// vdiOperation runs a VDI operation checked by vdiOperationError.
func vdiOperation(c *Call, op string, apply func(tx *Tx, vdi string) (any, error)) (any, error) {
	vdi, err := c.String(0)
	if err != nil {
		return nil, err
	}
	check := func(tx *Tx) error {
		if f := vdiOperationError(tx, vdi, op); f != nil {
			return f
		}
		return nil
	}
	return objectOperation(c, vdi, op, check, func(tx *Tx) (any, error) { return apply(tx, vdi) }, updateVDIAllowedOperations)
}

// vdiDestroy implements VDI.destroy: VDI_IN_USE while a VBD is attached;
// otherwise the VDI and all its VBDs go.
func vdiDestroy(c *Call) (any, error) {
	return vdiOperation(c, "destroy", func(tx *Tx, vdi string) (any, error) {
		destroyVDIRecord(tx, vdi)
		return nil, nil
	})
}

// vdiForget implements VDI.forget: the record goes, the data stays.
func vdiForget(c *Call) (any, error) {
	return vdiOperation(c, "forget", func(tx *Tx, vdi string) (any, error) {
		destroyVDIRecord(tx, vdi)
		return nil, nil
	})
}

// vdiCopyOp implements VDI.snapshot(vdi, driver_params), VDI.clone(vdi,
// driver_params) and VDI.copy(vdi, sr, base_vdi, into_vdi).
func vdiCopyOp(kind string) Handler {
	return func(c *Call) (any, error) {
		sr := NullRef
		if kind == "copy" {
			var err error
			if sr, err = c.String(1); err != nil {
				return nil, err
			}
			if into, _ := c.String(3); isRef(into) {
				return nil, NewFault("OPERATION_NOT_ALLOWED", "VDI.copy into an existing VDI is not simulated")
			}
		} else if _, err := c.Struct(1); err != nil {
			return nil, err
		}
		return vdiOperation(c, kind, func(tx *Tx, vdi string) (any, error) {
			if kind == "copy" {
				if _, ok := tx.GetClass("SR", sr); !ok {
					return nil, NewFault("HANDLE_INVALID", "SR", sr)
				}
			}
			return copyVDI(tx, vdi, kind, sr, c.Sim.Now()), nil
		})
	}
}

// vdiResize implements VDI.resize and VDI.resize_online: disks only grow.
func vdiResize(op string) Handler {
	return func(c *Call) (any, error) {
		size, err := c.Int(1)
		if err != nil {
			return nil, err
		}
		return vdiOperation(c, op, func(tx *Tx, vdi string) (any, error) {
			rec, _ := tx.GetClass("VDI", vdi)
			if size < rec["virtual_size"].(int64) {
				return nil, NewFault("VDI_TOO_SMALL", vdi, itoa64(size))
			}
			tx.Modify(vdi)["virtual_size"] = size
			updateSRUsage(tx, str(rec, "SR"))
			return nil, nil
		})
	}
}
