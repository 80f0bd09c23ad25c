package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/xorest/xorest/transfer/vhd"
	"github.com/xorest/xorest/xo/xapi"
)

// download GETs a transfer and returns its body, expecting a 200.
func (sf *simFixture) download(t *testing.T, base, path string) []byte {
	t.Helper()
	resp := sf.transfer(t, t.Context(), "GET", base+BasePath+path, nil, 0)
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// upload sends body with its length and returns the response and its body.
func (sf *simFixture) upload(t *testing.T, method, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp := sf.transfer(t, t.Context(), method, url, bytes.NewReader(body), int64(len(body)))
	return resp, readAll(t, resp)
}

// emptyVHD is a dynamic VHD of size bytes with no block.
func emptyVHD(t testing.TB, size int64) []byte {
	t.Helper()
	st, err := vhd.NewStream(vhd.Options{Size: size}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// countOf counts the XAPI records of class in pool 0.
func (sf *simFixture) countOf(t *testing.T, class string) int {
	t.Helper()
	all, err := sf.clients[0].GetAllRecords(t.Context(), class)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func TestImportIntoVDI(t *testing.T) {
	sf, base := transferFixture(t)
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	dst := sf.idOf(t, "vdis", "vm5 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte("import me "), 300_000), 4096); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, src, 4<<20)
	vhdData := sf.download(t, base, "/vdis/"+src+".vhd")
	badSum := bytes.Clone(vhdData)
	badSum[64] ^= 0xff // footer checksum
	tests := []struct {
		name    string
		path    string
		body    []byte
		status  int
		errHas  string
		written bool
	}{
		{name: "vhd", path: "/vdis/" + dst + ".vhd", body: vhdData, status: 204, written: true},
		{name: "raw", path: "/vdis/" + dst + ".raw", body: want, status: 204, written: true},
		{name: "raw larger than the VDI", path: "/vdis/" + dst + ".raw", body: make([]byte, 4<<20+512), status: 422, errHas: "larger than the VDI"},
		{name: "vhd of another size", path: "/vdis/" + dst + ".vhd", body: emptyVHD(t, 8<<20), status: 422, errHas: "differs"},
		{name: "vhd with a bad checksum", path: "/vdis/" + dst + ".vhd", body: badSum, status: 400, errHas: "checksum"},
		{name: "not a vhd", path: "/vdis/" + dst + ".vhd", body: make([]byte, 8192), status: 400, errHas: "invalid VHD"},
		{name: "vhd cut in its block table", path: "/vdis/" + dst + ".vhd", body: vhdData[:2048], status: 400, errHas: "truncated VHD"},
		{name: "no format", path: "/vdis/" + dst, body: want, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sf.sims[0].WriteVDIAt(dst, make([]byte, 4<<20), 0); err != nil {
				t.Fatal(err)
			}
			tasks := sf.taskTotal(t)
			resp, body := sf.upload(t, "PUT", base+BasePath+tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(string(body), tt.errHas) {
				t.Errorf("answer %s does not say %q", body, tt.errHas)
			}
			got := sf.vdiBytes(t, dst, 4<<20)
			if tt.written != bytes.Equal(got, want) {
				t.Errorf("VDI written: %v, want %v", !tt.written, tt.written)
			}
			if n := sf.taskTotal(t); n != tasks {
				t.Errorf("%d tasks, want %d", n, tasks)
			}
		})
	}
}

func TestImportNewVDI(t *testing.T) {
	sf, base := transferFixture(t)
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte("new disk "), 300_000), 1<<20); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, src, 4<<20)
	vhdData := sf.download(t, base, "/vdis/"+src+".vhd")
	var vdiObj map[string]any
	sf.getJSON(t, BasePath+"/vdis/"+src, &vdiObj)
	sr := vdiObj["$SR"].(string)
	tests := []struct {
		name   string
		query  string
		body   []byte
		status int
		label  string
	}{
		{name: "vhd", query: "?name_label=from-vhd", body: vhdData, status: 201, label: "from-vhd"},
		{name: "raw", query: "?raw=true&name_label=from-raw&name_description=d", body: want, status: 201, label: "from-raw"},
		{name: "bare raw flag", query: "?raw&name_label=bare-raw", body: want, status: 201, label: "bare-raw"},
		{name: "truncated vhd", query: "", body: vhdData[:len(vhdData)-1024], status: 0},
		{name: "bad raw flag", query: "?raw=maybe", body: want, status: 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vdis := sf.countOf(t, "VDI")
			resp, body := sf.upload(t, "POST", base+BasePath+"/srs/"+sr+"/vdis"+tt.query, tt.body)
			if tt.status == 0 { // a failure of XAPI's
				if resp.StatusCode < 400 {
					t.Fatalf("status %d for a broken upload: %s", resp.StatusCode, body)
				}
				if n := sf.countOf(t, "VDI"); n != vdis {
					t.Errorf("%d VDIs after a failed upload, want %d (destroyed)", n, vdis)
				}
				return
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 201 {
				return
			}
			var out struct{ ID string }
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if loc := resp.Header.Get("Location"); loc != BasePath+"/vdis/"+out.ID {
				t.Errorf("Location %q", loc)
			}
			if got := sf.vdiBytes(t, out.ID, 8<<20); !bytes.Equal(got, want) {
				t.Errorf("new VDI has %d bytes, differing from the source", len(got))
			}
			ref := sf.ref(t, "VDI", out.ID)
			rec, err := xapi.GetRecord[xapi.VDI](t.Context(), sf.clients[0], ref)
			if err != nil {
				t.Fatal(err)
			}
			if rec.NameLabel != tt.label {
				t.Errorf("name_label %q, want %q", rec.NameLabel, tt.label)
			}
		})
	}
}

func TestImportVM(t *testing.T) {
	sf, base := transferFixture(t)
	vm := sf.idOf(t, "vms", "vm1")
	pool := sf.idOf(t, "pools", "pool0")
	xvaData := sf.download(t, base, "/vms/"+vm+".xva?compress=zstd")
	var vdiObj map[string]any
	sf.getJSON(t, BasePath+"/vdis/"+sf.idOf(t, "vdis", "vm1 disk 0"), &vdiObj)
	sr := vdiObj["$SR"].(string)
	tests := []struct {
		name   string
		query  string
		body   []byte
		status int
	}{
		{name: "default SR", body: xvaData, status: 201},
		{name: "sr", query: "?sr=" + sr, body: xvaData, status: 201},
		{name: "truncated", body: xvaData[:len(xvaData)/2], status: 0},
		{name: "unknown SR", query: "?sr=00000000-0000-0000-0000-000000000000", body: xvaData, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vms, vdis := sf.countOf(t, "VM"), sf.countOf(t, "VDI")
			resp, body := sf.upload(t, "POST", base+BasePath+"/pools/"+pool+"/vms"+tt.query, tt.body)
			if tt.status == 0 {
				if resp.StatusCode < 400 {
					t.Fatalf("status %d for a broken XVA: %s", resp.StatusCode, body)
				}
				if sf.countOf(t, "VM") != vms || sf.countOf(t, "VDI") != vdis {
					t.Error("a failed import left objects behind")
				}
				return
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 201 {
				return
			}
			var out struct{ ID string }
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			rec, err := xapi.GetRecord[xapi.VM](t.Context(), sf.clients[0], sf.ref(t, "VM", out.ID))
			if err != nil {
				t.Fatal(err)
			}
			if rec.NameLabel != "vm1" {
				t.Errorf("imported VM is %q", rec.NameLabel)
			}
		})
	}
}

// FuzzVHDHead checks that the VHD head check of uploads never panics, that
// it refuses with a 400 rather than another error, and that an accepted
// body is given back whole.
func FuzzVHDHead(f *testing.F) {
	f.Add(emptyVHD(f, 4<<20))
	f.Add(make([]byte, 4096))
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, rest, err := vhdHead(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v is not a rendered 400", err)
			}
			return
		}
		got, err := io.ReadAll(rest)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("body not given back whole (%v)", err)
		}
	})
}
