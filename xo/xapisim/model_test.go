package xapisim

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestSim builds a simulator from m, logs in and checks the object
// graph's invariants when the test ends.
func newTestSim(t *testing.T, m Model) (*Simulator, string) {
	t.Helper()
	s := New(m)
	session := s.Login(m.User, "test")
	t.Cleanup(func() {
		if !t.Failed() {
			checkInvariants(t, s)
		}
	})
	return s, session
}

// call runs method with the session prepended and fails the test on a
// non-fault error.
func call(t *testing.T, s *Simulator, session, method string, args ...any) (any, *Fault) {
	t.Helper()
	res, err := s.Call(context.Background(), method, append([]any{session}, args...)...)
	if err != nil {
		f, ok := err.(*Fault)
		if !ok {
			t.Fatalf("%s: non-fault error %v", method, err)
		}
		return nil, f
	}
	return res, nil
}

// mustCall is call that fails the test on a fault.
func mustCall(t *testing.T, s *Simulator, session, method string, args ...any) any {
	t.Helper()
	res, f := call(t, s, session, method, args...)
	if f != nil {
		t.Fatalf("%s%v: %v", method, args, f)
	}
	return res
}

// byName returns the ref of the object of class called name.
func byName(t *testing.T, s *Simulator, class, name string) string {
	t.Helper()
	var out []string
	s.DB.Read(func(tx *Tx) {
		for _, ref := range tx.All(class) {
			rec, _ := tx.GetClass(class, ref)
			if str(rec, "name_label") == name {
				out = append(out, ref)
			}
		}
	})
	if len(out) != 1 {
		t.Fatalf("%d %s objects called %q", len(out), class, name)
	}
	return out[0]
}

// get returns a copy of the record of ref.
func get(t *testing.T, s *Simulator, ref string) Record {
	t.Helper()
	var rec Record
	s.DB.Read(func(tx *Tx) {
		if _, r, ok := tx.Get(ref); ok {
			rec = r.Clone()
		}
	})
	if rec == nil {
		t.Fatalf("no object %s", ref)
	}
	return rec
}

// exists reports whether ref is in the database.
func exists(s *Simulator, ref string) bool {
	ok := false
	s.DB.Read(func(tx *Tx) { _, _, ok = tx.Get(ref) })
	return ok
}

// kindType reports whether v has the Go type of kind (non-nil sets/maps).
func kindType(kind Kind, v any) bool {
	switch kind {
	case KindString, KindEnum, KindRef:
		_, ok := v.(string)
		return ok
	case KindInt:
		_, ok := v.(int64)
		return ok
	case KindFloat:
		_, ok := v.(float64)
		return ok
	case KindBool:
		_, ok := v.(bool)
		return ok
	case KindDateTime:
		_, ok := v.(time.Time)
		return ok
	case KindStringSet:
		s, ok := v.([]string)
		return ok && s != nil
	case KindIntSet:
		s, ok := v.([]int64)
		return ok && s != nil
	case KindStringMap:
		m, ok := v.(map[string]string)
		return ok && m != nil
	case KindIntMap:
		m, ok := v.(map[string]int64)
		return ok && m != nil
	case KindStringSetMap:
		m, ok := v.(map[string][]string)
		return ok && m != nil
	}
	return true
}

// checkInvariants verifies the whole database: every field has its
// schema type, every forward reference that XAPI maintains a reverse set
// for is mirrored exactly, and the power-state related fields agree.
func checkInvariants(t *testing.T, s *Simulator) {
	t.Helper()
	s.DB.Read(func(tx *Tx) {
		errs := invariantErrors(tx)
		for i, e := range errs {
			if i == 20 {
				t.Errorf("... and %d more", len(errs)-20)
				break
			}
			t.Error(e)
		}
	})
}

