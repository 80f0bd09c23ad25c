package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseServe(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    []string // --xapi values
		wantErr bool
	}{
		{name: "no pool", want: nil},
		{name: "repeated flag", args: []string{"--xapi", "https://a", "--xapi", "https://b"},
			env: map[string]string{"XOREST_XAPI_PASSWORD": "pw"}, want: []string{"https://a", "https://b"}},
		{name: "from the environment", env: map[string]string{"XOREST_XAPI": "https://a, https://b", "XOREST_XAPI_PASSWORD": "pw"},
			want: []string{"https://a", "https://b"}},
		{name: "command line replaces the environment", args: []string{"--xapi=https://c"},
			env: map[string]string{"XOREST_XAPI": "https://a", "XOREST_XAPI_PASSWORD": "pw"}, want: []string{"https://c"}},
		{name: "pool without password", args: []string{"--xapi", "https://a"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
		{name: "bad boolean from env", env: map[string]string{"XOREST_XAPI_INSECURE": "maybe"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(tt.args, envOf(tt.env))
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.xapi, " ") != strings.Join(tt.want, " ") {
				t.Errorf("xapi = %q, want %q", cfg.xapi, tt.want)
			}
		})
	}
}

func TestTokenCommands(t *testing.T) {
	ctx := context.Background()
	env := envOf(map[string]string{"XOREST_TOKEN_STORE": "file:" + filepath.Join(t.TempDir(), "t.json")})
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "create", "--description", "ci", "--expires-in", "1 hour"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out.String())
	if len(secret) != 43 {
		t.Fatalf("secret %q: want 43 base64url characters", secret)
	}
	out.Reset()
	if err := run(ctx, []string{"token", "list"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secret) {
		t.Fatal("token list shows the secret")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "ci") {
		t.Fatalf("token list:\n%s", out.String())
	}
	id := strings.Fields(lines[1])[0]
	if err := run(ctx, []string{"token", "revoke", id}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	run(ctx, []string{"token", "list"}, env, &out, io.Discard)
	if strings.Contains(out.String(), id) {
		t.Fatalf("revoked token still listed:\n%s", out.String())
	}
	if err := run(ctx, []string{"token", "revoke", id}, env, io.Discard, io.Discard); err == nil {
		t.Fatal("revoking an unknown token succeeded")
	}
	if err := run(ctx, []string{"token", "create", "--expires-in", "1 s"}, env, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("too short validity: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func TestServeEmbeddedPool(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	env := envOf(map[string]string{"XOREST_TOKEN_STORE": "file:" + filepath.Join(t.TempDir(), "t.json")})
	out := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, env, out, io.Discard) }()

	re := regexp.MustCompile(`serving (http://\S+)\n.*shown once\): (\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URL and token:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
		m = re.FindStringSubmatch(out.String())
	}
	base, token := m[1], m[2]

	get := func(auth func(*http.Request)) int {
		req, _ := http.NewRequest("GET", base, nil)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(func(*http.Request) {}); got != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", got)
	}
	if got := get(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "authenticationToken", Value: token}) }); got != http.StatusOK {
		t.Errorf("printed token: %d, want 200", got)
	}
	if got := get(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }); got != http.StatusOK {
		t.Errorf("bearer token: %d, want 200", got)
	}
	if got := get(func(r *http.Request) { r.SetBasicAuth("root", "wrong") }); got != http.StatusUnauthorized {
		t.Errorf("wrong Basic password: %d, want 401", got)
	}

	// The collections show the embedded pool.
	req, _ := http.NewRequest("GET", base+"/vms?fields=name_label,power_state&filter=power_state:Running", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var vms []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&vms)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(vms) == 0 || vms[0]["power_state"] != "Running" {
		t.Fatalf("GET /vms: %d %v %v", resp.StatusCode, vms, err)
	}

	// An open watch stream does not hold the shutdown up.
	req, _ = http.NewRequest("GET", base+"/vms?ndjson&watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	watch, err := http.DefaultClient.Do(req)
	if err != nil || watch.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", watch, err)
	}
	defer watch.Body.Close()
	streamEnded := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, watch.Body)
		close(streamEnded)
	}()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	select {
	case <-streamEnded:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch stream did not end")
	}
}

func TestOpenTokenStore(t *testing.T) {
	tests := []struct {
		name, spec string
		wantErr    bool
		wantType   string
	}{
		{name: "file", spec: "file:" + filepath.Join(t.TempDir(), "t.json"), wantType: "*auth.FileStore"},
		{name: "bare path", spec: filepath.Join(t.TempDir(), "t.json"), wantType: "*auth.FileStore"},
		{name: "s3", spec: "s3://bucket/prefix", wantType: "*s3store.Store"},
		{name: "s3 without bucket", spec: "s3://", wantErr: true},
		{name: "other scheme", spec: "gs://bucket", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := openTokenStore(tt.spec)
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", store); got != tt.wantType {
				t.Errorf("store is a %s, want %s", got, tt.wantType)
			}
		})
	}
}

// startServe runs `xorest serve` with args until the test ends and returns
// the base URL it prints.
func startServe(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), envOf(env), out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	re := regexp.MustCompile(`serving (http://\S+)\n`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeBasicAuthAgainstPool(t *testing.T) {
	srv := xapisim.NewServer(t, xapisim.Default())
	base := startServe(t, map[string]string{
		"XOREST_TOKEN_STORE":   "file:" + filepath.Join(t.TempDir(), "t.json"),
		"XOREST_XAPI_PASSWORD": srv.Password,
	}, "--xapi", srv.URL, "--xapi-user", srv.User)

	tests := []struct {
		name, user, password string
		want                 int
	}{
		{"pool admin", srv.User, srv.Password, http.StatusOK},
		{"wrong password", srv.User, srv.Password + "x", http.StatusUnauthorized},
		{"unknown user", "nobody", srv.Password, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/vms?fields=name_label", nil)
			req.SetBasicAuth(tt.user, tt.password)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

func TestHostURLsFlag(t *testing.T) {
	const a, b = "6a1f5c0e-0000-4000-8000-000000000001", "6a1f5c0e-0000-4000-8000-000000000002"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    map[string]string
		wantErr bool
	}{
		{name: "none"},
		{name: "repeated flag", args: []string{"--xapi-host-url", a + "=https://gw:8443", "--xapi-host-url", b + "=https://gw:8444"},
			want: map[string]string{a: "https://gw:8443", b: "https://gw:8444"}},
		{name: "from the environment", env: map[string]string{"XOREST_XAPI_HOST_URL": a + "=https://gw:8443, " + b + "=https://gw:8444"},
			want: map[string]string{a: "https://gw:8443", b: "https://gw:8444"}},
		{name: "no URL", args: []string{"--xapi-host-url", a}, wantErr: true},
		{name: "no uuid", args: []string{"--xapi-host-url", "=https://gw"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(tt.args, envOf(tt.env))
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(cfg.hostURLs, tt.want) {
				t.Errorf("host URLs %v, want %v", cfg.hostURLs, tt.want)
			}
		})
	}
	// Lambda reads the same variable.
	cfg, err := parseLambda(envOf(map[string]string{"XOREST_XAPI": "https://a", "XOREST_XAPI_PASSWORD": "pw", "XOREST_XAPI_HOST_URL": a + "=https://gw:8443"}))
	if err != nil || cfg.hostURLs[a] != "https://gw:8443" {
		t.Fatalf("lambda: %v %v", cfg.hostURLs, err)
	}
}
