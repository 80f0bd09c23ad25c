package urlsource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options configures Open. The zero value fetches public addresses only,
// with the defaults below.
type Options struct {
	// Allow lists the hosts, addresses and CIDR prefixes that may be
	// reached besides public addresses (see NewPolicy); cmd/ fills it from
	// XOREST_IMPORT_ALLOW.
	Allow []string
	// Resolve resolves a host name to addresses; nil means the system
	// resolver. Tests map names to loopback or private addresses with it.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// TLSConfig is the TLS client configuration (root CAs for a private
	// S3 endpoint); nil means the system roots.
	TLSConfig *tls.Config
	// MaxRedirects is the most redirects followed per request; 0 means 5.
	MaxRedirects int
	// Retries is how many times in a row a request may fail (network
	// error, 5xx, 429, a body that breaks before delivering a byte) before
	// the transfer gives up; 0 means 5. The count starts again after each
	// byte delivered.
	Retries int
	// Backoff is the wait before the first retry, doubled for each
	// further one up to MaxBackoff; 0 means 500ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between retries; 0 means 15s.
	MaxBackoff time.Duration
	// IdleTimeout is how long a connection may stay silent (no connection,
	// no headers, no body byte) before it counts as broken and the transfer
	// resumes on a new one; 0 means 60s.
	IdleTimeout time.Duration
	// Progress, if set, is called after each Read that delivered bytes,
	// with the total number of bytes delivered so far and the size.
	Progress func(done, size int64)
}

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	if o.Resolve == nil {
		o.Resolve = defaultResolve
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 5
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 15 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	return o
}

// Reader streams the object at a URL. It is an io.ReadCloser for one
// goroutine; Size, BytesRead and Resumes may be called from any goroutine.
type Reader struct {
	ctx      context.Context
	opts     Options
	url      *url.URL
	redacted string
	client   *http.Client
	tr       *http.Transport

	size         int64
	etag         string // as the server sent it, W/ prefix included
	lastModified string

	done    atomic.Int64 // bytes delivered to the caller
	resumes atomic.Int64

	body      *idleBody // nil between connections
	bodyEnd   int64     // offset where the current body ends
	bodyBytes int64     // bytes read from the current body
	failures  int       // consecutive failed attempts
	lastErr   error     // cause of the last failed attempt
	err       error     // sticky: io.EOF at the end, or the failure
}

// Open validates rawURL (ParseURL), checks it against the address policy
// built from opts.Allow, and learns the object's size: from a HEAD, or,
// when HEAD fails or tells no length (presigned S3 URLs signed for GET
// refuse HEAD), from a GET of bytes=0-0 (its Content-Range total, or the
// Content-Length of a server that ignores Range, whose body is then kept
// as the start of the stream).
//
// The Reader keeps ctx for all its requests: cancelling it ends the
// transfer. Reading streams the body; when the connection breaks it
// re-requests "Range: bytes=<offset>-" with If-Match and If-Range on the
// ETag (or If-Unmodified-Since and If-Range on Last-Modified), so that a
// changed object fails with ErrChanged instead of being spliced. A server
// that ignores Range and answers 200 with the same validators is read
// again from the start and the bytes already delivered are skipped. The
// reader ends with io.EOF only after exactly Size bytes; a short or long
// body fails with ErrSizeMismatch.
func Open(ctx context.Context, rawURL string, opts Options) (*Reader, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	policy, err := NewPolicy(opts.Allow)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	g := &guard{policy: policy, resolve: opts.Resolve, timeout: opts.IdleTimeout}
	if err := g.checkLiteral(u); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the guard
		DialContext:           g.dialContext,
		TLSClientConfig:       opts.TLSConfig.Clone(),
		ForceAttemptHTTP2:     true,
		DisableCompression:    true, // byte ranges and lengths are of the stored bytes
		TLSHandshakeTimeout:   opts.IdleTimeout,
		ResponseHeaderTimeout: opts.IdleTimeout,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
	}
	r := &Reader{
		ctx:      ctx,
		opts:     opts,
		url:      u,
		redacted: redactURL(u),
		client:   &http.Client{Transport: tr, CheckRedirect: g.checkRedirect(opts.MaxRedirects)},
		tr:       tr,
		size:     -1,
	}
	if err := r.probe(); err != nil {
		r.Close()
		return nil, err
	}
	r.failures, r.lastErr = 0, nil
	return r, nil
}

