package handlers

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/xorest/xorest/internal/peertest"
	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/transfer/xva"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// exportClasses are the classes an export of a running VM creates records
// of (the snapshot, its disks and their VBDs, tasks) and must leave as it
// found them.
var exportClasses = []string{"VM", "VDI", "VBD", "task"}

// xapiCounts counts the records of exportClasses in pool 0.
func (sf *simFixture) xapiCounts(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, class := range exportClasses {
		all, err := sf.clients[0].GetAllRecords(t.Context(), class)
		if err != nil {
			t.Fatal(err)
		}
		out[class] = len(all)
	}
	return out
}

// waitCounts waits until pool 0 has the record counts want (the cleanup
// of an aborted export runs after the response ended), failing after a
// generous bound (a hang, not a timing assertion).
func (sf *simFixture) waitCounts(t testing.TB, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := sf.xapiCounts(t)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records %v, want %v as before the export", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstDisk reads the first disk of an XVA, padded to size.
func firstDisk(t *testing.T, body []byte, size int64) (ovaXML, disk []byte) {
	t.Helper()
	xr, err := xva.NewReader(bytes.NewReader(body), xva.ReaderOptions{})
	if err != nil {
		t.Fatalf("not an XVA: %v", err)
	}
	defer xr.Close()
	d, err := xr.NextDisk()
	if err != nil {
		t.Fatalf("XVA disk: %v", err)
	}
	d.SetSize(size)
	disk, err = io.ReadAll(d.Raw())
	if err != nil {
		t.Fatalf("XVA disk data: %v", err)
	}
	return xr.OVAXML(), disk
}

// TestExportRunningVM exports running and paused VMs as Xen Orchestra
// does: from a snapshot "[XO Export] <name>" destroyed afterwards, with
// its disks and VBDs, whatever the outcome.
func TestExportRunningVM(t *testing.T) {
	sf, base := transferFixture(t)
	running := sf.idOf(t, "vms", "vm0")
	disk := sf.idOf(t, "vdis", "vm0 disk 0")
	if _, err := sf.sims[0].WriteVDIAt(disk, bytes.Repeat([]byte("live data "), 100_000), 1<<20); err != nil {
		t.Fatal(err)
	}
	want := sf.vdiBytes(t, disk, 4<<20)
	tests := []struct {
		name   string
		setup  func(t *testing.T)
		target string
		status int
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{name: "running VM as XVA", target: "/vms/" + running + ".xva", status: 200,
			check: func(t *testing.T, resp *http.Response, body []byte) {
				ovaXML, got := firstDisk(t, body, 4<<20)
				if !bytes.Contains(ovaXML, []byte("[XO Export] vm0")) {
					t.Error("ova.xml does not describe the export snapshot")
				}
				if !bytes.Equal(got, want) {
					t.Error("the XVA's disk differs from the VM's")
				}
				if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=vm0.xva" {
					t.Errorf("Content-Disposition %q", cd)
				}
			}},
		{name: "paused VM as gzip XVA", target: "/vms/" + running + ".xva?compress=gzip", status: 200,
			setup: func(t *testing.T) {
				ref := sf.ref(t, "VM", running)
				sf.call(t, "VM.pause", ref)
				t.Cleanup(func() {
					if _, err := sf.clients[0].Call(context.Background(), "VM.unpause", ref); err != nil {
						t.Error(err)
					}
				})
			},
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if _, got := firstDisk(t, body, 4<<20); !bytes.Equal(got, want) {
					t.Error("the XVA's disk differs from the VM's")
				}
			}},
		{name: "running VM as OVA", target: "/vms/" + running + ".ova", status: 200,
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=vm0.ova" {
					t.Errorf("Content-Disposition %q", cd)
				}
				if int64(len(body)) != resp.ContentLength {
					t.Errorf("%d bytes, Content-Length %d", len(body), resp.ContentLength)
				}
				if !bytes.Contains(body, []byte("<Name>vm0</Name>")) && !bytes.Contains(body, []byte(">vm0<")) {
					t.Error("the OVF does not name the VM vm0")
				}
				if bytes.Contains(body, []byte("[XO Export]")) {
					t.Error("the OVF names the export snapshot")
				}
			}},
		{name: "export fails after the snapshot", target: "/vms/" + running + ".xva", status: http.StatusInternalServerError,
			setup: func(t *testing.T) {
				// The first task.create after the snapshot is the export's.
				t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "task.create", Count: 1,
					Fault: xapisim.NewFault("INTERNAL_ERROR", "injected export failure")}))
			},
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if !strings.Contains(string(body), "injected export failure") {
					t.Errorf("error %s", body)
				}
			}},
		{name: "snapshot refused", target: "/vms/" + running + ".xva", status: http.StatusForbidden,
			setup: func(t *testing.T) {
				t.Cleanup(sf.sims[0].InjectFault(xapisim.FaultRule{Method: "VM.snapshot", Count: 1,
					Fault: xapisim.NewFault("OPERATION_BLOCKED", string(sf.ref(t, "VM", running)), "no snapshots")}))
			},
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if !strings.Contains(string(body), "OPERATION_BLOCKED") {
					t.Errorf("error %s", body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			before := sf.xapiCounts(t)
			resp := sf.transfer(t, t.Context(), "GET", base+BasePath+tt.target, nil, 0)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tt.status, body)
			}
			tt.check(t, resp, body)
			sf.waitCounts(t, before)
			if got := sf.objField(t, "vms", running, "power_state"); got != "Running" && got != "Paused" {
				t.Errorf("the VM is %v after its export", got)
			}
		})
	}
}

