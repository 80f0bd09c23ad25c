package vmdk

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qemuImg returns the path of qemu-img and fails the test when it is missing:
// qemu-img is the independent peer that proves the VMDKs are readable.
func qemuImg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img not found: install it with `apt-get install -y qemu-utils` (make test does)")
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// QemuCheck runs qemu-img info, check and compare on a VMDK and the raw disk
// it should hold; the ova tests use the same checks through their own copy.
func qemuCheck(t *testing.T, qemu, rawPath, vmdkPath string, size int64) {
	t.Helper()
	var info struct {
		Format         string `json:"format"`
		VirtualSize    int64  `json:"virtual-size"`
		FormatSpecific struct {
			Data struct {
				CreateType string `json:"create-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(run(t, qemu, "info", "--output=json", "-f", "vmdk", vmdkPath)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "vmdk" || info.FormatSpecific.Data.CreateType != "streamOptimized" || info.VirtualSize != size {
		t.Errorf("qemu-img info: %+v, want vmdk streamOptimized of %d bytes", info, size)
	}
	if out := run(t, qemu, "info", "-f", "vmdk", vmdkPath); !strings.Contains(out, "create type: streamOptimized") {
		t.Errorf("qemu-img info does not say create type: streamOptimized:\n%s", out)
	}
	if out := run(t, qemu, "check", "-f", "vmdk", vmdkPath); !strings.Contains(out, "No errors were found on the image.") {
		t.Errorf("qemu-img check: %s", out)
	}
	if out := run(t, qemu, "compare", "-f", "raw", rawPath, "-F", "vmdk", vmdkPath); !strings.Contains(out, "Images are identical") {
		t.Errorf("qemu-img compare: %s", out)
	}
}

// TestQemuReadsOurVMDK checks with qemu-img that our streamOptimized images
// are what they say, have no errors and hold exactly the raw data, padded or
// not.
func TestQemuReadsOurVMDK(t *testing.T) {
	qemu := qemuImg(t)
	for _, tc := range sizeCases {
		if tc.size == 0 {
			// qemu opens a sparse extent of capacity 0 as a descriptor file
			// and refuses it, its own streamOptimized output included; the
			// "all zero" case is the empty disk qemu checks.
			continue
		}
		for _, padded := range []bool{false, true} {
			name := tc.name
			if padded {
				name += "/padded"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				size := sectorSize(tc.size) // qemu sizes disks in sectors
				raw := makeRaw(size, 11, tc.filled...)
				rawPath := filepath.Join(dir, "a.raw")
				vmdkPath := filepath.Join(dir, "b.vmdk")
				if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				opts := Options{FileName: "b.vmdk"}
				if padded {
					opts.PadTo = MaxSize(size, size)
				}
				if err := os.WriteFile(vmdkPath, buildVMDK(t, raw, opts), 0o600); err != nil {
					t.Fatal(err)
				}
				qemuCheck(t, qemu, rawPath, vmdkPath, size)
			})
		}
	}
}

// TestReadQemuVMDK reads what `qemu-img convert -O vmdk -o
// subformat=streamOptimized` writes (grain directory in the header, tables
// before the grains) and, for contrast, qemu's monolithicSparse.
func TestReadQemuVMDK(t *testing.T) {
	qemu := qemuImg(t)
	for _, sub := range []string{"streamOptimized", "monolithicSparse"} {
		for _, tc := range sizeCases {
			if tc.size == 0 {
				continue // qemu-img cannot reopen the 0-byte image it creates
			}
			t.Run(sub+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				size := sectorSize(tc.size)
				raw := makeRaw(size, 12, tc.filled...)
				rawPath := filepath.Join(dir, "a.raw")
				vmdkPath := filepath.Join(dir, "q.vmdk")
				if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				run(t, qemu, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, rawPath, vmdkPath)
				img, err := os.ReadFile(vmdkPath)
				if err != nil {
					t.Fatal(err)
				}
				v, got := readRaw(t, img)
				if v.CreateType() != sub {
					t.Errorf("createType %q, want %q", v.CreateType(), sub)
				}
				if !bytes.Equal(got, raw) {
					t.Fatal("data read from qemu's image differs")
				}
			})
		}
	}
}

// TestQemuConvertBack converts our image back to raw with qemu-img, the way
// an importer would, and compares bytes.
func TestQemuConvertBack(t *testing.T) {
	qemu := qemuImg(t)
	dir := t.TempDir()
	tc := sizeCases[len(sizeCases)-1]
	raw := makeRaw(tc.size, 13, tc.filled...)
	vmdkPath := filepath.Join(dir, "b.vmdk")
	if err := os.WriteFile(vmdkPath, buildVMDK(t, raw, Options{}), 0o600); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.raw")
	run(t, qemu, "convert", "-f", "vmdk", "-O", "raw", vmdkPath, back)
	f, err := os.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("qemu-img convert back to raw differs")
	}
}
