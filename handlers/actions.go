package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// Actions (reference §F, §C.4). POST /rest/v0/<collection>/<id>/actions/<action>
// validates its JSON body against the action's parameters (422 listing
// every problem, before any XAPI call), creates an XAPI task with
// task.create ("REST API: <action> <type>", other_config.applies_to = the
// object's uuid) and runs the action as a job (jobs.go), detached from the
// request: the task ends with the action's result (success) or its XAPI
// error (failure, error_info = [code, params…]).
//
//   - By default the answer is 202, Location: /rest/v0/tasks/<task uuid>,
//     and the task URL as a plain-text body (the seed's form).
//   - With ?sync the handler waits for the task: 200 with the result as
//     JSON, 204 for actions without a result, or the error rendered with
//     the status table (XAPI's code and parameters in data). The wait is
//     bounded by Config.WaitTimeout and by the request's deadline (a
//     gateway's limit); past that bound the answer is the 202 above. A
//     client that leaves does not stop the work; the task shows how it
//     ended.
//
// Discovery (the seed's): GET /rest/v0/<collection>/_/actions lists the
// action URLs (fields, filter, ndjson… apply), GET …/_/actions/<action>
// answers {"params": <XO JSON schema>} ({} without parameters).

// actionParam is one parameter of an action, in XO's JSON schema dialect:
// required unless optional; strings non-empty.
type actionParam struct {
	name string
	typ  string // "string", "boolean", "integer" or "array" (of objects)
	// enum, for a string, lists its allowed values.
	enum        []string
	optional    bool
	description string
	// kind: the parameter is the id of an object of this xo kind in the
	// same pool; it is resolved to the object's XAPI ref (actionCall.refs).
	kind string
	// items are the members of the objects of an "array" parameter.
	items []actionParam
}

// action is one action of a collection.
type action struct {
	name    string
	summary string
	params  []actionParam
	// run does the work; its result is nil for actions without one, else a
	// JSON-ready value recorded as the task's result.
	run func(ctx context.Context, a *actionCall) (any, error)
	// created is the collection of the object whose {"id"} run returns,
	// for the Location of a ?sync answer; "" otherwise.
	created string
	// check, if set, reports problems among valid parameters (conflicts,
	// dependencies) as field errors, before anything runs.
	check func(args map[string]any) []fieldError
	// ready, if set, reports why the server cannot run the action (a
	// missing configuration), before anything runs.
	ready func(s *server, args map[string]any) error
}

// actionCall is one invocation of an action.
type actionCall struct {
	srv    *server
	task   xapi.Ref // the task the action reports on
	client *xapi.Client
	pool   *xo.Pool
	ref    xapi.Ref  // the object acted on
	obj    xo.Object // the object, as it was when the request came
	args   map[string]any
	refs   map[string]xapi.Ref // resolved object parameters
}

// str returns a string argument, or def when absent.
func (a *actionCall) str(name, def string) string {
	if v, ok := a.args[name].(string); ok {
		return v
	}
	return def
}

// void runs method(ref) as an XAPI task and has no result.
func void(method string, extra ...any) func(context.Context, *actionCall) (any, error) {
	return func(ctx context.Context, a *actionCall) (any, error) {
		_, err := a.client.CallAsyncWait(ctx, method, append([]any{a.ref}, extra...)...)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, a.ref, err)
		}
		return nil, nil
	}
}

// actionCollection is a collection with actions.
type actionCollection struct {
	name, kind, typ string // URL segment, xo kind, type named in task names
	actions         []action
}

