package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// Jobs. Work that outlives its request (actions, imports from a URL) is a
// job: the request creates the XAPI task the job reports on, hands the job
// to Config.Dispatch (a goroutine of this process when nil; on Lambda an
// asynchronous invocation of the function, which runs it through
// Server.RunJob) and answers 202 with the task's URL. The job's state,
// progress and outcome live in that task only, so any instance can answer
// for it, and ?sync waits for the task, not for a goroutine: a waiting
// request stops before the gateway gives up (Config.WaitTimeout, and the
// request context's deadline less jobAnswerMargin) and then answers the
// 202 it would have answered without ?sync.
//
// A job is small JSON (deploy.MaxJob): its kind, the pool, the task and the
// kind's parameters (for an action: the collection, the action, the
// object's uuid and the request's body). The runner validates them again:
// the job may run on another instance, after the pool changed.

// job is one unit of background work, as dispatched and as run.
type job struct {
	Kind   string          `json:"kind"`             // a key of jobRunners
	Pool   string          `json:"pool"`             // the pool's uuid
	Task   xapi.Ref        `json:"task"`             // the task the job reports on
	Params json.RawMessage `json:"params,omitempty"` // the kind's parameters
}

// jobRunner runs one kind of job in its pool. Its result (a JSON-ready
// value, nil for none) or its error is recorded on the job's task by
// RunJob.
type jobRunner func(ctx context.Context, s *server, pool *xo.Pool, j *job) (result any, err error)

// jobRunners returns the runner of every kind of job.
func jobRunners() map[string]jobRunner {
	return map[string]jobRunner{
		"action":           runActionJob,
		jobImportVMURL:     runURLImportJob,
		jobImportVDIURL:    runURLImportJob,
		jobImportNewVDIURL: runURLImportJob,
	}
}

// jobStart describes a job to start from a request.
type jobStart struct {
	Pool      *xo.Pool
	Name      string // the task's name_label
	AppliesTo string // uuid of the object the task is about ("" for none)
	Kind      string // a key of jobRunners
	Params    any    // the kind's parameters, encoded as JSON
	// Sync: wait for the job's end (bounded) and answer with Done.
	Sync bool
	// Done writes the answer of a job that succeeded within a ?sync wait;
	// result is the task's result as JSON values (nil when there is none).
	Done func(w http.ResponseWriter, result any) error
}

// MaxJob is the largest job startJob dispatches, whatever Config.Dispatch
// is, so that a request behaves the same in every deployment: Lambda
// accepts asynchronous invocations up to 256 KB, envelope and base64
// included (deploy.MaxJob is the same bound).
const MaxJob = 128 << 10

// jobEnvelope bounds the members of a job besides its parameters.
const jobEnvelope = 1 << 10

// jobAnswerMargin is how long before its context's deadline a waiting
// request stops waiting, to have time to answer.
const jobAnswerMargin = 2 * time.Second

// jobEndMargin is how long before its context's deadline RunJob stops the
// job, to have time to record the outcome (and for the job to clean up:
// abort an S3 upload, destroy what it created).
const jobEndMargin = 15 * time.Second

// endTaskTimeout bounds the recording of a job's outcome.
const endTaskTimeout = 10 * time.Second

// startJob creates the task, dispatches the job and answers: 202 with the
// task's URL (body and Location), or with Sync the job's outcome if it
// ends in time. A job that cannot be dispatched fails its task and the
// request.
func (s *server) startJob(w http.ResponseWriter, r *http.Request, st jobStart) error {
	params, err := json.Marshal(st.Params)
	if err != nil {
		return fmt.Errorf("encoding the parameters of a %s job: %w", st.Kind, err)
	}
	// Refused before the task exists; jobEnvelope leaves room for the
	// job's other members.
	if len(params) > MaxJob-jobEnvelope {
		return &Error{Kind: ErrTooLarge, Message: fmt.Sprintf("the request's parameters are too large to run as a job (%d bytes, at most %d)", len(params), MaxJob-jobEnvelope)}
	}
	ctx, cancel := detach(r.Context())
	defer cancel()
	c := st.Pool.Client()
	task, taskID, err := startTask(ctx, c, st.Name, st.AppliesTo)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(job{Kind: st.Kind, Pool: st.Pool.UUID(), Task: task, Params: params})
	if err == nil {
		err = s.dispatch(ctx, payload)
	}
	if err != nil {
		err = fmt.Errorf("starting the %s job of task %s: %w", st.Kind, taskID, err)
		endTask(ctx, c, task, nil, err)
		return err
	}
	if st.Sync {
		answered, err := s.answerJob(w, r, taskID, st.Done)
		if answered || err != nil {
			return err
		}
	}
	href := taskHref(taskID)
	w.Header().Set("Location", href)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	_, err = w.Write([]byte(href))
	return err
}

