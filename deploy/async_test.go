package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/deploy/internal/testhandler"
)

// jobLog records the jobs a RunFunc ran.
type jobLog struct {
	mu   sync.Mutex
	jobs []string
	ctx  []error // ctx.Err() seen by each job
}

func (l *jobLog) run(ctx context.Context, job []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs = append(l.jobs, string(job))
	l.ctx = append(l.ctx, ctx.Err())
	if string(job) == "fail" {
		return errors.New("job asked to fail")
	}
	return nil
}

func TestLocalAsync(t *testing.T) {
	var log jobLog
	a := deploy.NewLocalAsync(log.run, nil)
	ctx, cancel := context.WithCancel(context.Background())
	job := []byte("export vm0")
	if err := a.Dispatch(ctx, job); err != nil {
		t.Fatal(err)
	}
	job[0] = 'X' // the caller may reuse its buffer
	cancel()     // the request ends before the job
	if err := a.Dispatch(context.Background(), []byte("fail")); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	if len(log.jobs) != 2 || !contains(log.jobs, "export vm0") || !contains(log.jobs, "fail") {
		t.Fatalf("jobs run: %q", log.jobs)
	}
	for i, err := range log.ctx {
		if err != nil {
			t.Errorf("job %q ran with a done context: %v", log.jobs[i], err)
		}
	}
	if err := a.Dispatch(context.Background(), make([]byte, deploy.MaxJob+1)); !errors.Is(err, deploy.ErrJobTooLarge) {
		t.Fatalf("oversized job: %v, want ErrJobTooLarge", err)
	}
}

// fakeLambda is a Lambda API endpoint that accepts Invoke calls and keeps
// their payloads.
type fakeLambda struct {
	t        *testing.T
	status   int
	mu       sync.Mutex
	payloads [][]byte
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/xorest-fn/invocations" {
		f.t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if got := r.Header.Get("X-Amz-Invocation-Type"); got != "Event" {
		f.t.Errorf("X-Amz-Invocation-Type %q, want Event", got)
	}
	if r.Header.Get("Authorization") == "" {
		f.t.Error("unsigned Invoke request")
	}
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.payloads = append(f.payloads, b)
	f.mu.Unlock()
	if f.status != http.StatusAccepted {
		w.Header().Set("X-Amzn-Errortype", "ServiceException")
		w.WriteHeader(f.status)
		io.WriteString(w, `{"message":"boom"}`)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func newLambdaClient(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func TestLambdaAsync(t *testing.T) {
	fake := &fakeLambda{t: t, status: http.StatusAccepted}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	var log jobLog
	a, err := deploy.NewLambdaAsync(newLambdaClient(srv.URL), "xorest-fn", log.run, nil)
	if err != nil {
		t.Fatal(err)
	}
	job := []byte("{\"task\":\"OpaqueRef:1\",\"bytes\":\"\x00\xff\"}")
	if err := a.Dispatch(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if len(fake.payloads) != 1 {
		t.Fatalf("%d Invoke calls, want 1", len(fake.payloads))
	}
	if len(log.jobs) != 0 {
		t.Fatal("the job ran in the dispatching process")
	}

	// The invocation Lambda would make with that payload runs the job,
	// whatever the mode.
	for _, mode := range []deploy.Mode{deploy.ModeAuto, deploy.ModeV1, deploy.ModeV2, deploy.ModeStream} {
		fn, err := deploy.NewHandler(testhandler.New(), mode, a)
		if err != nil {
			t.Fatal(err)
		}
		out, err := fn(context.Background(), fake.payloads[0])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		if string(b) != `{"done":true}` {
			t.Errorf("%s: job answer %s", mode, b)
		}
	}
	if len(log.jobs) != 4 || log.jobs[0] != string(job) {
		t.Fatalf("jobs run: %q, want %q four times", log.jobs, job)
	}

	// A failing job is logged and reported done, so that Lambda does
	// not retry it.
	fn, _ := deploy.NewHandler(testhandler.New(), deploy.ModeAuto, a)
	out, err := fn(context.Background(), []byte(`{"xorestAsyncJob":"ZmFpbA=="}`))
	if b, _ := json.Marshal(out); err != nil || !bytes.Contains(b, []byte("job asked to fail")) {
		t.Fatalf("failing job: %s, %v", b, err)
	}

	// No Async: the job event is refused, not served as HTTP.
	fn, _ = deploy.NewHandler(testhandler.New(), deploy.ModeAuto, nil)
	if _, err := fn(context.Background(), fake.payloads[0]); err == nil {
		t.Fatal("job event accepted without an Async")
	}
}

func TestLambdaAsyncInvokeFails(t *testing.T) {
	fake := &fakeLambda{t: t, status: http.StatusInternalServerError}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	a, err := deploy.NewLambdaAsync(newLambdaClient(srv.URL), "xorest-fn", func(context.Context, []byte) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Dispatch(context.Background(), []byte("job")); err == nil {
		t.Fatal("Dispatch succeeded though Invoke failed")
	}
	if _, err := deploy.NewLambdaAsync(nil, "xorest-fn", nil, nil); err == nil {
		t.Fatal("NewLambdaAsync accepted a nil client")
	}
}

// TestJobEventOnlyAtTopLevel checks that an HTTP request cannot pass for
// a job: the job key inside a body or a header is just data.
func TestJobEventOnlyAtTopLevel(t *testing.T) {
	var log jobLog
	fn, err := deploy.NewHandler(testhandler.New(), deploy.ModeAuto, deploy.NewLocalAsync(log.run, nil))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	json.Unmarshal(fixture(t, "apigw-v2-action.json"), &ev)
	ev["body"] = `{"xorestAsyncJob":"ZmFpbA=="}`
	ev["isBase64Encoded"] = false
	ev["headers"].(map[string]any)["xorestasyncjob"] = "ZmFpbA=="
	raw, _ := json.Marshal(ev)
	out, err := fn(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	a := decodeAnswer(t, encodeAnswer(t, out))
	if a.status != http.StatusAccepted || len(log.jobs) != 0 {
		t.Fatalf("status %d, jobs %q: the HTTP event was taken for a job", a.status, log.jobs)
	}
}
