package ova

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xorest/xorest/transfer/vmdk"
)

func TestInvalidVM(t *testing.T) {
	disk := diskOf("a", make([]byte, 1<<20))
	good := VM{Name: "vm", CPUs: 1, Memory: 1 << 30, Disks: []Disk{disk}}
	cases := []struct {
		name string
		edit func(vm *VM)
	}{
		{"no name", func(vm *VM) { vm.Name = " " }},
		{"no CPU", func(vm *VM) { vm.CPUs = 0 }},
		{"no memory", func(vm *VM) { vm.Memory = 1000 }},
		{"bad firmware", func(vm *VM) { vm.Firmware = "coreboot" }},
		{"zero capacity", func(vm *VM) { vm.Disks = []Disk{{Capacity: 0, Open: disk.Open}} }},
		{"no source", func(vm *VM) { vm.Disks = []Disk{{Capacity: 1 << 20}} }},
		{"16 disks", func(vm *VM) { vm.Disks = make([]Disk, 16) }},
		{"NIC without network", func(vm *VM) { vm.NICs = []NIC{{}} }},
	}
	if _, err := New(context.Background(), good, Options{}); err != nil {
		t.Fatalf("valid VM: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vm := good
			vm.Disks = append([]Disk(nil), good.Disks...)
			tc.edit(&vm)
			if _, err := New(context.Background(), vm, Options{}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
}

// TestChangedSource checks that a source yielding other data than announced
// fails the archive instead of producing a corrupt one.
func TestChangedSource(t *testing.T) {
	full := rawDisk(4<<20, 5, [2]int64{0, 4 << 20})
	t.Run("two pass, data changed", func(t *testing.T) {
		calls := 0
		vm := VM{Name: "vm", CPUs: 1, Memory: 1 << 30, Disks: []Disk{{Capacity: 4 << 20, Open: func(context.Context) (vmdk.BlockSource, error) {
			calls++
			data := full
			if calls > 1 {
				data = rawDisk(4<<20, 6, [2]int64{0, 2 << 20}) // compresses to less
			}
			return vmdk.ReaderAtSource(bytes.NewReader(data), 4<<20, 0), nil
		}}}}
		a, err := New(context.Background(), vm, Options{Sizing: SizeTwoPass})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(context.Background(), io.Discard); !errors.Is(err, ErrChanged) {
			t.Fatalf("err %v, want ErrChanged", err)
		}
	})
	t.Run("padded, more than allocated", func(t *testing.T) {
		d := diskOf("a", full)
		d.Allocated = 1 << 20
		a, err := New(context.Background(), VM{Name: "vm", CPUs: 1, Memory: 1 << 30, Disks: []Disk{d}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(context.Background(), io.Discard); !errors.Is(err, ErrChanged) {
			t.Fatalf("err %v, want ErrChanged", err)
		}
	})
	t.Run("open fails", func(t *testing.T) {
		boom := errors.New("boom")
		vm := VM{Name: "vm", CPUs: 1, Memory: 1 << 30, Disks: []Disk{{Capacity: 1 << 20, Open: func(context.Context) (vmdk.BlockSource, error) { return nil, boom }}}}
		a, err := New(context.Background(), vm, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(context.Background(), io.Discard); !errors.Is(err, boom) {
			t.Fatalf("err %v, want boom", err)
		}
	})
}

type closingSource struct {
	vmdk.BlockSource
	closed *int
}

func (c closingSource) Close() error { *c.closed++; return nil }

// TestManyDisksSCSI puts six disks on one LSI Logic controller (IDE holds
// four) and checks qemu reads each VMDK; sources are closed after use.
func TestManyDisksSCSI(t *testing.T) {
	qemu := peer(t, "qemu-img", "apt-get install -y qemu-utils")
	closed := 0
	vm := VM{Name: "many", CPUs: 1, Memory: 512 << 20}
	var raws [][]byte
	for i := range 6 {
		raw := rawDisk(int64(i+1)<<20, uint64(i), [2]int64{int64(i) * 1000, 5000})
		raws = append(raws, raw)
		vm.Disks = append(vm.Disks, Disk{Capacity: int64(len(raw)), BlockSize: vmdk.GrainSize, Open: func(context.Context) (vmdk.BlockSource, error) {
			return closingSource{vmdk.ReaderAtSource(bytes.NewReader(raw), int64(len(raw)), vmdk.GrainSize), &closed}, nil
		}})
	}
	a, err := New(context.Background(), vm, Options{Sizing: SizeTwoPass})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := a.Write(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if closed != 12 {
		t.Errorf("sources closed %d times, want 12 (two passes of six disks)", closed)
	}
	ovf := string(a.OVF())
	if strings.Count(ovf, "<rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>") != 1 || strings.Contains(ovf, "IDE Controller") {
		t.Errorf("want one LSI Logic controller and no IDE controller:\n%s", ovf)
	}
	dir := t.TempDir()
	tr := tar.NewReader(&buf)
	for i := -1; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i < 0 {
			continue
		}
		img, _ := io.ReadAll(tr)
		r, err := vmdk.NewReader(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Descriptor(), `ddb.adapterType = "lsilogic"`) {
			t.Errorf("%s: descriptor %s", h.Name, r.Descriptor())
		}
		p := filepath.Join(dir, h.Name)
		if err := os.WriteFile(p, img, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+".raw", raws[i], 0o600); err != nil {
			t.Fatal(err)
		}
		if out := run(t, qemu, "compare", "-f", "raw", p+".raw", "-F", "vmdk", p); !strings.Contains(out, "Images are identical") {
			t.Errorf("%s: %s", h.Name, out)
		}
	}
}

// TestLargeEntryHeader checks that a VMDK entry of 8 GiB or more gets a
// one-block GNU header with a base-256 size that tar readers parse, as the
// Size computation assumes.
func TestLargeEntryHeader(t *testing.T) {
	a := &Archive{}
	for _, size := range []int64{maxUSTAR, maxUSTAR + 1, 3 << 40} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(a.header("big.vmdk", size)); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != tarBlock {
			t.Fatalf("size %d: header of %d bytes, want one block", size, buf.Len())
		}
		h, err := tar.NewReader(&buf).Next()
		if err != nil || h.Size != size {
			t.Fatalf("size %d: read back %v, %v", size, h, err)
		}
	}
}
