package urlsource

import (
	"fmt"
	"net/netip"
	"strings"
)

// Policy decides which addresses an import may connect to. Public unicast
// addresses are always allowed; any other address only when its host name
// or a prefix that contains it is on the allowlist. Unspecified and
// multicast addresses are never allowed. A Policy is immutable and safe for
// concurrent use.
type Policy struct {
	hosts    map[string]bool // exact host names, lower case, no trailing dot
	suffixes []string        // ".example.com" for an entry "*.example.com"
	prefixes []netip.Prefix  // masked, IPv4 prefixes unmapped
}

// NewPolicy builds a Policy from allowlist entries, each a host name
// ("minio.internal"), a wildcard for its subdomains ("*.s3.internal"), an
// IP address ("10.0.0.5", "::1", "[::1]") or a CIDR prefix ("10.0.0.0/8",
// "fd00::/8"). Blank entries are skipped and spaces trimmed, so
// strings.Split(os.Getenv("XOREST_IMPORT_ALLOW"), ",") can be passed as is.
// A host name entry allows whatever addresses that name resolves to.
func NewPolicy(allow []string) (*Policy, error) {
	p := &Policy{hosts: map[string]bool{}}
	for _, e := range allow {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if pf, err := netip.ParsePrefix(e); err == nil {
			if pf.Addr().Zone() != "" {
				return nil, fmt.Errorf("%w: %q: zone in prefix", ErrInvalidAllow, e)
			}
			p.prefixes = append(p.prefixes, unmapPrefix(pf))
			continue
		}
		lit := strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")
		if a, err := netip.ParseAddr(lit); err == nil {
			if a.Zone() != "" {
				return nil, fmt.Errorf("%w: %q: zone in address", ErrInvalidAllow, e)
			}
			a = a.Unmap()
			p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(e, "."))
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			if err := checkHostname(rest); err != nil {
				return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAllow, e, err)
			}
			p.suffixes = append(p.suffixes, "."+rest)
			continue
		}
		if err := checkHostname(name); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAllow, e, err)
		}
		p.hosts[name] = true
	}
	return p, nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96), since
// addresses are unmapped before they are checked, and masks the prefix.
func unmapPrefix(pf netip.Prefix) netip.Prefix {
	if a := pf.Addr(); a.Is4In6() && pf.Bits() >= 96 {
		pf = netip.PrefixFrom(a.Unmap(), pf.Bits()-96)
	}
	return pf.Masked()
}

// AllowsHost reports whether host (a name, case and trailing dot ignored)
// is allowed by name, so that every address it resolves to is allowed.
func (p *Policy) AllowsHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if p.hosts[h] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// Check returns nil when the policy lets a URL whose host is host connect
// to addr, and a *ForbiddenError otherwise. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry.
func (p *Policy) Check(host string, addr netip.Addr) error {
	if !addr.IsValid() {
		return &ForbiddenError{Host: host, Addr: addr, Reason: "invalid"}
	}
	a := addr.WithZone("").Unmap()
	if reason := never(a); reason != "" {
		return &ForbiddenError{Host: host, Addr: addr, Reason: reason}
	}
	if p.AllowsHost(host) {
		return nil
	}
	for _, pf := range p.prefixes {
		if pf.Contains(a) {
			return nil
		}
	}
	if reason := Classify(a); reason != "" {
		return &ForbiddenError{Host: host, Addr: addr, Reason: reason}
	}
	return nil
}

// never names the addresses that no allowlist entry opens: connecting to
// them means this host or a multicast group.
func never(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	case a.Is4() && a.As4() == [4]byte{255, 255, 255, 255}:
		return "broadcast"
	}
	return ""
}

// Classify returns "" for a public unicast address and otherwise what the
// address is: "loopback", "private", "link-local", "shared (CGNAT)",
// "reserved", ... IPv4-mapped addresses are classified as their IPv4
// address, and the IPv4 address inside NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses is classified too.
func Classify(addr netip.Addr) string {
	a := addr.WithZone("").Unmap()
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	}
	if a.Is4() {
		return classify4(a.As4())
	}
	return classify6(a)
}

// classify4 covers the IPv4 special-purpose ranges (RFC 6890 and the IANA
// registry) that Classify's stdlib checks leave out.
func classify4(b [4]byte) string {
	switch {
	case b[0] == 0:
		return "this-network"
	case b[0] == 100 && b[1]&0xc0 == 64: // 100.64.0.0/10
		return "shared (CGNAT)"
	case b[0] == 192 && b[1] == 0 && b[2] == 0: // 192.0.0.0/24
		return "reserved (IETF protocol assignments)"
	case b[0] == 192 && b[1] == 0 && b[2] == 2, // 192.0.2.0/24
		b[0] == 198 && b[1] == 51 && b[2] == 100, // 198.51.100.0/24
		b[0] == 203 && b[1] == 0 && b[2] == 113:  // 203.0.113.0/24
		return "documentation"
	case b[0] == 192 && b[1] == 88 && b[2] == 99: // 192.88.99.0/24
		return "reserved (6to4 relay)"
	case b[0] == 198 && b[1]&0xfe == 18: // 198.18.0.0/15
		return "benchmarking"
	case b[0] >= 240: // 240.0.0.0/4 and the broadcast address
		return "reserved"
	}
	return ""
}

// classify6 allows only global unicast (2000::/3) outside the special
// blocks, and looks inside NAT64 and 6to4 addresses.
func classify6(a netip.Addr) string {
	b := a.As16()
	switch {
	case b[0]&0xe0 != 0x20: // not 2000::/3: ::/8 (incl. IPv4-compatible), 64:ff9b::/96, 100::/64, fc00::/7, fec0::/10, ...
		if nat64(b) {
			if r := Classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return "NAT64 of " + r
			}
			return ""
		}
		switch {
		case b[0]&0xfe == 0xfc:
			return "private"
		case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
			return "site-local"
		}
		return "reserved"
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8: // 2001:db8::/32
		return "documentation"
	case b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02: // 2001::/23
		return "reserved (IETF protocol assignments)"
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16, 6to4
		if r := Classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
			return "6to4 of " + r
		}
	case b[0] == 0x3f && b[1] == 0xff && b[2]&0xf0 == 0: // 3fff::/20
		return "documentation"
	}
	return ""
}

// nat64 reports whether b is in the well-known NAT64 prefix 64:ff9b::/96.
func nat64(b [16]byte) bool {
	return b == [16]byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, b[12], b[13], b[14], b[15]}
}
