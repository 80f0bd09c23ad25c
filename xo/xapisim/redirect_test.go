package xapisim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

// localPool serves LocalStorage with small disks and host1 (a member) on a
// listener of its own, TLS when useTLS.
func localPool(t *testing.T, useTLS bool) (*xapisim.Server, *xapisim.HostEndpoint) {
	t.Helper()
	m := xapisim.LocalStorage()
	m.DiskSize = 4 << 20
	srv := xapisim.NewServer(t, m)
	ep, err := srv.StartHost("host1", "127.0.0.1:0", useTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	return srv, ep
}

// rawRequest sends a request line and headers on a connection of its own
// and returns the answer's status line and headers exactly as written.
func rawRequest(t *testing.T, base, method, target string, header string) (string, http.Header, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, method+" "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\n"+header+"\r\n"); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn) // XAPI closes after the redirect
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(all), "\r\n\r\n")
	status, rest, _ := strings.Cut(head, "\r\n")
	h := http.Header{}
	for _, line := range strings.Split(rest, "\r\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			h.Add(k, v)
		}
	}
	return status, h, body
}

// TestRedirectWire checks the master's answers byte for byte against
// XAPI's (Importexport.return_302_redirect, Http.http_302_redirect): which
// handlers redirect, when, the status line, the headers, the Location with
// the same query, the task left alone, and 401 before any redirect.
func TestRedirectWire(t *testing.T) {
	srv, ep := localPool(t, true)
	sess := srv.Session()
	memberDisk := objectNamed(t, srv.Simulator, "VDI", "vm1 disk 0") // host1 local storage
	masterDisk := objectNamed(t, srv.Simulator, "VDI", "vm0 disk 0") // host0 local storage
	memberSR := objectNamed(t, srv.Simulator, "SR", "host1 local storage")
	masterSR := objectNamed(t, srv.Simulator, "SR", "host0 local storage")
	memberVM := objectNamed(t, srv.Simulator, "VM", "vm1")
	task, err := srv.Call(context.Background(), "task.create", sess, "redirect", "")
	if err != nil {
		t.Fatal(err)
	}
	member, _ := url.Parse(ep.URL)

	tests := []struct {
		name, method, path string
		query              url.Values
		header             string
		redirect           bool
		status             string // without a redirect: the start of the status line
	}{
		{name: "raw export of a member's disk", method: "GET", path: "/export_raw_vdi", query: url.Values{"vdi": {memberDisk}, "format": {"raw"}}, redirect: true},
		{name: "vhd export by UUID, trailing slash", method: "GET", path: "/export_raw_vdi/", query: url.Values{"vdi": {uuidOf(t, srv, memberDisk)}, "format": {"vhd"}}, redirect: true},
		{name: "raw import into a member's disk", method: "PUT", path: "/import_raw_vdi", query: url.Values{"vdi": {memberDisk}, "format": {"raw"}}, header: "Content-Length: 4194304\r\n", redirect: true},
		{name: "raw import creating a VDI on a member's SR", method: "PUT", path: "/import_raw_vdi", query: url.Values{"sr_id": {memberSR}, "format": {"raw"}}, header: "Content-Length: 512\r\n", redirect: true},
		{name: "XVA export of a VM on a member's SR", method: "GET", path: "/export/", query: url.Values{"ref": {memberVM}}, redirect: true},
		{name: "XVA import into a member's SR", method: "PUT", path: "/import/", query: url.Values{"sr_id": {memberSR}}, header: "Content-Length: 1024\r\n", redirect: true},
		{name: "XVA import by sr_uuid", method: "PUT", path: "/import", query: url.Values{"sr_uuid": {uuidOf(t, srv, memberSR)}}, header: "Content-Length: 1024\r\n", redirect: true},
		{name: "the master's own disk is served", method: "GET", path: "/export_raw_vdi", query: url.Values{"vdi": {masterDisk}, "format": {"raw"}}, status: "HTTP/1.1 200"},
		{name: "import into the master's SR is served", method: "PUT", path: "/import_raw_vdi", query: url.Values{"sr_id": {masterSR}, "format": {"vhd"}}, header: "Content-Length: 0\r\n", status: "HTTP/1.1 400"},
		{name: "credentials first", method: "GET", path: "/export_raw_vdi", query: url.Values{"vdi": {memberDisk}, "session_id": {"OpaqueRef:bad"}}, status: "HTTP/1.1 401"},
		{name: "unknown VDI is the handler's error", method: "GET", path: "/export_raw_vdi", query: url.Values{"vdi": {"OpaqueRef:nope"}}, status: "HTTP/1.1 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"session_id": {sess}, "task_id": {task.(string)}}
			for k, v := range tc.query {
				q[k] = v
			}
			target := tc.path + "?" + q.Encode()
			status, h, body := rawRequest(t, srv.URL, tc.method, target, tc.header)
			if !tc.redirect {
				if !strings.HasPrefix(status, tc.status) {
					t.Fatalf("status %q, want %s", status, tc.status)
				}
				return
			}
			if status != "HTTP/1.1 302 Found" || body != "" {
				t.Fatalf("answer %q with body %q, want XAPI's 302 without a body", status, body)
			}
			want := http.Header{
				"Connection":    {"close"},
				"Cache-Control": {"no-cache, no-store"},
				"Location":      {"https://" + member.Host + tc.path + "?" + q.Encode()},
			}
			if len(h) != len(want) {
				t.Errorf("headers %v, want exactly %v", h, want)
			}
			for k, v := range want {
				if h.Get(k) != v[0] {
					t.Errorf("%s: %q, want %q", k, h.Get(k), v[0])
				}
			}
			loc, err := url.Parse(h.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range q {
				if loc.Query().Get(k) != v[0] {
					t.Errorf("Location's %s = %q, want %q", k, loc.Query().Get(k), v[0])
				}
			}
			rec, err := srv.Call(context.Background(), "task.get_status", sess, task)
			if err != nil || rec != "pending" {
				t.Errorf("task after the redirect: %v %v, want pending (untouched)", rec, err)
			}
		})
	}
	if n := ep.Served(); n != 0 {
		t.Errorf("the member served %d requests, want none (nothing followed the redirects)", n)
	}
}

