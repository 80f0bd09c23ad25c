package urlsource

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseURL checks that ParseURL never panics, that whatever it
// accepts is an absolute http(s) URL with a host, no userinfo and a sane
// port, and that Redact keeps neither the query nor the userinfo.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc",
		"http://[::ffff:127.0.0.1]:80/x", "http://2130706433/", "http://0x7f.1/",
		"http://u:p@h/", "s3://b/k", "http://h:0/", "http://[fe80::1%25en0]/", "http:h",
		"HTTP://EXAMPLE.COM./a?b#c", "http://a..b/", "http://[::1]:/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		if ru, err := url.Parse(red); err == nil && (ru.RawQuery != "" || ru.User != nil) {
			t.Fatalf("Redact(%q) = %q keeps the query or userinfo", raw, red)
		}
		u, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error %v does not match ErrInvalidURL", err)
			}
			if q := queryOf(raw); q != "" && strings.Contains(err.Error(), "?"+q) {
				t.Fatalf("error %q quotes the query %q", err, q)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.Hostname() == "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q: host %q, user %v, opaque %q", raw, u.Hostname(), u.User, u.Opaque)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted port %q", p)
			}
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Zone() != "" {
			t.Fatalf("accepted a zone: %q", raw)
		}
		// What was accepted is accepted again after a round trip.
		if _, err := ParseURL(u.String()); err != nil {
			t.Fatalf("ParseURL(%q) accepted, its String %q refused: %v", raw, u.String(), err)
		}
	})
}

// queryOf returns what follows the first '?' of raw.
func queryOf(raw string) string {
	_, q, _ := strings.Cut(raw, "?")
	q, _, _ = strings.Cut(q, "#")
	return q
}

// FuzzAddressPolicy checks the address policy: it never panics, an
// IPv4-mapped address gets the same answer as its IPv4 address, an empty
// policy refuses every address the standard library calls loopback,
// private, link-local, unspecified or multicast, and every address that
// Classify calls public is allowed.
func FuzzAddressPolicy(f *testing.F) {
	f.Add("", "", []byte{127, 0, 0, 1})
	f.Add("10.0.0.0/8", "x", []byte{10, 1, 2, 3})
	f.Add("*.minio.test", "a.minio.test", []byte{192, 168, 0, 1})
	f.Add("::ffff:0:0/96", "", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254})
	f.Add("", "", []byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1})
	f.Add("fe80::/10", "", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, allow, host string, b []byte) {
		var a netip.Addr
		switch len(b) {
		case 4:
			a = netip.AddrFrom4([4]byte(b))
		case 16:
			a = netip.AddrFrom16([16]byte(b))
		default:
			return
		}
		p, err := NewPolicy(strings.Split(allow, ","))
		if err != nil {
			if !errors.Is(err, ErrInvalidAllow) {
				t.Fatalf("NewPolicy error %v does not match ErrInvalidAllow", err)
			}
			p, _ = NewPolicy(nil)
		}
		err = p.Check(host, a)
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("Check error %v does not match ErrForbiddenAddress", err)
		}
		u := a.Unmap()
		if a.Is4In6() {
			if (err == nil) != (p.Check(host, u) == nil) {
				t.Fatalf("%s and %s judged differently", a, u)
			}
		}
		if (u.IsUnspecified() || u.IsMulticast()) && err == nil {
			t.Fatalf("allowed %s", a)
		}
		empty, _ := NewPolicy(nil)
		eerr := empty.Check(host, a)
		if (u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast()) && eerr == nil {
			t.Fatalf("empty policy allowed %s", a)
		}
		if Classify(a) == "" && eerr != nil {
			t.Fatalf("public %s refused: %v", a, eerr)
		}
		if eerr == nil && err != nil {
			t.Fatalf("an allowlist refused %s that the empty policy allows", a)
		}
	})
}

// FuzzContentRange checks that parseContentRange never panics and that
// what it accepts is consistent.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes */0", "bytes 5-9/*", "bytes 9-5/10", "bytes 0-10/10", "bytes -1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, ok := parseContentRange(s)
		if !ok {
			return
		}
		if first == -1 && last == -1 {
			if total < 0 {
				t.Fatalf("%q: unsatisfied range without total", s)
			}
			return
		}
		if first < 0 || last < first || (total >= 0 && last >= total) {
			t.Fatalf("%q: accepted %d-%d/%d", s, first, last, total)
		}
	})
}
