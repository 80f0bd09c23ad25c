package xapisim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapisim"
)

// nodeScript copies a client script of testdata/clients next to the npm
// peers (Node resolves ES module imports from the script's folder) and
// returns its path; it fails the test when node or npm xen-api is missing.
func nodeScript(t *testing.T, name string) string {
	t.Helper()
	modules := os.Getenv("XOREST_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(repoRoot(t), ".peers", "node_modules")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not found (apt-get install -y nodejs): %v", err)
	}
	if _, err := os.Stat(filepath.Join(modules, "xen-api", "package.json")); err != nil {
		t.Fatalf("npm xen-api not found in %s (%s): %v", modules, peerHint, err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "clients", name))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(modules), "xen-api-put-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// objectNamed returns the ref of the object of class named name.
func objectNamed(t *testing.T, sim *xapisim.Simulator, class, name string) string {
	t.Helper()
	var ref string
	sim.DB.Read(func(tx *xapisim.Tx) {
		for _, r := range tx.All(class) {
			if rec, _ := tx.GetClass(class, r); rec["name_label"] == name {
				ref = r
			}
		}
	})
	if ref == "" {
		t.Fatalf("no %s named %q", class, name)
	}
	return ref
}

// download GETs a data-plane path of srv (the simulator makes the task).
func download(t *testing.T, srv *xapisim.Server, path string, q url.Values) []byte {
	t.Helper()
	q.Set("session_id", srv.Session())
	resp, err := http.Get(strings.TrimSuffix(srv.URL, "/") + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return b
}

// newDisk creates an empty VDI of size bytes on sr.
func newDisk(t *testing.T, srv *xapisim.Server, sr string, size int64) string {
	t.Helper()
	ref, err := srv.Call(context.Background(), "VDI.create", srv.Session(), map[string]any{
		"SR": sr, "virtual_size": strconv.FormatInt(size, 10), "type": "user", "sharable": false,
		"read_only": false, "other_config": map[string]any{}, "name_label": "put_resource disk",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref.(string)
}

// disk returns the first n bytes of a VDI.
func disk(t *testing.T, srv *xapisim.Server, vdi string, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := srv.ReadVDIAt(vdi, b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// TestPutResourceUnknownLength runs npm xen-api's putResource with streams
// of unknown length (fs.ReadStream has none) against the simulator, which
// must answer as XAPI does (import.ml, import_raw_vdi.ml, vhd-tool):
//   - an XVA is read to its last disk: the import succeeds;
//   - a truncated XVA fails with IMPORT_ERROR_PREMATURE_EOF, leaving nothing;
//   - a VHD's blocks are all written, then vhd-tool looks for the footer at
//     1 PiB − 512 and the task fails with VDI_IO_ERROR, which xen-api
//     ignores: putResource resolves to undefined;
//   - a raw image is written in 2 MiB reads until 1 PiB: the last, short
//     read is written whole (the rest of its buffer holds the previous
//     read's bytes), then VDI_IO_ERROR, ignored again;
//   - a tar (XVA chunks) is read until the VDI is full: success.
func TestPutResourceUnknownLength(t *testing.T) {
	script := nodeScript(t, "put_resource.mjs")
	m := xapisim.Default()
	m.DiskSize = 8 << 20
	srv := xapisim.NewServer(t, m)
	vm := objectNamed(t, srv.Simulator, "VM", "vm1") // halted
	src := objectNamed(t, srv.Simulator, "VDI", "vm1 disk 0")
	sr := objectNamed(t, srv.Simulator, "SR", "sr0")
	pattern := bytes.Repeat([]byte("putResource of unknown length "), 40000) // 1.2 MB
	if _, err := srv.WriteVDIAt(src, pattern, 3<<20); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	xva := download(t, srv, "/export/", url.Values{"ref": {vm}})
	vhdImage := download(t, srv, "/export_raw_vdi/", url.Values{"vdi": {src}, "format": {"vhd"}})
	tarImage := download(t, srv, "/export_raw_vdi/", url.Values{"vdi": {src}, "format": {"tar"}})
	raw := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	vhdDisk, rawDisk, tarDisk := newDisk(t, srv, sr, 8<<20), newDisk(t, srv, sr, 8<<20), newDisk(t, srv, sr, 8<<20)

	type job struct {
		Name  string            `json:"name"`
		File  string            `json:"file"`
		Path  string            `json:"path"`
		Query map[string]string `json:"query"`
	}
	jobs := []job{
		{"xva", file("vm.xva", xva), "/import/", map[string]string{"sr_id": sr}},
		{"truncated_xva", file("cut.xva", xva[:len(xva)/2]), "/import/", map[string]string{"sr_id": sr}},
		{"vhd", file("disk.vhd", vhdImage), "/import_raw_vdi/", map[string]string{"vdi": vhdDisk, "format": "vhd"}},
		{"raw", file("disk.raw", raw), "/import_raw_vdi/", map[string]string{"vdi": rawDisk, "format": "raw"}},
		{"tar", file("disk.tar", tarImage), "/import_raw_vdi/", map[string]string{"vdi": tarDisk, "format": "tar"}},
	}
	arg, _ := json.Marshal(jobs)
	counts := func() map[string]int { return classCounts(srv.Simulator, []string{"VM", "VDI", "VBD", "task"}) }
	before := counts()

	type result struct {
		StreamLength *int64   `json:"stream_length"`
		Value        any      `json:"value"`
		Error        []string `json:"error"`
		Status       string   `json:"status"`
		ErrorInfo    []string `json:"error_info"`
	}
	var got map[string]result
	runPeer(t, nil, &got, "node", script, strings.TrimSuffix(srv.URL, "/"), srv.User, srv.Password, string(arg))

	for name, r := range got {
		if r.StreamLength != nil {
			t.Errorf("%s: the stream has a length (%d): putResource would not use its 1 PiB Content-Length", name, *r.StreamLength)
		}
	}
	if r := got["xva"]; r.Status != "success" || r.Error != nil {
		t.Errorf("XVA: %+v, want success", r)
	} else if refs, ok := r.Value.([]any); !ok || len(refs) != 1 || !strings.HasPrefix(refs[0].(string), "OpaqueRef:") {
		t.Errorf("XVA: putResource resolved to %#v, want one VM ref", r.Value)
	}
	if r := got["truncated_xva"]; r.Status != "failure" || len(r.Error) == 0 || r.Error[0] != "IMPORT_ERROR_PREMATURE_EOF" {
		t.Errorf("truncated XVA: %+v, want IMPORT_ERROR_PREMATURE_EOF", r)
	}
	for _, name := range []string{"vhd", "raw"} {
		if r := got[name]; r.Status != "failure" || len(r.ErrorInfo) == 0 || r.ErrorInfo[0] != "VDI_IO_ERROR" || r.Error != nil || r.Value != nil {
			t.Errorf("%s: %+v, want a VDI_IO_ERROR task that putResource ignores", name, r)
		}
	}
	if r := got["tar"]; r.Status != "success" || r.Value != tarDisk {
		t.Errorf("tar: %+v, want success with %s", r, tarDisk)
	}

	after := counts()
	if after["VM"] != before["VM"]+1 || after["task"] != before["task"] {
		t.Errorf("VMs %d -> %d, tasks %d -> %d: want the one VM of the complete XVA and no task left", before["VM"], after["VM"], before["task"], after["task"])
	}
	// The blocks of the VHD were all written before the failure.
	want := disk(t, srv, src, 8<<20)
	if !bytes.Equal(disk(t, srv, vhdDisk, 8<<20), want) {
		t.Error("VHD: the blocks written before VDI_IO_ERROR differ from the source")
	}
	if !bytes.Equal(disk(t, srv, tarDisk, 8<<20), want) {
		t.Error("tar: the disk differs from the source")
	}
	// Raw: 2 MiB, then a 1 MiB read written as 2 MiB whose second half is
	// the first read's second MiB.
	rawGot := disk(t, srv, rawDisk, 8<<20)
	wantRaw := append(bytes.Clone(raw), raw[1<<20:2<<20]...)
	wantRaw = append(wantRaw, make([]byte, 4<<20)...)
	if !bytes.Equal(rawGot, wantRaw) {
		t.Error("raw: the disk is not what vhd-tool would have written (the image, then the stale end of its buffer)")
	}
}
