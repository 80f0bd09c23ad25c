package handlers

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/xorest/xorest/internal/peertest"
	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/xo/xapisim"
)

// s3Peer starts a versitygw for the test, creates bucket in it and returns
// a client; it fails the test when versitygw is missing.
func s3Peer(t *testing.T, bucket string) *s3.Client {
	t.Helper()
	gw, err := peertest.StartVersityGW("testkey", "testsecret")
	if err != nil {
		t.Fatalf("versitygw (the S3 test peer): %v", err)
	}
	t.Cleanup(gw.Stop)
	c, err := s3.New(t.Context(), s3.Config{
		Endpoint: gw.Endpoint, Region: "us-east-1", UsePathStyle: true,
		AccessKeyID: "testkey", SecretAccessKey: "testsecret",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.API().CreateBucket(t.Context(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return c
}

// exportFixture serves a simulated pool with 12 MiB disks (multipart
// uploads) over loopback HTTP, exporting to a versitygw bucket.
func exportFixture(t *testing.T, mod ...func(*Config)) (*simFixture, string, *s3.Client) {
	t.Helper()
	const bucket = "exports"
	client := s3Peer(t, bucket)
	m := xapisim.Default()
	m.DiskSize = 12 << 20
	sf := newSimFixture(t, []xapisim.Model{m}, append([]func(*Config){func(c *Config) {
		c.S3, c.S3Bucket = client, bucket
	}}, mod...)...)
	ts := httptest.NewServer(sf.h)
	t.Cleanup(ts.Close)
	return sf, ts.URL, client
}

// download GETs a presigned URL with plain net/http.
func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET presigned URL: %d %s", resp.StatusCode, readAll(t, resp))
	}
	return readAll(t, resp)
}

// direct GETs an export route of the fixture.
func (sf *simFixture) direct(t *testing.T, base, target string) []byte {
	t.Helper()
	resp := sf.transfer(t, t.Context(), "GET", base+BasePath+target, nil, 0)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", target, resp.StatusCode, readAll(t, resp))
	}
	return readAll(t, resp)
}

func TestExportActionToS3(t *testing.T) {
	sf, base, client := exportFixture(t)
	vm := sf.idOf(t, "vms", "vm1")
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(vdi, bytes.Repeat([]byte("s3 export "), 300_000), 5<<20); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target string
		body   string
		key    string // "" : the default key, under prefix
		prefix string
		xva    bool // compare the XVA's disk data
		ova    bool // compare the OVA's member names and sizes
		want   func(t *testing.T) []byte
	}{
		{name: "halted VM as XVA", target: "/vms/" + vm, body: `{"format": "xva"}`, prefix: "xorest/vms/" + vm + "/", xva: true,
			want: func(t *testing.T) []byte { return sf.direct(t, base, "/vms/"+vm+".xva") }},
		{name: "halted VM as OVA", target: "/vms/" + vm, body: `{"format": "ova"}`, prefix: "xorest/vms/" + vm + "/", ova: true,
			want: func(t *testing.T) []byte { return sf.direct(t, base, "/vms/"+vm+".ova") }},
		{name: "VDI as VHD", target: "/vdis/" + vdi, body: `{"bucket": "exports"}`, prefix: "xorest/vdis/" + vdi + "/",
			want: func(t *testing.T) []byte { return sf.direct(t, base, "/vdis/"+vdi+".vhd") }},
		{name: "VDI as raw, named key", target: "/vdis/" + vdi, body: `{"format": "raw", "key": "disks/d.raw"}`, key: "disks/d.raw",
			want: func(t *testing.T) []byte { return sf.vdiBytes(t, vdi, 12<<20) }},
		{name: "VDI as raw, preferNbd without NBD falls back", target: "/vdis/" + vdi, body: `{"format": "raw", "preferNbd": true, "nbdConcurrency": 2}`, prefix: "xorest/vdis/" + vdi + "/",
			want: func(t *testing.T) []byte { return sf.vdiBytes(t, vdi, 12<<20) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, "POST", BasePath+tt.target+"/actions/export?sync", tt.body)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var res struct {
				Bucket, Key, ETag, URL string
				Size                   int64
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("%v: %s", err, rec.Body)
			}
			if res.Bucket != "exports" || (tt.key != "" && res.Key != tt.key) || (tt.prefix != "" && !strings.HasPrefix(res.Key, tt.prefix)) {
				t.Errorf("bucket %q key %q", res.Bucket, res.Key)
			}
			got := download(t, res.URL)
			want := tt.want(t)
			if int64(len(got)) != res.Size {
				t.Errorf("stored %d bytes, result size %d", len(got), res.Size)
			}
			if tt.xva {
				// Two exports differ in ova.xml (XAPI's metadata of the
				// moment); the disk data must not.
				got, want = xvaData(t, got), xvaData(t, want)
			}
			if tt.ova {
				// Every OVA has random VMDK CIDs.
				got, want = tarListing(t, got), tarListing(t, want)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("stored %d bytes (result size %d), export %d bytes, equal %v", len(got), res.Size, len(want), bytes.Equal(got, want))
			}
			head, err := client.API().HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(res.Key)})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Trim(aws.ToString(head.ETag), `"`) != res.ETag {
				t.Errorf("etag %q, object's %q", res.ETag, aws.ToString(head.ETag))
			}
		})
	}
}

