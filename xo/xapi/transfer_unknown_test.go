package xapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// unsized hides the length of a reader, as a pipe or a chunked request
// body would.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// exportXVA exports a halted guest with compression ("" for none).
func exportXVA(t *testing.T, c *xapi.Client, compression string) []byte {
	t.Helper()
	q := url.Values{"ref": {string(guest(t, c, "Halted"))}}
	if compression != "" {
		q.Set("use_compression", compression)
	}
	d, err := c.GetExport(t.Context(), "/export", q, "test export")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// objectCounts counts the VMs, VDIs and tasks of the pool.
func objectCounts(t *testing.T, c *xapi.Client) [3]int {
	t.Helper()
	vms, err := xapi.GetAllRecords[xapi.VM](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	vdis, err := xapi.GetAllRecords[xapi.VDI](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return [3]int{len(vms), len(vdis), taskCount(t, c)}
}

// TestPutImportUnknownSize sends XVAs of unknown length to /import the way
// npm xen-api's putResource does (Content-Length 1 PiB, then the client
// closes): the simulator, like XAPI, reads the archive to its last disk.
func TestPutImportUnknownSize(t *testing.T) {
	c, _ := newClient(t, transferModel())
	ctx := t.Context()
	plain := exportXVA(t, c, "")
	zstd := exportXVA(t, c, "zstd")
	boom := errors.New("the client went away")

	tests := []struct {
		name    string
		body    io.Reader
		sent    int64
		vms     int    // new VMs
		fault   string // the task's error code
		bodyErr error
	}{
		{name: "XVA", body: unsized{bytes.NewReader(plain)}, sent: int64(len(plain)), vms: 1},
		{name: "zstd XVA", body: unsized{bytes.NewReader(zstd)}, sent: int64(len(zstd)), vms: 1},
		// XAPI stops after the last disk: the end-of-archive blocks are
		// not needed.
		{name: "XVA without its end-of-archive blocks", body: unsized{bytes.NewReader(plain[:len(plain)-1024])}, sent: int64(len(plain) - 1024), vms: 1},
		{name: "last data with io.EOF", body: iotest.DataErrReader(bytes.NewReader(plain)), sent: int64(len(plain)), vms: 1},
		{name: "truncated XVA", body: unsized{bytes.NewReader(plain[:len(plain)/2])}, sent: int64(len(plain) / 2), fault: "IMPORT_ERROR_PREMATURE_EOF"},
		{name: "truncated zstd XVA", body: unsized{bytes.NewReader(zstd[:len(zstd)/2])}, sent: int64(len(zstd) / 2), fault: "IMPORT_ERROR_PREMATURE_EOF"},
		{name: "body that fails", body: io.MultiReader(bytes.NewReader(plain[:len(plain)/2]), iotest.ErrReader(boom)), sent: int64(len(plain) / 2), bodyErr: boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := objectCounts(t, c)
			v, sent, err := c.PutImportCount(ctx, "/import/", nil, tc.body, xapi.UnknownSize, "import of unknown size")
			after := objectCounts(t, c)
			if sent != tc.sent {
				t.Errorf("sent %d bytes, want %d", sent, tc.sent)
			}
			switch {
			case tc.bodyErr != nil:
				if !errors.Is(err, tc.bodyErr) {
					t.Fatalf("err %v, want the body's error", err)
				}
			case tc.fault != "":
				var xe *xapi.Error
				if !errors.As(err, &xe) || xe.Code != tc.fault {
					t.Fatalf("err %v, want %s", err, tc.fault)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if refs, ok := v.([]any); !ok || len(refs) != 1 {
					t.Fatalf("result %#v, want one VM ref", v)
				}
			}
			if after[0] != before[0]+tc.vms || after[2] != before[2] {
				t.Errorf("VMs %d -> %d, tasks %d -> %d; want %d new VMs and no task left", before[0], after[0], before[2], after[2], tc.vms)
			}
			if tc.vms == 0 && after[1] != before[1] {
				t.Errorf("a failed import left VDIs: %d -> %d", before[1], after[1])
			}
		})
	}
}

// TestPutImportUnknownSizeRefused checks the handlers that cannot find the
// end of a body themselves: no task is created, nothing is sent.
func TestPutImportUnknownSizeRefused(t *testing.T) {
	c, _ := newClient(t, transferModel())
	_, dst, _ := userDisks(t, c)
	before := taskCount(t, c)
	for _, format := range []string{"raw", "vhd", ""} {
		t.Run("format "+format, func(t *testing.T) {
			q := url.Values{"vdi": {string(dst)}}
			if format != "" {
				q.Set("format", format)
			}
			_, sent, err := c.PutImportCount(t.Context(), "/import_raw_vdi", q, strings.NewReader("data"), xapi.UnknownSize, "import")
			if !errors.Is(err, xapi.ErrSizeRequired) || sent != 0 {
				t.Fatalf("err %v, %d bytes sent; want ErrSizeRequired and nothing sent", err, sent)
			}
		})
	}
	if n := taskCount(t, c); n != before {
		t.Errorf("%d tasks, want %d", n, before)
	}
}

// TestPutImportUnknownSizeTar writes a disk exported as tar (XVA chunks)
// into another through /import_raw_vdi?format=tar with an unknown size:
// XAPI reads until the VDI's size is filled.
func TestPutImportUnknownSizeTar(t *testing.T) {
	c, srv := newClient(t, transferModel())
	ctx := t.Context()
	src, dst, size := userDisks(t, c)
	pattern := bytes.Repeat([]byte("unknown length "), 10000)
	if _, err := srv.WriteVDIAt(string(src), pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetExport(ctx, "/export_raw_vdi", url.Values{"vdi": {string(src)}, "format": {"tar"}}, "export")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	v, sent, err := c.PutImportCount(ctx, "/import_raw_vdi", url.Values{"vdi": {string(dst)}, "format": {"tar"}}, unsized{bytes.NewReader(data)}, xapi.UnknownSize, "import")
	if err != nil {
		t.Fatal(err)
	}
	if v != string(dst) || sent != int64(len(data)) {
		t.Errorf("result %v after %d bytes, want %s after %d", v, sent, dst, len(data))
	}
	want, got := make([]byte, size), make([]byte, size)
	if _, err := srv.ReadVDIAt(string(src), want, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := srv.ReadVDIAt(string(dst), got, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("imported disk differs")
	}
}

// TestPutImportUnknownSizeTLS uploads over TLS with a pinned fingerprint:
// the connection PutImport dials itself verifies the pin as the Client's
// transports do.
func TestPutImportUnknownSizeTLS(t *testing.T) {
	ts := httptest.NewTLSServer(xapisim.New(transferModel()))
	t.Cleanup(ts.Close)
	pin := xapi.Fingerprint(ts.Certificate().Raw)
	newTLSClient := func(pins ...string) *xapi.Client {
		c, err := xapi.New(xapi.Options{URL: ts.URL, Username: "root", Password: "password", Fingerprints: pins})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	c := newTLSClient(pin)
	xva := exportXVA(t, c, "")
	before := objectCounts(t, c)
	v, _, err := c.PutImportCount(t.Context(), "/import/", nil, unsized{bytes.NewReader(xva)}, xapi.UnknownSize, "import over TLS")
	if err != nil {
		t.Fatal(err)
	}
	if refs, ok := v.([]any); !ok || len(refs) != 1 {
		t.Fatalf("result %#v, want one VM ref", v)
	}
	if after := objectCounts(t, c); after[0] != before[0]+1 {
		t.Errorf("VMs %d -> %d", before[0], after[0])
	}
}

// TestPutImportUnknownSizeRedirect follows XAPI's 302 to the host that sees
// the SR: nothing of the body is sent before the 200, so the whole body
// reaches the other host.
func TestPutImportUnknownSizeRedirect(t *testing.T) {
	srv := xapisim.NewServer(t, transferModel())
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var redirected atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/import") {
			redirected.Add(1)
			loc := *target
			loc.Path, loc.RawQuery = r.URL.Path, r.URL.RawQuery
			w.Header().Set("Location", loc.String())
			w.WriteHeader(http.StatusFound)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c, err := xapi.New(xapi.Options{URL: front.URL, Username: srv.User, Password: srv.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	xva := exportXVA(t, c, "")
	v, sent, err := c.PutImportCount(t.Context(), "/import/", nil, unsized{bytes.NewReader(xva)}, xapi.UnknownSize, "import")
	if err != nil {
		t.Fatal(err)
	}
	if refs, ok := v.([]any); !ok || len(refs) != 1 || sent != int64(len(xva)) || redirected.Load() != 1 {
		t.Fatalf("result %#v after %d of %d bytes, %d redirects", v, sent, len(xva), redirected.Load())
	}
}

// TestPutImportUnknownSizeCancel ends the context in the middle of an
// upload: the task is cancelled and destroyed, and nothing is left.
func TestPutImportUnknownSizeCancel(t *testing.T) {
	c, _ := newClient(t, transferModel())
	xva := exportXVA(t, c, "")
	before := objectCounts(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(xva[:len(xva)/2])
		cancel() // then the body stalls
	}()
	t.Cleanup(func() { pw.Close() })
	_, _, err := c.PutImportCount(ctx, "/import/", nil, pr, xapi.UnknownSize, "import")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if after := objectCounts(t, c); after != before {
		t.Errorf("VMs, VDIs, tasks %v -> %v", before, after)
	}
}
