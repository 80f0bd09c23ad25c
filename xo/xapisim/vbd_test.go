package xapisim

import (
	"slices"
	"testing"
)

// newVBDRecord is a VBD.create record as XO sends it.
func newVBDRecord(vm, vdi, userdevice, typ string) map[string]any {
	return map[string]any{
		"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": false, "mode": "RW", "type": typ,
		"unpluggable": true, "empty": vdi == NullRef, "other_config": map[string]any{},
		"qos_algorithm_type": "", "qos_algorithm_params": map[string]any{},
	}
}

func TestVBDCreatePlug(t *testing.T) {
	tests := []struct {
		name       string
		vm         string
		userdevice string
		plug       []string // expected VBD.plug fault, nil for success
	}{
		{"running VM", runningVM, "1", nil},
		{"running VM autodetect", runningVM, "autodetect", nil},
		{"halted VM", haltedVM, "1", []string{"VM_BAD_POWER_STATE", "<vm>", "running", "halted"}},
		{"suspended VM", suspendedVM, "1", []string{"VM_BAD_POWER_STATE", "<vm>", "running", "suspended"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			vdi := mustCall(t, s, session, "VDI.create", newVDIRecord(byName(t, s, "SR", "sr0"), int64(1<<30))).(string)
			vbd := mustCall(t, s, session, "VBD.create", newVBDRecord(vm, vdi, tc.userdevice, "Disk")).(string)
			rec := get(t, s, vbd)
			if str(rec, "userdevice") != "1" || rec["currently_attached"].(bool) {
				t.Fatalf("new VBD: userdevice %s attached %v", str(rec, "userdevice"), rec["currently_attached"])
			}
			if !slices.Contains(strSet(get(t, s, vm), "VBDs"), vbd) || !slices.Contains(strSet(get(t, s, vdi), "VBDs"), vbd) {
				t.Fatal("VM.VBDs or VDI.VBDs lacks the new VBD")
			}
			_, f := call(t, s, session, "VBD.plug", vbd)
			if tc.plug != nil {
				want := slices.Clone(tc.plug)
				want[1] = vm
				if f == nil || !slices.Equal(f.Description(), want) {
					t.Fatalf("plug: got %v, want %v", f, want)
				}
				mustCall(t, s, session, "VBD.destroy", vbd)
				return
			}
			if f != nil {
				t.Fatalf("plug: %v", f)
			}
			if rec := get(t, s, vbd); !rec["currently_attached"].(bool) || str(rec, "device") != "xvdb" {
				t.Fatalf("plugged VBD: attached %v device %q", rec["currently_attached"], str(rec, "device"))
			}
			if _, f := call(t, s, session, "VBD.plug", vbd); f == nil || f.Code != "DEVICE_ALREADY_ATTACHED" {
				t.Errorf("second plug: %v", f)
			}
			if _, f := call(t, s, session, "VDI.destroy", vdi); f == nil || f.Code != "VDI_IN_USE" {
				t.Errorf("destroy of a plugged VDI: %v", f)
			}
			if _, f := call(t, s, session, "VBD.destroy", vbd); f == nil || f.Code != "OPERATION_NOT_ALLOWED" {
				t.Errorf("destroy of a plugged VBD: %v", f)
			}
			mustCall(t, s, session, "VBD.unplug", vbd)
			if _, f := call(t, s, session, "VBD.unplug", vbd); f == nil || f.Code != "DEVICE_ALREADY_DETACHED" {
				t.Errorf("second unplug: %v", f)
			}
			mustCall(t, s, session, "VBD.destroy", vbd)
			if slices.Contains(strSet(get(t, s, vdi), "VBDs"), vbd) {
				t.Error("VDI.VBDs still holds the destroyed VBD")
			}
		})
	}
}

func TestVBDCreateErrors(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	vdi := mustCall(t, s, session, "VDI.create", newVDIRecord(byName(t, s, "SR", "sr0"), int64(1<<30))).(string)
	tests := []struct {
		name string
		rec  map[string]any
		want string
	}{
		{"device in use", newVBDRecord(vm, vdi, "0", "Disk"), "DEVICE_ALREADY_EXISTS"},
		{"unknown VM", newVBDRecord("OpaqueRef:nope", vdi, "1", "Disk"), "HANDLE_INVALID"},
		{"unknown VDI", newVBDRecord(vm, "OpaqueRef:nope", "1", "Disk"), "HANDLE_INVALID"},
		{"missing mode", func() map[string]any { r := newVBDRecord(vm, vdi, "1", "Disk"); delete(r, "mode"); return r }(), "INTERNAL_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, f := call(t, s, session, "VBD.create", tc.rec); f == nil || f.Code != tc.want {
				t.Fatalf("got %v, want %s", f, tc.want)
			}
		})
	}
}

func TestVBDInsertEject(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := get(t, s, byName(t, s, "VM", runningVM))
	var cd string
	for _, vbd := range strSet(vm, "VBDs") {
		if str(get(t, s, vbd), "type") == "CD" {
			cd = vbd
		}
	}
	iso := byName(t, s, "VDI", "debian-12.5.0-amd64-netinst.iso")
	if _, f := call(t, s, session, "VBD.eject", cd); f == nil || f.Code != "VBD_IS_EMPTY" {
		t.Fatalf("eject of an empty drive: %v", f)
	}
	mustCall(t, s, session, "VBD.insert", cd, iso)
	if rec := get(t, s, cd); rec["empty"].(bool) || str(rec, "VDI") != iso || !slices.Contains(strSet(get(t, s, iso), "VBDs"), cd) {
		t.Fatal("insert did not load the ISO")
	}
	if _, f := call(t, s, session, "VBD.insert", cd, iso); f == nil || f.Code != "VBD_NOT_EMPTY" {
		t.Fatalf("insert into a full drive: %v", f)
	}
	mustCall(t, s, session, "VBD.eject", cd)
	if rec := get(t, s, cd); !rec["empty"].(bool) || str(rec, "VDI") != NullRef || slices.Contains(strSet(get(t, s, iso), "VBDs"), cd) {
		t.Fatal("eject did not empty the drive")
	}
	disk := vmDisks(t, s, vm)[0]
	for _, vbd := range strSet(get(t, s, disk), "VBDs") {
		if _, f := call(t, s, session, "VBD.eject", vbd); f == nil || f.Code != "VBD_NOT_REMOVABLE_MEDIA" {
			t.Fatalf("eject of a disk: %v", f)
		}
	}
}

func TestReverseReferenceEvents(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	vdi := mustCall(t, s, session, "VDI.create", newVDIRecord(byName(t, s, "SR", "sr0"), int64(1<<30))).(string)
	var since int64
	s.DB.Read(func(tx *Tx) { since = tx.Gen() })
	vbd := mustCall(t, s, session, "VBD.create", newVBDRecord(vm, vdi, "1", "Disk")).(string)
	changed := map[string]string{}
	s.DB.Read(func(tx *Tx) {
		changes, _ := tx.ChangesSince(since, nil)
		for _, c := range changes {
			changed[c.Ref] = c.Operation
		}
	})
	for ref, want := range map[string]string{vbd: "add", vm: "mod", vdi: "mod"} {
		if changed[ref] != want {
			t.Errorf("%s: event %q, want %q", ref, changed[ref], want)
		}
	}
}