func TestExportActionFailureLeavesNothing(t *testing.T) {
	sf, _, client := exportFixture(t)
	vm := sf.idOf(t, "vms", "vm1")
	// The export reads the VM's record first (exportSource): fail that.
	// TestExportActionRunningVMUploadFails has failures during the upload.
	t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VM.get_record", Count: 1,
		Fault: xapisim.NewFault("VDI_IO_ERROR", "injected")}))
	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/export", `{"key": "failed.xva"}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	task := sf.waitEnded(t, rec.Header().Get("Location"))
	if task["status"] != "failure" || !strings.Contains(errorText(mustJSON(t, task)), "VDI_IO_ERROR") {
		t.Fatalf("task %v", task)
	}
	checkNothingStored(t, client, "failed.xva")
}

// checkNothingStored fails unless the exports bucket holds neither a
// multipart upload nor the object key: what a failed export leaves.
func checkNothingStored(t *testing.T, client *s3.Client, key string) {
	t.Helper()
	ups, err := client.API().ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("exports")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("multipart uploads left: %d", len(ups.Uploads))
	}
	_, err = client.API().HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String("exports"), Key: aws.String(key)})
	if _, ok := errors.AsType[*types.NotFound](err); !ok {
		t.Errorf("HeadObject of the failed export %s: %v, want NotFound", key, err)
	}
}

func TestExportActionRefused(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		body   string
		status int
		has    string
	}{
		{name: "no S3", mod: func(c *Config) { c.S3 = nil }, body: `{}`, status: http.StatusNotImplemented, has: "not configured"},
		{name: "no bucket", mod: func(c *Config) { c.S3Bucket = "" }, body: `{}`, status: http.StatusUnprocessableEntity, has: "bucket"},
		{name: "bad format", body: `{"format": "vmdk"}`, status: http.StatusUnprocessableEntity, has: "must be one of xva, ova"},
		{name: "compress with ova", body: `{"format": "ova", "compress": "gzip"}`, status: http.StatusUnprocessableEntity, has: "xva format only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*Config)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			sf, _, _ := exportFixture(t, mods...)
			before := sf.taskCount(t)
			rec := sf.send(t, "POST", BasePath+"/vms/"+sf.idOf(t, "vms", "vm1")+"/actions/export?sync", tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.has) {
				t.Errorf("status %d %s, want %d with %q", rec.Code, rec.Body, tt.status, tt.has)
			}
			if n := sf.taskCount(t); n != before {
				t.Errorf("%d tasks, %d before", n, before)
			}
		})
	}
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// xvaData is the contents of the members of an XVA but ova.xml,
// concatenated in order.
func xvaData(t *testing.T, b []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []byte
	members := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("XVA: %v", err)
		}
		if h.Name == "ova.xml" {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("XVA %s: %v", h.Name, err)
		}
		out = append(out, data...) // member names carry per-export refs
		members++
	}
	if members == 0 {
		t.Fatal("XVA without disk data")
	}
	return out
}

