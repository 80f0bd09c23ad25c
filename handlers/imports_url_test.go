package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/transfer/urlsource"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// secretQuery stands for the credentials in a presigned URL's query
// string: it must appear in no answer, log line or task.
const secretQuery = "X-Amz-Signature=s3cr3tsignature0123456789"

// allowLoopback lets URL imports reach the test servers, which are on
// loopback like everything else in the tests.
func allowLoopback(c *Config) { c.ImportAllow = []string{"127.0.0.1/32"} }

// urlFixture serves a simulated pool with 4 MiB disks over loopback HTTP,
// allowed to import from loopback.
func urlFixture(t *testing.T) (*simFixture, string) {
	t.Helper()
	m := xapisim.Default()
	m.DiskSize = 4 << 20
	sf := newSimFixture(t, []xapisim.Model{m}, allowLoopback)
	ts := httptest.NewServer(sf.h)
	t.Cleanup(ts.Close)
	return sf, ts.URL
}

// sendJSON sends a JSON body to a live server with the fixture's token.
func (sf *simFixture) sendJSON(t *testing.T, method, target, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp, readAll(t, resp)
}

// urlBody is the JSON body {"url": u} plus extra members.
func urlBody(u string, extra ...string) string {
	b, _ := json.Marshal(u)
	return `{"url": ` + string(b) + strings.Join(extra, "") + `}`
}

// putObject stores data in bucket/key.
func putObject(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.API().PutObject(t.Context(), &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	}); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
}

// presign returns a presigned GET of bucket/key.
func presign(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	u, err := c.Presign(t.Context(), bucket, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// counts are the XAPI objects a failed import must not leave behind.
type counts struct{ vms, vdis, tasks int }

func (sf *simFixture) counts(t *testing.T) counts {
	t.Helper()
	return counts{sf.countOf(t, "VM"), sf.countOf(t, "VDI"), sf.taskTotal(t)}
}

// importResult checks the answer of a URL import: with sync, the body
// import's answer; without, a 202 whose task succeeds. It returns the id
// of the object imported and the task's result (nil with sync).
func (sf *simFixture) importResult(t *testing.T, resp *http.Response, body []byte, sync bool, want int) (string, map[string]any) {
	t.Helper()
	if !sync {
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, BasePath+"/tasks/") || string(body) != loc {
			t.Fatalf("Location %q, body %q", loc, body)
		}
		task := sf.waitEnded(t, loc)
		if task["status"] != "success" {
			t.Fatalf("task %v", task)
		}
		res, _ := task["result"].(map[string]any)
		if res == nil {
			t.Fatalf("task without result: %v", task)
		}
		return idString(res["id"]), res
	}
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	if want == http.StatusNoContent {
		return "", nil
	}
	var out struct{ ID string }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/"+out.ID) {
		t.Errorf("Location %q for id %s", loc, out.ID)
	}
	return out.ID, nil
}

// urlImportSources exports a VDI (raw and VHD) and a VM (XVA) of the
// fixture and stores them in bucket.
func urlImportSources(t *testing.T, sf *simFixture, base string, client *s3.Client, bucket string) (raw []byte) {
	t.Helper()
	src := sf.idOf(t, "vdis", "vm1 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(src, bytes.Repeat([]byte("pulled from a URL "), 400_000), 1<<20); err != nil {
		t.Fatal(err)
	}
	raw = sf.vdiBytes(t, src, 12<<20)
	putObject(t, client, bucket, "disk.raw", raw)
	putObject(t, client, bucket, "disk.vhd", sf.download(t, base, "/vdis/"+src+".vhd"))
	putObject(t, client, bucket, "vm1.xva", sf.download(t, base, "/vms/"+sf.idOf(t, "vms", "vm1")+".xva"))
	return raw
}

