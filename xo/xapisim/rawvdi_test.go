package xapisim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xorest/xorest/transfer/vhd"
)

// dpExportRaw GETs /export_raw_vdi in a task and returns the body.
func dpExportRaw(t testing.TB, srv *Server, session string, q url.Values) []byte {
	t.Helper()
	task := dpTask(t, srv, session)
	q.Set("session_id", session)
	q.Set("task_id", task)
	resp, body := dpGet(t, dpURL(srv, "/export_raw_vdi", q))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export_raw_vdi %v: %s: %s", q, resp.Status, body)
	}
	if resp.ContentLength != -1 || resp.Header.Get("task-id") != task {
		t.Errorf("Content-Length %d, task-id %q", resp.ContentLength, resp.Header.Get("task-id"))
	}
	rec := dpWaitTask(t, srv.Simulator, task)
	if str(rec, "status") != "success" {
		t.Fatalf("export_raw_vdi task: %s %v", str(rec, "status"), rec["error_info"])
	}
	return body
}

// dpImportRaw PUTs body to /import_raw_vdi in a task and returns the
// response status and the task record.
func dpImportRaw(t testing.TB, srv *Server, session string, q url.Values, body []byte) (int, Record) {
	t.Helper()
	task := dpTask(t, srv, session)
	q.Set("session_id", session)
	q.Set("task_id", task)
	resp, _ := dpPut(t, dpURL(srv, "/import_raw_vdi", q), body)
	return resp.StatusCode, dpWaitTask(t, srv.Simulator, task)
}

// dpNewVDI creates an empty VDI of size bytes on sr.
func dpNewVDI(t testing.TB, srv *Server, session, sr string, size int64) string {
	t.Helper()
	return dpCall(t, srv, session, "VDI.create", map[string]any{
		"SR": sr, "virtual_size": strconv.FormatInt(size, 10), "type": "user", "sharable": false,
		"read_only": false, "other_config": map[string]any{}, "name_label": "test disk",
	}).(string)
}

// dpQemu runs qemu-img and fails the test with its output on error.
func dpQemu(t testing.TB, args ...string) string {
	t.Helper()
	dpPeer(t, "qemu-img", "qemu-utils")
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpSparseRandom returns size bytes that are zero except for a few random
// runs, some not block-aligned.
func dpSparseRandom(size int64, seed uint64) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for range 6 {
		off := rng.Int64N(size - 300<<10)
		n := 1 + rng.Int64N(300<<10)
		for i := off; i < off+n; i++ {
			b[i] = byte(rng.Uint32())
		}
	}
	copy(b[size-700:], bytes.Repeat([]byte{0x5a}, 700))
	return b
}

func TestExportRawFormats(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	dir := t.TempDir()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	disk := dpDisk(t, srv.Simulator, vm)
	want := dpContent(t, srv.Simulator, disk)

	raw := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}})
	if !bytes.Equal(raw, want) {
		t.Fatal("raw export differs from the disk")
	}
	byUUID := dpExportRaw(t, srv, session, url.Values{"vdi": {dpField(srv.Simulator, disk, "uuid").(string)}, "format": {"raw"}})
	if !bytes.Equal(byUUID, want) {
		t.Fatal("raw export by UUID differs from the disk")
	}

	vhdData := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}, "format": {"vhd"}})
	if len(vhdData) >= len(want)/2 {
		t.Errorf("VHD of a sparse 64 MiB disk is %d bytes: unallocated blocks were sent", len(vhdData))
	}
	vhdPath, rawPath := filepath.Join(dir, "disk.vhd"), filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(vhdPath, vhdData, 0o600); err != nil {
		t.Fatal(err)
	}
	dpQemu(t, "convert", "-f", "vpc", "-O", "raw", vhdPath, rawPath)
	conv, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conv, raw) {
		t.Fatalf("qemu-img convert -f vpc of the VHD export (%d bytes) differs from the raw export (%d bytes)", len(conv), len(raw))
	}
	if again := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}, "format": {"vhd"}}); !bytes.Equal(again, vhdData) {
		t.Error("two VHD exports of the same disk differ")
	}

	// tar: XVA chunks with prefix vdi, imported back into a new VDI.
	tarData := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}, "format": {"tar"}})
	sr := dpField(srv.Simulator, disk, "SR").(string)
	nv := dpNewVDI(t, srv, session, sr, int64(len(want)))
	if code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {nv}, "format": {"tar"}}, tarData); code != 200 || str(rec, "status") != "success" {
		t.Fatalf("tar import: %d %s %v", code, str(rec, "status"), rec["error_info"])
	}
	if !bytes.Equal(dpContent(t, srv.Simulator, nv), want) {
		t.Error("tar export/import round trip differs")
	}
}

