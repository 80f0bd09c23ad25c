package xapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTransfer matches the errors of GetExport and PutImport that are not
// XAPI faults: an answer other than 200 with no task error to explain it,
// XAPI's "HTTP/ in the body" bug (xapi.md §7.1) or a body that broke off.
var ErrTransfer = errors.New("xapi: HTTP transfer failed")

// Download is the body of an XAPI HTTP export (GetExport). Read it to its
// end: reading past the last byte waits for the transfer's task and
// returns its error (an *Error such as VDI_IO_ERROR) instead of io.EOF when
// the task failed, and a body that breaks off returns the task's error when
// it has one. Close it in every case: closing before the end cancels the
// task (task.cancel), and the task is destroyed.
type Download struct {
	// Task is the task the transfer runs in, created with task.create.
	Task Ref
	// Header is the answer's header (Content-Type, Content-Disposition).
	Header http.Header

	c      *Client
	ctx    context.Context
	resp   *http.Response
	br     *bufio.Reader
	mu     sync.Mutex
	done   bool  // the task outcome is known
	err    error // the outcome: nil for success
	closed bool
}

// GetExport starts an export from XAPI's HTTP handler path (e.g. "/export"
// or "/export_raw_vdi") with query (e.g. ref=, vdi=, format=), inside a
// task labelled label: session_id and task_id are added to the query
// (xapi.md §7.1). An answer other than 200, or a 200 whose body starts with
// "HTTP/" (XAPI bug #4603), is an error: the task's error if it failed
// (e.g. VM_BAD_POWER_STATE), else one matching ErrTransfer. A request that
// could not be sent is a *TransportError (ErrUnreachable).
//
// The pool master redirects the export of an object on another host's
// local SR to that host (302, Location on the host's address with the same
// query); GetExport follows up to 3 redirects, keeping its own query, with
// the Client's TLS settings (see Options.Fingerprints for the other hosts'
// certificates), and refuses one from https to http, which would send the
// session in clear.
func (c *Client) GetExport(ctx context.Context, path string, query url.Values, label string) (*Download, error) {
	return c.getExport(ctx, nil, path, query, label)
}

// GetExportFrom is GetExport sent to host instead of the pool URL, for the
// handlers XAPI answers for the host that receives the request: the
// /rrd_updates of that host and of the VMs resident on it, its
// /audit_log, its /host_logs_download. The pool master is reached through
// the pool URL (GetExport). Another host is reached at
// Options.HostURLs[its uuid] when set, else on its address
// (host.get_address) with the pool URL's scheme and port (a port in the
// address wins; an IPv6 address is bracketed), as XAPI's own redirects
// name a host (https://<host.address><path>). The task is created through
// the pool URL as for GetExport, and the request carries the same session
// (sessions are pool-wide). TLS is as for a redirect: the host's
// certificate is verified against its own address, not
// Options.TLSServerName, so pinned fingerprints must list it and a CA
// must have signed it. A redirect from the host is followed as
// GetExport's are. Errors name the host's URL ("on host
// https://10.0.0.2/rrd_updates"), never the session; a request that could
// not be sent (connection refused, TLS handshake refused) is a
// *TransportError, matching ErrUnreachable, as for GetExport.
func (c *Client) GetExportFrom(ctx context.Context, host Ref, path string, query url.Values, label string) (*Download, error) {
	target, err := c.HostURL(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("GET %s on host %s: %w", path, host, err)
	}
	return c.getExport(ctx, target, path, query, label)
}

// HostURL returns the base URL that GetExportFrom sends host's requests
// to (see there): nil for the pool master, which is reached through the
// pool URL.
func (c *Client) HostURL(ctx context.Context, host Ref) (*url.URL, error) {
	var pools []Ref
	if err := c.CallInto(ctx, &pools, "pool.get_all"); err != nil {
		return nil, err
	}
	for _, p := range pools {
		var master Ref
		if err := c.CallInto(ctx, &master, "pool.get_master", p); err != nil {
			return nil, err
		}
		if master == host {
			return nil, nil
		}
	}
	if len(c.opts.HostURLs) > 0 {
		var uuid string
		if err := c.CallInto(ctx, &uuid, "host.get_uuid", host); err != nil {
			return nil, err
		}
		if raw, ok := c.opts.HostURLs[uuid]; ok {
			u, err := url.Parse(raw) // checked by valid
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidHostURL, err)
			}
			return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}, nil
		}
	}
	var addr string
	if err := c.CallInto(ctx, &addr, "host.get_address", host); err != nil {
		return nil, err
	}
	if strings.TrimSpace(addr) == "" {
		return nil, fmt.Errorf("%w: host %s has no address", ErrTransfer, host)
	}
	c.mu.Lock()
	base := c.base
	c.mu.Unlock()
	u := masterURL(base, strings.TrimSpace(addr))
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}, nil
}

