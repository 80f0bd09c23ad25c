package xapisim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

// These tests run XAPI clients that nobody here wrote against the simulator
// over loopback: Debian's XenAPI.py and XO's npm xen-api (both transports).
// They are what proves the simulator speaks real XAPI. The peers are
// installed by `make test` (scripts/install-peers.sh); a missing peer fails
// the test with the command that installs it.

const peerHint = "run `make peers` (scripts/install-peers.sh) from the repository root"

// repoRoot returns the module root (where go.mod is).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// runPeer runs a client script and decodes the JSON object it prints.
func runPeer(t *testing.T, env []string, out any, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("decoding the output of %s: %v\n%s", name, err, stdout.String())
	}
}

// classCounts returns the number of objects per class in the simulator.
func classCounts(sim *xapisim.Simulator, classes []string) map[string]int {
	counts := map[string]int{}
	sim.DB.Read(func(tx *xapisim.Tx) {
		for _, c := range classes {
			counts[c] = tx.Count(c)
		}
	})
	return counts
}

var clientClasses = []string{"pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics",
	"SR", "PBD", "SM", "VDI", "VBD", "VIF", "PIF", "PIF_metrics", "network",
	"Bond", "PCI", "PGPU", "GPU_group", "message"}

func TestXenAPIPy(t *testing.T) {
	python := os.Getenv("XOREST_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	probe := exec.Command(python, "-c", "from os_xenapi.client import XenAPI")
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("XenAPI.py is not importable by %s (apt-get install python3-os-xenapi; %s): %v\n%s", python, peerHint, err, out)
	}
	srv := xapisim.NewServer(t, xapisim.Default())
	want := classCounts(srv.Simulator, clientClasses)

	var got struct {
		BadLogin         []string       `json:"bad_login"`
		Counts           map[string]int `json:"counts"`
		VM               string         `json:"vm"`
		BadPowerState    []string       `json:"bad_power_state"`
		UnknownMethod    []string       `json:"unknown_method"`
		HandleInvalid    []string       `json:"handle_invalid"`
		EventsInitial    int            `json:"events_initial"`
		ValidRefCountsVM int            `json:"valid_ref_counts_vm"`
		EventMod         string         `json:"event_mod"`
		AsyncStatus      string         `json:"async_status"`
		AsyncName        string         `json:"async_name"`
		AsyncResult      string         `json:"async_result"`
		AsyncFailStatus  string         `json:"async_fail_status"`
		AsyncFailError   []string       `json:"async_fail_error"`
		AfterLogout      []string       `json:"after_logout"`
	}
	runPeer(t, nil, &got, python, filepath.Join("testdata", "clients", "xenapi_check.py"), srv.URL, srv.User, srv.Password)

	if want := []string{"SESSION_AUTHENTICATION_FAILED", srv.User, "Authentication failure"}; !equal(got.BadLogin, want) {
		t.Errorf("bad login: %q, want %q", got.BadLogin, want)
	}
	for _, c := range clientClasses {
		if got.Counts[c] != want[c] {
			t.Errorf("%s.get_all_records: %d records, simulator has %d", c, got.Counts[c], want[c])
		}
	}
	if want := []string{"VM_BAD_POWER_STATE", got.VM, "running", "halted"}; !equal(got.BadPowerState, want) {
		t.Errorf("VM.clean_shutdown of a halted VM: %q, want %q", got.BadPowerState, want)
	}
	if len(got.UnknownMethod) != 2 || got.UnknownMethod[1] != "VM.no_such_method" {
		t.Errorf("unknown method: %q", got.UnknownMethod)
	}
	if want := []string{"HANDLE_INVALID", "VM", "OpaqueRef:00000000-0000-0000-0000-000000000000"}; !equal(got.HandleInvalid, want) {
		t.Errorf("get_record of a bad ref: %q, want %q", got.HandleInvalid, want)
	}
	if got.EventsInitial != want["VM"] || got.ValidRefCountsVM != want["VM"] {
		t.Errorf("event.from(vm, \"\"): %d events, valid_ref_counts.vm=%d, want %d", got.EventsInitial, got.ValidRefCountsVM, want["VM"])
	}
	if got.EventMod != "vm" {
		t.Errorf("event class %q, want lowercase \"vm\"", got.EventMod)
	}
	if got.AsyncStatus != "success" || got.AsyncName != "Async.VM.snapshot" ||
		!strings.HasPrefix(got.AsyncResult, "<value>OpaqueRef:") || !strings.HasSuffix(got.AsyncResult, "</value>") {
		t.Errorf("Async.VM.snapshot task: status %q name %q result %q", got.AsyncStatus, got.AsyncName, got.AsyncResult)
	}
	if got.AsyncFailStatus != "failure" || len(got.AsyncFailError) == 0 || got.AsyncFailError[0] != "VM_BAD_POWER_STATE" {
		t.Errorf("failing Async call: status %q error_info %q", got.AsyncFailStatus, got.AsyncFailError)
	}
	if len(got.AfterLogout) == 0 || got.AfterLogout[0] != "SESSION_INVALID" {
		t.Errorf("call after logout: %q", got.AfterLogout)
	}
}

