package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// send serves method target with body (none when "") and the fixture's
// token.
func (sf *simFixture) send(t testing.TB, method, target, body string, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	sf.h.ServeHTTP(rec, req)
	return rec
}

// object reads one object back through the REST API.
func (sf *simFixture) object(t testing.TB, collection, id string) map[string]any {
	t.Helper()
	var obj map[string]any
	sf.getJSON(t, BasePath+"/"+collection+"/"+id, &obj)
	return obj
}

// errorOf decodes an error document.
func errorOf(t testing.TB, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Fatalf("status %d: body %q is not an error document (%v)", rec.Code, rec.Body, err)
	}
	return body
}

// anyID returns the id of the first object of a collection.
func (sf *simFixture) anyID(t testing.TB, collection string) string {
	t.Helper()
	var items []map[string]any
	sf.getJSON(t, BasePath+"/"+collection+"?fields=id", &items)
	if len(items) == 0 {
		t.Fatalf("no %s", collection)
	}
	return items[0]["id"].(string)
}

func TestPatchEveryWritableCollection(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	for _, c := range writableCollections() {
		t.Run(c.name, func(t *testing.T) {
			id := sf.anyID(t, c.name)
			body := `{"name_label": "renamed ` + c.name + `", "name_description": "desc/é", "tags": ["b", "a b", "a/b"]}`
			if rec := sf.send(t, "PATCH", BasePath+"/"+c.name+"/"+id, body); rec.Code != http.StatusNoContent {
				t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
			}
			obj := sf.object(t, c.name, id)
			if obj["name_label"] != "renamed "+c.name || obj["name_description"] != "desc/é" {
				t.Errorf("read back name_label %q, name_description %q", obj["name_label"], obj["name_description"])
			}
			var tags []string
			for _, tag := range obj["tags"].([]any) {
				tags = append(tags, tag.(string))
			}
			slices.Sort(tags)
			if !slices.Equal(tags, []string{"a b", "a/b", "b"}) {
				t.Errorf("read back tags %q", tags)
			}
		})
	}
}

func TestPatchVMCamelCase(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	id := sf.idOf(t, "vms", "vm1")
	rec := sf.send(t, "PATCH", BasePath+"/vms/"+id, `{"nameLabel": "camel", "nameDescription": "Camel", "tags": []}`)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	obj := sf.object(t, "vms", id)
	if obj["name_label"] != "camel" || obj["name_description"] != "Camel" || len(obj["tags"].([]any)) != 0 {
		t.Errorf("read back %q %q %v", obj["name_label"], obj["name_description"], obj["tags"])
	}
}