// Size returns the size of the object in bytes.
func (r *Reader) Size() int64 { return r.size }

// BytesRead returns the number of bytes delivered by Read so far: the
// progress counter.
func (r *Reader) BytesRead() int64 { return r.done.Load() }

// Resumes returns how many times the transfer reconnected after a broken
// connection.
func (r *Reader) Resumes() int { return int(r.resumes.Load()) }

// ETag returns the object's ETag as the server sent it ("" if none), to
// record which version of the object was imported.
func (r *Reader) ETag() string { return r.etag }

// URL returns the redacted URL (see Redact), for logs.
func (r *Reader) URL() string { return r.redacted }

// probe learns the size and the validators.
func (r *Reader) probe() error {
	resp, cancel, err := r.send(http.MethodHead, nil)
	if err != nil && permanent(err) {
		return err
	}
	if err == nil {
		resp.Body.Close()
		cancel()
		if resp.StatusCode/100 == 2 && resp.ContentLength >= 0 {
			r.size = resp.ContentLength
			r.setValidators(resp.Header)
			return nil
		}
	}
	// HEAD refused or silent about the length: ask for the first byte.
	return r.retry(func() error {
		resp, cancel, err := r.send(http.MethodGet, http.Header{"Range": {"bytes=0-0"}})
		if err != nil {
			return err
		}
		keep := false
		defer func() {
			if !keep {
				resp.Body.Close()
				cancel()
			}
		}()
		switch resp.StatusCode {
		case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
			_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || total < 0 {
				return fmt.Errorf("%w: GET %s: Content-Range %q", ErrUnknownSize, r.redacted, resp.Header.Get("Content-Range"))
			}
			r.size = total
		case http.StatusOK:
			if resp.ContentLength < 0 {
				return fmt.Errorf("%w: GET %s: no Content-Length", ErrUnknownSize, r.redacted)
			}
			r.size = resp.ContentLength
			keep = true // the server ignores Range: this body is the stream
			r.attach(resp.Body, cancel, r.size)
		default:
			return &StatusError{Method: http.MethodGet, URL: r.redacted, StatusCode: resp.StatusCode}
		}
		r.setValidators(resp.Header)
		return nil
	})
}

// setValidators records the ETag and Last-Modified of the object.
func (r *Reader) setValidators(h http.Header) {
	r.etag = h.Get("ETag")
	r.lastModified = h.Get("Last-Modified")
}

// strongETag reports whether the ETag can be used in If-Match and If-Range.
func (r *Reader) strongETag() bool {
	return r.etag != "" && !strings.HasPrefix(r.etag, "W/")
}

// send makes one request with its own cancel, which the caller calls once
// done with the body. Errors never quote the URL's query.
func (r *Reader) send(method string, h http.Header) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(ctx, method, r.url.String(), nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("urlsource: %s %s: %w", method, r.redacted, ErrInvalidURL)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, credentials included
		}
		return nil, nil, fmt.Errorf("urlsource: %s %s: %w", method, r.redacted, err)
	}
	return resp, cancel, nil
}

// retry runs attempt until it succeeds, fails permanently, or fails
// Options.Retries times in a row, waiting with exponential backoff bound
// to the Reader's context between attempts.
func (r *Reader) retry(attempt func() error) error {
	for {
		if r.failures > 0 {
			if r.failures > r.opts.Retries {
				return fmt.Errorf("urlsource: %s: giving up after %d attempts: %w", r.redacted, r.failures, r.lastErr)
			}
			if err := r.sleep(); err != nil {
				return err
			}
		}
		err := attempt()
		if err == nil {
			return nil
		}
		if permanent(err) {
			return err
		}
		r.failures++
		r.lastErr = err
	}
}