// getExport is GetExport sent to target's scheme and host:port (nil: the
// pool URL).
func (c *Client) getExport(ctx context.Context, target *url.URL, path string, query url.Values, label string) (*Download, error) {
	task, raw, err := c.transferTask(ctx, path, query, label)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		c.dropTask(ctx, task, false)
		return nil, fmt.Errorf("GET %s: %w", path, c.redact(err))
	}
	origin := u.Host
	if target != nil {
		u.Scheme, u.Host = target.Scheme, target.Host
	}
	first := u.Host
	note := func(u *url.URL) string {
		if u.Host == first && first != origin {
			return " (on host " + hostURL(u) + ")"
		}
		return redirectedTo(u, origin)
	}
	var resp *http.Response
	for redirects := 0; ; redirects++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			c.dropTask(ctx, task, false)
			return nil, fmt.Errorf("GET %s: %w", path, c.redact(err))
		}
		hc, done := c.transferHTTP(u, origin)
		req, sent := traceSent(req)
		resp, err = hc.Do(req)
		done()
		if err != nil {
			if !sent.Load() && ctx.Err() == nil {
				// no handler received it: the host is unreachable
				err = &TransportError{Method: "GET", URL: hostURL(u), Err: unwrapURLError(err)}
			}
			err = fmt.Errorf("GET %s%s: %w", path, note(u), c.redact(err))
			if !sent.Load() {
				c.abandonTask(ctx, task, err)
			}
			c.dropTask(ctx, task, sent.Load())
			return nil, err
		}
		if !isRedirect(resp.StatusCode) || redirects >= maxRedirects {
			break
		}
		next, err := redirectTarget(u, resp)
		if err != nil {
			err = fmt.Errorf("GET %s%s: %w", path, note(u), err)
			c.abandonTask(ctx, task, err)
			c.dropTask(ctx, task, false)
			return nil, err
		}
		u = next
	}
	what := "GET " + path + note(u)
	if resp.StatusCode != http.StatusOK {
		err := c.statusError(ctx, task, what, resp)
		c.dropTask(ctx, task, true)
		return nil, err
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	if head, _ := br.Peek(5); string(head) == "HTTP/" {
		line, _ := br.ReadString('\n')
		_ = resp.Body.Close()
		err := c.taskError(ctx, task)
		c.dropTask(ctx, task, true)
		if err == nil {
			err = fmt.Errorf("%s: %w: 200 with an HTTP answer in the body: %q", what, ErrTransfer, strings.TrimSpace(line))
		}
		return nil, err
	}
	return &Download{Task: task, Header: resp.Header, c: c, ctx: ctx, resp: resp, br: br}, nil
}

// Redirects between the hosts of a pool.
//
// XAPI answers the transfer handlers of the pool master with a 302 when
// the object is on an SR the master cannot see, such as a member's local
// storage (export.ml handler, import.ml handler, export_raw_vdi.ml and
// import_raw_vdi.ml via Importexport.return_302_redirect): Location is
// https://<host.address><path>?<the request's query>, session_id and
// task_id included, written before XAPI reads any of a PUT's body and
// without touching the task. The transfer functions follow it themselves
// (at most maxRedirects times):
//
//   - the request's own query (session_id, task_id, ...) is kept whatever
//     the Location's query;
//   - https to http is refused: the session would travel in clear;
//   - the Client's TLS settings apply to every host: a CA must have signed
//     the member's certificate too, and pinned fingerprints
//     (Options.Fingerprints) must list every host the client may be sent
//     to, since each XAPI host has a certificate of its own; with
//     Options.TLSServerName, which names the pool URL's host, the
//     certificate of another host is verified against that host's own
//     name or address instead;
//   - a PUT's body is sent only after the answer: a 302 leaves it
//     unread, and it is sent whole to the other host. Go's http.Client
//     would turn a 302 on a PUT into a GET without a body, and npm
//     xen-api's empty probe PUT (putResource) runs a real, empty import
//     when there is no redirect (a new VDI for /import_raw_vdi?sr_id=).
//
// Errors say which host failed ("redirected to https://host:port/path"),
// never with the session.

