package xapi_test

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// hostRefs returns the refs and UUIDs of host0 (the master) and host1 of
// the member pool.
func (p *memberPool) hostRefs(t *testing.T) (master, member, memberUUID string) {
	t.Helper()
	p.srv.DB.Read(func(tx *xapisim.Tx) {
		for _, ref := range tx.All("host") {
			switch _, rec, _ := tx.Get(ref); rec["name_label"] {
			case "host0":
				master = ref
			case "host1":
				member, memberUUID = ref, rec["uuid"].(string)
			}
		}
	})
	if master == "" || member == "" {
		t.Fatal("no host0 or host1")
	}
	return master, member, memberUUID
}

// setAddress sets host.address in the simulator's database.
func (p *memberPool) setAddress(t *testing.T, host, addr string) {
	t.Helper()
	if err := p.srv.DB.Write(func(tx *xapisim.Tx) error {
		tx.Modify(host)["address"] = addr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// exportFrom reads a whole GetExportFrom.
func exportFrom(t *testing.T, c *xapi.Client, host xapi.Ref, path string, q url.Values) ([]byte, error) {
	t.Helper()
	d, err := c.GetExportFrom(t.Context(), host, path, q, "host export")
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// TestGetExportFrom sends exports to host1's own listener and to the
// master: host1 serves a disk of the master's local SR itself when asked
// directly (no started host sees it, so it does not redirect), which the
// master never sends it.
func TestGetExportFrom(t *testing.T) {
	p := newMemberPool(t)
	master, member, memberUUID := p.hostRefs(t)
	masterDisk := p.vmDisk(t, vmNamed(t, p, "vm0"))
	if p.srOf(masterDisk) != p.masterSR {
		t.Fatal("vm0's disk is not on host0's local SR")
	}
	pattern := bytes.Repeat([]byte("disk of the master "), 10000)
	if _, err := p.srv.WriteVDIAt(masterDisk, pattern, 4096); err != nil {
		t.Fatal(err)
	}
	want := p.content(t, masterDisk)
	pin := xapi.Fingerprint(p.ep.Certificate)
	hostURLs := map[string]string{memberUUID: p.ep.URL}
	pinned := p.client(t, p.srv.URL, xapi.Options{Fingerprints: []string{pin}, HostURLs: hostURLs})
	ca := p.client(t, p.srv.URL, xapi.Options{CAPEM: []byte(p.ep.CertificatePEM), HostURLs: hostURLs})
	unpinned := p.client(t, p.srv.URL, xapi.Options{Fingerprints: []string{strings.Repeat("ab", 32)}, HostURLs: hostURLs})
	tasks := taskCount(t, pinned)
	query := url.Values{"vdi": {masterDisk}, "format": {"raw"}}

	tests := []struct {
		name   string
		c      *xapi.Client
		host   string
		served int64  // requests the member's listener receives
		err    string // part of the error, "" for success
		unsent bool   // the error matches ErrUnreachable
	}{
		{name: "member, pinned", c: pinned, host: member, served: 1},
		{name: "member, CA", c: ca, host: member, served: 1},
		{name: "master through the pool URL", c: pinned, host: master, served: 0},
		{name: "member, wrong pin", c: unpinned, host: member, served: 0,
			err: "GET /export_raw_vdi (on host " + strings.TrimSuffix(p.ep.URL, "/") + "/export_raw_vdi): ", unsent: true},
		{name: "not a host", c: pinned, host: p.sr, err: "HANDLE_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.ep.Served()
			got, err := exportFrom(t, tt.c, xapi.Ref(tt.host), "/export_raw_vdi", query)
			if n := p.ep.Served() - before; n != tt.served {
				t.Errorf("the member received %d requests, want %d", n, tt.served)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				if errors.Is(err, xapi.ErrUnreachable) != tt.unsent {
					t.Errorf("errors.Is(%v, ErrUnreachable) = %v", err, !tt.unsent)
				}
				if sess := string(tt.c.Session()); strings.Contains(err.Error(), sess) || strings.Contains(err.Error(), url.QueryEscape(sess)) {
					t.Errorf("the error shows the session: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("exported %d bytes that differ from the disk", len(got))
			}
		})
	}
	if n := taskCount(t, pinned); n != tasks {
		t.Errorf("%d tasks left, want %d", n, tasks)
	}
}

// TestHostURL checks how a host's base URL is built.
func TestHostURL(t *testing.T) {
	p := newMemberPool(t)
	master, member, memberUUID := p.hostRefs(t)
	pool, err := url.Parse(p.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	plain := p.client(t, p.srv.URL, xapi.Options{})
	mapped := p.client(t, p.srv.URL, xapi.Options{HostURLs: map[string]string{memberUUID: "https://gw.example:8443/ignored?x=1"}})
	tests := []struct {
		name    string
		c       *xapi.Client
		host    string
		address string // host1's address, "" to leave it
		want    string // "" for the pool URL
	}{
		{name: "master", c: mapped, host: master, want: ""},
		{name: "member on its address with the pool's scheme and port", c: plain, host: member, address: "10.0.0.2",
			want: "http://10.0.0.2:" + pool.Port() + "/"},
		{name: "IPv6 address", c: plain, host: member, address: "fd00::2", want: "http://[fd00::2]:" + pool.Port() + "/"},
		{name: "address with a port", c: plain, host: member, address: "10.0.0.2:8080", want: "http://10.0.0.2:8080/"},
		{name: "HostURLs wins", c: mapped, host: member, address: "10.0.0.2", want: "https://gw.example:8443/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.address != "" {
				p.setAddress(t, tt.host, tt.address)
			}
			u, err := tt.c.HostURL(t.Context(), xapi.Ref(tt.host))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if u != nil {
				got = u.String()
			}
			if got != tt.want {
				t.Errorf("HostURL %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("no address", func(t *testing.T) {
		p.setAddress(t, member, "")
		if _, err := plain.HostURL(t.Context(), xapi.Ref(member)); !errors.Is(err, xapi.ErrTransfer) {
			t.Errorf("error %v, want ErrTransfer", err)
		}
	})
}

func TestHostURLsValidation(t *testing.T) {
	tests := []struct {
		name string
		pool string
		url  string
		ok   bool
	}{
		{"https member of an https pool", "https://pool.example", "https://10.0.0.2:8443", true},
		{"http member of an http pool", "http://127.0.0.1:8080", "http://127.0.0.1:8082/", true},
		{"http member of an https pool", "https://pool.example", "http://10.0.0.2", false},
		{"no host", "https://pool.example", "https:///x", false},
		{"other scheme", "https://pool.example", "ftp://10.0.0.2", false},
		{"credentials", "https://pool.example", "https://u:p@10.0.0.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := xapi.New(xapi.Options{URL: tt.pool, Username: "root", HostURLs: map[string]string{"uuid": tt.url}})
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, xapi.ErrInvalidHostURL)) {
				t.Errorf("New: %v (ok %v)", err, tt.ok)
			}
		})
	}
}

// vmNamed returns the ref of the VM named name.
func vmNamed(t *testing.T, p *memberPool, name string) string {
	t.Helper()
	var vm string
	p.srv.DB.Read(func(tx *xapisim.Tx) {
		for _, ref := range tx.All("VM") {
			if _, rec, _ := tx.Get(ref); rec["name_label"] == name {
				vm = ref
			}
		}
	})
	if vm == "" {
		t.Fatalf("no VM %s", name)
	}
	return vm
}
