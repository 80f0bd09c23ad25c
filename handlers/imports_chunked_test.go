package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xorest/xorest/transfer/vhd"
	"github.com/xorest/xorest/xo/xapi"
)

// unsized hides the length of a reader, so that net/http's client sends it
// chunked, as `curl -T -` does with a pipe.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// uploadChunked sends body without a Content-Length.
func (sf *simFixture) uploadChunked(t *testing.T, method, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp := sf.transfer(t, t.Context(), method, url, unsized{bytes.NewReader(body)}, -1)
	return resp, readAll(t, resp)
}

// leftovers counts what a failed upload could leave behind in pool 0.
func (sf *simFixture) leftovers(t *testing.T) [3]int {
	t.Helper()
	return [3]int{sf.countOf(t, "VM"), sf.countOf(t, "VDI"), sf.taskTotal(t)}
}

// qemuVHD converts raw into a dynamic VHD of exactly its size with
// qemu-img (a VHD layout xorest did not write).
func qemuVHD(t *testing.T, raw []byte) []byte {
	t.Helper()
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img not found: apt-get install -y qemu-utils")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.vhd")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportChunked uploads images without a Content-Length: an XVA
// streams through to XAPI (1 PiB Content-Length, XAPI reads the archive to
// its last disk), a VHD is sent with the length its block table gives, a
// raw image is refused; nothing is left behind by a failure.
func TestImportChunked(t *testing.T) {
	sf, base := transferFixture(t)
	pool := sf.idOf(t, "pools", "pool0")
	vm := sf.idOf(t, "vms", "vm1")
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	dst := sf.idOf(t, "vdis", "vm5 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte("chunked upload "), 200_000), 8192); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, src, 4<<20)
	xvaData := sf.download(t, base, "/vms/"+vm+".xva")
	zstdXVA := sf.download(t, base, "/vms/"+vm+".xva?compress=zstd")
	vhdData := sf.download(t, base, "/vdis/"+src+".vhd")
	qemuData := qemuVHD(t, want)
	var vdiObj map[string]any
	sf.getJSON(t, BasePath+"/vdis/"+src, &vdiObj)
	sr := vdiObj["$SR"].(string)

	tests := []struct {
		name    string
		method  string
		path    string
		body    []byte
		status  int
		errHas  string
		created string // the collection of the object answered with 201
		written bool   // dst holds want afterwards
	}{
		{name: "XVA", method: "POST", path: "/pools/" + pool + "/vms", body: xvaData, status: 201, created: "VM"},
		{name: "zstd XVA", method: "POST", path: "/pools/" + pool + "/vms?sr=" + sr, body: zstdXVA, status: 201, created: "VM"},
		{name: "truncated XVA", method: "POST", path: "/pools/" + pool + "/vms", body: xvaData[:len(xvaData)/2], status: 400, errHas: "truncated XVA"},
		{name: "truncated zstd XVA", method: "POST", path: "/pools/" + pool + "/vms", body: zstdXVA[:len(zstdXVA)-100], status: 400, errHas: "truncated XVA"},
		{name: "VHD into a VDI", method: "PUT", path: "/vdis/" + dst + ".vhd", body: vhdData, status: 204, written: true},
		{name: "qemu-img VHD into a VDI", method: "PUT", path: "/vdis/" + dst + ".vhd", body: qemuData, status: 204, written: true},
		{name: "VHD cut in its blocks", method: "PUT", path: "/vdis/" + dst + ".vhd", body: vhdData[:len(vhdData)-vhd.BlockSize/2], status: 400, errHas: "truncated VHD"},
		{name: "VHD cut in its block table", method: "PUT", path: "/vdis/" + dst + ".vhd", body: vhdData[:2100], status: 400, errHas: "truncated VHD"},
		{name: "raw into a VDI", method: "PUT", path: "/vdis/" + dst + ".raw", body: want, status: 411, errHas: "a raw image needs a Content-Length"},
		{name: "VHD into a new VDI", method: "POST", path: "/srs/" + sr + "/vdis?name_label=chunked", body: vhdData, status: 201, created: "VDI"},
		{name: "qemu-img VHD into a new VDI", method: "POST", path: "/srs/" + sr + "/vdis", body: qemuData, status: 201, created: "VDI"},
		{name: "truncated VHD into a new VDI", method: "POST", path: "/srs/" + sr + "/vdis", body: vhdData[:len(vhdData)-1024], status: 400, errHas: "truncated VHD"},
		{name: "raw into a new VDI", method: "POST", path: "/srs/" + sr + "/vdis?raw", body: want, status: 411, errHas: "a raw image needs a Content-Length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sf.sims[0].WriteVDIAt(dst, make([]byte, 4<<20), 0); err != nil {
				t.Fatal(err)
			}
			before := sf.leftovers(t)
			resp, body := sf.uploadChunked(t, tt.method, base+BasePath+tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(string(body), tt.errHas) {
				t.Errorf("answer %s does not say %q", body, tt.errHas)
			}
			after := sf.leftovers(t)
			wantAfter := before
			switch tt.created {
			case "VM":
				wantAfter[0]++
				wantAfter[1]++ // its disk
			case "VDI":
				wantAfter[1]++
			}
			if after != wantAfter {
				t.Errorf("VMs, VDIs, tasks: %v -> %v, want %v", before, after, wantAfter)
			}
			if got := sf.vdiBytes(t, dst, 4<<20); bytes.Equal(got, want) != tt.written {
				t.Errorf("VDI written: %v, want %v", !tt.written, tt.written)
			}
			if tt.created == "" {
				return
			}
			var out struct{ ID string }
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			switch tt.created {
			case "VM":
				rec, err := xapi.GetRecord[xapi.VM](t.Context(), sf.clients[0], sf.ref(t, "VM", out.ID))
				if err != nil || rec.NameLabel != "vm1" {
					t.Errorf("imported VM %q, %v", rec.NameLabel, err)
				}
			case "VDI":
				rec, err := xapi.GetRecord[xapi.VDI](t.Context(), sf.clients[0], sf.ref(t, "VDI", out.ID))
				if err != nil || rec.VirtualSize != int64(len(want)) {
					t.Errorf("new VDI of %d bytes (%v), want %d from the VHD footer", rec.VirtualSize, err, len(want))
				}
				if got := sf.vdiBytes(t, out.ID, 4<<20); !bytes.Equal(got, want) {
					t.Error("the new VDI differs from the source")
				}
			}
		})
	}
}

