package handlers

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// specDoc is the part of the OpenAPI document the tests read.
type specDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		OperationID string           `json:"operationId"`
		Parameters  []map[string]any `json:"parameters"`
		Responses   map[string]any   `json:"responses"`
	} `json:"paths"`
}

func readSpec(t *testing.T, f *fixture) specDoc {
	t.Helper()
	rec := f.do(t, "GET", BasePath+"/docs/swagger.json", nil, asAdmin())
	if rec.Code != 200 || rec.Header().Get("Content-Type") != contentJSON {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc specDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestRoutesMatchSpec checks both ways that the OpenAPI document describes
// exactly what the mux serves.
func TestRoutesMatchSpec(t *testing.T) {
	f := newFixture(t)
	doc := readSpec(t, f)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	// Every operation of the document is dispatched by the mux to the
	// route it was generated from.
	ops := 0
	ids := map[string]bool{}
	for path, methods := range doc.Paths {
		for method, op := range methods {
			ops++
			m := strings.ToUpper(method)
			req := httptest.NewRequest(m, concretePath(path), nil)
			_, pattern := f.s.mux.Handler(req)
			i := slices.IndexFunc(f.s.routes, func(rt route) bool { return rt.method+" "+rt.pattern == pattern })
			if i < 0 {
				t.Errorf("%s %s of the document is not served (mux pattern %q)", m, path, pattern)
				continue
			}
			if p, _ := openAPIPath(f.s.routes[i].pattern); p != path {
				t.Errorf("%s %s is served by route %s", m, path, pattern)
			}
			if ids[op.OperationID] {
				t.Errorf("duplicate operationId %s", op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Responses["401"] == nil {
				t.Errorf("%s %s does not document 401", m, path)
			}
			_, names := openAPIPath(f.s.routes[i].pattern)
			if got := countIn(op.Parameters, "path"); got != len(names) {
				t.Errorf("%s %s: %d path parameters documented, pattern has %d", m, path, got, len(names))
			}
			if got := countIn(op.Parameters, "query"); got != len(f.s.routes[i].params) {
				t.Errorf("%s %s: %d query parameters documented, route accepts %d", m, path, got, len(f.s.routes[i].params))
			}
		}
	}
	// Every route of the table is in the document and served by the mux.
	for _, rt := range f.s.routes {
		path, _ := openAPIPath(rt.pattern)
		if _, ok := doc.Paths[path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s is missing from the document", rt.method, rt.pattern)
		}
		req := httptest.NewRequest(rt.method, concretePath(rt.pattern), nil)
		if _, pattern := f.s.mux.Handler(req); pattern != rt.method+" "+rt.pattern {
			t.Errorf("route %s %s is dispatched to %q", rt.method, rt.pattern, pattern)
		}
	}
	if ops != len(f.s.routes) {
		t.Errorf("%d operations documented, %d routes", ops, len(f.s.routes))
	}
}

func countIn(params []map[string]any, in string) int {
	n := 0
	for _, p := range params {
		if p["in"] == in {
			n++
		}
	}
	return n
}

func TestOpenAPIPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		names         []string
	}{
		{"/rest/v0/vms", "/rest/v0/vms", nil},
		{"/rest/v0/vms/{id}", "/rest/v0/vms/{id}", []string{"id"}},
		{"/rest/v0/vms/{id}/actions/{action}", "/rest/v0/vms/{id}/actions/{action}", []string{"id", "action"}},
		{"/rest/v0/files/{path...}", "/rest/v0/files/{path}", []string{"path"}},
		{"/rest/v0/{$}", "/rest/v0/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			path, names := openAPIPath(tt.pattern)
			if path != tt.path || !slices.Equal(names, tt.names) {
				t.Errorf("openAPIPath = %q %q, want %q %q", path, names, tt.path, tt.names)
			}
		})
	}
}

func TestDocsPage(t *testing.T) {
	f := newFixture(t)
	rec := f.do(t, "GET", BasePath+"/docs", nil, asAdmin())
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script src", "<link"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page refers to an outside resource (%q)", bad)
		}
	}
	if !strings.Contains(body, `<meta charset="utf-8">`) {
		t.Error("no charset")
	}
	if strings.Count(body, "</script>") != 2 {
		t.Errorf("%d script ends: the embedded document must not close its element", strings.Count(body, "</script>"))
	}
}

// TestDocsPageInChromium loads the page in headless Chromium, logged in
// with HTTP Basic like a browser user, and checks that the script rendered
// every route.
func TestDocsPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is required for this test: apt-get install -y chromium (%v)", err)
	}
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	u, err := url.Parse(srv.URL + BasePath + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(adminUser, adminPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", u.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	if !strings.Contains(dom, `data-operations="`+itoa(len(f.s.routes))+`"`) {
		t.Errorf("the page did not render %d operations:\n%s", len(f.s.routes), dom)
	}
	for _, rt := range f.s.routes {
		path, _ := openAPIPath(rt.pattern)
		want := `<code class="path">` + path + `</code>`
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("access log:\n%s", f.logs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// nodeModules is where the npm test peers are installed (make test exports
// XOREST_NODE_MODULES; the default is the repository's .peers folder).
func nodeModules(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("XOREST_NODE_MODULES"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs("../.peers/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSpecIsValidOpenAPI validates the document with swagger-parser, an
// independent OpenAPI implementation.
func TestSpecIsValidOpenAPI(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test: apt-get install -y nodejs (%v)", err)
	}
	modules := nodeModules(t)
	parser := filepath.Join(modules, "@apidevtools", "swagger-parser")
	if _, err := os.Stat(parser); err != nil {
		t.Fatalf("npm @apidevtools/swagger-parser is required for this test: npm install --prefix .peers @apidevtools/swagger-parser@10.1.1 (or make peers): %v", err)
	}
	f := newFixture(t)
	spec := filepath.Join(t.TempDir(), "swagger.json")
	d, err := f.s.docs()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, d.spec, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `require(process.argv[1]).validate(process.argv[2])
		.then(api => console.log("valid " + api.openapi))
		.catch(e => { console.error(e.message); process.exit(1); });`
	out, err := exec.Command(node, "-e", script, parser, spec).CombinedOutput()
	if err != nil {
		t.Fatalf("swagger-parser rejects the document: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "valid 3.0.3") {
		t.Errorf("swagger-parser output %q", out)
	}
}
