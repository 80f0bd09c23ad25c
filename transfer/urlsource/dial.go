package urlsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// guard connects only to addresses the policy allows: it resolves the
// host itself, drops the addresses the policy refuses, dials the others by
// address (so nothing is resolved twice and a DNS answer cannot change
// between the check and the connection) and checks the socket's address
// once more in the dialer's Control hook.
type guard struct {
	policy  *Policy
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	timeout time.Duration
}

// dialContext is the http.Transport's DialContext.
func (g *guard) dialContext(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("urlsource: dial %s: %w", hostport, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = g.resolve(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("urlsource: resolve %s: %w", host, err)
		}
	}
	var refused error
	var allowed []netip.Addr
	for _, a := range addrs {
		if err := g.policy.Check(host, a); err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if refused == nil {
			refused = &ForbiddenError{Host: host, Reason: "resolves to no address"}
		}
		return nil, refused
	}
	d := net.Dialer{
		Timeout:   g.timeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &ForbiddenError{Host: host, Reason: "unparsable socket address"}
			}
			return g.policy.Check(host, ap.Addr())
		},
	}
	var errs []error
	for _, a := range allowed {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// checkRedirect is the http.Client's CheckRedirect: it limits the number
// of redirects, validates the target like ParseURL, refuses https → http,
// and refuses at once a target whose host is an address literal the policy
// refuses (host names are checked when connecting).
func (g *guard) checkRedirect(max int) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		target := redactURL(req.URL)
		if len(via) > max {
			return fmt.Errorf("%w: more than %d redirects, last to %s", ErrRedirect, max, target)
		}
		if err := checkURL(req.URL); err != nil {
			return fmt.Errorf("%w: to %s: %v", ErrRedirect, target, err)
		}
		if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: from https down to %s", ErrRedirect, target)
		}
		if err := g.checkLiteral(req.URL); err != nil {
			return fmt.Errorf("%w: to %s: %w", ErrRedirect, target, err)
		}
		return nil
	}
}

// checkLiteral applies the policy to a URL whose host is an IP address
// literal, before any connection.
func (g *guard) checkLiteral(u *url.URL) error {
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil
	}
	return g.policy.Check(u.Hostname(), a)
}

// defaultResolve resolves with the system resolver.
func defaultResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
