package xapisim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// vmOperations is the vm_operations enum in datamodel order.
var vmOperations = []string{
	"snapshot", "clone", "copy", "create_template", "revert", "checkpoint", "snapshot_with_quiesce",
	"provision", "start", "start_on", "pause", "unpause", "clean_shutdown", "clean_reboot",
	"hard_shutdown", "power_state_reset", "hard_reboot", "suspend", "csvm", "resume", "resume_on",
	"pool_migrate", "migrate_send", "get_boot_record", "send_sysrq", "send_trigger", "query_services",
	"shutdown", "call_plugin", "changing_memory_live", "awaiting_memory_live", "changing_dynamic_range",
	"changing_static_range", "changing_memory_limits", "changing_shadow_memory",
	"changing_shadow_memory_live", "changing_VCPUs", "changing_VCPUs_live", "changing_NVRAM",
	"assert_operation_valid", "data_source_op", "update_allowed_operations", "make_into_template",
	"import", "export", "metadata_export", "reverting", "destroy", "create_vtpm", "sysprep",
}

// vmIgnoredOperations are never listed in allowed_operations
// (xapi_vm_lifecycle.ml ignored_ops).
var vmIgnoredOperations = []string{
	"create_template", "power_state_reset", "csvm", "get_boot_record", "send_sysrq", "send_trigger",
	"query_services", "shutdown", "call_plugin", "changing_memory_live", "awaiting_memory_live",
	"changing_memory_limits", "changing_shadow_memory_live", "changing_VCPUs", "assert_operation_valid",
	"data_source_op", "update_allowed_operations", "import", "reverting",
}

// allowedPowerStates is xapi_vm_lifecycle.ml allowed_power_states, in
// XAPI's order (Halted, Paused, Suspended, Running).
func allowedPowerStates(rec Record, op string, cloneSuspended bool) []string {
	switch op {
	case "import":
		return nil
	case "changing_VCPUs", "changing_static_range", "changing_memory_limits":
		if rec["is_control_domain"].(bool) {
			return []string{"Halted", "Running"}
		}
		return []string{"Halted"}
	case "changing_shadow_memory", "changing_NVRAM", "make_into_template", "provision", "start", "start_on", "create_vtpm":
		return []string{"Halted"}
	case "unpause":
		return []string{"Paused"}
	case "csvm", "resume", "resume_on":
		return []string{"Suspended"}
	case "awaiting_memory_live", "call_plugin", "clean_reboot", "clean_shutdown", "changing_memory_live",
		"changing_shadow_memory_live", "changing_VCPUs_live", "data_source_op", "pause", "pool_migrate",
		"send_sysrq", "send_trigger", "snapshot_with_quiesce", "sysprep", "suspend":
		return []string{"Running"}
	case "changing_dynamic_range":
		return []string{"Halted", "Running"}
	case "clone", "copy":
		if rec["is_a_snapshot"].(bool) || cloneSuspended {
			return []string{"Halted", "Suspended"}
		}
		return []string{"Halted"}
	case "create_template", "destroy", "export":
		return []string{"Halted", "Suspended"}
	case "hard_reboot":
		return []string{"Paused", "Running"}
	case "checkpoint", "get_boot_record", "shutdown", "hard_shutdown":
		return []string{"Paused", "Suspended", "Running"}
	case "migrate_send":
		return []string{"Halted", "Suspended", "Running"}
	}
	return []string{"Halted", "Paused", "Suspended", "Running"}
}

// vmOpsAllowedConcurrently is xapi_vm_lifecycle.ml is_allowed_concurrently.
func vmOpsAllowedConcurrently(op string, current map[string]string) bool {
	group := func(ops ...string) bool {
		if !slices.Contains(ops, op) {
			return false
		}
		for _, o := range current {
			if !slices.Contains(ops, o) {
				return false
			}
		}
		return true
	}
	if group("clone", "copy", "export") || group("snapshot", "checkpoint") || group("get_boot_record") {
		return true
	}
	running := slices.Collect(maps.Values(current))
	switch op {
	case "hard_shutdown":
		return !slices.Contains(running, "hard_shutdown")
	case "hard_reboot":
		return !slices.Contains(running, "hard_shutdown") && !slices.Contains(running, "hard_reboot")
	}
	if len(running) == 1 {
		switch {
		case running[0] == "snapshot_with_quiesce" && op == "snapshot",
			running[0] == "migrate_send" && (op == "metadata_export" || op == "clean_shutdown" || op == "clean_reboot"):
			return true
		}
	}
	return false
}

// isDefaultTemplate reports XAPI's default-template test.
func isDefaultTemplate(rec Record) bool {
	if rec["is_default_template"].(bool) {
		return true
	}
	v := strings.ToLower(strMap(rec, "other_config")["default_template"])
	return v == "true" || v == "1"
}

// cloneSuspendedEnabled reports pool.other_config:allow_clone_suspended_vm.
func cloneSuspendedEnabled(tx *Tx) bool {
	for _, p := range tx.All("pool") {
		rec, _ := tx.GetClass("pool", p)
		return strMap(rec, "other_config")["allow_clone_suspended_vm"] == "true"
	}
	return false
}

// vmOperationError is xapi_vm_lifecycle.ml check_operation_error: the first
// reason op cannot run on the VM now, or nil. strict adds the guest feature
// checks used for allowed_operations.
func vmOperationError(tx *Tx, ref, op string, strict bool) *Fault {
	rec, ok := tx.GetClass("VM", ref)
	if !ok {
		return NewFault("HANDLE_INVALID", "VM", ref)
	}
	power := str(rec, "power_state")
	isTemplate, isSnapshot := rec["is_a_template"].(bool), rec["is_a_snapshot"].(bool)
	if reason, ok := strMap(rec, "blocked_operations")[op]; ok {
		return NewFault("OPERATION_BLOCKED", ref, reason)
	}
	if allowed := allowedPowerStates(rec, op, cloneSuspendedEnabled(tx)); !slices.Contains(allowed, power) {
		lower := make([]string, len(allowed))
		for i, s := range allowed {
			lower[i] = strings.ToLower(s)
		}
		return NewFault("VM_BAD_POWER_STATE", ref, strings.Join(lower, ", "), strings.ToLower(power))
	}
	if current := strMap(rec, "current_operations"); len(current) > 0 && !vmOpsAllowedConcurrently(op, current) {
		tasks := slices.Sorted(maps.Keys(current))
		if len(tasks) == 1 {
			return NewFault("OTHER_OPERATION_IN_PROGRESS", "VM", ref, current[tasks[0]], tasks[0])
		}
		ops := make([]string, len(tasks))
		for i, t := range tasks {
			ops[i] = current[t]
		}
		return NewFault("OTHER_OPERATION_IN_PROGRESS", "VM", ref, "{"+strings.Join(ops, ",")+"}", "{"+strings.Join(tasks, ",")+"}")
	}
	if isTemplate && !isSnapshot {
		switch op {
		case "changing_dynamic_range", "changing_static_range", "changing_memory_limits", "changing_shadow_memory",
			"changing_VCPUs", "changing_NVRAM", "clone", "copy", "export", "metadata_export", "provision":
		case "destroy", "migrate_send":
			if isDefaultTemplate(rec) {
				return NewFault("VM_IS_TEMPLATE", ref, op)
			}
		default:
			return NewFault("VM_IS_TEMPLATE", ref, op)
		}
	}
	if isSnapshot {
		switch op {
		case "revert", "clone", "copy", "export", "destroy", "hard_shutdown", "metadata_export":
		default:
			return NewFault("VM_IS_SNAPSHOT", ref, op)
		}
	}
	if op == "provision" && !isTemplate {
		return NewFault("ONLY_PROVISION_TEMPLATE")
	}
	if op == "revert" && !isSnapshot {
		return NewFault("ONLY_REVERT_SNAPSHOT")
	}
	if rec["is_control_domain"].(bool) {
		switch op {
		case "data_source_op", "changing_memory_live", "awaiting_memory_live", "metadata_export",
			"changing_dynamic_range", "changing_memory_limits", "changing_static_range", "start", "start_on":
		case "changing_VCPUs", "destroy":
			return NewFault("OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0")
		default:
			return NewFault("OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain")
		}
	}
	if f := vmFeatureError(tx, ref, rec, op, strict); f != nil {
		return f
	}
	if op == "snapshot_with_quiesce" {
		return NewFault("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED", ref)
	}
	if len(strSet(rec, "attached_PCIs")) > 0 {
		switch op {
		case "suspend", "checkpoint", "pool_migrate", "migrate_send":
			return NewFault("VM_HAS_PCI_ATTACHED", ref)
		}
	}
	if op == "query_services" && strMap(rec, "other_config")["is_system_domain"] != "true" {
		return NewFault("NOT_SYSTEM_DOMAIN", ref)
	}
	if op == "create_vtpm" && len(strSet(rec, "VTPMs")) > 0 {
		return NewFault("VTPM_MAX_AMOUNT_REACHED", strconv.Itoa(len(strSet(rec, "VTPMs"))))
	}
	return nil
}

