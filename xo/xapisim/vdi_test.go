package xapisim

import (
	"slices"
	"testing"
)

// newVDIRecord is a VDI.create record as XO sends it.
func newVDIRecord(sr string, size any) map[string]any {
	return map[string]any{
		"name_label": "new disk", "name_description": "", "SR": sr, "virtual_size": size, "type": "user",
		"sharable": false, "read_only": false, "other_config": map[string]any{}, "xenstore_data": map[string]any{},
		"sm_config": map[string]any{}, "tags": []any{},
	}
}

func TestVDICreate(t *testing.T) {
	tests := []struct {
		name   string
		rec    func(sr string) map[string]any
		want   string // fault code, "" for success
		wantSz int64
	}{
		{"int size", func(sr string) map[string]any { return newVDIRecord(sr, int64(1<<30)) }, "", 1 << 30},
		{"string size (XML-RPC)", func(sr string) map[string]any { return newVDIRecord(sr, "2147483648") }, "", 2 << 30},
		{"missing SR", func(sr string) map[string]any {
			r := newVDIRecord(sr, int64(1))
			delete(r, "SR")
			return r
		}, "INTERNAL_ERROR", 0},
		{"missing other_config", func(sr string) map[string]any {
			r := newVDIRecord(sr, int64(1))
			delete(r, "other_config")
			return r
		}, "INTERNAL_ERROR", 0},
		{"bad size", func(sr string) map[string]any { return newVDIRecord(sr, "big") }, "INTERNAL_ERROR", 0},
		{"unknown SR", func(string) map[string]any { return newVDIRecord("OpaqueRef:nope", int64(1)) }, "HANDLE_INVALID", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			sr := byName(t, s, "SR", "sr0")
			res, f := call(t, s, session, "VDI.create", tc.rec(sr))
			if tc.want != "" {
				if f == nil || f.Code != tc.want {
					t.Fatalf("got %v, want %s", f, tc.want)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			vdi := res.(string)
			rec := get(t, s, vdi)
			if rec["virtual_size"] != tc.wantSz || str(rec, "SR") != sr || str(rec, "type") != "user" {
				t.Errorf("record: size %v SR %s type %s", rec["virtual_size"], str(rec, "SR"), str(rec, "type"))
			}
			if !slices.Contains(strSet(get(t, s, sr), "VDIs"), vdi) {
				t.Error("SR.VDIs lacks the new VDI")
			}
		})
	}
}

func TestVDIDestroy(t *testing.T) {
	tests := []struct {
		name string
		vm   string
		want []string // with "<vdi>" for the disk's ref
	}{
		{"disk of a running VM", runningVM, []string{"VDI_IN_USE", "<vdi>", "destroy"}},
		{"disk of a paused VM", pausedVM, []string{"VDI_IN_USE", "<vdi>", "destroy"}},
		{"disk of a halted VM", haltedVM, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			vdi := vmDisks(t, s, get(t, s, vm))[0]
			vbds := strSet(get(t, s, vdi), "VBDs")
			sr := str(get(t, s, vdi), "SR")
			_, f := call(t, s, session, "VDI.destroy", vdi)
			if tc.want != nil {
				want := slices.Clone(tc.want)
				want[1] = vdi
				if f == nil || !slices.Equal(f.Description(), want) {
					t.Fatalf("got %v, want %v", f, want)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if exists(s, vdi) || slices.Contains(strSet(get(t, s, sr), "VDIs"), vdi) {
				t.Fatal("VDI still there")
			}
			for _, vbd := range vbds {
				if exists(s, vbd) || slices.Contains(strSet(get(t, s, vm), "VBDs"), vbd) {
					t.Errorf("VBD %s survived its VDI", vbd)
				}
			}
		})
	}
}

func TestVDIDestroySuspendImage(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", suspendedVM)
	vdi := str(get(t, s, vm), "suspend_VDI")
	mustCall(t, s, session, "VDI.destroy", vdi)
	if sv := str(get(t, s, vm), "suspend_VDI"); sv != NullRef {
		t.Fatalf("suspend_VDI %s after destroying it", sv)
	}
}

func TestVDIOperations(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	vdi := vmDisks(t, s, get(t, s, vm))[0]
	size := get(t, s, vdi)["virtual_size"].(int64)

	snap := mustCall(t, s, session, "VDI.snapshot", vdi, map[string]any{}).(string)
	if sr := get(t, s, snap); !sr["is_a_snapshot"].(bool) || str(sr, "snapshot_of") != vdi ||
		!slices.Contains(strSet(get(t, s, vdi), "snapshots"), snap) {
		t.Error("VDI.snapshot did not link the snapshot")
	}
	clone := mustCall(t, s, session, "VDI.clone", vdi, map[string]any{}).(string)
	if cr := get(t, s, clone); cr["is_a_snapshot"].(bool) || cr["virtual_size"] != size {
		t.Error("VDI.clone is not a plain copy")
	}
	local := byName(t, s, "SR", "host0 local storage")
	cp := mustCall(t, s, session, "VDI.copy", vdi, local, NullRef, NullRef).(string)
	if str(get(t, s, cp), "SR") != local {
		t.Error("VDI.copy ignored the SR")
	}

	tests := []struct {
		name   string
		vdi    string
		size   any
		want   string
		wantSz int64
	}{
		{"grow", vdi, size * 2, "", size * 2},
		{"grow from a string", vdi, "32212254720", "", 30 << 30},
		{"shrink", vdi, int64(1 << 20), "VDI_TOO_SMALL", 0},
		{"snapshot", snap, size * 4, "VDI_IS_A_SNAPSHOT", 0},
	}
	for _, tc := range tests {
		t.Run("resize "+tc.name, func(t *testing.T) {
			_, f := call(t, s, session, "VDI.resize", tc.vdi, tc.size)
			if tc.want != "" {
				if f == nil || f.Code != tc.want {
					t.Fatalf("got %v, want %s", f, tc.want)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if got := get(t, s, tc.vdi)["virtual_size"]; got != tc.wantSz {
				t.Fatalf("virtual_size %v, want %d", got, tc.wantSz)
			}
		})
	}
	// An ISO SR refuses disk operations.
	iso := byName(t, s, "VDI", "debian-12.5.0-amd64-netinst.iso")
	if _, f := call(t, s, session, "VDI.snapshot", iso, map[string]any{}); f == nil || f.Code != "SR_OPERATION_NOT_SUPPORTED" {
		t.Errorf("snapshot of an ISO: %v", f)
	}
}

func TestSRScan(t *testing.T) {
	s, session := newTestSim(t, Default())
	sr := byName(t, s, "SR", "sr0")
	mustCall(t, s, session, "VDI.create", newVDIRecord(sr, int64(5<<30)))
	mustCall(t, s, session, "SR.scan", sr)
	rec := get(t, s, sr)
	var sum int64
	for _, vdi := range strSet(rec, "VDIs") {
		sum += get(t, s, vdi)["virtual_size"].(int64)
	}
	if rec["virtual_allocation"] != sum {
		t.Fatalf("virtual_allocation %v, want %d", rec["virtual_allocation"], sum)
	}
	if def := mustCall(t, s, session, "pool.get_default_SR", byName(t, s, "pool", "pool0")); def != sr {
		t.Fatalf("default SR %v, want sr0", def)
	}
	if _, f := call(t, s, session, "SR.scan", "OpaqueRef:nope"); f == nil || f.Code != "HANDLE_INVALID" {
		t.Fatalf("scan of a bad ref: %v", f)
	}
}

func TestVDIPoolMigrate(t *testing.T) {
	tests := []struct {
		name string
		vm   string
		want string
	}{
		{"disk of a running VM", runningVM, ""},
		{"disk of a halted VM", haltedVM, "VDI_NEEDS_VM_FOR_MIGRATE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, session := newTestSim(t, Default())
			vm := byName(t, s, "VM", tc.vm)
			vdi := vmDisks(t, s, get(t, s, vm))[0]
			local := byName(t, s, "SR", "host1 local storage")
			res, f := call(t, s, session, "VDI.pool_migrate", vdi, local, map[string]any{})
			if tc.want != "" {
				if f == nil || f.Code != tc.want {
					t.Fatalf("got %v, want %s", f, tc.want)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			nv := res.(string)
			if exists(s, vdi) || str(get(t, s, nv), "SR") != local {
				t.Fatal("VDI not moved")
			}
			if disks := vmDisks(t, s, get(t, s, vm)); len(disks) != 1 || disks[0] != nv {
				t.Fatalf("VM disks %v, want [%s]", disks, nv)
			}
		})
	}
}

func TestSRForgetAndPBDs(t *testing.T) {
	s, session := newTestSim(t, Default())
	sr := byName(t, s, "SR", "sr0")
	pbds := strSet(get(t, s, sr), "PBDs")
	if _, f := call(t, s, session, "SR.forget", sr); f == nil || f.Code != "SR_HAS_PBD" {
		t.Fatalf("forget of a plugged SR: %v", f)
	}
	// host0 runs vm0, vm2 and vm4, whose disks are on sr0.
	h0 := byName(t, s, "host", "host0")
	for _, pbd := range pbds {
		_, f := call(t, s, session, "PBD.unplug", pbd)
		if str(get(t, s, pbd), "host") == h0 {
			if f == nil || f.Code != "VDI_IN_USE" {
				t.Fatalf("unplug with a running VM's disk: %v", f)
			}
			for _, vm := range residentGuestsOf(t, s, h0) {
				mustCall(t, s, session, "VM.hard_shutdown", vm)
			}
			mustCall(t, s, session, "PBD.unplug", pbd)
		} else if f != nil {
			t.Fatalf("unplug: %v", f)
		}
	}
	if _, f := call(t, s, session, "VDI.create", newVDIRecord(sr, int64(1<<30))); f == nil || f.Code != "SR_NO_PBDS" {
		t.Fatalf("VDI.create on an unplugged SR: %v", f)
	}
	if ops := strSet(get(t, s, sr), "allowed_operations"); slices.Contains(ops, "vdi_create") || !slices.Contains(ops, "plug") {
		t.Fatalf("allowed_operations of an unplugged SR: %v", ops)
	}
	vdis := strSet(get(t, s, sr), "VDIs")
	mustCall(t, s, session, "SR.forget", sr)
	for _, ref := range append(append([]string{sr}, pbds...), vdis...) {
		if exists(s, ref) {
			t.Errorf("%s survived SR.forget", ref)
		}
	}
	if def := mustCall(t, s, session, "pool.get_default_SR", byName(t, s, "pool", "pool0")); def != NullRef {
		t.Errorf("default SR %v after forget", def)
	}
}

// residentGuestsOf returns the non-dom0 VMs running on host.
func residentGuestsOf(t *testing.T, s *Simulator, host string) []string {
	var out []string
	for _, vm := range strSet(get(t, s, host), "resident_VMs") {
		if !get(t, s, vm)["is_control_domain"].(bool) {
			out = append(out, vm)
		}
	}
	return out
}
