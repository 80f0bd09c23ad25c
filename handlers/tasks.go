package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// Tasks are XAPI tasks in XO's task shape (xo's task kind, reference
// §C.1); their id is the task's uuid. Their routes besides the list:
//
//   - GET /tasks/<id>?wait=result|true answers when the task has ended
//     (at once if it has), any other wait value at its next change; a wait
//     is bounded by Config.WaitTimeout and the request's deadline (a
//     gateway's limit, less a margin), after which the task is answered
//     as it is then (still pending), and by the client leaving. A task
//     destroyed while waited for is a 404.
//   - DELETE /tasks/<id> destroys the task (task.destroy), 204. A pending
//     task is first cancelled (task.cancel) and waited for, at most
//     deleteWait (and Config.WaitTimeout), since XAPI only marks a pending
//     task for destruction (task.destroy); if it is still pending then
//     (work that ignores cancellation, e.g. a task.create task), it stays
//     cancelled and marked, and the answer is 202: DELETE it again once it
//     has ended.
//   - POST /tasks/<id>/actions/abort cancels the task (task.cancel), as an
//     action: by default through Async.task.cancel, answering 202 with
//     {"taskId": <the abort task's uuid>} and a Location to it (XO's
//     [NEW] action shape); with ?sync, synchronously, answering 204. A
//     task that is not pending cannot be aborted: 409 incorrect state.

// deleteWait bounds how long DELETE /tasks/<id> waits for a cancelled
// task to end.
const deleteWait = 30 * time.Second

// taskRoutes returns the routes of one task (the list is a collection
// route).
func (s *server) taskRoutes() []route {
	base := BasePath + "/tasks/{id}"
	return []route{
		{
			method: "GET", pattern: base, handler: s.getTask, tag: "tasks",
			summary: "Get one task; with wait=result (or true), when it ends; with another wait value, at its next change",
			params:  []string{"fields", "wait"},
			resp:    objectResp("The task (XO's task shape), with href"),
		},
		{
			method: "DELETE", pattern: base, handler: s.deleteTask, tag: "tasks",
			summary: "Destroy a task (a pending one is cancelled first)",
			resp:    respDoc{status: http.StatusNoContent, description: "The task is destroyed (202 when it was cancelled but has not ended yet: XAPI destroys it when it ends)"},
		},
		{
			method: "POST", pattern: base + "/actions/abort", handler: s.abortTask, tag: "tasks",
			summary: "Abort a pending task (XAPI task.cancel)",
			params:  []string{"sync"},
			resp: respDoc{status: http.StatusAccepted, description: "The abort runs as a task of its own: {taskId} and its Location (204 with sync)",
				schema: map[string]any{"type": "object", "properties": map[string]any{"taskId": map[string]any{"type": "string"}}}},
		},
	}
}

// taskHref is the URL of a task.
func taskHref(id string) string { return BasePath + "/tasks/" + id }

// getTask answers GET /rest/v0/tasks/<id>[?wait=…].
func (s *server) getTask(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.pools()
	if err != nil {
		return err
	}
	q := queryOf(r)
	id := r.PathValue("id")
	var task xo.Object
	switch q.Wait {
	case WaitNone:
		task, _, err = pools.Object(r.Context(), "task", id)
	default:
		task, err = s.waitTask(r.Context(), pools, id, q.Wait == WaitResult, s.waitBound(r.Context()))
	}
	if err != nil {
		return err
	}
	return WriteObject(w, q.Fields, task, taskHref(idString(task["id"])))
}

// taskEnded reports whether a task (XO shape) has ended.
func taskEnded(task xo.Object) bool { return task["status"] != "pending" }

