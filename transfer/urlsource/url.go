package urlsource

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ParseURL parses and validates a URL to import from: absolute, scheme
// http or https, a host, no userinfo, a port (if any) in 1..65535, no IPv6
// zone, and no host that some resolvers would read as a numeric IPv4
// address in another spelling ("2130706433", "0x7f.1", "127.1"). It does
// not resolve the host; the address policy applies when connecting. Errors
// match ErrInvalidURL and never quote the query string.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, credentials included
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidURL, Redact(raw), err)
	}
	if err := checkURL(u); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidURL, redactURL(u), err)
	}
	return u, nil
}

// checkURL is the validation of ParseURL, also applied to every redirect.
func checkURL(u *url.URL) error {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Opaque != "":
		return errors.New("opaque URL")
	case u.User != nil:
		return errors.New("userinfo not allowed")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("host required")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return errors.New("bad port")
		}
	}
	if strings.HasSuffix(u.Host, ":") {
		return errors.New("empty port")
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return errors.New("bad IPv6 literal")
		}
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return errors.New("IPv6 literal without brackets")
		}
		return nil
	}
	return checkHostname(host)
}

// checkHostname accepts DNS names made of letters, digits, '-', '_' and
// dots, and refuses those whose last label looks numeric: inet_aton reads
// "2130706433", "0x7f.1" or "127.1" as 127.0.0.1.
func checkHostname(host string) error {
	h := strings.TrimSuffix(host, ".")
	if h == "" || len(h) > 253 {
		return errors.New("bad host name")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("bad host name")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("bad character in host name")
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return errors.New("numeric host that is not a dotted-quad IPv4 address")
	}
	return nil
}

// Redact returns raw without its userinfo, query string and fragment, for
// logs and error messages: a presigned URL's query carries its credentials.
// A URL that does not parse is replaced by a placeholder.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return redactURL(u)
}

// redactURL is Redact for a parsed URL; u is not modified.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	if c.Opaque != "" {
		c.Opaque = "…"
	}
	return c.String()
}
