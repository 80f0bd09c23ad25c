package xapisim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

// testClock is a simulator clock moved by the test only.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestXenAPIPySessionExpiry lets a XenAPI.py session sit idle past the
// inactivity timeout (on the simulator's clock): the raw call with it gets
// SESSION_INVALID [ref], and XenAPI.py's own dispatcher logs in again and
// succeeds, as against a real XAPI.
func TestXenAPIPySessionExpiry(t *testing.T) {
	python := os.Getenv("XOREST_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if out, err := exec.Command(python, "-c", "from os_xenapi.client import XenAPI").CombinedOutput(); err != nil {
		t.Fatalf("XenAPI.py is not importable by %s (apt-get install python3-os-xenapi; %s): %v\n%s", python, peerHint, err, out)
	}
	srv := xapisim.NewServer(t, xapisim.Default())
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetClock(clock.now)
	srv.SetSessionLimits(xapisim.SessionLimits{InactiveTimeout: 10 * time.Minute, RefreshAfter: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "clients", "xenapi_expiry.py"), srv.URL, srv.User, srv.Password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Wait()
		t.Fatalf("xenapi_expiry.py: %q, %v\nstderr:\n%s", line, err, stderr.String())
	}
	clock.advance(10*time.Minute + time.Second)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("xenapi_expiry.py: %v\nstdout:\n%s\nstderr:\n%s", err, rest, stderr.String())
	}
	var got struct {
		Session    string   `json:"session"`
		VMsBefore  int      `json:"vms_before"`
		RawStatus  string   `json:"raw_status"`
		RawError   []string `json:"raw_error"`
		VMsAfter   int      `json:"vms_after"`
		NewSession string   `json:"new_session"`
	}
	if err := json.Unmarshal(rest, &got); err != nil {
		t.Fatalf("decoding %q: %v", rest, err)
	}
	if want := []string{"SESSION_INVALID", got.Session}; got.RawStatus != "Failure" || !equal(got.RawError, want) {
		t.Errorf("call with the expired session: %s %q, want Failure %q", got.RawStatus, got.RawError, want)
	}
	if got.VMsBefore == 0 || got.VMsAfter != got.VMsBefore {
		t.Errorf("VM.get_all: %d VMs before, %d after the re-login", got.VMsBefore, got.VMsAfter)
	}
	if got.NewSession == got.Session || !srv.SessionValid(got.NewSession) || srv.SessionValid(got.Session) {
		t.Errorf("sessions: old %s (valid %v), new %s (valid %v)", got.Session, srv.SessionValid(got.Session), got.NewSession, srv.SessionValid(got.NewSession))
	}
}
