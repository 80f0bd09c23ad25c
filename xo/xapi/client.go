package xapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Client. New validates them before any network call.
type Options struct {
	// URL of the pool master (or any pool member: HOST_IS_SLAVE is
	// followed), "https://host" or "http://host:port". The path, if any, is
	// where XML-RPC is posted ("/" by default; XAPI answers any POST path);
	// JSON-RPC always goes to /jsonrpc.
	URL string
	// Username and Password are the XAPI credentials (e.g. root).
	Username string
	Password string
	// Originator is sent at login so that XAPI groups this client's
	// sessions (xapi.md §2). Default "xorest".
	Originator string
	// Version is the API version sent at login. Default "1.1".
	Version string

	// TLS, for https URLs. With none of the options below the system roots
	// verify the host certificate.
	//
	// CAFile and CAPEM add trusted roots (XAPI's self-signed certificate,
	// or the pool's CA), replacing the system roots.
	CAFile string
	CAPEM  []byte
	// Fingerprints pins the SHA-256 digest of the host's leaf certificate,
	// as 64 hex digits with or without colons (openssl x509 -fingerprint
	// -sha256). Any listed digest is accepted, so list every pool member
	// the client may be redirected to. Without CAFile/CAPEM the chain is
	// not otherwise verified; with them, both checks must pass.
	Fingerprints []string
	// TLSServerName overrides the name verified against the certificate
	// of the pool URL's host only. The other hosts of the pool, reached by
	// a redirect or by a host-targeted transfer (GetExportFrom), are
	// verified against their own address.
	TLSServerName string
	// Insecure disables certificate verification. It cannot be combined
	// with CAFile, CAPEM or Fingerprints.
	Insecure bool

	// HostURLs maps the UUID of a pool member to the base URL that reaches
	// it ("https://gw.example:8443"), for the hosts that cannot be reached
	// as GetExportFrom reaches them by default: the pool URL's scheme and
	// port on the host's address (host.address), which is how XAPI itself
	// names a host (its redirects go to https://<host.address><path>). Use
	// it when members sit behind port forwarding, and in tests, where the
	// simulator's member listeners (xapisim StartHost) cannot be on the
	// pool URL's port. Only the scheme and host:port of a URL are used; an
	// http URL is refused when the pool URL is https, as the session
	// would be sent in clear. The pool master is always reached through
	// the pool URL.
	HostURLs map[string]string

	// MaxConns bounds the concurrent RPC connections to the host;
	// calls beyond it wait for a free connection. Default 32. Long polls
	// (event.from of watchers and task waits) use their own connections
	// and are not counted.
	MaxConns int
	// CallTimeout bounds each call whose context has no earlier deadline.
	// Zero means no bound besides the context.
	CallTimeout time.Duration
	// EventTimeout is the timeout given to blocking event.from calls
	// (task waits and watchers). Default 30s. The HTTP exchange may take
	// EventTimeout plus 15s before it is abandoned.
	EventTimeout time.Duration

	// Transport selects the protocol: TransportAuto (the default, ""),
	// TransportJSONRPC or TransportXMLRPC. Auto does what XO does
	// (xapi.md §1.7): it posts JSON-RPC to /jsonrpc and switches to
	// XML-RPC for good when that answers 2xx with a content type other
	// than application/json (parameters such as charset are ignored); any
	// other failure of /jsonrpc, such as a 404, is an error, not a reason
	// to fall back. JSON-RPC answers are about 2.6 times smaller.
	Transport string
}

// ErrInvalidHostURL: an Options.HostURLs entry is not an http(s) URL
// with a host, or is http for an https pool.
var ErrInvalidHostURL = errors.New("xapi: invalid host URL")

// Transports of Options.Transport.
const (
	TransportAuto    = "auto"
	TransportJSONRPC = "json-rpc"
	TransportXMLRPC  = "xml-rpc"
)