// dispatch hands a job over to Config.Dispatch, or runs it in a goroutine
// of this process, detached from the request.
func (s *server) dispatch(ctx context.Context, payload []byte) error {
	if s.cfg.Dispatch != nil {
		return s.cfg.Dispatch(ctx, payload)
	}
	jctx, cancel := context.WithTimeout(s.jobsCtx, detachedTimeout)
	s.jobs.Go(func() {
		defer cancel()
		if err := s.runJob(jctx, payload); err != nil {
			s.log.Error("job failed", "error", logMessage(err))
		}
	})
	return nil
}

// answerJob waits for the task of a ?sync job, bounded by
// Config.WaitTimeout and the request's deadline, and answers with its
// outcome. It reports false, having written nothing, when the job is
// still running at the bound.
func (s *server) answerJob(w http.ResponseWriter, r *http.Request, taskID string, done func(http.ResponseWriter, any) error) (bool, error) {
	ctx := r.Context()
	task, err := s.waitTask(ctx, s.cfg.Pools, taskID, true, s.waitBound(ctx))
	switch {
	case err != nil && ctx.Err() != nil:
		return true, fmt.Errorf("the client left; the job goes on as task %s: %w", taskID, context.Cause(ctx))
	case err != nil:
		return true, err
	case !taskEnded(task):
		return false, nil
	}
	if task["status"] == "success" {
		return true, done(w, task["result"])
	}
	return true, taskFailure(task)
}

// waitBound is how long a request may wait for a task: Config.WaitTimeout,
// cut to leave jobAnswerMargin before ctx's deadline (a gateway's limit).
func (s *server) waitBound(ctx context.Context) time.Duration {
	bound := s.cfg.WaitTimeout
	if deadline, ok := ctx.Deadline(); ok {
		bound = max(min(bound, time.Until(deadline)-jobAnswerMargin), 0)
	}
	return bound
}

// taskFailure is the error of a failed or cancelled task (XO shape): an
// *Error of its kind for the errors endTask recorded from this package,
// else the XAPI error.
func taskFailure(task xo.Object) error {
	res, _ := task["result"].(map[string]any)
	code, _ := res["code"].(string)
	var params []string
	if ps, ok := res["params"].([]any); ok {
		for _, p := range ps {
			s, _ := p.(string)
			params = append(params, s)
		}
	}
	if code == "" {
		code = "INTERNAL_ERROR"
	}
	if kind := jobErrorKind(code); kind != nil {
		e := &Error{Kind: kind}
		if len(params) > 0 {
			e.Message = params[0]
		}
		return e
	}
	return &xapi.Error{Code: code, Params: params}
}

// jobErrorCodes are the codes that endTask records for this package's
// error kinds, so that a ?sync answer read from the task has the status
// the error had in the job.
var jobErrorCodes = []struct {
	kind error
	code string
}{
	{ErrBadRequest, "XOREST_BAD_REQUEST"},
	{ErrForbidden, "XOREST_FORBIDDEN"},
	{ErrNotFound, "XOREST_NOT_FOUND"},
	{ErrIncorrectState, "XOREST_INCORRECT_STATE"},
	{ErrLengthRequired, "XOREST_LENGTH_REQUIRED"},
	{ErrTooLarge, "XOREST_TOO_LARGE"},
	{ErrInvalidParameters, "XOREST_INVALID_PARAMETERS"},
	{ErrNotImplemented, "XOREST_NOT_IMPLEMENTED"},
	{ErrUnavailable, "XOREST_UNAVAILABLE"},
	{ErrBadGateway, "XOREST_BAD_GATEWAY"},
}