func TestXenAPINode(t *testing.T) {
	modules := os.Getenv("XOREST_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(repoRoot(t), ".peers", "node_modules")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not found: %v", err)
	}
	if _, err := os.Stat(filepath.Join(modules, "xen-api", "package.json")); err != nil {
		t.Fatalf("npm xen-api not found in %s (%s): %v", modules, peerHint, err)
	}
	// Node resolves bare imports from the script's folder upwards, not from
	// NODE_PATH, for ES modules: run a copy of the script inside .peers.
	script, err := os.ReadFile(filepath.Join("testdata", "clients", "xen_api_check.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(modules), "xen-api-check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "check.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, transport := range []string{"json-rpc", "xml-rpc", "auto"} {
		t.Run(transport, func(t *testing.T) {
			srv := xapisim.NewServer(t, xapisim.Default())
			want := classCounts(srv.Simulator, clientClasses)
			var got struct {
				BadLogin      []string       `json:"bad_login"`
				Counts        map[string]int `json:"counts"`
				VM            string         `json:"vm"`
				BadPowerState []string       `json:"bad_power_state"`
				EventMod      string         `json:"event_mod"`
				AsyncResult   string         `json:"async_result"`
				SnapshotOf    string         `json:"snapshot_of"`
				AsyncFail     []string       `json:"async_fail"`
			}
			url := strings.TrimSuffix(srv.URL, "/")
			runPeer(t, nil, &got, "node", path, url, srv.User, srv.Password, transport)

			if len(got.BadLogin) == 0 || got.BadLogin[0] != "SESSION_AUTHENTICATION_FAILED" {
				t.Errorf("bad login: %q", got.BadLogin)
			}
			for _, c := range clientClasses {
				if got.Counts[c] != want[c] {
					t.Errorf("%s objects in xen-api's cache: %d, simulator has %d", c, got.Counts[c], want[c])
				}
			}
			if want := []string{"VM_BAD_POWER_STATE", got.VM, "running", "halted"}; !equal(got.BadPowerState, want) {
				t.Errorf("VM.clean_shutdown of a halted VM: %q, want %q", got.BadPowerState, want)
			}
			if got.EventMod != "renamed by xen-api" {
				t.Errorf("name_label after the event loop: %q", got.EventMod)
			}
			if !strings.HasPrefix(got.AsyncResult, "OpaqueRef:") || got.SnapshotOf != got.VM {
				t.Errorf("callAsync VM.snapshot: result %q, snapshot_of %q, want a ref and %q", got.AsyncResult, got.SnapshotOf, got.VM)
			}
			if len(got.AsyncFail) == 0 || got.AsyncFail[0] != "VM_BAD_POWER_STATE" {
				t.Errorf("failing callAsync: %q", got.AsyncFail)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