// vmFeatureError is check_op_for_feature: a running HVM guest needs the
// guest agent's feature flags for clean shutdown/reboot and suspend.
func vmFeatureError(tx *Tx, ref string, rec Record, op string, strict bool) *Fault {
	if str(rec, "power_state") != "Running" {
		return nil
	}
	if mr, ok := tx.GetClass("VM_metrics", str(rec, "metrics")); ok {
		switch str(mr, "current_domain_type") {
		case "pv", "pv_in_pvh", "pvh":
			return nil
		}
	}
	other := map[string]string{}
	if gr, ok := tx.GetClass("VM_guest_metrics", str(rec, "guest_metrics")); ok {
		other = strMap(gr, "other")
	}
	lacks := func(f string) bool { return other[f] != "1" }
	switch op {
	case "clean_shutdown":
		if strict && lacks("feature-shutdown") && lacks("feature-poweroff") {
			return NewFault("VM_LACKS_FEATURE", ref, "")
		}
	case "clean_reboot":
		if strict && lacks("feature-shutdown") && lacks("feature-reboot") {
			return NewFault("VM_LACKS_FEATURE", ref, "")
		}
	case "changing_VCPUs_live":
		if lacks("feature-vcpu-hotplug") {
			return NewFault("VM_LACKS_FEATURE", ref, "")
		}
	case "suspend", "checkpoint", "pool_migrate", "migrate_send":
		if reason, ok := other["data-cant-suspend-reason"]; ok {
			return NewFault("VM_LACKS_FEATURE", ref, reason)
		}
		if strict && lacks("feature-suspend") {
			return NewFault("VM_LACKS_FEATURE", ref, "")
		}
	}
	return nil
}

// updateVMAllowedOperations recomputes VM.allowed_operations with the same
// checker that reports errors (in XAPI's reversed enum order).
func updateVMAllowedOperations(tx *Tx, ref string) {
	rec, ok := tx.GetClass("VM", ref)
	if !ok {
		return
	}
	var ops []string
	for _, op := range slices.Backward(vmOperations) {
		if slices.Contains(vmIgnoredOperations, op) {
			continue
		}
		if vmOperationError(tx, ref, op, true) == nil {
			ops = append(ops, op)
		}
	}
	if ops == nil {
		ops = []string{}
	}
	setAllowedOperations(tx, ref, rec, ops)
}

// operationDelayKey is the pool.other_config key holding how long VM, VDI,
// VBD and VIF operations stay in current_operations (a Go duration such as
// "50ms"). Model.OpDelay sets it; clients may change it at run time.
const operationDelayKey = "xapisim:operation_delay"