// jobErrorCode is the task error code of an error of this package's kinds
// ("" for other errors).
func jobErrorCode(err error) string {
	for _, row := range jobErrorCodes {
		if errors.Is(err, row.kind) {
			return row.code
		}
	}
	return ""
}

// jobErrorKind is the kind of a code of jobErrorCodes, or nil.
func jobErrorKind(code string) error {
	for _, row := range jobErrorCodes {
		if row.code == code {
			return row.kind
		}
	}
	return nil
}

// runJob runs a job payload and records its outcome on its task. The
// error is for the log; only a payload that names no task leaves no trace.
func (s *server) runJob(ctx context.Context, payload []byte) error {
	var j job
	if err := json.Unmarshal(payload, &j); err != nil {
		return fmt.Errorf("decoding a job: %w", err)
	}
	if j.Task == "" || j.Pool == "" {
		return fmt.Errorf("a %q job without task or pool", j.Kind)
	}
	pool, err := s.jobPool(ctx, &j)
	if pool == nil {
		return fmt.Errorf("job of task %s: pool %s: %w", j.Task, j.Pool, err)
	}
	var result any
	if err == nil {
		result, err = s.runKind(ctx, pool, &j)
	}
	// The outcome is recorded even when ctx has ended (a shutdown).
	ectx, stop := context.WithTimeout(context.WithoutCancel(ctx), endTaskTimeout)
	defer stop()
	endTask(ectx, pool.Client(), j.Task, result, err)
	if err != nil {
		return fmt.Errorf("%s job of task %s: %w", j.Kind, j.Task, err)
	}
	return nil
}

// jobPool returns the pool of a job. A job stopped before it began (ctx
// ended) gets the pool only if this process has loaded it, with ctx's
// cause as the error to record.
func (s *server) jobPool(ctx context.Context, j *job) (*xo.Pool, error) {
	pools, err := s.pools()
	if err != nil {
		return nil, err
	}
	pool, err := pools.Pool(ctx, j.Pool)
	if err != nil && ctx.Err() != nil {
		for _, p := range pools.All() {
			if p.UUID() == j.Pool {
				return p, context.Cause(ctx)
			}
		}
	}
	return pool, err
}

// runKind runs a job with the runner of its kind, stopping it
// jobEndMargin before ctx's deadline.
func (s *server) runKind(ctx context.Context, pool *xo.Pool, j *job) (any, error) {
	run, ok := jobRunners()[j.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown job kind %q", j.Kind)
	}
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		rctx, cancel = context.WithDeadline(ctx, deadline.Add(-jobEndMargin))
	}
	defer cancel()
	result, err := run(rctx, s, pool, j)
	switch {
	case err == nil:
	case errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		err = fmt.Errorf("the job reached its time limit (on Lambda, the function's timeout): %w", err)
	case context.Cause(ctx) != nil:
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return result, err
}

// actionJob is the parameters of an action's job.
type actionJob struct {
	Collection string                     `json:"collection"`
	Action     string                     `json:"action"`
	Object     string                     `json:"object"` // uuid
	Args       map[string]json.RawMessage `json:"args"`   // the request's body
}

// runActionJob runs an action: the object and the arguments are looked up
// and validated again, in the pool as runJob caught it up.
func runActionJob(ctx context.Context, s *server, pool *xo.Pool, j *job) (any, error) {
	var p actionJob
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return nil, fmt.Errorf("decoding an action job: %w", err)
	}
	c, act, ok := findAction(p.Collection, p.Action)
	if !ok {
		return nil, fmt.Errorf("no action %s of the %s", p.Action, p.Collection)
	}
	// The pool caught up when runJob looked it up: no second round trip.
	obj, err := pool.Object(c.kind, p.Object)
	if err != nil {
		return nil, err
	}
	ref, ok := pool.Ref(idString(obj["id"]))
	if !ok {
		return nil, NotFound(c.kind, p.Object)
	}
	args, refs, err := validateArgs(act, pool, p.Args)
	if err != nil {
		return nil, err
	}
	call := &actionCall{srv: s, task: j.Task, client: pool.Client(), pool: pool, ref: ref, obj: obj, args: args, refs: refs}
	return act.run(ctx, call)
}
