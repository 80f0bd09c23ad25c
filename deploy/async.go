package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// RunFunc runs one job: work that outlives the request that asked for it
// (an export to S3, an import from a URL). job is opaque to this package;
// the caller encodes what the job is. Its state, progress and result
// belong in the XAPI task that the request created, so that any instance
// can report on it: RunFunc's error is only logged.
type RunFunc func(ctx context.Context, job []byte) error

// MaxJob is the largest job Dispatch accepts. Lambda accepts asynchronous
// invocations up to 256 KB (the envelope and base64 included), and a job
// only needs to name its task and its parameters.
const MaxJob = 128 << 10

// ErrJobTooLarge is returned by Dispatch for a job over MaxJob.
var ErrJobTooLarge = errors.New("deploy: job too large")

// Async runs jobs after the request that dispatched them has been
// answered: in the standalone binary as a goroutine of the same process,
// on Lambda as an asynchronous invocation (InvocationType Event) of the
// same function, which NewHandler recognises and runs through the same
// RunFunc. Build it with NewLocalAsync or NewLambdaAsync; it is safe for
// concurrent use.
type Async struct {
	run      RunFunc
	log      *slog.Logger
	client   *lambda.Client // nil: run in goroutines
	function string
	wg       sync.WaitGroup
}

// NewLocalAsync runs each job in a goroutine of this process. Its context
// is detached from the dispatching request (values kept, cancellation
// dropped); Wait waits for the jobs still running.
func NewLocalAsync(run RunFunc, log *slog.Logger) *Async {
	return &Async{run: run, log: orDiscard(log)}
}

// NewLambdaAsync runs each job as an asynchronous invocation of function
// (a name or ARN: the function itself, AWS_LAMBDA_FUNCTION_NAME) through
// client. The function's role needs lambda:InvokeFunction on itself.
// A job that fails is logged and reported to Lambda as done, so that
// Lambda does not run it again (a second export of the same task would
// race the first): its outcome belongs in its task. Only a crash or a
// timeout of the invocation is retried, as the function's
// EventInvokeConfig says (template.yaml sets no retries).
func NewLambdaAsync(client *lambda.Client, function string, run RunFunc, log *slog.Logger) (*Async, error) {
	if client == nil || function == "" {
		return nil, errors.New("deploy: NewLambdaAsync needs a Lambda client and a function name")
	}
	return &Async{run: run, log: orDiscard(log), client: client, function: function}, nil
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// jobKey is the only field of a job event. API Gateway and Function URL
// events are wrapped by AWS in their own envelope, so no HTTP client can
// send one: only a caller allowed to invoke the function can.
const jobKey = "xorestAsyncJob"

type jobEvent struct {
	Job []byte `json:"xorestAsyncJob"` // base64 in JSON
}

// Dispatch starts job and returns once it is handed over: immediately in
// the binary, after Lambda accepted the invocation (HTTP 202) on Lambda.
// An error means the job will not run.
func (a *Async) Dispatch(ctx context.Context, job []byte) error {
	if len(job) > MaxJob {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrJobTooLarge, len(job), MaxJob)
	}
	if a.client == nil {
		job = append([]byte(nil), job...)
		a.wg.Go(func() {
			if err := a.run(context.WithoutCancel(ctx), job); err != nil {
				a.log.Error("async job failed", "error", err)
			}
		})
		return nil
	}
	payload, err := json.Marshal(jobEvent{Job: job})
	if err != nil {
		return fmt.Errorf("deploy: encoding a job: %w", err)
	}
	out, err := a.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(a.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("deploy: invoking %s asynchronously: %w", a.function, err)
	}
	if out.StatusCode != 202 {
		return fmt.Errorf("deploy: invoking %s asynchronously: status %d, want 202", a.function, out.StatusCode)
	}
	return nil
}

// Wait waits for the jobs that run in this process (NewLocalAsync) to
// end; on Lambda it returns at once.
func (a *Async) Wait() { a.wg.Wait() }

// jobResult is what a job invocation returns (asynchronous invocations
// discard it; it shows in tests and direct invocations).
type jobResult struct {
	Done  bool   `json:"done"`
	Error string `json:"error,omitempty"`
}

// runEvent runs a job received as a Lambda event, within that invocation.
func (a *Async) runEvent(ctx context.Context, job []byte) (any, error) {
	if err := a.run(ctx, job); err != nil {
		a.log.Error("async job failed", "error", err)
		return jobResult{Error: err.Error()}, nil
	}
	return jobResult{Done: true}, nil
}
