package xapi_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// memberPool is the LocalStorage pool with 4 MiB disks, the master served
// over plain HTTP, and host1, whose local SR holds vm1's disk, on a TLS
// listener of its own: the master redirects vm1's transfers to it.
type memberPool struct {
	srv      *xapisim.Server
	ep       *xapisim.HostEndpoint
	vm       string // vm1, halted, on host1's local SR
	disk     string // its disk
	sr       string // host1's local SR
	masterSR string // host0's local SR
}

func newMemberPool(t *testing.T) *memberPool {
	t.Helper()
	m := xapisim.LocalStorage()
	m.DiskSize = 4 << 20
	srv := xapisim.NewServer(t, m)
	ep, err := srv.StartHost("host1", "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	p := &memberPool{srv: srv, ep: ep}
	p.vm, p.sr, p.masterSR = p.named("VM", "vm1"), p.named("SR", "host1 local storage"), p.named("SR", "host0 local storage")
	p.disk = p.vmDisk(t, p.vm)
	if p.vm == "" || p.sr == "" || p.masterSR == "" {
		t.Fatal("LocalStorage has no vm1 or no local SRs")
	}
	return p
}

// named returns the ref of the object of class whose name_label is name
// ("" if none).
func (p *memberPool) named(class, name string) string {
	var ref string
	p.srv.DB.Read(func(tx *xapisim.Tx) {
		for _, r := range tx.All(class) {
			if _, rec, _ := tx.Get(r); rec["name_label"] == name {
				ref = r
			}
		}
	})
	return ref
}

// vmDisk returns the VDI of vm's disk VBD.
func (p *memberPool) vmDisk(t *testing.T, vm string) string {
	t.Helper()
	var vdi string
	p.srv.DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(vm)
		vbds, _ := rec["VBDs"].([]string)
		for _, b := range vbds {
			if _, br, _ := tx.Get(b); br["type"] == "Disk" {
				vdi, _ = br["VDI"].(string)
			}
		}
	})
	if vdi == "" {
		t.Fatalf("VM %s has no disk", vm)
	}
	return vdi
}

// srOf returns the SR of vdi.
func (p *memberPool) srOf(vdi string) string {
	var sr string
	p.srv.DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(vdi)
		sr, _ = rec["SR"].(string)
	})
	return sr
}