func TestImportURLFromS3(t *testing.T) {
	sf, base, client := exportFixture(t, allowLoopback)
	want := urlImportSources(t, sf, base, client, "exports")
	pool := sf.idOf(t, "pools", "pool0")
	var vdiObj map[string]any
	sf.getJSON(t, BasePath+"/vdis/"+sf.idOf(t, "vdis", "vm1 disk 0"), &vdiObj)
	sr := vdiObj["$SR"].(string)
	dst := sf.idOf(t, "vdis", "vm5 disk 0")
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		sync   bool
		status int    // with sync
		kind   string // what is imported: "vdi" (new), "into" (dst), "vm"
		label  string // expected name_label of a new VDI
	}{
		{name: "new VDI from a presigned VHD URL", method: "POST", path: "/srs/" + sr + "/vdis?sync&name_label=presigned",
			body: urlBody(presign(t, client, "exports", "disk.vhd")), sync: true, status: 201, kind: "vdi", label: "presigned"},
		{name: "new VDI from s3:// raw, async", method: "POST", path: "/srs/" + sr + "/vdis",
			body: urlBody("s3://exports/disk.raw", `, "raw": true, "name_label": "from-s3", "name_description": "d"`), kind: "vdi", label: "from-s3"},
		{name: "raw into a VDI from s3://", method: "PUT", path: "/vdis/" + dst + ".raw?sync",
			body: urlBody("s3://exports/disk.raw"), sync: true, status: 204, kind: "into"},
		{name: "VHD into a VDI from a presigned URL, async", method: "PUT", path: "/vdis/" + dst + ".vhd",
			body: urlBody(presign(t, client, "exports", "disk.vhd")), kind: "into"},
		{name: "VM from a presigned XVA URL", method: "POST", path: "/pools/" + pool + "/vms?sync",
			body: urlBody(presign(t, client, "exports", "vm1.xva")), sync: true, status: 201, kind: "vm"},
		{name: "VM from s3:// into an SR, async", method: "POST", path: "/pools/" + pool + "/vms",
			body: urlBody("s3://exports/vm1.xva", `, "sr": "`+sr+`"`), kind: "vm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sf.sims[0].WriteVDIAt(dst, make([]byte, 12<<20), 0); err != nil {
				t.Fatal(err)
			}
			before := sf.counts(t)
			resp, body := sf.sendJSON(t, tt.method, base+BasePath+tt.path, tt.body)
			id, res := sf.importResult(t, resp, body, tt.sync, tt.status)
			if res != nil && (res["size"] == nil || res["etag"] == "" || res["resumes"] != 0.0) {
				t.Errorf("task result %v", res)
			}
			after := sf.counts(t)
			switch tt.kind {
			case "vdi":
				if got := sf.vdiBytes(t, id, 12<<20); !bytes.Equal(got, want) {
					t.Errorf("the new VDI's %d bytes differ from the source's", len(got))
				}
				rec, err := xapi.GetRecord[xapi.VDI](t.Context(), sf.clients[0], sf.ref(t, "VDI", id))
				if err != nil {
					t.Fatal(err)
				}
				if rec.NameLabel != tt.label || rec.VirtualSize != 12<<20 {
					t.Errorf("name_label %q virtual_size %d", rec.NameLabel, rec.VirtualSize)
				}
				if after.vdis != before.vdis+1 {
					t.Errorf("%d VDIs, want %d", after.vdis, before.vdis+1)
				}
			case "into":
				if got := sf.vdiBytes(t, dst, 12<<20); !bytes.Equal(got, want) {
					t.Error("the VDI's bytes differ from the source's")
				}
				if after.vdis != before.vdis {
					t.Errorf("%d VDIs, want %d", after.vdis, before.vdis)
				}
			case "vm":
				rec, err := xapi.GetRecord[xapi.VM](t.Context(), sf.clients[0], sf.ref(t, "VM", id))
				if err != nil {
					t.Fatal(err)
				}
				if rec.NameLabel != "vm1" || after.vms != before.vms+1 {
					t.Errorf("imported VM %q, %d VMs (was %d)", rec.NameLabel, after.vms, before.vms)
				}
			}
		})
	}
}

// TestImportURLS3Endpoint checks that s3:// imports reach the S3 endpoint
// without an allowlist, and that an http URL to the same loopback endpoint
// is refused without it.
func TestImportURLS3Endpoint(t *testing.T) {
	sf, base, client := exportFixture(t)
	want := urlImportSources(t, sf, base, client, "exports")
	sr := sf.objField(t, "vdis", sf.idOf(t, "vdis", "vm1 disk 0"), "$SR").(string)
	before := sf.counts(t)
	resp, body := sf.sendJSON(t, "POST", base+BasePath+"/srs/"+sr+"/vdis", urlBody(presign(t, client, "exports", "disk.vhd")))
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "X-Amz") {
		t.Fatalf("presigned URL to loopback: %d %s", resp.StatusCode, body)
	}
	if after := sf.counts(t); after != before {
		t.Fatalf("a refused import changed XAPI: %+v, was %+v", after, before)
	}
	resp, body = sf.sendJSON(t, "POST", base+BasePath+"/srs/"+sr+"/vdis?sync", urlBody("s3://exports/disk.vhd"))
	id, _ := sf.importResult(t, resp, body, true, 201)
	if got := sf.vdiBytes(t, id, 12<<20); !bytes.Equal(got, want) {
		t.Error("the new VDI's bytes differ from the source's")
	}
}

