package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/xo/xapi"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// Credentials known to fakeVerifyBasic.
const (
	adminUser     = "root"
	adminPassword = "s3cret-pass"
)

// fakeVerifyBasic stands in for the XAPI login the xo layer provides: it
// answers as XAPI would for a pool admin, a non-admin, a host that cannot
// be reached, and wrong credentials.
func fakeVerifyBasic(ctx context.Context, user, password string) error {
	switch {
	case user == adminUser && password == adminPassword:
		return nil
	case user == "colon" && password == "a:b:c":
		return nil
	case user == "operator" && password == "op":
		return &xapi.Error{Code: "RBAC_PERMISSION_DENIED", Params: []string{"pool.get_all", "no permission"}}
	case user == "down":
		return &xapi.TransportError{Method: "session.login_with_password", URL: "https://192.0.2.1/", Err: errors.New("connection refused")}
	}
	return &xapi.Error{Code: "SESSION_AUTHENTICATION_FAILED", Params: []string{user, "Authentication failure"}}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (log handlers
// write from request goroutines).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a server on a fresh token file, with a settable clock and
// captured JSON logs.
type fixture struct {
	s     *server
	h     http.Handler
	store *auth.FileStore
	logs  *syncBuffer
	mu    sync.Mutex
	now   time.Time
}

func newFixture(t testing.TB, mod ...func(*Config)) *fixture {
	t.Helper()
	store, err := auth.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, logs: &syncBuffer{}, now: time.UnixMilli(1_760_000_000_000)}
	store.SetClock(f.clock)
	cfg := Config{
		Logger:      slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Tokens:      store,
		VerifyBasic: fakeVerifyBasic,
		Now:         f.clock,
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.h = s, s.handler()
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// mint stores a token for user valid for validity and returns its secret.
func (f *fixture) mint(t testing.TB, user string, validity time.Duration) string {
	t.Helper()
	secret, tok, err := auth.New(auth.NewParams{User: user, Validity: validity, Now: f.clock()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return secret
}

// do serves one request; opts adjust it.
func (f *fixture) do(t testing.TB, method, target string, body io.Reader, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func basic(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func header(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func cookie(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: name, Value: value}) }
}

func asAdmin() func(*http.Request) { return basic(adminUser, adminPassword) }

func rawBasic(s string) func(*http.Request) {
	return header("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s)))
}

// golden compares got with testdata/<name>, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// goldenName turns a test case name into a file name.
func goldenName(dir, name, ext string) string {
	r := strings.NewReplacer(" ", "-", "/", "_", "*", "star", ",", "_", "=", "-", "?", "", "&", "+")
	return fmt.Sprintf("%s/%s.%s", dir, r.Replace(name), ext)
}