// maxRedirects bounds the redirects followed by a transfer.
const maxRedirects = 3

// isRedirect reports whether code is an HTTP redirect.
func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectTarget returns where the redirect resp sends the request of u,
// with u's query, and closes resp's body.
func redirectTarget(u *url.URL, resp *http.Response) (*url.URL, error) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("%w: HTTP %s without a usable Location: %w", ErrTransfer, resp.Status, err)
	}
	if loc.Scheme != "http" && loc.Scheme != "https" {
		return nil, fmt.Errorf("%w: HTTP %s to an unsupported scheme %q", ErrTransfer, resp.Status, loc.Scheme)
	}
	if u.Scheme == "https" && loc.Scheme != "https" {
		return nil, fmt.Errorf("%w: HTTP %s from https to %s refused: the session would be sent in clear", ErrTransfer, resp.Status, hostURL(loc))
	}
	loc.RawQuery = u.RawQuery
	loc.Fragment = ""
	loc.User = nil
	return loc, nil
}

// redirectedTo names u in an error when it is not on the pool URL's host
// origin.
func redirectedTo(u *url.URL, origin string) string {
	if u.Host == origin {
		return ""
	}
	return " (redirected to " + hostURL(u) + ")"
}

// traceSent returns req with a trace that records whether its headers
// were written: a request that failed before cannot have reached a
// handler, and its task is untouched.
func traceSent(req *http.Request) (*http.Request, *atomic.Bool) {
	sent := new(atomic.Bool)
	trace := &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace)), sent
}

// unsent fails task with err, the error of a request that no handler
// received (not sent, or a redirect refused), and returns err as the
// transfer's final error, so that the task is destroyed at once rather
// than waited for.
func (c *Client) unsent(ctx context.Context, task Ref, what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	c.abandonTask(ctx, task, err)
	return &taskFailure{err}
}

// abandonTask fails task, which no XAPI handler received, with err's text
// (task.set_error_info, task.set_status; best effort: an XAPI without
// them keeps the task pending until it is destroyed).
func (c *Client) abandonTask(ctx context.Context, task Ref, err error) {
	dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	if _, e := c.Call(dctx, "task.set_error_info", task, []string{"INTERNAL_ERROR", c.redact(err).Error()}); e != nil {
		return
	}
	_, _ = c.Call(dctx, "task.set_status", task, TaskFailure)
}

// viaHost prefixes err with the host of u when it is not origin.
func viaHost(u *url.URL, origin string, err error) error {
	if u.Host == origin {
		return err
	}
	return fmt.Errorf("redirected to %s: %w", hostURL(u), err)
}

// transferHTTP returns the HTTP client of a transfer request to u, which
// does not follow redirects: the long-poll client's transport, or for a
// host other than origin when Options.TLSServerName is set, a copy of it
// that verifies u's own name. Call done once the request has its answer.
func (c *Client) transferHTTP(u *url.URL, origin string) (hc *http.Client, done func()) {
	hc = &http.Client{
		Transport:     c.long.Transport,
		Jar:           c.long.Jar,
		Timeout:       c.long.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tr, ok := c.long.Transport.(*http.Transport)
	if !ok || u.Host == origin || tr.TLSClientConfig == nil || tr.TLSClientConfig.ServerName == "" {
		return hc, func() {}
	}
	other := tr.Clone()
	other.TLSClientConfig.ServerName = ""
	other.DisableKeepAlives = true
	hc.Transport = other
	return hc, other.CloseIdleConnections
}

// Read reads the export's body; see Download.
func (d *Download) Read(p []byte) (int, error) {
	n, err := d.br.Read(p)
	if err == nil {
		return n, nil
	}
	// The body ended or broke off: the task says how it went.
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.done {
		_, werr := d.c.WaitTask(d.ctx, d.Task)
		d.done = true
		d.err = werr
		if werr == nil && err != io.EOF {
			d.err = fmt.Errorf("%w: body broke off: %w", ErrTransfer, d.c.redact(err))
		}
	}
	if d.err != nil {
		return n, d.err
	}
	return n, io.EOF
}

// Close ends the transfer: a task not finished yet is cancelled, and the
// task is destroyed.
func (d *Download) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	err := d.resp.Body.Close()
	d.c.dropTask(d.ctx, d.Task, true)
	return err
}