// actionCollections returns every collection with actions.
func actionCollections() []actionCollection {
	return []actionCollection{
		{name: "vms", kind: "VM", typ: "VM", actions: append(vmActions(), exportVMAction("vms"))},
		{name: "vm-snapshots", kind: "VM-snapshot", typ: "VM-snapshot", actions: append(vmSnapshotActions(), exportVMAction("vm-snapshots"))},
		{name: "vm-templates", kind: "VM-template", typ: "VM-template", actions: append(vmTemplateActions(), exportVMAction("vm-templates"))},
		{name: "pools", kind: "pool", typ: "pool", actions: poolActions()},
		{name: "hosts", kind: "host", typ: "host", actions: hostActions()},
		{name: "srs", kind: "SR", typ: "SR", actions: srActions()},
		{name: "vdis", kind: "VDI", typ: "VDI", actions: append(vdiActions(), exportDiskAction("vdis"))},
		{name: "vdi-snapshots", kind: "VDI-snapshot", typ: "VDI-snapshot", actions: []action{exportDiskAction("vdi-snapshots")}},
		{name: "vbds", kind: "VBD", typ: "VBD", actions: plugActions("VBD")},
		{name: "vifs", kind: "VIF", typ: "VIF", actions: plugActions("VIF")},
	}
}

// xoSchema is the action's parameters in XO's JSON schema dialect, as
// discovery shows them; nil without parameters.
func (act action) xoSchema() map[string]any {
	if len(act.params) == 0 {
		return nil
	}
	return xoProperties(act.params)
}

// xoProperties is params in XO's dialect: properties required unless
// optional.
func xoProperties(params []actionParam) map[string]any {
	props := map[string]any{}
	for _, p := range params {
		s := map[string]any{"type": p.typ}
		if p.optional {
			s["optional"] = true
		}
		if p.enum != nil {
			s["enum"] = p.enum
		}
		if p.description != "" {
			s["description"] = p.description
		}
		if p.typ == "array" {
			s["items"] = map[string]any{"type": "object", "properties": xoProperties(p.items)}
		}
		props[p.name] = s
	}
	return props
}

// openAPISchema is the action's body as standard JSON schema.
func (act action) openAPISchema() map[string]any { return objectSchema(act.params) }

// objectSchema is an object of params in standard JSON schema.
func objectSchema(params []actionParam) map[string]any {
	props := map[string]any{}
	var required []string
	for _, p := range params {
		s := map[string]any{"type": p.typ}
		switch p.typ {
		case "string":
			s["minLength"] = 1
			if p.enum != nil {
				s["enum"] = p.enum
			}
		case "integer":
			s["minimum"] = 0
		case "array":
			s["items"] = objectSchema(p.items)
		}
		if p.description != "" {
			s["description"] = p.description
		}
		props[p.name] = s
		if !p.optional {
			required = append(required, p.name)
		}
	}
	schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		schema["required"] = required
	}
	return schema
}

// actionRoutes returns the discovery and invocation routes of every
// action.
func (s *server) actionRoutes() []route {
	var routes []route
	for _, c := range actionCollections() {
		base := BasePath + "/" + c.name
		routes = append(routes,
			route{
				method: "GET", pattern: base + "/_/actions", handler: s.listActions(c), tag: c.name,
				summary: "List the actions of the " + c.name,
				params:  collectionParams,
				resp:    collectionResp("The action URLs, or objects {id, params} with fields"),
			},
			route{
				method: "GET", pattern: base + "/_/actions/{action}", handler: s.getAction(c), tag: c.name,
				summary: "Describe one action of the " + c.name + ": {params: its parameters in XO's JSON schema}",
				resp:    objectResp("{\"params\": schema}, or {} for an action without parameters"),
			})
		for _, act := range c.actions {
			r := route{
				method: "POST", pattern: base + "/{id}/actions/" + act.name, handler: s.runAction(c, act), tag: c.name,
				summary: act.summary,
				params:  []string{"sync"},
				resp: respDoc{status: http.StatusAccepted, types: []string{"text/plain"},
					description: "The action runs as an XAPI task: its URL is the body and the Location. With sync: 200 and the result as JSON, or 204 for an action without result"},
			}
			if len(act.params) > 0 {
				r.body = bodyDoc{schema: act.openAPISchema()}
			}
			routes = append(routes, r)
		}
	}
	return routes
}

// listActions answers GET /rest/v0/<collection>/_/actions.
func (s *server) listActions(c actionCollection) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		items := func(yield func(map[string]any) bool) {
			for _, act := range c.actions {
				item := map[string]any{"id": act.name}
				if p := act.xoSchema(); p != nil {
					item["params"] = p
				}
				if !yield(item) {
					return
				}
			}
		}
		return WriteCollection(w, r, queryOf(r), items, HrefIn(BasePath+"/"+c.name+"/_/actions"))
	}
}