func TestImportVHD(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	dir := t.TempDir()
	sr := refByNameQuiet(srv.Simulator, "SR", "sr0")
	const size = 40<<20 + 3*512 // not a whole number of blocks
	src := dpSparseRandom(size, 1)
	rawPath, vhdPath := filepath.Join(dir, "src.raw"), filepath.Join(dir, "src.vhd")
	if err := os.WriteFile(rawPath, src, 0o600); err != nil {
		t.Fatal(err)
	}
	dpQemu(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", rawPath, vhdPath)
	vhdData, err := os.ReadFile(vhdPath)
	if err != nil {
		t.Fatal(err)
	}
	vdi := dpNewVDI(t, srv, session, sr, size)
	code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi}, "format": {"vhd"}}, vhdData)
	if code != http.StatusOK || str(rec, "status") != "success" {
		t.Fatalf("VHD import: %d %s %v", code, str(rec, "status"), rec["error_info"])
	}
	if res := str(rec, "result"); res != "<value>"+vdi+"</value>" {
		t.Errorf("task result %q", res)
	}
	if got := dpExportRaw(t, srv, session, url.Values{"vdi": {vdi}}); !bytes.Equal(got, src) {
		t.Fatal("raw export after the VHD import differs from the source")
	}
	// Our own VHD export of it goes back in too.
	again := dpExportRaw(t, srv, session, url.Values{"vdi": {vdi}, "format": {"vhd"}})
	vdi2 := dpNewVDI(t, srv, session, sr, size)
	if code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi2}, "format": {"vhd"}}, again); code != 200 || str(rec, "status") != "success" {
		t.Fatalf("re-import: %d %v", code, rec["error_info"])
	}
	if !bytes.Equal(dpContent(t, srv.Simulator, vdi2), src) {
		t.Fatal("VHD export/import round trip differs")
	}
	// A VHD larger than the VDI fails.
	small := dpNewVDI(t, srv, session, sr, 1<<20)
	if _, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {small}, "format": {"vhd"}}, vhdData); dpTaskError(rec) != "VDI_IO_ERROR" {
		t.Errorf("VHD larger than the VDI: task %s %v", str(rec, "status"), rec["error_info"])
	}
	// A malformed VHD fails with a reason.
	bad := bytes.Clone(vhdData)
	bad[600] ^= 0xff // dynamic header checksum
	_, rec = dpImportRaw(t, srv, session, url.Values{"vdi": {vdi2}, "format": {"vhd"}}, bad)
	if info, _ := rec["error_info"].([]string); dpTaskError(rec) != "VDI_IO_ERROR" || len(info) < 2 || !strings.Contains(info[1], "checksum") {
		t.Errorf("corrupt VHD: task %v", rec["error_info"])
	}
}

// dpTaskError returns the error code of a failed task ("" otherwise).
func dpTaskError(rec Record) string {
	info, _ := rec["error_info"].([]string)
	if str(rec, "status") != "failure" || len(info) == 0 {
		return ""
	}
	return info[0]
}

