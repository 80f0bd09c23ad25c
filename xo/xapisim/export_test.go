package xapisim

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/xva"
)

// dpURL builds a data-plane URL of srv.
func dpURL(srv *Server, path string, q url.Values) string {
	return strings.TrimSuffix(srv.URL, "/") + path + "?" + q.Encode()
}

// dpTask creates a task for a transfer, as XO does.
func dpTask(t testing.TB, srv *Server, session string) string {
	t.Helper()
	return dpCall(t, srv, session, "task.create", "transfer", "").(string)
}

// dpGet GETs url and returns the response with its whole body.
func dpGet(t testing.TB, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp, body
}

// dpPut PUTs body (with its length) to url and returns the response and its
// body.
func dpPut(t testing.TB, u string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// dpExport exports vm through HTTP within a task and returns the XVA.
func dpExport(t testing.TB, srv *Server, session, vm, compression string) []byte {
	t.Helper()
	task := dpTask(t, srv, session)
	resp, body := dpGet(t, dpURL(srv, "/export/", url.Values{
		"session_id": {session}, "task_id": {task}, "ref": {vm}, "use_compression": {compression},
	}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s: %s", resp.Status, body)
	}
	if got := resp.Header.Get("task-id"); got != task {
		t.Errorf("task-id header %q, want %q", got, task)
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 {
		t.Errorf("export response has Content-Length %d / Transfer-Encoding %v, want neither", resp.ContentLength, resp.TransferEncoding)
	}
	rec := dpWaitTask(t, srv.Simulator, task)
	if str(rec, "status") != "success" {
		t.Fatalf("export task: %s %v", str(rec, "status"), rec["error_info"])
	}
	return body
}

// dpImport imports an XVA into sr and returns the task record.
func dpImport(t testing.TB, srv *Server, session, sr string, xvaData []byte, extra url.Values) Record {
	t.Helper()
	task := dpTask(t, srv, session)
	q := url.Values{"session_id": {session}, "task_id": {task}, "sr_id": {sr}}
	for k, v := range extra {
		q[k] = v
	}
	resp, body := dpPut(t, dpURL(srv, "/import/", q), xvaData)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import: %s: %s", resp.Status, body)
	}
	if got := resp.Header.Get("task-id"); got != task {
		t.Errorf("task-id header %q, want %q", got, task)
	}
	return dpWaitTask(t, srv.Simulator, task)
}

// dpImportedVM parses the VM set of an import task's result.
func dpImportedVM(t testing.TB, rec Record) string {
	t.Helper()
	res := str(rec, "result")
	const pre, post = "<value><array><data><value>", "</value></data></array></value>"
	if !strings.HasPrefix(res, pre) || !strings.HasSuffix(res, post) || strings.Count(res, "<value>") != 2 {
		t.Fatalf("import result %q is not a one-VM set", res)
	}
	return strings.TrimSuffix(strings.TrimPrefix(res, pre), post)
}

func TestExportImportRoundTrip(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1") // Halted
	disk := dpDisk(t, srv.Simulator, vm)
	want := dpContent(t, srv.Simulator, disk)
	sr := dpField(srv.Simulator, disk, "SR").(string)
	for _, tc := range []struct {
		name, compression string
		want              xva.Compression
	}{
		{"raw", "false", xva.None},
		{"gzip", "true", xva.Gzip},
		{"zstd", "zstd", xva.Zstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := dpExport(t, srv, session, vm, tc.compression)
			xr, err := xva.NewReader(bytes.NewReader(data), xva.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if xr.Compression() != tc.want {
				t.Errorf("compression %v, want %v", xr.Compression(), tc.want)
			}
			_, objects, err := parseOVAXML(xr.OVAXML())
			if err != nil {
				t.Fatal(err)
			}
			classes := map[string]int{}
			for _, o := range objects {
				classes[o.class]++
				if !strings.HasPrefix(o.id, "Ref:") {
					t.Errorf("object id %q", o.id)
				}
				if o.class == "VM" && o.rec["power_state"] != "Halted" {
					t.Errorf("VM power_state %v", o.rec["power_state"])
				}
				for k, v := range o.rec {
					if s, ok := v.(string); ok && strings.HasPrefix(s, "OpaqueRef:") && s != NullRef {
						t.Errorf("%s.%s = %s: a ref that is not rewritten", o.class, k, s)
					}
				}
			}
			for _, c := range []string{"VM", "VBD", "VDI", "SR", "VIF", "network"} {
				if classes[c] == 0 {
					t.Errorf("ova.xml has no %s", c)
				}
			}
			xr.Close()

			rec := dpImport(t, srv, session, sr, data, nil)
			if str(rec, "status") != "success" {
				t.Fatalf("import task: %s %v", str(rec, "status"), rec["error_info"])
			}
			newVM := dpImportedVM(t, rec)
			if got := dpField(srv.Simulator, newVM, "name_label"); got != "vm1" {
				t.Errorf("imported VM name %v", got)
			}
			if ops := dpField(srv.Simulator, newVM, "current_operations").(map[string]string); len(ops) != 0 {
				t.Errorf("imported VM current_operations %v", ops)
			}
			newDisk := dpDisk(t, srv.Simulator, newVM)
			if newDisk == disk {
				t.Fatal("the import reused the original disk")
			}
			if got := dpContent(t, srv.Simulator, newDisk); !bytes.Equal(got, want) {
				t.Fatal("imported disk differs from the exported one")
			}
			var vifs []string
			srv.DB.Read(func(tx *Tx) {
				rec, _ := tx.GetClass("VM", newVM)
				vifs = strSet(rec, "VIFs")
			})
			if len(vifs) != 1 || dpField(srv.Simulator, vifs[0], "network") != refByNameQuiet(srv.Simulator, "network", "network0") {
				t.Errorf("imported VIFs %v not on network0", vifs)
			}
		})
	}
}

// refByNameQuiet is dpByName without a test.
func refByNameQuiet(s *Simulator, class, name string) string {
	var ref string
	s.DB.Read(func(tx *Tx) {
		for _, r := range tx.All(class) {
			if rec, _ := tx.GetClass(class, r); str(rec, "name_label") == name {
				ref = r
			}
		}
	})
	return ref
}

func TestExportReproducible(t *testing.T) {
	// Two simulators of the same model, same clock: same bytes, except the
	// Ref:N ids, which count exports; the first export of each matches.
	export := func() []byte {
		srv := dpServer(t, dpModel())
		srv.SetClock(func() time.Time { return baseTime })
		session := srv.Session()
		return dpExport(t, srv, session, dpByName(t, srv.Simulator, "VM", "vm1"), "false")
	}
	a, b := export(), export()
	if !bytes.Equal(a, b) {
		t.Fatal("exports of the same model differ")
	}
}

func TestExportSuspended(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm3") // Suspended
	suspend := dpField(srv.Simulator, vm, "suspend_VDI").(string)
	sr := refByNameQuiet(srv.Simulator, "SR", "sr0")
	for _, tc := range []struct {
		preserve string
		state    string
	}{
		{"false", "Halted"},
		{"true", "Suspended"},
	} {
		t.Run("preserve_power_state="+tc.preserve, func(t *testing.T) {
			task := dpTask(t, srv, session)
			resp, data := dpGet(t, dpURL(srv, "/export", url.Values{"session_id": {session}, "task_id": {task}, "ref": {vm}, "preserve_power_state": {tc.preserve}}))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, data)
			}
			rec := dpImport(t, srv, session, sr, data, nil)
			if str(rec, "status") != "success" {
				t.Fatalf("import: %v", rec["error_info"])
			}
			nv := dpImportedVM(t, rec)
			if got := dpField(srv.Simulator, nv, "power_state"); got != tc.state {
				t.Errorf("imported power_state %v, want %s", got, tc.state)
			}
			if tc.state == "Suspended" {
				sv := dpField(srv.Simulator, nv, "suspend_VDI").(string)
				if !isRef(sv) || !dpSameContent(t, srv.Simulator, sv, suspend) {
					t.Error("suspend image not restored")
				}
			}
		})
	}
}