// operationDelay returns the configured operation delay.
func operationDelay(tx *Tx) time.Duration {
	for _, p := range tx.All("pool") {
		rec, _ := tx.GetClass("pool", p)
		d, err := time.ParseDuration(strMap(rec, "other_config")[operationDelayKey])
		if err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// objectOperation runs op on ref the way XAPI's message forwarding does: in
// one transaction it checks the operation (check), adds {task: op} to
// current_operations and recomputes allowed operations; it then waits for
// the configured operation delay; and in a second transaction it runs apply
// and removes the operation again, whatever apply returned. If the call is
// cancelled (task.cancel) during the delay, nothing is applied and the
// context's error is returned (the task then ends cancelled).
func objectOperation(c *Call, ref, op string, check func(tx *Tx) error, apply func(tx *Tx) (any, error), update func(tx *Tx, ref string)) (any, error) {
	task := c.Task
	var delay time.Duration
	err := c.Sim.DB.Write(func(tx *Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		if task == "" {
			task = tx.NewRef()
		}
		rec := tx.Modify(ref)
		cur := maps.Clone(strMap(rec, "current_operations"))
		cur[task] = op
		rec["current_operations"] = cur
		update(tx, ref)
		delay = operationDelay(tx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var cancelled error
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.Ctx.Done():
			t.Stop()
			cancelled = c.Ctx.Err()
		}
	}
	var result any
	err = c.Sim.DB.Write(func(tx *Tx) error {
		err := cancelled
		if err == nil {
			result, err = apply(tx)
		}
		if rec := tx.Modify(ref); rec != nil {
			cur := maps.Clone(strMap(rec, "current_operations"))
			delete(cur, task)
			rec["current_operations"] = cur
			update(tx, ref)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// vmOperation runs a VM operation checked by vmOperationError.
func vmOperation(c *Call, op string, apply func(tx *Tx, vm string) (any, error)) (any, error) {
	vm, err := c.String(0)
	if err != nil {
		return nil, err
	}
	check := func(tx *Tx) error {
		if f := vmOperationError(tx, vm, op, false); f != nil {
			return f
		}
		return nil
	}
	return objectOperation(c, vm, op, check, func(tx *Tx) (any, error) { return apply(tx, vm) }, updateVMAllowedOperations)
}

// registerVM registers the VM messages.
func registerVM(s *Simulator) {
	s.Register("VM.create", Method{Handler: vmCreate, Params: 1, Async: true})
	s.Register("VM.start", Method{Handler: vmStart(false), Params: 3, Async: true})
	s.Register("VM.start_on", Method{Handler: vmStart(true), Params: 4, Async: true})
	s.Register("VM.clean_shutdown", Method{Handler: vmHalt("clean_shutdown"), Params: 1, Async: true})
	s.Register("VM.hard_shutdown", Method{Handler: vmHalt("hard_shutdown"), Params: 1, Async: true})
	s.Register("VM.shutdown", Method{Handler: vmHalt("shutdown"), Params: 1, Async: true})
	s.Register("VM.clean_reboot", Method{Handler: vmReboot("clean_reboot"), Params: 1, Async: true})
	s.Register("VM.hard_reboot", Method{Handler: vmReboot("hard_reboot"), Params: 1, Async: true})
	s.Register("VM.pause", Method{Handler: vmPause, Params: 1, Async: true})
	s.Register("VM.unpause", Method{Handler: vmUnpause, Params: 1, Async: true})
	s.Register("VM.suspend", Method{Handler: vmSuspend, Params: 1, Async: true})
	s.Register("VM.resume", Method{Handler: vmResume(false), Params: 3, Async: true})
	s.Register("VM.resume_on", Method{Handler: vmResume(true), Params: 4, Async: true})
	s.Register("VM.pool_migrate", Method{Handler: vmPoolMigrate, Params: 3, Async: true})
	s.Register("VM.snapshot", Method{Handler: vmSnapshot, Params: 3, Defaults: 1, Async: true})
	s.Register("VM.checkpoint", Method{Handler: vmCheckpoint, Params: 2, Async: true})
	s.Register("VM.clone", Method{Handler: vmClone, Params: 2, Async: true})
	s.Register("VM.copy", Method{Handler: vmCopy, Params: 3, Async: true})
	s.Register("VM.revert", Method{Handler: vmRevert, Params: 1, Async: true})
	s.Register("VM.destroy", Method{Handler: vmDestroy, Params: 1, Async: true})
	s.Register("VM.provision", Method{Handler: vmProvision, Params: 1, Async: true})
	s.Register("VM.set_is_a_template", Method{Handler: vmSetIsATemplate, Params: 2})
	s.Register("VM.assert_operation_valid", Method{Handler: vmAssertOperationValid, Params: 2, Async: true})
	s.Register("VM.update_allowed_operations", Method{Handler: vmUpdateAllowedOperations, Params: 1, Async: true})
	s.Register("VM.get_allowed_VBD_devices", Method{Handler: vmAllowedDevices("VBDs", "userdevice", 16), Params: 1})
	s.Register("VM.get_allowed_VIF_devices", Method{Handler: vmAllowedDevices("VIFs", "device", 7), Params: 1})
	s.Register("VM.get_possible_hosts", Method{Handler: vmPossibleHosts, Params: 1, Async: true})
	s.Register("VM.assert_can_boot_here", Method{Handler: vmAssertCanBootHere, Params: 2, Async: true})
	s.Register("VM.power_state_reset", Method{Handler: vmPowerStateReset, Params: 1, Async: true})
	s.Register("VTPM.create", Method{Handler: vtpmCreate, Params: 2, Async: true})
	s.Register("VTPM.destroy", Method{Handler: vtpmDestroy, Params: 1, Async: true})
}

// vtpmCreate implements VTPM.create(vm, is_unique): the VM must allow
// create_vtpm (halted, no vTPM yet).
func vtpmCreate(c *Call) (any, error) {
	unique, err := c.Bool(1)
	if err != nil {
		return nil, err
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		vm, _, err := refArg(tx, c, 0, "VM")
		if err != nil {
			return err
		}
		if f := vmOperationError(tx, vm, "create_vtpm", false); f != nil {
			return f
		}
		ref = newObject(tx, "VTPM", Record{"VM": vm, "is_unique": unique, "allowed_operations": []string{"destroy"}})
		updateVMAllowedOperations(tx, vm)
		return nil
	})
	return ref, err
}

// vtpmDestroy implements VTPM.destroy: the VM must be halted.
func vtpmDestroy(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, rec, err := refArg(tx, c, 0, "VTPM")
		if err != nil {
			return err
		}
		vm := str(rec, "VM")
		if vr, ok := tx.GetClass("VM", vm); ok && str(vr, "power_state") != "Halted" {
			return NewFault("VM_BAD_POWER_STATE", vm, "halted", strings.ToLower(str(vr, "power_state")))
		}
		deleteObject(tx, ref)
		updateVMAllowedOperations(tx, vm)
		return nil
	})
}

// vmCreate implements VM.create(record): a new VM with its metrics, in
// the power state given (Halted unless a Suspended VM with a suspend VDI is
// described, as the XVA import does).
func vmCreate(c *Call) (any, error) {
	args, err := c.Struct(0)
	if err != nil {
		return nil, err
	}
	fields, err := constructorFields(c, "VM", args)
	if err != nil {
		return nil, err
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		if p := str(fields, "power_state"); p != "Suspended" || !isRef(str(fields, "suspend_VDI")) {
			fields["power_state"] = "Halted"
			fields["suspend_VDI"] = NullRef
		}
		fields["domid"] = int64(-1)
		fields["metrics"] = newVMMetrics(tx, fields, c.Sim.Now())
		ref = newObject(tx, "VM", fields)
		updateVMAllowedOperations(tx, ref)
		return nil
	})
	return ref, err
}

// vmMessage records one of XAPI's VM lifecycle messages (priority 5,
// class VM), with the body message_forwarding.ml writes:
// "VM '<name>' (uuid: <uuid>) <what>".
func vmMessage(tx *Tx, now time.Time, vm, name, what string) {
	rec, ok := tx.GetClass("VM", vm)
	if !ok {
		return
	}
	newObject(tx, "message", Record{
		"name": name, "priority": int64(5), "cls": "VM", "obj_uuid": str(rec, "uuid"), "timestamp": now,
		"body": fmt.Sprintf("VM '%s' (uuid: %s) %s", str(rec, "name_label"), str(rec, "uuid"), what),
	})
}

// onHost describes host for a message body: "<name> (uuid: <uuid>)".
func onHost(tx *Tx, host string) string {
	rec, _ := tx.GetClass("host", host)
	return fmt.Sprintf("%s (uuid: %s)", str(rec, "name_label"), str(rec, "uuid"))
}

// hostUsable returns the fault that stops VMs from starting on host.
func hostUsable(tx *Tx, host string) *Fault {
	rec, ok := tx.GetClass("host", host)
	if !ok {
		return NewFault("HANDLE_INVALID", "host", host)
	}
	if mr, ok := tx.GetClass("host_metrics", str(rec, "metrics")); !ok || !mr["live"].(bool) {
		return NewFault("HOST_NOT_LIVE")
	}
	if !rec["enabled"].(bool) {
		return NewFault("HOST_DISABLED", host)
	}
	return nil
}

// canBootOn returns why vm cannot run on host: the host is down or
// disabled, or it does not see an SR holding one of the VM's disks
// (VM_REQUIRES_SR).
func canBootOn(tx *Tx, vm, host string) *Fault {
	if f := hostUsable(tx, host); f != nil {
		return f
	}
	rec, _ := tx.GetClass("VM", vm)
	for _, vbd := range strSet(rec, "VBDs") {
		br, _ := tx.GetClass("VBD", vbd)
		vdi, ok := tx.GetClass("VDI", str(br, "VDI"))
		if !ok {
			continue
		}
		if sr := str(vdi, "SR"); !hostSeesSR(tx, host, sr) {
			return NewFault("VM_REQUIRES_SR", vm, sr)
		}
	}
	return nil
}

// hostSeesSR reports whether sr is plugged on host.
func hostSeesSR(tx *Tx, host, sr string) bool {
	srRec, _ := tx.GetClass("SR", sr)
	for _, pbd := range strSet(srRec, "PBDs") {
		pr, _ := tx.GetClass("PBD", pbd)
		if str(pr, "host") == host && pr["currently_attached"].(bool) {
			return true
		}
	}
	return false
}

// pickHost chooses where a VM starts: its affinity if it can boot there,
// else the suitable host with the fewest resident VMs.
func pickHost(tx *Tx, vm string) (string, *Fault) {
	rec, _ := tx.GetClass("VM", vm)
	if a := str(rec, "affinity"); isRef(a) && canBootOn(tx, vm, a) == nil {
		return a, nil
	}
	best, n := "", -1
	for _, h := range tx.All("host") {
		if canBootOn(tx, vm, h) != nil {
			continue
		}
		hr, _ := tx.GetClass("host", h)
		if k := len(strSet(hr, "resident_VMs")); n < 0 || k < n {
			best, n = h, k
		}
	}
	if best == "" {
		return "", NewFault("NO_HOSTS_AVAILABLE")
	}
	return best, nil
}

// nextDomid returns a domain id not used on host (domids are per host;
// 0 is dom0).
func nextDomid(tx *Tx, host string) int64 {
	var max int64
	hr, _ := tx.GetClass("host", host)
	for _, vm := range strSet(hr, "resident_VMs") {
		rec, _ := tx.GetClass("VM", vm)
		if d, _ := rec["domid"].(int64); d > max {
			max = d
		}
	}
	return max + 1
}

// setDevicesAttached sets currently_attached on every VBD and VIF of vm.
func setDevicesAttached(tx *Tx, vm string, rec Record, attached bool) {
	for _, vbd := range strSet(rec, "VBDs") {
		setField(tx, vbd, "currently_attached", attached)
		if attached {
			vr, _ := tx.GetClass("VBD", vbd)
			if str(vr, "device") == "" {
				setField(tx, vbd, "device", vbdDeviceName(str(vr, "userdevice")))
			}
		}
		updateVBDAllowedOperations(tx, vbd)
		if vr, ok := tx.GetClass("VBD", vbd); ok {
			updateVDIAllowedOperations(tx, str(vr, "VDI"))
		}
	}
	for _, vif := range strSet(rec, "VIFs") {
		setField(tx, vif, "currently_attached", attached)
		updateVIFAllowedOperations(tx, vif)
	}
}

// vbdDeviceName returns the dom0 device name of a userdevice number.
func vbdDeviceName(userdevice string) string {
	n, err := strconv.Atoi(userdevice)
	if err != nil || n < 0 || n > 25 {
		return ""
	}
	return "xvd" + string(rune('a'+n))
}

// bootVM makes vm a running (or paused) domain on host: resident_on,
// domid, attached devices, fresh metrics, guest metrics and a console.
func bootVM(tx *Tx, vm, host string, paused bool, now time.Time, domid int64) {
	rec, _ := tx.GetClass("VM", vm)
	state := "Running"
	if paused {
		state = "Paused"
	}
	setField(tx, vm, "power_state", state)
	setField(tx, vm, "domid", domid)
	setRef(tx, vm, "resident_on", host)
	setField(tx, vm, "scheduled_to_be_resident_on", NullRef)
	setDevicesAttached(tx, vm, rec, true)
	if _, ok := tx.GetClass("VM_metrics", str(rec, "metrics")); ok {
		m := tx.Modify(str(rec, "metrics"))
		m["start_time"] = now
		m["last_updated"] = now
		m["memory_actual"] = rec["memory_dynamic_max"]
		m["VCPUs_number"] = rec["VCPUs_at_startup"]
		m["current_domain_type"] = str(rec, "domain_type")
		m["hvm"] = str(rec, "domain_type") == "hvm"
	}
	if !isRef(str(rec, "guest_metrics")) {
		setField(tx, vm, "guest_metrics", newGuestMetrics(tx, vm, rec, now))
	}
	if len(strSet(rec, "consoles")) == 0 {
		hr, _ := tx.GetClass("host", host)
		newObject(tx, "console", Record{
			"protocol": "rfb", "VM": vm, "other_config": map[string]string{},
			"location": fmt.Sprintf("https://%s/console?uuid=%s", str(hr, "address"), tx.NewUUID()),
		})
	}
}

// newGuestMetrics creates the guest agent's report for a booted guest.
func newGuestMetrics(tx *Tx, vm string, rec Record, now time.Time) string {
	ip := ""
	for i, vif := range strSet(rec, "VIFs") {
		if i == 0 {
			vr, _ := tx.GetClass("VIF", vif)
			m := str(vr, "MAC")
			ip = fmt.Sprintf("10.0.%s.%s", hexByte(m, 12), hexByte(m, 15))
		}
	}
	networks := map[string]string{}
	if ip != "" {
		networks["0/ip"] = ip
		networks["0/ipv4/0"] = ip
		networks["0/ipv6/0"] = "fe80::" + strings.ReplaceAll(ip[len("10.0."):], ".", ":")
	}
	return newObject(tx, "VM_guest_metrics", Record{
		"os_version": map[string]string{
			"name": "Debian GNU/Linux 12 (bookworm)", "distro": "debian", "major": "12", "minor": "5",
			"uname": "6.1.0-18-amd64",
		},
		"PV_drivers_version":    map[string]string{"major": "8", "minor": "3", "micro": "0", "build": "1"},
		"PV_drivers_up_to_date": true,
		"PV_drivers_detected":   true,
		"networks":              networks,
		"other": map[string]string{
			"feature-shutdown": "1", "feature-poweroff": "1", "feature-reboot": "1", "feature-suspend": "1",
			"feature-vcpu-hotplug": "1", "feature-balloon": "1", "feature-static-ip-setting": "1",
			"has-vendor-device": "0", "platform-feature-multiprocessor-suspend": "1",
		},
		"last_updated":        now,
		"live":                true,
		"can_use_hotplug_vbd": "yes",
		"can_use_hotplug_vif": "yes",
	})
}

// hexByte parses the two hex digits of s at i as a decimal string.
func hexByte(s string, i int) string {
	if len(s) < i+2 {
		return "0"
	}
	n, _ := strconv.ParseUint(s[i:i+2], 16, 8)
	return strconv.FormatUint(n, 10)
}

// haltVM stops the domain of vm: power_state Halted, devices detached,
// guest metrics and consoles removed, a suspend image destroyed.
func haltVM(tx *Tx, vm string) {
	rec, _ := tx.GetClass("VM", vm)
	setField(tx, vm, "power_state", "Halted")
	setRef(tx, vm, "resident_on", NullRef)
	setField(tx, vm, "scheduled_to_be_resident_on", NullRef)
	setField(tx, vm, "domid", int64(-1))
	setField(tx, vm, "requires_reboot", false)
	setDevicesAttached(tx, vm, rec, false)
	if gm := str(rec, "guest_metrics"); isRef(gm) {
		deleteObject(tx, gm)
		setField(tx, vm, "guest_metrics", NullRef)
	}
	for _, c := range slices.Clone(strSet(rec, "consoles")) {
		deleteObject(tx, c)
	}
	if sv := str(rec, "suspend_VDI"); isRef(sv) {
		destroyVDIRecord(tx, sv)
	}
}

// vmStart implements VM.start(vm, start_paused, force) and
// VM.start_on(vm, host, start_paused, force).
func vmStart(on bool) Handler {
	return func(c *Call) (any, error) {
		op, pausedArg := "start", 1
		if on {
			op, pausedArg = "start_on", 2
		}
		paused, err := c.Bool(pausedArg)
		if err != nil {
			return nil, err
		}
		return vmOperation(c, op, func(tx *Tx, vm string) (any, error) {
			host, f := pickHost(tx, vm)
			if on {
				host, err = c.String(1)
				if err != nil {
					return nil, err
				}
				f = canBootOn(tx, vm, host)
			}
			if f != nil {
				return nil, f
			}
			bootVM(tx, vm, host, paused, c.Sim.Now(), nextDomid(tx, host))
			vmMessage(tx, c.Sim.Now(), vm, "VM_STARTED", "started on host: "+onHost(tx, host))
			return nil, nil
		})
	}
}

// vmHalt implements clean_shutdown, hard_shutdown and shutdown.
func vmHalt(op string) Handler {
	return func(c *Call) (any, error) {
		return vmOperation(c, op, func(tx *Tx, vm string) (any, error) {
			haltVM(tx, vm)
			what := "shutdown"
			if op == "hard_shutdown" {
				what = "shutdown forcibly"
			}
			vmMessage(tx, c.Sim.Now(), vm, "VM_SHUTDOWN", what)
			return nil, nil
		})
	}
}

// vmReboot implements clean_reboot and hard_reboot: a new domain on the
// same host.
func vmReboot(op string) Handler {
	return func(c *Call) (any, error) {
		return vmOperation(c, op, func(tx *Tx, vm string) (any, error) {
			rec, _ := tx.GetClass("VM", vm)
			setField(tx, vm, "power_state", "Running")
			setField(tx, vm, "domid", nextDomid(tx, str(rec, "resident_on")))
			setField(tx, vm, "requires_reboot", false)
			now := c.Sim.Now()
			if isRef(str(rec, "metrics")) {
				tx.Modify(str(rec, "metrics"))["start_time"] = now
			}
			what := "rebooted cleanly"
			if op == "hard_reboot" {
				what = "rebooted forcibly"
			}
			vmMessage(tx, now, vm, "VM_REBOOTED", what)
			return nil, nil
		})
	}
}

func vmPause(c *Call) (any, error) {
	return vmOperation(c, "pause", func(tx *Tx, vm string) (any, error) {
		setField(tx, vm, "power_state", "Paused")
		vmMessage(tx, c.Sim.Now(), vm, "VM_PAUSED", "paused")
		return nil, nil
	})
}

func vmUnpause(c *Call) (any, error) {
	return vmOperation(c, "unpause", func(tx *Tx, vm string) (any, error) {
		setField(tx, vm, "power_state", "Running")
		vmMessage(tx, c.Sim.Now(), vm, "VM_UNPAUSED", "unpaused")
		return nil, nil
	})
}

// suspendSR returns where the suspend image of vm goes: VM.suspend_SR,
// the host's suspend_image_sr, the pool's suspend_image_SR, else the
// default SR.
func suspendSR(tx *Tx, rec Record) string {
	if sr := str(rec, "suspend_SR"); isRef(sr) {
		if _, ok := tx.GetClass("SR", sr); ok {
			return sr
		}
	}
	if hr, ok := tx.GetClass("host", str(rec, "resident_on")); ok {
		if _, ok := tx.GetClass("SR", str(hr, "suspend_image_sr")); ok {
			return str(hr, "suspend_image_sr")
		}
	}
	for _, p := range tx.All("pool") {
		pr, _ := tx.GetClass("pool", p)
		for _, f := range []string{"suspend_image_SR", "default_SR"} {
			if _, ok := tx.GetClass("SR", str(pr, f)); ok {
				return str(pr, f)
			}
		}
	}
	return NullRef
}

// newSuspendVDI creates the suspend image of vm.
func newSuspendVDI(tx *Tx, rec Record) (string, *Fault) {
	sr := suspendSR(tx, rec)
	if !isRef(sr) {
		return "", NewFault("VM_NO_SUSPEND_SR", "")
	}
	size := rec["memory_static_max"].(int64) + 8<<20
	return newObject(tx, "VDI", Record{
		"name_label":           "Suspend image",
		"name_description":     "Suspend image of " + str(rec, "name_label"),
		"SR":                   sr,
		"virtual_size":         size,
		"physical_utilisation": size,
		"type":                 "suspend",
		"managed":              true,
		"location":             tx.NewUUID(),
		"sm_config":            map[string]string{"vdi_type": "vhd"},
		"other_config":         map[string]string{},
	}), nil
}

// vmSuspend implements VM.suspend: the domain's memory goes to a new
// suspend VDI; the VM leaves its host and keeps its devices attached.
func vmSuspend(c *Call) (any, error) {
	return vmOperation(c, "suspend", func(tx *Tx, vm string) (any, error) {
		rec, _ := tx.GetClass("VM", vm)
		vdi, f := newSuspendVDI(tx, rec)
		if f != nil {
			return nil, f
		}
		setField(tx, vm, "suspend_VDI", vdi)
		setField(tx, vm, "power_state", "Suspended")
		setRef(tx, vm, "resident_on", NullRef)
		setField(tx, vm, "domid", int64(-1))
		for _, con := range slices.Clone(strSet(rec, "consoles")) {
			deleteObject(tx, con)
		}
		vmMessage(tx, c.Sim.Now(), vm, "VM_SUSPENDED", "suspended")
		return nil, nil
	})
}

// vmResume implements VM.resume(vm, start_paused, force) and
// VM.resume_on(vm, host, start_paused, force): the suspend VDI is consumed.
func vmResume(on bool) Handler {
	return func(c *Call) (any, error) {
		op, pausedArg := "resume", 1
		if on {
			op, pausedArg = "resume_on", 2
		}
		paused, err := c.Bool(pausedArg)
		if err != nil {
			return nil, err
		}
		return vmOperation(c, op, func(tx *Tx, vm string) (any, error) {
			rec, _ := tx.GetClass("VM", vm)
			host, f := pickHost(tx, vm)
			if on {
				if host, err = c.String(1); err != nil {
					return nil, err
				}
				f = canBootOn(tx, vm, host)
			}
			if f != nil {
				return nil, f
			}
			if sv := str(rec, "suspend_VDI"); isRef(sv) {
				destroyVDIRecord(tx, sv)
			}
			bootVM(tx, vm, host, paused, c.Sim.Now(), nextDomid(tx, host))
			vmMessage(tx, c.Sim.Now(), vm, "VM_RESUMED", "resumed on host: "+onHost(tx, host))
			return nil, nil
		})
	}
}

// vmPoolMigrate implements VM.pool_migrate(vm, host, options).
func vmPoolMigrate(c *Call) (any, error) {
	host, err := c.String(1)
	if err != nil {
		return nil, err
	}
	if _, err := c.Struct(2); err != nil {
		return nil, err
	}
	return vmOperation(c, "pool_migrate", func(tx *Tx, vm string) (any, error) {
		if f := canBootOn(tx, vm, host); f != nil {
			return nil, f
		}
		if rec, _ := tx.GetClass("VM", vm); str(rec, "resident_on") != host {
			from := str(rec, "resident_on")
			setField(tx, vm, "domid", nextDomid(tx, host))
			setRef(tx, vm, "resident_on", host)
			fr, _ := tx.GetClass("host", from)
			hr, _ := tx.GetClass("host", host)
			vmMessage(tx, c.Sim.Now(), vm, "VM_MIGRATED", fmt.Sprintf("migrated from host '%s' (uuid: %s) to host '%s' (uuid: %s)",
				str(fr, "name_label"), str(fr, "uuid"), str(hr, "name_label"), str(hr, "uuid")))
		}
		return nil, nil
	})
}

// vmSnapshot implements VM.snapshot(vm, new_name[, ignore_vdis]).
func vmSnapshot(c *Call) (any, error) {
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	ignore, err := c.Strings(2)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "snapshot", func(tx *Tx, vm string) (any, error) {
		snap := snapshotVM(tx, vm, name, "snapshot", ignore, c.Sim.Now())
		vmMessage(tx, c.Sim.Now(), vm, "VM_SNAPSHOTTED", "snapshotted, snapshot name: "+name)
		return snap, nil
	})
}

// vmCheckpoint implements VM.checkpoint(vm, new_name): a snapshot with the
// memory image (a suspended snapshot with its own suspend VDI).
func vmCheckpoint(c *Call) (any, error) {
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "checkpoint", func(tx *Tx, vm string) (any, error) {
		snap := snapshotVM(tx, vm, name, "checkpoint", nil, c.Sim.Now())
		vmMessage(tx, c.Sim.Now(), vm, "VM_CHECKPOINTED", "checkpointed, snapshot name: "+name)
		return snap, nil
	})
}

// vmClone implements VM.clone(vm, new_name): disks are cloned (fast
// copies sharing their parent).
func vmClone(c *Call) (any, error) {
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "clone", func(tx *Tx, vm string) (any, error) {
		out := copyVM(tx, vm, name, "clone", NullRef, c.Sim.Now())
		vmMessage(tx, c.Sim.Now(), vm, "VM_CLONED", "cloned (new uuid: "+uuidOf(tx, out)+")")
		return out, nil
	})
}