// uuidOf returns the uuid of ref.
func uuidOf(t *testing.T, srv *xapisim.Server, ref string) string {
	t.Helper()
	var uuid string
	srv.DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(ref)
		uuid, _ = rec["uuid"].(string)
	})
	if uuid == "" {
		t.Fatalf("no uuid for %s", ref)
	}
	return uuid
}

// TestRedirectWithoutStartedHost keeps the old behaviour when the member
// has no listener: the master serves the member's disk itself.
func TestRedirectWithoutStartedHost(t *testing.T) {
	m := xapisim.LocalStorage()
	m.DiskSize = 1 << 20
	srv := xapisim.NewServer(t, m)
	disk := objectNamed(t, srv.Simulator, "VDI", "vm1 disk 0")
	b := download(t, srv, "/export_raw_vdi", url.Values{"vdi": {disk}, "format": {"raw"}})
	if len(b) != 1<<20 {
		t.Fatalf("%d bytes, want the 1 MiB disk", len(b))
	}
}

// TestRedirectMemberAddress checks that StartHost makes the member's
// address the listener's IP, as npm xen-api matches Location's hostname
// against host.address (_replaceHostAddressInUrl).
func TestRedirectMemberAddress(t *testing.T) {
	srv, ep := localPool(t, false)
	var addr string
	srv.DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(ep.Host)
		addr, _ = rec["address"].(string)
	})
	u, _ := url.Parse(ep.URL)
	if addr != u.Hostname() || addr != "127.0.0.1" || ep.Certificate != nil || u.Scheme != "http" {
		t.Fatalf("host.address %q, endpoint %s (certificate %v)", addr, ep.URL, ep.Certificate != nil)
	}
	if _, err := srv.StartHost("host9", "127.0.0.1:0", false); err == nil {
		t.Error("StartHost of an unknown host succeeded")
	}
}

