package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// slowModel is a pool whose VM operations stay pending until cancelled
// (an operation delay far longer than any test).
func slowModel() xapisim.Model {
	m := xapisim.Default()
	m.OpDelay = time.Hour
	return m
}

// taskFixture is a sim fixture with helpers for tasks.
type taskFixture struct {
	*simFixture
	blocks chan struct{} // a signal each time a task wait blocks
}

func newTaskFixture(t *testing.T, m xapisim.Model, mod ...func(*Config)) taskFixture {
	return taskFixture{newSimFixture(t, []xapisim.Model{m}, mod...), make(chan struct{}, 1000)}
}

// startShutdown starts Async.VM.clean_shutdown on a running VM, which
// stays pending until cancelled, and returns its task ref and uuid.
func (tf taskFixture) startShutdown(t *testing.T, vmName string) (xapi.Ref, string) {
	t.Helper()
	vm := tf.ref(t, "VM", tf.idOf(t, "vms", vmName))
	task, err := tf.clients[0].CallAsync(t.Context(), "VM.clean_shutdown", vm)
	if err != nil {
		t.Fatal(err)
	}
	return task, tf.taskUUID(t, task)
}

func (tf taskFixture) taskUUID(t *testing.T, task xapi.Ref) string {
	t.Helper()
	var id string
	if err := tf.clients[0].CallInto(t.Context(), &id, "task.get_uuid", task); err != nil {
		t.Fatal(err)
	}
	return id
}

// getTask answers GET /tasks/<id><query> in the background.
func (tf taskFixture) getTask(t *testing.T, ctx context.Context, id, query string) <-chan *httptest.ResponseRecorder {
	for len(tf.blocks) > 0 { // signals of earlier, finished waits
		<-tf.blocks
	}
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		ctx := context.WithValue(ctx, waitHookKey{}, func() {
			select {
			case tf.blocks <- struct{}{}:
			default:
			}
		})
		req := httptest.NewRequestWithContext(ctx, "GET", BasePath+"/tasks/"+id+query, nil)
		req.AddCookie(&http.Cookie{Name: tokenCookie, Value: tf.token})
		rec := httptest.NewRecorder()
		tf.h.ServeHTTP(rec, req)
		done <- rec
	}()
	return done
}

// answer waits for a background answer (a hang fails the test; this is no
// timing assertion).
func answer(t *testing.T, done <-chan *httptest.ResponseRecorder) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	select {
	case rec := <-done:
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec, body
	case <-time.After(30 * time.Second):
		t.Fatal("no answer in 30s")
	}
	return nil, nil
}

// notAnswered waits until the background request blocks waiting (again)
// and checks that it has not answered.
func (tf taskFixture) notAnswered(t *testing.T, done <-chan *httptest.ResponseRecorder) {
	t.Helper()
	select {
	case <-tf.blocks:
	case rec := <-done:
		t.Fatalf("answered early: %d %s", rec.Code, rec.Body)
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not block in 30s")
	}
	select {
	case rec := <-done:
		t.Fatalf("answered early: %d %s", rec.Code, rec.Body)
	default:
	}
}