// cuttingProxy forwards requests to target and, once, cuts the connection
// of a GET after cutAfter bytes of its body.
func cuttingProxy(t *testing.T, target string, cutAfter int64) (string, *atomic.Int32) {
	t.Helper()
	var cuts atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), nil)
		if err != nil {
			t.Error(err)
			return
		}
		for _, h := range []string{"Range", "If-Match", "If-Range", "If-Unmodified-Since", "If-None-Match"} {
			if v := r.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		if r.Method == "GET" && resp.ContentLength > cutAfter && cuts.CompareAndSwap(0, 1) {
			_, _ = io.CopyN(w, resp.Body, cutAfter)
			_ = http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // the connection breaks mid-body
		}
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, &cuts
}

func TestImportURLResumes(t *testing.T) {
	sf, base, client := exportFixture(t, allowLoopback)
	want := urlImportSources(t, sf, base, client, "exports")
	sr := sf.objField(t, "vdis", sf.idOf(t, "vdis", "vm1 disk 0"), "$SR").(string)
	gw, err := url.Parse(presign(t, client, "exports", "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	proxy, cuts := cuttingProxy(t, gw.Scheme+"://"+gw.Host, 3<<20)
	pu, _ := url.Parse(proxy)
	gw.Host = pu.Host // the signature covers the gateway's host, which the proxy sends
	resp, body := sf.sendJSON(t, "POST", base+BasePath+"/srs/"+sr+"/vdis?raw", urlBody(gw.String()))
	id, res := sf.importResult(t, resp, body, false, 0)
	if cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d connections, want 1", cuts.Load())
	}
	if r, _ := res["resumes"].(float64); r < 1 {
		t.Errorf("task result %v: no resume reported", res)
	}
	if got := sf.vdiBytes(t, id, 12<<20); !bytes.Equal(got, want) {
		t.Error("the VDI imported across a cut differs from the source")
	}
	if !strings.Contains(sf.logs.String(), `"resumes":1`) {
		t.Errorf("no resume in the logs:\n%s", sf.logs)
	}
}

// objectServer serves data at any path with an ETag, Range and the
// conditional headers (http.ServeContent), on loopback. Before it answers,
// hook may take over a request (true: answered).
type objectServer struct {
	URL  string
	mu   sync.Mutex
	data []byte
	etag string
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newObjectServer(t *testing.T, data []byte) *objectServer {
	t.Helper()
	o := &objectServer{data: data, etag: `"v1"`}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		hook, data, etag := o.hook, o.data, o.etag
		o.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", time.Unix(1_700_000_000, 0), bytes.NewReader(data))
	}))
	t.Cleanup(ts.Close)
	o.URL = ts.URL
	return o
}

// set replaces the object.
func (o *objectServer) set(data []byte, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.data, o.etag = data, etag
}