func (o *Options) valid() error {
	if o.URL == "" {
		return ErrRequiredURL
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ErrInvalidURL
	}
	if o.Username == "" {
		return ErrRequiredUsername
	}
	for _, f := range o.Fingerprints {
		if _, err := parseFingerprint(f); err != nil {
			return err
		}
	}
	if o.Insecure && (o.CAFile != "" || len(o.CAPEM) > 0 || len(o.Fingerprints) > 0) {
		return ErrConflictingTLS
	}
	for uuid, raw := range o.HostURLs {
		h, err := url.Parse(raw)
		if err != nil || (h.Scheme != "http" && h.Scheme != "https") || h.Host == "" || h.User != nil {
			return fmt.Errorf("%w: host %s: %q", ErrInvalidHostURL, uuid, raw)
		}
		if u.Scheme == "https" && h.Scheme != "https" {
			return fmt.Errorf("%w: host %s: %q is http while the pool URL is https (the session would be sent in clear)", ErrInvalidHostURL, uuid, raw)
		}
	}
	if o.CallTimeout < 0 || o.EventTimeout < 0 || o.MaxConns < 0 {
		return ErrInvalidTimeout
	}
	switch o.Transport {
	case "", TransportAuto, TransportJSONRPC, TransportXMLRPC:
	default:
		return ErrInvalidTransport
	}
	return nil
}

// Client is an XAPI client for one pool. It is safe for concurrent use:
// calls run in parallel over a pool of HTTP connections (kolo's own Client
// would serialise them). It logs in lazily on first use, logs in again
// once when a call fails with SESSION_INVALID, and follows HOST_IS_SLAVE to
// the pool master.
type Client struct {
	opts Options
	rpc  *http.Client // ordinary calls, bounded pool
	long *http.Client // event.from long polls, separate connections

	mu      sync.Mutex
	base    *url.URL // current endpoint (the master once known)
	session Ref
	closed  bool

	loginMu sync.Mutex // one login at a time

	proto  atomic.Int32 // protoAuto until auto settles, else the protocol in use
	schema schema       // JSON-RPC → XML-RPC value conversions (normalize.go)
}

// Protocols of Client.proto.
const (
	protoAuto int32 = iota
	protoJSON
	protoXML
)

// New validates opts and returns a Client. It does not touch the network.
func New(opts Options) (*Client, error) {
	if err := opts.valid(); err != nil {
		return nil, err
	}
	if opts.Originator == "" {
		opts.Originator = "xorest"
	}
	if opts.Version == "" {
		opts.Version = "1.1"
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 32
	}
	if opts.EventTimeout == 0 {
		opts.EventTimeout = 30 * time.Second
	}
	if opts.Transport == "" {
		opts.Transport = TransportAuto
	}
	tlsConf, err := tlsConfig(&opts)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(opts.URL) // checked by valid
	if base.Path == "" {
		base.Path = "/"
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	newTransport := func(maxConns int) *http.Transport {
		return &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: 15 * time.Second,
			MaxIdleConns:        maxConns,
			MaxIdleConnsPerHost: maxConns,
			MaxConnsPerHost:     maxConns,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	c := &Client{
		opts:   opts,
		rpc:    &http.Client{Transport: newTransport(opts.MaxConns)},
		long:   &http.Client{Transport: newTransport(0)},
		base:   base,
		schema: newSchema(),
	}
	switch opts.Transport {
	case TransportJSONRPC:
		c.proto.Store(protoJSON)
	case TransportXMLRPC:
		c.proto.Store(protoXML)
	}
	return c, nil
}

// Transport returns the protocol in use: TransportJSONRPC or
// TransportXMLRPC, or TransportAuto while an auto Client has not yet had
// an answer that settles it.
func (c *Client) Transport() string {
	switch c.proto.Load() {
	case protoJSON:
		return TransportJSONRPC
	case protoXML:
		return TransportXMLRPC
	}
	return TransportAuto
}

// URL returns the endpoint calls currently go to: the configured URL, or
// the master's after a HOST_IS_SLAVE redirect.
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.String()
}

// Session returns the current session ref, or "" before login.
func (c *Client) Session() Ref {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Login opens a session now (calls log in lazily otherwise). It follows
// HOST_IS_SLAVE to the master. Wrong credentials give
// ErrSessionAuthenticationFailed.
func (c *Client) Login(ctx context.Context) error {
	_, _, err := c.ensureSession(ctx, "")
	return err
}

// Logout ends the session, if any. The Client stays usable: the next call
// logs in again.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	sess, base := c.session, c.base
	c.session = ""
	c.mu.Unlock()
	if sess == "" {
		return nil
	}
	_, err := c.roundTrip(ctx, c.rpc, base, nil, "session.logout", []any{sess})
	if errors.Is(err, ErrSessionInvalid) {
		return nil // already gone
	}
	return err
}

// Close logs out and releases idle connections. Calls after Close fail
// with ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	err := c.Logout(ctx)
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.rpc.CloseIdleConnections()
	c.long.CloseIdleConnections()
	return err
}

