package xapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"testing"
	"testing/iotest"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// transferModel is a small pool whose disks are 4 MiB.
func transferModel() xapisim.Model {
	m := xapisim.Default()
	m.DiskSize = 4 << 20
	return m
}

// userDisks returns the disks of the halted guests vm1 and vm5 and their
// size.
func userDisks(t *testing.T, c *xapi.Client) (xapi.Ref, xapi.Ref, int64) {
	t.Helper()
	vdis, err := xapi.GetAllRecords[xapi.VDI](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	var found []xapi.Ref
	var size int64
	for ref, v := range vdis {
		if (v.NameLabel == "vm1 disk 0" || v.NameLabel == "vm5 disk 0") && !v.IsASnapshot {
			found = append(found, ref)
			size = v.VirtualSize
		}
		if len(found) == 2 {
			break
		}
	}
	if len(found) < 2 {
		t.Fatalf("need the disks of vm1 and vm5, found %d", len(found))
	}
	return found[0], found[1], size
}

// taskCount counts the tasks of the pool.
func taskCount(t *testing.T, c *xapi.Client) int {
	t.Helper()
	tasks, err := xapi.GetAllRecords[xapi.Task](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// TestTransferRawRoundTrip exports a disk with GetExport and writes it into
// another with PutImport, then compares the contents in the simulator.
func TestTransferRawRoundTrip(t *testing.T) {
	c, srv := newClient(t, transferModel())
	ctx := t.Context()
	src, dst, size := userDisks(t, c)
	pattern := bytes.Repeat([]byte("xorest transfer "), 4096)
	if _, err := srv.WriteVDIAt(string(src), pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	before := taskCount(t, c)

	d, err := c.GetExport(ctx, "/export_raw_vdi", url.Values{"vdi": {string(src)}, "format": {"raw"}}, "test export")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("exported %d bytes, want %d", len(data), size)
	}
	want := make([]byte, size)
	if _, err := srv.ReadVDIAt(string(src), want, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatal("exported bytes differ from the VDI")
	}

	v, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(dst)}, "format": {"raw"}}, bytes.NewReader(data), int64(len(data)), "test import")
	if err != nil {
		t.Fatalf("PutImport: %v", err)
	}
	if v != string(dst) {
		t.Errorf("task result %v, want %s", v, dst)
	}
	got := make([]byte, size)
	if _, err := srv.ReadVDIAt(string(dst), got, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("imported disk differs")
	}
	if n := taskCount(t, c); n != before {
		t.Errorf("%d tasks after the transfers, want %d (tasks destroyed)", n, before)
	}
}

// TestTransferErrors checks that XAPI's errors come from the task.
func TestTransferErrors(t *testing.T) {
	c, _ := newClient(t, transferModel())
	ctx := t.Context()
	running := guest(t, c, "Running")
	_, dst, size := userDisks(t, c)
	before := taskCount(t, c)

	t.Run("export of a running VM", func(t *testing.T) {
		_, err := c.GetExport(ctx, "/export", url.Values{"ref": {string(running)}}, "export")
		if !errors.Is(err, xapi.ErrVMBadPowerState) {
			t.Fatalf("err %v, want VM_BAD_POWER_STATE", err)
		}
	})
	t.Run("unknown VDI", func(t *testing.T) {
		_, err := c.GetExport(ctx, "/export_raw_vdi", url.Values{"vdi": {"OpaqueRef:nope"}}, "export")
		if !errors.Is(err, xapi.ErrHandleInvalid) {
			t.Fatalf("err %v, want HANDLE_INVALID", err)
		}
	})
	t.Run("body larger than the VDI", func(t *testing.T) {
		big := make([]byte, size+512)
		_, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(dst)}, "format": {"raw"}}, bytes.NewReader(big), int64(len(big)), "import")
		var xe *xapi.Error
		if !errors.As(err, &xe) || xe.Code != "VDI_IO_ERROR" {
			t.Fatalf("err %v, want VDI_IO_ERROR", err)
		}
	})
	t.Run("body that fails", func(t *testing.T) {
		boom := errors.New("boom")
		body := io.MultiReader(bytes.NewReader(make([]byte, 64<<10)), iotest.ErrReader(boom))
		_, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(dst)}, "format": {"raw"}}, body, size, "import")
		if !errors.Is(err, boom) {
			t.Fatalf("err %v, want the body's error", err)
		}
	})
	if n := taskCount(t, c); n != before {
		t.Errorf("%d tasks left, want %d", n, before)
	}
}

// TestTransferCloseEarly checks that closing an export before its end
// cancels and destroys the task, and releases the VM.
func TestTransferCloseEarly(t *testing.T) {
	c, _ := newClient(t, transferModel())
	ctx := t.Context()
	halted := guest(t, c, "Halted")
	before := taskCount(t, c)
	d, err := c.GetExport(ctx, "/export", url.Values{"ref": {string(halted)}}, "export")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(d, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	if n := taskCount(t, c); n != before {
		t.Errorf("%d tasks left, want %d", n, before)
	}
	// the VM is free again: a full export works
	d, err = c.GetExport(ctx, "/export", url.Values{"ref": {string(halted)}}, "export")
	if err != nil {
		t.Fatal(err)
	}
	xva, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	// and imports back as one new VM
	v, err := c.PutImport(context.WithoutCancel(ctx), "/import", nil, bytes.NewReader(xva), int64(len(xva)), "import")
	if err != nil {
		t.Fatal(err)
	}
	refs, ok := v.([]any)
	if !ok || len(refs) != 1 {
		t.Fatalf("import result %#v, want one VM ref", v)
	}
}

// TestProgress checks a client-made transfer task: its progress follows
// the bytes read and it is destroyed when done.
func TestProgress(t *testing.T) {
	c, _ := newClient(t, transferModel())
	ctx := t.Context()
	p, err := c.StartProgress(ctx, "nbd read", "test", 1000)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Reader(bytes.NewReader(make([]byte, 1000)))
	if _, err := io.CopyN(io.Discard, r, 500); err != nil {
		t.Fatal(err)
	}
	rec, err := xapi.GetRecord[xapi.Task](ctx, c, p.Task)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != xapi.TaskPending || rec.Progress != 0.5 {
		t.Errorf("task %s at %v, want pending at 0.5", rec.Status, rec.Progress)
	}
	p.Done(nil)
	if _, err := xapi.GetRecord[xapi.Task](ctx, c, p.Task); !errors.Is(err, xapi.ErrHandleInvalid) {
		t.Errorf("task after Done: %v, want HANDLE_INVALID", err)
	}
}
