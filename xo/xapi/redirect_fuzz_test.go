package xapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRedirectTarget feeds redirectTarget the Location header of a
// redirect from a host (outside input): it never panics, and a target it
// accepts is http or https, not http after https, and carries the
// request's own query (the session) and no credentials.
func FuzzRedirectTarget(f *testing.F) {
	for _, seed := range []struct{ from, loc string }{
		{"https://192.0.2.1/import_raw_vdi?session_id=OpaqueRef:s&vdi=OpaqueRef:v", "https://192.0.2.2/import_raw_vdi?session_id=OpaqueRef:s&vdi=OpaqueRef:v"},
		{"http://127.0.0.1:8080/export?ref=x", "https://127.0.0.1:40123/export?ref=x"},
		{"https://pool/export", "http://member/export"},
		{"https://pool/export", "/other?x=1"},
		{"https://pool/export", "ftp://member/x"},
		{"https://pool/export", "https://user:pw@member/x#frag"},
		{"https://pool/export", "%zz"},
		{"https://pool/export", ""},
	} {
		f.Add(seed.from, seed.loc)
	}
	f.Fuzz(func(t *testing.T, from, loc string) {
		u, err := url.Parse(from)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return
		}
		resp := &http.Response{
			Status:     "302 Found",
			StatusCode: http.StatusFound,
			Header:     http.Header{"Location": {loc}},
			Body:       io.NopCloser(strings.NewReader("")),
			Request:    &http.Request{URL: u},
		}
		next, err := redirectTarget(u, resp)
		if err != nil {
			return
		}
		if next.Scheme != "http" && next.Scheme != "https" {
			t.Fatalf("target scheme %q", next.Scheme)
		}
		if u.Scheme == "https" && next.Scheme != "https" {
			t.Fatalf("https redirected to %s", next)
		}
		if next.RawQuery != u.RawQuery || next.User != nil || next.Fragment != "" {
			t.Fatalf("target %s from %s", next, u)
		}
	})
}