// ErrSizeRequired matches the error of PutImport with an unknown size
// (size < 0) for an XAPI handler that cannot find the end of the body
// itself: /import_raw_vdi with format raw or vhd (see PutImport).
var ErrSizeRequired = errors.New("xapi: the body's size must be known")

// UnknownSize is the size to give PutImport for a body whose length is not
// known in advance (a pipe, a chunked upload).
const UnknownSize = -1

// unknownLength is the Content-Length sent for a body of unknown size:
// 1 PiB, as npm xen-api's putResource does, so that XAPI reads until the
// format ends or the client closes.
const unknownLength = 1 << 50

// PutImport sends body to XAPI's HTTP handler path (e.g. "/import" or
// "/import_raw_vdi") with query, inside a task labelled label, and returns
// the task's result decoded as WaitTask does (the new VM refs for /import,
// the VDI ref for /import_raw_vdi); see PutImportCount.
func (c *Client) PutImport(ctx context.Context, path string, query url.Values, body io.Reader, size int64, label string) (any, error) {
	v, _, err := c.PutImportCount(ctx, path, query, body, size, label)
	return v, err
}

// PutImportCount is PutImport that also returns how many bytes of body
// were sent.
//
// With size >= 0 the body is exactly size bytes, sent with that
// Content-Length; XAPI refuses chunked bodies. XAPI answers before
// reading the body, and the body is sent only then: after a 200 it is
// sent whole, the answer read to its end, and the outcome is the task's;
// a 302 to the host that sees the SR (a member's local storage) is
// followed with none of the body consumed (see "Redirects between the
// hosts of a pool" in transfer.go).
//
// With size < 0 (UnknownSize) PutImportCount does what npm xen-api's
// putResource does for a stream without a length: it announces a
// Content-Length of 1 PiB, sends the body until it ends, then closes its
// side of the connection, and XAPI reads the format to its own end. The
// request is written on a connection of its own (net/http refuses a body
// shorter than its Content-Length), dialled and secured with the Client's
// TLS settings (CA, pinned fingerprints), and the body is sent only once
// XAPI has answered 200, so that a 302 to the host that sees the SR is
// followed without losing any of it. Only handlers that stop where the
// format ends accept this (XAPI's sources: import.ml, stream_vdi.ml,
// vhd-tool impl.ml):
//
//   - /import (an XVA, plain or compressed): XAPI reads ova.xml, then each
//     disk up to its virtual size (Stream_vdi.recv_all), and completes the
//     task; the tar's end-of-archive blocks are not even read. A body that
//     ends early fails with IMPORT_ERROR_PREMATURE_EOF and XAPI removes
//     what it created.
//   - /import_raw_vdi with format=tar: read until the VDI's virtual size is
//     filled.
//
// Other handlers fail with ErrSizeRequired before any request: with
// format=raw vhd-tool reads until Content-Length bytes have come, and with
// format=vhd it reads the VHD's footer at the last sector below
// Content-Length, so the task would fail with VDI_IO_ERROR even after a
// complete upload (xen-api ignores that error; a caller here cannot tell
// it from a real one).
//
// An error of body itself is returned before the task's (which would be a
// consequence); with an unknown size the connection is then reset so that
// XAPI sees a broken upload rather than an end. If ctx ends the task is
// cancelled. The task is destroyed in every case.
func (c *Client) PutImportCount(ctx context.Context, path string, query url.Values, body io.Reader, size int64, label string) (any, int64, error) {
	if size < 0 {
		if why := unknownSizeRefused(path, query); why != "" {
			return nil, 0, fmt.Errorf("PUT %s: %w: %s", path, ErrSizeRequired, why)
		}
	}
	task, raw, err := c.transferTask(ctx, path, query, label)
	if err != nil {
		return nil, 0, err
	}
	finished := false
	defer func() { c.dropTask(ctx, task, !finished) }()
	u, err := url.Parse(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("PUT %s: %w", path, c.redact(err))
	}

	var src *errReader
	if size < 0 {
		src = &errReader{r: body}
		err = c.putStream(ctx, task, "PUT "+path, u, src)
	} else {
		src = &errReader{r: io.LimitReader(body, size)}
		err = c.putSized(ctx, task, "PUT "+path, u, src, size)
	}
	sent := src.count()
	if berr := src.failure(); berr != nil {
		return nil, sent, fmt.Errorf("PUT %s: reading the body after %d bytes: %w", path, sent, berr)
	}
	var terr *taskFailure
	if errors.As(err, &terr) {
		finished = true
		return nil, sent, terr.err
	}
	if err != nil {
		return nil, sent, fmt.Errorf("PUT %s: after %d bytes: %w", path, sent, err)
	}
	v, err := c.WaitTask(ctx, task)
	if err != nil {
		if ctx.Err() == nil {
			finished = true
		}
		return nil, sent, err
	}
	finished = true
	return v, sent, nil
}

