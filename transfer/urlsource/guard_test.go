package urlsource

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  string
		ok   bool
	}{
		{"https presigned", "https://bucket.s3.eu-west-1.amazonaws.com/disk.vhd?X-Amz-Signature=abc&X-Amz-Expires=3600", true},
		{"http with port", "http://minio.internal:9000/b/k", true},
		{"IPv4 literal", "http://192.0.2.1/k", true},
		{"IPv6 literal", "http://[2001:db8::1]:8080/k", true},
		{"mapped IPv6 literal", "http://[::ffff:127.0.0.1]/k", true},
		{"s3 scheme", "s3://bucket/key", false},
		{"ftp", "ftp://example.com/k", false},
		{"file", "file:///etc/passwd", false},
		{"relative", "/just/a/path", false},
		{"no host", "http:///path", false},
		{"userinfo", "https://user:hunter2@example.com/k", false},
		{"userinfo without password", "https://user@example.com/k", false},
		{"port 0", "http://example.com:0/", false},
		{"port too big", "http://example.com:65536/", false},
		{"empty port", "http://example.com:/", false},
		{"decimal IPv4", "http://2130706433/", false},
		{"hex IPv4", "http://0x7f.0.0.1/", false},
		{"short IPv4", "http://127.1/", false},
		{"octal IPv4", "http://0177.0.0.1/", false},
		{"IPv6 zone", "http://[fe80::1%25eth0]/", false},
		{"opaque", "http:example.com", false},
		{"bad escape", "http://example.com/%zz?X-Amz-Signature=s3cr3t", false},
		{"space in host", "http://exa mple.com/", false},
		{"underscore host", "http://my_bucket.example.com/k", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURL(tc.url)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseURL(%q) = %v, %v; want ok=%v", tc.url, u, err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidURL) {
					t.Errorf("error %v does not match ErrInvalidURL", err)
				}
				if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks credentials: %v", err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"presigned", "https://b.s3.amazonaws.com/k/disk.vhd?X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc", "https://b.s3.amazonaws.com/k/disk.vhd"},
		{"userinfo", "https://u:p@example.com:8443/x#frag", "https://example.com:8443/x"},
		{"bare question mark", "http://example.com/x?", "http://example.com/x"},
		{"plain", "http://example.com/a%20b", "http://example.com/a%20b"},
		{"unparsable", "http://example.com/%zz?sig=1", "<unparsable URL>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	p, err := NewPolicy([]string{" minio.internal ", "*.corp.test", "10.1.0.0/16", "[fd00::5]", "", "192.168.7.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, addr string
		ok               bool
	}{
		{"public IPv4", "example.com", "93.184.216.34", true},
		{"public IPv6", "example.com", "2606:2800:220:1:248:1893:25c8:1946", true},
		{"loopback", "localhost", "127.0.0.1", false},
		{"loopback /8", "x", "127.255.0.9", false},
		{"IPv6 loopback", "x", "::1", false},
		{"mapped loopback", "x", "::ffff:127.0.0.1", false},
		{"IPv4-compatible loopback", "x", "::127.0.0.1", false},
		{"metadata", "x", "169.254.169.254", false},
		{"mapped metadata", "x", "::ffff:169.254.169.254", false},
		{"IPv6 link-local", "x", "fe80::1", false},
		{"IPv6 link-local with zone", "x", "fe80::1%eth0", false},
		{"private 10", "x", "10.0.0.1", false},
		{"private 172.16", "x", "172.31.255.255", false},
		{"just outside 172.16/12", "x", "172.32.0.1", true},
		{"private 192.168", "x", "192.168.1.1", false},
		{"ULA", "x", "fc00::1", false},
		{"CGNAT", "x", "100.64.0.1", false},
		{"CGNAT top", "x", "100.127.255.255", false},
		{"just outside CGNAT", "x", "100.128.0.1", true},
		{"this network", "x", "0.1.2.3", false},
		{"unspecified", "x", "0.0.0.0", false},
		{"IPv6 unspecified", "x", "::", false},
		{"multicast", "x", "224.0.0.1", false},
		{"IPv6 multicast", "x", "ff02::1", false},
		{"broadcast", "x", "255.255.255.255", false},
		{"reserved 240/4", "x", "240.0.0.1", false},
		{"benchmarking", "x", "198.18.0.1", false},
		{"documentation", "x", "192.0.2.1", false},
		{"IETF 192.0.0/24", "x", "192.0.0.170", false},
		{"IPv6 documentation", "x", "2001:db8::1", false},
		{"Teredo", "x", "2001::1", false},
		{"site-local", "x", "fec0::1", false},
		{"NAT64 of private", "x", "64:ff9b::10.0.0.1", false},
		{"NAT64 of public", "x", "64:ff9b::93.184.216.34", true},
		{"6to4 of loopback", "x", "2002:7f00:1::1", false},
		{"6to4 of public", "x", "2002:5db8:d822::1", true},
		{"allowed host resolving private", "minio.internal", "10.9.9.9", true},
		{"allowed host, case and dot", "MinIO.Internal.", "10.9.9.9", true},
		{"allowed wildcard", "s3.corp.test", "172.16.0.1", true},
		{"wildcard does not match its apex", "corp.test", "172.16.0.1", false},
		{"wildcard needs a dot", "evilcorp.test", "172.16.0.1", false},
		{"allowed CIDR", "x", "10.1.2.3", true},
		{"allowed CIDR, mapped form", "x", "::ffff:10.1.2.3", true},
		{"outside allowed CIDR", "x", "10.2.0.1", false},
		{"allowed bracketed IPv6", "x", "fd00::5", true},
		{"allowed single IPv4", "x", "192.168.7.7", true},
		{"allowed host still not unspecified", "minio.internal", "0.0.0.0", false},
		{"allowed host still not multicast", "minio.internal", "ff02::1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.host, netip.MustParseAddr(tc.addr))
			if tc.ok != (err == nil) {
				t.Fatalf("Check(%q, %s) = %v, want ok=%v", tc.host, tc.addr, err, tc.ok)
			}
			var fe *ForbiddenError
			if err != nil && (!errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &fe) || fe.Reason == "") {
				t.Errorf("error %v is not a ForbiddenError with a reason", err)
			}
		})
	}
}

