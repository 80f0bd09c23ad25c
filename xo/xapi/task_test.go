package xapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// guest returns the ref of the first guest VM (by name) in the given power state.
func guest(t *testing.T, c *xapi.Client, state string) xapi.Ref {
	t.Helper()
	vms, err := c.VMs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var best xapi.Ref
	bestName := ""
	for ref, vm := range vms {
		if vm.PowerState == state && !vm.IsATemplate && !vm.IsControlDomain && !vm.IsASnapshot {
			if best == "" || vm.NameLabel < bestName {
				best, bestName = ref, vm.NameLabel
			}
		}
	}
	if best == "" {
		t.Fatalf("no %s guest", state)
	}
	return best
}

func TestTasks(t *testing.T) { eachTransport(t, testTasks) }

func testTasks(t *testing.T, transport string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, srv := newClientT(t, xapisim.Default(), transport)

	t.Run("void result", func(t *testing.T) {
		vm := guest(t, c, "Halted")
		task, err := c.CallAsync(ctx, "VM.start", vm, false, false)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.WaitTask(ctx, task)
		if err != nil || v != "" {
			t.Fatalf("WaitTask = %#v, %v", v, err)
		}
		rec, err := xapi.GetRecord[xapi.VM](ctx, c, vm)
		if err != nil || rec.PowerState != "Running" {
			t.Fatalf("after start: %v %v", rec.PowerState, err)
		}
		tr, err := xapi.GetRecord[xapi.Task](ctx, c, task)
		if err != nil || tr.NameLabel != "Async.VM.start" || tr.Status != xapi.TaskSuccess {
			t.Fatalf("task record %+v, %v", tr, err)
		}
		if err := c.DestroyTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failure", func(t *testing.T) {
		vm := guest(t, c, "Running")
		_, err := c.CallAsyncWait(ctx, "VM.start", vm, false, false)
		var xe *xapi.Error
		if !errors.Is(err, xapi.ErrVMBadPowerState) || !errors.As(err, &xe) || xe.Param(0) != string(vm) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ref result, task destroyed", func(t *testing.T) {
		vm := guest(t, c, "Halted")
		v, err := c.CallAsyncWait(ctx, "VM.clone", vm, "clone of halted")
		if err != nil {
			t.Fatal(err)
		}
		ref, ok := v.(string)
		if !ok || xapi.Ref(ref).IsNull() {
			t.Fatalf("result %#v", v)
		}
		clone, err := xapi.GetRecord[xapi.VM](ctx, c, xapi.Ref(ref))
		if err != nil || clone.NameLabel != "clone of halted" {
			t.Fatalf("clone: %+v %v", clone, err)
		}
		tasks, err := c.Tasks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range tasks {
			if tr.NameLabel == "Async.VM.clone" {
				t.Fatalf("task left behind: %+v", tr)
			}
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		vm := guest(t, c, "Running")
		srv.SetDelay("VM.clean_reboot", time.Hour)
		defer srv.SetDelay("VM.clean_reboot", 0)
		task, err := c.CallAsync(ctx, "VM.clean_reboot", vm)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CancelTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		_, err = c.WaitTask(ctx, task)
		if !errors.Is(err, xapi.ErrTaskCancelled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("failed by another client", func(t *testing.T) {
		task, err := c.Call(ctx, "task.create", "manual", "created by the test")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := c.WaitTask(ctx, xapi.Ref(task.(string))); done <- err }()
		// complete it from outside, as a transfer handler would
		if _, err := c.Call(ctx, "task.set_status", task, "failure"); err != nil {
			t.Fatal(err)
		}
		var xe *xapi.Error
		if err := <-done; !errors.As(err, &xe) {
			t.Fatalf("WaitTask on a failed task: %v", err)
		}
	})
	t.Run("polling without event.from", func(t *testing.T) {
		orig, _ := srv.Method("event.from")
		srv.Unregister("event.from")
		defer srv.Register("event.from", orig)
		vm := guest(t, c, "Halted")
		v, err := c.CallAsyncWait(ctx, "VM.clone", vm, "polled clone")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := v.(string); xapi.Ref(s).IsNull() {
			t.Fatalf("result %#v", v)
		}
	})
	t.Run("wait ends with ctx", func(t *testing.T) {
		task, err := c.Call(ctx, "task.create", "never finishes", "")
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		wcancel()
		if _, err := c.WaitTask(wctx, xapi.Ref(task.(string))); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}
