package xapisim

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// Default() VMs by power state.
const (
	runningVM   = "vm0"
	haltedVM    = "vm1"
	suspendedVM = "vm3"
	pausedVM    = "vm4"
)

func TestVMLifecycleErrors(t *testing.T) {
	const self = "<vm>" // replaced by the VM's ref in want
	tests := []struct {
		name   string
		method string
		vm     string // name_label of the VM
		args   []any  // after the VM ref
		setup  func(t *testing.T, s *Simulator, session, vm string)
		want   []string // fault description, nil for success
		state  string   // power state after success
	}{
		{name: "start running", method: "VM.start", vm: runningVM, args: []any{false, false},
			want: []string{"VM_BAD_POWER_STATE", self, "halted", "running"}},
		{name: "start paused", method: "VM.start", vm: pausedVM, args: []any{false, false},
			want: []string{"VM_BAD_POWER_STATE", self, "halted", "paused"}},
		{name: "start suspended", method: "VM.start", vm: suspendedVM, args: []any{false, false},
			want: []string{"VM_BAD_POWER_STATE", self, "halted", "suspended"}},
		{name: "start halted", method: "VM.start", vm: haltedVM, args: []any{false, false}, state: "Running"},
		{name: "start halted paused", method: "VM.start", vm: haltedVM, args: []any{true, false}, state: "Paused"},
		{name: "clean_shutdown halted", method: "VM.clean_shutdown", vm: haltedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "running", "halted"}},
		{name: "clean_shutdown paused", method: "VM.clean_shutdown", vm: pausedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "running", "paused"}},
		{name: "clean_shutdown running", method: "VM.clean_shutdown", vm: runningVM, state: "Halted"},
		{name: "hard_shutdown halted", method: "VM.hard_shutdown", vm: haltedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "paused, suspended, running", "halted"}},
		{name: "hard_shutdown paused", method: "VM.hard_shutdown", vm: pausedVM, state: "Halted"},
		{name: "hard_shutdown suspended", method: "VM.hard_shutdown", vm: suspendedVM, state: "Halted"},
		{name: "shutdown halted", method: "VM.shutdown", vm: haltedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "paused, suspended, running", "halted"}},
		{name: "shutdown running", method: "VM.shutdown", vm: runningVM, state: "Halted"},
		{name: "clean_reboot paused", method: "VM.clean_reboot", vm: pausedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "running", "paused"}},
		{name: "clean_reboot running", method: "VM.clean_reboot", vm: runningVM, state: "Running"},
		{name: "hard_reboot halted", method: "VM.hard_reboot", vm: haltedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "paused, running", "halted"}},
		{name: "hard_reboot paused", method: "VM.hard_reboot", vm: pausedVM, state: "Running"},
		{name: "pause halted", method: "VM.pause", vm: haltedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "running", "halted"}},
		{name: "pause running", method: "VM.pause", vm: runningVM, state: "Paused"},
		{name: "unpause running", method: "VM.unpause", vm: runningVM,
			want: []string{"VM_BAD_POWER_STATE", self, "paused", "running"}},
		{name: "unpause paused", method: "VM.unpause", vm: pausedVM, state: "Running"},
		{name: "suspend suspended", method: "VM.suspend", vm: suspendedVM,
			want: []string{"VM_BAD_POWER_STATE", self, "running", "suspended"}},
		{name: "suspend running", method: "VM.suspend", vm: runningVM, state: "Suspended"},
		{name: "resume halted", method: "VM.resume", vm: haltedVM, args: []any{false, false},
			want: []string{"VM_BAD_POWER_STATE", self, "suspended", "halted"}},
		{name: "resume suspended", method: "VM.resume", vm: suspendedVM, args: []any{false, false}, state: "Running"},
		{name: "pool_migrate halted", method: "VM.pool_migrate", vm: haltedVM, args: []any{"<host1>", map[string]any{}},
			want: []string{"VM_BAD_POWER_STATE", self, "running", "halted"}},
		{name: "pool_migrate running", method: "VM.pool_migrate", vm: runningVM, args: []any{"<host1>", map[string]any{}}, state: "Running"},
		{name: "destroy running", method: "VM.destroy", vm: runningVM,
			want: []string{"VM_BAD_POWER_STATE", self, "halted, suspended", "running"}},
		{name: "checkpoint halted", method: "VM.checkpoint", vm: haltedVM, args: []any{"cp"},
			want: []string{"VM_BAD_POWER_STATE", self, "paused, suspended, running", "halted"}},
		{name: "clone running", method: "VM.clone", vm: runningVM, args: []any{"c"},
			want: []string{"VM_BAD_POWER_STATE", self, "halted", "running"}},
		{name: "copy suspended", method: "VM.copy", vm: suspendedVM, args: []any{"c", NullRef},
			want: []string{"VM_BAD_POWER_STATE", self, "halted", "suspended"}},
		{name: "start template", method: "VM.start", vm: "template0", args: []any{false, false},
			want: []string{"VM_IS_TEMPLATE", self, "start"}},
		{name: "destroy default template", method: "VM.destroy", vm: "Debian Bookworm 12",
			want: []string{"VM_IS_TEMPLATE", self, "destroy"}},
		{name: "snapshot template", method: "VM.snapshot", vm: "template0", args: []any{"s"},
			want: []string{"VM_IS_TEMPLATE", self, "snapshot"}},
		{name: "start snapshot", method: "VM.start", vm: "vm1 snapshot 0", args: []any{false, false},
			want: []string{"VM_IS_SNAPSHOT", self, "start"}},
		{name: "snapshot snapshot", method: "VM.snapshot", vm: "vm1 snapshot 0", args: []any{"s"},
			want: []string{"VM_IS_SNAPSHOT", self, "snapshot"}},
		{name: "revert a VM", method: "VM.revert", vm: haltedVM, want: []string{"ONLY_REVERT_SNAPSHOT"}},
		{name: "provision a VM", method: "VM.provision", vm: haltedVM, want: []string{"ONLY_PROVISION_TEMPLATE"}},
		{name: "blocked before power state", method: "VM.start", vm: runningVM, args: []any{false, false},
			setup: func(t *testing.T, s *Simulator, session, vm string) {
				mustCall(t, s, session, "VM.add_to_blocked_operations", vm, "start", "true")
			},
			want: []string{"OPERATION_BLOCKED", self, "true"}},
		{name: "dom0 hard_shutdown", method: "VM.hard_shutdown", vm: "Control domain on host: host0",
			want: []string{"OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"}},
		{name: "start_on disabled host", method: "VM.start_on", vm: haltedVM, args: []any{"<host1>", false, false},
			setup: func(t *testing.T, s *Simulator, session, vm string) {
				mustCall(t, s, session, "host.disable", byName(t, s, "host", "host1"))
			},
			want: []string{"HOST_DISABLED", "<host1>"}},
		{name: "start_on host1", method: "VM.start_on", vm: haltedVM, args: []any{"<host1>", false, false}, state: "Running"},
		{name: "unknown VM", method: "VM.start", vm: "", args: []any{false, false},
			want: []string{"HANDLE_INVALID", "VM", "OpaqueRef:nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			host1 := byName(t, s, "host", "host1")
			vm := "OpaqueRef:nope"
			if tc.vm != "" {
				vm = byName(t, s, "VM", tc.vm)
			}
			if tc.setup != nil {
				tc.setup(t, s, session, vm)
			}
			subst := func(v string) string {
				return strings.NewReplacer(self, vm, "<host1>", host1).Replace(v)
			}
			args := []any{vm}
			for _, a := range tc.args {
				if as, ok := a.(string); ok {
					a = subst(as)
				}
				args = append(args, a)
			}
			before := Record{}
			if exists(s, vm) {
				before = get(t, s, vm)
			}
			_, f := call(t, s, session, tc.method, args...)
			if tc.want != nil {
				want := make([]string, len(tc.want))
				for i, w := range tc.want {
					want[i] = subst(w)
				}
				if f == nil {
					t.Fatalf("succeeded, want %v", want)
				}
				if !slices.Equal(f.Description(), want) {
					t.Fatalf("fault %v, want %v", f.Description(), want)
				}
				if !exists(s, vm) {
					return
				}
				if after := get(t, s, vm); str(after, "power_state") != str(before, "power_state") {
					t.Fatalf("power state changed to %s on error", str(after, "power_state"))
				}
				return
			}
			if f != nil {
				t.Fatalf("fault %v", f)
			}
			after := get(t, s, vm)
			if got := str(after, "power_state"); got != tc.state {
				t.Fatalf("power_state %s, want %s", got, tc.state)
			}
			checkPowerStateEffects(t, s, vm, after)
		})
	}
}

