package xo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// Errors of DestroyVM that are not XAPI's.
var (
	// ErrDestroyBlocked: the VM's blocked_operations holds "destroy"
	// (XO's forbiddenOperation, 403). DestroyError.Reason has the reason.
	ErrDestroyBlocked = errors.New("xo: destroy is blocked")
	// ErrDefaultTemplate: default templates are not destroyed (XO's
	// incorrectState, 409).
	ErrDefaultTemplate = errors.New("xo: cannot destroy a default template")
	// ErrVMRunning: the VM is running or paused; it must be shut down
	// first (incorrect state, 409).
	ErrVMRunning = errors.New("xo: the VM must be halted")
)

// DestroyTaskFailure is the error code DestroyVM writes first in the
// error_info of its task when it failed; the other entries are the cause,
// then "deleted: <what>" and "not deleted: <what>".
const DestroyTaskFailure = "XOREST_DESTROY_INCOMPLETE"

// DestroyReport says what DestroyVM deleted and what it did not. Entries
// are "<class> <uuid>" (e.g. "VM 1b2…", "VDI 9f0…").
type DestroyReport struct {
	// Task is the XAPI task (task.create) the destruction is reported on:
	// on success its result is the list Deleted; on failure its error_info
	// is DestroyTaskFailure, the cause, "deleted: …" and "not deleted: …".
	// Empty when the destruction was refused before anything was done.
	Task xapi.Ref
	// Deleted are the objects destroyed.
	Deleted []string
	// NotDeleted are the objects that should have been destroyed and were
	// not, because of an error.
	NotDeleted []string
}

// DestroyError is the error of DestroyVM: the cause, with the report of
// what was done.
type DestroyError struct {
	Err    error         // the cause: an *xapi.Error or one of the Err* above
	Reason string        // for ErrDestroyBlocked: the blocked operation's reason
	Report DestroyReport // what was and was not deleted
}

// Error returns the cause with what was not deleted.
func (e *DestroyError) Error() string {
	msg := "destroying VM: " + e.Err.Error()
	if len(e.Report.NotDeleted) > 0 {
		msg += " (not deleted: " + strings.Join(e.Report.NotDeleted, ", ") + ")"
	}
	return msg
}

// Unwrap returns the cause.
func (e *DestroyError) Unwrap() error { return e.Err }

// DestroyVM destroys a VM, a template or a VM snapshot as XO does
// (@xen-orchestra/xapi vm.mjs destroy, reference §F.5): the VM itself,
// then its snapshots (recursively, the same way), then the disks that
// belonged only to it — the VDIs of its Disk VBDs that no other VM but a
// control domain still uses. XAPI's VM.destroy alone keeps the disks.
//
// Unlike XO it refuses a running or paused VM (ErrVMRunning) instead of
// shutting it down; a suspended VM is hard-shut-down first (its suspend
// image goes), as XO does. A VM whose blocked_operations holds destroy gives
// ErrDestroyBlocked, a default template ErrDefaultTemplate; nothing is done
// then.
//
// The work is reported on an XAPI task created with task.create
// (name_label "REST API: destroy <kind>", other_config applies_to = the
// VM's uuid): once the VM is destroyed, a failure to destroy a snapshot or a
// disk does not stop the others, and the task ends as a failure listing what
// was and was not deleted (XO only logged these). Every error is a
// *DestroyError holding the report.
func DestroyVM(ctx context.Context, c *xapi.Client, ref xapi.Ref) (*DestroyReport, error) {
	vm, err := xapi.GetRecord[xapi.VM](ctx, c, ref)
	if err != nil {
		return nil, &DestroyError{Err: fmt.Errorf("VM.get_record %s: %w", ref, err)}
	}
	if reason, ok := vm.BlockedOperations["destroy"]; ok {
		return nil, &DestroyError{Err: ErrDestroyBlocked, Reason: reason}
	}
	if vm.IsDefaultTemplate || vm.OtherConfig["default_template"] == "true" {
		return nil, &DestroyError{Err: ErrDefaultTemplate}
	}
	if vm.PowerState == "Running" || vm.PowerState == "Paused" {
		return nil, &DestroyError{Err: fmt.Errorf("%w: it is %s", ErrVMRunning, vm.PowerState)}
	}
	kind := "VM"
	switch {
	case vm.IsASnapshot:
		kind = "VM-snapshot"
	case vm.IsATemplate:
		kind = "VM-template"
	}
	var task xapi.Ref
	if err := c.CallInto(ctx, &task, "task.create", "REST API: destroy "+kind, vm.NameLabel); err != nil {
		return nil, &DestroyError{Err: fmt.Errorf("task.create: %w", err)}
	}
	// applies_to links the task to the VM (properties.objectId); not vital.
	_, _ = c.Call(ctx, "task.add_to_other_config", task, "applies_to", vm.UUID)

	d := &destroyer{c: c, report: DestroyReport{Task: task}}
	err = d.destroy(ctx, ref, vm)
	if err == nil && len(d.report.NotDeleted) > 0 {
		err = d.firstErr
	}
	if err != nil {
		info := []string{DestroyTaskFailure, err.Error(),
			"deleted: " + strings.Join(d.report.Deleted, ", "),
			"not deleted: " + strings.Join(d.report.NotDeleted, ", ")}
		if _, ferr := c.Call(ctx, "task.set_error_info", task, info); ferr == nil {
			_, _ = c.Call(ctx, "task.set_status", task, xapi.TaskFailure)
		}
		return &d.report, &DestroyError{Err: err, Report: d.report}
	}
	if frag, ferr := EncodeValue(d.report.Deleted); ferr == nil {
		_, _ = c.Call(ctx, "task.set_result", task, frag)
	}
	_, _ = c.Call(ctx, "task.set_progress", task, 1.0)
	_, _ = c.Call(ctx, "task.set_status", task, xapi.TaskSuccess)
	return &d.report, nil
}

