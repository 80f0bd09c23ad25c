package handlers

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

var allParams = []string{"fields", "filter", "limit", "ndjson", "markdown", "watch", "sync", "raw", "preferNbd", "wait"}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		check func(t *testing.T, q Query)
	}{
		{"defaults", "", func(t *testing.T, q Query) {
			if q.Fields != nil || q.Filter != nil || q.Limit != -1 || q.NDJSON || q.Markdown || q.Wait != WaitNone {
				t.Errorf("%+v", q)
			}
		}},
		{"bare flags", "ndjson&watch&sync&raw&preferNbd", func(t *testing.T, q Query) {
			if !q.NDJSON || !q.Watch || !q.Sync || !q.Raw || !q.PreferNBD {
				t.Errorf("%+v", q)
			}
		}},
		{"true flags", "ndjson=true&sync=TRUE&raw=True", func(t *testing.T, q Query) {
			if !q.NDJSON || !q.Sync || !q.Raw {
				t.Errorf("%+v", q)
			}
		}},
		{"false flags", "ndjson=false&markdown=false&sync=false", func(t *testing.T, q Query) {
			if q.NDJSON || q.Markdown || q.Sync {
				t.Errorf("%+v", q)
			}
		}},
		{"markdown", "markdown=true", func(t *testing.T, q Query) {
			if !q.Markdown {
				t.Errorf("%+v", q)
			}
		}},
		{"fields", "fields=name_label,CPUs.number", func(t *testing.T, q Query) {
			if q.Fields == nil || q.Fields.All || !slices.Equal(q.Fields.Names(), []string{"name_label", "CPUs.number"}) {
				t.Errorf("%+v", q.Fields)
			}
		}},
		{"fields star", "fields=*", func(t *testing.T, q Query) {
			if q.Fields == nil || !q.Fields.All {
				t.Errorf("%+v", q.Fields)
			}
		}},
		{"empty fields", "fields=", func(t *testing.T, q Query) {
			if q.Fields == nil || !slices.Equal(q.Fields.Names(), []string{""}) {
				t.Errorf("%+v", q.Fields)
			}
		}},
		{"filter", "filter=" + url.QueryEscape("power_state:Running name_label:/^web/i"), func(t *testing.T, q Query) {
			if q.Filter == nil || q.FilterText != "power_state:Running name_label:/^web/i" {
				t.Errorf("%+v", q)
			}
			if !q.Filter.Match(map[string]any{"power_state": "Running", "name_label": "Web 1"}) || q.Filter.Match(map[string]any{"power_state": "Halted", "name_label": "web"}) {
				t.Error("filter does not match as expected")
			}
		}},
		{"empty filter", "filter=", func(t *testing.T, q Query) {
			if q.Filter != nil {
				t.Errorf("%+v", q)
			}
		}},
		{"limit", "limit=5", func(t *testing.T, q Query) { wantLimit(t, q, 5) }},
		{"limit zero", "limit=0", func(t *testing.T, q Query) { wantLimit(t, q, 0) }},
		{"limit exponent", "limit=1e2", func(t *testing.T, q Query) { wantLimit(t, q, 100) }},
		{"limit float integer", "limit=3.0", func(t *testing.T, q Query) { wantLimit(t, q, 3) }},
		{"limit negative means none", "limit=-1", func(t *testing.T, q Query) { wantLimit(t, q, -1) }},
		{"limit fraction means none", "limit=2.5", func(t *testing.T, q Query) { wantLimit(t, q, -1) }},
		{"limit huge means none", "limit=1e400", func(t *testing.T, q Query) { wantLimit(t, q, -1) }},
		{"wait result", "wait=result", func(t *testing.T, q Query) { wantWait(t, q, WaitResult) }},
		{"wait true", "wait=true", func(t *testing.T, q Query) { wantWait(t, q, WaitResult) }},
		{"wait bare", "wait", func(t *testing.T, q Query) { wantWait(t, q, WaitChange) }},
		{"wait other", "wait=change", func(t *testing.T, q Query) { wantWait(t, q, WaitChange) }},
		{"wait false", "wait=false", func(t *testing.T, q Query) { wantWait(t, q, WaitNone) }},
		{"unknown ignored", "foo=bar&ndjson", func(t *testing.T, q Query) {
			if !q.NDJSON {
				t.Errorf("%+v", q)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseQuery(values, allParams)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.query, err)
			}
			tt.check(t, q)
		})
	}
}

func wantLimit(t *testing.T, q Query, n int) {
	t.Helper()
	if q.Limit != n {
		t.Errorf("Limit = %d, want %d", q.Limit, n)
	}
}

func wantWait(t *testing.T, q Query, w Wait) {
	t.Helper()
	if q.Wait != w {
		t.Errorf("Wait = %d, want %d", q.Wait, w)
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		accepted []string
		status   int
	}{
		{"bad flag", "ndjson=yes", allParams, 422},
		{"bad flag number", "sync=1", allParams, 422},
		{"bad limit", "limit=abc", allParams, 422},
		{"empty limit", "limit=", allParams, 422},
		{"hex limit", "limit=0x10", allParams, 422},
		{"infinite limit", "limit=Infinity", allParams, 422},
		{"repeated", "fields=a&fields=b", allParams, 422},
		{"ndjson and markdown", "ndjson&markdown=true", allParams, 422},
		{"watch without ndjson", "watch=true", allParams, 400},
		{"bad filter", "filter=" + url.QueryEscape("foo)"), allParams, 400},
		{"bad filter regexp", "filter=" + url.QueryEscape("name:/(/"), allParams, 400},
		{"not accepted is ignored", "ndjson=yes", []string{"fields"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseQuery(values, tt.accepted)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("ParseQuery(%q): %v", tt.query, err)
				}
				return
			}
			status, body := describe(err)
			if status != tt.status {
				t.Errorf("ParseQuery(%q) = %v: status %d, want %d", tt.query, err, status, tt.status)
			}
			if strings.HasPrefix(tt.name, "bad filter") {
				if body.Data["stringToParse"] == nil || body.Error == "" {
					t.Errorf("filter error body %+v", body)
				}
			}
		})
	}
}

func TestFilterErrorBody(t *testing.T) {
	f := newFixture(t)
	rec := f.do(t, "GET", BasePath+"?filter="+url.QueryEscape("foo)"), nil, asAdmin())
	if rec.Code != 400 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	golden(t, "errors/filter-parse-error.json", rec.Body.Bytes())
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"fields=a,b.c&filter=foo&limit=3", "ndjson&watch", "ndjson=true&markdown=true", "limit=-1.5",
		"filter=%28a", "wait=result", "fields=*&sync=false", "limit=1e400", "raw=TRUE&preferNbd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(values, allParams)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("ParseQuery(%q) error %v is not an *Error", raw, err)
			}
			if status, _ := describe(err); status != 400 && status != 422 {
				t.Fatalf("ParseQuery(%q) error status %d", raw, status)
			}
			return
		}
		if q.NDJSON && q.Markdown {
			t.Fatalf("ParseQuery(%q) accepted ndjson with markdown", raw)
		}
		if q.Limit < -1 {
			t.Fatalf("ParseQuery(%q) limit %d", raw, q.Limit)
		}
		if (q.Filter != nil) && q.FilterText == "" {
			t.Fatalf("ParseQuery(%q): a filter from nothing", raw)
		}
	})
}