// vmCopy implements VM.copy(vm, new_name, sr): disks are fully copied, to
// sr unless it is NULL.
func vmCopy(c *Call) (any, error) {
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	sr, err := c.String(2)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "copy", func(tx *Tx, vm string) (any, error) {
		if isRef(sr) {
			if _, ok := tx.GetClass("SR", sr); !ok {
				return nil, NewFault("HANDLE_INVALID", "SR", sr)
			}
		}
		return copyVM(tx, vm, name, "copy", sr, c.Sim.Now()), nil
	})
}

// copyVMRecord is xapi_vm_clone.ml copy_vm_record: the new VM's record
// from the source's, for a snapshot, checkpoint, clone or copy.
func copyVMRecord(tx *Tx, src Record, name, kind string, now time.Time) Record {
	rec := src.Clone()
	isSnap := kind == "snapshot" || kind == "checkpoint"
	for _, f := range []string{"uuid", "VBDs", "VIFs", "consoles", "snapshots", "children", "crash_dumps",
		"VTPMs", "VUSBs", "VGPUs", "attached_PCIs", "current_operations", "allowed_operations", "groups"} {
		rec[f] = cloneValue(NewRecord("VM")[f])
	}
	rec["name_label"] = name
	rec["is_a_template"] = isSnap || src["is_a_template"].(bool)
	rec["is_default_template"] = false
	rec["is_a_snapshot"] = isSnap
	rec["is_control_domain"] = false
	rec["resident_on"] = NullRef
	rec["scheduled_to_be_resident_on"] = NullRef
	rec["domid"] = int64(-1)
	rec["guest_metrics"] = NullRef
	rec["suspend_VDI"] = NullRef
	rec["power_state"] = "Halted"
	rec["snapshot_of"] = NullRef
	rec["snapshot_time"] = epoch
	rec["snapshot_info"] = map[string]string{}
	rec["parent"] = NullRef
	rec["generation_id"] = fmt.Sprintf("%d:%d", now.Unix(), now.Nanosecond())
	oc := maps.Clone(strMap(src, "other_config"))
	delete(oc, "default_template")
	delete(oc, "xensource_internal")
	if isSnap {
		rec["snapshot_of"] = ""
		rec["snapshot_time"] = now
		rec["snapshot_info"] = map[string]string{
			"disk-snapshot-type":      "crash_consistent",
			"power-state-at-snapshot": str(src, "power_state"),
		}
		rec["parent"] = str(src, "parent")
	} else {
		oc["mac_seed"] = tx.NewUUID()
		if src["is_a_template"].(bool) && !src["is_a_snapshot"].(bool) {
			oc["base_template_name"] = str(src, "name_label")
		}
	}
	rec["other_config"] = oc
	return rec
}