// destroyer runs one DestroyVM and collects its report.
type destroyer struct {
	c        *xapi.Client
	report   DestroyReport
	firstErr error // the first cleanup failure
}

func (d *destroyer) failed(what string, err error) {
	d.report.NotDeleted = append(d.report.NotDeleted, what)
	if d.firstErr == nil {
		d.firstErr = fmt.Errorf("%s: %w", what, err)
	}
}

// destroy destroys vm (record rec), then its snapshots and exclusive disks.
// It returns an error only when the VM itself could not be destroyed;
// cleanup failures are recorded.
func (d *destroyer) destroy(ctx context.Context, ref xapi.Ref, rec *xapi.VM) error {
	c := d.c
	self := "VM " + rec.UUID
	// Collect the disks before the VBDs go with the VM.
	type disk struct {
		ref  xapi.Ref
		uuid string
	}
	var disks []disk
	for _, vbdRef := range rec.VBDs {
		vbd, err := xapi.GetRecord[xapi.VBD](ctx, c, vbdRef)
		if err != nil {
			if errors.Is(err, xapi.ErrHandleInvalid) {
				continue
			}
			return fmt.Errorf("VBD.get_record %s: %w", vbdRef, err)
		}
		if vbd.Type != "Disk" || vbd.VDI.IsNull() {
			continue
		}
		var uuid string
		if err := c.CallInto(ctx, &uuid, "VDI.get_uuid", vbd.VDI); err != nil {
			if errors.Is(err, xapi.ErrHandleInvalid) {
				continue
			}
			return fmt.Errorf("VDI.get_uuid %s: %w", vbd.VDI, err)
		}
		disks = append(disks, disk{vbd.VDI, uuid})
	}
	if rec.PowerState == "Suspended" {
		if _, err := c.CallAsyncWait(ctx, "VM.hard_shutdown", ref); err != nil {
			d.report.NotDeleted = append(d.report.NotDeleted, self)
			return fmt.Errorf("VM.hard_shutdown %s: %w", rec.UUID, err)
		}
	}
	if rec.IsATemplate {
		if _, err := c.Call(ctx, "VM.set_is_a_template", ref, false); err != nil && !rec.IsASnapshot {
			d.report.NotDeleted = append(d.report.NotDeleted, self)
			return fmt.Errorf("VM.set_is_a_template %s: %w", rec.UUID, err)
		}
	}
	if _, err := c.CallAsyncWait(ctx, "VM.destroy", ref); err != nil {
		d.report.NotDeleted = append(d.report.NotDeleted, self)
		return fmt.Errorf("VM.destroy %s: %w", rec.UUID, err)
	}
	d.report.Deleted = append(d.report.Deleted, self)

	for _, snapRef := range rec.Snapshots {
		snap, err := xapi.GetRecord[xapi.VM](ctx, c, snapRef)
		if err != nil {
			if !errors.Is(err, xapi.ErrHandleInvalid) {
				d.failed("VM-snapshot "+string(snapRef), err)
			}
			continue
		}
		if err := d.destroy(ctx, snapRef, snap); err != nil {
			d.failed("VM-snapshot "+snap.UUID, err)
		}
	}
	for _, vdi := range disks {
		used, err := usedByOthers(ctx, c, vdi.ref, ref)
		switch {
		case errors.Is(err, xapi.ErrHandleInvalid):
			continue // gone already
		case err != nil:
			d.failed("VDI "+vdi.uuid, err)
			continue
		case used:
			continue // shared with another VM: not this VM's to delete
		}
		if _, err := c.CallAsyncWait(ctx, "VDI.destroy", vdi.ref); err != nil && !errors.Is(err, xapi.ErrHandleInvalid) {
			d.failed("VDI "+vdi.uuid, err)
			continue
		}
		d.report.Deleted = append(d.report.Deleted, "VDI "+vdi.uuid)
	}
	return nil
}

// usedByOthers reports whether VDI vdi is attached through a VBD to a VM
// other than vm that is not a control domain.
func usedByOthers(ctx context.Context, c *xapi.Client, vdi, vm xapi.Ref) (bool, error) {
	var vbds []xapi.Ref
	if err := c.CallInto(ctx, &vbds, "VDI.get_VBDs", vdi); err != nil {
		return false, fmt.Errorf("VDI.get_VBDs %s: %w", vdi, err)
	}
	for _, vbd := range vbds {
		var owner xapi.Ref
		if err := c.CallInto(ctx, &owner, "VBD.get_VM", vbd); err != nil {
			if errors.Is(err, xapi.ErrHandleInvalid) {
				continue
			}
			return false, fmt.Errorf("VBD.get_VM %s: %w", vbd, err)
		}
		if owner == vm {
			continue
		}
		var dom0 bool
		if err := c.CallInto(ctx, &dom0, "VM.get_is_control_domain", owner); err != nil {
			if errors.Is(err, xapi.ErrHandleInvalid) {
				continue
			}
			return false, fmt.Errorf("VM.get_is_control_domain %s: %w", owner, err)
		}
		if !dom0 {
			return true, nil
		}
	}
	return false, nil
}
