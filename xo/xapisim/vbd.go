package xapisim

import (
	"maps"
	"slices"
	"strings"
)

// vbdOperationError is the part of xapi_vbd_helpers.ml
// valid_operations the simulator models.
func vbdOperationError(tx *Tx, ref, op string) *Fault {
	rec, ok := tx.GetClass("VBD", ref)
	if !ok {
		return NewFault("HANDLE_INVALID", "VBD", ref)
	}
	if cur := strMap(rec, "current_operations"); len(cur) > 0 && op != "pause" && op != "unpause" {
		task := slices.Sorted(maps.Keys(cur))[0]
		return NewFault("OTHER_OPERATION_IN_PROGRESS", "VBD", ref, cur[task], task)
	}
	if !rec["unpluggable"].(bool) && (op == "unplug" || op == "unplug_force") {
		return NewFault("VBD_NOT_UNPLUGGABLE", ref)
	}
	if str(rec, "type") != "CD" && (op == "insert" || op == "eject") {
		return NewFault("VBD_NOT_REMOVABLE_MEDIA", ref)
	}
	if rec["empty"].(bool) && op == "eject" {
		return NewFault("VBD_IS_EMPTY", ref)
	}
	if !rec["empty"].(bool) && op == "insert" {
		return NewFault("VBD_NOT_EMPTY", ref)
	}
	vm := str(rec, "VM")
	vmRec, _ := tx.GetClass("VM", vm)
	power := str(vmRec, "power_state")
	attached := rec["currently_attached"].(bool)
	switch {
	case power == "Running" && attached && op == "plug":
		return NewFault("DEVICE_ALREADY_ATTACHED", ref)
	case power == "Running" && !attached && (op == "unplug" || op == "unplug_force"):
		return NewFault("DEVICE_ALREADY_DETACHED", ref)
	case power != "Running" && (op == "plug" || op == "unplug" || op == "unplug_force" ||
		(power != "Paused" && (op == "pause" || op == "unpause"))):
		return NewFault("VM_BAD_POWER_STATE", vm, "running", strings.ToLower(power))
	}
	for _, vop := range strMap(vmRec, "current_operations") {
		switch vop {
		case "clean_shutdown", "hard_shutdown", "suspend", "pause":
			if op == "plug" || op == "unplug" {
				return NewFault("OPERATION_NOT_ALLOWED", "Current operation on VM:"+vm+" is "+vop)
			}
		}
	}
	if power == "Running" && str(vmRec, "domain_type") == "hvm" && str(rec, "type") == "CD" &&
		(op == "plug" || op == "unplug" || op == "unplug_force") {
		return NewFault("OPERATION_NOT_ALLOWED", "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected")
	}
	if str(rec, "type") == "CD" && power == "Suspended" && (op == "insert" || op == "eject") {
		return NewFault("VM_BAD_POWER_STATE", vm, "halted, running", "suspended")
	}
	if !rec["empty"].(bool) {
		if vdi, ok := tx.GetClass("VDI", str(rec, "VDI")); ok {
			if !vdi["managed"].(bool) {
				return NewFault("VDI_NOT_MANAGED", ref)
			}
			for task, vop := range strMap(vdi, "current_operations") {
				if vop != "copy" && vop != "mirror" {
					return NewFault("OTHER_OPERATION_IN_PROGRESS", "VDI", str(rec, "VDI"), vop, task)
				}
			}
		}
	}
	return nil
}

// updateVBDAllowedOperations recomputes VBD.allowed_operations.
func updateVBDAllowedOperations(tx *Tx, ref string) {
	rec, ok := tx.GetClass("VBD", ref)
	if !ok {
		return
	}
	ops := allowedOperations([]string{"attach", "eject", "insert", "plug", "unplug", "unplug_force", "pause", "unpause"}, func(op string) bool { return vbdOperationError(tx, ref, op) == nil })
	setAllowedOperations(tx, ref, rec, ops)
}

// registerVBD registers the VBD messages.
func registerVBD(s *Simulator) {
	s.Register("VBD.create", Method{Handler: vbdCreate, Params: 1, Async: true})
	s.Register("VBD.destroy", Method{Handler: vbdDestroy, Params: 1, Async: true})
	s.Register("VBD.plug", Method{Handler: vbdPlug("plug", true), Params: 1, Async: true})
	s.Register("VBD.unplug", Method{Handler: vbdPlug("unplug", false), Params: 1, Async: true})
	s.Register("VBD.unplug_force", Method{Handler: vbdPlug("unplug_force", false), Params: 1, Async: true})
	s.Register("VBD.insert", Method{Handler: vbdInsert, Params: 2, Async: true})
	s.Register("VBD.eject", Method{Handler: vbdEject, Params: 1, Async: true})
}

