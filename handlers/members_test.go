package handlers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// memberFixture is a fixture on the LocalStorage pool (4 MiB disks) whose
// host1 has a TLS listener of its own: xorest's client pins its
// certificate and reaches it through Options.HostURLs, as the member
// listener cannot be on the pool URL's port.
type memberFixture struct {
	*simFixture
	ep     *xapisim.HostEndpoint
	base   string // xorest over HTTP
	master string // host0's uuid
	member string // host1's uuid
}

func newMemberFixture(t *testing.T) *memberFixture {
	t.Helper()
	m := xapisim.LocalStorage()
	m.DiskSize = 4 << 20
	srv := xapisim.NewServer(t, m)
	srv.SetClock(func() time.Time { return statsNow })
	ep, err := srv.StartHost("host1", "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	mf := &memberFixture{ep: ep}
	srv.DB.Read(func(tx *xapisim.Tx) {
		for _, ref := range tx.All("host") {
			switch _, rec, _ := tx.Get(ref); rec["name_label"] {
			case "host0":
				mf.master = rec["uuid"].(string)
			case "host1":
				mf.member = rec["uuid"].(string)
			}
		}
	})
	o := xapi.Options{
		URL: srv.URL, Username: srv.User, Password: srv.Password, EventTimeout: 2 * time.Second,
		Fingerprints: []string{xapi.Fingerprint(ep.Certificate)},
		HostURLs:     map[string]string{mf.member: ep.URL},
	}
	c, err := xapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	pools, err := xo.New(xo.Config{XAPI: []xapi.Options{o}, Pool: xo.PoolOptions{EventTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close(context.Background()) })
	sf := &simFixture{sims: []*xapisim.Server{srv}, clients: []*xapi.Client{c}, pools: pools}
	sf.fixture = newFixture(t, func(c *Config) { c.Pools = pools })
	sf.token = sf.mint(t, "root", time.Hour)
	mf.simFixture = sf
	ts := httptest.NewServer(sf.h)
	t.Cleanup(ts.Close)
	mf.base = ts.URL
	return mf
}

// TestMemberStats reads the stats of host1, of a VM running on it and of
// the pool: each must be host1's own figures, which only host1's
// /rrd_updates has.
func TestMemberStats(t *testing.T) {
	mf := newMemberFixture(t)
	vm := mf.idOf(t, "vms", "vm1")
	mf.call(t, "VM.start_on", mf.ref(t, "VM", vm), mf.ref(t, "host", mf.member), false, false)
	// The cache sees the VM running on host1 before its stats are asked.
	for {
		var v map[string]any
		mf.getJSON(t, BasePath+"/vms/"+vm+"?fields=power_state,$container", &v)
		if v["power_state"] == "Running" && v["$container"] == mf.member {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("vm1 is not seen running on host1: %v", v)
		case <-time.After(10 * time.Millisecond):
		}
	}
	tasks := mf.taskTotal(t)

	// statsOf checks that a stats answer has figures: xorest keeps only
	// the legends of the object asked for, so an answer from another
	// host's xcp-rrdd would have none.
	statsOf := func(t *testing.T, a statsAnswer, series string) {
		t.Helper()
		if a.EndTimestamp == nil || a.Interval != 5 {
			t.Errorf("endTimestamp %v, interval %v", a.EndTimestamp, a.Interval)
		}
		if s := a.series(t, series); len(s) != 119 {
			t.Errorf("%s has %d points, want 119 (as TestStatsGranularities)", series, len(s))
		}
	}
	t.Run("host", func(t *testing.T) {
		var a statsAnswer
		mf.getJSON(t, BasePath+"/hosts/"+mf.member+"/stats", &a)
		statsOf(t, a, "cpus.0")
	})
	t.Run("VM on the member", func(t *testing.T) {
		var a statsAnswer
		mf.getJSON(t, BasePath+"/vms/"+vm+"/stats", &a)
		statsOf(t, a, "memory")
	})
	t.Run("pool", func(t *testing.T) {
		var p map[string]statsAnswer
		mf.getJSON(t, BasePath+"/pools/"+mf.anyID(t, "pools")+"/stats", &p)
		if len(p) != 2 {
			t.Fatalf("%d hosts, want 2", len(p))
		}
		for _, h := range []string{mf.master, mf.member} {
			statsOf(t, p[h], "cpus.0")
		}
	})
	mf.waitTasks(t, tasks)
}

// TestMemberHostFiles downloads host1's audit.txt and logs.tgz: each must
// be host1's.
func TestMemberHostFiles(t *testing.T) {
	mf := newMemberFixture(t)
	tasks := mf.taskTotal(t)
	t.Run("audit.txt", func(t *testing.T) {
		resp := mf.getWith(t, t.Context(), mf.base+BasePath+"/hosts/"+mf.member+"/audit.txt")
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="host1-`) {
			t.Errorf("Content-Disposition %q", cd)
		}
		if strings.Contains(string(body), "|audit|host0|") {
			t.Errorf("host0's audit lines in host1's audit log:\n%s", body)
		}
	})
	t.Run("logs.tgz", func(t *testing.T) {
		resp := mf.getWith(t, t.Context(), mf.base+BasePath+"/hosts/"+mf.member+"/logs.tgz")
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		found := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == "etc/xensource-inventory" {
				found = true
				if !strings.Contains(string(b), mf.member) || strings.Contains(string(b), mf.master) {
					t.Errorf("inventory is not host1's:\n%s", b)
				}
			}
		}
		if !found {
			t.Error("no etc/xensource-inventory in the archive")
		}
	})
	mf.waitTasks(t, tasks)
}

// TestMemberDiskExport exports vm1's disk, on host1's local SR, through
// xorest: the master redirects the export to host1, whose listener sends
// the bytes.
func TestMemberDiskExport(t *testing.T) {
	mf := newMemberFixture(t)
	vm := mf.ref(t, "VM", mf.idOf(t, "vms", "vm1"))
	var vdi string
	mf.sims[0].DB.Read(func(tx *xapisim.Tx) {
		_, rec, _ := tx.Get(string(vm))
		for _, b := range rec["VBDs"].([]string) {
			if _, br, _ := tx.Get(b); br["type"] == "Disk" {
				_, vr, _ := tx.Get(br["VDI"].(string))
				vdi = vr["uuid"].(string)
			}
		}
	})
	if vdi == "" {
		t.Fatal("vm1 has no disk")
	}
	pattern := bytes.Repeat([]byte("local disk of host1 "), 20000)
	ref := string(mf.ref(t, "VDI", vdi))
	if _, err := mf.sims[0].WriteVDIAt(ref, pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 4<<20)
	if _, err := mf.sims[0].ReadVDIAt(ref, want, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	before, tasks := mf.ep.Served(), mf.taskTotal(t)
	resp := mf.transfer(t, t.Context(), "GET", mf.base+BasePath+"/vdis/"+vdi+".raw", nil, 0)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("exported %d bytes that differ from the disk", len(body))
	}
	if n := mf.ep.Served() - before; n != 1 {
		t.Errorf("host1 received %d requests, want 1", n)
	}
	mf.waitTasks(t, tasks)
}

// waitTasks waits until the pool has n tasks: the handler destroys its
// transfer's task once the answer is written, which may be after the
// client has read it.
func (mf *memberFixture) waitTasks(t *testing.T, n int) {
	t.Helper()
	for {
		got := mf.taskTotal(t)
		if got == n {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%d tasks, want %d", got, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