// getAction answers GET /rest/v0/<collection>/_/actions/<action>.
func (s *server) getAction(c actionCollection) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("action")
		i := slices.IndexFunc(c.actions, func(a action) bool { return a.name == name })
		if i < 0 {
			return NotFound("action", name)
		}
		body := map[string]any{}
		if p := c.actions[i].xoSchema(); p != nil {
			body["params"] = p
		}
		w.Header().Set("Content-Type", contentJSON)
		_, err := w.Write(appendJSON(nil, body, true, 0))
		return err
	}
}

// validateArgs checks body against act's parameters and resolves object
// parameters in pool; every problem is reported at once (422).
func validateArgs(act action, pool *xo.Pool, body map[string]json.RawMessage) (map[string]any, map[string]xapi.Ref, error) {
	var errs []fieldError
	args, refs := validateMembers(act.params, pool, body, "", &errs)
	if len(errs) == 0 && act.check != nil {
		errs = act.check(args)
	}
	if len(errs) > 0 {
		return nil, nil, invalidFields(errs)
	}
	return args, refs, nil
}

// validateMembers checks the members of one JSON object against params
// (field names in errors are prefixed with prefix) and returns the decoded
// arguments and the resolved object parameters. Arrays of objects are
// checked element by element; in their elements, object parameters are
// replaced by their xapi.Ref.
func validateMembers(params []actionParam, pool *xo.Pool, body map[string]json.RawMessage, prefix string, errs *[]fieldError) (map[string]any, map[string]xapi.Ref) {
	args := map[string]any{}
	refs := map[string]xapi.Ref{}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if !slices.ContainsFunc(params, func(p actionParam) bool { return p.name == k }) {
			*errs = append(*errs, fieldError{prefix + k, "unknown parameter"})
		}
	}
	for _, p := range params {
		name := prefix + p.name
		raw, ok := body[p.name]
		if !ok {
			if !p.optional {
				*errs = append(*errs, fieldError{name, "is required"})
			}
			continue
		}
		if string(raw) == "null" {
			*errs = append(*errs, fieldError{name, "must not be null"})
			continue
		}
		var v any
		switch p.typ {
		case "string":
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				*errs = append(*errs, fieldError{name, "must be a string"})
				continue
			}
			if s == "" {
				*errs = append(*errs, fieldError{name, "must not be empty"})
				continue
			}
			if p.enum != nil && !slices.Contains(p.enum, s) {
				*errs = append(*errs, fieldError{name, "must be one of " + strings.Join(p.enum, ", ")})
				continue
			}
			v = s
		case "boolean":
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				*errs = append(*errs, fieldError{name, "must be a boolean"})
				continue
			}
			v = b
		case "integer":
			var n int64
			if err := json.Unmarshal(raw, &n); err != nil || n < 0 {
				*errs = append(*errs, fieldError{name, "must be a non-negative integer"})
				continue
			}
			v = n
		case "array":
			var elems []json.RawMessage
			if err := json.Unmarshal(raw, &elems); err != nil {
				*errs = append(*errs, fieldError{name, "must be an array of objects"})
				continue
			}
			list := make([]map[string]any, 0, len(elems))
			for i, e := range elems {
				var members map[string]json.RawMessage
				if err := json.Unmarshal(e, &members); err != nil || members == nil {
					*errs = append(*errs, fieldError{fmt.Sprintf("%s[%d]", name, i), "must be an object"})
					continue
				}
				elem, elemRefs := validateMembers(p.items, pool, members, fmt.Sprintf("%s[%d].", name, i), errs)
				for k, r := range elemRefs {
					elem[k] = r
				}
				list = append(list, elem)
			}
			v = list
		}
		if p.kind != "" {
			id := v.(string)
			var ref xapi.Ref
			ok := false
			if obj, err := pool.Object(p.kind, id); err == nil {
				ref, ok = pool.Ref(idString(obj["id"]))
			}
			if !ok {
				*errs = append(*errs, fieldError{name, "no such " + p.kind + " " + id + " in the pool"})
				continue
			}
			refs[p.name] = ref
		}
		args[p.name] = v
	}
	return args, refs
}

