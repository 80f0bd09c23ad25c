package handlers

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// concretePath fills the wildcards of a ServeMux pattern.
func concretePath(pattern string) string {
	return wildcardRE.ReplaceAllStringFunc(pattern, func(w string) string {
		if w == "{$}" {
			return ""
		}
		return "x"
	})
}

func TestEveryRouteRequiresAuthentication(t *testing.T) {
	f := newFixture(t)
	expired := f.mint(t, "root", time.Minute)
	f.advance(2 * time.Minute)
	creds := []struct {
		name string
		opt  func(*http.Request)
	}{
		{"none", func(*http.Request) {}},
		{"unknown bearer", header("Authorization", "Bearer nope")},
		{"unknown cookie", cookie(tokenCookie, "nope")},
		{"expired token", header("Authorization", "Bearer "+expired)},
		{"wrong password", basic(adminUser, "wrong")},
	}
	targets := []struct{ method, path string }{
		{"GET", "/no/such/route"},
		{"DELETE", BasePath + "/docs"},
	}
	for _, rt := range f.s.routes {
		targets = append(targets, struct{ method, path string }{rt.method, concretePath(rt.pattern)})
	}
	if len(targets) < 6 {
		t.Fatalf("route table has %d routes", len(f.s.routes))
	}
	for _, tg := range targets {
		for _, c := range creds {
			t.Run(tg.method+" "+tg.path+" "+c.name, func(t *testing.T) {
				rec := f.do(t, tg.method, tg.path, strings.NewReader("{}"), c.opt)
				if rec.Code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %s", rec.Code, rec.Body)
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="xo"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				var body errorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
					t.Errorf("body %q is not an error document (%v)", rec.Body, err)
				}
			})
		}
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a token store succeeded")
	}
	f := newFixture(t)
	if f.s.cfg.KeepAlive != DefaultKeepAlive || f.s.cfg.WaitTimeout != DefaultWaitTimeout || f.s.cfg.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("defaults not applied: %+v", f.s.cfg)
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		sent string
		echo bool
	}{
		{"echoed", "abc-123_X.y:z", true},
		{"generated when absent", "", false},
		{"replaced when invalid", "bad id\nwith newline", false},
		{"replaced when too long", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, "GET", BasePath, nil, asAdmin(), header("X-Request-Id", tt.sent))
			got := rec.Header().Get("X-Request-Id")
			if tt.echo && got != tt.sent {
				t.Errorf("X-Request-Id = %q, want %q", got, tt.sent)
			}
			if !tt.echo && (got == "" || got == tt.sent || !validRequestID(got)) {
				t.Errorf("X-Request-Id = %q: want a fresh valid id", got)
			}
			if !strings.Contains(f.logs.String(), `"request_id":"`+got+`"`) {
				t.Errorf("request id %q not in the access log", got)
			}
		})
	}
}

// logLines decodes the JSON log lines.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		opts      []func(*http.Request)
		path      string
		status    float64
		level     string
		wantError bool
	}{
		{"success", []func(*http.Request){asAdmin()}, BasePath, 200, "INFO", false},
		{"client error", []func(*http.Request){asAdmin()}, BasePath + "?limit=x", 422, "WARN", true},
		{"bad password", []func(*http.Request){basic(adminUser, "hunter2-secret")}, BasePath, 401, "WARN", true},
		{"unreachable", []func(*http.Request){basic("down", "pw-secret")}, BasePath, 503, "ERROR", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(t, "GET", tt.path, nil, append(tt.opts, header("X-Request-Id", "req-1"))...)
			if rec.Code != int(tt.status) {
				t.Fatalf("status %d, want %v: %s", rec.Code, tt.status, rec.Body)
			}
			lines := logLines(t, f.logs.String())
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want exactly 1:\n%s", len(lines), f.logs)
			}
			l := lines[0]
			if l["request_id"] != "req-1" || l["status"] != tt.status || l["level"] != tt.level || l["path"] != BasePath {
				t.Errorf("log line %v", l)
			}
			if _, has := l["error"]; has != tt.wantError {
				t.Errorf("error in log = %v, want %v: %v", has, tt.wantError, l)
			}
			for _, secret := range []string{"hunter2-secret", "pw-secret", adminPassword} {
				if strings.Contains(f.logs.String(), secret) || strings.Contains(rec.Body.String(), secret) {
					t.Errorf("secret %q leaked: log %s body %s", secret, f.logs, rec.Body)
				}
			}
		})
	}
}

func TestTokenNotLogged(t *testing.T) {
	f := newFixture(t)
	secret := f.mint(t, "root", time.Hour)
	for _, opt := range []func(*http.Request){header("Authorization", "Bearer "+secret), cookie(tokenCookie, secret)} {
		if rec := f.do(t, "GET", BasePath+"?limit=bad", nil, opt); rec.Code != 422 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Errorf("token in logs: %s", f.logs)
	}
	if !strings.Contains(f.logs.String(), `"user":"root"`) {
		t.Errorf("user not in logs: %s", f.logs)
	}
}

func TestNoRoute(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		allow  string
	}{
		{"unknown path", "GET", BasePath + "/nope", 404, ""},
		{"outside the API", "GET", "/", 404, ""},
		{"wrong method", "DELETE", BasePath + "/docs", 405, "GET"},
		{"wrong method on token route", "GET", BasePath + "/users/authentication_tokens", 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, tt.method, tt.path, nil, asAdmin())
			if rec.Code != tt.status || rec.Header().Get("Allow") != tt.allow {
				t.Errorf("%d Allow %q, want %d %q: %s", rec.Code, rec.Header().Get("Allow"), tt.status, tt.allow, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != contentJSON {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestListCollections(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Collections = []string{"vms", "hosts", "tasks"} })
	tests := []struct {
		name  string
		query string
		ctype string
	}{
		{"urls", "", contentJSON},
		{"trailing slash", "/", contentJSON},
		{"fields id", "?fields=id", contentJSON},
		{"ndjson", "?ndjson", contentNDJSON},
		{"markdown", "?markdown=true&fields=id", contentMarkdown},
		{"filter", "?filter=id:/^(v|t)/%20!id:tasks&fields=id", contentJSON},
		{"limit", "?limit=1", contentJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, "GET", BasePath+tt.query, nil, asAdmin())
			if rec.Code != 200 || rec.Header().Get("Content-Type") != tt.ctype {
				t.Fatalf("%d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			golden(t, goldenName("collections", tt.name, "txt"), rec.Body.Bytes())
		})
	}
}

func TestPanicIsA500(t *testing.T) {
	f := newFixture(t)
	h := f.s.withRequestID(f.s.withAccessLog(f.s.withRecover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error": "internal server error"`) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	lines := logLines(t, f.logs.String())
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || !strings.Contains(lines[0]["error"].(string), "boom") {
		t.Errorf("logs: %s", f.logs)
	}
}

func TestErrorAfterResponseStartedIsOnlyLogged(t *testing.T) {
	f := newFixture(t)
	h := f.s.withRequestID(f.s.withAccessLog(f.s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte("partial"))
		return errors.New("encoder failed")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || rec.Body.String() != "partial" {
		t.Errorf("%d %q: the error changed a started response", rec.Code, rec.Body)
	}
	lines := logLines(t, f.logs.String())
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["error"] != "encoder failed" {
		t.Errorf("logs: %s", f.logs)
	}
}