func invariantErrors(tx *Tx) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, class := range tx.Classes() {
		schema, ok := Schema(class)
		if !ok {
			fail("class %s is not in the schema", class)
			continue
		}
		for _, ref := range tx.All(class) {
			rec, _ := tx.GetClass(class, ref)
			for _, f := range schema.Fields {
				v, ok := rec[f.Name]
				if !ok {
					fail("%s %s: field %s missing", class, ref, f.Name)
				} else if !kindType(f.Kind, v) {
					fail("%s %s: field %s = %#v is not a %s", class, ref, f.Name, v, f.Type)
				}
			}
		}
	}
	for _, r := range relations {
		reverse := map[string]map[string]bool{} // target -> members of its reverse set
		for _, target := range tx.All(r.target) {
			tr, _ := tx.GetClass(r.target, target)
			reverse[target] = map[string]bool{}
			for _, m := range strSet(tr, r.reverse) {
				reverse[target][m] = true
			}
		}
		for _, ref := range tx.All(r.class) {
			rec, _ := tx.GetClass(r.class, ref)
			target := str(rec, r.field)
			if !isRef(target) {
				continue
			}
			if _, ok := tx.GetClass(r.target, target); !ok {
				if !r.weak {
					fail("%s %s.%s = %s: no such %s", r.class, ref, r.field, target, r.target)
				}
				continue
			}
			if !reverse[target][ref] {
				fail("%s %s.%s = %s, but %s.%s lacks it", r.class, ref, r.field, target, r.target, r.reverse)
			}
		}
		for _, target := range tx.All(r.target) {
			tr, _ := tx.GetClass(r.target, target)
			set := strSet(tr, r.reverse)
			if len(slices.Compact(slices.Sorted(slices.Values(set)))) != len(set) {
				fail("%s %s.%s has duplicates: %v", r.target, target, r.reverse, set)
			}
			for _, ref := range set {
				rec, ok := tx.GetClass(r.class, ref)
				if !ok {
					fail("%s %s.%s holds %s, which is not a live %s", r.target, target, r.reverse, ref, r.class)
				} else if str(rec, r.field) != target {
					fail("%s %s.%s holds %s whose %s is %s", r.target, target, r.reverse, ref, r.field, str(rec, r.field))
				}
			}
		}
	}
	mustRef := func(class, ref, field, want string, nullOK bool) {
		_, rec, _ := tx.Get(ref)
		v := str(rec, field)
		if !isRef(v) {
			if !nullOK {
				fail("%s %s.%s is NULL", class, ref, field)
			}
			return
		}
		if _, ok := tx.GetClass(want, v); !ok {
			fail("%s %s.%s = %s: no such %s", class, ref, field, v, want)
		}
	}
	for _, vm := range tx.All("VM") {
		rec, _ := tx.GetClass("VM", vm)
		mustRef("VM", vm, "metrics", "VM_metrics", false)
		mustRef("VM", vm, "guest_metrics", "VM_guest_metrics", true)
		mustRef("VM", vm, "suspend_VDI", "VDI", true)
		power := str(rec, "power_state")
		resident := isRef(str(rec, "resident_on"))
		switch power {
		case "Running", "Paused":
			if !resident {
				fail("VM %s is %s but resident nowhere", vm, power)
			}
		case "Halted", "Suspended":
			if resident || rec["domid"].(int64) != -1 {
				fail("VM %s is %s but resident_on=%s domid=%d", vm, power, str(rec, "resident_on"), rec["domid"])
			}
		}
		if power != "Suspended" && isRef(str(rec, "suspend_VDI")) {
			fail("VM %s is %s with suspend_VDI %s", vm, power, str(rec, "suspend_VDI"))
		}
		for _, vbd := range strSet(rec, "VBDs") {
			vr, _ := tx.GetClass("VBD", vbd)
			if vr["currently_attached"].(bool) && power == "Halted" {
				fail("VBD %s attached to halted VM %s", vbd, vm)
			}
		}
		for _, vif := range strSet(rec, "VIFs") {
			vr, _ := tx.GetClass("VIF", vif)
			if vr["currently_attached"].(bool) && power == "Halted" {
				fail("VIF %s attached to halted VM %s", vif, vm)
			}
		}
		if len(strMap(rec, "current_operations")) > 0 {
			fail("VM %s still has current_operations %v", vm, strMap(rec, "current_operations"))
		}
	}
	for _, h := range tx.All("host") {
		mustRef("host", h, "metrics", "host_metrics", false)
		mustRef("host", h, "control_domain", "VM", false)
		rec, _ := tx.GetClass("host", h)
		if dom0, ok := tx.GetClass("VM", str(rec, "control_domain")); ok &&
			(!dom0["is_control_domain"].(bool) || str(dom0, "resident_on") != h) {
			fail("host %s: control domain is not a dom0 resident on it", h)
		}
	}
	for _, pif := range tx.All("PIF") {
		mustRef("PIF", pif, "metrics", "PIF_metrics", false)
	}
	for _, pool := range tx.All("pool") {
		mustRef("pool", pool, "master", "host", false)
		mustRef("pool", pool, "default_SR", "SR", true)
	}
	return errs
}

