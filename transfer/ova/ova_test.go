package ova

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/vmdk"
)

func peer(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `%s` (make test does)", name, hint)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rawDisk returns a disk of size bytes with random data in the given
// [offset, length) pairs.
func rawDisk(size int64, seed uint64, spans ...[2]int64) []byte {
	raw := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, s := range spans {
		for i := s[0]; i < s[0]+s[1]; i++ {
			raw[i] = byte(rng.Uint32())
		}
	}
	return raw
}

func diskOf(name string, raw []byte) Disk {
	return Disk{
		Name:     name,
		Capacity: int64(len(raw)),
		Open: func(context.Context) (vmdk.BlockSource, error) {
			return vmdk.ReaderAtSource(bytes.NewReader(raw), int64(len(raw)), 0), nil
		},
	}
}

// envelope is the part of the OVF the tests check.
type envelope struct {
	XMLName    xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	References struct {
		Files []struct {
			Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
			ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
			Size int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
		} `xml:"File"`
	} `xml:"References"`
	DiskSection struct {
		Disks []struct {
			Capacity int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
			FileRef  string `xml:"http://schemas.dmtf.org/ovf/envelope/1 fileRef,attr"`
			DiskID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 diskId,attr"`
			Format   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 format,attr"`
		} `xml:"Disk"`
	} `xml:"DiskSection"`
	NetworkSection struct {
		Networks []struct {
			Name string `xml:"http://schemas.dmtf.org/ovf/envelope/1 name,attr"`
		} `xml:"Network"`
	} `xml:"NetworkSection"`
	VirtualSystem struct {
		ID         string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Name       string `xml:"Name"`
		Annotation string `xml:"AnnotationSection>Annotation"`
		OS         struct {
			ID int `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		} `xml:"OperatingSystemSection"`
		Items []struct {
			ResourceType    int    `xml:"ResourceType"`
			ResourceSubType string `xml:"ResourceSubType"`
			VirtualQuantity int64  `xml:"VirtualQuantity"`
			AllocationUnits string `xml:"AllocationUnits"`
			HostResource    string `xml:"HostResource"`
			Connection      string `xml:"Connection"`
			Address         string `xml:"Address"`
			InstanceID      string `xml:"InstanceID"`
			Parent          string `xml:"Parent"`
		} `xml:"VirtualHardwareSection>Item"`
	} `xml:"VirtualSystem"`
}

// TestWriteReadBack writes an OVA with three disks and two NICs, lists it
// with GNU tar, parses the OVF, extracts each VMDK and has qemu-img compare
// it with its raw disk, for both sizing strategies.
func TestWriteReadBack(t *testing.T) {
	qemu := peer(t, "qemu-img", "apt-get install -y qemu-utils")
	gnuTar := peer(t, "tar", "apt-get install -y tar")
	raws := [][]byte{
		rawDisk(40<<20, 1, [2]int64{0, 1 << 20}, [2]int64{35 << 20, 100000}),
		rawDisk(1<<20+512, 2, [2]int64{0, 1<<20 + 512}),
		rawDisk(8<<20, 3),
	}
	for _, tc := range []struct {
		name   string
		sizing Sizing
	}{{"padded", SizePadded}, {"two pass", SizeTwoPass}} {
		t.Run(tc.name, func(t *testing.T) {
			vm := VM{Name: "web <01> & co", Description: "front \"end\"", OSID: 101, CPUs: 2, Memory: 1536 << 20,
				NICs: []NIC{{Network: "LAN", MAC: "aa:bb:cc:dd:ee:01"}, {Network: "LAN"}, {Network: "DMZ"}}}
			for i, raw := range raws {
				vm.Disks = append(vm.Disks, diskOf([]string{"xvda", "xvdb", "empty"}[i], raw))
			}
			vm.Disks[0].Allocated = 2 << 20 * 2 // blocks 0 and 17
			a, err := New(context.Background(), vm, Options{Sizing: tc.sizing, ModTime: time.Unix(1700000000, 0)})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			ovaPath := filepath.Join(dir, "vm.ova")
			f, err := os.Create(ovaPath)
			if err != nil {
				t.Fatal(err)
			}
			n, err := a.Write(context.Background(), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(ovaPath); n != a.Size() || st.Size() != a.Size() {
				t.Fatalf("wrote %d bytes (file %d), Size() said %d", n, st.Size(), a.Size())
			}

			listed := strings.Fields(run(t, gnuTar, "-tf", ovaPath))
			want := []string{"web__01____co.ovf", "web__01____co-disk1.vmdk", "web__01____co-disk2.vmdk", "web__01____co-disk3.vmdk"}
			if strings.Join(listed, " ") != strings.Join(want, " ") || strings.Join(a.Files(), " ") != strings.Join(want, " ") {
				t.Fatalf("tar lists %q (Files %q), want %q", listed, a.Files(), want)
			}

			of, err := os.Open(ovaPath)
			if err != nil {
				t.Fatal(err)
			}
			defer of.Close()
			tr := tar.NewReader(of)
			var env envelope
			sizes := map[string]int64{}
			for i := 0; ; i++ {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				sizes[h.Name] = h.Size
				if i == 0 {
					body, _ := io.ReadAll(tr)
					if err := xml.Unmarshal(body, &env); err != nil {
						t.Fatalf("OVF does not parse: %v\n%s", err, body)
					}
					continue
				}
				vmdkPath := filepath.Join(dir, h.Name)
				rawPath := vmdkPath + ".raw"
				out, err := os.Create(vmdkPath)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(out, tr); err != nil {
					t.Fatal(err)
				}
				out.Close()
				if err := os.WriteFile(rawPath, raws[i-1], 0o600); err != nil {
					t.Fatal(err)
				}
				if out := run(t, qemu, "info", "-f", "vmdk", vmdkPath); !strings.Contains(out, "create type: streamOptimized") {
					t.Errorf("%s: qemu-img info: %s", h.Name, out)
				}
				if out := run(t, qemu, "check", "-f", "vmdk", vmdkPath); !strings.Contains(out, "No errors were found") {
					t.Errorf("%s: qemu-img check: %s", h.Name, out)
				}
				if out := run(t, qemu, "compare", "-f", "raw", rawPath, "-F", "vmdk", vmdkPath); !strings.Contains(out, "Images are identical") {
					t.Errorf("%s: qemu-img compare: %s", h.Name, out)
				}
			}

			if env.VirtualSystem.ID != vm.Name || env.VirtualSystem.Name != vm.Name || env.VirtualSystem.Annotation != vm.Description || env.VirtualSystem.OS.ID != 101 {
				t.Errorf("VirtualSystem %+v", env.VirtualSystem)
			}
			if len(env.References.Files) != 3 || len(env.DiskSection.Disks) != 3 {
				t.Fatalf("References %+v, DiskSection %+v", env.References, env.DiskSection)
			}
			for i, file := range env.References.Files {
				d := env.DiskSection.Disks[i]
				if file.Href != want[i+1] || file.Size != sizes[file.Href] || file.Size != a.DiskSizes()[i] {
					t.Errorf("File %+v: tar entry is %d bytes", file, sizes[file.Href])
				}
				if d.FileRef != file.ID || d.Capacity != (int64(len(raws[i]))+511)/512*512 || d.Format != DiskFormat {
					t.Errorf("Disk %+v", d)
				}
			}
			if got := env.NetworkSection.Networks; len(got) != 2 || got[0].Name != "LAN" || got[1].Name != "DMZ" {
				t.Errorf("networks %+v", got)
			}
			counts := map[int]int{}
			for _, it := range env.VirtualSystem.Items {
				counts[it.ResourceType]++
				switch it.ResourceType {
				case 3:
					if it.VirtualQuantity != 2 {
						t.Errorf("CPU item %+v", it)
					}
				case 4:
					if it.VirtualQuantity != 1536 || it.AllocationUnits != "byte * 2^20" {
						t.Errorf("memory item %+v", it)
					}
				}
			}
			if counts[3] != 1 || counts[4] != 1 || counts[5] != 2 || counts[17] != 3 || counts[10] != 3 {
				t.Errorf("items by resource type %v, want 1 CPU, 1 memory, 2 IDE, 3 disks, 3 NICs", counts)
			}
			if tc.sizing == SizeTwoPass && a.DiskSizes()[2] > 100<<10 {
				t.Errorf("two-pass VMDK of an empty disk is %d bytes", a.DiskSizes()[2])
			}
		})
	}
}