// unknownSizeRefused says why XAPI's handler path with query cannot take a
// body of unknown size ("" if it can).
func unknownSizeRefused(path string, query url.Values) string {
	switch strings.TrimSuffix(path, "/") {
	case "/import":
		return ""
	case "/import_raw_vdi":
		switch format := query.Get("format"); format {
		case "tar":
			return ""
		case "vhd":
			return "XAPI (vhd-tool) reads a VHD's footer at the Content-Length, so an upload of unknown length fails with VDI_IO_ERROR even when complete"
		case "", "raw":
			return "XAPI (vhd-tool) writes a raw image until Content-Length bytes have come, so an upload of unknown length fails with VDI_IO_ERROR even when complete"
		default:
			return "format " + format + " needs a Content-Length"
		}
	}
	return path + " needs a Content-Length"
}

// taskFailure carries the final error of an exchange whose task has
// finished: the task's error, or the answer's when the task has none.
type taskFailure struct{ err error }

func (e *taskFailure) Error() string { return e.err.Error() }

// holdBack is how long putSized holds a body back waiting for the answer
// once the headers are out. XAPI answers at once with a redirect (a
// database lookup), and 200 only once the disk is attached, which may take
// longer: the body is then sent anyway, as it is to an intermediary that
// reads the whole body before answering (nginx's default request
// buffering), whose redirect can no longer be followed.
const holdBack = 2 * time.Second

// putSized sends src, of exactly size bytes, with net/http. The body is
// held back until XAPI has answered (it answers before reading the body),
// or for holdBack: a redirect is followed with the body unread, any other
// answer but 200 ends the request without it.
func (c *Client) putSized(ctx context.Context, task Ref, what string, u *url.URL, src *errReader, size int64) error {
	origin := u.Host
	for redirects := 0; ; redirects++ {
		var g *gate
		var rd io.Reader = http.NoBody
		if size > 0 {
			g = newGate(src)
			rd = g
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), rd)
		if err != nil {
			return c.redact(err)
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		hc, done := c.transferHTTP(u, origin)
		sent := new(atomic.Bool)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteHeaders: func() {
			sent.Store(true)
			g.releaseAfter(holdBack)
		}}))
		resp, err := hc.Do(req)
		done()
		g.disarm()
		if err != nil {
			g.abort()
			if src.failure() != nil {
				return nil
			}
			if !sent.Load() {
				return c.unsent(ctx, task, what, viaHost(u, origin, c.redact(err)))
			}
			if terr := c.taskError(ctx, task); terr != nil {
				return &taskFailure{terr}
			}
			return viaHost(u, origin, c.redact(err))
		}
		if isRedirect(resp.StatusCode) && redirects < maxRedirects {
			g.abort()
			next, err := redirectTarget(u, resp)
			if err == nil && g.opened() {
				err = fmt.Errorf("%w: HTTP %s to %s after the body had started, which cannot be sent again (an intermediary that reads the whole body before answering?)", ErrTransfer, resp.Status, hostURL(next))
			}
			if err != nil {
				return c.unsent(ctx, task, what, viaHost(u, origin, err))
			}
			u = next
			continue
		}
		if resp.StatusCode != http.StatusOK {
			g.abort()
			return &taskFailure{c.statusError(ctx, task, what+redirectedTo(u, origin), resp)}
		}
		g.release()
		_, rerr := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if src.count() < size && rerr != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	}
}