func TestModelInventory(t *testing.T) {
	s, _ := newTestSim(t, Default())
	count := func(class string, keep func(Record) bool) int {
		n := 0
		s.DB.Read(func(tx *Tx) {
			for _, ref := range tx.All(class) {
				rec, _ := tx.GetClass(class, ref)
				if keep == nil || keep(rec) {
					n++
				}
			}
		})
		return n
	}
	flag := func(f string, want bool) func(Record) bool {
		return func(r Record) bool { return r[f].(bool) == want }
	}
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"pools", count("pool", nil), 1},
		{"hosts", count("host", nil), 2},
		{"control domains", count("VM", flag("is_control_domain", true)), 2},
		{"default templates", count("VM", flag("is_default_template", true)), 3},
		{"snapshots", count("VM", flag("is_a_snapshot", true)), 6},
		{"guests", count("VM", func(r Record) bool {
			return !r["is_a_template"].(bool) && !r["is_control_domain"].(bool)
		}), 6},
		{"running guests", count("VM", func(r Record) bool {
			return str(r, "power_state") == "Running" && !r["is_control_domain"].(bool)
		}), 2},
		{"SRs", count("SR", nil), 1 + 2 + 2},
		{"PBDs", count("PBD", nil), 2 + 2 + 2*2},
		{"networks", count("network", nil), 2},
		{"PIFs", count("PIF", nil), 4},
		{"management PIFs", count("PIF", flag("management", true)), 2},
		{"PGPUs", count("PGPU", nil), 2},
		{"messages", count("message", nil), 3},
		{"guest metrics", count("VM_guest_metrics", nil), 4}, // 2 running, 1 paused, 1 suspended
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %d, want %d", tc.got, tc.want)
			}
		})
	}

	host0 := get(t, s, byName(t, s, "host", "host0"))
	for _, tc := range []struct {
		field string
		want  any
	}{
		{"API_version_major", int64(2)},
		{"API_version_minor", int64(21)},
		{"address", "192.168.0.10"},
		{"enabled", true},
	} {
		if host0[tc.field] != tc.want {
			t.Errorf("host0.%s = %#v, want %#v", tc.field, host0[tc.field], tc.want)
		}
	}
	if b := strMap(host0, "software_version")["product_brand"]; b != "XCP-ng" {
		t.Errorf("product_brand = %q", b)
	}
	vm0 := get(t, s, byName(t, s, "VM", "vm0"))
	if str(vm0, "power_state") != "Running" || str(vm0, "resident_on") != byName(t, s, "host", "host0") {
		t.Errorf("vm0: power_state %s resident_on %s", str(vm0, "power_state"), str(vm0, "resident_on"))
	}
	if len(strSet(vm0, "snapshots")) != 1 || !isRef(str(vm0, "parent")) {
		t.Errorf("vm0: snapshots %v parent %s", strSet(vm0, "snapshots"), str(vm0, "parent"))
	}
	if !slices.Contains(strSet(vm0, "allowed_operations"), "clean_shutdown") {
		t.Errorf("vm0 allowed_operations lack clean_shutdown: %v", strSet(vm0, "allowed_operations"))
	}
	vdis := 0
	for _, vbd := range strSet(vm0, "VBDs") {
		if vr := get(t, s, vbd); str(vr, "type") == "Disk" {
			vdis++
			if vd := get(t, s, str(vr, "VDI")); vd["virtual_size"] != int64(10<<30) {
				t.Errorf("vm0 disk virtual_size %v", vd["virtual_size"])
			}
		}
	}
	if vdis != 1 {
		t.Errorf("vm0 has %d disks", vdis)
	}
}

// dump returns every object's class, ref and uuid, in ref order.
func dump(s *Simulator) []string {
	var out []string
	s.DB.Read(func(tx *Tx) {
		for _, class := range tx.Classes() {
			for _, ref := range tx.All(class) {
				rec, _ := tx.GetClass(class, ref)
				out = append(out, class+" "+ref+" "+str(rec, "uuid")+" "+str(rec, "name_label"))
			}
		}
	})
	return out
}

func TestModelDeterministic(t *testing.T) {
	tests := []struct {
		name string
		m    Model
	}{
		{"default", Default()},
		{"no shared storage", func() Model { m := Default(); m.SharedSRs = 0; m.Hosts = 3; return m }()},
		{"bare", Model{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestSim(t, tc.m)
			b, _ := newTestSim(t, tc.m)
			da, db := dump(a), dump(b)
			if !slices.Equal(da, db) {
				t.Fatalf("two builds differ:\n%v\n%v", da, db)
			}
			other := tc.m
			other.Seed = "other"
			if dc := dump(New(other)); slices.Equal(da, dc) {
				t.Fatal("a different seed gave the same refs")
			}
		})
	}
}

func TestModelLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large model in -short mode")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	s := New(Large())
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	guests, objects := 0, 0
	s.DB.Read(func(tx *Tx) {
		for _, class := range tx.Classes() {
			objects += tx.Count(class)
		}
		for _, ref := range tx.All("VM") {
			rec, _ := tx.GetClass("VM", ref)
			if !rec["is_a_template"].(bool) && !rec["is_control_domain"].(bool) {
				guests++
			}
		}
		if errs := invariantErrors(tx); len(errs) > 0 {
			t.Errorf("%d invariant errors, first: %s", len(errs), errs[0])
		}
	})
	if guests != 10000 {
		t.Fatalf("Large() built %d guests", guests)
	}
	t.Logf("Large(): %d guests, %d objects, built in %v, heap %d MiB", guests, objects, elapsed,
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))>>20)
}