// TestImportChunkedClientLeaves cuts chunked uploads in the middle (the
// client goes away): once the handler has returned, nothing is left.
func TestImportChunkedClientLeaves(t *testing.T) {
	sf, _ := transferFixture(t)
	finished := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { finished <- struct{}{} }()
		sf.h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	pool := sf.idOf(t, "pools", "pool0")
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte("leaving "), 400_000), 0); err != nil {
		t.Fatal(err)
	}
	xvaData := sf.download(t, ts.URL, "/vms/"+sf.idOf(t, "vms", "vm1")+".xva")
	<-finished
	vhdData := sf.download(t, ts.URL, "/vdis/"+src+".vhd")
	<-finished
	var vdiObj map[string]any
	sf.getJSON(t, BasePath+"/vdis/"+src, &vdiObj)
	sr := vdiObj["$SR"].(string)

	for _, tc := range []struct {
		name, path string
		body       []byte
	}{
		{"XVA", BasePath + "/pools/" + pool + "/vms", xvaData},
		{"VHD into a new VDI", BasePath + "/srs/" + sr + "/vdis", vhdData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := sf.leftovers(t)
			u, _ := url.Parse(ts.URL)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			half := tc.body[:len(tc.body)/2]
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", tc.path, u.Host, tokenCookie, sf.token, len(half))
			if _, err := conn.Write(half); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close() // mid-chunk, without the last chunk
			<-finished
			if after := sf.leftovers(t); after != before {
				t.Errorf("VMs, VDIs, tasks: %v -> %v after the client left", before, after)
			}
		})
	}
}

// TestVHDLength checks the length computed for VHDs of several writers
// against their file sizes, and that the body is given back whole.
func TestVHDLength(t *testing.T) {
	sf, base := transferFixture(t)
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte{0xa5}, 3<<20), 512<<10); err != nil {
		t.Fatal(err)
	}
	sparse := make([]byte, 6<<20)
	copy(sparse[5<<20:], "the last block only")
	tests := []struct {
		name string
		data []byte
	}{
		{name: "XAPI's stream (simulator)", data: sf.download(t, base, "/vdis/"+src+".vhd")},
		{name: "empty, xorest's writer", data: emptyVHD(t, 8<<20)},
		{name: "qemu-img", data: qemuVHD(t, sf.vdiBytes(t, src, 4<<20))},
		{name: "qemu-img, one late block", data: qemuVHD(t, sparse)},
		{name: "qemu-img, empty", data: qemuVHD(t, make([]byte, 2<<20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, rest, err := vhdLength(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tt.data)) {
				t.Errorf("length %d, want the file's %d", n, len(tt.data))
			}
			if got, err := io.ReadAll(rest); err != nil || !bytes.Equal(got, tt.data) {
				t.Errorf("body not given back whole (%v)", err)
			}
		})
	}
}

// FuzzVHDLength checks that the length computation of VHD bodies sent
// without a Content-Length never panics, refuses with a 400 or a read
// error, and gives an accepted body back whole.
func FuzzVHDLength(f *testing.F) {
	f.Add(emptyVHD(f, 4<<20))
	f.Add(make([]byte, 4096))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, rest, err := vhdLength(bytes.NewReader(data))
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("error %v is not a rendered 400", err)
			}
			return
		}
		if n < vhd.FooterSize+vhd.HeaderSize {
			t.Fatalf("length %d is shorter than the metadata read", n)
		}
		got, err := io.ReadAll(rest)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("body not given back whole (%v)", err)
		}
	})
}