func TestNewPolicyErrors(t *testing.T) {
	for _, e := range []string{"http://x", "a b", "10.0.0.0/33", "fe80::1%eth0", "*.", "*.127.1", "host:80", "1234"} {
		t.Run(e, func(t *testing.T) {
			if _, err := NewPolicy([]string{e}); !errors.Is(err, ErrInvalidAllow) {
				t.Errorf("NewPolicy(%q) error %v, want ErrInvalidAllow", e, err)
			}
		})
	}
}

// countingServer is a loopback server that counts its requests.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func TestRefused(t *testing.T) {
	s, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	res := resolver(map[string][]string{
		"evil.example":  {"10.0.0.1"},
		"local.example": {"127.0.0.1"},
		"meta.example":  {"169.254.169.254", "fe80::1"},
		"six.example":   {"::1"},
	})
	for _, tc := range []struct {
		name  string
		url   string
		allow []string
	}{
		{"loopback without allow", s.URL + "/k?X-Amz-Signature=s3cr3t", nil},
		{"mapped loopback", "http://[::ffff:127.0.0.1]" + port + "/k", nil},
		{"IPv6 loopback", "http://[::1]" + port + "/k", nil},
		{"metadata", "http://169.254.169.254/latest/meta-data/", nil},
		{"mapped metadata", "http://[::ffff:a9fe:a9fe]/latest/meta-data/", nil},
		{"unspecified", "http://0.0.0.0" + port + "/k", []string{"0.0.0.0/0"}},
		{"name resolving private", "http://evil.example/k", nil},
		{"name resolving loopback", "http://local.example" + port + "/k", nil},
		{"name resolving link-local", "http://meta.example/k", nil},
		{"name resolving IPv6 loopback", "http://six.example" + port + "/k", nil},
		{"other address allowed", s.URL, []string{"127.0.0.2"}},
		{"other host allowed", "http://local.example" + port + "/k", []string{"other.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := fast(tc.allow...)
			opts.Resolve = res
			r, err := Open(context.Background(), tc.url, opts)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("error %v, want ErrForbiddenAddress", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the query: %v", err)
			}
			if hits.Load() != 0 {
				t.Errorf("the server was reached %d times", hits.Load())
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	data := []byte("the object")
	target, targetHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"t"`)
		w.Write(data)
	})
	tport := target.URL[strings.LastIndex(target.URL, ":"):]
	var to string
	origin, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to, http.StatusFound)
	})
	oport := origin.URL[strings.LastIndex(origin.URL, ":"):]
	res := resolver(map[string][]string{
		"origin.test":  {"127.0.0.1"},
		"target.test":  {"127.0.0.1"},
		"evil.example": {"10.0.0.1"},
	})
	for _, tc := range []struct {
		name  string
		to    string
		allow []string
		want  error // nil: the redirect is followed
	}{
		{"to metadata", "http://169.254.169.254/latest/meta-data/iam?X-Amz-Signature=s3cr3t", []string{"origin.test"}, ErrForbiddenAddress},
		{"to mapped metadata", "http://[::ffff:169.254.169.254]/", []string{"origin.test"}, ErrForbiddenAddress},
		{"to loopback not allowed", target.URL + "/k", []string{"origin.test"}, ErrForbiddenAddress},
		{"to IPv6 loopback", "http://[::1]" + tport + "/k", []string{"origin.test"}, ErrForbiddenAddress},
		{"to name resolving private", "http://evil.example/k", []string{"origin.test"}, ErrForbiddenAddress},
		{"to ftp", "ftp://target.test/k", []string{"origin.test", "target.test"}, ErrRedirect},
		{"to userinfo", "http://u:p@target.test" + tport + "/k", []string{"origin.test", "target.test"}, ErrRedirect},
		{"to itself forever", "http://origin.test" + oport + "/loop", []string{"origin.test"}, ErrRedirect},
		{"to allowed host", "http://target.test" + tport + "/k", []string{"origin.test", "target.test"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to = tc.to
			before := targetHits.Load()
			opts := fast(tc.allow...)
			opts.Resolve = res
			r, err := Open(context.Background(), "http://origin.test"+oport+"/k", opts)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				got, err := io.ReadAll(r)
				if err != nil || string(got) != string(data) {
					t.Fatalf("read %q, %v", got, err)
				}
				return
			}
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "u:p") {
				t.Errorf("error leaks credentials: %v", err)
			}
			if targetHits.Load() != before {
				t.Errorf("the redirect target was reached")
			}
		})
	}
}

func TestRedirectDowngrade(t *testing.T) {
	plain, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) })
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/direct" {
			w.Write([]byte("over TLS"))
			return
		}
		http.Redirect(w, r, plain.URL+"/k", http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	opts := fast("127.0.0.1")
	opts.TLSConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	opts.TLSConfig.RootCAs = pool

	r, err := Open(context.Background(), tlsSrv.URL+"/direct", opts)
	if err != nil {
		t.Fatalf("https without redirect: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "over TLS" {
		t.Fatalf("read %q, %v", got, err)
	}

	_, err = Open(context.Background(), tlsSrv.URL+"/k", opts)
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("https → http: %v, want ErrRedirect", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the http target was reached")
	}
}

// TestRebinding checks that every connection applies the policy to the
// address it connects to: the name first resolves to an allowed address,
// and after the connection breaks, to a private one.
func TestRebinding(t *testing.T) {
	data := randomBytes(t, 50_000)
	s := newObjectServer(t, object{data: data, etag: `"e"`})
	s.cuts = []int64{1000}
	var lookups atomic.Int64
	opts := fast("127.0.0.1")
	opts.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "rebind.test" && lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
	}
	r, err := Open(context.Background(), "http://rebind.test"+s.port()+"/k", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("error %v, want ErrForbiddenAddress", err)
	}
	if len(got) != 1000 || string(got) != string(data[:1000]) {
		t.Errorf("delivered %d bytes, want the first 1000", len(got))
	}
}

// TestSystemResolver checks the default resolver path: localhost (from
// /etc/hosts) resolves to loopback, refused unless allowed by name.
func TestSystemResolver(t *testing.T) {
	s := newObjectServer(t, object{data: []byte("local"), etag: `"l"`})
	url := "http://localhost" + s.port() + "/k"
	if _, err := Open(context.Background(), url, fast()); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("localhost without allow: %v, want ErrForbiddenAddress", err)
	}
	r, err := Open(context.Background(), url, fast("localhost"))
	if err != nil {
		t.Fatalf("localhost allowed by name: %v", err)
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || string(got) != "local" {
		t.Fatalf("read %q, %v", got, err)
	}
}
