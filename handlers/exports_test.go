package handlers

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/vhd"
	"github.com/xorest/xorest/transfer/xva"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// transferFixture serves a simulated pool with 4 MiB disks over loopback
// HTTP (transfers stream, and an aborted one closes the connection).
func transferFixture(t *testing.T) (*simFixture, string) {
	t.Helper()
	m := xapisim.Default()
	m.DiskSize = 4 << 20
	sf := newSimFixture(t, []xapisim.Model{m})
	ts := httptest.NewServer(sf.h)
	t.Cleanup(ts.Close)
	return sf, ts.URL
}

// transfer serves one request with the fixture's token over HTTP.
func (sf *simFixture) transfer(t *testing.T, ctx context.Context, method, url string, body io.Reader, size int64) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// readAll reads and closes a response body.
func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return b
}

// errorCode returns the XAPI code in a JSON error body, if any.
func errorText(body []byte) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return string(body)
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// taskTotal counts the tasks of pool 0.
func (sf *simFixture) taskTotal(t *testing.T) int {
	t.Helper()
	tasks, err := xapi.GetAllRecords[xapi.Task](t.Context(), sf.clients[0])
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

// vdiBytes reads the whole content of a VDI from the simulator.
func (sf *simFixture) vdiBytes(t *testing.T, vdi string, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	n, err := sf.sims[0].ReadVDIAt(vdi, b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b[:n]
}

func TestExportXVA(t *testing.T) {
	sf, base := transferFixture(t)
	halted := sf.idOf(t, "vms", "vm1")
	// XAPI refuses an export that blocked_operations forbids.
	blocked := sf.idOf(t, "vms", "vm2")
	sf.call(t, "VM.add_to_blocked_operations", sf.ref(t, "VM", blocked), "export", "no exports")
	before := sf.taskTotal(t)
	tests := []struct {
		name     string
		target   string
		status   int
		magic    []byte // start of the body
		comp     xva.Compression
		errorHas string
	}{
		{name: "halted VM", target: "/vms/" + halted + ".xva", status: 200, comp: xva.None},
		{name: "gzip", target: "/vms/" + halted + ".xva?compress=gzip", status: 200, magic: []byte{0x1f, 0x8b}, comp: xva.Gzip},
		{name: "zstd", target: "/vms/" + halted + ".xva?compress=zstd", status: 200, magic: []byte{0x28, 0xb5, 0x2f, 0xfd}, comp: xva.Zstd},
		{name: "export blocked", target: "/vms/" + blocked + ".xva", status: http.StatusForbidden, errorHas: "OPERATION_BLOCKED"},
		{name: "bad compress", target: "/vms/" + halted + ".xva?compress=lz4", status: http.StatusUnprocessableEntity, errorHas: "compress"},
		{name: "unknown VM", target: "/vms/00000000-0000-0000-0000-000000000000.xva", status: http.StatusNotFound},
		{name: "VM kind only", target: "/vm-templates/" + halted + ".xva", status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sf.transfer(t, t.Context(), "GET", base+BasePath+tt.target, nil, 0)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				if !strings.Contains(errorText(body), tt.errorHas) {
					t.Errorf("error %s does not mention %s", body, tt.errorHas)
				}
				return
			}
			if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=vm1.xva` {
				t.Errorf("Content-Disposition %q", cd)
			}
			if !bytes.HasPrefix(body, tt.magic) {
				t.Errorf("body starts with % x, want % x", body[:4], tt.magic)
			}
			xr, err := xva.NewReader(bytes.NewReader(body), xva.ReaderOptions{})
			if err != nil {
				t.Fatalf("not an XVA: %v", err)
			}
			defer xr.Close()
			if xr.Compression() != tt.comp {
				t.Errorf("compression %v, want %v", xr.Compression(), tt.comp)
			}
			if !bytes.Contains(xr.OVAXML(), []byte("vm1")) {
				t.Error("ova.xml does not describe vm1")
			}
		})
	}
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks left, want %d", n, before)
	}
}

// TestExportClientLeaves checks that a client leaving in the middle of an
// export cancels the XAPI task, which frees the VM for the next export.
func TestExportClientLeaves(t *testing.T) {
	sf, base := transferFixture(t)
	halted := sf.idOf(t, "vms", "vm1")
	before := sf.taskTotal(t)
	ctx, cancel := context.WithCancel(t.Context())
	resp := sf.transfer(t, ctx, "GET", base+BasePath+"/vms/"+halted+".xva", nil, 0)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The handler notices, cancels and destroys the task.
	for sf.taskTotal(t) != before {
		select {
		case <-t.Context().Done():
			t.Fatal("the export task was not destroyed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	resp = sf.transfer(t, t.Context(), "GET", base+BasePath+"/vms/"+halted+".xva", nil, 0)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("export after the abort: %d %s", resp.StatusCode, body)
	}
}

func TestExportDisk(t *testing.T) {
	sf, base := transferFixture(t)
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	pattern := bytes.Repeat([]byte("disk export "), 100_000)
	if _, err := sf.sims[0].WriteVDIAt(vdi, pattern, 3<<20/2); err != nil { // across a 2 MiB block boundary
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, vdi, 4<<20)

	t.Run("raw", func(t *testing.T) {
		resp := sf.transfer(t, t.Context(), "GET", base+BasePath+"/vdis/"+vdi+".raw", nil, 0)
		body := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(4<<20) {
			t.Errorf("Content-Length %q", cl)
		}
		if !bytes.Equal(body, want) {
			t.Error("raw export differs from the VDI")
		}
	})
	t.Run("vhd", func(t *testing.T) {
		resp := sf.transfer(t, t.Context(), "GET", base+BasePath+"/vdis/"+vdi+".vhd", nil, 0)
		body := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/vhd" {
			t.Errorf("Content-Type %q", ct)
		}
		vr, err := vhd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(vr.Raw())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want) {
			t.Error("VHD export differs from the VDI")
		}
		qemuCompare(t, want, body, "vpc")
	})
	t.Run("object still served", func(t *testing.T) {
		var obj map[string]any
		sf.getJSON(t, BasePath+"/vdis/"+vdi, &obj)
		if obj["id"] != vdi {
			t.Errorf("GET /vdis/<id> gives %v", obj["id"])
		}
	})
}

// qemuCompare checks with qemu-img that image, in qemu format (vpc,
// vmdk), holds raw.
func qemuCompare(t *testing.T, raw, image []byte, format string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img not found: apt-get install -y qemu-utils")
	}
	dir := t.TempDir()
	rawPath, vhdPath := filepath.Join(dir, "x.raw"), filepath.Join(dir, "y."+format)
	if err := os.WriteFile(rawPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vhdPath, image, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(qemu, "compare", "-f", "raw", rawPath, "-F", format, vhdPath).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
}

func TestExportOVA(t *testing.T) {
	sf, base := transferFixture(t)
	vm := sf.idOf(t, "vms", "vm1")
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(vdi, bytes.Repeat([]byte("ova disk "), 200_000), 2<<20-4096); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, vdi, 4<<20)
	before := sf.taskTotal(t)
	resp := sf.transfer(t, t.Context(), "GET", base+BasePath+"/vms/"+vm+".ova", nil, 0)
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q for %d bytes", cl, len(body))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=vm1.ova" {
		t.Errorf("Content-Disposition %q", cd)
	}
	tr := tar.NewReader(bytes.NewReader(body))
	var names []string
	var disk []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(hdr.Name, ".ovf") && !bytes.Contains(data, []byte("vm1")) {
			t.Error("the OVF does not name vm1")
		}
		if strings.HasSuffix(hdr.Name, ".vmdk") {
			disk = data
		}
	}
	if len(names) != 2 || !strings.HasSuffix(names[0], ".ovf") {
		t.Fatalf("entries %v, want the OVF then one VMDK", names)
	}
	qemuCompare(t, want, disk, "vmdk")
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks left, want %d", n, before)
	}
}

func TestExportDiskNBD(t *testing.T) {
	sf, base := transferFixture(t)
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(vdi, bytes.Repeat([]byte("over nbd "), 50_000), 2<<20+512); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, vdi, 4<<20)
	before := sf.taskTotal(t)

	// Without an NBD network the HTTP export answers (no length for a VHD).
	resp := sf.transfer(t, t.Context(), "GET", base+BasePath+"/vdis/"+vdi+".vhd?preferNbd", nil, 0)
	readAll(t, resp)
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("fallback: status %d, length %d", resp.StatusCode, resp.ContentLength)
	}

	if _, err := sf.sims[0].ServeNBD("127.0.0.1:0", true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		query  string
		ext    string
		status int
	}{
		{name: "raw", query: "?preferNbd", ext: ".raw", status: 200},
		{name: "vhd", query: "?preferNbd", ext: ".vhd", status: 200},
		{name: "vhd, 3 connections", query: "?preferNbd&nbdConcurrency=3", ext: ".vhd", status: 200},
		{name: "bad concurrency", query: "?preferNbd&nbdConcurrency=0", ext: ".vhd", status: 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sf.transfer(t, t.Context(), "GET", base+BasePath+"/vdis/"+vdi+tt.ext+tt.query, nil, 0)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				return
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
			}
			if tt.ext == ".raw" {
				if !bytes.Equal(body, want) {
					t.Error("raw NBD export differs")
				}
				return
			}
			vr, err := vhd.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(vr.Raw())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, want) {
				t.Error("VHD over NBD differs from the VDI")
			}
			qemuCompare(t, want, body, "vpc")
		})
	}
	if n := sf.taskTotal(t); n != before {
		t.Errorf("%d tasks left, want %d", n, before)
	}
}
