package xapisim

import (
	"testing"
	"time"
)

func TestHooks(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	calls := 0
	srv.Register("test.count", Method{Async: true, Handler: func(c *Call) (any, error) {
		calls++
		return int64(calls), nil
	}})
	t.Run("override", func(t *testing.T) {
		orig, _ := srv.Method("pool.get_all")
		srv.Register("pool.get_all", Method{Handler: func(c *Call) (any, error) { return []string{"OpaqueRef:fake"}, nil }})
		defer srv.Register("pool.get_all", orig)
		got := c.must("pool.get_all", s).([]any)
		if len(got) != 1 || got[0] != "OpaqueRef:fake" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("unregister", func(t *testing.T) {
		orig, _ := srv.Method("VM.get_all")
		srv.Unregister("VM.get_all")
		defer srv.Register("VM.get_all", orig)
		_, err := c.call("VM.get_all", s)
		wantFault(t, err, "MESSAGE_METHOD_UNKNOWN", "VM.get_all")
	})
	t.Run("fault twice", func(t *testing.T) {
		remove := srv.InjectFault(FaultRule{Method: "test.count", Fault: NewFault("TOO_MANY_PENDING_TASKS"), Count: 2})
		defer remove()
		for i := 0; i < 2; i++ {
			_, err := c.call("test.count", s)
			wantFault(t, err, "TOO_MANY_PENDING_TASKS")
		}
		if got := c.must("test.count", s); got != "1" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("fault fails the async task", func(t *testing.T) {
		srv.InjectFault(FaultRule{Method: "test.count", Fault: NewFault("SR_BACKEND_FAILURE_44", "", "no space", ""), Count: 1})
		task := c.must("Async.test.count", s).(string)
		rec := waitTask(t, srv, s, task)
		if rec["status"] != "failure" || rec["error_info"].([]string)[0] != "SR_BACKEND_FAILURE_44" {
			t.Fatalf("task %v", rec)
		}
	})
	t.Run("delay", func(t *testing.T) {
		srv.SetDelay("test.count", 20*time.Millisecond)
		defer srv.SetDelay("test.count", 0)
		start := time.Now()
		c.must("test.count", s)
		if time.Since(start) < 20*time.Millisecond {
			t.Fatal("no delay")
		}
	})
	t.Run("clear", func(t *testing.T) {
		srv.InjectFault(FaultRule{Method: "test.count", Fault: NewFault("X")})
		srv.ClearHooks()
		if _, err := c.call("test.count", s); err != nil {
			t.Fatal(err)
		}
	})
}