// newVMMetrics creates a VM_metrics record for a VM record.
func newVMMetrics(tx *Tx, rec Record, install time.Time) string {
	return newObject(tx, "VM_metrics", Record{
		"memory_actual":       int64(0),
		"VCPUs_number":        int64(0),
		"state":               []string{},
		"start_time":          epoch,
		"install_time":        install,
		"last_updated":        epoch,
		"current_domain_type": "unspecified",
	})
}

// snapshotVM creates a snapshot (kind "snapshot") or checkpoint of vm and
// returns its ref. Its disks are snapshotted, except ignore; the source's
// parent becomes the new snapshot.
func snapshotVM(tx *Tx, vm, name, kind string, ignore []string, now time.Time) string {
	src, _ := tx.GetClass("VM", vm)
	rec := copyVMRecord(tx, src, name, kind, now)
	rec["snapshot_of"] = vm
	rec["metrics"] = newVMMetrics(tx, rec, now)
	if kind == "checkpoint" && str(src, "power_state") != "Halted" {
		rec["power_state"] = "Suspended"
	}
	snap := newObject(tx, "VM", rec)
	if kind == "checkpoint" && str(src, "power_state") != "Halted" {
		if vdi, f := newSuspendVDI(tx, src); f == nil {
			setField(tx, snap, "suspend_VDI", vdi)
		}
	}
	copyDevices(tx, vm, snap, "snapshot", NullRef, ignore, now)
	setRef(tx, vm, "parent", snap)
	updateVMAllowedOperations(tx, snap)
	return snap
}

// copyVM creates a clone or copy of vm and returns its ref.
func copyVM(tx *Tx, vm, name, kind, sr string, now time.Time) string {
	src, _ := tx.GetClass("VM", vm)
	rec := copyVMRecord(tx, src, name, kind, now)
	rec["metrics"] = newVMMetrics(tx, rec, now)
	newVM := newObject(tx, "VM", rec)
	copyDevices(tx, vm, newVM, kind, sr, nil, now)
	if str(src, "power_state") == "Suspended" {
		if sv := str(src, "suspend_VDI"); isRef(sv) {
			setField(tx, newVM, "suspend_VDI", copyVDI(tx, sv, "clone", NullRef, now))
			setField(tx, newVM, "power_state", "Suspended")
		}
	}
	updateVMAllowedOperations(tx, newVM)
	return newVM
}

// copyDevices copies the VBDs (with their disks snapshotted, cloned or
// copied; CDs keep their ISO) and VIFs of src to dst. Snapshots keep the
// MAC addresses; clones and copies get new ones.
func copyDevices(tx *Tx, src, dst, kind, sr string, ignore []string, now time.Time) {
	srcRec, _ := tx.GetClass("VM", src)
	for _, vbd := range strSet(srcRec, "VBDs") {
		vr, _ := tx.GetClass("VBD", vbd)
		vdi := str(vr, "VDI")
		if str(vr, "type") == "Disk" && isRef(vdi) {
			if slices.Contains(ignore, vdi) {
				continue
			}
			vdi = copyVDI(tx, vdi, kind, sr, now)
		}
		nr := vr.Clone()
		for _, f := range []string{"uuid", "current_operations", "allowed_operations"} {
			nr[f] = cloneValue(NewRecord("VBD")[f])
		}
		nr["VM"] = dst
		nr["VDI"] = vdi
		nr["currently_attached"] = false
		nr["device"] = ""
		nvbd := newObject(tx, "VBD", nr)
		updateVBDAllowedOperations(tx, nvbd)
	}
	for i, vif := range strSet(srcRec, "VIFs") {
		vr, _ := tx.GetClass("VIF", vif)
		nr := vr.Clone()
		for _, f := range []string{"uuid", "current_operations", "allowed_operations"} {
			nr[f] = cloneValue(NewRecord("VIF")[f])
		}
		nr["VM"] = dst
		nr["currently_attached"] = false
		if kind != "snapshot" && kind != "checkpoint" {
			nr["MAC"] = mac(0x16, tx.Count("VIF")+i)
			nr["MAC_autogenerated"] = true
		}
		nvif := newObject(tx, "VIF", nr)
		updateVIFAllowedOperations(tx, nvif)
	}
}

// vmRevert implements VM.revert(snapshot): the VM the snapshot was taken
// of gets the snapshot's configuration, power state and fresh clones of
// the snapshot's disks; the disks it had are destroyed.
func vmRevert(c *Call) (any, error) {
	return vmOperation(c, "revert", func(tx *Tx, snap string) (any, error) {
		sr, _ := tx.GetClass("VM", snap)
		vm := str(sr, "snapshot_of")
		rec, ok := tx.GetClass("VM", vm)
		if !ok {
			return nil, NewFault("VM_REVERT_FAILED", snap, vm)
		}
		if f := vmOperationError(tx, vm, "reverting", false); f != nil && f.Code == "OTHER_OPERATION_IN_PROGRESS" {
			return nil, f
		}
		now := c.Sim.Now()
		if str(rec, "power_state") != "Halted" {
			haltVM(tx, vm)
		}
		// Old disks that the snapshot has a copy of are replaced.
		for _, vbd := range slices.Clone(strSet(rec, "VBDs")) {
			vr, _ := tx.GetClass("VBD", vbd)
			vdi := str(vr, "VDI")
			deleteObject(tx, vbd)
			if str(vr, "type") == "Disk" && isRef(vdi) && snapshotHasCopy(tx, sr, vdi) {
				destroyVDIRecord(tx, vdi)
			} else if isRef(vdi) {
				// A disk the snapshot ignored, or a CD: keep it attached.
				nr := vr.Clone()
				nr["uuid"] = ""
				newObject(tx, "VBD", nr)
			}
		}
		for _, vbd := range strSet(sr, "VBDs") {
			vr, _ := tx.GetClass("VBD", vbd)
			vdi := str(vr, "VDI")
			if str(vr, "type") != "Disk" || !isRef(vdi) {
				continue
			}
			nr := vr.Clone()
			for _, f := range []string{"uuid", "current_operations", "allowed_operations"} {
				nr[f] = cloneValue(NewRecord("VBD")[f])
			}
			nr["VM"] = vm
			nr["VDI"] = copyVDI(tx, vdi, "clone", NullRef, now)
			updateVBDAllowedOperations(tx, newObject(tx, "VBD", nr))
		}
		m := tx.Modify(vm)
		for _, f := range []string{"memory_static_max", "memory_static_min", "memory_dynamic_max", "memory_dynamic_min",
			"VCPUs_max", "VCPUs_at_startup", "VCPUs_params", "platform", "HVM_boot_params", "HVM_boot_policy",
			"PV_args", "domain_type", "name_description", "actions_after_shutdown", "actions_after_reboot",
			"actions_after_crash", "bios_strings"} {
			m[f] = cloneValue(sr[f])
		}
		if str(sr, "power_state") == "Suspended" && isRef(str(sr, "suspend_VDI")) {
			m["suspend_VDI"] = copyVDI(tx, str(sr, "suspend_VDI"), "clone", NullRef, now)
			m["power_state"] = "Suspended"
		}
		setRef(tx, vm, "parent", snap)
		updateVMAllowedOperations(tx, vm)
		vmMessage(tx, now, vm, "VM_SNAPSHOT_REVERTED", fmt.Sprintf("reverted to snapshot: %s (uuid %s)", str(sr, "name_label"), str(sr, "uuid")))
		return nil, nil
	})
}

