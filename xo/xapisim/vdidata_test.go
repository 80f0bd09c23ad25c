package xapisim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// dpModel is a small pool whose guests have 64 MiB disks, for transfer
// tests.
func dpModel() Model {
	m := Default()
	m.DiskSize = 64 << 20
	return m
}

// dpServer serves m on loopback with the data plane set up, and
// closes it when the test ends.
func dpServer(t testing.TB, m Model) *Server {
	t.Helper()
	srv := NewServer(t, m)
	srv.dataPlane()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

// dpPeer fails the test when an external program is missing.
func dpPeer(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y %s` (%v)", name, pkg, err)
	}
	return path
}

// dpByName returns the ref of the object of class named name.
func dpByName(t testing.TB, s *Simulator, class, name string) string {
	t.Helper()
	var ref string
	s.DB.Read(func(tx *Tx) {
		for _, r := range tx.All(class) {
			if rec, _ := tx.GetClass(class, r); str(rec, "name_label") == name {
				ref = r
			}
		}
	})
	if ref == "" {
		t.Fatalf("no %s named %q", class, name)
	}
	return ref
}

// dpDisk returns the VDI of the VM's VBD "0".
func dpDisk(t testing.TB, s *Simulator, vm string) string {
	t.Helper()
	var vdi string
	s.DB.Read(func(tx *Tx) {
		rec, _ := tx.GetClass("VM", vm)
		for _, vbd := range strSet(rec, "VBDs") {
			br, _ := tx.GetClass("VBD", vbd)
			if str(br, "type") == "Disk" && isRef(str(br, "VDI")) {
				vdi = str(br, "VDI")
			}
		}
	})
	if vdi == "" {
		t.Fatalf("VM %s has no disk", vm)
	}
	return vdi
}

// dpField reads one field of an object.
func dpField(s *Simulator, ref, name string) any {
	var v any
	s.DB.Read(func(tx *Tx) {
		if _, rec, ok := tx.Get(ref); ok {
			v = cloneValue(rec[name])
		}
	})
	return v
}

// dpRecord returns a copy of an object's record (nil if it is gone).
func dpRecord(s *Simulator, ref string) Record {
	var rec Record
	s.DB.Read(func(tx *Tx) {
		if _, r, ok := tx.Get(ref); ok {
			rec = r.Clone()
		}
	})
	return rec
}

// dpContent returns the whole contents of a VDI.
func dpContent(t testing.TB, s *Simulator, vdi string) []byte {
	t.Helper()
	r, err := s.VDIContent(vdi)
	if err != nil {
		t.Fatalf("VDIContent(%s): %v", vdi, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read VDI %s: %v", vdi, err)
	}
	return b
}

// dpSameContent compares the contents of two VDIs, reading only where
// either file holds data (both read as zeros elsewhere).
func dpSameContent(t testing.TB, s *Simulator, a, b string) bool {
	t.Helper()
	da, sa, err := s.dataPlane().open(a)
	if err != nil {
		t.Fatal(err)
	}
	db, sb, err := s.dataPlane().open(b)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		return false
	}
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, e := range append(dataExtents(da.f, sa), dataExtents(db.f, sb)...) {
		for off := e.off; off < e.end; off += int64(len(ba)) {
			n := min(int64(len(ba)), e.end-off)
			clear(ba[:n])
			clear(bb[:n])
			_, _ = da.f.ReadAt(ba[:n], off)
			_, _ = db.f.ReadAt(bb[:n], off)
			if !bytes.Equal(ba[:n], bb[:n]) {
				return false
			}
		}
	}
	return true
}

// dpCall runs an XAPI method in session and fails the test on error.
func dpCall(t testing.TB, s *Server, session, method string, params ...any) any {
	t.Helper()
	res, err := s.Call(context.Background(), method, append([]any{session}, params...)...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

// dpFault returns the code of a *Fault error ("" otherwise).
func dpFault(err error) string {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return ""
}

func TestSeededContents(t *testing.T) {
	a := dpServer(t, dpModel())
	b := dpServer(t, dpModel())
	vm := dpByName(t, a.Simulator, "VM", "vm1")
	disk := dpDisk(t, a.Simulator, vm)
	da, db := dpContent(t, a.Simulator, disk), dpContent(t, b.Simulator, disk)
	if !bytes.Equal(da, db) {
		t.Fatal("two simulators of the same model hold different disk contents")
	}
	if int64(len(da)) != 64<<20 {
		t.Fatalf("disk contents are %d bytes, want %d", len(da), 64<<20)
	}
	var nonZero int
	for _, r := range seededRegions(64<<20, true) {
		if allZero(da[r.off : r.off+r.n]) {
			t.Errorf("seeded region at %d is all zeros", r.off)
		}
		nonZero += int(r.n)
	}
	if allZero(da[40<<20:41<<20]) != true {
		t.Error("a hole holds data")
	}
	// The model's snapshot of vm1 holds the disk minus its live writes.
	var snapDisk string
	a.DB.Read(func(tx *Tx) {
		for _, ref := range tx.All("VDI") {
			rec, _ := tx.GetClass("VDI", ref)
			if str(rec, "snapshot_of") == disk {
				snapDisk = ref
			}
		}
	})
	if snapDisk == "" {
		t.Fatal("vm1's disk has no snapshot in the model")
	}
	ds := dpContent(t, a.Simulator, snapDisk)
	live := seededRegions(64<<20, true)[3]
	if !bytes.Equal(ds[:live.off], da[:live.off]) && bytes.Equal(ds, da) {
		t.Fatal("snapshot contents do not derive from the disk's")
	}
	if bytes.Equal(ds[live.off:live.off+live.n], da[live.off:live.off+live.n]) {
		t.Error("the disk's live writes are in its snapshot")
	}
	first := seededRegions(64<<20, true)[2]
	if !bytes.Equal(ds[first.off:first.off+first.n], da[first.off:first.off+first.n]) {
		t.Error("the snapshot and the disk differ outside the live writes")
	}
	// The file is sparse: far less allocated than the virtual size.
	d, _, err := a.dataPlane().open(disk)
	if err != nil {
		t.Fatal(err)
	}
	if ext := dataExtents(d.f, 64<<20); len(ext) > 0 {
		var n int64
		for _, e := range ext {
			n += e.end - e.off
		}
		if n > 16<<20 {
			t.Errorf("%d bytes allocated for %d bytes of seeded data", n, nonZero)
		}
	}
}

func TestContentsFollowRecords(t *testing.T) {
	srv := dpServer(t, dpModel())
	s := srv.Session()
	vm := dpByName(t, srv.Simulator, "VM", "vm1")
	disk := dpDisk(t, srv.Simulator, vm)
	orig := dpContent(t, srv.Simulator, disk)

	snap := dpCall(t, srv, s, "VDI.snapshot", disk, map[string]any{}).(string)
	clone := dpCall(t, srv, s, "VDI.clone", disk, map[string]any{}).(string)
	sr := dpField(srv.Simulator, disk, "SR").(string)
	cp := dpCall(t, srv, s, "VDI.copy", disk, sr, NullRef, NullRef).(string)
	vmCopy := dpCall(t, srv, s, "VM.copy", vm, "vm1 copy", sr).(string)
	vmCopyDisk := dpDisk(t, srv.Simulator, vmCopy)

	// Writing the disk after the copies leaves them alone.
	patch := bytes.Repeat([]byte{0xAB}, 4096)
	if _, err := srv.WriteVDIAt(disk, patch, 8<<20); err != nil {
		t.Fatal(err)
	}
	for name, ref := range map[string]string{"snapshot": snap, "clone": clone, "copy": cp, "VM.copy": vmCopyDisk} {
		if got := dpContent(t, srv.Simulator, ref); !bytes.Equal(got, orig) {
			t.Errorf("%s: contents differ from the disk's at the time of the copy", name)
		}
	}
	now := dpContent(t, srv.Simulator, disk)
	if !bytes.Equal(now[8<<20:8<<20+4096], patch) {
		t.Error("write lost")
	}
	// A snapshot of a snapshot's clone, through a destroyed origin.
	clone2 := dpCall(t, srv, s, "VDI.clone", snap, map[string]any{}).(string)
	dpCall(t, srv, s, "VDI.destroy", snap)
	if got := dpContent(t, srv.Simulator, clone2); !bytes.Equal(got, orig) {
		t.Error("clone of a destroyed snapshot lost its contents")
	}
	// Destroy deletes the file.
	dp := srv.dataPlane()
	d, _, err := dp.open(clone)
	if err != nil {
		t.Fatal(err)
	}
	dpCall(t, srv, s, "VDI.destroy", clone)
	if _, err := d.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("contents of a destroyed VDI remain: %v", err)
	}
	if _, err := os.Stat(d.f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("content file %s has a name: %v", d.f.Name(), err)
	}
	if _, err := srv.ReadVDIAt(clone, make([]byte, 512), 0); dpFault(err) != "HANDLE_INVALID" {
		t.Errorf("read of a destroyed VDI: %v, want HANDLE_INVALID", err)
	}
	// Storage migration moves the contents with the disk.
	running := dpDisk(t, srv.Simulator, dpByName(t, srv.Simulator, "VM", "vm0"))
	before := dpContent(t, srv.Simulator, running)
	local := dpByName(t, srv.Simulator, "SR", "host0 local storage")
	moved := dpCall(t, srv, s, "VDI.pool_migrate", running, local, map[string]any{}).(string)
	if got := dpContent(t, srv.Simulator, moved); !bytes.Equal(got, before) {
		t.Error("VDI.pool_migrate lost the contents")
	}
	// So does migrate_send with storage motion.
	vm0 := dpByName(t, srv.Simulator, "VM", "vm0")
	before = dpContent(t, srv.Simulator, dpDisk(t, srv.Simulator, vm0))
	h1 := dpByName(t, srv.Simulator, "host", "host1")
	dest := dpCall(t, srv, s, "host.migrate_receive", h1, dpByName(t, srv.Simulator, "network", "network0"), map[string]any{}).(map[string]any)
	dpCall(t, srv, s, "VM.migrate_send", vm0, dest, true,
		map[string]any{dpDisk(t, srv.Simulator, vm0): dpByName(t, srv.Simulator, "SR", "host1 local storage")},
		map[string]any{}, map[string]any{})
	if got := dpContent(t, srv.Simulator, dpDisk(t, srv.Simulator, vm0)); !bytes.Equal(got, before) {
		t.Error("VM.migrate_send lost the contents")
	}
	// Out-of-range writes fail.
	if _, err := srv.WriteVDIAt(disk, make([]byte, 1024), 64<<20-512); dpFault(err) != "VDI_IO_ERROR" {
		t.Errorf("write past the end: %v, want VDI_IO_ERROR", err)
	}
	// A new VDI is all zeros, sparse.
	nv := dpCall(t, srv, s, "VDI.create", map[string]any{
		"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": false, "read_only": false,
		"other_config": map[string]any{}, "name_label": "empty",
	}).(string)
	if got := dpContent(t, srv.Simulator, nv); len(got) != 1<<20 || !allZero(got) {
		t.Errorf("new VDI: %d bytes, zero=%v", len(got), allZero(got))
	}
	// Close deletes the contents.
	kept, _, err := dp.open(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.f.Stat(); !errors.Is(err, os.ErrClosed) || len(dp.disks) != 0 {
		t.Errorf("contents remain after Close: %v, %d disks", err, len(dp.disks))
	}
	if _, err := srv.ReadVDIAt(disk, make([]byte, 512), 0); !errors.Is(err, errClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

func TestCopySparse(t *testing.T) {
	dir := t.TempDir()
	src, err := os.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	const size = 64 << 20
	if err := src.Truncate(size); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("xapisim"), 100000)
	for _, off := range []int64{0, 10 << 20, size - int64(len(data))} {
		if _, err := src.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := copySparse(dst, src, size); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src.Name())
	b, _ := os.ReadFile(dst.Name())
	if !bytes.Equal(a, b) {
		t.Fatal("sparse copy differs")
	}
	r := newDiskReader(context.Background(), &vdiDisk{f: src}, size, nil)
	c, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(a, c) {
		t.Fatalf("diskReader: %v, equal=%v", err, bytes.Equal(a, c))
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, newDiskReader(context.Background(), &vdiDisk{f: src}, size, nil))
	if err != nil || n != size || !bytes.Equal(a, out.Bytes()) {
		t.Fatalf("diskReader.WriteTo: %d bytes, %v, equal=%v", n, err, bytes.Equal(a, out.Bytes()))
	}
}

// dpWaitTask waits until task leaves pending and returns its record.
func dpWaitTask(t testing.TB, s *Simulator, task string) Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rec Record
		s.DB.Read(func(tx *Tx) {
			if r, ok := tx.GetClass(taskClass, task); ok {
				rec = r.Clone()
			}
		})
		if rec == nil {
			t.Fatalf("task %s is gone", task)
		}
		if st := str(rec, "status"); st != "pending" && st != "cancelling" {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still pending", task)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