// content returns the 4 MiB of vdi.
func (p *memberPool) content(t *testing.T, vdi string) []byte {
	t.Helper()
	b := make([]byte, 4<<20)
	if _, err := p.srv.ReadVDIAt(vdi, b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b
}

// newVDI creates an empty 4 MiB VDI on sr.
func (p *memberPool) newVDI(t *testing.T, sr string) string {
	t.Helper()
	ref, err := p.srv.Call(context.Background(), "VDI.create", p.srv.Session(), map[string]any{
		"SR": sr, "virtual_size": strconv.Itoa(4 << 20), "type": "user", "sharable": false,
		"read_only": false, "other_config": map[string]any{}, "name_label": "redirect target",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref.(string)
}

// client connects to url with opts' TLS settings.
func (p *memberPool) client(t *testing.T, url string, opts xapi.Options) *xapi.Client {
	t.Helper()
	opts.URL, opts.Username, opts.Password = url, p.srv.User, p.srv.Password
	c, err := xapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// export reads a whole GetExport.
func export(t *testing.T, c *xapi.Client, path string, q url.Values) []byte {
	t.Helper()
	d, err := c.GetExport(t.Context(), path, q, "redirect export")
	if err != nil {
		t.Fatalf("GetExport %s: %v", path, err)
	}
	b, err := io.ReadAll(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return b
}

// TestTransferRedirect runs every transfer of vm1 through the master,
// which redirects each to host1's TLS listener, whose certificate is
// pinned: the bytes arrive, each request reaches the member once, and no
// task is left.
func TestTransferRedirect(t *testing.T) {
	p := newMemberPool(t)
	pattern := bytes.Repeat([]byte("local storage of a pool member "), 20000)
	if _, err := p.srv.WriteVDIAt(p.disk, pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	want := p.content(t, p.disk)
	pinned := p.client(t, p.srv.URL, xapi.Options{Fingerprints: []string{xapi.Fingerprint(p.ep.Certificate)}})
	ca := p.client(t, p.srv.URL, xapi.Options{CAPEM: []byte(p.ep.CertificatePEM)})
	tasks := taskCount(t, pinned)

	// served checks that step sent exactly one request to the member.
	served := func(t *testing.T, step func()) {
		t.Helper()
		before := p.ep.Served()
		step()
		if n := p.ep.Served() - before; n != 1 {
			t.Errorf("the member received %d requests, want 1", n)
		}
	}
	importedVM := func(t *testing.T, v any) string {
		t.Helper()
		refs, ok := v.([]any)
		if !ok || len(refs) != 1 {
			t.Fatalf("import result %#v, want one VM", v)
		}
		return refs[0].(string)
	}

	t.Run("raw export, pinned", func(t *testing.T) {
		served(t, func() {
			if got := export(t, pinned, "/export_raw_vdi", url.Values{"vdi": {p.disk}, "format": {"raw"}}); !bytes.Equal(got, want) {
				t.Errorf("exported %d bytes that differ from the disk", len(got))
			}
		})
	})
	t.Run("raw export, CA", func(t *testing.T) {
		served(t, func() {
			if got := export(t, ca, "/export_raw_vdi/", url.Values{"vdi": {p.disk}}); !bytes.Equal(got, want) {
				t.Errorf("exported %d bytes that differ from the disk", len(got))
			}
		})
	})
	t.Run("vhd export and import", func(t *testing.T) {
		var vhd []byte
		served(t, func() { vhd = export(t, pinned, "/export_raw_vdi", url.Values{"vdi": {p.disk}, "format": {"vhd"}}) })
		dst := p.newVDI(t, p.sr)
		served(t, func() {
			v, sent, err := pinned.PutImportCount(t.Context(), "/import_raw_vdi", url.Values{"vdi": {dst}, "format": {"vhd"}}, bytes.NewReader(vhd), int64(len(vhd)), "vhd import")
			if err != nil || v != dst || sent != int64(len(vhd)) {
				t.Fatalf("PutImport vhd: %v %v after %d of %d bytes", v, err, sent, len(vhd))
			}
		})
		if !bytes.Equal(p.content(t, dst), want) {
			t.Error("the VHD imported on the member differs from the source")
		}
	})
	t.Run("raw import into the member's disk", func(t *testing.T) {
		img := bytes.Repeat([]byte("written through the master "), (4<<20)/27)
		img = append(img, make([]byte, 4<<20-len(img))...)
		served(t, func() {
			v, err := pinned.PutImport(t.Context(), "/import_raw_vdi", url.Values{"vdi": {p.disk}, "format": {"raw"}}, bytes.NewReader(img), int64(len(img)), "raw import")
			if err != nil || v != p.disk {
				t.Fatalf("PutImport raw: %v %v", v, err)
			}
		})
		if !bytes.Equal(p.content(t, p.disk), img) {
			t.Error("the disk does not hold the raw image")
		}
		if _, err := p.srv.WriteVDIAt(p.disk, want, 0); err != nil { // restore for the XVA cases
			t.Fatal(err)
		}
	})
	t.Run("raw import creating a VDI on the member's SR", func(t *testing.T) {
		var v any
		served(t, func() {
			var err error
			v, err = pinned.PutImport(t.Context(), "/import_raw_vdi", url.Values{"sr_id": {p.sr}, "format": {"raw"}}, bytes.NewReader(want), int64(len(want)), "raw import to SR")
			if err != nil {
				t.Fatal(err)
			}
		})
		vdi, _ := v.(string)
		if p.srOf(vdi) != p.sr || !bytes.Equal(p.content(t, vdi), want) {
			t.Errorf("new VDI %v on %s: want on %s with the bytes sent", v, p.srOf(vdi), p.sr)
		}
	})
	t.Run("XVA export and imports", func(t *testing.T) {
		var xva []byte
		served(t, func() { xva = export(t, pinned, "/export", url.Values{"ref": {p.vm}}) })
		for _, size := range []int64{int64(len(xva)), xapi.UnknownSize} {
			var v any
			served(t, func() {
				var err error
				v, err = pinned.PutImport(t.Context(), "/import/", url.Values{"sr_id": {p.sr}}, bytes.NewReader(xva), size, "XVA import")
				if err != nil {
					t.Fatalf("PutImport XVA of size %d: %v", size, err)
				}
			})
			d := p.vmDisk(t, importedVM(t, v))
			if p.srOf(d) != p.sr || !bytes.Equal(p.content(t, d), want) {
				t.Errorf("size %d: imported disk on %s, want on %s with vm1's bytes", size, p.srOf(d), p.sr)
			}
		}
	})
	if n := taskCount(t, pinned); n != tasks {
		t.Errorf("%d tasks after the transfers, want %d", n, tasks)
	}
}

// TestTransferRedirectUntrusted is redirected to a member whose
// certificate the client does not trust: each transfer fails naming the
// member, without the session, with none of a PUT's body sent, and
// without leaving a task.
func TestTransferRedirectUntrusted(t *testing.T) {
	p := newMemberPool(t)
	before := p.content(t, p.disk)
	other := httptest.NewTLSServer(nil)
	other.Close()
	tests := []struct {
		name string
		opts xapi.Options
		want string // in the error
		as   func(error) bool
	}{
		{name: "system roots", want: "certificate signed by unknown authority", as: func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{name: "another pin", opts: xapi.Options{Fingerprints: []string{xapi.Fingerprint(other.Certificate().Raw)}}, want: "matches no pinned fingerprint"},
		{name: "another CA", opts: xapi.Options{CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate().Raw})}, want: "certificate signed by unknown authority"},
	}
	member, _ := url.Parse(p.ep.URL)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := p.client(t, p.srv.URL, tc.opts)
			tasks := taskCount(t, c)
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded", what)
				}
				msg := err.Error()
				if !strings.Contains(msg, "redirected to https://"+member.Host+"/") || !strings.Contains(msg, tc.want) {
					t.Errorf("%s: %q: want the member's URL and %q", what, msg, tc.want)
				}
				if s := c.Session(); s == "" || strings.Contains(msg, string(s)) || strings.Contains(msg, url.QueryEscape(string(s))) {
					t.Errorf("%s: the error shows the session: %q", what, msg)
				}
				if tc.as != nil && !tc.as(err) {
					t.Errorf("%s: %v does not unwrap to the TLS cause", what, err)
				}
			}
			_, err := c.GetExport(t.Context(), "/export_raw_vdi", url.Values{"vdi": {p.disk}, "format": {"raw"}}, "untrusted export")
			check("GetExport", err)
			img := bytes.Repeat([]byte{0xa5}, 4<<20)
			_, sent, err := c.PutImportCount(t.Context(), "/import_raw_vdi", url.Values{"vdi": {p.disk}, "format": {"raw"}}, bytes.NewReader(img), int64(len(img)), "untrusted import")
			check("PutImport", err)
			if sent != 0 {
				t.Errorf("PutImport read %d bytes of the body, want 0", sent)
			}
			_, sent, err = c.PutImportCount(t.Context(), "/import", url.Values{"sr_id": {p.sr}}, bytes.NewReader(img), xapi.UnknownSize, "untrusted stream")
			check("PutImport of unknown size", err)
			if sent != 0 {
				t.Errorf("PutImport of unknown size read %d bytes of the body, want 0", sent)
			}
			if !bytes.Equal(p.content(t, p.disk), before) {
				t.Error("the disk changed")
			}
			if n := taskCount(t, c); n != tasks {
				t.Errorf("%d tasks, want %d", n, tasks)
			}
		})
	}
	if n := p.ep.Served(); n != 0 {
		t.Errorf("the member received %d requests over an untrusted connection", n)
	}
}