// TestRedirectXenAPI runs npm xen-api's getResource and putResource
// against the master: each request is redirected to host1's TLS listener,
// which xen-api follows (getResource retries on the 302; putResource
// probes with an empty PUT, then sends the stream to the Location).
func TestRedirectXenAPI(t *testing.T) {
	script := nodeScript(t, "xen_api_redirect.mjs")
	srv, ep := localPool(t, true)
	vm := objectNamed(t, srv.Simulator, "VM", "vm1")
	disk := vmDisk(t, srv, vm) // not its snapshot's, of the same name
	sr := objectNamed(t, srv.Simulator, "SR", "host1 local storage")
	pattern := bytes.Repeat([]byte("redirected to the member "), 8000)
	if _, err := srv.WriteVDIAt(disk, pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	target := newDisk(t, srv, sr, 4<<20)
	before := classCounts(srv.Simulator, []string{"VM"})

	var got struct {
		RawSHA       string   `json:"raw_sha"`
		RawBytes     int      `json:"raw_bytes"`
		XVABytes     int      `json:"xva_bytes"`
		ImportStream []string `json:"import_stream"`
		PutRaw       any      `json:"put_raw"`
		BackSHA      string   `json:"back_sha"`
	}
	runPeer(t, nil, &got, "node", script, strings.TrimSuffix(srv.URL, "/"), srv.User, srv.Password, vm, disk, sr, target)

	want := disk4(t, srv, disk)
	sum := sha256.Sum256(want)
	if got.RawBytes != len(want) || got.RawSHA != hex.EncodeToString(sum[:]) {
		t.Errorf("getResource raw: %d bytes sha %s, want %d bytes sha %x", got.RawBytes, got.RawSHA, len(want), sum)
	}
	if got.XVABytes == 0 || len(got.ImportStream) != 1 {
		t.Fatalf("XVA of %d bytes imported as %v, want one VM", got.XVABytes, got.ImportStream)
	}
	for _, vm := range got.ImportStream {
		d := vmDisk(t, srv, vm)
		var onSR string
		srv.DB.Read(func(tx *xapisim.Tx) {
			_, rec, _ := tx.Get(d)
			onSR, _ = rec["SR"].(string)
		})
		if onSR != sr || !bytes.Equal(disk4(t, srv, d), want) {
			t.Errorf("imported VM %s: disk on %s, same bytes %v; want on %s with vm1's bytes", vm, onSR, bytes.Equal(disk4(t, srv, d), want), sr)
		}
	}
	if got.PutRaw != target || !bytes.Equal(disk4(t, srv, target), want) {
		t.Errorf("putResource raw stream: %v, disk same %v; want %s with vm1's bytes", got.PutRaw, bytes.Equal(disk4(t, srv, target), want), target)
	}
	if got.BackSHA != got.RawSHA {
		t.Errorf("getResource of the written disk: sha %s, want %s", got.BackSHA, got.RawSHA)
	}
	// The 3 getResource and the 2 putResource reached the member; the
	// empty probe PUTs of putResource were redirected by the master and
	// not sent again.
	if n := ep.Served(); n != 5 {
		t.Errorf("the member served %d data-plane requests, want 5", n)
	}
	if after := classCounts(srv.Simulator, []string{"VM"}); after["VM"] != before["VM"]+1 {
		t.Errorf("VMs %d -> %d, want the one imported", before["VM"], after["VM"])
	}
}

// disk4 returns the 4 MiB of a disk.
func disk4(t *testing.T, srv *xapisim.Server, vdi string) []byte { return disk(t, srv, vdi, 4<<20) }

// vmDisk returns the VDI of a VM's first disk VBD.
func vmDisk(t *testing.T, srv *xapisim.Server, vm string) string {
	t.Helper()
	var vdi string
	srv.DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(vm)
		vbds, _ := rec["VBDs"].([]string)
		for _, b := range vbds {
			_, br, _ := tx.Get(b)
			if br["type"] == "Disk" && vdi == "" {
				vdi, _ = br["VDI"].(string)
			}
		}
	})
	if vdi == "" {
		t.Fatalf("VM %s has no disk", vm)
	}
	return vdi
}