// vbdCreate implements VBD.create(record). A Disk VBD needs a VDI; the
// userdevice must be free ("autodetect" picks one); devices of a
// suspended VM may be created attached.
func vbdCreate(c *Call) (any, error) {
	args, err := c.Struct(0)
	if err != nil {
		return nil, err
	}
	fields, err := constructorFields(c, "VBD", args)
	if err != nil {
		return nil, err
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		vm := str(fields, "VM")
		vmRec, ok := tx.GetClass("VM", vm)
		if !ok {
			return NewFault("HANDLE_INVALID", "VM", vm)
		}
		vdi := str(fields, "VDI")
		if isRef(vdi) {
			if _, ok := tx.GetClass("VDI", vdi); !ok {
				return NewFault("HANDLE_INVALID", "VDI", vdi)
			}
		} else if !fields["empty"].(bool) {
			return NewFault("HANDLE_INVALID", "VDI", vdi)
		} else if str(fields, "type") != "CD" {
			return NewFault("VBD_NOT_REMOVABLE_MEDIA", "")
		}
		used := map[string]bool{}
		for _, vbd := range strSet(vmRec, "VBDs") {
			vr, _ := tx.GetClass("VBD", vbd)
			used[str(vr, "userdevice")] = true
		}
		ud := str(fields, "userdevice")
		if ud == "autodetect" || ud == "" {
			ud = ""
			for i := range 16 {
				if s := itoa64(int64(i)); !used[s] {
					ud = s
					break
				}
			}
			if ud == "" {
				return NewFault("INVALID_VALUE", "userdevice", "autodetect")
			}
			fields["userdevice"] = ud
		} else if used[ud] {
			return NewFault("DEVICE_ALREADY_EXISTS", ud)
		}
		if str(vmRec, "power_state") != "Suspended" {
			fields["currently_attached"] = false
		}
		if _, ok := fields["unpluggable"]; !ok {
			fields["unpluggable"] = true
		}
		ref = newObject(tx, "VBD", fields)
		updateVBDAllowedOperations(tx, ref)
		updateVDIAllowedOperations(tx, vdi)
		updateVMAllowedOperations(tx, vm)
		return nil
	})
	return ref, err
}

// vbdDestroy implements VBD.destroy: an attached VBD must be unplugged
// first.
func vbdDestroy(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := refArg(tx, c, 0, "VBD")
		if err != nil {
			return err
		}
		if rec["currently_attached"].(bool) {
			vmRec, _ := tx.GetClass("VM", str(rec, "VM"))
			return NewFault("OPERATION_NOT_ALLOWED", "VBD '"+str(rec, "uuid")+"' still attached to '"+str(vmRec, "uuid")+"'")
		}
		vm, vdi := str(rec, "VM"), str(rec, "VDI")
		deleteObject(tx, ref)
		updateVDIAllowedOperations(tx, vdi)
		updateVMAllowedOperations(tx, vm)
		return nil
	})
}

// vbdOperation runs a VBD operation checked by vbdOperationError.
func vbdOperation(c *Call, op string, apply func(tx *Tx, vbd string) (any, error)) (any, error) {
	vbd, err := c.String(0)
	if err != nil {
		return nil, err
	}
	check := func(tx *Tx) error {
		if f := vbdOperationError(tx, vbd, op); f != nil {
			return f
		}
		return nil
	}
	return objectOperation(c, vbd, op, check, func(tx *Tx) (any, error) { return apply(tx, vbd) }, updateVBDAllowedOperations)
}

// vbdPlug implements VBD.plug, VBD.unplug and VBD.unplug_force on a
// running VM.
func vbdPlug(op string, attach bool) Handler {
	return func(c *Call) (any, error) {
		return vbdOperation(c, op, func(tx *Tx, vbd string) (any, error) {
			rec, _ := tx.GetClass("VBD", vbd)
			setField(tx, vbd, "currently_attached", attach)
			if attach && str(rec, "device") == "" {
				setField(tx, vbd, "device", vbdDeviceName(str(rec, "userdevice")))
			}
			updateVDIAllowedOperations(tx, str(rec, "VDI"))
			return nil, nil
		})
	}
}

// vbdInsert implements VBD.insert(vbd, vdi) on an empty CD drive.
func vbdInsert(c *Call) (any, error) {
	vdi, err := c.String(1)
	if err != nil {
		return nil, err
	}
	return vbdOperation(c, "insert", func(tx *Tx, vbd string) (any, error) {
		if _, ok := tx.GetClass("VDI", vdi); !ok {
			return nil, NewFault("HANDLE_INVALID", "VDI", vdi)
		}
		setRef(tx, vbd, "VDI", vdi)
		setField(tx, vbd, "empty", false)
		updateVDIAllowedOperations(tx, vdi)
		return nil, nil
	})
}

// vbdEject implements VBD.eject on a CD drive holding a disc.
func vbdEject(c *Call) (any, error) {
	return vbdOperation(c, "eject", func(tx *Tx, vbd string) (any, error) {
		rec, _ := tx.GetClass("VBD", vbd)
		vdi := str(rec, "VDI")
		setRef(tx, vbd, "VDI", NullRef)
		setField(tx, vbd, "empty", true)
		updateVDIAllowedOperations(tx, vdi)
		return nil, nil
	})
}
