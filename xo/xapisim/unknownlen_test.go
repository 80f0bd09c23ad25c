package xapisim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// rawPut writes a PUT to the simulator on a connection of its own, with
// the given length headers ("" for none), sends body once the answer's
// headers have come (XAPI answers before it reads), then closes the
// writing side and reads the answer to its end. It returns the status.
func rawPut(t *testing.T, srv *Server, path string, q url.Values, lengthHeader string, body []byte) int {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s?%s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", path, q.Encode(), u.Host, lengthHeader)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPut})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode // the task is failed before the answer
	}
	if _, err := conn.Write(body); err != nil {
		t.Logf("writing the body: %v", err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, br)
	return resp.StatusCode
}

// TestImportBodyLength checks how the import handlers use the
// Content-Length, as XAPI does (import.ml, import_raw_vdi.ml, vhd-tool
// impl.ml and vhd_format f.ml).
func TestImportBodyLength(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	src := dpDisk(t, srv.Simulator, vm)
	sr := dpField(srv.Simulator, src, "SR").(string)
	const size = 64 << 20
	seed := bytes.Repeat([]byte("body length "), 100000)
	if _, err := srv.WriteVDIAt(src, seed, 5<<20); err != nil {
		t.Fatal(err)
	}
	xvaData := dpExport(t, srv, session, vm, "")
	vhdData := dpExportRaw(t, srv, session, url.Values{"vdi": {src}, "format": {"vhd"}})
	data := dpSparseRandom(4<<20, 7)
	cl := func(n int) string { return fmt.Sprintf("Content-Length: %d\r\n", n) }
	vms := func() int {
		var n int
		srv.DB.Read(func(tx *Tx) { n = tx.Count("VM") })
		return n
	}

	tests := []struct {
		name    string
		path    string
		query   url.Values // besides session_id and task_id
		length  string     // the length header
		body    []byte
		status  int
		fault   []string // the task's error_info; nil for success
		newVMs  int
		content []byte // the VDI "dst" afterwards, when set
	}{
		{name: "XVA without a Content-Length is read until the client closes", path: "/import/", query: url.Values{"sr_id": {sr}},
			body: xvaData, status: 200, newVMs: 1},
		{name: "XVA under a 1 PiB Content-Length", path: "/import/", query: url.Values{"sr_id": {sr}},
			length: cl(1 << 50), body: xvaData, status: 200, newVMs: 1},
		{name: "truncated XVA under a 1 PiB Content-Length", path: "/import/", query: url.Values{"sr_id": {sr}},
			length: cl(1 << 50), body: xvaData[:len(xvaData)-4096], status: 200, fault: []string{"IMPORT_ERROR_PREMATURE_EOF"}},
		{name: "chunked XVA", path: "/import/", query: url.Values{"sr_id": {sr}},
			length: "Transfer-Encoding: chunked\r\n", status: 403, fault: []string{"IMPORT_ERROR_CANNOT_HANDLE_CHUNKED"}},
		{name: "VHD with its exact length", path: "/import_raw_vdi", query: url.Values{"format": {"vhd"}},
			length: cl(len(vhdData)), body: vhdData, status: 200, content: dpContent(t, srv.Simulator, src)},
		// vhd-tool reads the footer at the last sector below the
		// Content-Length, after writing every block.
		{name: "VHD under a longer Content-Length", path: "/import_raw_vdi", query: url.Values{"format": {"vhd"}},
			length: cl(len(vhdData) + 4096), body: vhdData, status: 200, fault: []string{"VDI_IO_ERROR"}, content: dpContent(t, srv.Simulator, src)},
		// vhd-tool's reads succeed when they get at least one byte: the
		// last 2 MiB read is written whole, its tail from the previous read.
		{name: "raw short of its Content-Length within the last read", path: "/import_raw_vdi", query: url.Values{"format": {"raw"}},
			length: cl(4 << 20), body: data[:3<<20], status: 200,
			content: append(append(bytes.Clone(data[:3<<20]), data[1<<20:2<<20]...), make([]byte, size-4<<20)...)},
		{name: "raw short of its Content-Length by a whole read", path: "/import_raw_vdi", query: url.Values{"format": {"raw"}},
			length: cl(6 << 20), body: data[:4<<20], status: 200, fault: []string{"VDI_IO_ERROR"},
			content: append(bytes.Clone(data[:4<<20]), make([]byte, size-4<<20)...)},
		{name: "chunked protocol with VHD", path: "/import_raw_vdi", query: url.Values{"format": {"vhd"}, "chunked": {""}},
			length: cl(len(vhdData)), status: 404, fault: []string{"INTERNAL_ERROR", "Cannot handle chunked VHD"}},
		{name: "VHD into an SR", path: "/import_raw_vdi", query: url.Values{"format": {"vhd"}, "sr_id": {sr}},
			length: cl(len(vhdData)), status: 400, fault: []string{"INTERNAL_ERROR", "Importing a VHD directly into an SR not yet supported"}},
		{name: "raw into an SR without a Content-Length", path: "/import_raw_vdi", query: url.Values{"format": {"raw"}, "sr_id": {sr}},
			status: 400, fault: []string{"INTERNAL_ERROR", "Not enough info supplied to import"}},
		{name: "neither VDI nor SR", path: "/import_raw_vdi", query: url.Values{"format": {"raw"}},
			length: cl(512), status: 400, fault: []string{"VDI_MISSING"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := dpNewVDI(t, srv, session, sr, size)
			task := dpTask(t, srv, session)
			q := url.Values{"session_id": {session}, "task_id": {task}}
			for k, v := range tc.query {
				q[k] = v
			}
			if tc.path == "/import_raw_vdi" && q.Get("sr_id") == "" && !strings.Contains(tc.name, "neither") {
				q.Set("vdi", dst)
			}
			before := vms()
			if status := rawPut(t, srv, tc.path, q, tc.length, tc.body); status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			rec := dpWaitTask(t, srv.Simulator, task)
			info, _ := rec["error_info"].([]string)
			if tc.fault == nil && str(rec, "status") != "success" {
				t.Fatalf("task %s %v, want success", str(rec, "status"), info)
			}
			if tc.fault != nil && (str(rec, "status") != "failure" || len(info) < len(tc.fault) || !equalPrefix(info, tc.fault)) {
				t.Fatalf("task %s %v, want failure %v", str(rec, "status"), info, tc.fault)
			}
			if n := vms(); n != before+tc.newVMs {
				t.Errorf("VMs %d -> %d, want %d new", before, n, tc.newVMs)
			}
			if tc.content != nil && !bytes.Equal(dpContent(t, srv.Simulator, dst), tc.content) {
				t.Error("the VDI does not hold what XAPI would have written")
			}
		})
	}
}

// equalPrefix reports whether got starts with want.
func equalPrefix(got, want []string) bool {
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