// snapshotHasCopy reports whether a snapshot holds a disk snapshot of vdi.
func snapshotHasCopy(tx *Tx, snap Record, vdi string) bool {
	for _, vbd := range strSet(snap, "VBDs") {
		vr, _ := tx.GetClass("VBD", vbd)
		if dr, ok := tx.GetClass("VDI", str(vr, "VDI")); ok && str(dr, "snapshot_of") == vdi {
			return true
		}
	}
	return false
}

// vmDestroy implements VM.destroy: the VM, its VBDs, VIFs, vTPMs, metrics,
// guest metrics and consoles go; its VDIs and snapshots stay, and its
// children are rebased onto its parent.
func vmDestroy(c *Call) (any, error) {
	return vmOperation(c, "destroy", func(tx *Tx, vm string) (any, error) {
		destroyVMRecord(tx, vm)
		return nil, nil
	})
}

// destroyVMRecord deletes a VM and its dependent records (not its disks).
func destroyVMRecord(tx *Tx, vm string) {
	rec, ok := tx.GetClass("VM", vm)
	if !ok {
		return
	}
	// Children are rebased onto the destroyed VM's parent (xapi_vm.ml).
	for _, child := range slices.Clone(strSet(rec, "children")) {
		setRef(tx, child, "parent", str(rec, "parent"))
	}
	vdis := []string{}
	for _, vbd := range slices.Clone(strSet(rec, "VBDs")) {
		if vr, ok := tx.GetClass("VBD", vbd); ok {
			vdis = append(vdis, str(vr, "VDI"))
		}
		deleteObject(tx, vbd)
	}
	for _, vif := range slices.Clone(strSet(rec, "VIFs")) {
		deleteObject(tx, vif)
	}
	for _, con := range slices.Clone(strSet(rec, "consoles")) {
		deleteObject(tx, con)
	}
	for _, vtpm := range slices.Clone(strSet(rec, "VTPMs")) {
		deleteObject(tx, vtpm)
	}
	for _, f := range []string{"metrics", "guest_metrics"} {
		if r := str(rec, f); isRef(r) {
			deleteObject(tx, r)
		}
	}
	deleteObject(tx, vm)
	for _, vdi := range vdis {
		updateVDIAllowedOperations(tx, vdi)
	}
}

// vmProvision implements VM.provision for templates: it creates the disks
// described in other_config.disks (<provision><disk size=... sr=...
// bootable=... type=.../></provision>) and attaches them, then clears the
// key as XAPI does.
func vmProvision(c *Call) (any, error) {
	return vmOperation(c, "provision", func(tx *Tx, vm string) (any, error) {
		rec, _ := tx.GetClass("VM", vm)
		disks := parseProvisionDisks(strMap(rec, "other_config")["disks"])
		for _, d := range disks {
			cls, sr, ok := tx.ByUUID(d.sr)
			if !ok || cls != "SR" {
				sr = suspendSR(tx, NewRecord("VM"))
			}
			if !isRef(sr) {
				return nil, NewFault("SR_REQUIRED")
			}
			vdi := newObject(tx, "VDI", Record{
				"name_label": str(rec, "name_label") + " " + d.device, "SR": sr,
				"virtual_size": d.size, "type": d.typ, "managed": true, "location": tx.NewUUID(),
				"sm_config": map[string]string{"vdi_type": "vhd"}, "other_config": map[string]string{},
			})
			vbd := newObject(tx, "VBD", Record{
				"VM": vm, "VDI": vdi, "userdevice": d.device, "bootable": d.bootable, "mode": "RW",
				"type": "Disk", "unpluggable": true, "other_config": map[string]string{"owner": ""},
			})
			updateVBDAllowedOperations(tx, vbd)
			updateVDIAllowedOperations(tx, vdi)
			updateSRUsage(tx, sr)
		}
		oc := maps.Clone(strMap(rec, "other_config"))
		delete(oc, "disks")
		setField(tx, vm, "other_config", oc)
		return nil, nil
	})
}

// provisionDisk is one <disk/> of a template's provision spec.
type provisionDisk struct {
	device, sr, typ string
	size            int64
	bootable        bool
}

// parseProvisionDisks reads the attributes of each <disk .../> element.
func parseProvisionDisks(spec string) []provisionDisk {
	var out []provisionDisk
	for _, part := range strings.Split(spec, "<disk ")[1:] {
		attrs := map[string]string{}
		for _, kv := range strings.Fields(strings.TrimRight(strings.SplitN(part, ">", 2)[0], "/")) {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				attrs[k] = strings.Trim(v, `"'`)
			}
		}
		size, _ := strconv.ParseInt(attrs["size"], 10, 64)
		typ := attrs["type"]
		if typ == "" {
			typ = "system"
		}
		out = append(out, provisionDisk{device: attrs["device"], sr: attrs["sr"], typ: typ, size: size, bootable: attrs["bootable"] == "true"})
	}
	return out
}

// vmSetIsATemplate implements VM.set_is_a_template: making a template
// needs a halted VM (make_into_template); clearing the flag sets the
// install time.
func vmSetIsATemplate(c *Call) (any, error) {
	value, err := c.Bool(1)
	if err != nil {
		return nil, err
	}
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		vm, rec, err := refArg(tx, c, 0, "VM")
		if err != nil {
			return err
		}
		if value && !rec["is_a_template"].(bool) {
			if f := vmOperationError(tx, vm, "make_into_template", false); f != nil {
				return f
			}
		}
		if !value {
			if m := str(rec, "metrics"); isRef(m) {
				tx.Modify(m)["install_time"] = c.Sim.Now()
			}
		}
		setField(tx, vm, "is_a_template", value)
		if value {
			setField(tx, vm, "ha_always_run", false)
		}
		updateVMAllowedOperations(tx, vm)
		return nil
	})
}

// vmAssertOperationValid implements VM.assert_operation_valid(vm, op).
func vmAssertOperationValid(c *Call) (any, error) {
	op, err := c.String(1)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(vmOperations, op) {
		return nil, NewFault("INVALID_VALUE", "vm_operations", op)
	}
	var f *Fault
	c.Sim.DB.Read(func(tx *Tx) {
		var vm string
		vm, _, err = refArg(tx, c, 0, "VM")
		if err == nil {
			f = vmOperationError(tx, vm, op, false)
		}
	})
	if err != nil {
		return nil, err
	}
	if f != nil {
		return nil, f
	}
	return nil, nil
}

func vmUpdateAllowedOperations(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		vm, _, err := refArg(tx, c, 0, "VM")
		if err != nil {
			return err
		}
		updateVMAllowedOperations(tx, vm)
		return nil
	})
}

// vmAllowedDevices implements get_allowed_VBD_devices (userdevices 0-15)
// and get_allowed_VIF_devices (devices 0-6): the numbers not yet used.
func vmAllowedDevices(field, devField string, n int) Handler {
	class := strings.TrimSuffix(field, "s")
	return func(c *Call) (any, error) {
		out := []string{}
		var err error
		c.Sim.DB.Read(func(tx *Tx) {
			var rec Record
			_, rec, err = refArg(tx, c, 0, "VM")
			if err != nil {
				return
			}
			used := map[string]bool{}
			for _, d := range strSet(rec, field) {
				if dr, ok := tx.GetClass(class, d); ok {
					used[str(dr, devField)] = true
				}
			}
			for i := range n {
				if s := strconv.Itoa(i); !used[s] {
					out = append(out, s)
				}
			}
		})
		return out, err
	}
}

func vmPossibleHosts(c *Call) (any, error) {
	out := []string{}
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var vm string
		if vm, _, err = refArg(tx, c, 0, "VM"); err != nil {
			return
		}
		for _, h := range tx.All("host") {
			if canBootOn(tx, vm, h) == nil {
				out = append(out, h)
			}
		}
	})
	return out, err
}

func vmAssertCanBootHere(c *Call) (any, error) {
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var vm, host string
		if vm, _, err = refArg(tx, c, 0, "VM"); err != nil {
			return
		}
		if host, err = c.String(1); err != nil {
			return
		}
		if f := canBootOn(tx, vm, host); f != nil {
			err = f
		}
	})
	return nil, err
}

// vmPowerStateReset implements VM.power_state_reset: force Halted.
func vmPowerStateReset(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		vm, rec, err := refArg(tx, c, 0, "VM")
		if err != nil {
			return err
		}
		if rec["is_control_domain"].(bool) {
			return NewFault("OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain")
		}
		if str(rec, "power_state") != "Halted" {
			haltVM(tx, vm)
		}
		tx.Modify(vm)["current_operations"] = map[string]string{}
		updateVMAllowedOperations(tx, vm)
		return nil
	})
}

// defaultTemplate describes a built-in template.
type defaultTemplate struct {
	name, distro, methods, bootPolicy string
	memory                            int64
	vcpus                             int64
	disk                              int64
}

// defaultTemplates are the built-in templates a Model may create. It is
// never modified.
var defaultTemplates = []defaultTemplate{
	{"Debian Bookworm 12", "debianbookworm", "cdrom,nfs,http,ftp", "BIOS order", 2 << 30, 2, 10 << 30},
	{"Windows Server 2022 (64-bit)", "windows", "cdrom", "BIOS order", 4 << 30, 2, 32 << 30},
	{"Other install media", "", "cdrom", "BIOS order", 1 << 30, 1, 0},
	{"Ubuntu Jammy Jellyfish 22.04", "ubuntujammy", "cdrom,nfs,http,ftp", "BIOS order", 2 << 30, 2, 10 << 30},
	{"Rocky Linux 9", "rockylinux9", "cdrom,nfs,http,ftp", "BIOS order", 2 << 30, 2, 10 << 30},
}