// TestExportRunningVMClientLeaves checks that a client leaving in the
// middle of the export of a running VM leaves no snapshot, disk or task.
func TestExportRunningVMClientLeaves(t *testing.T) {
	for _, ext := range []string{".xva", ".ova"} {
		t.Run(ext, func(t *testing.T) {
			sf, base := transferFixture(t)
			running := sf.idOf(t, "vms", "vm0")
			before := sf.xapiCounts(t)
			ctx, cancel := context.WithCancel(t.Context())
			resp := sf.transfer(t, ctx, "GET", base+BasePath+"/vms/"+running+ext, nil, 0)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
			if got := sf.xapiCounts(t); got["VM"] != before["VM"]+1 {
				t.Fatalf("records %v during the export, before %v: no snapshot?", got, before)
			}
			cancel()
			resp.Body.Close()
			sf.waitCounts(t, before)
		})
	}
}

// s3Gate is a reverse proxy in front of an S3 server that holds the
// request storing the end of an object (PutObject or
// CompleteMultipartUpload) until release, or refuses object writes with
// 403 AccessDenied when failing.
type s3Gate struct {
	url     string
	held    chan struct{} // receives when a final write is held
	release chan struct{}
	failing atomic.Bool
}

// newS3Gate proxies endpoint.
func newS3Gate(t *testing.T, endpoint string) *s3Gate {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &s3Gate{held: make(chan struct{}, 16), release: make(chan struct{})}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // signed by the client
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
		write := object && (r.Method == http.MethodPut || (r.Method == http.MethodPost && q.Has("uploadId")))
		if write && g.failing.Load() {
			// Read the body first: a client still sending would see a
			// reset connection instead of the answer.
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>gate closed</Message></Error>`)
			return
		}
		final := object && ((r.Method == http.MethodPut && !q.Has("uploadId")) || (r.Method == http.MethodPost && q.Has("uploadId")))
		if final {
			g.held <- struct{}{}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.open)
	g.url = srv.URL
	return g
}

// open lets held and later writes through.
func (g *s3Gate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// gatedExportFixture is exportFixture with the server's S3 client going
// through an s3Gate; direct is a client that does not.
func gatedExportFixture(t *testing.T) (sf *simFixture, gate *s3Gate, direct *s3.Client) {
	t.Helper()
	const bucket = "exports"
	gw, err := peertest.StartVersityGW("testkey", "testsecret")
	if err != nil {
		t.Fatalf("versitygw (the S3 test peer): %v", err)
	}
	t.Cleanup(gw.Stop)
	client := func(endpoint string) *s3.Client {
		c, err := s3.New(t.Context(), s3.Config{
			Endpoint: endpoint, Region: "us-east-1", UsePathStyle: true,
			AccessKeyID: "testkey", SecretAccessKey: "testsecret", MaxAttempts: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	direct = client(gw.Endpoint)
	if _, err := direct.API().CreateBucket(t.Context(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	gate = newS3Gate(t, gw.Endpoint)
	m := xapisim.Default()
	m.DiskSize = 12 << 20
	sf = newSimFixture(t, []xapisim.Model{m}, func(c *Config) { c.S3, c.S3Bucket = client(gate.url), bucket })
	return sf, gate, direct
}

// xapiTask reads an XAPI task record of pool 0.
func (sf *simFixture) xapiTask(t *testing.T, ref xapi.Ref) *xapi.Task {
	t.Helper()
	rec, err := xapi.GetRecord[xapi.Task](t.Context(), sf.clients[0], ref)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestExportActionProgress checks the progress of XVA exports to S3,
// whose length is not known beforehand: while the upload's last request
// is held, all the data was read from XAPI and the task must show a
// progress above 0 and below 1; the values never decrease, and the task
// ends at 1. The running VM's export snapshot is gone afterwards.
func TestExportActionProgress(t *testing.T) {
	sf, gate, direct := gatedExportFixture(t)
	tests := []struct{ name, vm, body string }{
		{name: "halted VM", vm: "vm1", body: `{}`},
		{name: "running VM, gzip", vm: "vm0", body: `{"compress": "gzip"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sf.xapiCounts(t)
			rec := sf.send(t, "POST", BasePath+"/vms/"+sf.idOf(t, "vms", tt.vm)+"/actions/export", tt.body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			href := rec.Header().Get("Location")
			var task map[string]any
			sf.getJSON(t, href, &task)
			ref := xapi.Ref(task["properties"].(map[string]any)["xapiRef"].(string))

			select {
			case <-gate.held:
			case <-t.Context().Done():
				t.Fatal("the upload never reached its last request")
			}
			// The data is read; the progress follows within a tick.
			last := 0.0
			deadline := time.Now().Add(30 * time.Second)
			for {
				task := sf.xapiTask(t, ref)
				if task.Status != xapi.TaskPending {
					t.Fatalf("task %s while the upload is held", task.Status)
				}
				if task.Progress < last {
					t.Fatalf("progress went from %v back to %v", last, task.Progress)
				}
				last = task.Progress
				if last >= 1 {
					t.Fatalf("progress %v before the upload completed", last)
				}
				if last > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no progress while the upload is held")
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("progress while the upload is held: %v", last)
			gate.release <- struct{}{}
			ended := sf.waitEnded(t, href)
			if ended["status"] != "success" {
				t.Fatalf("task %v", ended)
			}
			if p := ended["properties"].(map[string]any)["progress"]; p != 100.0 {
				t.Errorf("progress %v at the end, want 100", p)
			}
			b := mustJSON(t, ended["result"])
			if !bytes.Contains(b, []byte(`"bucket":"exports"`)) {
				t.Errorf("result %s", b)
			}
			// The action's task stays, like every action's.
			want := maps.Clone(before)
			want["task"]++
			sf.waitCounts(t, want)
			ups, err := direct.API().ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String("exports")})
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("multipart uploads left: %d", len(ups.Uploads))
			}
		})
	}
}