// errHeldBack ends the request of a body that was not to be sent.
var errHeldBack = errors.New("xapi: request body held back")

// gate is a request body that reads nothing until release, so that the
// transport sends the headers (net/http flushes them before reading a
// body that is not in memory) and the answer can be seen before any of
// the body is consumed. abort ends the request instead.
type gate struct {
	r    io.Reader
	open chan struct{}
	stop chan struct{}
	once sync.Once

	mu    sync.Mutex
	timer *time.Timer // release after holdBack
}

func newGate(r io.Reader) *gate {
	return &gate{r: r, open: make(chan struct{}), stop: make(chan struct{})}
}

func (g *gate) Read(p []byte) (int, error) {
	select {
	case <-g.open:
		return g.r.Read(p)
	case <-g.stop:
		return 0, errHeldBack
	}
}

// releaseAfter releases the gate after d unless it is disarmed first.
func (g *gate) releaseAfter(d time.Duration) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.release)
	}
}

// disarm stops the timer of releaseAfter.
func (g *gate) disarm() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
}

// opened reports whether the body was let through.
func (g *gate) opened() bool {
	if g == nil {
		return false
	}
	select {
	case <-g.open:
		return true
	default:
		return false
	}
}

// release lets the body through.
func (g *gate) release() {
	if g != nil {
		g.once.Do(func() { close(g.open) })
	}
}

// abort ends the request without the body (unless released before).
func (g *gate) abort() {
	if g != nil {
		g.once.Do(func() { close(g.stop) })
	}
}

// putStream sends src, of unknown length, on a connection of its own with
// a Content-Length of 1 PiB, once XAPI has answered 200, then closes its
// side and reads the answer to its end (XAPI closes the connection when
// the import is done).
func (c *Client) putStream(ctx context.Context, task Ref, what string, u *url.URL, src *errReader) error {
	origin := u.Host
	for redirects := 0; ; redirects++ {
		conn, br, resp, sent, err := c.startPut(ctx, u, u.Host != origin)
		if err != nil {
			if !sent {
				return c.unsent(ctx, task, what, viaHost(u, origin, c.redact(err)))
			}
			if terr := c.taskError(ctx, task); terr != nil {
				return &taskFailure{terr}
			}
			return viaHost(u, origin, c.redact(err))
		}
		if isRedirect(resp.StatusCode) && redirects < maxRedirects {
			next, err := redirectTarget(u, resp)
			_ = conn.Close()
			if err != nil {
				return c.unsent(ctx, task, what, viaHost(u, origin, err))
			}
			u = next
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err := c.statusError(ctx, task, what+redirectedTo(u, origin), resp)
			_ = conn.Close()
			return &taskFailure{err}
		}
		return c.sendStream(ctx, conn, br, src)
	}
}

// sendStream copies src to conn after the 200, ends the request by closing
// the writing side, and reads the answer to its end. A body error resets
// the connection instead, so that XAPI sees a broken upload and not an
// end. A write error is not returned: XAPI closes the connection when the
// format ends or the import fails, and the task tells which.
//
// If ctx ends while a Read of src is blocked, sendStream returns at once
// and leaves that Read to finish in the background, as net/http does with
// a request body.
func (c *Client) sendStream(ctx context.Context, conn *putConn, br *bufio.Reader, src *errReader) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	copied := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(conn, src, make([]byte, 256<<10))
		copied <- err
	}()
	var werr error
	select {
	case werr = <-copied:
	case <-ctx.Done():
		conn.reset()
		return ctx.Err()
	}
	if src.failure() != nil {
		conn.reset()
		return nil
	}
	if werr == nil {
		conn.closeWrite()
	}
	_, _ = io.Copy(io.Discard, br)
	return ctx.Err()
}

