package xapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// PutImport sends body, of exactly size bytes, to XAPI's HTTP handler path
// (e.g. "/import" or "/import_raw_vdi") with query, inside a task labelled
// label, and returns the task's result decoded as WaitTask does (the new
// VM refs for /import, the VDI ref for /import_raw_vdi). The request has a
// Content-Length, never chunked (XAPI refuses chunked bodies). XAPI
// answers 200 before reading the body: the body is still sent, the answer
// read to its end, and the outcome is the task's. An error of body itself
// is returned before the task's (which would be a consequence). If ctx
// ends the task is cancelled. The task is destroyed in every case.
func (c *Client) PutImport(ctx context.Context, path string, query url.Values, body io.Reader, size int64, label string) (any, error) {
	if size < 0 {
		return nil, fmt.Errorf("PUT %s: %w: unknown body size", path, ErrTransfer)
	}
	task, u, err := c.transferTask(ctx, path, query, label)
	if err != nil {
		return nil, err
	}
	finished := false
	defer func() { c.dropTask(ctx, task, !finished) }()

	src := &errReader{r: io.LimitReader(body, size)}
	var rd io.Reader = src
	if size == 0 {
		rd = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, rd)
	if err != nil {
		return nil, fmt.Errorf("PUT %s: %w", path, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.long.Do(req)
	if err != nil {
		if berr := src.failure(); berr != nil {
			return nil, fmt.Errorf("PUT %s: reading the body: %w", path, berr)
		}
		if terr := c.taskError(ctx, task); terr != nil {
			finished = true
			return nil, terr
		}
		return nil, fmt.Errorf("PUT %s: %w", path, c.redact(err))
	}
	if resp.StatusCode != http.StatusOK {
		finished = true
		return nil, c.statusError(ctx, task, "PUT "+path, resp)
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if berr := src.failure(); berr != nil {
		return nil, fmt.Errorf("PUT %s: reading the body: %w", path, berr)
	}
	if src.count() < size && rerr != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("PUT %s: %w", path, ctx.Err())
	}
	v, err := c.WaitTask(ctx, task)
	if err != nil {
		if ctx.Err() == nil {
			finished = true
		}
		return nil, err
	}
	finished = true
	return v, nil
}

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
