package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// simFixture is a fixture whose collections show simulated pools, with a
// token and an XAPI client per pool to write through XAPI as another
// client would.
type simFixture struct {
	*fixture
	sims    []*xapisim.Server
	clients []*xapi.Client
	pools   *xo.Pools
	token   string
}

// newSimFixture serves one simulated pool per model.
func newSimFixture(t testing.TB, models []xapisim.Model, mod ...func(*Config)) *simFixture {
	t.Helper()
	sf := &simFixture{}
	var opts []xapi.Options
	for _, m := range models {
		srv := xapisim.NewServer(t, m)
		o := xapi.Options{URL: srv.URL, Username: srv.User, Password: srv.Password, EventTimeout: 2 * time.Second}
		opts = append(opts, o)
		c, err := xapi.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		sf.sims = append(sf.sims, srv)
		sf.clients = append(sf.clients, c)
	}
	pools, err := xo.New(xo.Config{XAPI: opts, Pool: xo.PoolOptions{EventTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close(context.Background()) })
	sf.pools = pools
	sf.fixture = newFixture(t, append([]func(*Config){func(c *Config) { c.Pools = pools }}, mod...)...)
	sf.token = sf.mint(t, "root", time.Hour)
	return sf
}

// get serves GET target with the fixture's token.
func (sf *simFixture) get(t testing.TB, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	rec := httptest.NewRecorder()
	sf.h.ServeHTTP(rec, req)
	return rec
}

// getJSON serves GET target, expects a 200 and decodes the body.
func (sf *simFixture) getJSON(t testing.TB, target string, out any) {
	t.Helper()
	rec := sf.get(t, target)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, rec.Body)
	}
}

// idOf returns the id of the one object of collection whose name_label
// is name.
func (sf *simFixture) idOf(t testing.TB, collection, name string) string {
	t.Helper()
	var items []map[string]any
	// The filter matches substrings: keep the exact names.
	sf.getJSON(t, BasePath+"/"+collection+"?fields=id,name_label&filter="+url.QueryEscape("name_label:"+jsQuote(name)), &items)
	items = slices.DeleteFunc(items, func(it map[string]any) bool { return it["name_label"] != name })
	if len(items) != 1 {
		t.Fatalf("%d %s named %q", len(items), collection, name)
	}
	return items[0]["id"].(string)
}

// ref returns the XAPI ref of an object of pool 0 by uuid.
func (sf *simFixture) ref(t testing.TB, class, uuid string) xapi.Ref {
	t.Helper()
	var ref xapi.Ref
	if err := sf.clients[0].CallInto(t.Context(), &ref, class+".get_by_uuid", uuid); err != nil {
		t.Fatal(err)
	}
	return ref
}

// call calls XAPI on pool 0 and fails the test on error.
func (sf *simFixture) call(t testing.TB, method string, args ...any) any {
	t.Helper()
	v, err := sf.clients[0].Call(t.Context(), method, args...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return v
}

// jsQuote quotes s as a complex-matcher string.
func jsQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// stream is an open streamed response read line by line.
type stream struct {
	resp  *http.Response
	lines chan string
}

// openStream starts GET target on a live server and returns its lines
// (empty lines, the keep-alives, included).
func openStream(t testing.TB, ctx context.Context, url, token string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	s := &stream{resp: resp, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next non-empty line, failing after a generous bound
// (a hang, not a timing assertion).
func (s *stream) next(t testing.TB) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if l != "" {
				return l
			}
		case <-timeout:
			t.Fatal("no line in 30s")
		}
	}
}