// tarListing is the names and sizes of the members of a tar archive.
func tarListing(t *testing.T, b []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil || n != h.Size {
			t.Fatalf("tar %s: %d of %d bytes: %v", h.Name, n, h.Size, err)
		}
		out = fmt.Appendf(out, "%s %d\n", h.Name, h.Size)
	}
}

// TestExportActionOverNBD exports with an NBD network: the reads may go
// over NBD (nothing outside shows which path served them; the HTTP route's
// tests check that) and the stored bytes must be the disk's.
func TestExportActionOverNBD(t *testing.T) {
	sf, _, _ := exportFixture(t)
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(vdi, bytes.Repeat([]byte("nbd to s3 "), 300_000), 3<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := sf.sims[0].ServeNBD("127.0.0.1:0", true); err != nil {
		t.Fatal(err)
	}
	rec := sf.send(t, "POST", BasePath+"/vdis/"+vdi+"/actions/export?sync", `{"format": "raw", "preferNbd": true, "nbdConcurrency": 3}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var res struct{ URL string }
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if got, want := download(t, res.URL), sf.vdiBytes(t, vdi, 12<<20); !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, VDI %d, equal false", len(got), len(want))
	}
}

func TestExactReader(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		expect  int64
		wantErr bool
	}{
		{name: "exact", data: "abcdef", expect: 6},
		{name: "empty", data: "", expect: 0},
		{name: "short", data: "abc", expect: 6, wantErr: true},
		{name: "long", data: "abcdefg", expect: 6, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(&exactReader{r: strings.NewReader(tt.data), expect: tt.expect})
			if tt.wantErr {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err %v, want ErrUnexpectedEOF", err)
				}
				return
			}
			if err != nil || string(got) != tt.data {
				t.Fatalf("%q, %v", got, err)
			}
		})
	}
}

func TestExportActionTaskResult(t *testing.T) {
	sf, _, _ := exportFixture(t)
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	rec := sf.send(t, "POST", BasePath+"/vdis/"+vdi+"/actions/export", `{"format": "raw", "key": "task/result.raw"}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	task := sf.waitEnded(t, rec.Header().Get("Location"))
	if task["status"] != "success" {
		t.Fatalf("task %v", task)
	}
	b := mustJSON(t, task["result"])
	var res struct {
		Bucket, Key, ETag, URL string
		Size                   int64
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("result %s: %v", b, err)
	}
	if res.Bucket != "exports" || res.Key != "task/result.raw" || res.Size != 12<<20 || res.ETag == "" {
		t.Fatalf("result %s", b)
	}
	if got := download(t, res.URL); !bytes.Equal(got, sf.vdiBytes(t, vdi, 12<<20)) {
		t.Fatal("stored bytes differ from the VDI")
	}
}

func TestExportActionCompress(t *testing.T) {
	sf, _, _ := exportFixture(t)
	vm := sf.idOf(t, "vms", "vm1")
	tests := []struct {
		name, compress string
		magic          []byte
	}{
		{name: "gzip", compress: "gzip", magic: []byte{0x1f, 0x8b}},
		{name: "zstd", compress: "zstd", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/export?sync", `{"compress": "`+tt.compress+`"}`)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var res struct {
				Key, URL string
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if got := download(t, res.URL); !bytes.HasPrefix(got, tt.magic) || !strings.HasSuffix(res.Key, ".xva") {
				t.Fatalf("key %q, object starts % x", res.Key, got[:min(8, len(got))])
			}
		})
	}
}