// ensureSession returns a live session and the endpoint it belongs to,
// logging in if there is none or if the current one equals stale.
func (c *Client) ensureSession(ctx context.Context, stale Ref) (Ref, *url.URL, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", nil, ErrClosed
	}
	if c.session != "" && c.session != stale {
		defer c.mu.Unlock()
		return c.session, c.base, nil
	}
	c.mu.Unlock()

	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	if c.session != "" && c.session != stale { // someone else logged in meanwhile
		defer c.mu.Unlock()
		return c.session, c.base, nil
	}
	base := c.base
	c.mu.Unlock()

	for hops := 0; ; hops++ {
		var sess Ref
		_, err := c.roundTrip(ctx, c.rpc, base, &sess, "session.login_with_password",
			[]any{c.opts.Username, c.opts.Password, c.opts.Version, c.opts.Originator})
		var xe *Error
		if errors.As(err, &xe) && xe.Code == ErrHostIsSlave.Code && hops < 3 {
			base = masterURL(base, xe.Param(0))
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("login as %s: %w", c.opts.Username, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.session, c.base = sess, base
		return sess, base, nil
	}
}

// masterURL returns base with its host replaced by the master address from
// HOST_IS_SLAVE, keeping the port unless the address carries one.
func masterURL(base *url.URL, master string) *url.URL {
	u := *base
	if _, _, err := net.SplitHostPort(master); err == nil {
		u.Host = master
	} else if port := base.Port(); port != "" {
		u.Host = net.JoinHostPort(strings.Trim(master, "[]"), port)
	} else if strings.Contains(master, ":") {
		u.Host = "[" + strings.Trim(master, "[]") + "]"
	} else {
		u.Host = master
	}
	return &u
}

// Call invokes method with the session prepended to args and returns the
// result decoded as `any`: strings (XAPI sends ints, refs and enums as
// strings), bool, float64, time.Time, map[string]any, []any. Arguments are
// encoded as described at EncodeCall. XAPI failures are *Error; transport
// failures match ErrUnreachable.
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	return c.call(ctx, c.rpc, nil, method, args)
}

// CallInto is Call decoding the result into out, a non-nil pointer (see
// the package documentation for the conversions).
func (c *Client) CallInto(ctx context.Context, out any, method string, args ...any) error {
	_, err := c.call(ctx, c.rpc, out, method, args)
	return err
}

// CallWithoutSession invokes a method that takes no session, such as
// system.listMethods, with exactly args. out works as in CallInto; when it
// is nil the result is returned decoded as `any`.
func (c *Client) CallWithoutSession(ctx context.Context, out any, method string, args ...any) (any, error) {
	c.mu.Lock()
	base, closed := c.base, c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return c.roundTrip(ctx, c.rpc, base, out, method, args)
}

