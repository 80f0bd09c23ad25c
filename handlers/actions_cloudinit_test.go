package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/cloudinit"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// newTLSSimFixture serves one simulated pool over HTTPS with httptest's
// self-signed certificate, which no system root trusts (like XAPI's), and
// configures xorest with its pinned SHA-256 fingerprint only.
func newTLSSimFixture(t *testing.T) *simFixture {
	t.Helper()
	m := xapisim.Default()
	sim := xapisim.New(m)
	ts := httptest.NewTLSServer(sim)
	t.Cleanup(func() {
		ts.Close()
		_ = sim.Close()
	})
	o := xapi.Options{
		URL: ts.URL, Username: m.User, Password: m.Password, EventTimeout: 2 * time.Second,
		Fingerprints: []string{xapi.Fingerprint(ts.Certificate().Raw)},
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
	sf := &simFixture{
		sims:    []*xapisim.Server{{Simulator: sim, URL: ts.URL + "/", User: m.User, Password: m.Password}},
		clients: []*xapi.Client{c},
		pools:   pools,
	}
	sf.fixture = newFixture(t, func(c *Config) { c.Pools = pools })
	sf.token = sf.mint(t, "root", time.Hour)
	return sf
}

// TestCloudInitOverTLS creates a VM with a config drive on a pool whose
// certificate is trusted only through its pinned fingerprint: the drive's
// upload (PUT /import_raw_vdi) must use the pool's TLS settings.
func TestCloudInitOverTLS(t *testing.T) {
	sf := newTLSSimFixture(t)
	userData := "#cloud-config\nhostname: tls\n"
	tpl := sf.idOf(t, "vm-templates", "template0")
	rec := sf.send(t, "POST", BasePath+"/vm-templates/"+tpl+"/actions/instantiate?sync",
		`{"name_label": "over-tls", "cloud_config": `+jsonString(userData)+`}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var result map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &result); err != nil {
		t.Fatal(err)
	}
	var disks []map[string]any
	sf.getJSON(t, BasePath+"/vms/"+result["id"].(string)+"/vdis?fields=id,name_label,size", &disks)
	var drive map[string]any
	for _, d := range disks {
		if d["name_label"] == configDriveName {
			drive = d
		}
	}
	if drive == nil {
		t.Fatalf("disks %v: no config drive", disks)
	}
	img := make([]byte, int64(drive["size"].(float64)))
	if _, err := sf.sims[0].ReadVDIAt(drive["id"].(string), img, 0); err != nil {
		t.Fatal(err)
	}
	// The FAT image's contents are TestCreateVMCloudInit's (mtools); here
	// it is enough that the upload arrived.
	if !bytes.Contains(img, []byte(cloudinit.Label)) || !bytes.Contains(img, []byte(userData)) {
		t.Error("the config drive does not hold the cidata image with the user-data")
	}
}