// TestExportActionRunningVMUploadFails checks that an export of a running
// VM whose upload fails leaves neither the snapshot nor an upload.
func TestExportActionRunningVMUploadFails(t *testing.T) {
	sf, gate, direct := gatedExportFixture(t)
	gate.failing.Store(true)
	for _, format := range []string{"xva", "ova"} {
		t.Run(format, func(t *testing.T) {
			before := sf.xapiCounts(t)
			rec := sf.send(t, "POST", BasePath+"/vms/"+sf.idOf(t, "vms", "vm0")+"/actions/export", `{"format": "`+format+`", "key": "failed.`+format+`"}`)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			task := sf.waitEnded(t, rec.Header().Get("Location"))
			if task["status"] != "failure" || !strings.Contains(errorText(mustJSON(t, task)), "AccessDenied") {
				t.Fatalf("task %v", task)
			}
			want := maps.Clone(before)
			want["task"]++ // the action's
			sf.waitCounts(t, want)
			checkNothingStored(t, direct, "failed."+format)
		})
	}
}

// TestSimulatorRefusesRunningExport checks that the simulator answers the
// /export of a running VM as XAPI does, which is why exportSource
// snapshots such a VM. In xen-api's ocaml/xapi/export.ml the handler locks
// the VM for the export (with_vm_locked → Xapi_vm_lifecycle.
// assert_operation_valid ~op:`export, allowed in Halted and Suspended
// only) before any header is written; the Server_error fails the task and
// becomes Http_svr's 500.
func TestSimulatorRefusesRunningExport(t *testing.T) {
	sf, _ := transferFixture(t)
	c := sf.clients[0]
	vm := sf.ref(t, "VM", sf.idOf(t, "vms", "vm0"))
	var task xapi.Ref
	if err := c.CallInto(t.Context(), &task, "task.create", "export of a running VM", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DestroyTask(context.Background(), task) })
	before := sf.xapiCounts(t)
	u, err := url.Parse(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/export/"
	u.RawQuery = url.Values{"ref": {string(vm)}, "session_id": {string(c.Session())}, "task_id": {string(task)}}.Encode()
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	rec, err := c.WaitTaskRecord(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"VM_BAD_POWER_STATE", string(vm), "halted, suspended", "running"}
	if rec.Status != xapi.TaskFailure || !slices.Equal(rec.ErrorInfo, want) {
		t.Errorf("task %s %q, want failure %q", rec.Status, rec.ErrorInfo, want)
	}
	if got := sf.xapiCounts(t); !maps.Equal(got, before) {
		t.Errorf("records %v, %v before", got, before)
	}
}