// checkPowerStateEffects checks the fields that follow the power state.
func checkPowerStateEffects(t *testing.T, s *Simulator, vm string, rec Record) {
	t.Helper()
	power := str(rec, "power_state")
	live := power == "Running" || power == "Paused"
	if live != isRef(str(rec, "resident_on")) {
		t.Errorf("%s VM resident_on %s", power, str(rec, "resident_on"))
	}
	if live && rec["domid"].(int64) <= 0 || !live && rec["domid"].(int64) != -1 {
		t.Errorf("%s VM domid %d", power, rec["domid"])
	}
	if live {
		host := get(t, s, str(rec, "resident_on"))
		if !slices.Contains(strSet(host, "resident_VMs"), vm) {
			t.Errorf("host.resident_VMs lacks the VM")
		}
		if !isRef(str(rec, "guest_metrics")) {
			t.Errorf("running VM without guest metrics")
		}
		if m := get(t, s, str(rec, "metrics")); m["start_time"].(time.Time).Equal(epoch) {
			t.Errorf("VM_metrics.start_time not set")
		}
	}
	if (power == "Suspended") != isRef(str(rec, "suspend_VDI")) {
		t.Errorf("%s VM with suspend_VDI %s", power, str(rec, "suspend_VDI"))
	}
	if power == "Suspended" {
		if vdi := get(t, s, str(rec, "suspend_VDI")); str(vdi, "type") != "suspend" {
			t.Errorf("suspend VDI of type %s", str(vdi, "type"))
		}
	}
	for _, vbd := range strSet(rec, "VBDs") {
		if att := get(t, s, vbd)["currently_attached"].(bool); att != (power != "Halted") {
			t.Errorf("%s VM has VBD currently_attached=%v", power, att)
		}
	}
	for _, vif := range strSet(rec, "VIFs") {
		if att := get(t, s, vif)["currently_attached"].(bool); att != (power != "Halted") {
			t.Errorf("%s VM has VIF currently_attached=%v", power, att)
		}
	}
	allowed := strSet(rec, "allowed_operations")
	for _, op := range vmOperations {
		want := vmErrorCode(s, vm, op) == ""
		if slices.Contains(vmIgnoredOperations, op) {
			want = false
		}
		if slices.Contains(allowed, op) != want {
			t.Errorf("allowed_operations %v: %s listed=%v, checker says allowed=%v", allowed, op, !want, want)
		}
	}
	if len(strMap(rec, "current_operations")) != 0 {
		t.Errorf("current_operations left: %v", strMap(rec, "current_operations"))
	}
}