// runAction answers POST /rest/v0/<collection>/<id>/actions/<action>.
func (s *server) runAction(c actionCollection, act action) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := s.readJSONObject(w, r, true)
		if err != nil {
			return err
		}
		obj, pool, _, err := s.target(r.Context(), c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		// Validated here for the 422, again by the job where it runs.
		args, _, err := validateArgs(act, pool, body)
		if err != nil {
			return err
		}
		if act.ready != nil {
			if err := act.ready(s, args); err != nil {
				return err
			}
		}
		uuid := idString(obj["uuid"])
		return s.startJob(w, r, jobStart{
			Pool: pool, Name: "REST API: " + act.name + " " + c.typ, AppliesTo: uuid,
			Kind: "action", Params: actionJob{Collection: c.name, Action: act.name, Object: uuid, Args: body},
			Sync: queryOf(r).Sync,
			Done: func(w http.ResponseWriter, result any) error {
				if result == nil {
					w.WriteHeader(http.StatusNoContent)
					return nil
				}
				if m, ok := result.(map[string]any); ok && act.created != "" {
					w.Header().Set("Location", BasePath+"/"+act.created+"/"+idString(m["id"]))
				}
				w.Header().Set("Content-Type", contentJSON)
				_, err := w.Write(appendJSON(nil, result, true, 0))
				return err
			},
		})
	}
}

// findAction returns the action of that name of that collection.
func findAction(collection, name string) (actionCollection, action, bool) {
	for _, c := range actionCollections() {
		if c.name != collection {
			continue
		}
		for _, act := range c.actions {
			if act.name == name {
				return c, act, true
			}
		}
	}
	return actionCollection{}, action{}, false
}

// startTask creates the XAPI task an action reports on and returns its
// ref and uuid.
func startTask(ctx context.Context, c *xapi.Client, name, objectUUID string) (xapi.Ref, string, error) {
	var task xapi.Ref
	if err := c.CallInto(ctx, &task, "task.create", name, ""); err != nil {
		return "", "", fmt.Errorf("task.create: %w", err)
	}
	var id string
	if err := c.CallInto(ctx, &id, "task.get_uuid", task); err != nil {
		endTask(ctx, c, task, nil, err) // nobody will follow it: do not leave it pending
		return "", "", fmt.Errorf("task.get_uuid %s: %w", task, err)
	}
	if objectUUID != "" {
		// applies_to links the task to the object (properties.objectId);
		// the action does not depend on it.
		_, _ = c.Call(ctx, "task.add_to_other_config", task, "applies_to", objectUUID)
	}
	return task, id, nil
}

// endTask records the outcome of an action on its task: the result and
// success, or the XAPI error (any other error as INTERNAL_ERROR) and
// failure; an error of this package's kinds is recorded with its
// jobErrorCodes code and its message. Failures to record are lost with
// the task's state: there is nobody left to tell.
func endTask(ctx context.Context, c *xapi.Client, task xapi.Ref, result any, err error) {
	if err != nil {
		info := []string{"INTERNAL_ERROR", err.Error()}
		if xe, ok := errors.AsType[*xapi.Error](err); ok {
			info = append([]string{xe.Code}, redactXAPIParams(xe)...)
		} else if code := jobErrorCode(err); code != "" {
			_, body := describe(err)
			info = []string{code, body.Error}
		}
		_, _ = c.Call(ctx, "task.set_error_info", task, info)
		_, _ = c.Call(ctx, "task.set_status", task, xapi.TaskFailure)
		return
	}
	if result != nil {
		if frag, err := xo.EncodeValue(result); err == nil {
			_, _ = c.Call(ctx, "task.set_result", task, frag)
		}
	}
	_, _ = c.Call(ctx, "task.set_progress", task, 1.0)
	_, _ = c.Call(ctx, "task.set_status", task, xapi.TaskSuccess)
}