// call runs a session call with the retry rules of Client.
func (c *Client) call(ctx context.Context, hc *http.Client, out any, method string, args []any) (any, error) {
	var stale Ref
	for attempt := 0; ; attempt++ {
		sess, base, err := c.ensureSession(ctx, stale)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		full := make([]any, 0, len(args)+1)
		full = append(append(full, sess), args...)
		v, err := c.roundTrip(ctx, hc, base, out, method, full)
		var xe *Error
		if attempt == 0 && errors.As(err, &xe) {
			switch xe.Code {
			case ErrSessionInvalid.Code:
				// rejected before running: safe to retry any call
				stale = sess
				continue
			case ErrHostIsSlave.Code:
				// the master moved; the session belonged to a member
				c.mu.Lock()
				if c.session == sess {
					c.base = masterURL(base, xe.Param(0))
					c.session = ""
				}
				c.mu.Unlock()
				stale = sess
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		return v, nil
	}
}

// roundTrip performs one exchange in the Client's protocol, settling the
// protocol of an auto Client on the first answer.
func (c *Client) roundTrip(ctx context.Context, hc *http.Client, base *url.URL, out any, method string, args []any) (any, error) {
	if c.opts.CallTimeout > 0 {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > c.opts.CallTimeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
			defer cancel()
		}
	}
	switch c.proto.Load() {
	case protoJSON:
		return c.jsonRoundTrip(ctx, hc, base, out, method, args)
	case protoXML:
		return c.xmlRoundTrip(ctx, hc, base, out, method, args)
	}
	v, err := c.jsonRoundTrip(ctx, hc, base, out, method, args)
	var xe *Error
	switch {
	case errors.Is(err, errNotJSON):
		c.proto.Store(protoXML)
		return c.xmlRoundTrip(ctx, hc, base, out, method, args)
	case err == nil || errors.As(err, &xe):
		c.proto.CompareAndSwap(protoAuto, protoJSON)
	}
	return v, err
}

// errNotJSON reports a 2xx answer of /jsonrpc that is not
// application/json: the host has no JSON-RPC (auto falls back to XML-RPC).
var errNotJSON = errors.New("xapi: /jsonrpc did not answer application/json")

// post sends body and returns the response of a 2xx answer.
func (c *Client) post(ctx context.Context, hc *http.Client, u *url.URL, contentType string, body []byte, method string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "xorest-xapi/1")
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &TransportError{Method: method, URL: u.Redacted(), Err: unwrapURLError(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		closeBody(resp)
		return nil, &TransportError{Method: method, URL: u.Redacted(), StatusCode: resp.StatusCode}
	}
	return resp, nil
}

// closeBody drains a little of the body, so that the connection can be
// reused, and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// decodeFailure turns a decoding failure into the error of the call.
func decodeFailure(ctx context.Context, u *url.URL, method string, err error) error {
	var xe *Error
	if errors.As(err, &xe) {
		return xe
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return &TransportError{Method: method, URL: u.Redacted(), Err: err}
}

// xmlRoundTrip performs one XML-RPC exchange.
func (c *Client) xmlRoundTrip(ctx context.Context, hc *http.Client, base *url.URL, out any, method string, args []any) (any, error) {
	body, err := EncodeCall(method, args...)
	if err != nil {
		return nil, err
	}
	resp, err := c.post(ctx, hc, base, "text/xml", body, method)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	v, err := DecodeResponse(resp.Body, out)
	if err != nil {
		return nil, decodeFailure(ctx, base, method, err)
	}
	return v, nil
}

// jsonURL is the JSON-RPC endpoint of the host of base.
func jsonURL(base *url.URL) *url.URL {
	u := *base
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "/jsonrpc", "", "", ""
	return &u
}

// jsonRoundTrip performs one JSON-RPC exchange. A 2xx answer that is not
// application/json gives an error matching errNotJSON.
func (c *Client) jsonRoundTrip(ctx context.Context, hc *http.Client, base *url.URL, out any, method string, args []any) (any, error) {
	body, err := EncodeJSONCall(method, args...)
	if err != nil {
		return nil, err
	}
	u := jsonURL(base)
	resp, err := c.post(ctx, hc, u, "application/json", body, method)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, &TransportError{Method: method, URL: u.Redacted(),
			Err: fmt.Errorf("%w: %w (Content-Type %q)", ErrInvalidResponse, errNotJSON, resp.Header.Get("Content-Type"))}
	}
	if out != nil && !hasInterface(reflect.TypeOf(out), map[reflect.Type]bool{}) {
		// typed records: straight from the stream, no generic form
		if err := decodeJSONInto(resp.Body, reflect.ValueOf(out).Elem()); err != nil {
			return nil, decodeFailure(ctx, u, method, err)
		}
		return nil, nil
	}
	// Records are converted with the schema while they are decoded.
	v, err := decodeJSONResultFor(resp.Body, c.schema, method)
	if err != nil {
		return nil, decodeFailure(ctx, u, method, err)
	}
	if out == nil {
		return v, nil
	}
	if err := assignOut(out, v); err != nil {
		return nil, decodeFailure(ctx, u, method, err)
	}
	return nil, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