func TestProgressValue(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		read  int64
		want  float64
	}{
		{name: "nothing read", total: 100, read: 0, want: 0},
		{name: "half", total: 200, read: 100, want: 0.5},
		{name: "more than the estimate stays below 1", total: 100, read: 150, want: maxRunningProgress},
		{name: "all read stays below 1", total: 100, read: 100, want: maxRunningProgress},
		{name: "no total", total: 0, read: 150, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &progress{total: tt.total}
			if _, err := io.Copy(io.Discard, p.reader(bytes.NewReader(make([]byte, tt.read)))); err != nil {
				t.Fatal(err)
			}
			if got := p.value(t.Context()); got != tt.want {
				t.Errorf("value %v, want %v", got, tt.want)
			}
		})
	}
}

// TestXVAEstimate checks the estimate of an XVA's length against the
// simulator's VMs: the virtual size of their disks, not of their CDs.
func TestXVAEstimate(t *testing.T) {
	sf, _ := transferFixture(t)
	tests := []struct {
		name string
		ref  xapi.Ref
		want int64
	}{
		{name: "VM with one 4 MiB disk", ref: sf.ref(t, "VM", sf.idOf(t, "vms", "vm1")), want: 4 << 20},
		{name: "unknown VM", ref: "OpaqueRef:00000000-0000-0000-0000-000000000000", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := xvaEstimate(t.Context(), sf.clients[0], tt.ref); got != tt.want {
				t.Errorf("estimate %d, want %d", got, tt.want)
			}
		})
	}
}