func TestImportURLRefused(t *testing.T) {
	sf, base := urlFixture(t)
	pool := sf.idOf(t, "pools", "pool0")
	vdi := sf.idOf(t, "vdis", "vm1 disk 0")
	sr := sf.objField(t, "vdis", vdi, "$SR").(string)

	vhd4 := emptyVHD(t, 4<<20)
	obj := newObjectServer(t, vhd4)
	obj.hook = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasPrefix(r.URL.Path, "/missing"):
			http.NotFound(w, r)
		case strings.HasPrefix(r.URL.Path, "/expired"):
			http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
		case strings.HasPrefix(r.URL.Path, "/failing"):
			http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
		case r.URL.Path == "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/?"+secretQuery, http.StatusFound)
		case r.URL.Path == "/to-ipv6-loopback":
			http.Redirect(w, r, "http://[::1]:9/x?"+secretQuery, http.StatusFound)
		case r.URL.Path == "/truncated.vhd":
			w.Header().Set("ETag", `"t"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(vhd4[:2048]))
		case r.URL.Path == "/big.vhd":
			w.Header().Set("ETag", `"b"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(emptyVHD(t, 8<<20)))
		case r.URL.Path == "/zeros.vhd":
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(make([]byte, 8192)))
		case r.URL.Path == "/big.raw":
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(make([]byte, 4<<20+512)))
		default:
			return false
		}
		return true
	}
	at := func(path string) string { return obj.URL + path + "?" + secretQuery }
	closed := func() string { // a loopback port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String() + "/vm.xva?" + secretQuery
	}()
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		strict bool // on a server without ImportAllow
		status int
		has    string
	}{
		{name: "loopback", method: "POST", path: "/srs/" + sr + "/vdis", strict: true,
			body: urlBody(at("/ok.vhd")), status: 403, has: "may not reach"},
		{name: "cloud metadata", method: "POST", path: "/pools/" + pool + "/vms",
			body: urlBody("http://169.254.169.254/latest/meta-data/?" + secretQuery), status: 403, has: "may not reach"},
		{name: "private", method: "PUT", path: "/vdis/" + vdi + ".raw", body: urlBody("https://10.1.2.3/disk.raw?" + secretQuery), status: 403},
		{name: "IPv4-mapped loopback", method: "PUT", path: "/vdis/" + vdi + ".raw", body: urlBody("http://[::ffff:127.0.0.1]:9/x"), strict: true, status: 403},
		{name: "redirect to the metadata service", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(at("/to-metadata")), status: 403},
		{name: "redirect to IPv6 loopback", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(at("/to-ipv6-loopback")), status: 403},
		{name: "userinfo", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("https://user:hunter2@example.com/vm.xva"), status: 422, has: "userinfo"},
		{name: "ftp", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("ftp://example.com/vm.xva"), status: 422, has: "http or https"},
		{name: "too long", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("https://example.com/" + strings.Repeat("a", 16<<10)), status: 422, has: "at most"},
		{name: "relative", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("/vm.xva"), status: 422},
		{name: "s3 without a bucket", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("s3:///key"), status: 422, has: "bucket"},
		{name: "s3 without a key", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("s3://bucket"), status: 422, has: "key"},
		{name: "s3 without S3", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody("s3://bucket/vm.xva"), status: 501, has: "S3"},
		{name: "not JSON", method: "POST", path: "/pools/" + pool + "/vms", body: `{"url": `, status: 400, has: "invalid JSON"},
		{name: "not an object", method: "POST", path: "/pools/" + pool + "/vms", body: `["https://example.com/"]`, status: 400},
		{name: "empty", method: "POST", path: "/pools/" + pool + "/vms", body: ``, status: 400},
		{name: "missing url", method: "POST", path: "/pools/" + pool + "/vms", body: `{"sr": "` + sr + `"}`, status: 422, has: "url: is required"},
		{name: "url not a string", method: "POST", path: "/pools/" + pool + "/vms", body: `{"url": 42}`, status: 422, has: "must be a string"},
		{name: "unknown member", method: "PUT", path: "/vdis/" + vdi + ".vhd", body: urlBody(at("/ok.vhd"), `, "name_label": "x"`), status: 422, has: "name_label: unknown parameter"},
		{name: "unknown SR", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(at("/ok.xva"), `, "sr": "00000000-0000-0000-0000-000000000000"`), status: 422, has: "no such SR"},
		{name: "sr in query and body", method: "POST", path: "/pools/" + pool + "/vms?sr=" + sr, body: urlBody(at("/ok.xva"), `, "sr": "`+sr+`"`), status: 422, has: "both"},
		{name: "raw in query and body", method: "POST", path: "/srs/" + sr + "/vdis?raw", body: urlBody(at("/ok.vhd"), `, "raw": true`), status: 422, has: "both"},
		{name: "remote 404", method: "POST", path: "/srs/" + sr + "/vdis", body: urlBody(at("/missing.vhd")), status: 422, has: "answered 404"},
		{name: "remote 403 (expired)", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(at("/expired.xva")), status: 422, has: "/expired.xva"},
		{name: "remote 500", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(at("/failing.xva")), status: 502, has: "answered 500"},
		{name: "nobody listening", method: "POST", path: "/pools/" + pool + "/vms", body: urlBody(closed), status: 502, has: "cannot be read"},
		{name: "truncated VHD", method: "POST", path: "/srs/" + sr + "/vdis", body: urlBody(at("/truncated.vhd")), status: 400, has: "truncated VHD"},
		{name: "VHD of another size", method: "PUT", path: "/vdis/" + vdi + ".vhd", body: urlBody(at("/big.vhd")), status: 422, has: "differs"},
		{name: "raw larger than the VDI", method: "PUT", path: "/vdis/" + vdi + ".raw", body: urlBody(at("/big.raw")), status: 422, has: "larger than the VDI"},
		{name: "not a VHD", method: "POST", path: "/srs/" + sr + "/vdis", body: urlBody(at("/zeros.vhd")), status: 400, has: "invalid VHD"},
	}
	// The same pool behind a server that allows no loopback address.
	strict := &simFixture{fixture: newFixture(t, func(c *Config) { c.Pools = sf.pools }), sims: sf.sims, clients: sf.clients, pools: sf.pools}
	strict.token = strict.mint(t, "root", time.Hour)
	strictTS := httptest.NewServer(strict.h)
	t.Cleanup(strictTS.Close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on, target := sf, base
			if tt.strict {
				on, target = strict, strictTS.URL
			}
			before := sf.counts(t)
			resp, body := on.sendJSON(t, tt.method, target+BasePath+tt.path, tt.body)
			t.Logf("%d %s", resp.StatusCode, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(string(body), tt.has) {
				t.Errorf("answer %s does not say %q", body, tt.has)
			}
			checkNoSecret(t, "the answer", string(body))
			if after := sf.counts(t); after != before {
				t.Errorf("a refused import changed XAPI: %+v, was %+v", after, before)
			}
		})
	}
	checkNoSecret(t, "the logs", sf.logs.String()+strict.logs.String())
	if !strings.Contains(sf.logs.String(), "/expired.xva") {
		t.Error("the refusals are not in the access log")
	}
}

