package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/xorest/xorest/xo/xapi"
)

// putRawVDI writes data at the start of vdi through XAPI's HTTP handler
// PUT /import_raw_vdi?vdi=<ref>&format=raw&session_id=…&task_id=…
// (reference xapi.md §7.1, §7.5), the way XO's VDI_importContent does:
//
//   - the body has a Content-Length (XAPI refuses chunked bodies), and may
//     be smaller than the VDI;
//   - the transfer runs in a task created here with task.create and passed
//     as task_id, because XAPI answers 200 before it reads the body and an
//     error after that only shows in the task: the outcome is the task's
//     (status, error_info), read after the body was sent and the answer
//     read to its end; the task is destroyed afterwards;
//   - an answer other than 200 is an error, XAPI's task error if the task
//     has one (e.g. HANDLE_INVALID for an unknown VDI, 404), else the
//     status and the start of the body.
//
// hc carries the request; it must trust the pool's certificate for https
// URLs. Redirects to another host (302, for a VDI whose SR this host does
// not see) are followed by hc with the same query, so with the same
// session and task.
func putRawVDI(ctx context.Context, hc *http.Client, c *xapi.Client, vdi xapi.Ref, data []byte) error {
	if c.Session() == "" {
		if err := c.Login(ctx); err != nil {
			return err
		}
	}
	var task xapi.Ref
	if err := c.CallInto(ctx, &task, "task.create", "xorest: import_raw_vdi", "raw import into "+string(vdi)); err != nil {
		return fmt.Errorf("task.create: %w", err)
	}
	defer func() { _ = c.DestroyTask(context.WithoutCancel(ctx), task) }()

	u, err := url.Parse(c.URL())
	if err != nil {
		return fmt.Errorf("XAPI URL %q: %w", c.URL(), err)
	}
	u.Path = "/import_raw_vdi"
	u.RawQuery = url.Values{
		"vdi": {string(vdi)}, "format": {"raw"}, "session_id": {string(c.Session())}, "task_id": {string(task)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("import_raw_vdi %s: %w", vdi, err)
	}
	req.ContentLength = int64(len(data)) // also for an empty body: never chunked
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("import_raw_vdi %s: %w", vdi, redactSession(err, c.Session()))
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rec, terr := xapi.GetRecord[xapi.Task](ctx, c, task)
		if terr == nil && rec.Status != xapi.TaskPending {
			if _, err := c.WaitTask(ctx, task); err != nil {
				return fmt.Errorf("import_raw_vdi %s: %w", vdi, err)
			}
		}
		return fmt.Errorf("import_raw_vdi %s: HTTP %s: %q", vdi, resp.Status, head)
	}
	if _, err := c.WaitTask(ctx, task); err != nil {
		return fmt.Errorf("import_raw_vdi %s: %w", vdi, err)
	}
	return nil
}

// redactSession hides the session ref in a transport error, whose text
// carries the request URL; the error still unwraps to err.
func redactSession(err error, session xapi.Ref) error {
	msg := err.Error()
	for _, form := range []string{string(session), url.QueryEscape(string(session))} {
		if form != "" {
			msg = strings.ReplaceAll(msg, form, "[redacted]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error with a redacted text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
