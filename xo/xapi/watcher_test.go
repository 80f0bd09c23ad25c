package xapi_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// next returns the next batch of sub, failing the test if none comes
// before the test's deadline guard.
func next(t *testing.T, ctx context.Context, sub *xapi.Subscription) xapi.Batch {
	t.Helper()
	select {
	case b, ok := <-sub.Batches():
		if !ok {
			t.Fatalf("subscription closed: %v", sub.Err())
		}
		return b
	case <-ctx.Done():
		t.Fatal("no batch before the deadline")
	}
	panic("unreachable")
}

// until reads batches until one satisfies ok.
func until(t *testing.T, ctx context.Context, sub *xapi.Subscription, ok func(xapi.Batch) bool) xapi.Batch {
	t.Helper()
	for {
		if b := next(t, ctx, sub); ok(b) {
			return b
		}
	}
}

func hasMod(ref xapi.Ref, field, value string) func(xapi.Batch) bool {
	return func(b xapi.Batch) bool {
		for _, ev := range b.Events {
			if ev.Ref == ref && ev.Operation == "mod" && ev.Snapshot[field] == value {
				return true
			}
		}
		return false
	}
}

func startWatcher(t *testing.T, c *xapi.Client, opts xapi.WatcherOptions) (*xapi.Watcher, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	w := xapi.NewWatcher(c, opts)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		cancel()
	})
	return w, ctx
}

func TestWatcher(t *testing.T) { eachTransport(t, testWatcher) }

func testWatcher(t *testing.T, transport string) {
	c, srv := newClientT(t, xapisim.Default(), transport)
	w, ctx := startWatcher(t, c, xapi.WatcherOptions{Timeout: time.Second})
	vm := guest(t, c, "Halted")

	sub := w.Subscribe(xapi.SubscribeOptions{Baseline: true})
	defer sub.Close()
	b := next(t, ctx, sub)
	if !b.Reset {
		t.Fatalf("first batch is not a Reset: %+v", b)
	}
	seen := false
	for _, ev := range b.Events {
		if ev.Operation != "add" || ev.Snapshot == nil {
			t.Fatalf("reset event %+v", ev)
		}
		seen = seen || ev.Ref == vm && ev.Class == "vm"
	}
	if !seen {
		t.Fatal("the reset batch lacks the VM")
	}

	if _, err := c.Call(ctx, "VM.set_name_label", vm, "renamed"); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, sub, hasMod(vm, "name_label", "renamed"))

	t.Run("EVENTS_LOST reloads", func(t *testing.T) {
		if _, err := c.Call(ctx, "VM.set_name_label", vm, "before loss"); err != nil {
			t.Fatal(err)
		}
		until(t, ctx, sub, hasMod(vm, "name_label", "before loss"))
		// the next event.from fails (at the latest when the current long
		// poll times out); the reload must carry the state so far
		srv.InjectFault(xapisim.FaultRule{Method: "event.from", Fault: xapisim.NewFault("EVENTS_LOST"), Count: 1})
		b := until(t, ctx, sub, func(b xapi.Batch) bool { return b.Reset })
		found := false
		for _, ev := range b.Events {
			found = found || ev.Ref == vm && ev.Snapshot["name_label"] == "before loss"
		}
		if !found {
			t.Fatal("reset after EVENTS_LOST lacks the latest state")
		}
	})

	t.Run("session loss reloads", func(t *testing.T) {
		srv.Logout(string(c.Session()))
		if _, err := c.Call(ctx, "VM.set_name_label", vm, "after relogin"); err != nil {
			t.Fatal(err)
		}
		until(t, ctx, sub, func(b xapi.Batch) bool { return b.Reset })
	})

	t.Run("slow consumer", func(t *testing.T) {
		slow := w.Subscribe(xapi.SubscribeOptions{Buffer: 1})
		defer slow.Close()
		fast := w.Subscribe(xapi.SubscribeOptions{Buffer: 64})
		defer fast.Close()
		// make more batches than slow can queue, reading only fast
		for i := 0; i < 5; i++ {
			name := fmt.Sprintf("step %d", i)
			if _, err := c.Call(ctx, "VM.set_name_label", vm, name); err != nil {
				t.Fatal(err)
			}
			until(t, ctx, fast, hasMod(vm, "name_label", name))
		}
		// slow got at most its one queued batch, then must get a Reset
		// with the current state once it reads again
		b := until(t, ctx, slow, func(b xapi.Batch) bool { return b.Reset })
		found := false
		for _, ev := range b.Events {
			found = found || ev.Ref == vm && ev.Snapshot["name_label"] == "step 4"
		}
		if !found {
			t.Fatal("resync batch lacks the current state")
		}
		// and then follows changes again
		if _, err := c.Call(ctx, "VM.set_name_label", vm, "caught up"); err != nil {
			t.Fatal(err)
		}
		until(t, ctx, slow, hasMod(vm, "name_label", "caught up"))
	})
}

func TestWatcherStops(t *testing.T) { eachTransport(t, testWatcherStops) }

func testWatcherStops(t *testing.T, transport string) {
	c, _ := newClientT(t, xapisim.Default(), transport)
	w := xapi.NewWatcher(c, xapi.WatcherOptions{Classes: []string{"vm"}, Timeout: time.Second})
	sub := w.Subscribe(xapi.SubscribeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b := <-sub.Batches() // the initial load goes to every subscriber
	if !b.Reset {
		t.Fatalf("first batch %+v", b)
	}
	for _, ev := range b.Events {
		if ev.Class != "vm" {
			t.Fatalf("unsubscribed class %q", ev.Class)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	for range sub.Batches() {
	}
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("sub.Err = %v", sub.Err())
	}
	late := w.Subscribe(xapi.SubscribeOptions{})
	if _, ok := <-late.Batches(); ok {
		t.Fatal("subscription after stop is open")
	}
}