// checkNoSecret fails when text holds a presigned URL's credentials or a
// URL's password.
func checkNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, secret := range []string{"s3cr3tsignature", "hunter2", "X-Amz-Signature", "X-Amz-Credential"} {
		if strings.Contains(text, secret) {
			t.Errorf("%s show %q:\n%s", where, secret, text)
		}
	}
}

func TestImportURLFailsMidway(t *testing.T) {
	sf, base := urlFixture(t)
	pool := sf.idOf(t, "pools", "pool0")
	sr := sf.objField(t, "vdis", sf.idOf(t, "vdis", "vm1 disk 0"), "$SR").(string)
	raw := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	xvaData := sf.download(t, base, "/vms/"+sf.idOf(t, "vms", "vm1")+".xva")
	tests := []struct {
		name string
		path string
		body []byte // the object
		// hook takes over requests; n counts the requests of the method.
		hook func(o *objectServer, w http.ResponseWriter, r *http.Request, n int) bool
		has  string
	}{
		{name: "body shorter than announced", path: "/srs/" + sr + "/vdis?raw&sync", body: raw,
			hook: func(o *objectServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if r.Method != "GET" {
					return false
				}
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(raw[:len(raw)-4096]))
				return true
			}, has: "another number of bytes"},
		{name: "object changed during the transfer", path: "/srs/" + sr + "/vdis?raw&sync", body: raw,
			hook: func(o *objectServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if r.Method != "GET" || n != 1 {
					return false
				}
				w.Header().Set("ETag", `"v1"`)
				w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
				_, _ = w.Write(raw[:1<<20])
				_ = http.NewResponseController(w).Flush()
				o.set(bytes.ToUpper(raw), `"v2"`)
				panic(http.ErrAbortHandler)
			}, has: "changed during the import"},
		{name: "object changed after the check", path: "/srs/" + sr + "/vdis?raw&sync", body: raw,
			hook: func(o *objectServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if r.Method == "HEAD" && n == 1 { // the request's check; the job comes next
					defer o.set(raw[:len(raw)/2], `"v2"`)
				}
				return false
			}, has: "changed during the import"},
		{name: "XVA cut, no validator to resume", path: "/pools/" + pool + "/vms?sync", body: xvaData,
			hook: func(o *objectServer, w http.ResponseWriter, r *http.Request, n int) bool {
				if r.Method != "GET" {
					w.Header().Set("Content-Length", fmt.Sprint(len(xvaData)))
					return true
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(xvaData)))
				_, _ = w.Write(xvaData[:len(xvaData)/2])
				_ = http.NewResponseController(w).Flush()
				panic(http.ErrAbortHandler)
			}, has: "cannot be resumed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newObjectServer(t, tt.body)
			var mu sync.Mutex
			seen := map[string]int{}
			o.hook = func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				seen[r.Method]++
				n := seen[r.Method]
				mu.Unlock()
				return tt.hook(o, w, r, n)
			}
			before := sf.counts(t)
			resp, body := sf.sendJSON(t, "POST", base+BasePath+tt.path, urlBody(o.URL+"/object?"+secretQuery))
			t.Logf("%d %s", resp.StatusCode, body)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), tt.has) {
				t.Fatalf("status %d, want 422 saying %q: %s", resp.StatusCode, tt.has, body)
			}
			checkNoSecret(t, "the answer", string(body))
			after := sf.counts(t)
			if after.vms != before.vms || after.vdis != before.vdis || after.tasks != before.tasks+1 {
				t.Errorf("after a failed import: %+v, was %+v (want only the job's task more)", after, before)
			}
		})
	}
	tasks, err := xapi.GetAllRecords[xapi.Task](t.Context(), sf.clients[0])
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, task := range tasks {
		if task.Status == xapi.TaskFailure {
			failed++
			checkNoSecret(t, "the task "+task.NameLabel, strings.Join(task.ErrorInfo, " "))
		}
	}
	if failed != len(tests) {
		t.Errorf("%d failed tasks, want %d", failed, len(tests))
	}
	checkNoSecret(t, "the logs", sf.logs.String())
}