// startPut dials the host of u (foreign: not the pool URL's host) and writes the headers of a PUT of unknown
// length, then reads XAPI's answer, which XAPI sends before reading the
// body.
func (c *Client) startPut(ctx context.Context, u *url.URL, foreign bool) (conn *putConn, br *bufio.Reader, resp *http.Response, sent bool, err error) {
	conn, err = c.dialTransfer(ctx, u, foreign)
	if err != nil {
		return nil, nil, nil, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{Method: http.MethodPut, URL: u}
	head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\nUser-Agent: xorest\r\nConnection: close\r\n\r\n",
		u.RequestURI(), u.Host, unknownLength)
	if _, err := io.WriteString(conn, head); err != nil {
		_ = conn.Close()
		return nil, nil, nil, true, fmt.Errorf("writing the request: %w", err)
	}
	br = bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, req)
	if err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, true, ctx.Err()
		}
		return nil, nil, nil, true, fmt.Errorf("%w: reading the answer: %w", ErrTransfer, err)
	}
	return conn, br, resp, true, nil
}

// putConn is the connection of a PUT of unknown length: TCP, and TLS over
// it for https.
type putConn struct {
	net.Conn          // what the request is written on
	tcp      net.Conn // the TCP connection under it
}

// closeWrite ends the request: TLS's close_notify, then the TCP FIN.
func (p *putConn) closeWrite() {
	if tc, ok := p.Conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	if cw, ok := p.tcp.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// reset closes the connection with a TCP reset, so that the server's next
// read fails instead of seeing an end.
func (p *putConn) reset() {
	if tc, ok := p.tcp.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = p.tcp.Close()
}

// Close closes the connection.
func (p *putConn) Close() error {
	err := p.Conn.Close()
	if p.tcp != p.Conn {
		_ = p.tcp.Close()
	}
	return err
}

// dialTransfer opens a connection to the host of u with the dialer and
// TLS settings of the Client's transports; for a foreign host (not the
// pool URL's) the certificate is verified against u's own host name, not
// Options.TLSServerName. A proxy is not supported for this kind of
// request.
func (c *Client) dialTransfer(ctx context.Context, u *url.URL, foreign bool) (*putConn, error) {
	tr, ok := c.long.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("%w: no dialer for an upload of unknown length", ErrTransfer)
	}
	if tr.Proxy != nil {
		p, err := tr.Proxy(&http.Request{URL: u})
		if err != nil {
			return nil, fmt.Errorf("%w: proxy settings: %w", ErrTransfer, err)
		}
		if p != nil {
			return nil, fmt.Errorf("%w: an upload of unknown length cannot go through the proxy %s", ErrTransfer, p.Redacted())
		}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, &TransportError{Method: "PUT", URL: hostURL(u), Err: err}
	}
	if u.Scheme != "https" {
		return &putConn{Conn: raw, tcp: raw}, nil
	}
	conf := &tls.Config{}
	if tr.TLSClientConfig != nil {
		conf = tr.TLSClientConfig.Clone()
	}
	if conf.ServerName == "" || foreign {
		conf.ServerName = host
	}
	conf.NextProtos = nil
	tc := tls.Client(raw, conf)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		return nil, &TransportError{Method: "PUT", URL: hostURL(u), Err: err}
	}
	return &putConn{Conn: tc, tcp: raw}, nil
}