// sleep waits the backoff for the current failure count.
func (r *Reader) sleep() error {
	d := r.opts.Backoff
	for i := 1; i < r.failures && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.opts.MaxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return fmt.Errorf("urlsource: %s: %w (last failure: %v)", r.redacted, context.Cause(r.ctx), r.lastErr)
	case <-t.C:
		return nil
	}
}

// permanent reports whether retrying err cannot help.
func permanent(err error) bool {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return !se.transient()
	case errors.Is(err, ErrForbiddenAddress), errors.Is(err, ErrRedirect), errors.Is(err, ErrInvalidURL),
		errors.Is(err, ErrChanged), errors.Is(err, ErrSizeMismatch), errors.Is(err, ErrUnknownSize),
		errors.Is(err, ErrProtocol), errors.Is(err, ErrNotResumable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var cv *tls.CertificateVerificationError
	return errors.As(err, &cv)
}

// Read reads the next bytes of the object, resuming on a new connection
// when the current one breaks.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.ctx.Err() != nil {
		return 0, r.finish(fmt.Errorf("urlsource: GET %s: %w", r.redacted, context.Cause(r.ctx)))
	}
	for {
		off := r.done.Load()
		if r.body == nil {
			if off == r.size {
				return 0, r.finish(io.EOF)
			}
			if err := r.retry(func() error { return r.connect(off) }); err != nil {
				return 0, r.finish(err)
			}
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.bodyBytes += int64(n)
			r.failures = 0
			if rest := r.size - off; int64(n) > rest {
				r.advance(rest)
				return int(rest), r.finish(fmt.Errorf("%w: GET %s: more than %d bytes", ErrSizeMismatch, r.redacted, r.size))
			}
			r.advance(int64(n))
		}
		switch {
		case err == nil:
			if n > 0 {
				return n, nil
			}
		case err == io.EOF:
			if r.done.Load() == r.size {
				r.finish(io.EOF)
				return n, nil // io.EOF on the next call
			}
			if r.done.Load() == r.bodyEnd { // a 206 with a shorter range than asked
				r.detach()
				if n > 0 {
					return n, nil
				}
				continue
			}
			// A body that ends cleanly has ended where the server meant it
			// to: the object is shorter than announced.
			return n, r.finish(fmt.Errorf("%w: GET %s: body ended after %d of %d bytes", ErrSizeMismatch, r.redacted, r.done.Load(), r.size))
		default:
			if cerr := r.ctx.Err(); cerr != nil {
				return n, r.finish(fmt.Errorf("urlsource: GET %s: %w", r.redacted, context.Cause(r.ctx)))
			}
			if r.bodyBytes == 0 {
				r.failures++
			}
			r.lastErr = fmt.Errorf("urlsource: GET %s: body broke at byte %d: %w", r.redacted, r.done.Load(), err)
			r.detach()
			if r.done.Load() > 0 && r.etag == "" && r.lastModified == "" {
				return n, r.finish(fmt.Errorf("%w: %w", ErrNotResumable, r.lastErr))
			}
			r.resumes.Add(1)
			if n > 0 {
				return n, nil
			}
		}
	}
}

// advance counts n delivered bytes.
func (r *Reader) advance(n int64) {
	done := r.done.Add(n)
	if r.opts.Progress != nil {
		r.opts.Progress(done, r.size)
	}
}

// connect requests the object from off on and attaches the body.
func (r *Reader) connect(off int64) error {
	h := http.Header{}
	if off > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	switch {
	case r.strongETag():
		h.Set("If-Match", r.etag)
		if off > 0 {
			h.Set("If-Range", r.etag)
		}
	case r.lastModified != "":
		h.Set("If-Unmodified-Since", r.lastModified)
		if off > 0 {
			h.Set("If-Range", r.lastModified)
		}
	}
	resp, cancel, err := r.send(http.MethodGet, h)
	if err != nil {
		return err
	}
	if err := r.accept(resp, off); err != nil {
		resp.Body.Close()
		cancel()
		return err
	}
	end := r.size
	if resp.StatusCode == http.StatusPartialContent {
		_, last, _, _ := parseContentRange(resp.Header.Get("Content-Range"))
		end = last + 1
	}
	r.attach(resp.Body, cancel, end)
	if resp.StatusCode == http.StatusOK && off > 0 {
		// The server ignored Range: skip what was delivered already.
		if _, err := io.CopyN(io.Discard, r.body, off); err != nil {
			r.detach()
			return fmt.Errorf("urlsource: GET %s: skipping %d bytes the server sent again: %w", r.redacted, off, err)
		}
	}
	return nil
}