func BenchmarkModelLarge(b *testing.B) {
	m := Large()
	for b.Loop() {
		New(m)
	}
}

func TestModelRecordsEncode(t *testing.T) {
	s, _ := newTestSim(t, Default())
	s.DB.Read(func(tx *Tx) {
		for _, class := range tx.Classes() {
			for _, ref := range tx.All(class) {
				rec, _ := tx.GetClass(class, ref)
				if _, err := EncodeXMLValue(rec); err != nil {
					t.Errorf("%s %s: %v", class, ref, err)
				}
			}
		}
	})
}

func TestRelationalCreateDestroy(t *testing.T) {
	s, session := newTestSim(t, Default())
	sr := mustCall(t, s, session, "VDI.get_SR", vmDisks(t, s, get(t, s, byName(t, s, "VM", haltedVM)))[0]).(string)
	h := byName(t, s, "host", "host1")
	pbd := mustCall(t, s, session, "PBD.create", map[string]any{
		"host": h, "SR": sr, "device_config": map[string]any{"server": "x"}, "other_config": map[string]any{},
	}).(string)
	if !slices.Contains(strSet(get(t, s, sr), "PBDs"), pbd) || !slices.Contains(strSet(get(t, s, h), "PBDs"), pbd) {
		t.Fatal("PBD.create did not update SR.PBDs and host.PBDs")
	}
	if _, f := call(t, s, session, "PBD.create", map[string]any{
		"host": "OpaqueRef:nope", "SR": sr, "device_config": map[string]any{},
	}); f == nil || f.Code != "HANDLE_INVALID" {
		t.Fatalf("PBD.create with a bad host: %v", f)
	}
	mustCall(t, s, session, "PBD.destroy", pbd)
	if slices.Contains(strSet(get(t, s, sr), "PBDs"), pbd) || slices.Contains(strSet(get(t, s, h), "PBDs"), pbd) {
		t.Fatal("PBD.destroy left reverse references")
	}
	vm := mustCall(t, s, session, "VM.create", map[string]any{
		"name_label": "created", "name_description": "", "user_version": "1", "is_a_template": false,
		"affinity": NullRef, "memory_static_max": "1073741824", "memory_dynamic_max": "1073741824",
		"memory_dynamic_min": "1073741824", "memory_static_min": "536870912", "VCPUs_params": map[string]any{},
		"VCPUs_max": "1", "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy",
		"actions_after_reboot": "restart", "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "",
		"PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
		"HVM_boot_params": map[string]any{"order": "dc"}, "platform": map[string]any{}, "PCI_bus": "",
		"other_config": map[string]any{}, "recommendations": "",
	}).(string)
	rec := get(t, s, vm)
	if str(rec, "power_state") != "Halted" || !isRef(str(rec, "metrics")) || !slices.Contains(strSet(rec, "allowed_operations"), "start") {
		t.Fatalf("created VM: %s metrics %s ops %v", str(rec, "power_state"), str(rec, "metrics"), strSet(rec, "allowed_operations"))
	}
	mustCall(t, s, session, "VM.start", vm, false, false)
}

func TestMethodSignatures(t *testing.T) {
	s := New(Model{})
	for _, name := range s.Methods() {
		class, msg, ok := strings.Cut(name, ".")
		cs, found := Schema(class)
		if !ok || !found {
			continue
		}
		m, _ := s.Method(name)
		for _, ms := range cs.Messages {
			if ms.Name == msg && (ms.Params != m.Params || ms.Defaults != m.Defaults) {
				t.Errorf("%s takes %d params (%d optional), the datamodel says %d (%d)", name, m.Params, m.Defaults, ms.Params, ms.Defaults)
			}
		}
	}
}

// ExampleDefault lists the guests of the default inventory and their power
// states.
func ExampleDefault() {
	s := New(Default())
	var lines []string
	s.DB.Read(func(tx *Tx) {
		for _, ref := range tx.All("VM") {
			rec, _ := tx.GetClass("VM", ref)
			if !rec["is_a_template"].(bool) && !rec["is_control_domain"].(bool) {
				lines = append(lines, fmt.Sprintf("%s %s", str(rec, "name_label"), str(rec, "power_state")))
			}
		}
	})
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// vm0 Running
	// vm1 Halted
	// vm2 Running
	// vm3 Suspended
	// vm4 Paused
	// vm5 Halted
}