// TestTransferRedirectDowngrade refuses a redirect from an https master
// to a plain-HTTP host: the session would travel in clear.
func TestTransferRedirectDowngrade(t *testing.T) {
	m := xapisim.LocalStorage()
	m.DiskSize = 1 << 20
	sim := xapisim.New(m)
	t.Cleanup(func() { _ = sim.Close() })
	ts := httptest.NewTLSServer(sim)
	t.Cleanup(ts.Close)
	ep, err := sim.StartHost("host1", "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	c, err := xapi.New(xapi.Options{URL: ts.URL, Username: "root", Password: "password", Fingerprints: []string{xapi.Fingerprint(ts.Certificate().Raw)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	p := &memberPool{srv: &xapisim.Server{Simulator: sim}}
	disk := p.vmDisk(t, p.named("VM", "vm1"))
	_, err = c.GetExport(t.Context(), "/export_raw_vdi", url.Values{"vdi": {disk}}, "downgrade")
	if err == nil || !errors.Is(err, xapi.ErrTransfer) || !strings.Contains(err.Error(), "from https to http://") {
		t.Fatalf("GetExport: %v, want the redirect to http refused", err)
	}
	_, err = c.PutImport(t.Context(), "/import_raw_vdi", url.Values{"vdi": {disk}}, bytes.NewReader(make([]byte, 1<<20)), 1<<20, "downgrade")
	if err == nil || !errors.Is(err, xapi.ErrTransfer) {
		t.Fatalf("PutImport: %v, want the redirect to http refused", err)
	}
	if ep.Served() != 0 {
		t.Errorf("the plain-HTTP member received %d requests", ep.Served())
	}
}

// TestTransferRedirectServerName sets Options.TLSServerName for the
// master (whose certificate names example.com): the member's certificate
// is verified against the member's own address, not that name.
func TestTransferRedirectServerName(t *testing.T) {
	m := xapisim.LocalStorage()
	m.DiskSize = 1 << 20
	sim := xapisim.New(m)
	t.Cleanup(func() { _ = sim.Close() })
	ts := httptest.NewTLSServer(sim)
	t.Cleanup(ts.Close)
	ep, err := sim.StartHost("host1", "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	roots := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), ep.CertificatePEM...)
	c, err := xapi.New(xapi.Options{URL: ts.URL, Username: "root", Password: "password", CAPEM: roots, TLSServerName: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	p := &memberPool{srv: &xapisim.Server{Simulator: sim}}
	disk := p.vmDisk(t, p.named("VM", "vm1"))
	b := export(t, c, "/export_raw_vdi", url.Values{"vdi": {disk}})
	if len(b) != 1<<20 {
		t.Fatalf("exported %d bytes", len(b))
	}
	if _, err := c.PutImport(t.Context(), "/import_raw_vdi", url.Values{"vdi": {disk}, "format": {"raw"}}, bytes.NewReader(b), int64(len(b)), "import"); err != nil {
		t.Fatalf("PutImport: %v", err)
	}
	if _, err := c.PutImport(t.Context(), "/import_raw_vdi", url.Values{"vdi": {disk}, "format": {"tar"}}, bytes.NewReader(export(t, c, "/export_raw_vdi", url.Values{"vdi": {disk}, "format": {"tar"}})), xapi.UnknownSize, "stream"); err != nil {
		t.Fatalf("PutImport of unknown size: %v", err)
	}
	if n := ep.Served(); n != 4 {
		t.Errorf("the member received %d requests, want 4", n)
	}
}

// TestTransferBufferingIntermediary puts an intermediary in front of the
// pool that reads a PUT's whole body before answering (nginx's default
// request buffering): the body held back for the answer is sent after
// holdBack, so the upload still works, and a redirect that comes after
// the body was sent fails clearly instead of losing it.
func TestTransferBufferingIntermediary(t *testing.T) {
	srv := xapisim.NewServer(t, transferModel())
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	tests := []struct {
		name     string
		redirect bool
	}{
		{name: "answer after the body", redirect: false},
		{name: "redirect after the body", redirect: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPut {
					proxy.ServeHTTP(w, r)
					return
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if tc.redirect {
					loc := *target
					loc.Path, loc.RawQuery = r.URL.Path, r.URL.RawQuery
					w.Header().Set("Location", loc.String())
					w.WriteHeader(http.StatusFound)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(front.Close)
			c, err := xapi.New(xapi.Options{URL: front.URL, Username: srv.User, Password: srv.Password})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			dst, _, size := userDisks(t, c)
			img := bytes.Repeat([]byte("buffered by an intermediary "), int(size)/28)
			img = append(img, make([]byte, int(size)-len(img))...)
			tasks := taskCount(t, c)
			v, sent, err := c.PutImportCount(t.Context(), "/import_raw_vdi", url.Values{"vdi": {string(dst)}, "format": {"raw"}}, bytes.NewReader(img), size, "buffered import")
			if tc.redirect {
				if err == nil || !errors.Is(err, xapi.ErrTransfer) || !strings.Contains(err.Error(), "after the body had started") || sent != size {
					t.Fatalf("PutImport: %v after %d bytes, want the late redirect refused after the whole body", err, sent)
				}
			} else {
				if err != nil || v != string(dst) {
					t.Fatalf("PutImport: %v %v", v, err)
				}
				got := make([]byte, size)
				if _, err := srv.ReadVDIAt(string(dst), got, 0); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				if !bytes.Equal(got, img) {
					t.Error("the disk does not hold the image")
				}
			}
			if n := taskCount(t, c); n != tasks {
				t.Errorf("%d tasks, want %d", n, tasks)
			}
		})
	}
}
