package vhd

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
// qemu-img is the independent peer that proves the VHDs are readable.
func qemuImg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img not found: install it with `apt-get install -y qemu-utils` (make test does)")
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

// TestQemuReadsOurVHD checks with qemu-img that our VHDs hold exactly the raw
// data and that qemu sees the exact virtual size, CHS-aligned or not.
func TestQemuReadsOurVHD(t *testing.T) {
	qemu := qemuImg(t)
	for _, tc := range sizeCases {
		if tc.size == 0 {
			continue // qemu-img compare has nothing to compare
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := makeRaw(tc.size, 21, tc.filled...)
			rawPath := filepath.Join(dir, "a.raw")
			vhdPath := filepath.Join(dir, "b.vhd")
			if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(vhdPath, buildVHD(t, raw, Options{}), 0o600); err != nil {
				t.Fatal(err)
			}
			if out := run(t, qemu, "compare", "-f", "raw", rawPath, "-F", "vpc", vhdPath); !strings.Contains(out, "Images are identical") {
				t.Errorf("qemu-img compare: %s", out)
			}
			var info struct {
				Format      string `json:"format"`
				VirtualSize int64  `json:"virtual-size"`
			}
			if err := json.Unmarshal([]byte(run(t, qemu, "info", "--output=json", "-f", "vpc", vhdPath)), &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != "vpc" || info.VirtualSize != tc.size {
				t.Errorf("qemu-img info: format %q virtual-size %d, want vpc %d", info.Format, info.VirtualSize, tc.size)
			}
		})
	}
}

// TestReadQemuVHD reads VHDs that qemu-img writes (BAT at 1536, blocks in
// allocation order) with both readers, and fixed VHDs with NewReaderAt.
func TestReadQemuVHD(t *testing.T) {
	qemu := qemuImg(t)
	for _, sub := range []string{"dynamic", "fixed"} {
		for _, tc := range sizeCases {
			if tc.size == 0 || (sub == "fixed" && tc.size > 64<<20) {
				continue
			}
			t.Run(sub+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				raw := makeRaw(tc.size, 33, tc.filled...)
				rawPath := filepath.Join(dir, "a.raw")
				vhdPath := filepath.Join(dir, "q.vhd")
				if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				run(t, qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat="+sub+",force_size=on", rawPath, vhdPath)
				img, err := os.ReadFile(vhdPath)
				if err != nil {
					t.Fatal(err)
				}
				readers := map[string]func() (*Reader, error){
					"readerAt": func() (*Reader, error) { return NewReaderAt(bytes.NewReader(img), int64(len(img))) },
				}
				if sub == "dynamic" {
					readers["stream"] = func() (*Reader, error) { return NewReader(streamOnly{bytes.NewReader(img)}) }
				}
				for name, open := range readers {
					r, err := open()
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if r.Size() != tc.size {
						t.Errorf("%s: size %d, want %d", name, r.Size(), tc.size)
					}
					got, err := io.ReadAll(r.Raw())
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !bytes.Equal(got, raw) {
						t.Errorf("%s: raw content differs", name)
					}
				}
			})
		}
	}
}

// TestQemuCHSControl is the negative control for the creator application:
// with XAPI's historical "caml" creator qemu sizes the disk from the CHS
// geometry and loses the tail of a size that is not CHS-aligned, which is why
// NewStream writes "tap\0".
func TestQemuCHSControl(t *testing.T) {
	qemu := qemuImg(t)
	const size = 15000064
	img := buildVHD(t, makeRaw(size, 1, 0), Options{})
	for _, at := range []int{0, len(img) - FooterSize} {
		copy(img[at+28:at+32], "caml")
		resum(img[at:at+FooterSize], 64)
	}
	p := filepath.Join(t.TempDir(), "caml.vhd")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(run(t, qemu, "info", "--output=json", "-f", "vpc", p)), &info); err != nil {
		t.Fatal(err)
	}
	if chs := GeometryForSize(size).Sectors() * SectorSize; info.VirtualSize != chs || chs == size {
		t.Errorf("qemu-img sees %d bytes for a \"caml\" VHD, want the CHS size %d (!= %d)", info.VirtualSize, chs, size)
	}
}

// TestQemuReadsDifferencing checks that qemu opens our differencing VHDs
// (it has no parent support for vpc and reads absent blocks as zeros, which
// equals the raw image of the changed blocks).
func TestQemuReadsDifferencing(t *testing.T) {
	qemu := qemuImg(t)
	dir := t.TempDir()
	raw := makeRaw(4*BlockSize+4096, 3, 1, 4)
	rawPath, vhdPath := filepath.Join(dir, "d.raw"), filepath.Join(dir, "d.vhd")
	if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	img := buildVHD(t, raw, Options{Parent: &Parent{UniqueID: NewUUID(), Name: "base.vhd"}})
	if err := os.WriteFile(vhdPath, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run(t, qemu, "compare", "-f", "raw", rawPath, "-F", "vpc", vhdPath); !strings.Contains(out, "Images are identical") {
		t.Errorf("qemu-img compare: %s", out)
	}
}
