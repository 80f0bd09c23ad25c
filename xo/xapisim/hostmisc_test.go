package xapisim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostFileGet does GET path on srv with query and returns the status, the
// Content-Type and the body.
func hostFileGet(t *testing.T, srv *Server, path, query string, basic bool) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", strings.TrimSuffix(srv.URL, "/")+path+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if basic {
		req.SetBasicAuth(srv.User, srv.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// taskCount counts the task records.
func taskCount(s *Simulator) int {
	n := 0
	s.DB.Read(func(tx *Tx) { n = tx.Count(taskClass) })
	return n
}

func TestAuditLog(t *testing.T) {
	srv := NewServer(t, Default())
	clock := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	srv.SetClock(func() time.Time { return clock })
	early := srv.Login("root", "early")
	clock = clock.Add(time.Hour)
	late := srv.Login("root", "late")
	clock = clock.Add(time.Hour) // Basic logins come after
	before := taskCount(srv.Simulator)

	tests := []struct {
		name   string
		query  string
		basic  bool
		status int
		want   []string // originators of the lines, in order
	}{
		{name: "session_id", query: "session_id=" + early, status: 200, want: []string{"early", "late"}},
		{name: "basic", basic: true, status: 200, want: []string{"early", "late", ""}},
		{name: "since ISO 8601", query: "session_id=" + early + "&since=2026-11-27T10:30:00Z", status: 200, want: []string{"late"}},
		{name: "since log format", query: "session_id=" + early + "&since=20261127T11:00:00.000", status: 200, want: []string{"late"}},
		{name: "since later", query: "session_id=" + early + "&since=2026-11-28", status: 200, want: nil},
		{name: "no credentials", status: 401},
		{name: "invalid session", query: "session_id=OpaqueRef:nope", status: 401},
		{name: "invalid task", query: "session_id=" + late + "&task_id=OpaqueRef:nope", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ct, body := hostFileGet(t, srv, "/audit_log", tt.query, tt.basic)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if status != 200 {
				return
			}
			if ct != "text/plain" {
				t.Errorf("Content-Type %q", ct)
			}
			var got []string
			for line := range strings.Lines(string(body)) {
				if !strings.Contains(line, "|audit|host0|") || !strings.Contains(line, "'session.login_with_password'") {
					t.Errorf("line %q", line)
				}
				_, rest, _ := strings.Cut(line, "(('originator' '")
				orig, _, _ := strings.Cut(rest, "'")
				got = append(got, orig)
			}
			// Basic authentication logs in for the request: its own session
			// is the last line.
			if !slices.Equal(got, tt.want) {
				t.Errorf("originators %q, want %q\n%s", got, tt.want, body)
			}
		})
	}
	if !strings.HasPrefix(auditLines0(srv.Simulator), "Nov 27 10:00:00 host0 xapi: [20261127T10:00:00.000Z|audit|host0|") {
		t.Errorf("first line %q", auditLines0(srv.Simulator))
	}
	if n := taskCount(srv.Simulator); n != before {
		t.Errorf("%d tasks, want %d: the request tasks stay", n, before)
	}
}

// auditLines0 is the first audit line of the master.
func auditLines0(s *Simulator) string {
	var lines []string
	s.DB.Read(func(tx *Tx) { lines = auditLines(tx, s.MasterHost()) })
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

func TestAuditSince(t *testing.T) {
	line := "Nov 27 10:00:00 host0 xapi: [20261127T10:00:00.000Z|audit|host0|...]\n"
	tests := []struct {
		name, since string
		want        bool
	}{
		{"empty", "", true},
		{"date before", "2026-11-27", true},
		{"same millisecond", "2026-11-27T10:00:00.000Z", true},
		{"a second later", "2026-11-27T10:00:01Z", false},
		{"next day", "2026-11-28", false},
		{"log format", "20261127T09:59:59.999", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auditKept(line, auditSince(tt.since)); got != tt.want {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
		})
	}
	if auditKept("[short]\n", "") {
		t.Error("a line shorter than a timestamp is kept")
	}
}

// tarPeer returns the path of tar, failing the test when it is missing.
func tarPeer(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("tar is needed to check the host logs archive: apt-get install -y tar gzip")
	}
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Fatal("gzip is needed by tar z: apt-get install -y gzip")
	}
	return p
}