// vmErrorCode returns the code of the strict checker's error for op.
func vmErrorCode(s *Simulator, vm, op string) string {
	code := ""
	s.DB.Read(func(tx *Tx) {
		if f := vmOperationError(tx, vm, op, true); f != nil {
			code = f.Code
		}
	})
	return code
}

func TestVMAllowedOperations(t *testing.T) {
	tests := []struct {
		vm        string
		allowed   []string
		forbidden []string
	}{
		{runningVM, []string{"clean_shutdown", "hard_shutdown", "clean_reboot", "hard_reboot", "pause", "suspend", "snapshot", "checkpoint", "pool_migrate"},
			[]string{"start", "resume", "unpause", "destroy", "clone", "copy", "export"}},
		{haltedVM, []string{"start", "start_on", "clone", "copy", "snapshot", "destroy", "export", "make_into_template"},
			[]string{"clean_shutdown", "hard_shutdown", "suspend", "resume", "pause"}},
		{suspendedVM, []string{"resume", "resume_on", "hard_shutdown", "checkpoint", "snapshot", "destroy", "export"},
			[]string{"start", "clean_shutdown", "clone"}},
		{pausedVM, []string{"unpause", "hard_shutdown", "hard_reboot", "snapshot", "checkpoint"},
			[]string{"start", "clean_shutdown", "pause", "suspend", "destroy"}},
		{"template0", []string{"clone", "copy", "export", "provision", "destroy"},
			[]string{"start", "snapshot", "make_into_template"}},
		{"Debian Bookworm 12", []string{"clone", "copy", "provision"}, []string{"destroy", "start"}},
		{"vm1 snapshot 0", []string{"revert", "clone", "copy", "destroy", "export"}, []string{"start", "snapshot"}},
		{"Control domain on host: host0", nil, []string{"hard_shutdown", "destroy", "clean_shutdown", "snapshot"}},
	}
	s, _ := newTestSim(t, Default())
	for _, tc := range tests {
		t.Run(tc.vm, func(t *testing.T) {
			got := strSet(get(t, s, byName(t, s, "VM", tc.vm)), "allowed_operations")
			for _, op := range tc.allowed {
				if !slices.Contains(got, op) {
					t.Errorf("%s not allowed: %v", op, got)
				}
			}
			for _, op := range tc.forbidden {
				if slices.Contains(got, op) {
					t.Errorf("%s allowed: %v", op, got)
				}
			}
		})
	}
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestVMCurrentOperations(t *testing.T) {
	m := Default()
	m.OpDelay = 300 * time.Millisecond
	s, session := newTestSim(t, m)
	vm := byName(t, s, "VM", runningVM)
	res, err := s.Call(context.Background(), "Async.VM.clean_shutdown", session, vm)
	if err != nil {
		t.Fatal(err)
	}
	task := res.(string)
	waitFor(t, "current_operations", func() bool { return len(strMap(get(t, s, vm), "current_operations")) > 0 })
	rec := get(t, s, vm)
	if cur := strMap(rec, "current_operations"); cur[task] != "clean_shutdown" {
		t.Fatalf("current_operations %v, want {%s: clean_shutdown}", cur, task)
	}
	if slices.Contains(strSet(rec, "allowed_operations"), "clean_reboot") {
		t.Errorf("clean_reboot allowed during clean_shutdown: %v", strSet(rec, "allowed_operations"))
	}
	tests := []struct {
		method string
		want   []string
	}{
		{"VM.clean_reboot", []string{"OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", task}},
		{"VM.suspend", []string{"OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", task}},
		{"VM.start", []string{"VM_BAD_POWER_STATE", vm, "halted", "running"}},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			args := []any{vm}
			if tc.method == "VM.start" {
				args = append(args, false, false)
			}
			_, f := call(t, s, session, tc.method, args...)
			if f == nil || !slices.Equal(f.Description(), tc.want) {
				t.Fatalf("got %v, want %v", f, tc.want)
			}
		})
	}
	waitFor(t, "the shutdown", func() bool { return len(strMap(get(t, s, vm), "current_operations")) == 0 })
	if p := str(get(t, s, vm), "power_state"); p != "Halted" {
		t.Fatalf("power_state %s after clean_shutdown", p)
	}
	waitFor(t, "the task", func() bool {
		var status string
		s.DB.Read(func(tx *Tx) {
			if rec, ok := tx.GetClass("task", task); ok {
				status = str(rec, "status")
			}
		})
		return status == "success"
	})
}

