package urlsource

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

func TestReadWhole(t *testing.T) {
	data := randomBytes(t, 3<<20+17)
	obj := object{data: data, etag: `"v1"`, modtime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, tc := range []struct {
		name  string
		url   func(s *objectServer) string
		opts  Options
		empty bool
	}{
		{name: "allow address", url: func(s *objectServer) string { return s.URL + "/disk.vhd?X-Amz-Signature=s3cr3t" }, opts: fast("127.0.0.1")},
		{name: "allow CIDR", url: func(s *objectServer) string { return s.URL }, opts: fast("127.0.0.0/8")},
		{name: "allow mapped CIDR", url: func(s *objectServer) string { return s.URL }, opts: fast("::ffff:127.0.0.0/104")},
		{name: "mapped IPv6 literal", url: func(s *objectServer) string { return "http://[::ffff:127.0.0.1]" + s.port() + "/x" }, opts: fast("127.0.0.1")},
		{name: "allow host name", url: func(s *objectServer) string { return "http://bucket.minio.test" + s.port() + "/x" },
			opts: func() Options {
				o := fast("bucket.minio.test")
				o.Resolve = resolver(map[string][]string{"bucket.minio.test": {"127.0.0.1"}})
				return o
			}()},
		{name: "allow wildcard host", url: func(s *objectServer) string { return "http://Bucket.Minio.Test." + s.port() + "/x" },
			opts: func() Options {
				o := fast("*.minio.test")
				o.Resolve = resolver(map[string][]string{"Bucket.Minio.Test.": {"127.0.0.1"}})
				return o
			}()},
		{name: "private address dropped, allowed one dialled", url: func(s *objectServer) string { return "http://mixed.test" + s.port() + "/x" },
			opts: func() Options {
				o := fast("127.0.0.1")
				o.Resolve = resolver(map[string][]string{"mixed.test": {"10.0.0.1", "127.0.0.1"}})
				return o
			}()},
		{name: "empty object", url: func(s *objectServer) string { return s.URL }, opts: fast("127.0.0.1"), empty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := obj
			if tc.empty {
				o.data = nil
			}
			s := newObjectServer(t, o)
			var last int64 = -1
			opts := tc.opts
			opts.Progress = func(done, size int64) {
				if done <= last || size != int64(len(o.data)) {
					t.Errorf("progress %d/%d after %d", done, size, last)
				}
				last = done
			}
			r, err := Open(context.Background(), tc.url(s), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Size() != int64(len(o.data)) {
				t.Fatalf("Size %d, want %d", r.Size(), len(o.data))
			}
			if strings.Contains(r.URL(), "s3cr3t") {
				t.Errorf("URL() leaks the query: %s", r.URL())
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if sum(got) != sum(o.data) {
				t.Fatalf("read %d bytes, sha256 differs from the %d source bytes", len(got), len(o.data))
			}
			if r.BytesRead() != int64(len(o.data)) || (len(o.data) > 0 && last != int64(len(o.data))) {
				t.Errorf("BytesRead %d, last progress %d, want %d", r.BytesRead(), last, len(o.data))
			}
			if r.Resumes() != 0 {
				t.Errorf("Resumes %d", r.Resumes())
			}
			if r.ETag() != o.etag {
				t.Errorf("ETag %q, want %q", r.ETag(), o.etag)
			}
			if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after the end: %d, %v", n, err)
			}
		})
	}
}

// TestIotest runs testing/iotest's reader checks over a transfer whose
// connection breaks three times.
func TestIotest(t *testing.T) {
	data := randomBytes(t, 200_000)
	s := newObjectServer(t, object{data: data, etag: `"e"`})
	s.cuts = []int64{1, 65536, 0, 100_000}
	r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := iotest.TestReader(r, data); err != nil {
		t.Fatal(err)
	}
	if r.Resumes() != 4 {
		t.Errorf("Resumes %d, want 4", r.Resumes())
	}
}

func TestResume(t *testing.T) {
	data := randomBytes(t, 1<<20+3)
	mod := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		obj         object
		ignoreRange bool
		cuts        []int64
		read        func(io.Reader) io.Reader
		wantReqs    []string // prefix of the request log
	}{
		{
			name: "strong ETag", obj: object{data: data, etag: `"abc"`},
			cuts: []int64{1000, 500_000, 1}, read: iotest.HalfReader,
			wantReqs: []string{`HEAD`, `GET  "abc"`, `GET bytes=1000- "abc" "abc"`,
				`GET bytes=501000- "abc" "abc"`, `GET bytes=501001- "abc" "abc"`},
		},
		{
			name: "weak ETag, Last-Modified", obj: object{data: data, etag: `W/"abc"`, modtime: mod},
			cuts: []int64{1000, 500_000, 1}, read: iotest.OneByteReader,
			wantReqs: []string{`HEAD`, `GET`, `GET bytes=1000-  Fri, 01 May 2026 00:00:00 GMT`},
		},
		{
			// The cuts count from the start of each full body.
			name: "server ignores Range", obj: object{data: data, etag: `"abc"`}, ignoreRange: true,
			cuts: []int64{1000, 500_000, 600_000}, read: iotest.DataErrReader,
			wantReqs: []string{`HEAD`, `GET  "abc"`, `GET bytes=1000- "abc" "abc"`,
				`GET bytes=500000- "abc" "abc"`, `GET bytes=600000- "abc" "abc"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newObjectServer(t, tc.obj)
			s.cuts = tc.cuts
			s.ignoreRange = tc.ignoreRange
			r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(tc.read(r))
			if err != nil {
				t.Fatal(err)
			}
			if sum(got) != sum(data) {
				t.Fatalf("read %d bytes, sha256 differs from the source", len(got))
			}
			if r.Resumes() != 3 {
				t.Errorf("Resumes %d, want 3", r.Resumes())
			}
			reqs := s.requests()
			if len(reqs) != 5 {
				t.Errorf("requests %q, want 5", reqs)
			}
			for i, want := range tc.wantReqs {
				if i >= len(reqs) || reqs[i] != want {
					t.Errorf("request %d: %q, want %q (all: %q)", i, reqs[min(i, len(reqs)-1)], want, reqs)
				}
			}
		})
	}
}

func TestChangedObject(t *testing.T) {
	v1 := bytes.Repeat([]byte("version one "), 50_000)
	v2 := bytes.Repeat([]byte("version TWO "), 50_000)
	mod := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		before      object
		after       object
		ignoreConds bool
		want        error
	}{
		{name: "ETag changes, 412 on If-Match", before: object{data: v1, etag: `"1"`}, after: object{data: v2, etag: `"2"`}, want: ErrChanged},
		{name: "ETag changes, server ignores conditions", before: object{data: v1, etag: `"1"`}, after: object{data: v2, etag: `"2"`}, ignoreConds: true, want: ErrChanged},
		{name: "Last-Modified changes", before: object{data: v1, modtime: mod}, after: object{data: v2, modtime: mod.Add(time.Hour)}, want: ErrChanged},
		{name: "Last-Modified changes, server ignores conditions", before: object{data: v1, modtime: mod}, after: object{data: v2, modtime: mod.Add(time.Hour)}, ignoreConds: true, want: ErrChanged},
		{name: "no validator", before: object{data: v1}, after: object{data: v2}, want: ErrNotResumable},
		{name: "size changes, same ETag", before: object{data: v1, etag: `"1"`}, after: object{data: v1[:len(v1)-1], etag: `"1"`}, ignoreConds: true, want: ErrSizeMismatch},
		{name: "shrinks below the offset", before: object{data: v1, etag: `"1"`}, after: object{data: v1[:10], etag: `"1"`}, want: ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newObjectServer(t, tc.before)
			s.cuts = []int64{4096}
			s.ignoreConds = tc.ignoreConds
			s.afterGet = func(n int, s *objectServer) {
				if n == 1 {
					s.obj = tc.after
				}
			}
			r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !bytes.HasPrefix(v1, got) || len(got) != 4096 {
				t.Errorf("delivered %d bytes that are not the first 4096 of the first version", len(got))
			}
			if _, err2 := r.Read(make([]byte, 1)); !errors.Is(err2, tc.want) {
				t.Errorf("error not sticky: %v", err2)
			}
		})
	}
}

func TestHeadRefused(t *testing.T) {
	data := randomBytes(t, 100_000)
	for _, tc := range []struct {
		name        string
		headStatus  int
		ignoreRange bool
		wantReqs    []string
	}{
		{name: "403 like a presigned GET URL", headStatus: http.StatusForbidden,
			wantReqs: []string{`HEAD`, `GET bytes=0-0`, `GET  "s3etag"`}},
		{name: "405, server ignores Range", headStatus: http.StatusMethodNotAllowed, ignoreRange: true,
			wantReqs: []string{`HEAD`, `GET bytes=0-0`}}, // the probe's 200 body is the stream
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newObjectServer(t, object{data: data, etag: `"s3etag"`})
			s.headStatus = tc.headStatus
			s.ignoreRange = tc.ignoreRange
			r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Size() != int64(len(data)) {
				t.Fatalf("Size %d, want %d", r.Size(), len(data))
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if sum(got) != sum(data) {
				t.Fatal("bytes differ")
			}
			if reqs := s.requests(); strings.Join(reqs, "|") != strings.Join(tc.wantReqs, "|") {
				t.Errorf("requests %q, want %q", reqs, tc.wantReqs)
			}
		})
	}
}

// handlerServer starts a loopback server for h.
func handlerServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestSizeErrors(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 100)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    error
		openErr bool
		read    int // bytes delivered before the error
	}{
		{
			name: "GET length differs from HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				n := 100
				if r.Method == http.MethodGet {
					n = 90
				}
				w.Header().Set("Content-Length", "100")
				if r.Method == http.MethodGet {
					w.Header().Set("Content-Length", "90")
				}
				w.Write(body[:n])
			},
			want: ErrSizeMismatch,
		},
		{
			name: "chunked body ends short",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.Header().Set("Content-Length", "100")
					return
				}
				w.(http.Flusher).Flush() // no Content-Length: chunked
				w.Write(body[:90])
			},
			want: ErrSizeMismatch, read: 90,
		},
		{
			name: "chunked body runs long",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.Header().Set("Content-Length", "90")
					return
				}
				w.(http.Flusher).Flush()
				w.Write(body)
			},
			want: ErrSizeMismatch, read: 90,
		},
		{
			name: "no length anywhere",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				w.(http.Flusher).Flush()
				w.Write(body)
			},
			want: ErrUnknownSize, openErr: true,
		},
		{
			name: "unknown total in Content-Range",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.WriteHeader(http.StatusForbidden)
					return
				}
				w.Header().Set("Content-Range", "bytes 0-0/*")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body[:1])
			},
			want: ErrUnknownSize, openErr: true,
		},
		{
			name: "wrong range answered",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"x"`)
				if r.Method == http.MethodHead {
					w.Header().Set("Content-Length", "100")
					return
				}
				w.Header().Set("Content-Range", "bytes 5-99/100")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body[5:])
			},
			want: ErrProtocol,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := handlerServer(t, tc.handler)
			r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
			if tc.openErr {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Open: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if len(got) != tc.read {
				t.Errorf("delivered %d bytes, want %d", len(got), tc.read)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	data := randomBytes(t, 5000)
	t.Run("expired presigned URL", func(t *testing.T) {
		s := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
		})
		_, err := Open(context.Background(), s.URL+"/k?X-Amz-Signature=s3cr3t", fast("127.0.0.1"))
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden {
			t.Fatalf("error %v, want a 403 StatusError", err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error leaks the query: %v", err)
		}
	})
	t.Run("transient 503 then success", func(t *testing.T) {
		obj := newObjectServer(t, object{data: data, etag: `"e"`})
		var fails atomic.Int64
		fails.Store(2)
		s := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && fails.Add(-1) >= 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			obj.serve(w, r)
		})
		r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	})
	t.Run("retries exhausted", func(t *testing.T) {
		s := newObjectServer(t, object{data: data, etag: `"e"`})
		s.cuts = []int64{0, 0, 0, 0}
		opts := fast("127.0.0.1")
		opts.Retries = 3
		r, err := Open(context.Background(), s.URL, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = io.ReadAll(r)
		if err == nil || !strings.Contains(err.Error(), "giving up after 4 attempts") {
			t.Fatalf("error %v, want giving up", err)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	data := randomBytes(t, 10_000)
	obj := object{data: data, etag: `"e"`}
	var stalled atomic.Bool
	s := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && !stalled.Swap(true) {
			w.Header().Set("ETag", obj.etag)
			w.Header().Set("Content-Length", "10000")
			w.Write(data[:10])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stall until the client gives up on this connection
			return
		}
		w.Header().Set("ETag", obj.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
	opts := fast("127.0.0.1")
	opts.IdleTimeout = 200 * time.Millisecond
	r, err := Open(context.Background(), s.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if r.Resumes() != 1 {
		t.Errorf("Resumes %d, want 1", r.Resumes())
	}
}

func TestCancel(t *testing.T) {
	data := randomBytes(t, 1<<20)
	s := newObjectServer(t, object{data: data, etag: `"e"`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := Open(ctx, s.URL, fast("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.ReadAll(r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if r.Resumes() != 0 {
		t.Errorf("a cancelled transfer resumed %d times", r.Resumes())
	}
}

func TestClose(t *testing.T) {
	s := newObjectServer(t, object{data: []byte("hello"), etag: `"e"`})
	r, err := Open(context.Background(), s.URL, fast("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}
