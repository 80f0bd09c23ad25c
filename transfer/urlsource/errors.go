package urlsource

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors, matched with errors.Is. The API maps ErrInvalidURL,
// ErrForbiddenAddress and ErrRedirect to 400/403-class answers; their
// messages never carry a URL's query string or userinfo (see Redact), but
// they may name the refused address, so they belong in logs, not in the
// answer to the client.
var (
	// ErrInvalidURL reports a URL that is not an absolute http or https URL
	// with a host, carries userinfo, has a bad port or an ambiguous host.
	ErrInvalidURL = errors.New("urlsource: invalid URL")
	// ErrInvalidAllow reports an Options.Allow entry that is neither a
	// hostname, an IP address nor a CIDR prefix.
	ErrInvalidAllow = errors.New("urlsource: invalid allow entry")
	// ErrForbiddenAddress matches every refusal of the address policy: a
	// URL or redirect whose host is, or resolves to, an address that is not
	// public and not allowed. The concrete error is a *ForbiddenError.
	ErrForbiddenAddress = errors.New("urlsource: address not allowed")
	// ErrRedirect reports a refused redirect: too many, to another scheme
	// than http(s), or from https down to http.
	ErrRedirect = errors.New("urlsource: redirect refused")
	// ErrUnknownSize reports a server that tells the size of the object
	// neither in HEAD nor in a GET.
	ErrUnknownSize = errors.New("urlsource: size of the object unknown")
	// ErrSizeMismatch reports a byte count that differs from the size
	// learnt by Open: a body that ends early or runs long, a length or
	// Content-Range total that disagrees, or a 416 on a resume.
	ErrSizeMismatch = errors.New("urlsource: byte count differs from the object's size")
	// ErrChanged reports an object that changed between two requests of
	// one transfer (412 on If-Match, or a different ETag or Last-Modified).
	ErrChanged = errors.New("urlsource: object changed during the transfer")
	// ErrNotResumable reports a broken connection after data was delivered
	// from an object with neither ETag nor Last-Modified: resuming could
	// splice two versions of it, so the transfer fails instead.
	ErrNotResumable = errors.New("urlsource: transfer broke and the object has no validator to resume it")
	// ErrProtocol reports an answer that breaks HTTP range semantics (a
	// malformed Content-Range, or a range other than the one asked for).
	ErrProtocol = errors.New("urlsource: server broke HTTP range semantics")
	// ErrClosed reports a Read after Close.
	ErrClosed = errors.New("urlsource: reader closed")
)

// ForbiddenError is the refusal of one address by the policy. It matches
// ErrForbiddenAddress.
type ForbiddenError struct {
	// Host is the host name or literal of the URL being fetched.
	Host string
	// Addr is the refused address; it is invalid when no address was
	// involved (a host that resolved to nothing allowed).
	Addr netip.Addr
	// Reason says what kind of address it is: "loopback", "private", ...
	Reason string
}

// Error describes the refusal.
func (e *ForbiddenError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("urlsource: host %s: %s", e.Host, e.Reason)
	}
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("urlsource: address %s is %s and not allowed", e.Addr, e.Reason)
	}
	return fmt.Sprintf("urlsource: host %s resolves to %s, which is %s and not allowed", e.Host, e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbiddenAddress }

// StatusError is an HTTP answer with a status that ends the transfer (a
// 4xx other than 412 and 416, or a 5xx or 429 after the retries).
type StatusError struct {
	// Method is GET or HEAD.
	Method string
	// URL is the redacted URL (see Redact).
	URL string
	// StatusCode is the HTTP status code, e.g. 403 for an expired
	// presigned URL.
	StatusCode int
}

// Error describes the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("urlsource: %s %s: HTTP status %d", e.Method, e.URL, e.StatusCode)
}

// transient reports whether a retry may get another answer.
func (e *StatusError) transient() bool {
	return e.StatusCode == 429 || e.StatusCode == 408 || e.StatusCode >= 500
}