func TestExportCurrentOperations(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	task := dpTask(t, srv, session)
	resp, err := http.Get(dpURL(srv, "/export", url.Values{"session_id": {session}, "task_id": {task}, "uuid": {dpField(srv.Simulator, vm, "uuid").(string)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	ops := dpField(srv.Simulator, vm, "current_operations").(map[string]string)
	if ops[task] != "export" {
		t.Errorf("current_operations during export: %v", ops)
	}
	if allowed := dpField(srv.Simulator, vm, "allowed_operations").([]string); strings.Contains(strings.Join(allowed, ","), "start") {
		t.Errorf("start allowed during export: %v", allowed)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if rec := dpWaitTask(t, srv.Simulator, task); str(rec, "status") != "success" || rec["progress"] != float64(1) {
		t.Errorf("task %v progress %v", rec["status"], rec["progress"])
	}
	if ops := dpField(srv.Simulator, vm, "current_operations").(map[string]string); len(ops) != 0 {
		t.Errorf("current_operations after export: %v", ops)
	}
}

func TestExportErrors(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	running := dpByName(t, srv.Simulator, "VM", "vm0")
	halted := dpByName(t, srv.Simulator, "VM", "vm1")
	for _, tc := range []struct {
		name   string
		query  url.Values
		basic  bool
		status int
		fault  string // task error code, "" when the task is untouched
	}{
		{"running VM", url.Values{"ref": {running}}, false, http.StatusInternalServerError, "VM_BAD_POWER_STATE"},
		{"unknown ref", url.Values{"ref": {"OpaqueRef:nope"}}, false, http.StatusInternalServerError, "HANDLE_INVALID"},
		{"unknown uuid", url.Values{"uuid": {"nope"}}, false, http.StatusInternalServerError, "UUID_INVALID"},
		{"bad session", url.Values{"ref": {halted}, "session_id": {"OpaqueRef:bad"}}, false, http.StatusUnauthorized, ""},
		{"no credentials", url.Values{"ref": {halted}, "session_id": {""}}, false, http.StatusUnauthorized, ""},
		{"basic auth", url.Values{"ref": {halted}, "session_id": {""}}, true, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := dpTask(t, srv, session)
			q := url.Values{"session_id": {session}, "task_id": {task}}
			for k, v := range tc.query {
				q[k] = v
			}
			if q.Get("session_id") == "" {
				q.Del("session_id")
			}
			req, _ := http.NewRequest(http.MethodGet, dpURL(srv, "/export", q), nil)
			if tc.basic {
				req.SetBasicAuth(srv.User, srv.Password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d: %s", resp.Status, tc.status, body)
			}
			if tc.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			switch {
			case tc.fault != "":
				rec := dpWaitTask(t, srv.Simulator, task)
				info, _ := rec["error_info"].([]string)
				if str(rec, "status") != "failure" || len(info) == 0 || info[0] != tc.fault {
					t.Errorf("task %s %v, want failure %s", str(rec, "status"), info, tc.fault)
				}
				if !strings.Contains(string(body), tc.fault) {
					t.Errorf("error page does not name %s: %s", tc.fault, body)
				}
			case tc.status == http.StatusOK:
				if rec := dpWaitTask(t, srv.Simulator, task); str(rec, "status") != "success" {
					t.Errorf("task %v", rec["status"])
				}
			default:
				if st := str(dpRecord(srv.Simulator, task), "status"); st != "pending" {
					t.Errorf("task touched: %s", st)
				}
			}
		})
	}
}

func TestImportFailuresLeaveNothing(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	sr := dpField(srv.Simulator, dpDisk(t, srv.Simulator, vm), "SR").(string)
	good := dpExport(t, srv, session, vm, "false")

	// Flip a byte of the first chunk's data (its checksum no longer matches).
	corrupt := bytes.Clone(good)
	tr := tar.NewReader(bytes.NewReader(good))
	var pos int64
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, "/00000000") {
			// The data follows its 512-byte header.
			pos = int64(bytes.Index(good, []byte(h.Name))) + 512
			break
		}
	}
	corrupt[pos] ^= 0xff
	truncated := good[:len(good)/2]
	badXML := bytes.Clone(good)
	copy(badXML[512:], "<valxe>")

	// An archive from a newer XAPI.
	newer := func() []byte {
		xr, err := xva.NewReader(bytes.NewReader(good), xva.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer xr.Close()
		ova := bytes.Replace(xr.OVAXML(), []byte("<name>xapi_major</name><value>2</value>"), []byte("<name>xapi_major</name><value>99</value>"), 1)
		if bytes.Equal(ova, xr.OVAXML()) {
			t.Fatal("no xapi_major 2 in ova.xml")
		}
		var buf bytes.Buffer
		if _, err := xva.Write(t.Context(), &buf, ova, nil, xva.WriterOptions{}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()

	counts := func() (int, int) {
		var vms, vdis int
		srv.DB.Read(func(tx *Tx) { vms, vdis = tx.Count("VM"), tx.Count("VDI") })
		return vms, vdis
	}
	vms0, vdis0 := counts()
	files0 := len(srv.dataPlane().disks)
	for _, tc := range []struct {
		name  string
		data  []byte
		query url.Values
		ok    bool
	}{
		{"garbage", []byte("this is not an XVA at all, not even a tar"), nil, false},
		{"empty", nil, nil, false},
		{"truncated", truncated, nil, false},
		{"checksum", corrupt, nil, false},
		{"bad ova.xml", badXML, nil, false},
		{"newer XAPI", newer, nil, false},
		{"checksum with force", corrupt, url.Values{"force": {"true"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := dpImport(t, srv, session, sr, tc.data, tc.query)
			if tc.ok {
				if str(rec, "status") != "success" {
					t.Fatalf("task %s %v", str(rec, "status"), rec["error_info"])
				}
				return
			}
			info, _ := rec["error_info"].([]string)
			if tc.name == "newer XAPI" {
				if dpTaskError(rec) != "IMPORT_INCOMPATIBLE_VERSION" {
					t.Fatalf("task %s %v, want IMPORT_INCOMPATIBLE_VERSION", str(rec, "status"), info)
				}
			} else if len(tc.data) < len(good) && !tc.ok {
				// XAPI's End_of_file: the body ends before the archive does.
				if want := []string{"IMPORT_ERROR_PREMATURE_EOF"}; str(rec, "status") != "failure" || !slices.Equal(info, want) {
					t.Fatalf("task %s %v, want failure %v", str(rec, "status"), info, want)
				}
			} else if str(rec, "status") != "failure" || len(info) < 2 || info[0] != "IMPORT_ERROR" || info[1] == "" {
				t.Fatalf("task %s %v, want failure IMPORT_ERROR with a reason", str(rec, "status"), info)
			}
			if vms, vdis := counts(); vms != vms0 || vdis != vdis0 {
				t.Errorf("failed import left objects: VMs %d -> %d, VDIs %d -> %d", vms0, vms, vdis0, vdis)
			}
			srv.dataPlane().reconcile()
			if n := len(srv.dataPlane().disks); n != files0 {
				t.Errorf("failed import left %d disk files", n-files0)
			}
		})
	}
}

func TestImportHTTP(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	sr := dpField(srv.Simulator, dpDisk(t, srv.Simulator, vm), "SR").(string)
	var iso string
	srv.DB.Read(func(tx *Tx) {
		for _, r := range tx.All("SR") {
			if rec, _ := tx.GetClass("SR", r); str(rec, "content_type") == "iso" {
				iso = r
			}
		}
	})

	t.Run("probe", func(t *testing.T) {
		// XO's empty probe PUT, without a task.
		resp, _ := dpPut(t, dpURL(srv, "/import/", url.Values{"session_id": {session}, "sr_id": {sr}}), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("probe: %s", resp.Status)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, dpURL(srv, "/import/", url.Values{"session_id": {session}, "sr_id": {sr}}),
			io.MultiReader(strings.NewReader("x")))
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("chunked import: %s, want 403", resp.Status)
		}
	})
	t.Run("iso SR", func(t *testing.T) {
		task := dpTask(t, srv, session)
		resp, _ := dpPut(t, dpURL(srv, "/import/", url.Values{"session_id": {session}, "task_id": {task}, "sr_id": {iso}}), []byte("x"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("import into the ISO SR: %s, want 400", resp.Status)
		}
		if rec := dpWaitTask(t, srv.Simulator, task); rec["error_info"].([]string)[0] != "SR_OPERATION_NOT_SUPPORTED" {
			t.Errorf("task error %v", rec["error_info"])
		}
	})
	t.Run("POST falls through to XML-RPC", func(t *testing.T) {
		resp, err := http.Post(dpURL(srv, "/import", nil), "text/xml", strings.NewReader("not xml"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("POST /import: %s, want the XML-RPC parse error (500)", resp.Status)
		}
	})
	t.Run("current_operations while importing", func(t *testing.T) {
		data := dpExport(t, srv, session, vm, "false")
		task := dpTask(t, srv, session)
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodPut, dpURL(srv, "/import", url.Values{"session_id": {session}, "task_id": {task}}), pr)
		req.ContentLength = int64(len(data))
		done := make(chan *http.Response, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				close(done)
				return
			}
			done <- resp
		}()
		// Send ova.xml and the first chunk, then look for the new VM.
		half := len(data) / 2
		if _, err := pw.Write(data[:half]); err != nil {
			t.Fatal(err)
		}
		var found string
		for found == "" {
			srv.DB.Read(func(tx *Tx) {
				for _, r := range tx.All("VM") {
					rec, _ := tx.GetClass("VM", r)
					if strMap(rec, "current_operations")[task] == "import" {
						found = r
					}
				}
			})
		}
		if _, err := pw.Write(data[half:]); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		// The response ends when the server has read the whole body;
		// closing it earlier would abort the upload.
		if resp := <-done; resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		rec := dpWaitTask(t, srv.Simulator, task)
		if str(rec, "status") != "success" {
			t.Fatalf("task %s %v", str(rec, "status"), rec["error_info"])
		}
		if got := dpImportedVM(t, rec); got != found {
			t.Errorf("task result %s, VM seen importing %s", got, found)
		}
	})
}

// BenchmarkExport4GiB exports the 4 GiB sparse disk of a halted VM (a few
// MiB of data) over loopback HTTP; throughput is per byte of virtual disk.
func BenchmarkExport4GiB(b *testing.B) {
	m := dpModel()
	m.VMs, m.DiskSize = 2, 4<<30
	srv := dpServer(b, m)
	session := srv.Session()
	vm := dpByName(b, srv.Simulator, "VM", "vm1")
	disk := dpDisk(b, srv.Simulator, vm)
	for _, bc := range []struct {
		name, path string
		q          url.Values
	}{
		{"xva", "/export", url.Values{"ref": {vm}}},
		{"xva-zstd", "/export", url.Values{"ref": {vm}, "use_compression": {"zstd"}}},
		{"raw", "/export_raw_vdi", url.Values{"vdi": {disk}, "format": {"raw"}}},
		{"vhd", "/export_raw_vdi", url.Values{"vdi": {disk}, "format": {"vhd"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.q.Set("session_id", session)
			u := dpURL(srv, bc.path, bc.q)
			b.SetBytes(4 << 30)
			var wire int64
			for b.Loop() {
				resp, err := http.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, make([]byte, 1<<20))
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %v", resp.Status, err)
				}
				wire = n
			}
			b.ReportMetric(float64(wire), "wire-bytes")
		})
	}
}

// TestXenAPINodeTransfers runs XO's npm xen-api against the transfer
// handlers: getResource/putResource with tasks, the probe PUT before a
// stream, and the 1 PiB Content-Length hack.
func TestXenAPINodeTransfers(t *testing.T) {
	modules := os.Getenv("XOREST_NODE_MODULES")
	if modules == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			if parent := filepath.Dir(dir); parent != dir {
				dir = parent
				continue
			}
			t.Fatal("go.mod not found above the test directory")
		}
		modules = filepath.Join(dir, ".peers", "node_modules")
	}
	dpPeer(t, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(modules, "xen-api", "package.json")); err != nil {
		t.Fatalf("npm xen-api not found in %s (run `make peers`): %v", modules, err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "clients", "xen_api_transfer.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(modules), "xen-api-transfer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "transfer.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}

	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	disk := dpDisk(t, srv.Simulator, vm)
	sr := dpField(srv.Simulator, disk, "SR").(string)
	const size = 3 << 20
	empty := dpNewVDI(t, srv, session, sr, size)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", path, strings.TrimSuffix(srv.URL, "/"), srv.User, srv.Password, vm, sr, empty, strconv.Itoa(size))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var got struct {
		XVABytes           int      `json:"xva_bytes"`
		ImportResult       []string `json:"import_result"`
		ImportStreamResult []string `json:"import_stream_result"`
		RawRoundTrip       bool     `json:"raw_roundtrip"`
		VHDCookie          string   `json:"vhd_cookie"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	want := dpContent(t, srv.Simulator, disk)
	for _, res := range [][]string{got.ImportResult, got.ImportStreamResult} {
		if len(res) != 1 || !strings.HasPrefix(res[0], "OpaqueRef:") {
			t.Fatalf("putResource(/import/) resolved to %v, want one VM ref", res)
		}
		if !bytes.Equal(dpContent(t, srv.Simulator, dpDisk(t, srv.Simulator, res[0])), want) {
			t.Error("disk imported by xen-api differs from the exported one")
		}
	}
	if !got.RawRoundTrip {
		t.Error("raw upload with the 1 PiB Content-Length did not come back identical")
	}
	if got.VHDCookie != "conectix" {
		t.Errorf("VHD export starts with %q", got.VHDCookie)
	}
}

// FuzzParseOVAXML feeds arbitrary ova.xml entries to the importer's parser
// and, when they parse, to the record conversion.
func FuzzParseOVAXML(f *testing.F) {
	srv := New(dpModel())
	var ova []byte
	srv.DB.Read(func(tx *Tx) {
		for _, vm := range tx.All("VM") {
			if rec, _ := tx.GetClass("VM", vm); str(rec, "name_label") == "vm1" {
				ova, _, _ = srv.dataPlane().exportMetadata(tx, vm, false)
			}
		}
	})
	f.Add(ova)
	f.Add([]byte(`<value><struct><member><name>objects</name><value><array><data></data></array></value></member></struct></value>`))
	f.Add([]byte(`<value><struct><member><name>objects</name><value><array><data><value><struct>` +
		`<member><name>class</name><value>VM</value></member><member><name>id</name><value>Ref:1</value></member>` +
		`<member><name>snapshot</name><value><struct><member><name>VCPUs_max</name><value>x</value></member></struct></value></member>` +
		`</struct></value></data></array></value></member></struct></value>`))
	f.Add([]byte("<value>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, objects, err := parseOVAXML(b)
		if err != nil {
			return
		}
		for _, o := range objects {
			if _, ok := Schema(o.class); ok {
				_ = importRecord(o.class, o.rec)
			}
		}
	})
}

func TestImportRestore(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	uuid := dpField(srv.Simulator, vm, "uuid")
	vif := dpField(srv.Simulator, vm, "VIFs").([]string)[0]
	mac := dpField(srv.Simulator, vif, "MAC")
	sr := refByNameQuiet(srv.Simulator, "SR", "sr0")
	data := dpExport(t, srv, session, vm, "false")
	// While the VM exists its UUID is taken: the import gets a new one.
	rec := dpImport(t, srv, session, sr, data, url.Values{"restore": {"true"}})
	if got := dpField(srv.Simulator, dpImportedVM(t, rec), "uuid"); got == uuid {
		t.Fatal("import reused the UUID of a live VM")
	}
	dpCall(t, srv, session, "VM.destroy", vm)
	rec = dpImport(t, srv, session, sr, data, url.Values{"restore": {"true"}})
	restored := dpImportedVM(t, rec)
	if got := dpField(srv.Simulator, restored, "uuid"); got != uuid {
		t.Errorf("restored VM UUID %v, want %v", got, uuid)
	}
	if got := dpField(srv.Simulator, dpField(srv.Simulator, restored, "VIFs").([]string)[0], "MAC"); got != mac {
		t.Errorf("restored MAC %v, want %v", got, mac)
	}
}
