package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// patchField is a property PATCH may set.
type patchField struct {
	name   string // the XAPI field, and the body key
	alias  string // XO 0.39's camelCase key (vms only), or ""
	isList bool   // a string array (tags), else a string
}

// patchFields are the properties PATCH sets, in the order it sets them.
func patchFields() []patchField {
	return []patchField{
		{name: "name_label", alias: "nameLabel"},
		{name: "name_description", alias: "nameDescription"},
		{name: "tags", isList: true},
	}
}

// patchSchema is the JSON schema of a PATCH body on c.
func patchSchema(c writable) map[string]any {
	props := map[string]any{}
	for _, f := range patchFields() {
		var schema map[string]any
		if f.isList {
			schema = map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Replaces the whole tag set"}
		} else {
			schema = map[string]any{"type": "string"}
		}
		props[f.name] = schema
		if c.camel && f.alias != "" {
			props[f.alias] = map[string]any{"type": "string", "description": "Same as " + f.name}
		}
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

// patchRoutes returns PATCH /rest/v0/<c>/<id>.
func (s *server) patchRoutes(c writable) []route {
	return []route{{
		method: "PATCH", pattern: BasePath + "/" + c.name + "/{id}", handler: s.patch(c), tag: c.name,
		summary: "Update the name, description or tags of one " + c.noun,
		body:    bodyDoc{schema: patchSchema(c)},
		resp:    noContent("XAPI has applied every change"),
	}}
}

// patchSet is one validated change: the XAPI setter and its argument.
type patchSet struct {
	method string
	value  any
}

// parsePatch validates a PATCH body on c and returns the XAPI setters to
// call. obj is the current object, to tell read-only fields from unknown
// ones. Every problem is reported at once (422).
func parsePatch(c writable, obj map[string]any, body map[string]json.RawMessage) ([]patchSet, error) {
	var errs []fieldError
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	known := map[string]bool{}
	for _, f := range patchFields() {
		known[f.name] = true
		if c.camel && f.alias != "" {
			known[f.alias] = true
		}
	}
	for _, k := range keys {
		if known[k] {
			continue
		}
		if _, ok := obj[k]; ok {
			errs = append(errs, fieldError{k, "read-only field"})
		} else {
			errs = append(errs, fieldError{k, "unknown field"})
		}
	}
	var sets []patchSet
	for _, f := range patchFields() {
		raw, ok := body[f.name]
		key := f.name
		if c.camel && f.alias != "" {
			if araw, aok := body[f.alias]; aok {
				if ok {
					errs = append(errs, fieldError{f.alias, "conflicts with " + f.name})
					continue
				}
				raw, ok, key = araw, true, f.alias
			}
		}
		if !ok {
			continue
		}
		if string(raw) == "null" {
			errs = append(errs, fieldError{key, "must not be null"})
			continue
		}
		method := c.class + ".set_" + f.name
		if f.isList {
			var tags []string
			if err := json.Unmarshal(raw, &tags); err != nil {
				errs = append(errs, fieldError{key, "must be an array of strings"})
				continue
			}
			if tags == nil {
				tags = []string{}
			}
			if i := slices.Index(tags, ""); i >= 0 {
				errs = append(errs, fieldError{fmt.Sprintf("%s[%d]", key, i), "must not be empty"})
				continue
			}
			sets = append(sets, patchSet{method, tags})
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			errs = append(errs, fieldError{key, "must be a string"})
			continue
		}
		sets = append(sets, patchSet{method, v})
	}
	if len(errs) > 0 {
		return nil, invalidFields(errs)
	}
	return sets, nil
}

// patch answers PATCH /rest/v0/<c>/<id>: the body is validated whole,
// then the setters run in order; 204 once XAPI has applied them all.
func (s *server) patch(c writable) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
			return BadRequest("the body must be JSON (Content-Type: application/json)", map[string]any{"contentType": ct})
		}
		body, err := s.readJSONObject(w, r, false)
		if err != nil {
			return err
		}
		obj, pool, ref, err := s.target(ctx, c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		sets, err := parsePatch(c, obj, body)
		if err != nil {
			return err
		}
		for _, set := range sets {
			if _, err := pool.Client().Call(ctx, set.method, ref, set.value); err != nil {
				return fmt.Errorf("%s %s: %w", set.method, ref, err)
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