func TestImportRaw(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	sr := refByNameQuiet(srv.Simulator, "SR", "sr0")
	const size = 8 << 20
	data := dpSparseRandom(size, 2)

	t.Run("whole disk", func(t *testing.T) {
		vdi := dpNewVDI(t, srv, session, sr, size)
		code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi}}, data)
		if code != 200 || str(rec, "status") != "success" || str(rec, "result") != "<value>"+vdi+"</value>" {
			t.Fatalf("%d %s %v %q", code, str(rec, "status"), rec["error_info"], str(rec, "result"))
		}
		if !bytes.Equal(dpContent(t, srv.Simulator, vdi), data) {
			t.Fatal("raw import differs")
		}
		// A shorter upload rewrites only its prefix, zeros included.
		head := make([]byte, 1<<20)
		if code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi}, "format": {"raw"}}, head); code != 200 || str(rec, "status") != "success" {
			t.Fatalf("%d %v", code, rec["error_info"])
		}
		want := append(bytes.Clone(head), data[1<<20:]...)
		if !bytes.Equal(dpContent(t, srv.Simulator, vdi), want) {
			t.Fatal("partial raw import differs")
		}
	})
	t.Run("larger than the VDI", func(t *testing.T) {
		vdi := dpNewVDI(t, srv, session, sr, 1<<20)
		_, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi}}, data[:2<<20])
		if dpTaskError(rec) != "VDI_IO_ERROR" {
			t.Fatalf("task %s %v", str(rec, "status"), rec["error_info"])
		}
		// As XO's 1 PiB Content-Length trick relies on, the disk was written.
		if !bytes.Equal(dpContent(t, srv.Simulator, vdi), data[:1<<20]) {
			t.Error("the part that fits was not written")
		}
	})
	t.Run("XenCenter chunked frames", func(t *testing.T) {
		vdi := dpNewVDI(t, srv, session, sr, size)
		var body bytes.Buffer
		frame := func(off int64, b []byte) {
			var hdr [12]byte
			binary.LittleEndian.PutUint64(hdr[:8], uint64(off))
			binary.LittleEndian.PutUint32(hdr[8:], uint32(len(b)))
			body.Write(hdr[:])
			body.Write(b)
		}
		frame(4096, data[4096:8192])
		frame(size-512, data[size-512:])
		frame(0, nil)
		code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {vdi}, "chunked": {""}}, body.Bytes())
		if code != 200 || str(rec, "status") != "success" {
			t.Fatalf("%d %v", code, rec["error_info"])
		}
		want := make([]byte, size)
		copy(want[4096:8192], data[4096:8192])
		copy(want[size-512:], data[size-512:])
		if !bytes.Equal(dpContent(t, srv.Simulator, vdi), want) {
			t.Error("chunked frames written wrongly")
		}
	})
	t.Run("new VDI on sr_id", func(t *testing.T) {
		code, rec := dpImportRaw(t, srv, session, url.Values{"sr_id": {sr}, "format": {"raw"}}, data[:3<<20])
		if code != 200 || str(rec, "status") != "success" {
			t.Fatalf("%d %s %v", code, str(rec, "status"), rec["error_info"])
		}
		vdi := strings.TrimSuffix(strings.TrimPrefix(str(rec, "result"), "<value>"), "</value>")
		if got := dpField(srv.Simulator, vdi, "name_label"); got != "Imported VDI" {
			t.Errorf("name %v", got)
		}
		if !bytes.Equal(dpContent(t, srv.Simulator, vdi), data[:3<<20]) {
			t.Error("contents of the new VDI differ")
		}
	})
	t.Run("empty probe", func(t *testing.T) {
		vdi := dpNewVDI(t, srv, session, sr, size)
		resp, _ := dpPut(t, dpURL(srv, "/import_raw_vdi/", url.Values{"session_id": {session}, "vdi": {vdi}}), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("empty PUT: %s", resp.Status)
		}
	})
	for _, tc := range []struct {
		name    string
		query   url.Values
		chunked bool
		status  int
		fault   string
	}{
		{"chunked encoding", url.Values{}, true, http.StatusNotFound, "INTERNAL_ERROR"},
		{"unknown format", url.Values{"format": {"qcow3"}}, false, http.StatusNotFound, "INTERNAL_ERROR"},
		{"unknown VDI", url.Values{"vdi": {"OpaqueRef:nope"}}, false, http.StatusNotFound, "HANDLE_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vdi := dpNewVDI(t, srv, session, sr, size)
			task := dpTask(t, srv, session)
			q := url.Values{"session_id": {session}, "task_id": {task}, "vdi": {vdi}}
			for k, v := range tc.query {
				q[k] = v
			}
			var body io.Reader = bytes.NewReader(data[:4096])
			if tc.chunked {
				body = io.MultiReader(body)
			}
			req, _ := http.NewRequest(http.MethodPut, dpURL(srv, "/import_raw_vdi", q), body)
			if tc.chunked {
				req.ContentLength = -1
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %s, want %d", resp.Status, tc.status)
			}
			if rec := dpWaitTask(t, srv.Simulator, task); dpTaskError(rec) != tc.fault {
				t.Errorf("task %s %v, want %s", str(rec, "status"), rec["error_info"], tc.fault)
			}
		})
	}
}

