package vmdk

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// libvmdkScript prints the media size and the SHA-256 of the whole disk as
// libvmdk (an implementation independent of qemu) reads it.
const libvmdkScript = `
import hashlib, sys, pyvmdk
h = pyvmdk.handle()
h.open(sys.argv[1])
h.open_extent_data_files()  # the extent named in the descriptor, from the working directory
size, done, sha = h.get_media_size(), 0, hashlib.sha256()
while done < size:
    b = h.read_buffer(min(1 << 20, size - done))
    if not b:
        break
    sha.update(b)
    done += len(b)
print(size, done, sha.hexdigest())
`

// python returns the interpreter that has the libvmdk bindings and fails the
// test when they are missing.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("XOREST_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import pyvmdk").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import pyvmdk (%v: %s): install it with `apt-get install -y python3-libvmdk` (make test does)", py, err, out)
	}
	return py
}

// TestLibvmdkReadsOurVMDK has libvmdk read our images, padded or not.
func TestLibvmdkReadsOurVMDK(t *testing.T) {
	py := python(t)
	for _, tc := range sizeCases {
		if tc.size == 0 {
			continue
		}
		for _, padded := range []bool{false, true} {
			name := tc.name
			if padded {
				name += "/padded"
			}
			t.Run(name, func(t *testing.T) {
				size := sectorSize(tc.size)
				raw := makeRaw(size, 16, tc.filled...)
				opts := Options{FileName: "b.vmdk"}
				if padded {
					opts.PadTo = MaxSize(size, size)
				}
				path := filepath.Join(t.TempDir(), "b.vmdk")
				if err := os.WriteFile(path, buildVMDK(t, raw, opts), 0o600); err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(raw)
				want := strings.Join([]string{itoa(size), itoa(size), hex.EncodeToString(sum[:])}, " ")
				cmd := exec.Command(py, "-c", libvmdkScript, path)
				cmd.Dir = filepath.Dir(path)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("libvmdk: %v\n%s", err, out)
				}
				if got := strings.TrimSpace(string(out)); got != want {
					t.Errorf("libvmdk reads %q, want %q", got, want)
				}
			})
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
