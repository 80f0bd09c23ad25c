package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// The write side of the API (reference §D, §F): property updates and tags
// (patch.go, tags.go), deletion (delete.go) and actions (actions*.go).
// Every write goes through XAPI and is answered once XAPI has applied it.
// Bodies are read whole, bounded by Config.MaxBodyBytes, and validated
// before the first XAPI call, so a refused request changes nothing.

// detachedTimeout bounds work that goes on after its client has left
// (deletions, ?sync actions): it is XAPI work the client asked for, so it
// is not cancelled with the request, but it does not run forever either.
const detachedTimeout = time.Hour

// writable is a collection whose objects have XAPI's name_label,
// name_description and tags: they can be updated with PATCH and tagged.
type writable struct {
	name  string // URL segment
	kind  string // xo kind
	class string // XAPI class
	noun  string // for the documentation
	// camel: the collection also accepts XO 0.39's nameLabel and
	// nameDescription (vms).
	camel bool
}

// writableCollections are the collections whose XAPI class has
// name_label, name_description and tags, all read-write. VBDs, VIFs, PBDs,
// PIFs, messages and tasks have none of them (or not all read-write),
// SMs have read-only names; PCIs and PGPUs have no tags.
func writableCollections() []writable {
	return []writable{
		{name: "vms", kind: "VM", class: "VM", noun: "VM", camel: true},
		{name: "vm-templates", kind: "VM-template", class: "VM", noun: "VM template"},
		{name: "vm-snapshots", kind: "VM-snapshot", class: "VM", noun: "VM snapshot"},
		{name: "vm-controllers", kind: "VM-controller", class: "VM", noun: "VM controller"},
		{name: "hosts", kind: "host", class: "host", noun: "host"},
		{name: "pools", kind: "pool", class: "pool", noun: "pool"},
		{name: "srs", kind: "SR", class: "SR", noun: "SR"},
		{name: "vdis", kind: "VDI", class: "VDI", noun: "VDI"},
		{name: "vdi-snapshots", kind: "VDI-snapshot", class: "VDI", noun: "VDI snapshot"},
		{name: "networks", kind: "network", class: "network", noun: "network"},
	}
}

// writeRoutes returns the routes of the write side: PATCH and tags of the
// writable collections, DELETE, and actions with their discovery.
func (s *server) writeRoutes() []route {
	var routes []route
	for _, c := range writableCollections() {
		routes = append(routes, s.patchRoutes(c)...)
		routes = append(routes, s.tagRoutes(c)...)
	}
	routes = append(routes, s.deleteRoutes()...)
	return append(routes, s.actionRoutes()...)
}

// noContent documents a 204 answer.
func noContent(description string) respDoc {
	return respDoc{status: http.StatusNoContent, description: description, types: []string{}}
}

// target finds the object of kind with id (uuid or XAPI ref) and returns
// it with its pool and XAPI ref.
func (s *server) target(ctx context.Context, kind, id string) (xo.Object, *xo.Pool, xapi.Ref, error) {
	pools, err := s.pools()
	if err != nil {
		return nil, nil, "", err
	}
	obj, pool, err := pools.Object(ctx, kind, id)
	if err != nil {
		return nil, nil, "", err
	}
	ref, ok := pool.Ref(idString(obj["id"]))
	if !ok {
		return nil, nil, "", NotFound(kind, id)
	}
	return obj, pool, ref, nil
}

// readJSONObject reads a JSON object body of at most Config.MaxBodyBytes
// and returns its members, undecoded. An empty body is an empty object
// when allowEmpty, else a 400; a body that is not one JSON object is a 400;
// an oversized one a 413.
func (s *server) readJSONObject(w http.ResponseWriter, r *http.Request, allowEmpty bool) (map[string]json.RawMessage, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &Error{Kind: ErrTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes), Err: err}
		}
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return map[string]json.RawMessage{}, nil
		}
		return nil, BadRequest("a JSON object body is required", nil)
	}
	return parseJSONObject(data)
}

// parseJSONObject parses one JSON object and returns its members,
// undecoded. Anything else (invalid JSON, another type, trailing data) is
// a 400.
func parseJSONObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &Error{Kind: ErrBadRequest, Message: "invalid JSON body: " + err.Error(), Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, BadRequest("invalid JSON body: data after the JSON value", nil)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, BadRequest("the JSON body must be an object", map[string]any{"type": jsonType(v)})
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, &Error{Kind: ErrBadRequest, Message: "invalid JSON body: " + err.Error(), Err: err}
	}
	return members, nil
}

// jsonType names the JSON type of a decoded value, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// fieldError is one entry of the data.errors list of a 422.
type fieldError struct {
	field   string
	message string
}

// invalidFields is the 422 listing every invalid field.
func invalidFields(errs []fieldError) *Error {
	list := make([]any, len(errs))
	msg := "invalid parameters:"
	for i, e := range errs {
		list[i] = map[string]any{"field": e.field, "message": e.message}
		if i > 0 {
			msg += ";"
		}
		msg += " " + e.field + ": " + e.message
	}
	return InvalidParameters(msg, map[string]any{"errors": list})
}

// detach returns a context for XAPI work that must not stop when the
// client leaves: it keeps ctx's values, not its cancellation, and ends after
// detachedTimeout.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
}