// FuzzURLImportBody checks the parser of URL import bodies: it never
// panics, refuses with a 400 or a 422 only, never quotes a URL's query
// string (a presigned URL's credentials) in its errors, and what it
// accepts is a URL urlsource accepts or an s3://bucket/key.
func FuzzURLImportBody(f *testing.F) {
	for _, seed := range []string{
		`{"url": "https://bucket.s3.amazonaws.com/disk.vhd?X-Amz-Signature=0123456789abcdef"}`,
		`{"url": "s3://bucket/dir/disk.raw", "raw": true, "name_label": "n", "name_description": "d"}`,
		`{"url": "https://user:password@example.com/x?X-Amz-Credential=secretsecret"}`,
		`{"url": "ftp://example.com/x"}`, `{"url": "s3://b/k"}`, `{"url": "S3://bucket/k\u0001"}`,
		`{"url": 1}`, `{"url": null}`, `{"raw": "yes"}`, `{"url": "http://[::1]:80/?a=b"}`, `[]`, `{}`, `{"url": "http://0x7f.1/x?abcdefghij"}`,
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(`{"url": "https://example.com/x"}`), "raw&name_label=x")
	f.Add([]byte(`{"url": "https://example.com/x", "raw": false}`), "raw=false")
	f.Fuzz(func(t *testing.T, data []byte, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		members, err := parseJSONObject(data)
		if err != nil {
			if status, _ := describe(err); status != http.StatusBadRequest {
				t.Fatalf("status %d for a body that is not one JSON object: %v", status, err)
			}
			return
		}
		var raw string
		_ = json.Unmarshal(members["url"], &raw)
		args, _, src, err := parseURLImport(members, importNewVDIURLParams, q, nil)
		if err != nil {
			status, body := describe(err)
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %v", status, err)
			}
			if i := strings.IndexByte(raw, '?'); i >= 0 {
				secret, _, _ := strings.Cut(raw[i+1:], "#")
				if len(secret) >= 8 && !strings.Contains(raw[:i], secret) && strings.Contains(body.Error, secret) {
					t.Fatalf("the error %q quotes the query string %q", body.Error, secret)
				}
			}
			return
		}
		if args["url"] != raw {
			t.Fatalf("url %q, body's %q", args["url"], raw)
		}
		switch {
		case src.URL != "" && src.Bucket == "":
			if src.URL != raw {
				t.Fatalf("source %q, url %q", src.URL, raw)
			}
			if _, err := urlsource.ParseURL(src.URL); err != nil {
				t.Fatalf("accepted %q that urlsource refuses: %v", src.URL, err)
			}
		case src.URL == "" && src.Bucket != "":
			if !validBucket(src.Bucket) || src.Key == "" || !strings.HasSuffix(raw, "/"+src.Key) {
				t.Fatalf("bucket %q key %q from %q", src.Bucket, src.Key, raw)
			}
		default:
			t.Fatalf("source %+v", src)
		}
	})
}

