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
	"net/url"
	"strings"
	"sync"
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
// (e.g. VM_BAD_POWER_STATE), else one matching ErrTransfer. Redirects (302
// to the host that sees the SR) are followed with the same query.
func (c *Client) GetExport(ctx context.Context, path string, query url.Values, label string) (*Download, error) {
	task, u, err := c.transferTask(ctx, path, query, label)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		c.dropTask(ctx, task, false)
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := c.long.Do(req)
	if err != nil {
		c.dropTask(ctx, task, true)
		return nil, fmt.Errorf("GET %s: %w", path, c.redact(err))
	}
	if resp.StatusCode != http.StatusOK {
		err := c.statusError(ctx, task, "GET "+path, resp)
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
			err = fmt.Errorf("GET %s: %w: 200 with an HTTP answer in the body: %q", path, ErrTransfer, strings.TrimSpace(line))
		}
		return nil, err
	}
	return &Download{Task: task, Header: resp.Header, c: c, ctx: ctx, resp: resp, br: br}, nil
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
// Content-Length; XAPI refuses chunked bodies. XAPI answers 200 before
// reading the body: the body is still sent, the answer read to its end,
// and the outcome is the task's.
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
	task, u, err := c.transferTask(ctx, path, query, label)
	if err != nil {
		return nil, 0, err
	}
	finished := false
	defer func() { c.dropTask(ctx, task, !finished) }()

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

// putSized sends src, of exactly size bytes, with net/http.
func (c *Client) putSized(ctx context.Context, task Ref, what, u string, src *errReader, size int64) error {
	var rd io.Reader = src
	if size == 0 {
		rd = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, rd)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.long.Do(req)
	if err != nil {
		if src.failure() != nil {
			return nil
		}
		if terr := c.taskError(ctx, task); terr != nil {
			return &taskFailure{terr}
		}
		return c.redact(err)
	}
	if resp.StatusCode != http.StatusOK {
		return &taskFailure{c.statusError(ctx, task, what, resp)}
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if src.count() < size && rerr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// maxRedirects bounds the 302s followed by putStream.
const maxRedirects = 3

// putStream sends src, of unknown length, on a connection of its own with
// a Content-Length of 1 PiB, once XAPI has answered 200, then closes its
// side and reads the answer to its end (XAPI closes the connection when
// the import is done).
func (c *Client) putStream(ctx context.Context, task Ref, what, rawURL string, src *errReader) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	for redirects := 0; ; redirects++ {
		conn, br, resp, err := c.startPut(ctx, u)
		if err != nil {
			if terr := c.taskError(ctx, task); terr != nil {
				return &taskFailure{terr}
			}
			return c.redact(err)
		}
		if resp.StatusCode == http.StatusFound && redirects < maxRedirects {
			loc, lerr := resp.Location()
			_ = conn.Close()
			if lerr != nil {
				return fmt.Errorf("%w: 302 without a usable Location: %w", ErrTransfer, lerr)
			}
			// XAPI's Location carries the same query; keep ours in any case.
			loc.RawQuery = u.RawQuery
			u = loc
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err := c.statusError(ctx, task, what, resp)
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

// startPut dials the host of u and writes the headers of a PUT of unknown
// length, then reads XAPI's answer, which XAPI sends before reading the
// body.
func (c *Client) startPut(ctx context.Context, u *url.URL) (*putConn, *bufio.Reader, *http.Response, error) {
	conn, err := c.dialTransfer(ctx, u)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{Method: http.MethodPut, URL: u}
	head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\nUser-Agent: xorest\r\nConnection: close\r\n\r\n",
		u.RequestURI(), u.Host, unknownLength)
	if _, err := io.WriteString(conn, head); err != nil {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("writing the request: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, fmt.Errorf("%w: reading the answer: %w", ErrTransfer, err)
	}
	return conn, br, resp, nil
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
// TLS settings of the Client's transports. A proxy is not supported for
// this kind of request.
func (c *Client) dialTransfer(ctx context.Context, u *url.URL) (*putConn, error) {
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
	if conf.ServerName == "" {
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