// vmDisks returns the Disk VDIs of a VM record.
func vmDisks(t *testing.T, s *Simulator, rec Record) []string {
	t.Helper()
	var out []string
	for _, vbd := range strSet(rec, "VBDs") {
		if vr := get(t, s, vbd); str(vr, "type") == "Disk" {
			out = append(out, str(vr, "VDI"))
		}
	}
	return out
}

func TestVMSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		vm        string
		method    string
		ignore    bool
		wantPower string
		wantDisks int
	}{
		{"snapshot running", runningVM, "VM.snapshot", false, "Halted", 1},
		{"snapshot halted ignoring disks", haltedVM, "VM.snapshot", true, "Halted", 0},
		{"checkpoint running", runningVM, "VM.checkpoint", false, "Suspended", 1},
		{"snapshot suspended", suspendedVM, "VM.snapshot", false, "Halted", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			before := get(t, s, vm)
			args := []any{vm, "snap"}
			if tc.ignore {
				ignore := []any{}
				for _, d := range vmDisks(t, s, before) {
					ignore = append(ignore, d)
				}
				args = append(args, ignore)
			}
			snap := mustCall(t, s, session, tc.method, args...).(string)
			sr := get(t, s, snap)
			after := get(t, s, vm)
			checks := []struct {
				what string
				ok   bool
			}{
				{"is_a_snapshot", sr["is_a_snapshot"].(bool)},
				{"is_a_template (snapshots are templates)", sr["is_a_template"].(bool)},
				{"snapshot_of", str(sr, "snapshot_of") == vm},
				{"VM.snapshots", slices.Contains(strSet(after, "snapshots"), snap)},
				{"VM.parent is the new snapshot", str(after, "parent") == snap},
				{"snapshot.parent is the previous parent", str(sr, "parent") == str(before, "parent")},
				{"power state", str(sr, "power_state") == tc.wantPower},
				{"snapshot_info", strMap(sr, "snapshot_info")["power-state-at-snapshot"] == str(before, "power_state")},
				{"name", str(sr, "name_label") == "snap"},
				{"source keeps running state", str(after, "power_state") == str(before, "power_state")},
				{"own metrics", isRef(str(sr, "metrics")) && str(sr, "metrics") != str(before, "metrics")},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s", c.what)
				}
			}
			disks := vmDisks(t, s, sr)
			if len(disks) != tc.wantDisks {
				t.Fatalf("snapshot has %d disks, want %d", len(disks), tc.wantDisks)
			}
			for i, d := range disks {
				dr := get(t, s, d)
				orig := vmDisks(t, s, before)[i]
				if !dr["is_a_snapshot"].(bool) || str(dr, "snapshot_of") != orig ||
					!slices.Contains(strSet(get(t, s, orig), "snapshots"), d) {
					t.Errorf("disk %s is not a snapshot of %s", d, orig)
				}
			}
			for i, vif := range strSet(sr, "VIFs") {
				if got, want := str(get(t, s, vif), "MAC"), str(get(t, s, strSet(before, "VIFs")[i]), "MAC"); got != want {
					t.Errorf("snapshot VIF MAC %s, want the source's %s", got, want)
				}
			}
			// XO's follow-up call.
			mustCall(t, s, session, "VM.set_is_a_template", snap, false)
			if get(t, s, snap)["is_a_template"].(bool) {
				t.Error("set_is_a_template(false) had no effect")
			}
		})
	}
}

