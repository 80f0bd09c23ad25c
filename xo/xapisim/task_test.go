package xapisim

import (
	"testing"
	"time"
)

// waitTask waits (with event.from on the task) until the task is complete
// and returns its record.
func waitTask(t *testing.T, srv *Server, s, task string) Record {
	t.Helper()
	token := ""
	for {
		res, err := srv.Call(t.Context(), "event.from", s, []any{"task/" + task}, token, 30.0)
		if err != nil {
			t.Fatal(err)
		}
		batch := res.(map[string]any)
		token = batch["token"].(string)
		for _, e := range batch["events"].([]any) {
			ev := e.(map[string]any)
			if ev["operation"] == "del" {
				t.Fatalf("task %s destroyed before completion", task)
			}
			rec := ev["snapshot"].(Record)
			switch rec["status"] {
			case "success", "failure", "cancelled":
				return rec
			}
		}
	}
}

func TestAsyncTasks(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	release := make(chan struct{})
	srv.Register("test.op", Method{Params: 1, Async: true, Handler: func(c *Call) (any, error) {
		mode, _ := c.String(0)
		switch mode {
		case "ref":
			return "OpaqueRef:result", nil
		case "void":
			return nil, nil
		case "set":
			return []string{"OpaqueRef:a", "OpaqueRef:b"}, nil
		case "text":
			return "a<b & c", nil
		case "fail":
			return nil, NewFault("VM_BAD_POWER_STATE", "OpaqueRef:x", "halted", "running")
		case "error":
			return nil, testError{}
		case "wait":
			c.SetProgress(0.5)
			select {
			case <-c.Ctx.Done():
				if c.Cancelled() {
					return nil, NewFault("TASK_CANCELLED", c.Task)
				}
				return nil, c.Ctx.Err()
			case <-release:
				return "released", nil
			}
		case "task":
			return c.Task, nil
		}
		return nil, nil
	}})
	tests := []struct {
		mode      string
		status    string
		result    string
		errorInfo []string
	}{
		{"ref", "success", "<value>OpaqueRef:result</value>", []string{}},
		{"void", "success", "<value></value>", []string{}},
		{"set", "success", "<value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value></data></array></value>", []string{}},
		{"text", "success", "<value>a&lt;b &amp; c</value>", []string{}},
		{"fail", "failure", "", []string{"VM_BAD_POWER_STATE", "OpaqueRef:x", "halted", "running"}},
		{"error", "failure", "", []string{"INTERNAL_ERROR", "test error"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			task := c.must("Async.test.op", s, tc.mode).(string)
			rec := waitTask(t, srv, s, task)
			if rec["status"] != tc.status || rec["result"] != tc.result || rec["progress"] != 1.0 {
				t.Fatalf("task %v", rec)
			}
			if got := rec["error_info"].([]string); len(got) != len(tc.errorInfo) || (len(got) > 0 && got[0] != tc.errorInfo[0]) {
				t.Fatalf("error_info %q, want %q", got, tc.errorInfo)
			}
			if rec["name_label"] != "Async.test.op" || rec["finished"].(time.Time).Equal(Epoch()) {
				t.Fatalf("task %v", rec)
			}
			if ops := rec["allowed_operations"].([]string); len(ops) != 0 {
				t.Fatalf("allowed_operations %v", ops)
			}
			// Over XML-RPC the result is the fragment as a string.
			if got := c.must("task.get_result", s, task); got != tc.result {
				t.Fatalf("get_result %q", got)
			}
			c.must("task.destroy", s, task)
			_, err := c.call("task.get_record", s, task)
			wantFault(t, err, "HANDLE_INVALID", "task", task)
		})
	}
	t.Run("pending task record", func(t *testing.T) {
		task := c.must("Async.test.op", s, "wait").(string)
		rec := c.must("task.get_record", s, task).(map[string]any)
		if rec["status"] != "pending" || rec["resident_on"] != srv.MasterHost() || rec["type"] != "<none/>" ||
			rec["subtask_of"] != NullRef || rec["finished"] != Epoch() {
			t.Fatalf("record %v", rec)
		}
		if ops := rec["allowed_operations"].([]any); len(ops) != 1 || ops[0] != "cancel" {
			t.Fatalf("allowed_operations %v", ops)
		}
		// destroy of a pending task only marks it.
		c.must("task.destroy", s, task)
		ops := c.must("task.get_current_operations", s, task).(map[string]any)
		if ops["task"] != "destroy" {
			t.Fatalf("current_operations %v", ops)
		}
		release <- struct{}{}
		if rec := waitTask(t, srv, s, task); rec["status"] != "success" || rec["result"] != "<value>released</value>" {
			t.Fatalf("task %v", rec)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		task := c.must("Async.test.op", s, "wait").(string)
		c.must("task.cancel", s, task)
		rec := waitTask(t, srv, s, task)
		if rec["status"] != "cancelled" {
			t.Fatalf("task %v", rec)
		}
		if ei := rec["error_info"].([]string); len(ei) != 2 || ei[0] != "TASK_CANCELLED" || ei[1] != task {
			t.Fatalf("error_info %v", ei)
		}
	})
	t.Run("sync call has a transient task", func(t *testing.T) {
		task := c.must("test.op", s, "task").(string)
		if task == "" {
			t.Fatal("no task for a sync call")
		}
		_, err := c.call("task.get_record", s, task)
		wantFault(t, err, "HANDLE_INVALID", "task", task)
	})
}

func TestClientTasks(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	task := c.must("task_create", s, "xo-export", "desc").(string)
	rec := c.must("task.get_record", s, task).(map[string]any)
	if rec["name_label"] != "xo-export" || rec["name_description"] != "desc" || rec["status"] != "pending" {
		t.Fatalf("record %v", rec)
	}
	steps := []struct {
		method string
		params []any
		field  string
		want   any
	}{
		{"task.set_progress", []any{0.25}, "progress", 0.25},
		{"task.set_status", []any{"Cancelled"}, "status", "cancelled"},
		{"task_set_status", []any{"pending"}, "status", "pending"},
		{"task.set_result", []any{"<value>x</value>"}, "result", "<value>x</value>"},
		{"task.set_error_info", []any{[]any{"E", "p"}}, "error_info", []any{"E", "p"}},
		{"task.set_resident_on", []any{srv.MasterHost()}, "resident_on", srv.MasterHost()},
		{"task.add_to_other_config", []any{"applies_to", "OpaqueRef:vm"}, "other_config", map[string]any{"applies_to": "OpaqueRef:vm"}},
	}
	for _, st := range steps {
		t.Run(st.method, func(t *testing.T) {
			c.must(st.method, append([]any{s, task}, st.params...)...)
			rec := c.must("task.get_record", s, task).(map[string]any)
			if got := rec[st.field]; !equalValue(got, st.want) {
				t.Fatalf("%s = %#v, want %#v", st.field, got, st.want)
			}
		})
	}
	_, err := c.call("task.set_status", s, task, "bogus")
	wantFault(t, err, "INVALID_VALUE", "status", "bogus")
	// A client task is not tied to work: cancel leaves it pending.
	c.must("task.cancel", s, task)
	if st := c.must("task.get_status", s, task); st != "pending" {
		t.Fatalf("status %v", st)
	}
	c.must("task.set_status", s, task, "success")
	c.must("task.destroy", s, task)
	_, err = c.call("task.get_status", s, task)
	wantFault(t, err, "HANDLE_INVALID", "task", task)
}

func equalValue(a, b any) bool { return fmtValue(a) == fmtValue(b) }

func fmtValue(v any) string {
	s, err := EncodeXMLValue(v)
	if err != nil {
		return err.Error()
	}
	return s
}

type testError struct{}

func (testError) Error() string { return "test error" }