func TestPatchRefusedChangesNothing(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm1")
	sr := sf.idOf(t, "srs", "sr0")
	big := `{"name_label": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	tests := []struct {
		name, coll, id, body string
		contentType          string
		status               int
		inError              string
	}{
		{name: "invalid JSON", coll: "vms", id: vm, body: `{"name_label": "x",`, status: 400, inError: "invalid JSON"},
		{name: "not an object", coll: "vms", id: vm, body: `["x"]`, status: 400, inError: "must be an object"},
		{name: "trailing data", coll: "vms", id: vm, body: `{"name_label": "x"} {}`, status: 400, inError: "after the JSON value"},
		{name: "empty body", coll: "vms", id: vm, body: ` `, status: 400, inError: "body is required"},
		{name: "not JSON", coll: "vms", id: vm, body: `name_label=x`, contentType: "application/x-www-form-urlencoded", status: 400, inError: "must be JSON"},
		{name: "oversized", coll: "vms", id: vm, body: big, status: 413, inError: "larger than"},
		{name: "unknown field", coll: "vms", id: vm, body: `{"name_label": "x", "colour": "red"}`, status: 422, inError: "colour: unknown field"},
		{name: "read-only field", coll: "vms", id: vm, body: `{"name_label": "x", "power_state": "Halted"}`, status: 422, inError: "power_state: read-only field"},
		{name: "wrong type", coll: "vms", id: vm, body: `{"name_label": 3}`, status: 422, inError: "name_label: must be a string"},
		{name: "null", coll: "vms", id: vm, body: `{"name_description": null, "name_label": "x"}`, status: 422, inError: "must not be null"},
		{name: "tags not strings", coll: "vms", id: vm, body: `{"name_label": "x", "tags": ["a", 1]}`, status: 422, inError: "array of strings"},
		{name: "empty tag", coll: "vms", id: vm, body: `{"name_label": "x", "tags": ["a", ""]}`, status: 422, inError: "tags[1]: must not be empty"},
		{name: "both spellings", coll: "vms", id: vm, body: `{"name_label": "x", "nameLabel": "y"}`, status: 422, inError: "conflicts"},
		{name: "camelCase only on vms", coll: "srs", id: sr, body: `{"nameLabel": "y"}`, status: 422, inError: "nameLabel: unknown field"},
		{name: "unknown id", coll: "vms", id: "00000000-0000-0000-0000-000000000000", body: `{"name_label": "x"}`, status: 404, inError: "no such VM"},
		{name: "object of another type", coll: "vms", id: sr, body: `{"name_label": "x"}`, status: 404, inError: "no such VM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before map[string]any
			if tt.status != http.StatusNotFound {
				before = sf.object(t, tt.coll, tt.id)
			}
			var opts []func(*http.Request)
			if tt.contentType != "" {
				opts = append(opts, header("Content-Type", tt.contentType))
			}
			rec := sf.send(t, "PATCH", BasePath+"/"+tt.coll+"/"+tt.id, tt.body, opts...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if body := errorOf(t, rec); !strings.Contains(body.Error, tt.inError) {
				t.Errorf("error %q does not contain %q", body.Error, tt.inError)
			}
			if before == nil {
				return
			}
			after := sf.object(t, tt.coll, tt.id)
			for _, k := range []string{"name_label", "name_description", "tags"} {
				if !sameJSON(before[k], after[k]) {
					t.Errorf("%s changed from %v to %v", k, before[k], after[k])
				}
			}
		})
	}
}

// sameJSON compares two JSON-ready values.
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestPatchXAPIFailureIsReported(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vm := sf.idOf(t, "vms", "vm1")
	remove := sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VM.set_tags", Fault: xapisim.NewFault("INTERNAL_ERROR", "disk full")})
	defer remove()
	rec := sf.send(t, "PATCH", BasePath+"/vms/"+vm, `{"tags": ["x"]}`)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if body := errorOf(t, rec); body.Data["code"] != "INTERNAL_ERROR" {
		t.Errorf("data %v", body.Data)
	}
}

func TestTags(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	type step struct {
		method, tag string // tag as sent in the URL
		want        []string
	}
	tests := []struct {
		name  string
		coll  string
		steps []step
	}{
		{name: "add and remove", coll: "vms", steps: []step{
			{"PUT", "prod", []string{"prod"}},
			{"PUT", "prod", []string{"prod"}}, // idempotent
			{"PUT", "web", []string{"prod", "web"}},
			{"DELETE", "prod", []string{"web"}},
			{"DELETE", "prod", []string{"web"}}, // idempotent
		}},
		{name: "spaces slashes unicode", coll: "srs", steps: []step{
			{"PUT", "My%20tag", []string{"My tag"}},
			{"PUT", "a%2Fb", []string{"My tag", "a/b"}},
			{"PUT", url.PathEscape("ünï/cödé ✓"), []string{"My tag", "a/b", "ünï/cödé ✓"}},
			{"DELETE", "a%2fb", []string{"My tag", "ünï/cödé ✓"}},
			{"DELETE", "My%20tag", []string{"ünï/cödé ✓"}},
		}},
		{name: "plus is not a space", coll: "hosts", steps: []step{
			{"PUT", "a+b", []string{"a+b"}},
			{"PUT", "100%25", []string{"100%", "a+b"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := sf.anyID(t, tt.coll)
			if rec := sf.send(t, "PATCH", BasePath+"/"+tt.coll+"/"+id, `{"tags": []}`); rec.Code != http.StatusNoContent {
				t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
			}
			for _, st := range tt.steps {
				rec := sf.send(t, st.method, BasePath+"/"+tt.coll+"/"+id+"/tags/"+st.tag, "")
				if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
					t.Fatalf("%s %s: %d %q", st.method, st.tag, rec.Code, rec.Body)
				}
				var got []string
				for _, tag := range sf.object(t, tt.coll, id)["tags"].([]any) {
					got = append(got, tag.(string))
				}
				slices.Sort(got)
				if !slices.Equal(got, st.want) {
					t.Fatalf("after %s %s: tags %q, want %q", st.method, st.tag, got, st.want)
				}
			}
		})
	}
}

func TestTagsErrors(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	vbd := sf.anyID(t, "vbds")
	tests := []struct {
		name, method, target string
		status               int
	}{
		{"unknown VM", "PUT", BasePath + "/vms/00000000-0000-0000-0000-000000000000/tags/x", 404},
		{"no tag routes on vbds", "PUT", BasePath + "/vbds/" + vbd + "/tags/x", 404},
		{"unencoded slash is two segments", "PUT", BasePath + "/vms/" + sf.idOf(t, "vms", "vm1") + "/tags/a/b", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, tt.method, tt.target, "")
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			errorOf(t, rec)
		})
	}
}