// waitTask returns the task once it has ended (untilEnd), or at its next
// change, bounded by bound (then it returns the task as it is) and by
// ctx.
func (s *server) waitTask(ctx context.Context, pools *xo.Pools, id string, untilEnd bool, bound time.Duration) (xo.Object, error) {
	sub := pools.Watch(xo.WatchOptions{Kinds: []string{"task"}})
	defer sub.Close()
	task, _, err := pools.Object(ctx, "task", id)
	if err != nil || taskEnded(task) { // an ended task changes no more
		return task, err
	}
	// Changes queued by now were applied before task was read: they are
	// not its next change.
	for range len(sub.Changes()) {
		if _, ok := <-sub.Changes(); !ok {
			break
		}
	}
	id = idString(task["id"]) // the uuid, when id was a ref
	hook, _ := ctx.Value(waitHookKey{}).(func())
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		if hook != nil {
			hook()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for task %s: %w", id, context.Cause(ctx))
		case <-timer.C:
			return task, nil
		case ch, ok := <-sub.Changes():
			if !ok {
				return nil, Unavailable("waiting for task "+id+" failed", sub.Err())
			}
			switch {
			case ch.Op == "reset":
				// Changes may have been missed: read the task again.
				if task, _, err = pools.Object(ctx, "task", id); err != nil {
					return nil, err
				}
				if !untilEnd || taskEnded(task) {
					return task, nil
				}
			case ch.ID != id:
			case ch.Op == "remove":
				return nil, NotFound("task", id)
			case !untilEnd || taskEnded(ch.Object):
				return ch.Object, nil
			default:
				task = ch.Object
			}
		}
	}
}

// waitHookKey is the context key of a func() that waitTask calls each time
// it blocks: tests use it to know that a waiter is waiting.
type waitHookKey struct{}

// taskRef finds a task and the XAPI ref and client to act on it.
func (s *server) taskRef(ctx context.Context, id string) (xo.Object, xapi.Ref, *xapi.Client, error) {
	pools, err := s.pools()
	if err != nil {
		return nil, "", nil, err
	}
	task, pool, err := pools.Object(ctx, "task", id)
	if err != nil {
		return nil, "", nil, err
	}
	ref, ok := pool.Ref(idString(task["id"]))
	if !ok {
		return nil, "", nil, NotFound("task", id)
	}
	return task, ref, pool.Client(), nil
}

// deleteTask answers DELETE /rest/v0/tasks/<id>.
func (s *server) deleteTask(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	task, ref, client, err := s.taskRef(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := idString(task["id"])
	status := http.StatusNoContent
	if !taskEnded(task) {
		if err := client.CancelTask(ctx, ref); err != nil {
			return fmt.Errorf("cancelling task %s: %w", id, err)
		}
		wait := min(deleteWait, s.cfg.WaitTimeout)
		wctx, cancel := context.WithTimeout(ctx, wait)
		task, err = s.waitTask(wctx, s.cfg.Pools, id, true, wait)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
			w.WriteHeader(http.StatusNoContent) // destroyed meanwhile
			return nil
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			status = http.StatusAccepted
		case err != nil:
			return err
		case !taskEnded(task):
			status = http.StatusAccepted
		}
	}
	if err := client.DestroyTask(ctx, ref); err != nil {
		return fmt.Errorf("destroying task %s: %w", id, err)
	}
	w.WriteHeader(status)
	return nil
}

// abortTask answers POST /rest/v0/tasks/<id>/actions/abort.
func (s *server) abortTask(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	task, ref, client, err := s.taskRef(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := idString(task["id"])
	if taskEnded(task) {
		return IncorrectState(map[string]any{"actual": task["status"], "expected": "pending", "object": id, "property": "status"})
	}
	if queryOf(r).Sync {
		if err := client.CancelTask(ctx, ref); err != nil {
			return fmt.Errorf("cancelling task %s: %w", id, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	abort, err := client.CallAsync(ctx, "task.cancel", ref)
	if err != nil {
		return fmt.Errorf("cancelling task %s: %w", id, err)
	}
	var abortID string
	if err := client.CallInto(ctx, &abortID, "task.get_uuid", abort); err != nil {
		return fmt.Errorf("cancelling task %s: task.get_uuid: %w", id, err)
	}
	w.Header().Set("Location", taskHref(abortID))
	w.Header().Set("Content-Type", contentJSON)
	w.WriteHeader(http.StatusAccepted)
	_, err = w.Write(appendJSON(nil, map[string]any{"taskId": abortID}, true, 0))
	return err
}