// guestRecord returns the common fields of a guest or template record.
func guestRecord(name string, memory, vcpus int64) Record {
	return Record{
		"name_label":             name,
		"user_version":           int64(1),
		"memory_static_max":      memory,
		"memory_static_min":      memory / 2,
		"memory_dynamic_max":     memory,
		"memory_dynamic_min":     memory,
		"memory_target":          memory,
		"memory_overhead":        int64(20 << 20),
		"VCPUs_max":              vcpus,
		"VCPUs_at_startup":       vcpus,
		"VCPUs_params":           map[string]string{"weight": "256"},
		"actions_after_shutdown": "destroy",
		"actions_after_reboot":   "restart",
		"actions_after_crash":    "restart",
		"HVM_boot_policy":        "BIOS order",
		"HVM_boot_params":        map[string]string{"order": "cd", "firmware": "bios"},
		"HVM_shadow_multiplier":  float64(1),
		"platform": map[string]string{
			"timeoffset": "0", "viridian": "false", "nx": "true", "acpi": "1", "apic": "true", "pae": "true",
			"hpet": "true", "device-model": "qemu-upstream-compat", "secureboot": "false", "videoram": "8",
			"cores-per-socket": strconv.FormatInt(vcpus, 10),
		},
		"domain_type":       "hvm",
		"domid":             int64(-1),
		"has_vendor_device": false,
		"recommendations": `<restrictions><restriction field="memory-static-max" max="1649267441664"/>` +
			`<restriction field="vcpus-max" max="32"/><restriction property="number-of-vbds" max="255"/>` +
			`<restriction property="number-of-vifs" max="7"/><restriction field="has-vendor-device" value="false"/></restrictions>`,
		"bios_strings": map[string]string{
			"bios-vendor": "Xen", "bios-version": "", "system-manufacturer": "Xen", "system-product-name": "HVM domU",
			"system-version": "", "system-serial-number": "", "baseboard-manufacturer": "", "hp-rombios": "",
			"oem-1": "Xen", "oem-2": "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
		},
		"ha_restart_priority": "",
		"snapshot_time":       epoch,
	}
}

// createDefaultTemplate creates built-in template i.
func (p *poolState) createDefaultTemplate(tx *Tx, i int) {
	t := defaultTemplates[i]
	rec := guestRecord(t.name, t.memory, t.vcpus)
	rec["name_description"] = "Template which allows VM installation from install media"
	rec["is_a_template"] = true
	rec["is_default_template"] = true
	oc := map[string]string{
		"default_template": "true",
		"install-methods":  t.methods,
		"linux_template":   fmt.Sprint(t.distro != "windows" && t.distro != ""),
	}
	if t.disk > 0 {
		oc["disks"] = fmt.Sprintf(`<provision><disk device="0" size="%d" sr="" bootable="true" type="system"/></provision>`, t.disk)
	}
	if t.distro != "" {
		oc["install-distro"] = t.distro
	}
	rec["other_config"] = oc
	rec["metrics"] = newVMMetrics(tx, rec, baseTime.Add(-60*24*time.Hour))
	newObject(tx, "VM", rec)
}

// createGuest creates guest VM (or custom template) i with a disk, an
// empty CD drive and a VIF, in the given power state.
func (p *poolState) createGuest(tx *Tx, name string, i int, state string, template bool) string {
	rec := guestRecord(name, 2<<30, 2)
	rec["name_description"] = "Simulated guest " + name
	rec["is_a_template"] = template
	rec["other_config"] = map[string]string{
		"base_template_name": "Debian Bookworm 12",
		"mac_seed":           tx.NewUUID(),
		"install-methods":    "cdrom,nfs,http,ftp",
		"linux_template":     "true",
	}
	install := baseTime.Add(-time.Duration(i+1) * 24 * time.Hour)
	rec["metrics"] = newVMMetrics(tx, rec, install)
	vm := newObject(tx, "VM", rec)

	// Disks go to the shared SR, else to the local SR of the host the
	// guest runs on.
	sr := p.sharedSR
	if sr == "" && len(p.localSRs) > 0 {
		sr = p.localSRs[i%len(p.localSRs)]
	}
	if isRef(sr) {
		vdi := newObject(tx, "VDI", Record{
			"name_label":           name + " disk 0",
			"name_description":     "Created by xapisim",
			"SR":                   sr,
			"virtual_size":         p.m.DiskSize,
			"physical_utilisation": p.m.DiskSize / 4,
			"type":                 "system",
			"managed":              true,
			"location":             tx.NewUUID(),
			"sm_config":            map[string]string{"vdi_type": "vhd", "image-format": "vhd"},
			"other_config":         map[string]string{},
		})
		newObject(tx, "VBD", Record{
			"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": true, "mode": "RW", "type": "Disk",
			"unpluggable": true, "other_config": map[string]string{"owner": ""},
		})
	}
	newObject(tx, "VBD", Record{
		"VM": vm, "VDI": NullRef, "userdevice": "3", "bootable": false, "mode": "RO", "type": "CD",
		"empty": true, "unpluggable": true, "other_config": map[string]string{},
	})
	if len(p.networks) > 0 {
		newObject(tx, "VIF", Record{
			"device": "0", "network": p.networks[0], "VM": vm, "MAC": mac(0x16, i), "MTU": int64(1500),
			"other_config": map[string]string{}, "locking_mode": "network_default",
			"qos_supported_algorithms": []string{"ratelimit"},
		})
	}
	switch state {
	case "Running", "Paused":
		p.bootVMAt(tx, vm, p.hosts[i%len(p.hosts)], state == "Paused", install.Add(time.Hour))
	case "Suspended":
		p.bootVMAt(tx, vm, p.hosts[i%len(p.hosts)], false, install.Add(time.Hour))
		r, _ := tx.GetClass("VM", vm)
		if vdi, f := newSuspendVDI(tx, r); f == nil {
			setField(tx, vm, "suspend_VDI", vdi)
		}
		setField(tx, vm, "power_state", "Suspended")
		setRef(tx, vm, "resident_on", NullRef)
		setField(tx, vm, "domid", int64(-1))
		for _, c := range slices.Clone(strSet(r, "consoles")) {
			deleteObject(tx, c)
		}
	}
	return vm
}

// bootVMAt boots vm during populate with deterministic times and
// domain ids.
func (p *poolState) bootVMAt(tx *Tx, vm, host string, paused bool, at time.Time) {
	if p.domids == nil {
		p.domids = map[string]int64{}
	}
	p.domids[host]++
	bootVM(tx, vm, host, paused, at, p.domids[host])
	rec, _ := tx.GetClass("VM", vm)
	m := tx.Modify(str(rec, "metrics"))
	m["start_time"] = at
	m["last_updated"] = at
	if gm := str(rec, "guest_metrics"); isRef(gm) {
		tx.Modify(gm)["last_updated"] = at
	}
}

// registerVMResources registers the VM CPU and memory setters, which XAPI
// runs as checked VM operations with its ordering constraints.
func registerVMResources(s *Simulator) {
	s.Register("VM.set_VCPUs_max", Method{Handler: vmSetVCPUsMax, Params: 2})
	s.Register("VM.set_VCPUs_at_startup", Method{Handler: vmSetVCPUsAtStartup, Params: 2})
	s.Register("VM.set_VCPUs_number_live", Method{Handler: vmSetVCPUsLive, Params: 2, Async: true})
	s.Register("VM.set_memory_limits", Method{Handler: vmSetMemory("limits"), Params: 5, Async: true})
	s.Register("VM.set_memory", Method{Handler: vmSetMemory("memory"), Params: 2, Async: true})
	s.Register("VM.set_memory_dynamic_range", Method{Handler: vmSetMemory("dynamic_range"), Params: 3, Async: true})
	s.Register("VM.set_memory_dynamic_max", Method{Handler: vmSetMemory("dynamic_max"), Params: 2})
	s.Register("VM.set_memory_dynamic_min", Method{Handler: vmSetMemory("dynamic_min"), Params: 2})
	s.Register("VM.set_memory_static_range", Method{Handler: vmSetMemory("static_range"), Params: 3, Async: true})
	s.Register("VM.set_memory_static_max", Method{Handler: vmSetMemory("static_max"), Params: 2})
	s.Register("VM.set_memory_static_min", Method{Handler: vmSetMemory("static_min"), Params: 2})
}

// vcpuRangeError is the INVALID_VALUE XAPI raises for VCPU counts.
func vcpuRangeError(v int64) *Fault {
	return NewFault("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max", itoa64(v))
}

// vmSetVCPUsMax implements VM.set_VCPUs_max (operation changing_VCPUs:
// halted VMs only).
func vmSetVCPUsMax(c *Call) (any, error) {
	v, err := c.Int(1)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "changing_VCPUs", func(tx *Tx, vm string) (any, error) {
		rec, _ := tx.GetClass("VM", vm)
		if v < 1 || v < rec["VCPUs_at_startup"].(int64) {
			return nil, vcpuRangeError(v)
		}
		setField(tx, vm, "VCPUs_max", v)
		return nil, nil
	})
}

// vmSetVCPUsAtStartup implements VM.set_VCPUs_at_startup: 0 < v <=
// VCPUs_max, any power state, not on a control domain.
func vmSetVCPUsAtStartup(c *Call) (any, error) {
	v, err := c.Int(1)
	if err != nil {
		return nil, err
	}
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		vm, rec, err := refArg(tx, c, 0, "VM")
		if err != nil {
			return err
		}
		if rec["is_control_domain"].(bool) {
			return NewFault("OPERATION_NOT_ALLOWED", "set_VCPUs_at_startup is not allowed on dom0")
		}
		if v < 1 || v > rec["VCPUs_max"].(int64) {
			return vcpuRangeError(v)
		}
		setField(tx, vm, "VCPUs_at_startup", v)
		return nil
	})
}