func TestVMCloneCopy(t *testing.T) {
	tests := []struct {
		name     string
		vm       string
		method   string
		sr       string // SR name for copy
		template bool
	}{
		{"clone halted", haltedVM, "VM.clone", "", false},
		{"clone template", "template0", "VM.clone", "", true},
		{"copy to local SR", haltedVM, "VM.copy", "host1 local storage", false},
		{"copy to the same SR", haltedVM, "VM.copy", "-", false},
		{"clone snapshot", "vm0 snapshot 0", "VM.clone", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			before := get(t, s, vm)
			args := []any{vm, "new"}
			sr := NullRef
			if tc.sr != "" {
				if tc.sr != "-" {
					sr = byName(t, s, "SR", tc.sr)
				}
				args = append(args, sr)
			}
			nv := mustCall(t, s, session, tc.method, args...).(string)
			rec := get(t, s, nv)
			if rec["is_a_snapshot"].(bool) || str(rec, "snapshot_of") != NullRef || str(rec, "parent") != NullRef {
				t.Errorf("clone looks like a snapshot: %v %s %s", rec["is_a_snapshot"], str(rec, "snapshot_of"), str(rec, "parent"))
			}
			if rec["is_a_template"].(bool) != tc.template || rec["is_default_template"].(bool) {
				t.Errorf("is_a_template %v, want %v", rec["is_a_template"], tc.template)
			}
			if str(rec, "power_state") != "Halted" {
				t.Errorf("power_state %s", str(rec, "power_state"))
			}
			oc, srcOC := strMap(rec, "other_config"), strMap(before, "other_config")
			if oc["mac_seed"] == srcOC["mac_seed"] {
				t.Error("mac_seed not regenerated")
			}
			if tc.vm == "template0" && oc["base_template_name"] != "template0" {
				t.Errorf("base_template_name %q", oc["base_template_name"])
			}
			src, dst := vmDisks(t, s, before), vmDisks(t, s, rec)
			if len(src) != len(dst) {
				t.Fatalf("%d disks, source has %d", len(dst), len(src))
			}
			for i, d := range dst {
				dr, orig := get(t, s, d), get(t, s, src[i])
				if d == src[i] || dr["is_a_snapshot"].(bool) || dr["virtual_size"] != orig["virtual_size"] {
					t.Errorf("disk %d not a fresh copy", i)
				}
				wantSR := str(orig, "SR")
				if isRef(sr) {
					wantSR = sr
				}
				if str(dr, "SR") != wantSR || !slices.Contains(strSet(get(t, s, wantSR), "VDIs"), d) {
					t.Errorf("disk %d in SR %s, want %s", i, str(dr, "SR"), wantSR)
				}
			}
			for i, vif := range strSet(rec, "VIFs") {
				if str(get(t, s, vif), "MAC") == str(get(t, s, strSet(before, "VIFs")[i]), "MAC") {
					t.Error("clone kept the source's MAC")
				}
			}
		})
	}
}

func TestVMDestroy(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	rec := get(t, s, vm)
	disks := vmDisks(t, s, rec)
	snaps := strSet(rec, "snapshots")
	mustCall(t, s, session, "VM.destroy", vm)
	gone := append([]string{vm, str(rec, "metrics")}, strSet(rec, "VBDs")...)
	gone = append(gone, strSet(rec, "VIFs")...)
	for _, ref := range gone {
		if exists(s, ref) {
			t.Errorf("%s survived VM.destroy", ref)
		}
	}
	for _, d := range disks {
		if !exists(s, d) {
			t.Errorf("VDI %s destroyed with the VM", d)
		} else if vbds := strSet(get(t, s, d), "VBDs"); len(vbds) != 0 {
			t.Errorf("VDI %s still has VBDs %v", d, vbds)
		}
	}
	for _, sn := range snaps {
		if !exists(s, sn) {
			t.Errorf("snapshot %s destroyed with the VM", sn)
		} else if str(get(t, s, sn), "snapshot_of") != vm {
			t.Errorf("snapshot %s lost its snapshot_of", sn)
		}
	}
	net := get(t, s, byName(t, s, "network", "network0"))
	for _, vif := range strSet(rec, "VIFs") {
		if slices.Contains(strSet(net, "VIFs"), vif) {
			t.Errorf("network.VIFs still holds %s", vif)
		}
	}
}

func TestVMRevert(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", runningVM)
	snap := byName(t, s, "VM", "vm0 snapshot 0")
	oldDisk := vmDisks(t, s, get(t, s, vm))[0]
	mustCall(t, s, session, "VM.revert", snap)
	rec := get(t, s, vm)
	if str(rec, "power_state") != "Halted" || str(rec, "parent") != snap {
		t.Fatalf("after revert: power_state %s parent %s", str(rec, "power_state"), str(rec, "parent"))
	}
	disks := vmDisks(t, s, rec)
	if len(disks) != 1 || disks[0] == oldDisk || exists(s, oldDisk) {
		t.Fatalf("disks %v after revert (old %s exists=%v)", disks, oldDisk, exists(s, oldDisk))
	}
	snapDisk := vmDisks(t, s, get(t, s, snap))[0]
	if sm := strMap(get(t, s, disks[0]), "sm_config"); sm["vhd-parent"] != str(get(t, s, snapDisk), "uuid") {
		t.Errorf("reverted disk is not a clone of the snapshot's disk: %v", sm)
	}
}