// accept checks the answer to a GET from off on.
func (r *Reader) accept(resp *http.Response, off int64) error {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: GET %s: 412 on the object's validator", ErrChanged, r.redacted)
	case http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: GET %s: 416 for bytes %d- of %d", ErrSizeMismatch, r.redacted, off, r.size)
	default:
		return &StatusError{Method: http.MethodGet, URL: r.redacted, StatusCode: resp.StatusCode}
	}
	if err := r.sameObject(resp.Header); err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		if resp.ContentLength >= 0 && resp.ContentLength != r.size {
			return fmt.Errorf("%w: GET %s: Content-Length %d, size %d", ErrSizeMismatch, r.redacted, resp.ContentLength, r.size)
		}
		return nil
	}
	cr := resp.Header.Get("Content-Range")
	start, end, total, ok := parseContentRange(cr)
	switch {
	case !ok || start < 0:
		return fmt.Errorf("%w: GET %s: Content-Range %q", ErrProtocol, r.redacted, cr)
	case total >= 0 && total != r.size:
		return fmt.Errorf("%w: GET %s: Content-Range total %d, size %d", ErrSizeMismatch, r.redacted, total, r.size)
	case start != off || end >= r.size:
		return fmt.Errorf("%w: GET %s: asked bytes %d-, got %q", ErrProtocol, r.redacted, off, cr)
	}
	return nil
}

// sameObject compares the validators of an answer with the object's.
func (r *Reader) sameObject(h http.Header) error {
	if r.etag == "" && r.lastModified == "" && r.done.Load() == 0 {
		r.setValidators(h) // first answer to tell them
		return nil
	}
	if et := h.Get("ETag"); r.etag != "" && et != "" && et != r.etag {
		return fmt.Errorf("%w: GET %s: ETag %s, was %s", ErrChanged, r.redacted, et, r.etag)
	}
	if lm := h.Get("Last-Modified"); r.lastModified != "" && lm != "" && lm != r.lastModified {
		return fmt.Errorf("%w: GET %s: Last-Modified %s, was %s", ErrChanged, r.redacted, lm, r.lastModified)
	}
	return nil
}

// idleBody is a response body whose request is cancelled when no byte
// arrives for a while, so that a stalled connection counts as broken.
type idleBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	timer  *time.Timer
	idle   time.Duration
}

// Read reads from the body and restarts the idle timer.
func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

// close closes the body and cancels its request.
func (b *idleBody) close() {
	b.timer.Stop()
	b.rc.Close()
	b.cancel()
}

// attach makes body the current one; it ends at offset end.
func (r *Reader) attach(body io.ReadCloser, cancel context.CancelFunc, end int64) {
	r.body = &idleBody{rc: body, cancel: cancel, timer: time.AfterFunc(r.opts.IdleTimeout, cancel), idle: r.opts.IdleTimeout}
	r.bodyEnd, r.bodyBytes = end, 0
}

// detach closes the current body, if any.
func (r *Reader) detach() {
	if r.body != nil {
		r.body.close()
		r.body = nil
	}
}

// finish ends the transfer with err (io.EOF for success) and returns it.
func (r *Reader) finish(err error) error {
	r.detach()
	r.tr.CloseIdleConnections()
	r.err = err
	return err
}

// Close ends the transfer and releases its connections. Reads after Close
// fail with ErrClosed.
func (r *Reader) Close() error {
	r.finish(ErrClosed)
	return nil
}

// parseContentRange parses "bytes first-last/total" (total -1 for "*")
// and "bytes */total" (first and last -1).
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t < 0 {
			return 0, 0, 0, false
		}
		total = t
	}
	if rng == "*" {
		return -1, -1, total, total >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || (total >= 0 && last >= total) {
		return 0, 0, 0, false
	}
	return first, last, total, true
}
