package xo_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// destroyTarget returns the ref and record of the VM (or template, or snapshot)
// named name.
func destroyTarget(t *testing.T, c *xapi.Client, name string) (xapi.Ref, *xapi.VM) {
	t.Helper()
	vms, err := c.VMs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for ref, vm := range vms {
		if vm.NameLabel == name {
			return ref, vm
		}
	}
	t.Fatalf("no VM named %q", name)
	return "", nil
}

// destroyDisks returns the VDIs of the Disk VBDs of vm.
func destroyDisks(t *testing.T, c *xapi.Client, vm *xapi.VM) []xapi.Ref {
	t.Helper()
	var vdis []xapi.Ref
	for _, vbdRef := range vm.VBDs {
		vbd, err := xapi.GetRecord[xapi.VBD](t.Context(), c, vbdRef)
		if err != nil {
			t.Fatal(err)
		}
		if vbd.Type == "Disk" && !vbd.VDI.IsNull() {
			vdis = append(vdis, vbd.VDI)
		}
	}
	return vdis
}

// recordExists reports whether ref names a live object of class.
func recordExists(t *testing.T, c *xapi.Client, class string, ref xapi.Ref) bool {
	t.Helper()
	_, err := c.GetRecord(t.Context(), class, ref)
	if errors.Is(err, xapi.ErrHandleInvalid) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func TestDestroyVM(t *testing.T) {
	tests := []struct {
		name string
		vm   string
		// prepare runs before DestroyVM.
		prepare func(t *testing.T, srv *xapisim.Server, c *xapi.Client, ref xapi.Ref, vm *xapi.VM)
		wantErr error
		// nothingDone: the VM and its disks must all remain.
		nothingDone bool
		// keptDisks: disks that must survive (shared with another VM).
		sharedDisk bool
		// failedDisk: VDI.destroy fails; the task must say so.
		failedDisk bool
	}{
		{name: "halted VM with snapshot", vm: "vm1"},
		{name: "suspended VM", vm: "vm3"},
		{name: "template", vm: "template0"},
		{name: "snapshot", vm: "vm1 snapshot 0"},
		{name: "running VM refused", vm: "vm0", wantErr: xo.ErrVMRunning, nothingDone: true},
		{name: "paused VM refused", vm: "vm4", wantErr: xo.ErrVMRunning, nothingDone: true},
		{name: "blocked destroy", vm: "vm5", wantErr: xo.ErrDestroyBlocked, nothingDone: true,
			prepare: func(t *testing.T, _ *xapisim.Server, c *xapi.Client, ref xapi.Ref, _ *xapi.VM) {
				if _, err := c.Call(t.Context(), "VM.set_blocked_operations", ref, map[string]string{"destroy": "protected"}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "disk shared with another VM", vm: "vm1", sharedDisk: true,
			prepare: func(t *testing.T, _ *xapisim.Server, c *xapi.Client, _ xapi.Ref, vm *xapi.VM) {
				other, _ := destroyTarget(t, c, "vm5")
				vdi := destroyDisks(t, c, vm)[0]
				_, err := c.Call(t.Context(), "VBD.create", map[string]any{
					"VM": other, "VDI": vdi, "userdevice": "5", "bootable": false, "mode": "RW", "type": "Disk",
					"empty": false, "other_config": map[string]string{}, "qos_algorithm_type": "", "qos_algorithm_params": map[string]string{},
				})
				if err != nil {
					t.Fatal(err)
				}
			}},
		{name: "disk destroy fails", vm: "vm1", failedDisk: true, wantErr: &xapi.Error{Code: "SR_BACKEND_FAILURE_1200"},
			prepare: func(t *testing.T, srv *xapisim.Server, _ *xapi.Client, _ xapi.Ref, _ *xapi.VM) {
				remove := srv.InjectFault(xapisim.FaultRule{Method: "VDI.destroy", Fault: xapisim.NewFault("SR_BACKEND_FAILURE_1200", "", "disk busy"), Count: 1})
				t.Cleanup(remove)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := xapisim.NewServer(t, xapisim.Default())
			c := newClient(t, srv)
			ref, vm := destroyTarget(t, c, tt.vm)
			if tt.prepare != nil {
				tt.prepare(t, srv, c, ref, vm)
			}
			disks := destroyDisks(t, c, vm)
			snaps := slices.Clone(vm.Snapshots)
			var snapDisks []xapi.Ref
			for _, s := range snaps {
				rec, err := xapi.GetRecord[xapi.VM](t.Context(), c, s)
				if err != nil {
					t.Fatal(err)
				}
				snapDisks = append(snapDisks, destroyDisks(t, c, rec)...)
			}

			report, err := xo.DestroyVM(t.Context(), c, ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var de *xo.DestroyError
				if !errors.As(err, &de) {
					t.Fatalf("err %T is not a *DestroyError", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.nothingDone {
				if report != nil {
					t.Errorf("report %+v for a refused destroy", report)
				}
				if !recordExists(t, c, "VM", ref) {
					t.Error("VM destroyed")
				}
				for _, d := range disks {
					if !recordExists(t, c, "VDI", d) {
						t.Errorf("VDI %s destroyed", d)
					}
				}
				return
			}
			if recordExists(t, c, "VM", ref) {
				t.Error("VM still exists")
			}
			for _, s := range snaps {
				if recordExists(t, c, "VM", s) {
					t.Errorf("snapshot %s still exists", s)
				}
			}
			survivors := 0
			for i, d := range append(disks, snapDisks...) {
				got := recordExists(t, c, "VDI", d)
				if got {
					survivors++
				}
				if tt.sharedDisk && got != (i == 0) {
					t.Errorf("VDI %s exists = %v, want %v", d, got, i == 0)
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.sharedDisk || tt.failedDisk]; survivors != want {
				t.Errorf("%d disks survive, want %d", survivors, want)
			}
			task, err := xapi.GetRecord[xapi.Task](t.Context(), c, report.Task)
			if err != nil {
				t.Fatal(err)
			}
			if tt.failedDisk {
				if task.Status != xapi.TaskFailure || len(task.ErrorInfo) != 4 || task.ErrorInfo[0] != xo.DestroyTaskFailure {
					t.Fatalf("task %s %q, want a failure describing the destruction", task.Status, task.ErrorInfo)
				}
				if !strings.Contains(task.ErrorInfo[2], "VM "+vm.UUID) || !strings.HasPrefix(task.ErrorInfo[3], "not deleted: VDI ") {
					t.Errorf("task error_info %q does not say what was deleted", task.ErrorInfo)
				}
				if len(report.NotDeleted) != 1 {
					t.Errorf("NotDeleted = %q", report.NotDeleted)
				}
				return
			}
			if task.Status != xapi.TaskSuccess {
				t.Fatalf("task %s %q", task.Status, task.ErrorInfo)
			}
			if !slices.Contains(report.Deleted, "VM "+vm.UUID) {
				t.Errorf("Deleted = %q", report.Deleted)
			}
			var result []string
			if _, err := xapi.DecodeValue(task.Result, &result); err != nil || !slices.Equal(result, report.Deleted) {
				t.Errorf("task result %q (%v), want %q", task.Result, err, report.Deleted)
			}
		})
	}
}

func TestDestroyVMDefaultTemplate(t *testing.T) {
	srv := xapisim.NewServer(t, xapisim.Default())
	c := newClient(t, srv)
	vms, err := c.VMs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for ref, vm := range vms {
		if vm.IsDefaultTemplate {
			if _, err := xo.DestroyVM(t.Context(), c, ref); !errors.Is(err, xo.ErrDefaultTemplate) {
				t.Fatalf("err = %v, want ErrDefaultTemplate", err)
			}
			if !recordExists(t, c, "VM", ref) {
				t.Fatal("default template destroyed")
			}
			return
		}
	}
	t.Fatal("no default template in the model")
}