func TestVMSetIsATemplate(t *testing.T) {
	s, session := newTestSim(t, Default())
	running := byName(t, s, "VM", runningVM)
	_, f := call(t, s, session, "VM.set_is_a_template", running, true)
	if f == nil || !slices.Equal(f.Description(), []string{"VM_BAD_POWER_STATE", running, "halted", "running"}) {
		t.Fatalf("got %v", f)
	}
	halted := byName(t, s, "VM", haltedVM)
	mustCall(t, s, session, "VM.set_is_a_template", halted, true)
	if rec := get(t, s, halted); !rec["is_a_template"].(bool) || slices.Contains(strSet(rec, "allowed_operations"), "start") {
		t.Fatalf("template: %v %v", rec["is_a_template"], strSet(rec, "allowed_operations"))
	}
}

func TestVMDevicesAndAssert(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	vbds := mustCall(t, s, session, "VM.get_allowed_VBD_devices", vm).([]string)
	if slices.Contains(vbds, "0") || slices.Contains(vbds, "3") || !slices.Contains(vbds, "1") {
		t.Errorf("allowed VBD devices %v", vbds)
	}
	vifs := mustCall(t, s, session, "VM.get_allowed_VIF_devices", vm).([]string)
	if !slices.Equal(vifs, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Errorf("allowed VIF devices %v", vifs)
	}
	tests := []struct {
		op   string
		want string
	}{
		{"start", ""},
		{"clean_shutdown", "VM_BAD_POWER_STATE"},
		{"revert", "ONLY_REVERT_SNAPSHOT"},
		{"no_such_op", "INVALID_VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.op, func(t *testing.T) {
			_, f := call(t, s, session, "VM.assert_operation_valid", vm, tc.op)
			got := ""
			if f != nil {
				got = f.Code
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVMProvision(t *testing.T) {
	s, session := newTestSim(t, Default())
	tmpl := byName(t, s, "VM", "Debian Bookworm 12")
	vm := mustCall(t, s, session, "VM.clone", tmpl, "new").(string)
	if len(vmDisks(t, s, get(t, s, vm))) != 0 {
		t.Fatal("clone of a default template has disks before provision")
	}
	mustCall(t, s, session, "VM.provision", vm)
	rec := get(t, s, vm)
	disks := vmDisks(t, s, rec)
	if len(disks) != 1 || get(t, s, disks[0])["virtual_size"] != int64(10<<30) {
		t.Fatalf("provisioned disks %v", disks)
	}
	if _, ok := strMap(rec, "other_config")["disks"]; ok {
		t.Error("other_config.disks kept after provision")
	}
	mustCall(t, s, session, "VM.set_is_a_template", vm, false)
	mustCall(t, s, session, "VM.start", vm, false, false)
}

func TestVTPM(t *testing.T) {
	s, session := newTestSim(t, Default())
	tests := []struct {
		name string
		vm   string
		want string
	}{
		{"halted VM", haltedVM, ""},
		{"second vTPM", haltedVM, "VTPM_MAX_AMOUNT_REACHED"},
		{"running VM", runningVM, "VM_BAD_POWER_STATE"},
	}
	var vtpm string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, f := call(t, s, session, "VTPM.create", byName(t, s, "VM", tc.vm), true)
			got := ""
			if f != nil {
				got = f.Code
			} else {
				vtpm = res.(string)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %q", f, tc.want)
			}
		})
	}
	vm := byName(t, s, "VM", haltedVM)
	if !slices.Contains(strSet(get(t, s, vm), "VTPMs"), vtpm) {
		t.Fatal("VM.VTPMs lacks the vTPM")
	}
	mustCall(t, s, session, "VM.destroy", vm)
	if exists(s, vtpm) {
		t.Fatal("vTPM survived VM.destroy")
	}
}

func TestVMLocalStorage(t *testing.T) {
	m := Default()
	m.SharedSRs = 0
	s, session := newTestSim(t, m)
	vm := byName(t, s, "VM", haltedVM) // vm1: disk on host1's local SR
	h0, h1 := byName(t, s, "host", "host0"), byName(t, s, "host", "host1")
	sr := str(get(t, s, vmDisks(t, s, get(t, s, vm))[0]), "SR")
	if sr != byName(t, s, "SR", "host1 local storage") {
		t.Fatalf("vm1's disk is on %s", sr)
	}
	_, f := call(t, s, session, "VM.start_on", vm, h0, false, false)
	if f == nil || !slices.Equal(f.Description(), []string{"VM_REQUIRES_SR", vm, sr}) {
		t.Fatalf("start_on host0: %v", f)
	}
	hosts := mustCall(t, s, session, "VM.get_possible_hosts", vm).([]string)
	if !slices.Equal(hosts, []string{h1}) {
		t.Fatalf("possible hosts %v, want [host1]", hosts)
	}
	mustCall(t, s, session, "VM.start", vm, false, false)
	if got := str(get(t, s, vm), "resident_on"); got != h1 {
		t.Fatalf("started on %s, want host1", got)
	}
	mustCall(t, s, session, "host.disable", h1)
	if _, f := call(t, s, session, "host.evacuate", h1); f == nil || f.Code != "NO_HOSTS_AVAILABLE" {
		t.Fatalf("evacuating local-storage VMs: %v", f)
	}
}

func TestVMDestroySnapshotRebases(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	first := str(get(t, s, vm), "parent") // "vm1 snapshot 0"
	second := mustCall(t, s, session, "VM.snapshot", vm, "second").(string)
	if str(get(t, s, second), "parent") != first || str(get(t, s, vm), "parent") != second {
		t.Fatal("snapshot chain not built")
	}
	mustCall(t, s, session, "VM.destroy", second)
	if p := str(get(t, s, vm), "parent"); p != first {
		t.Fatalf("parent %s after destroying the latest snapshot, want %s", p, first)
	}
	if !slices.Contains(strSet(get(t, s, first), "children"), vm) {
		t.Fatal("the older snapshot's children lack the VM")
	}
	if slices.Contains(strSet(get(t, s, vm), "snapshots"), second) {
		t.Fatal("VM.snapshots still holds the destroyed snapshot")
	}
}

func TestVMFeatureChecks(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", runningVM)
	_ = s.DB.Write(func(tx *Tx) error {
		rec, _ := tx.GetClass("VM", vm)
		tx.Modify(str(rec, "guest_metrics"))["other"] = map[string]string{}
		updateVMAllowedOperations(tx, vm)
		return nil
	})
	ops := strSet(get(t, s, vm), "allowed_operations")
	for _, op := range []string{"clean_shutdown", "clean_reboot", "suspend"} {
		if slices.Contains(ops, op) {
			t.Errorf("%s allowed without the guest feature: %v", op, ops)
		}
	}
	if !slices.Contains(ops, "hard_shutdown") {
		t.Errorf("hard_shutdown not allowed: %v", ops)
	}
	// Calls are checked leniently, as XAPI does (strict only for allowed_operations).
	mustCall(t, s, session, "VM.clean_shutdown", vm)
}

func TestVMOperationCancelled(t *testing.T) {
	m := Default()
	m.OpDelay = 5 * time.Second
	s, session := newTestSim(t, m)
	vm := byName(t, s, "VM", haltedVM)
	res, err := s.Call(context.Background(), "Async.VM.start", session, vm, false, false)
	if err != nil {
		t.Fatal(err)
	}
	task := res.(string)
	waitFor(t, "current_operations", func() bool { return strMap(get(t, s, vm), "current_operations")[task] == "start" })
	mustCall(t, s, session, "task.cancel", task)
	var status string
	waitFor(t, "the cancelled task", func() bool {
		s.DB.Read(func(tx *Tx) {
			if rec, ok := tx.GetClass("task", task); ok {
				status = str(rec, "status")
			}
		})
		return status != "pending"
	})
	if status != "cancelled" {
		t.Fatalf("task status %s, want cancelled", status)
	}
	rec := get(t, s, vm)
	if str(rec, "power_state") != "Halted" || len(strMap(rec, "current_operations")) != 0 {
		t.Fatalf("after cancel: %s, current_operations %v", str(rec, "power_state"), strMap(rec, "current_operations"))
	}
	if !slices.Contains(strSet(rec, "allowed_operations"), "start") {
		t.Fatalf("start not allowed again: %v", strSet(rec, "allowed_operations"))
	}
}

func TestVMResources(t *testing.T) {
	const gib = int64(1 << 30)
	tests := []struct {
		name   string
		vm     string
		method string
		args   []any
		want   []string // fault description ("<vm>" for the ref), nil for success
		field  string
		value  int64
	}{
		{"VCPUs_max halted", haltedVM, "VM.set_VCPUs_max", []any{int64(4)}, nil, "VCPUs_max", 4},
		{"VCPUs_max running", runningVM, "VM.set_VCPUs_max", []any{int64(4)},
			[]string{"VM_BAD_POWER_STATE", "<vm>", "halted", "running"}, "", 0},
		{"VCPUs_max below startup", haltedVM, "VM.set_VCPUs_max", []any{int64(1)},
			[]string{"INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max", "1"}, "", 0},
		{"VCPUs_at_startup", haltedVM, "VM.set_VCPUs_at_startup", []any{"1"}, nil, "VCPUs_at_startup", 1},
		{"VCPUs_at_startup above max", haltedVM, "VM.set_VCPUs_at_startup", []any{int64(3)},
			[]string{"INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max", "3"}, "", 0},
		{"VCPUs live", runningVM, "VM.set_VCPUs_number_live", []any{int64(1)}, nil, "VCPUs_at_startup", 1},
		{"VCPUs live halted", haltedVM, "VM.set_VCPUs_number_live", []any{int64(1)},
			[]string{"VM_BAD_POWER_STATE", "<vm>", "running", "halted"}, "", 0},
		{"memory limits", haltedVM, "VM.set_memory_limits", []any{gib, 4 * gib, gib, 3 * gib}, nil, "memory_static_max", 4 * gib},
		{"memory limits out of order", haltedVM, "VM.set_memory_limits", []any{gib, 2 * gib, 3 * gib, 3 * gib},
			[]string{"MEMORY_CONSTRAINT_VIOLATION_ORDER"}, "", 0},
		{"memory limits running", runningVM, "VM.set_memory_limits", []any{gib, 4 * gib, gib, 3 * gib},
			[]string{"VM_BAD_POWER_STATE", "<vm>", "halted", "running"}, "", 0},
		{"set_memory", haltedVM, "VM.set_memory", []any{3 * gib}, nil, "memory_dynamic_min", 3 * gib},
		{"dynamic range running", runningVM, "VM.set_memory_dynamic_range", []any{gib, 2 * gib}, nil, "memory_dynamic_min", gib},
		{"dynamic max above static", runningVM, "VM.set_memory_dynamic_max", []any{8 * gib},
			[]string{"MEMORY_CONSTRAINT_VIOLATION_ORDER"}, "", 0},
		{"dynamic range suspended", suspendedVM, "VM.set_memory_dynamic_range", []any{gib, 2 * gib},
			[]string{"VM_BAD_POWER_STATE", "<vm>", "halted, running", "suspended"}, "", 0},
		{"static max", haltedVM, "VM.set_memory_static_max", []any{8 * gib}, nil, "memory_static_max", 8 * gib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			_, f := call(t, s, session, tc.method, append([]any{vm}, tc.args...)...)
			if tc.want != nil {
				want := slices.Clone(tc.want)
				for i := range want {
					want[i] = strings.ReplaceAll(want[i], "<vm>", vm)
				}
				if f == nil || !slices.Equal(f.Description(), want) {
					t.Fatalf("got %v, want %v", f, want)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if got := get(t, s, vm)[tc.field]; got != tc.value {
				t.Fatalf("%s = %v, want %d", tc.field, got, tc.value)
			}
		})
	}
}

func TestVMMigrateSend(t *testing.T) {
	m := Default()
	m.SharedSRs = 0 // local storage only: moving hosts needs storage motion
	tests := []struct {
		name     string
		moveDisk bool
		want     string
	}{
		{"with storage motion", true, ""},
		{"without moving the disk", false, "VM_REQUIRES_SR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, m)
			vm := byName(t, s, "VM", runningVM) // on host0, disk on host0's SR
			h1 := byName(t, s, "host", "host1")
			dest := mustCall(t, s, session, "host.migrate_receive", h1, byName(t, s, "network", "network0"), map[string]any{}).(map[string]any)
			if dest["host"] != h1 || dest["session_id"] != session || !strings.HasPrefix(dest["SM"].(string), "http://192.168.0.11/services/SM") {
				t.Fatalf("migrate_receive token %v", dest)
			}
			disk := vmDisks(t, s, get(t, s, vm))[0]
			vif := strSet(get(t, s, vm), "VIFs")[0]
			net1 := byName(t, s, "network", "network1")
			vdiMap := map[string]any{}
			if tc.moveDisk {
				vdiMap[disk] = byName(t, s, "SR", "host1 local storage")
			}
			_, f := call(t, s, session, "VM.migrate_send", vm, dest, true, vdiMap, map[string]any{vif: net1}, map[string]any{})
			if tc.want != "" {
				if f == nil || f.Code != tc.want {
					t.Fatalf("got %v, want %s", f, tc.want)
				}
				if str(get(t, s, vif), "network") == net1 {
					t.Fatal("VIF moved although the migration failed")
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			rec := get(t, s, vm)
			if str(rec, "resident_on") != h1 || str(rec, "power_state") != "Running" {
				t.Fatalf("VM on %s, %s", str(rec, "resident_on"), str(rec, "power_state"))
			}
			disks := vmDisks(t, s, rec)
			if exists(s, disk) || len(disks) != 1 || str(get(t, s, disks[0]), "SR") != byName(t, s, "SR", "host1 local storage") {
				t.Fatalf("disk not moved: %v", disks)
			}
			if str(get(t, s, vif), "network") != net1 {
				t.Fatal("VIF not moved")
			}
		})
	}
}