// vmSetVCPUsLive implements VM.set_VCPUs_number_live (operation
// changing_VCPUs_live: running guests with VCPU hotplug).
func vmSetVCPUsLive(c *Call) (any, error) {
	v, err := c.Int(1)
	if err != nil {
		return nil, err
	}
	return vmOperation(c, "changing_VCPUs_live", func(tx *Tx, vm string) (any, error) {
		rec, _ := tx.GetClass("VM", vm)
		if v < 1 || v > rec["VCPUs_max"].(int64) {
			return nil, vcpuRangeError(v)
		}
		setField(tx, vm, "VCPUs_at_startup", v)
		if m := str(rec, "metrics"); isRef(m) {
			setField(tx, m, "VCPUs_number", v)
		}
		return nil, nil
	})
}

// vmSetMemory implements the memory setters. Each runs as the XAPI
// operation guarding it (changing_memory_limits and changing_static_range
// need a halted VM, changing_dynamic_range a halted or running one) and
// requires static_min <= dynamic_min <= dynamic_max <= static_max
// (MEMORY_CONSTRAINT_VIOLATION_ORDER).
func vmSetMemory(kind string) Handler {
	return func(c *Call) (any, error) {
		var args []int64
		for i := 1; i < len(c.Args); i++ {
			v, err := c.Int(i)
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		op := map[string]string{
			"limits": "changing_memory_limits", "memory": "changing_memory_limits",
			"dynamic_range": "changing_dynamic_range", "dynamic_max": "changing_dynamic_range", "dynamic_min": "changing_dynamic_range",
			"static_range": "changing_static_range", "static_max": "changing_static_range", "static_min": "changing_static_range",
		}[kind]
		return vmOperation(c, op, func(tx *Tx, vm string) (any, error) {
			rec, _ := tx.GetClass("VM", vm)
			smin, dmin := rec["memory_static_min"].(int64), rec["memory_dynamic_min"].(int64)
			dmax, smax := rec["memory_dynamic_max"].(int64), rec["memory_static_max"].(int64)
			switch kind {
			case "limits":
				smin, smax, dmin, dmax = args[0], args[1], args[2], args[3]
			case "memory":
				smax, dmin, dmax = args[0], args[0], args[0]
			case "dynamic_range":
				dmin, dmax = args[0], args[1]
			case "dynamic_max":
				dmax = args[0]
			case "dynamic_min":
				dmin = args[0]
			case "static_range":
				smin, smax = args[0], args[1]
			case "static_max":
				smax = args[0]
			case "static_min":
				smin = args[0]
			}
			if !(0 <= smin && smin <= dmin && dmin <= dmax && dmax <= smax) {
				return nil, NewFault("MEMORY_CONSTRAINT_VIOLATION_ORDER")
			}
			setField(tx, vm, "memory_static_min", smin)
			setField(tx, vm, "memory_static_max", smax)
			setField(tx, vm, "memory_dynamic_min", dmin)
			setField(tx, vm, "memory_dynamic_max", dmax)
			setField(tx, vm, "memory_target", dmin)
			if m := str(rec, "metrics"); isRef(m) && str(rec, "power_state") == "Running" {
				setField(tx, m, "memory_actual", dmax)
			}
			return nil, nil
		})
	}
}

// registerVMMigration registers storage migration within the pool:
// host.migrate_receive and VM.migrate_send.
func registerVMMigration(s *Simulator) {
	s.Register("host.migrate_receive", Method{Handler: hostMigrateReceive, Params: 3, Async: true})
	s.Register("VM.migrate_send", Method{Handler: vmMigrateSend, Params: 8, Defaults: 2, Async: true})
}

// hostMigrateReceive implements host.migrate_receive(host, network,
// options): the token VM.migrate_send takes, with XAPI's keys (SM, host,
// xenops, session_id, master). The host needs an IP on network.
func hostMigrateReceive(c *Call) (any, error) {
	var out map[string]any
	var err error
	c.Sim.DB.Read(func(tx *Tx) {
		var host, network string
		if host, _, err = refArg(tx, c, 0, "host"); err != nil {
			return
		}
		var nr Record
		if network, nr, err = refArg(tx, c, 1, "network"); err != nil {
			return
		}
		ip := ""
		for _, pif := range strSet(nr, "PIFs") {
			pr, _ := tx.GetClass("PIF", pif)
			if str(pr, "host") != host {
				continue
			}
			if ip = str(pr, "IP"); ip == "" {
				err = NewFault("PIF_HAS_NO_NETWORK_CONFIGURATION", pif)
				return
			}
		}
		if ip == "" {
			err = NewFault("HOST_CANNOT_ATTACH_NETWORK", host, network)
			return
		}
		master := ip
		for _, p := range tx.All("pool") {
			pr, _ := tx.GetClass("pool", p)
			if hr, ok := tx.GetClass("host", str(pr, "master")); ok {
				master = str(hr, "address")
			}
		}
		out = map[string]any{
			"SM":         "http://" + ip + "/services/SM?session_id=" + c.Session,
			"host":       host,
			"xenops":     "http://" + ip + "/services/xenops?session_id=" + c.Session,
			"session_id": c.Session,
			"master":     "http://" + master + "/",
		}
	})
	if _, ferr := c.Struct(2); ferr != nil {
		return nil, ferr
	}
	return out, err
}

// vmMigrateSend implements VM.migrate_send(vm, dest, live, vdi_map,
// vif_map, options[, vgpu_map, vdi_format_map]) within the pool: disks in
// vdi_map move to their SR (new VDI refs, as storage motion makes), VIFs
// in vif_map to their network, and a running VM to dest's host. Other
// pools are not simulated.
func vmMigrateSend(c *Call) (any, error) {
	dest, err := c.Struct(1)
	if err != nil {
		return nil, err
	}
	if _, err := c.Bool(2); err != nil {
		return nil, err
	}
	vdiMap, err := c.Struct(3)
	if err != nil {
		return nil, err
	}
	vifMap, err := c.Struct(4)
	if err != nil {
		return nil, err
	}
	host, _ := dest["host"].(string)
	return vmOperation(c, "migrate_send", func(tx *Tx, vm string) (any, error) {
		if _, ok := tx.GetClass("host", host); !ok {
			return nil, NewFault("HANDLE_INVALID", "host", host)
		}
		for vdi, sr := range vdiMap {
			if _, ok := tx.GetClass("VDI", vdi); !ok {
				return nil, NewFault("HANDLE_INVALID", "VDI", vdi)
			}
			if s, _ := sr.(string); !isRef(s) {
				return nil, NewFault("HANDLE_INVALID", "SR", s)
			} else if _, ok := tx.GetClass("SR", s); !ok {
				return nil, NewFault("HANDLE_INVALID", "SR", s)
			}
		}
		for vif, n := range vifMap {
			ns, _ := n.(string)
			if _, ok := tx.GetClass("VIF", vif); !ok {
				return nil, NewFault("HANDLE_INVALID", "VIF", vif)
			}
			if _, ok := tx.GetClass("network", ns); !ok {
				return nil, NewFault("HANDLE_INVALID", "network", ns)
			}
		}
		now := c.Sim.Now()
		rec, _ := tx.GetClass("VM", vm)
		from := str(rec, "resident_on")
		if isRef(from) && from != host {
			if f := hostUsable(tx, host); f != nil {
				return nil, f
			}
			// Every disk must be on an SR the destination sees once moved.
			for _, vbd := range strSet(rec, "VBDs") {
				br, _ := tx.GetClass("VBD", vbd)
				vdi := str(br, "VDI")
				vr, ok := tx.GetClass("VDI", vdi)
				if !ok {
					continue
				}
				sr := str(vr, "SR")
				if to, ok := vdiMap[vdi].(string); ok {
					sr = to
				}
				if !hostSeesSR(tx, host, sr) {
					return nil, NewFault("VM_REQUIRES_SR", vm, sr)
				}
			}
		}
		for _, vdi := range slices.Sorted(maps.Keys(vdiMap)) {
			sr := vdiMap[vdi].(string)
			vr, _ := tx.GetClass("VDI", vdi)
			if str(vr, "SR") == sr {
				continue
			}
			moved := copyVDI(tx, vdi, "copy", sr, now)
			for _, vbd := range slices.Clone(strSet(vr, "VBDs")) {
				setRef(tx, vbd, "VDI", moved)
			}
			for _, sn := range slices.Clone(strSet(vr, "snapshots")) {
				setRef(tx, sn, "snapshot_of", moved)
			}
			oldSR := str(vr, "SR")
			deleteObject(tx, vdi)
			updateSRUsage(tx, oldSR)
			updateVDIAllowedOperations(tx, moved)
		}
		for _, vif := range slices.Sorted(maps.Keys(vifMap)) {
			setRef(tx, vif, "network", vifMap[vif].(string))
		}
		if isRef(from) && from != host {
			fr, _ := tx.GetClass("host", from)
			hr, _ := tx.GetClass("host", host)
			setField(tx, vm, "domid", nextDomid(tx, host))
			setRef(tx, vm, "resident_on", host)
			vmMessage(tx, now, vm, "VM_MIGRATED", fmt.Sprintf("migrated from host '%s' (uuid: %s) to host '%s' (uuid: %s)",
				str(fr, "name_label"), str(fr, "uuid"), str(hr, "name_label"), str(hr, "uuid")))
		}
		return vm, nil
	})
}