// TestImportURLProgress holds a transfer at half the object and reads the
// task: its progress follows the bytes pulled, and it names the VDI.
func TestImportURLProgress(t *testing.T) {
	sf, base := urlFixture(t)
	dst := sf.idOf(t, "vdis", "vm5 disk 0")
	raw := bytes.Repeat([]byte("progress"), 4<<20/8)
	release := make(chan struct{})
	o := newObjectServer(t, raw)
	o.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || r.Header.Get("Range") != "" {
			return false
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
		_, _ = w.Write(raw[:len(raw)/2])
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write(raw[len(raw)/2:])
		return true
	}
	resp, body := sf.sendJSON(t, "PUT", base+BasePath+"/vdis/"+dst+".raw", urlBody(o.URL+"/disk.raw"))
	if resp.StatusCode != http.StatusAccepted {
		close(release)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	href := resp.Header.Get("Location")
	// The progress rises to 50% (half the bytes) and stays there.
	var seen []float64
	deadline := time.Now().Add(30 * time.Second) // a hang, not a timing assertion
	for len(seen) == 0 || seen[len(seen)-1] < 50 {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("progress %v after 30 s", seen)
		}
		var task map[string]any
		sf.getJSON(t, href, &task)
		props := task["properties"].(map[string]any)
		if props["objectId"] != dst || !strings.Contains(fmt.Sprint(props["name"]), "from a URL") {
			t.Errorf("task properties %v", props)
		}
		p, _ := props["progress"].(float64)
		if len(seen) == 0 || p != seen[len(seen)-1] {
			seen = append(seen, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if last := seen[len(seen)-1]; last != 50 || !slices.IsSorted(seen) {
		t.Errorf("progress %v while half the object was delivered, want rising to 50", seen)
	}
	t.Logf("progress seen: %v", seen)
	if task := sf.waitEnded(t, href); task["status"] != "success" {
		t.Fatalf("task %v", task)
	}
	if got := sf.vdiBytes(t, dst, 4<<20); !bytes.Equal(got, raw) {
		t.Error("the VDI differs from the object")
	}
}

// TestImportURLJobElsewhere runs the jobs on another server that shares
// only XAPI and S3 with the one that took the request (Lambda's
// asynchronous self-invocation): the job's parameters are all it needs.
func TestImportURLJobElsewhere(t *testing.T) {
	var other *Server
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	sf, base, client := exportFixture(t, func(c *Config) {
		c.Dispatch = func(ctx context.Context, job []byte) error {
			wg.Go(func() {
				if err := other.RunJob(context.WithoutCancel(ctx), job); err != nil {
					t.Errorf("job on the other server: %v", err)
				}
			})
			return nil
		}
	})
	pools, err := xo.New(xo.Config{XAPI: []xapi.Options{{URL: sf.sims[0].URL, Username: sf.sims[0].User, Password: sf.sims[0].Password}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close(context.Background()) })
	other, err = NewServer(Config{Tokens: sf.store, Pools: pools, S3: client})
	if err != nil {
		t.Fatal(err)
	}
	want := urlImportSources(t, sf, base, client, "exports")
	sr := sf.objField(t, "vdis", sf.idOf(t, "vdis", "vm1 disk 0"), "$SR").(string)
	resp, body := sf.sendJSON(t, "POST", base+BasePath+"/srs/"+sr+"/vdis?sync", urlBody("s3://exports/disk.vhd", `, "name_label": "elsewhere"`))
	id, _ := sf.importResult(t, resp, body, true, http.StatusCreated)
	if got := sf.vdiBytes(t, id, 12<<20); !bytes.Equal(got, want) {
		t.Error("the VDI imported by the other server differs from the source")
	}
	if strings.Contains(sf.logs.String(), `"msg":"URL import"`) {
		t.Error("the server that took the request ran the import")
	}
}