func TestHostLogsDownload(t *testing.T) {
	tarBin := tarPeer(t)
	srv := NewServer(t, Default())
	session := srv.Login("root", "logs-test")
	before := taskCount(srv.Simulator)
	status, ct, body := hostFileGet(t, srv, "/host_logs_download", "session_id="+session, false)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	if ct != "" {
		t.Errorf("Content-Type %q, want none (XAPI's bare 200)", ct)
	}
	if !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Fatalf("not gzip: % x", body[:min(len(body), 8)])
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "logs.tgz")
	if err := os.WriteFile(archive, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), tarBin, "tzf", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("tar tzf: %v\n%s", err, out)
	}
	names := strings.Fields(string(out))
	want := []string{"etc/xensource-inventory", "var/log/audit.log", "var/log/xensource.log"}
	if !slices.Equal(names, want) {
		t.Errorf("members %q, want %q", names, want)
	}
	if out, err := exec.CommandContext(t.Context(), tarBin, "xzf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar xzf: %v\n%s", err, out)
	}
	audit, err := os.ReadFile(filepath.Join(dir, "var/log/audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), "(('originator' 'logs-test' '' ''))") {
		t.Errorf("audit.log lacks the session:\n%s", audit)
	}
	inv, err := os.ReadFile(filepath.Join(dir, "etc/xensource-inventory"))
	if err != nil {
		t.Fatal(err)
	}
	if host := get(t, srv.Simulator, srv.MasterHost()); !strings.Contains(string(inv), "INSTALLATION_UUID='"+str(host, "uuid")+"'") {
		t.Errorf("inventory:\n%s", inv)
	}
	xensource, err := os.ReadFile(filepath.Join(dir, "var/log/xensource.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(xensource), `("vm0")`) {
		t.Errorf("xensource.log:\n%s", xensource)
	}
	if n := taskCount(srv.Simulator); n != before {
		t.Errorf("%d tasks, want %d", n, before)
	}
	if status, _, _ := hostFileGet(t, srv, "/host_logs_download", "", false); status != 401 {
		t.Errorf("without credentials: %d", status)
	}
}

func TestUpdaterCheckUpdate(t *testing.T) {
	s, session := newTestSim(t, Default())
	host := s.MasterHost()
	bare := byName(t, s, "host", "host1")
	if err := s.DB.Write(func(tx *Tx) error {
		rec, _ := tx.GetClass("host", bare)
		sv := cloneStrMap(strMap(rec, "software_version"))
		delete(sv, "xapi_build")
		delete(sv, "xen")
		tx.Modify(bare)["software_version"] = sv
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		host  string
		fault *Fault
		want  []string // name-version-release
	}{
		{name: "updates", host: host, want: []string{"xapi-core-24.19.2-1.xcpng8.3", "xen-hypervisor-4.17.4-4.xcpng8.3"}},
		{name: "up to date", host: bare, want: []string{}},
		{name: "busy", host: host, fault: UpdaterBusy("update")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				remove := s.InjectFault(FaultRule{Method: "host.call_plugin", Fault: tt.fault, Count: 1})
				defer remove()
			}
			got, f := call(t, s, session, "host.call_plugin", tt.host, "updater.py", "check_update", map[string]any{})
			if tt.fault != nil {
				if f == nil || f.Code != "-1" || len(f.Params) != 3 || !strings.Contains(f.Params[0], "plugin is busy") {
					t.Fatalf("got %v, %v; want the busy fault", got, f)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			var pkgs []map[string]any
			if err := json.Unmarshal([]byte(got.(string)), &pkgs); err != nil {
				t.Fatalf("%v: %q", err, got)
			}
			names := []string{}
			for _, p := range pkgs {
				for _, k := range []string{"name", "version", "release", "description", "changelog", "url", "size", "license"} {
					if _, ok := p[k]; !ok {
						t.Errorf("%v lacks %s", p, k)
					}
				}
				names = append(names, p["name"].(string)+"-"+p["version"].(string)+"-"+p["release"].(string))
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("packages %q, want %q", names, tt.want)
			}
		})
	}
}

func TestAuditLogClientLeaves(t *testing.T) {
	srv := NewServer(t, Default())
	for range 20000 {
		srv.Login("root", strings.Repeat("x", 200))
	}
	before := taskCount(srv.Simulator)
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"audit_log", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(srv.User, srv.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The handler meets the closed connection and ends its task.
	for taskCount(srv.Simulator) != before {
		select {
		case <-t.Context().Done():
			t.Fatal("the request's task was not destroyed")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
