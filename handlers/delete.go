package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// deleteRoutes returns DELETE on VMs (with templates and snapshots) and on
// VDIs (with VDI snapshots).
func (s *server) deleteRoutes() []route {
	var routes []route
	for _, c := range []struct{ name, kind, noun string }{
		{"vms", "VM", "VM"}, {"vm-templates", "VM-template", "VM template"}, {"vm-snapshots", "VM-snapshot", "VM snapshot"},
	} {
		routes = append(routes, route{
			method: "DELETE", pattern: BasePath + "/" + c.name + "/{id}", handler: s.deleteVM(c.kind), tag: c.name,
			summary: "Delete one " + c.noun + " with its snapshots and the disks only it uses (a running or paused VM is refused: 409; a blocked destroy: 403)",
			resp:    noContent("Everything is deleted (a failure after the VM is gone is a 500 naming the XAPI task that lists what was and was not deleted)"),
		})
	}
	for _, c := range []struct{ name, kind, noun string }{{"vdis", "VDI", "VDI"}, {"vdi-snapshots", "VDI-snapshot", "VDI snapshot"}} {
		routes = append(routes, route{
			method: "DELETE", pattern: BasePath + "/" + c.name + "/{id}", handler: s.deleteVDI(c.kind), tag: c.name,
			summary: "Delete one " + c.noun + " (VDI.destroy; a disk in use is refused: 409)",
			resp:    noContent("The disk is deleted"),
		})
	}
	return routes
}

// deleteVM answers DELETE on a VM, template or VM snapshot with XO's
// procedure (xo.DestroyVM). The work goes on if the client leaves.
func (s *server) deleteVM(kind string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		obj, pool, ref, err := s.target(r.Context(), kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		id := idString(obj["id"])
		ctx, cancel := detach(r.Context())
		defer cancel()
		if _, err := xo.DestroyVM(ctx, pool.Client(), ref); err != nil {
			return destroyError(kind, id, obj, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// destroyError renders the errors of xo.DestroyVM with XO's statuses.
func destroyError(kind, id string, obj xo.Object, err error) error {
	de, ok := errors.AsType[*xo.DestroyError](err)
	if !ok {
		return err
	}
	switch {
	case errors.Is(err, xo.ErrDestroyBlocked):
		reason := de.Reason
		if reason == "" || reason == "true" {
			reason = "protected from accidental deletion"
		}
		return &Error{Kind: ErrForbidden, Message: "forbidden operation: destroy is blocked: " + reason,
			Data: map[string]any{"object": id, "operation": "destroy", "reason": de.Reason}, Err: err}
	case errors.Is(err, xo.ErrDefaultTemplate):
		return &Error{Kind: ErrIncorrectState, Message: "incorrect state: default templates cannot be deleted",
			Data: map[string]any{"object": id, "property": "is_default_template", "actual": true, "expected": false}, Err: err}
	case errors.Is(err, xo.ErrVMRunning):
		return &Error{Kind: ErrIncorrectState, Message: fmt.Sprintf("incorrect state: the %s must be halted before it is deleted", kind),
			Data: map[string]any{"object": id, "property": "power_state", "actual": obj["power_state"], "expected": "Halted"}, Err: err}
	case de.Report.Task == "":
		return de.Err // refused by XAPI before anything happened
	}
	data := map[string]any{"deleted": nonNil(de.Report.Deleted), "notDeleted": nonNil(de.Report.NotDeleted), "task": string(de.Report.Task)}
	if xe, ok := errors.AsType[*xapi.Error](err); ok {
		data["code"], data["params"] = xe.Code, redactXAPIParams(xe)
	}
	if len(de.Report.Deleted) == 0 {
		// Nothing went: the XAPI fault decides the status (e.g. 403
		// OPERATION_BLOCKED), with the report in data.
		if xe, ok := errors.AsType[*xapi.Error](err); ok {
			status, body := describeXAPI(xe)
			for _, row := range statusTable {
				if row.status == status {
					return &Error{Kind: row.kind, Message: body.Error, Data: data, Err: err}
				}
			}
		}
	}
	return &Error{Message: "delete incomplete: " + de.Error(), Data: data, Err: err}
}

// nonNil returns s, or an empty slice for nil (JSON [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// deleteVDI answers DELETE on a VDI or VDI snapshot: Async.VDI.destroy
// (a VDI gone meanwhile counts as deleted, as in XO); a disk in use is a
// 409 with XAPI's code in data.
func (s *server) deleteVDI(kind string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		obj, pool, ref, err := s.target(r.Context(), kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		ctx, cancel := detach(r.Context())
		defer cancel()
		_, err = pool.Client().CallAsyncWait(ctx, "VDI.destroy", ref)
		switch {
		case err == nil, errors.Is(err, xapi.ErrHandleInvalid):
			w.WriteHeader(http.StatusNoContent)
			return nil
		case errors.Is(err, xapi.ErrVDIInUse):
			xe, _ := errors.AsType[*xapi.Error](err)
			_, body := describeXAPI(xe)
			return &Error{Kind: ErrIncorrectState, Message: "incorrect state: the disk is in use: " + body.Error,
				Data: map[string]any{"object": idString(obj["id"]), "code": xe.Code, "params": body.Data["params"]}, Err: err}
		}
		return fmt.Errorf("VDI.destroy %s: %w", ref, err)
	}
}