// hostURL is u without its query, which holds the session.
func hostURL(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

// transferTask creates the task of a transfer and returns it with the URL
// of path carrying query, session_id and task_id.
func (c *Client) transferTask(ctx context.Context, path string, query url.Values, label string) (Ref, string, error) {
	sess, base, err := c.ensureSession(ctx, "")
	if err != nil {
		return "", "", err
	}
	var task Ref
	if err := c.CallInto(ctx, &task, "task.create", label, "xorest HTTP transfer "+path); err != nil {
		return "", "", fmt.Errorf("task.create: %w", err)
	}
	u := *base
	u.Path = path
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("session_id", string(sess))
	q.Set("task_id", string(task))
	u.RawQuery = q.Encode()
	return task, u.String(), nil
}

// dropTask destroys task, best effort and even when ctx has ended. If
// cancel is set and the task is still pending, it is cancelled first and
// given a few seconds to end: XAPI only marks a pending task for
// destruction.
func (c *Client) dropTask(ctx context.Context, task Ref, cancel bool) {
	dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	if cancel {
		if rec, err := GetRecord[Task](dctx, c, task); err == nil && rec.Status == TaskPending {
			_ = c.CancelTask(dctx, task)
			wctx, wstop := context.WithTimeout(dctx, 5*time.Second)
			_, _ = c.WaitTask(wctx, task)
			wstop()
		}
	}
	_ = c.DestroyTask(dctx, task)
}

// taskError returns the error of task if it has finished unsuccessfully,
// waiting briefly for it: XAPI fails the task as it answers.
func (c *Client) taskError(ctx context.Context, task Ref) error {
	wctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	rec, err := c.WaitTaskRecord(wctx, task)
	if err != nil || rec.Status == TaskSuccess {
		return nil
	}
	_, terr := taskOutcome(task, rec)
	return terr
}

// statusError is the error of an answer other than 200: the task's error if
// it has one, else the status and the start of the body. It closes the
// body.
func (c *Client) statusError(ctx context.Context, task Ref, what string, resp *http.Response) error {
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if err := c.taskError(ctx, task); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w: HTTP %s: %q", what, ErrTransfer, resp.Status, bytes.TrimSpace(head))
}

// redact hides the session ref in a transport error, whose text carries
// the request URL.
func (c *Client) redact(err error) error {
	sess := c.Session()
	if sess == "" {
		return err
	}
	msg := err.Error()
	for _, form := range []string{string(sess), url.QueryEscape(string(sess))} {
		msg = strings.ReplaceAll(msg, form, "[redacted]")
	}
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

// redacted is an error with a redacted text that still unwraps.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// errReader records the first error other than io.EOF of r and how many
// bytes were read.
type errReader struct {
	r   io.Reader
	n   int64
	mu  sync.Mutex
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.mu.Lock()
	e.n += int64(n)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	return n, err
}

// count is the number of bytes read so far. The transport's write loop
// may still be reading after XAPI's early answer: read it under the lock.
func (e *errReader) count() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *errReader) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Progress is a task created by the client for a transfer XAPI does not
// run itself (e.g. a disk read over NBD), so that it shows with its
// progress like XAPI's own transfers (XO's "Exporting content of VDI …
// using NBD"). Its calls are best effort: a failed task.set_progress
// does not stop the transfer.
type Progress struct {
	// Task is the task, created with task.create.
	Task Ref

	c        *Client
	ctx      context.Context
	total    int64
	mu       sync.Mutex
	done     int64
	reported int64
}

// StartProgress creates a task labelled label for a transfer of total
// bytes.
func (c *Client) StartProgress(ctx context.Context, label, description string, total int64) (*Progress, error) {
	var task Ref
	if err := c.CallInto(ctx, &task, "task.create", label, description); err != nil {
		return nil, fmt.Errorf("task.create: %w", err)
	}
	return &Progress{Task: task, c: c, ctx: ctx, total: total}, nil
}

// Add counts n more bytes and sets the task's progress when it moved by at
// least 1% (task.set_progress, XAPI 8.2 and later).
func (p *Progress) Add(n int64) {
	p.mu.Lock()
	p.done += n
	done := p.done
	report := p.total > 0 && (done-p.reported)*100 >= p.total
	if report {
		p.reported = done
	}
	p.mu.Unlock()
	if report {
		_, _ = p.c.Call(p.ctx, "task.set_progress", p.Task, min(float64(done)/float64(p.total), 1))
	}
}

// Reader returns r counting what is read from it with Add.
func (p *Progress) Reader(r io.Reader) io.Reader { return &progressReader{r: r, p: p} }

// Done finishes the task, as a success when err is nil, else as a failure
// carrying err's text, and destroys it.
func (p *Progress) Done(err error) {
	ctx, stop := context.WithTimeout(context.WithoutCancel(p.ctx), 10*time.Second)
	defer stop()
	if err == nil {
		_, _ = p.c.Call(ctx, "task.set_progress", p.Task, 1.0)
		_, _ = p.c.Call(ctx, "task.set_status", p.Task, TaskSuccess)
	} else {
		_, _ = p.c.Call(ctx, "task.set_error_info", p.Task, []string{"INTERNAL_ERROR", err.Error()})
		_, _ = p.c.Call(ctx, "task.set_status", p.Task, TaskFailure)
	}
	_ = p.c.DestroyTask(ctx, p.Task)
}

// progressReader counts the bytes read from r.
type progressReader struct {
	r io.Reader
	p *Progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		pr.p.Add(int64(n))
	}
	return n, err
}
