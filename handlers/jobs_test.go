package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// heldJobs is a Config.Dispatch that keeps the jobs instead of running
// them, as a Lambda function's queue of asynchronous invocations would.
type heldJobs struct {
	mu   sync.Mutex
	jobs [][]byte
	err  error // returned by Dispatch when set
}

func (h *heldJobs) dispatch(_ context.Context, job []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	h.jobs = append(h.jobs, append([]byte(nil), job...))
	return nil
}

// take returns the one job held, failing otherwise.
func (h *heldJobs) take(t testing.TB) []byte {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.jobs) != 1 {
		t.Fatalf("%d jobs dispatched, want 1", len(h.jobs))
	}
	j := h.jobs[0]
	h.jobs = nil
	return j
}

// otherInstance is a second Server on the same pools with caches and
// tokens of its own: another process, or another Lambda instance.
func otherInstance(t testing.TB, sf *simFixture) *Server {
	t.Helper()
	var opts []xapi.Options
	for _, sim := range sf.sims {
		opts = append(opts, xapi.Options{URL: sim.URL, Username: sim.User, Password: sim.Password, EventTimeout: 2 * time.Second})
	}
	pools, err := xo.New(xo.Config{XAPI: opts, Pool: xo.PoolOptions{EventTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pools.Close(context.Background()) })
	store, err := auth.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := NewServer(Config{Tokens: store, Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func TestJobRunsOnAnotherInstance(t *testing.T) {
	held := &heldJobs{}
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.Dispatch = held.dispatch })
	vm := sf.idOf(t, "vms", "vm1") // halted

	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/start", "")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	href := rec.Header().Get("Location")
	payload := held.take(t)
	var j job
	if err := json.Unmarshal(payload, &j); err != nil {
		t.Fatal(err)
	}
	if j.Kind != "action" || j.Pool == "" || j.Task == "" || !strings.Contains(string(j.Params), vm) {
		t.Fatalf("job %s", payload)
	}
	var task map[string]any
	sf.getJSON(t, href, &task)
	if task["status"] != "pending" {
		t.Fatalf("task before the job ran: %v", task)
	}
	if got := sf.objField(t, "vms", vm, "power_state"); got != "Halted" {
		t.Fatalf("the VM is %v before the job ran", got)
	}

	// Another instance runs it; this one reports it, from the task.
	if err := otherInstance(t, sf).RunJob(t.Context(), payload); err != nil {
		t.Fatal(err)
	}
	if task = sf.waitEnded(t, href); task["status"] != "success" {
		t.Fatalf("task %v", task)
	}
	if got := sf.objField(t, "vms", vm, "power_state"); got != "Running" {
		t.Errorf("power_state %v after the job", got)
	}
}

func TestSyncFallsBackToTheTask(t *testing.T) {
	held := &heldJobs{}
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.Dispatch = held.dispatch })
	vm := sf.idOf(t, "vms", "vm1")
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"wait bound reached", func() *http.Request {
			sf.s.cfg.WaitTimeout = time.Millisecond
			return httptest.NewRequest("POST", BasePath+"/vms/"+vm+"/actions/snapshot?sync", strings.NewReader(`{"name_label": "s"}`))
		}},
		{"request deadline within the answer margin", func() *http.Request {
			sf.s.cfg.WaitTimeout = DefaultWaitTimeout
			ctx, cancel := context.WithTimeout(t.Context(), jobAnswerMargin)
			t.Cleanup(cancel)
			return httptest.NewRequestWithContext(ctx, "POST", BasePath+"/vms/"+vm+"/actions/snapshot?sync", strings.NewReader(`{"name_label": "s"}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req()
			req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			sf.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted || !strings.HasPrefix(rec.Header().Get("Location"), BasePath+"/tasks/") {
				t.Fatalf("?sync with a job that has not run: %d %q %s, want the 202 and its task", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			// The job runs later; the task has its result.
			if err := sf.s.runJob(t.Context(), held.take(t)); err != nil {
				t.Fatal(err)
			}
			task := sf.waitEnded(t, rec.Header().Get("Location"))
			res, _ := task["result"].(map[string]any)
			if task["status"] != "success" || res["id"] == nil {
				t.Fatalf("task %v", task)
			}
		})
	}
}

func TestSyncAnswersFromTheTask(t *testing.T) {
	// Jobs run on another instance: the ?sync answer can only come from
	// the task.
	var other *Server
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) {
		c.Dispatch = func(ctx context.Context, job []byte) error {
			go func() { _ = other.RunJob(context.WithoutCancel(ctx), job) }()
			return nil
		}
	})
	other = otherInstance(t, sf)
	vm := sf.idOf(t, "vms", "vm1")
	running := sf.idOf(t, "vms", "vm0")
	tests := []struct {
		name     string
		target   string
		body     string
		status   int
		location string // prefix
		want     string // in the body
	}{
		{name: "result", target: "/vms/" + vm + "/actions/snapshot?sync", body: `{"name_label": "from the task"}`, status: 200, location: BasePath + "/vm-snapshots/", want: `"id"`},
		{name: "no result", target: "/vms/" + vm + "/actions/start?sync", status: 204},
		{name: "XAPI error", target: "/vms/" + running + "/actions/start?sync", status: 409, want: "VM_BAD_POWER_STATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sf.send(t, "POST", BasePath+tt.target, tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) || !strings.HasPrefix(rec.Header().Get("Location"), tt.location) {
				t.Fatalf("%d %q %s, want %d %q %q", rec.Code, rec.Header().Get("Location"), rec.Body, tt.status, tt.location, tt.want)
			}
		})
	}
	if got := sf.objField(t, "vms", vm, "power_state"); got != "Running" {
		t.Errorf("power_state %v", got)
	}
}

func TestJobErrorsKeepTheirStatus(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	c := sf.clients[0]
	tests := []struct {
		name string
		err  error
	}{
		{"invalid parameters", InvalidParameters("the image is larger than the VDI", nil)},
		{"incorrect state", IncorrectState(map[string]any{"id": "x"})},
		{"not found", NotFound("VM", "x")},
		{"not implemented", NotImplemented("no S3 configured")},
		{"unavailable", Unavailable("S3 is unreachable", errors.New("dial tcp: refused"))},
		{"XAPI error", &xapi.Error{Code: "SR_FULL", Params: []string{"1", "2"}}},
		{"XAPI error with a status", &xapi.Error{Code: "VM_BAD_POWER_STATE", Params: []string{"OpaqueRef:1", "halted", "running"}}},
		{"other error", errors.New("disk on fire")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task, id, err := startTask(t.Context(), c, "test "+tt.name, "")
			if err != nil {
				t.Fatal(err)
			}
			endTask(t.Context(), c, task, nil, tt.err)
			obj := sf.waitEnded(t, taskHref(id))
			wantStatus, wantBody := describe(tt.err)
			gotStatus, gotBody := describe(taskFailure(obj))
			// An internal error's message is in the task for anyone to
			// read: the ?sync answer shows it too.
			if gotStatus != wantStatus || (wantStatus != 500 && gotBody.Error != wantBody.Error) {
				t.Errorf("through the task: %d %q, want %d %q (task result %v)", gotStatus, gotBody.Error, wantStatus, wantBody.Error, obj["result"])
			}
		})
	}
}

func TestRunJobRefusesBadJobs(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	task, id, err := startTask(t.Context(), sf.clients[0], "test bad jobs", "")
	if err != nil {
		t.Fatal(err)
	}
	var pool []map[string]any
	sf.getJSON(t, BasePath+"/pools?fields=uuid", &pool)
	poolID := pool[0]["uuid"].(string)
	tests := []struct {
		name    string
		payload string
		failed  bool // the task records the failure
	}{
		{name: "not JSON", payload: `{"kind":`},
		{name: "no task", payload: `{"kind":"action","pool":"` + poolID + `"}`},
		{name: "unknown pool", payload: `{"kind":"action","pool":"nope","task":"` + string(task) + `"}`},
		{name: "unknown kind", payload: `{"kind":"mine bitcoin","pool":"` + poolID + `","task":"` + string(task) + `"}`, failed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sf.s.runJob(t.Context(), []byte(tt.payload)); err == nil {
				t.Fatal("no error")
			}
			var obj map[string]any
			sf.getJSON(t, taskHref(id), &obj)
			if got := obj["status"] != "pending"; got != tt.failed {
				t.Fatalf("task %v", obj)
			}
		})
	}
}

func TestRunJobStopsBeforeItsDeadline(t *testing.T) {
	held := &heldJobs{}
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.Dispatch = held.dispatch })
	vm := sf.idOf(t, "vms", "vm0")
	sf.sims[0].SetDelay("VM.clean_shutdown", time.Minute)
	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/clean_shutdown", "")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// A Lambda invocation with 1 s left after the margin.
	ctx, cancel := context.WithTimeout(t.Context(), jobEndMargin+time.Second)
	defer cancel()
	if err := sf.s.runJob(ctx, held.take(t)); err == nil || !strings.Contains(err.Error(), "time limit") {
		t.Fatalf("runJob: %v, want the time limit", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the job ran until its invocation's deadline: no time was left to record its outcome")
	}
	task := sf.waitEnded(t, rec.Header().Get("Location"))
	if task["status"] != "failure" || !strings.Contains(fmt.Sprint(task["result"]), "time limit") {
		t.Fatalf("task %v", task)
	}
}

func TestDispatchFailureFailsTheTask(t *testing.T) {
	held := &heldJobs{err: errors.New("Lambda throttled the invocation")}
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.Dispatch = held.dispatch })
	vm := sf.idOf(t, "vms", "vm1")
	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/start", "")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var tasks []map[string]any
	sf.getJSON(t, BasePath+"/tasks?fields=status,name_label&filter="+`status:pending`, &tasks)
	if len(tasks) != 0 {
		t.Fatalf("pending tasks left: %v", tasks)
	}
}

func TestShutdownStopsLocalJobs(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	sv := &Server{s: sf.s, h: sf.h}
	vm := sf.idOf(t, "vms", "vm0")
	sf.sims[0].SetDelay("VM.clean_shutdown", time.Minute)
	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/clean_shutdown", "")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // no time left: stop the jobs at once
	if err := sv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown returned after the job recorded its end.
	var task map[string]any
	sf.getJSON(t, rec.Header().Get("Location"), &task)
	if task["status"] != "failure" || !strings.Contains(fmt.Sprint(task["result"]), ErrShutdown.Error()) {
		t.Fatalf("task %v", task)
	}
	// Nothing left running: a second Shutdown returns at once.
	if err := sv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestJobTooLarge(t *testing.T) {
	held := &heldJobs{}
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.Dispatch = held.dispatch })
	vm := sf.idOf(t, "vms", "vm1")
	before := sf.taskCount(t)
	rec := sf.send(t, "POST", BasePath+"/vms/"+vm+"/actions/snapshot", `{"name_label": "`+strings.Repeat("x", MaxJob)+`"}`)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "too large to run as a job") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(held.jobs) != 0 {
		t.Fatal("the job was dispatched")
	}
	if got := sf.taskCount(t); got != before {
		t.Errorf("%d tasks after the refusal, %d before", got, before)
	}
}