func TestExportVHDBase(t *testing.T) {
	srv := dpServer(t, dpModel())
	session := srv.Session()
	dir := t.TempDir()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	disk := dpDisk(t, srv.Simulator, vm)
	snap := dpCall(t, srv, session, "VDI.snapshot", disk, map[string]any{}).(string)
	// Change the disk: new data in a hole, a rewrite inside seeded data,
	// and seeded data zeroed.
	writes := []struct {
		off int64
		b   []byte
	}{
		{40 << 20, bytes.Repeat([]byte{1}, 5000)},
		{100 << 10, bytes.Repeat([]byte{2}, 512)},
		{seededRegions(64<<20, true)[1].off, make([]byte, 1<<20)},
	}
	for _, w := range writes {
		if _, err := srv.WriteVDIAt(disk, w.b, w.off); err != nil {
			t.Fatal(err)
		}
	}
	base := dpExportRaw(t, srv, session, url.Values{"vdi": {snap}})
	want := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}})
	diff := dpExportRaw(t, srv, session, url.Values{"vdi": {disk}, "format": {"vhd"}, "base": {snap}})

	vr, err := vhd.NewReader(bytes.NewReader(diff))
	if err != nil {
		t.Fatal(err)
	}
	if ft := vr.Footer().DiskType; ft != vhd.DiskTypeDifferencing {
		t.Errorf("disk type %v, want differencing", ft)
	}
	if got, want := vr.Header().ParentUniqueID.String(), dpField(srv.Simulator, snap, "uuid"); got != want {
		t.Errorf("parent unique id %s, want the base's UUID %s", got, want)
	}
	// Only the changed blocks are in it.
	changed := map[int64]bool{}
	for _, w := range writes {
		for i := w.off / vhd.BlockSize; i <= (w.off+int64(len(w.b))-1)/vhd.BlockSize; i++ {
			changed[i] = true
		}
	}
	if n := vr.Allocated(); n != len(changed) {
		t.Errorf("%d blocks in the differencing VHD, want the %d changed ones", n, len(changed))
	}
	// Applied on the base it gives the disk.
	applied := bytes.Clone(base)
	for {
		i, data, err := vr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		copy(applied[i*vr.BlockSize():], data)
	}
	wantPath, gotPath := filepath.Join(dir, "want.raw"), filepath.Join(dir, "applied.raw")
	if err := os.WriteFile(wantPath, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gotPath, applied, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := dpQemu(t, "compare", "-f", "raw", "-F", "raw", gotPath, wantPath); !strings.Contains(out, "identical") {
		t.Fatalf("qemu-img compare: %s", out)
	}
	// And through the import: the differencing VHD onto a copy of the base.
	cp := dpCall(t, srv, session, "VDI.clone", snap, map[string]any{}).(string)
	if code, rec := dpImportRaw(t, srv, session, url.Values{"vdi": {cp}, "format": {"vhd"}}, diff); code != 200 || str(rec, "status") != "success" {
		t.Fatalf("import of the differencing VHD: %d %v", code, rec["error_info"])
	}
	if !bytes.Equal(dpContent(t, srv.Simulator, cp), want) {
		t.Error("differencing VHD imported onto the base differs from the disk")
	}
}

func TestTransferCancelAndDisconnect(t *testing.T) {
	m := dpModel()
	m.VMs, m.DiskSize = 2, 4<<30
	srv := dpServer(t, m)
	session := srv.Session()
	disk := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm1"))
	for _, tc := range []struct {
		name   string
		cancel bool
		status string
	}{
		{"task.cancel", true, "cancelled"},
		{"client leaves", false, "failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := dpTask(t, srv, session)
			resp, err := http.Get(dpURL(srv, "/export_raw_vdi", url.Values{"session_id": {session}, "task_id": {task}, "vdi": {disk}}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if tc.cancel {
				dpCall(t, srv, session, "task.cancel", task)
				n, _ := io.Copy(io.Discard, resp.Body)
				if n+1<<20 >= 4<<30 {
					t.Error("the whole disk was sent despite task.cancel")
				}
			}
			resp.Body.Close()
			rec := dpWaitTask(t, srv.Simulator, task)
			if str(rec, "status") != tc.status {
				t.Errorf("task %s %v, want %s", str(rec, "status"), rec["error_info"], tc.status)
			}
		})
	}
}

// FuzzChunkedFrames feeds arbitrary XenCenter chunked streams to the
// import_raw_vdi frame reader, writing into a small sparse file.
func FuzzChunkedFrames(f *testing.F) {
	frame := func(off uint64, data string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, off)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	f.Add(append(frame(512, "abc"), frame(0, "")...))
	f.Add(frame(1<<40, "x"))
	f.Add([]byte{1, 2, 3})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := os.CreateTemp(dir, "disk")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file.Name())
		defer file.Close()
		const size = 1 << 20
		if err := file.Truncate(size); err != nil {
			t.Fatal(err)
		}
		w := &diskWriter{f: file, size: size, t: &transfer{dp: &dataPlane{}}}
		_ = w.chunkedFrames(bytes.NewReader(in))
		if st, err := file.Stat(); err != nil || st.Size() != size {
			t.Fatalf("disk grew to %d bytes (%v)", st.Size(), err)
		}
	})
}
