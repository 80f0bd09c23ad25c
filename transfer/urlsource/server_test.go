package urlsource

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// errCut is what a cutWriter returns once it has cut the connection.
var errCut = errors.New("test server cut the connection")

// cutWriter passes the first left body bytes on, then hijacks the
// connection and closes it: the client sees a body that breaks mid-way.
type cutWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	n, _ := c.ResponseWriter.Write(p[:c.left])
	c.cut = true
	rc := http.NewResponseController(c.ResponseWriter)
	rc.Flush() // Hijack drops what is still buffered
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
	return n, errCut
}

// object is one version of the served object.
type object struct {
	data    []byte
	etag    string    // "" for none
	modtime time.Time // zero for no Last-Modified
}

// objectServer serves an object with http.ServeContent (the standard
// library's Range, If-Range, If-Match and If-Unmodified-Since handling),
// and can refuse HEAD, ignore Range, cut connections and swap the object.
type objectServer struct {
	*httptest.Server

	mu          sync.Mutex
	obj         object
	headStatus  int     // answer HEAD with this status when non-zero
	ignoreRange bool    // strip Range and the conditional headers
	ignoreConds bool    // strip only the conditional headers
	cuts        []int64 // cut the n-th GET after cuts[n] body bytes (-1: no cut)
	gets        int
	log         []string // "METHOD Range If-Match If-Range" per request
	afterGet    func(n int, s *objectServer)
}

// newObjectServer starts a loopback server for obj.
func newObjectServer(t *testing.T, obj object) *objectServer {
	t.Helper()
	s := &objectServer{obj: obj}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *objectServer) serve(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	s.log = append(s.log, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", req.Method,
		req.Header.Get("Range"), req.Header.Get("If-Match"), req.Header.Get("If-Range"))))
	obj := s.obj
	if req.Method == http.MethodHead && s.headStatus != 0 {
		st := s.headStatus
		s.mu.Unlock()
		w.WriteHeader(st)
		return
	}
	var cut int64 = -1
	if req.Method == http.MethodGet {
		if s.gets < len(s.cuts) {
			cut = s.cuts[s.gets]
		}
		s.gets++
		if s.afterGet != nil {
			s.afterGet(s.gets, s)
		}
	}
	if s.ignoreRange {
		req.Header.Del("Range")
	}
	if s.ignoreRange || s.ignoreConds {
		for _, h := range []string{"If-Range", "If-Match", "If-Unmodified-Since"} {
			req.Header.Del(h)
		}
	}
	s.mu.Unlock()
	if obj.etag != "" {
		w.Header().Set("ETag", obj.etag)
	}
	if cut >= 0 {
		w = &cutWriter{ResponseWriter: w, left: cut}
	}
	http.ServeContent(w, req, "", obj.modtime, bytes.NewReader(obj.data))
}

// requests returns the request log.
func (s *objectServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// hostPort returns the server's port as ":port".
func (s *objectServer) port() string {
	return s.URL[strings.LastIndex(s.URL, ":"):]
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// resolver maps host names to addresses, for Options.Resolve.
func resolver(m map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		addrs, ok := m[host]
		if !ok {
			return nil, fmt.Errorf("no such host %s", host)
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// fast returns options for tests: loopback allowed, retries without delay.
func fast(allow ...string) Options {
	return Options{Allow: allow, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
