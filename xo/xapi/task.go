package xapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Task statuses (task_status_type).
const (
	TaskPending    = "pending"
	TaskSuccess    = "success"
	TaskFailure    = "failure"
	TaskCancelling = "cancelling"
	TaskCancelled  = "cancelled"
)

// CallAsync invokes "Async."+method (method without the prefix, e.g.
// "VM.clean_reboot") with the session prepended and returns the task ref.
// The work runs in XAPI; follow it with WaitTask, and destroy the task
// when done (CallAsyncWait does all three).
func (c *Client) CallAsync(ctx context.Context, method string, args ...any) (Ref, error) {
	method = strings.TrimPrefix(method, "Async.")
	var task Ref
	if err := c.CallInto(ctx, &task, "Async."+method, args...); err != nil {
		return "", err
	}
	return task, nil
}

// CallAsyncWait runs method as a task (CallAsync), waits for it
// (WaitTask), destroys the task and returns its decoded result. If ctx
// ends first, the task keeps running in XAPI and is not destroyed; the
// error then names it.
func (c *Client) CallAsyncWait(ctx context.Context, method string, args ...any) (any, error) {
	task, err := c.CallAsync(ctx, method, args...)
	if err != nil {
		return nil, err
	}
	v, err := c.WaitTask(ctx, task)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("task %s (%s): %w", task, method, err)
	}
	// best effort, like XO: a task left behind is reaped by XAPI's GC
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = c.Call(dctx, "task.destroy", task)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return v, nil
}

// WaitTask waits until task is finished and returns its result decoded
// from the XML-RPC fragment in task.result (xapi.md §5.3): a ref result
// ("<value>OpaqueRef:…</value>") gives the ref as a string, a set of refs
// gives []any, a void result gives "". A failed task gives its error_info
// as *Error; a cancelled one an *Error with Code TASK_CANCELLED; a task
// destroyed before it finished, ErrHandleInvalid. Use WaitTaskRecord for
// the whole final record.
func (c *Client) WaitTask(ctx context.Context, task Ref) (any, error) {
	rec, err := c.WaitTaskRecord(ctx, task)
	if err != nil {
		return nil, err
	}
	return taskOutcome(task, rec)
}

// taskOutcome turns a finished task record into a result or an error.
func taskOutcome(task Ref, rec *Task) (any, error) {
	switch rec.Status {
	case TaskSuccess:
		v, err := DecodeValue(rec.Result, nil)
		if err != nil {
			return nil, fmt.Errorf("task %s result: %w", task, err)
		}
		return v, nil
	case TaskCancelled:
		if len(rec.ErrorInfo) > 0 && rec.ErrorInfo[0] == ErrTaskCancelled.Code {
			return nil, newError(rec.ErrorInfo)
		}
		return nil, &Error{Code: ErrTaskCancelled.Code, Params: []string{string(task)}}
	default:
		return nil, newError(rec.ErrorInfo)
	}
}

// taskDone reports whether a task status is final.
func taskDone(status string) bool {
	return status == TaskSuccess || status == TaskFailure || status == TaskCancelled
}

// WaitTaskRecord waits until task is finished (success, failure or
// cancelled) and returns its final record, without interpreting it.
//
// It watches the task with event.from(["task/<ref>"]) on the Client's
// long-poll connections, so the wait does not occupy the connections of
// ordinary calls; on hosts without event.from it polls task.get_record
// (every 0.5 s, backing off to 5 s). The wait ends with ctx; the task
// itself is not cancelled then.
func (c *Client) WaitTaskRecord(ctx context.Context, task Ref) (*Task, error) {
	type taskEvent struct {
		Operation string `xapi:"operation"`
		Ref       Ref    `xapi:"ref"`
		Snapshot  *Task  `xapi:"snapshot"`
	}
	type batch struct {
		Events []taskEvent `xapi:"events"`
		Token  string      `xapi:"token"`
	}
	sub := []string{"task/" + string(task)}
	// the token first, then the record: no change can slip between them
	var b batch
	err := c.eventFromInto(ctx, &b, sub, "", 0)
	if errors.Is(err, ErrMessageMethodUnknown) {
		return c.pollTask(ctx, task)
	}
	if err != nil {
		return nil, err
	}
	token := b.Token
	rec, err := GetRecord[Task](ctx, c, task)
	if err != nil {
		return nil, err
	}
	for !taskDone(rec.Status) {
		b = batch{}
		err := c.eventFromInto(ctx, &b, sub, token, c.opts.EventTimeout)
		switch {
		case errors.Is(err, ErrEventsLost), errors.Is(err, ErrEventFromTokenParseFailure):
			token = ""
			if rec, err = GetRecord[Task](ctx, c, task); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		token = b.Token
		for _, ev := range b.Events {
			if ev.Ref != task {
				continue
			}
			if ev.Operation == "del" {
				return nil, fmt.Errorf("task %s destroyed before it finished: %w", task,
					&Error{Code: ErrHandleInvalid.Code, Params: []string{"task", string(task)}})
			}
			if ev.Snapshot != nil {
				rec = ev.Snapshot
			}
		}
	}
	return rec, nil
}

// pollTask waits for a task by polling task.get_record.
func (c *Client) pollTask(ctx context.Context, task Ref) (*Task, error) {
	delay := 500 * time.Millisecond
	for {
		rec, err := GetRecord[Task](ctx, c, task)
		if err != nil {
			return nil, err
		}
		if taskDone(rec.Status) {
			return rec, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}

// CancelTask asks XAPI to cancel task (task.cancel). Cancellation is
// cooperative: the task ends as cancelled when the work notices, or not at
// all; wait for it with WaitTask.
func (c *Client) CancelTask(ctx context.Context, task Ref) error {
	_, err := c.Call(ctx, "task.cancel", task)
	return err
}

// DestroyTask removes a finished task (task.destroy). On a pending task
// XAPI only marks it for destruction.
func (c *Client) DestroyTask(ctx context.Context, task Ref) error {
	_, err := c.Call(ctx, "task.destroy", task)
	return err
}