func TestTaskWait(t *testing.T) {
	tf := newTaskFixture(t, slowModel())
	t.Run("wait=result returns when the task ends", func(t *testing.T) {
		task := tf.call(t, "task.create", "long work", "").(string)
		id := tf.taskUUID(t, xapi.Ref(task))
		done := tf.getTask(t, t.Context(), id, "?wait=result")
		tf.notAnswered(t, done)
		tf.call(t, "task.set_progress", task, 0.5) // a change, not the end
		tf.notAnswered(t, done)
		tf.call(t, "task.set_result", task, "<value>done</value>")
		tf.call(t, "task.set_status", task, "success")
		rec, body := answer(t, done)
		if rec.Code != 200 || body["status"] != "success" || body["result"] != "done" || body["href"] != BasePath+"/tasks/"+id {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("wait=true by XAPI ref, cancelled operation", func(t *testing.T) {
		task, id := tf.startShutdown(t, "vm0")
		done := tf.getTask(t, t.Context(), string(task), "?wait=true&fields=status,result.code")
		tf.notAnswered(t, done)
		if err := tf.clients[0].CancelTask(t.Context(), task); err != nil {
			t.Fatal(err)
		}
		rec, body := answer(t, done)
		want := map[string]any{"status": "failure", "result": map[string]any{"code": "TASK_CANCELLED"}, "href": BasePath + "/tasks/" + id}
		if rec.Code != 200 || !jsonEqual(body, want) {
			t.Errorf("%d %s, want %v", rec.Code, rec.Body, want)
		}
	})
	t.Run("other wait values return at the next change", func(t *testing.T) {
		task := tf.call(t, "task.create", "progressing", "").(string)
		id := tf.taskUUID(t, xapi.Ref(task))
		done := tf.getTask(t, t.Context(), id, "?wait=change&fields=status,properties.progress")
		tf.notAnswered(t, done)
		tf.call(t, "task.set_progress", task, 0.25)
		rec, body := answer(t, done)
		want := map[string]any{"status": "pending", "properties": map[string]any{"progress": 25}, "href": BasePath + "/tasks/" + id}
		if rec.Code != 200 || !jsonEqual(body, want) {
			t.Errorf("%d %s, want %v", rec.Code, rec.Body, want)
		}
	})
	t.Run("an ended task answers at once", func(t *testing.T) {
		task := tf.call(t, "task.create", "ended", "").(string)
		tf.call(t, "task.set_status", task, "success")
		for _, wait := range []string{"result", "true", "change"} {
			rec, body := answer(t, tf.getTask(t, t.Context(), tf.taskUUID(t, xapi.Ref(task)), "?wait="+wait))
			if rec.Code != 200 || body["status"] != "success" {
				t.Errorf("wait=%s: %d %s", wait, rec.Code, rec.Body)
			}
		}
	})
	t.Run("destroyed while waited for", func(t *testing.T) {
		task := tf.call(t, "task.create", "doomed", "").(string)
		id := tf.taskUUID(t, xapi.Ref(task))
		done := tf.getTask(t, t.Context(), id, "?wait=result")
		tf.notAnswered(t, done)
		tf.call(t, "task.destroy", task) // marks it
		tf.call(t, "task.set_status", task, "failure")
		rec, _ := answer(t, done)
		// The task ended (failure) and was destroyed in the same batch or
		// the next one: either answer is right.
		if rec.Code != 200 && (rec.Code != 404 || !strings.Contains(rec.Body.String(), "no such task "+id)) {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("the client leaves", func(t *testing.T) {
		task := tf.call(t, "task.create", "abandoned", "").(string)
		ctx, cancel := context.WithCancel(t.Context())
		done := tf.getTask(t, ctx, tf.taskUUID(t, xapi.Ref(task)), "?wait=result")
		tf.notAnswered(t, done)
		cancel()
		answer(t, done) // the handler returned
	})
	t.Run("unknown task", func(t *testing.T) {
		rec, body := answer(t, tf.getTask(t, t.Context(), "nope", "?wait=result"))
		if rec.Code != 404 || body["error"] != "no such task nope" {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestTaskWaitTimeout(t *testing.T) {
	tf := newTaskFixture(t, xapisim.Default(), func(c *Config) { c.WaitTimeout = time.Millisecond })
	task := tf.call(t, "task.create", "forever", "").(string)
	rec, body := answer(t, tf.getTask(t, t.Context(), tf.taskUUID(t, xapi.Ref(task)), "?wait=result"))
	if rec.Code != 200 || body["status"] != "pending" {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestTaskAbort(t *testing.T) {
	tf := newTaskFixture(t, slowModel())
	do := func(t *testing.T, method, target string) *httptest.ResponseRecorder {
		return tf.do(t, method, target, nil, cookie(tokenCookie, tf.token))
	}
	t.Run("async", func(t *testing.T) {
		task, id := tf.startShutdown(t, "vm0")
		rec := do(t, "POST", BasePath+"/tasks/"+id+"/actions/abort")
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusAccepted {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		abortID := body["taskId"]
		if abortID == "" || rec.Header().Get("Location") != BasePath+"/tasks/"+abortID {
			t.Fatalf("taskId %q, Location %q", abortID, rec.Header().Get("Location"))
		}
		// The abort task succeeds, and the aborted one ends cancelled.
		_, abort := answer(t, tf.getTask(t, t.Context(), abortID, "?wait=result"))
		if abort["status"] != "success" {
			t.Errorf("abort task: %v", abort)
		}
		if _, err := tf.clients[0].WaitTask(t.Context(), task); !errorsIsCode(err, "TASK_CANCELLED") {
			t.Errorf("aborted task: %v", err)
		}
	})
	t.Run("sync", func(t *testing.T) {
		task, id := tf.startShutdown(t, "vm2")
		if rec := do(t, "POST", BasePath+"/tasks/"+id+"/actions/abort?sync"); rec.Code != http.StatusNoContent {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if _, err := tf.clients[0].WaitTask(t.Context(), task); !errorsIsCode(err, "TASK_CANCELLED") {
			t.Errorf("aborted task: %v", err)
		}
	})
	t.Run("ended task", func(t *testing.T) {
		task := tf.call(t, "task.create", "ended", "").(string)
		tf.call(t, "task.set_status", task, "success")
		rec := do(t, "POST", BasePath+"/tasks/"+tf.taskUUID(t, xapi.Ref(task))+"/actions/abort")
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"actual": "success"`) {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("unknown task", func(t *testing.T) {
		if rec := do(t, "POST", BasePath+"/tasks/nope/actions/abort"); rec.Code != http.StatusNotFound {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestTaskDelete(t *testing.T) {
	tf := newTaskFixture(t, slowModel())
	del := func(t *testing.T, id string) *httptest.ResponseRecorder {
		return tf.do(t, "DELETE", BasePath+"/tasks/"+id, nil, cookie(tokenCookie, tf.token))
	}
	gone := func(t *testing.T, id string) {
		t.Helper()
		if rec := tf.get(t, BasePath+"/tasks/"+id); rec.Code != http.StatusNotFound {
			t.Errorf("after DELETE: %d %s", rec.Code, rec.Body)
		}
	}
	t.Run("ended task", func(t *testing.T) {
		task := tf.call(t, "task.create", "ended", "").(string)
		tf.call(t, "task.set_status", task, "success")
		id := tf.taskUUID(t, xapi.Ref(task))
		if rec := del(t, id); rec.Code != http.StatusNoContent {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		gone(t, id)
	})
	t.Run("pending operation is cancelled first", func(t *testing.T) {
		_, id := tf.startShutdown(t, "vm0")
		if rec := del(t, id); rec.Code != http.StatusNoContent {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		gone(t, id)
		var vm map[string]any
		tf.getJSON(t, BasePath+"/vms/"+tf.idOf(t, "vms", "vm0")+"?fields=power_state", &vm)
		if vm["power_state"] != "Running" {
			t.Errorf("the cancelled shutdown happened: %v", vm)
		}
	})
	t.Run("unknown task", func(t *testing.T) {
		if rec := del(t, "nope"); rec.Code != http.StatusNotFound {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestTaskDeleteNotEnding(t *testing.T) {
	tf := newTaskFixture(t, xapisim.Default(), func(c *Config) { c.WaitTimeout = time.Millisecond })
	// task.create tasks do not notice task.cancel: XAPI only marks them.
	task := tf.call(t, "task.create", "stubborn", "").(string)
	id := tf.taskUUID(t, xapi.Ref(task))
	if rec := tf.do(t, "DELETE", BasePath+"/tasks/"+id, nil, cookie(tokenCookie, tf.token)); rec.Code != http.StatusAccepted {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := tf.get(t, BasePath+"/tasks/"+id); rec.Code != http.StatusOK {
		t.Errorf("the task is gone before it ended: %d %s", rec.Code, rec.Body)
	}
	// Once it has ended, DELETE destroys it.
	tf.call(t, "task.set_status", task, "success")
	if rec := tf.do(t, "DELETE", BasePath+"/tasks/"+id, nil, cookie(tokenCookie, tf.token)); rec.Code != http.StatusNoContent {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := tf.get(t, BasePath+"/tasks/"+id); rec.Code != http.StatusNotFound {
		t.Errorf("after DELETE: %d %s", rec.Code, rec.Body)
	}
}

// errorsIsCode reports whether err is an XAPI fault with that code.
func errorsIsCode(err error, code string) bool {
	return errors.Is(err, &xapi.Error{Code: code})
}
