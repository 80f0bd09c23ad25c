package xo_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/filter"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// vmByName returns the cached VM object named name.
func vmByName(t *testing.T, p *xo.Pool, kind, name string) xo.Object {
	t.Helper()
	for _, o := range p.Objects(kind) {
		if o["name_label"] == name {
			return o
		}
	}
	t.Fatalf("no %s named %q", kind, name)
	return nil
}

// modify changes fields of the record behind ref directly in the
// simulator's database (for read-only fields that no API call sets).
func modify(t *testing.T, srv *xapisim.Server, ref string, fields map[string]any) {
	t.Helper()
	err := srv.DB.Write(func(tx *xapisim.Tx) error {
		rec := tx.Modify(ref)
		for k, v := range fields {
			rec[k] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFreshness writes through the client and reads right after Fresh:
// the write is always visible, including in objects derived from the
// written record.
func TestFreshness(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	c := p.Client()
	ctx := t.Context()
	vm := vmByName(t, p, "VM", "vm1")
	vmRef := xapi.Ref(vm["_xapiRef"].(string))

	t.Run("set name_label", func(t *testing.T) {
		for i := range 20 {
			name := fmt.Sprintf("renamed %d", i)
			if _, err := c.Call(ctx, "VM.set_name_label", vmRef, name); err != nil {
				t.Fatal(err)
			}
			if err := p.Fresh(ctx); err != nil {
				t.Fatal(err)
			}
			o, err := p.Object("VM", vm["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if o["name_label"] != name {
				t.Fatalf("name_label = %v after writing %q", o["name_label"], name)
			}
		}
	})

	t.Run("start VM", func(t *testing.T) {
		if _, err := c.CallAsyncWait(ctx, "VM.start", vmRef, false, false); err != nil {
			t.Fatal(err)
		}
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		o, _ := p.Object("VM", vm["id"].(string))
		if o["power_state"] != "Running" {
			t.Fatalf("power_state = %v after VM.start", o["power_state"])
		}
		_, rec, _ := p.Record(vmRef)
		_, host, _ := p.Record(xapi.Ref(rec["resident_on"].(string)))
		if o["$container"] != host["uuid"] {
			t.Errorf("$container = %v, want the host %v", o["$container"], host["uuid"])
		}
	})

	t.Run("dependency: SR becomes local", func(t *testing.T) {
		// vm5 is halted with its disk on the shared default SR: its
		// $container is the pool until that SR is no longer shared. Only
		// the SR record changes.
		vm5 := vmByName(t, p, "VM", "vm5")
		if vm5["$container"] != p.UUID() {
			t.Fatalf("$container = %v, want the pool", vm5["$container"])
		}
		pool, _ := p.Object("pool", p.UUID())
		sr, err := p.Object("SR", pool["default_SR"].(string))
		if err != nil {
			t.Fatal(err)
		}
		modify(t, srv, sr["_xapiRef"].(string), map[string]any{"shared": false})
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		pbd, err := p.Object("PBD", sr["$PBDs"].([]any)[0].(string))
		if err != nil {
			t.Fatal(err)
		}
		vm5, _ = p.Object("VM", vm5["id"].(string))
		if vm5["$container"] != pbd["host"] {
			t.Errorf("$container = %v after the SR became local, want the PBD's host %v", vm5["$container"], pbd["host"])
		}
		modify(t, srv, sr["_xapiRef"].(string), map[string]any{"shared": true})
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		if vm5, _ = p.Object("VM", vm5["id"].(string)); vm5["$container"] != p.UUID() {
			t.Errorf("$container = %v after the SR became shared again, want the pool", vm5["$container"])
		}
	})

	t.Run("dependency: metrics", func(t *testing.T) {
		vm0 := vmByName(t, p, "VM", "vm0")
		_, rec, _ := p.Record(xapi.Ref(vm0["_xapiRef"].(string)))
		modify(t, srv, rec["metrics"].(string), map[string]any{"VCPUs_number": "1"})
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		vm0, _ = p.Object("VM", vm0["id"].(string))
		if n := vm0["CPUs"].(map[string]any)["number"]; n != 1.0 {
			t.Errorf("CPUs.number = %v after VM_metrics.VCPUs_number became 1", n)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		vm2 := vmByName(t, p, "VM", "vm2")
		ref := vm2["_xapiRef"].(string)
		if _, err := c.CallAsyncWait(ctx, "VM.hard_shutdown", xapi.Ref(ref)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Call(ctx, "VM.destroy", xapi.Ref(ref)); err != nil {
			t.Fatal(err)
		}
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := p.Object("VM", vm2["id"].(string))
		if !errors.Is(err, xo.ErrNotFound) {
			t.Fatalf("Object after VM.destroy: %v, want ErrNotFound", err)
		}
		if want := "no such VM " + vm2["id"].(string); err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		for _, vbd := range vm2["$VBDs"].([]any) {
			if o, err := p.Object("VBD", vbd.(string)); err == nil {
				t.Errorf("VBD %v of the destroyed VM still cached: %v", vbd, o)
			}
		}
	})
}

// TestFreshConcurrent runs writers and readers at once: every reader
// sees the last write acknowledged before its Fresh call.
func TestFreshConcurrent(t *testing.T) {
	_, p := newPool(t, xapisim.Default())
	c := p.Client()
	ctx := t.Context()
	vms := p.Objects("VM")
	var wg sync.WaitGroup
	for w, vm := range vms[:4] {
		wg.Go(func() {
			ref := xapi.Ref(vm["_xapiRef"].(string))
			for i := range 15 {
				name := fmt.Sprintf("w%d-%d", w, i)
				if _, err := c.Call(ctx, "VM.set_name_label", ref, name); err != nil {
					t.Error(err)
					return
				}
				if err := p.Fresh(ctx); err != nil {
					t.Error(err)
					return
				}
				o, err := p.Object("VM", vm["id"].(string))
				if err != nil || o["name_label"] != name {
					t.Errorf("read %v (%v) after writing %q", o["name_label"], err, name)
					return
				}
			}
		})
	}
	// A watcher runs its own event loop at the same time.
	sub := p.Watch(xo.WatchOptions{})
	defer sub.Close()
	wg.Wait()
}

// TestEventsLost makes event.from fail with EVENTS_LOST: Fresh reloads,
// the cache is right, and subscribers get a reset.
func TestEventsLost(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	sub := p.Watch(xo.WatchOptions{Kinds: []string{"VM"}})
	defer sub.Close()
	vm := vmByName(t, p, "VM", "vm1")
	remove := srv.InjectFault(xapisim.FaultRule{Method: "event.from", Fault: xapisim.NewFault("EVENTS_LOST")})
	if _, err := p.Client().Call(ctx, "VM.set_name_label", xapi.Ref(vm["_xapiRef"].(string)), "after loss"); err != nil {
		t.Fatal(err)
	}
	// The fault stays until Fresh returns: with a one-shot fault, the
	// watch loop may take it, and then the catch-up rightly applies a
	// batch instead of reloading (no reset).
	tokenBefore := p.Token()
	err := p.Fresh(ctx)
	remove()
	if err != nil {
		t.Fatal(err)
	}
	if p.Token() == tokenBefore {
		t.Error("token unchanged after a reload")
	}
	if o, _ := p.Object("VM", vm["id"].(string)); o["name_label"] != "after loss" {
		t.Errorf("name_label = %v after the reload", o["name_label"])
	}
	waitFor(t, sub, func(c xo.Change) bool { return c.Op == "reset" })
}

// waitFor reads changes until one satisfies ok, failing on a closed
// subscription or after 10s.
func waitFor(t *testing.T, sub *xo.Subscription, ok func(xo.Change) bool) xo.Change {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c, open := <-sub.Changes():
			if !open {
				t.Fatalf("subscription closed: %v", sub.Err())
			}
			if ok(c) {
				return c
			}
		case <-timeout:
			t.Fatal("no matching change within 10s")
		}
	}
}

// TestWatch checks the fan-out: several subscribers see a change made by
// someone else (the watch loop picks it up without any Fresh), a kind
// filter holds, and a slow subscriber is dropped with ErrSlowSubscriber
// without holding up the others.
func TestWatch(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	other := newClient(t, srv)
	vm := vmByName(t, p, "VM", "vm1")
	ref := xapi.Ref(vm["_xapiRef"].(string))

	a := p.Watch(xo.WatchOptions{})
	defer a.Close()
	b := p.Watch(xo.WatchOptions{Kinds: []string{"VM"}})
	defer b.Close()
	slow := p.Watch(xo.WatchOptions{Buffer: 1})
	defer slow.Close()

	if _, err := other.Call(ctx, "VM.set_name_label", ref, "watched"); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]*xo.Subscription{"a": a, "b": b} {
		c := waitFor(t, sub, func(c xo.Change) bool { return c.Op == "update" && c.ID == vm["id"] })
		if c.Object["name_label"] != "watched" || c.Kind != "VM" || c.Pool != p.UUID() {
			t.Errorf("%s got %+v", name, c)
		}
	}

	// Many changes: slow never reads, so it overflows and is dropped.
	for i := range 5 {
		if _, err := other.Call(ctx, "VM.set_name_label", ref, fmt.Sprintf("burst %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c := waitFor(t, b, func(c xo.Change) bool { return c.Op == "update" && c.Object["name_label"] == "burst 4" })
	if c.Kind != "VM" {
		t.Errorf("b got kind %q", c.Kind)
	}
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-slow.Changes():
		case <-timeout:
			t.Fatal("slow subscriber not dropped")
		}
	}
	if !errors.Is(slow.Err(), xo.ErrSlowSubscriber) {
		t.Errorf("slow.Err() = %v, want ErrSlowSubscriber", slow.Err())
	}

	t.Run("filter kinds", func(t *testing.T) {
		// b only wants VMs: a change of a network must not reach it, but
		// must reach a.
		nets := p.Objects("network")
		if _, err := other.Call(ctx, "network.set_name_label", xapi.Ref(nets[0]["_xapiRef"].(string)), "net renamed"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, a, func(c xo.Change) bool { return c.Kind == "network" && c.Object["name_label"] == "net renamed" })
		if _, err := other.Call(ctx, "VM.set_name_label", ref, "marker"); err != nil {
			t.Fatal(err)
		}
		c := waitFor(t, b, func(c xo.Change) bool { return c.Op != "reset" })
		if c.Kind != "VM" || c.Object["name_label"] != "marker" {
			t.Errorf("b got %s %v, want the VM marker first", c.Kind, c.Object["name_label"])
		}
		waitFor(t, a, func(c xo.Change) bool { return c.Kind == "VM" && c.Object["name_label"] == "marker" })
	})

	t.Run("only dependents recomputed", func(t *testing.T) {
		// Renaming an SR changes no VM: the change carries only the SR.
		pool, _ := p.Object("pool", p.UUID())
		sr, _ := p.Object("SR", pool["default_SR"].(string))
		if _, err := other.Call(ctx, "SR.set_name_label", xapi.Ref(sr["_xapiRef"].(string)), "renamed SR"); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Call(ctx, "VM.set_name_label", ref, "marker 2"); err != nil {
			t.Fatal(err)
		}
		for {
			c := waitFor(t, a, func(c xo.Change) bool { return c.Op != "reset" })
			if c.Kind == "VM" && c.Object["name_label"] == "marker 2" {
				break
			}
			if c.Kind != "SR" {
				t.Errorf("renaming an SR published a %s change (%s)", c.Kind, c.ID)
			}
		}
	})
}

// TestTasks checks XAPI tasks in XO's task shape: a successful and a
// failed async call.
func TestTasks(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	c := p.Client()
	vm := vmByName(t, p, "VM", "vm1")
	ref := xapi.Ref(vm["_xapiRef"].(string))

	okTask, err := c.CallAsync(ctx, "VM.clone", ref, "clone of vm1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, okTask); err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(xapisim.FaultRule{Method: "VM.start", Fault: xapisim.NewFault("VM_BAD_POWER_STATE", string(ref), "halted", "running"), Count: 1})
	failTask, err := c.CallAsync(ctx, "VM.start", ref, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, failTask); err == nil {
		t.Fatal("VM.start did not fail")
	}
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	task := func(r xapi.Ref) xo.Object {
		t.Helper()
		o, err := p.Object("task", string(r))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	ok := task(okTask)
	if ok["status"] != "success" {
		t.Errorf("clone task status %v", ok["status"])
	}
	clone := vmByName(t, p, "VM", "clone of vm1")
	if ok["result"] != clone["_xapiRef"] {
		t.Errorf("clone task result %v, want the clone's ref %v", ok["result"], clone["_xapiRef"])
	}
	props := ok["properties"].(map[string]any)
	if props["name"] != "Async.VM.clone" || props["progress"] != 100.0 {
		t.Errorf("properties %v", props)
	}
	start, _ := ok["start"].(float64)
	end, _ := ok["end"].(float64)
	if start <= 0 || end < start || ok["updatedAt"] != ok["end"] {
		t.Errorf("start %v end %v updatedAt %v", ok["start"], ok["end"], ok["updatedAt"])
	}
	if id, _ := p.Ref(ok["id"].(string)); id != okTask {
		t.Errorf("Ref(task id) = %v, want %v", id, okTask)
	}

	failed := task(failTask)
	want := map[string]any{"code": "VM_BAD_POWER_STATE", "params": []any{string(ref), "halted", "running"},
		"message": "VM_BAD_POWER_STATE(" + string(ref) + ", halted, running)"}
	if failed["status"] != "failure" || fmt.Sprint(failed["result"]) != fmt.Sprint(want) {
		t.Errorf("failed task: status %v result %v", failed["status"], failed["result"])
	}
}

// TestFilter checks that objects work with the filter language: numbers,
// nested properties, strings.
func TestFilter(t *testing.T) {
	_, p := newPool(t, xapisim.Default())
	for _, tc := range []struct {
		name, filter string
		want         []string
	}{
		{"power state", "power_state:Running", []string{"vm0", "vm2"}},
		{"number", "CPUs:max:>=2 power_state:Suspended", []string{"vm3"}},
		{"memory", "memory:size:>2000000000 name_label:vm1", []string{"vm1"}},
		{"truthy", "xenTools? name_label:/^vm[04]$/", []string{"vm0", "vm4"}},
		{"array length", "$VBDs:length:2 name_label:vm5", []string{"vm5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := filter.Parse(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range p.Objects("VM") {
				if n.Match(o) {
					got = append(got, o["name_label"].(string))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q matched %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
}

// TestFreshCoalesces checks that concurrent Fresh calls share catch-ups:
// 40 callers while each event.from takes 50ms cost a handful of
// event.from calls, not 40.
func TestFreshCoalesces(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	orig, ok := srv.Method("event.from")
	if !ok {
		t.Fatal("no event.from")
	}
	var mu sync.Mutex
	calls := 0
	wrapped := orig
	wrapped.Handler = func(c *xapisim.Call) (any, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return orig.Handler(c)
	}
	srv.Register("event.from", wrapped)
	srv.SetDelay("event.from", 50*time.Millisecond)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if err := p.Fresh(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if calls == 0 || calls > 5 {
		t.Errorf("40 concurrent Fresh calls made %d event.from calls, want 1 to 5", calls)
	}
}

// TestSessionLoss restarts the simulated toolstack (every session and
// task dropped): the client logs in again by itself, the cache reloads,
// subscribers get a reset, and the watch loop goes on delivering changes.
func TestSessionLoss(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	sub := p.Watch(xo.WatchOptions{Kinds: []string{"VM"}})
	defer sub.Close()
	before := p.Client().Session()
	srv.Restart()
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Client().Session() == before {
		t.Fatal("session unchanged after the restart")
	}
	waitFor(t, sub, func(c xo.Change) bool { return c.Op == "reset" })
	vm := vmByName(t, p, "VM", "vm5")
	other := newClient(t, srv)
	if _, err := other.Call(ctx, "VM.set_name_label", xapi.Ref(vm["_xapiRef"].(string)), "after restart"); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, sub, func(c xo.Change) bool { return c.Op == "update" && c.ID == vm["id"] })
	if c.Object["name_label"] != "after restart" {
		t.Errorf("got %v", c.Object["name_label"])
	}
}

// TestIncrementalMatchesReload runs a mix of operations while a watcher
// and readers keep the cache current incrementally, then compares every
// kind's objects with a cold load of the same pool: the dependency index
// must have recomputed everything that changed, and the watch loop and
// the catch-ups must neither lose nor double-apply a batch. The watcher
// must also have seen the final state of every VM. Objects are built per
// class on first use, so the kinds other than VM (which the watcher
// makes eager) are built before the changes, during them (readers list
// kinds while events are applied), or only after them.
func TestIncrementalMatchesReload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool // list every kind before the changes
		during bool // readers list kinds while the changes are applied
	}{
		{name: "built before the changes", before: true},
		{name: "built during the changes", during: true},
		{name: "built after the changes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testIncrementalMatchesReload(t, tc.before, tc.during)
		})
	}
}

func testIncrementalMatchesReload(t *testing.T, before, during bool) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	if got := p.Built(); len(got) != 0 {
		t.Errorf("classes built by the load alone: %v", got)
	}
	if before {
		for _, kind := range xo.Kinds() {
			p.Objects(kind)
		}
	}
	c := p.Client()
	sub := p.Watch(xo.WatchOptions{Kinds: []string{"VM"}})
	defer sub.Close()
	seen := map[string]xo.Object{}
	var seenMu sync.Mutex
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ch := range sub.Changes() {
			seenMu.Lock()
			switch ch.Op {
			case "update":
				seen[ch.ID] = ch.Object
			case "remove":
				delete(seen, ch.ID)
			}
			seenMu.Unlock()
		}
	}()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		kinds := xo.Kinds()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.Fresh(ctx); err != nil {
				t.Error(err)
				return
			}
			if during {
				p.Objects(kinds[i%len(kinds)])
			}
		}
	})

	call := func(method string, args ...any) any {
		t.Helper()
		v, err := c.Call(ctx, method, args...)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return v
	}
	wait := func(method string, args ...any) any {
		t.Helper()
		v, err := c.CallAsyncWait(ctx, method, args...)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return v
	}
	ref := func(name string) xapi.Ref {
		t.Helper()
		return xapi.Ref(vmByName(t, p, "VM", name)["_xapiRef"].(string))
	}
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	vm1, vm3, vm5 := ref("vm1"), ref("vm3"), ref("vm5")
	wait("VM.start", vm1, false, false)
	call("VM.set_name_label", vm5, "vm5 renamed")
	clone := wait("VM.clone", vm5, "vm5 clone")
	cloneRef := xapi.Ref(clone.(string))
	call("VM.set_is_a_template", cloneRef, true) // kind changes VM → VM-template
	wait("VM.snapshot", vm1, "vm1 snap")
	wait("VM.resume", vm3, false, false)
	wait("VM.clean_shutdown", vm1)
	call("VM.set_memory_limits", vm5, "1073741824", "2147483648", "1073741824", "2147483648")
	call("VM.add_tags", vm5, "prod")
	// Changes of records read only through links: guest metrics, metrics.
	_, vm0, _ := p.Record(ref("vm0"))
	modify(t, srv, vm0["guest_metrics"].(string), map[string]any{"networks": map[string]string{"0/ipv4/0": "192.0.2.7"}})
	modify(t, srv, vm0["metrics"].(string), map[string]any{"VCPUs_number": "1", "memory_actual": "1073741824"})
	close(stop)
	readers.Wait()
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}

	if !before && !during && !slices.Equal(p.Built(), []string{"VM"}) {
		t.Errorf("classes built before listing them: %v, want only the watched VM", p.Built())
	}
	cold := xo.NewPool(newClient(t, srv), xo.PoolOptions{})
	defer cold.Close()
	if err := cold.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kind := range xo.Kinds() {
		got, want := p.Objects(kind), cold.Objects(kind)
		if len(got) != len(want) {
			t.Errorf("%s: %d objects incrementally, %d after a reload", kind, len(got), len(want))
			continue
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s %v differs from a reload:\n got %v\nwant %v", kind, got[i]["id"], got[i], want[i])
			}
		}
	}

	// The watcher saw the last state of every VM (it may lag: wait).
	deadline := time.Now().Add(10 * time.Second)
	for {
		seenMu.Lock()
		ok := len(seen) <= len(cold.Objects("VM"))
		for _, vm := range cold.Objects("VM") {
			if s, found := seen[vm["id"].(string)]; found && !reflect.DeepEqual(s, vm) {
				ok = false
			}
		}
		for _, name := range []string{"vm1", "vm3", "vm5 renamed"} {
			if _, found := seen[vmByName(t, cold, "VM", name)["id"].(string)]; !found {
				ok = false
			}
		}
		seenMu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not see the final state of the changed VMs")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, found := seen[vmByName(t, cold, "VM-template", "vm5 clone")["id"].(string)]; found {
		t.Error("the clone turned template is still a VM for the watcher")
	}
	sub.Close()
	<-watchDone
}

// TestLazyIndex checks that the dependency index is built only when a
// batch changes something: not for the load's own event.inject.
func TestLazyIndex(t *testing.T) {
	_, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	for range 3 {
		if err := p.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if p.Indexed() {
		t.Error("index built although nothing changed since the load")
	}
	vm := vmByName(t, p, "VM", "vm1")
	if _, err := p.Client().Call(ctx, "VM.set_name_label", xapi.Ref(vm["_xapiRef"].(string)), "x"); err != nil {
		t.Fatal(err)
	}
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !p.Indexed() {
		t.Error("index not built after a change")
	}
}

// TestLazyBuild checks that a load builds no objects and that each way
// of reading builds what it needs: a collection its kind, a lookup by
// uuid or ref the kind of the record behind it, a miss everything; and
// that a subscription makes its kinds eager, so that it gets the changes
// of objects nobody listed, also after a reload.
func TestLazyBuild(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	built := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := p.Built(); !slices.Equal(got, want) {
			t.Errorf("built classes %v, want %v", got, want)
		}
	}
	built()
	var srRef, srUUID, vbdRef, netRef string
	for _, class := range []string{"SR", "VBD", "network"} {
		refs, err := p.Client().Call(ctx, class+".get_all")
		if err != nil {
			t.Fatal(err)
		}
		r := refs.([]any)[0].(string)
		switch class {
		case "SR":
			srRef = r
			_, f, _ := p.Record(xapi.Ref(r))
			srUUID = f["uuid"].(string)
		case "VBD":
			vbdRef = r
		case "network":
			netRef = r
		}
	}

	var def xo.Object // a default template: its id is not its uuid
	for _, o := range p.Objects("VM-template") {
		if o["isDefaultTemplate"] == true {
			def = o
		}
	}
	if def == nil || def["id"] == def["uuid"] {
		t.Fatalf("no default template with an id of its own: %v", def)
	}
	built("VM-template")
	if o, err := p.Object("VM-template", def["uuid"].(string)); err != nil || o["id"] != def["id"] {
		t.Errorf("default template by uuid: %v, %v", o["id"], err)
	}
	built("VM-template")
	if o, err := p.Object("", srUUID); err != nil || o["_xapiRef"] != srRef {
		t.Errorf("Object by SR uuid: %v, %v", o, err)
	}
	built("VM-template", "SR")
	if r, ok := p.Ref(vbdRef); !ok || string(r) != vbdRef {
		t.Errorf("Ref(%s) = %s, %v", vbdRef, r, ok)
	}
	built("VM-template", "SR", "VBD")
	if _, err := p.Object("PIF", srUUID); !errors.Is(err, xo.ErrNotFound) {
		t.Errorf("an SR found as a PIF: %v", err)
	}
	built("VM-template", "SR", "VBD", "PIF")
	p.Objects("VM")
	built("VM-template", "SR", "VBD", "PIF", "VM")

	// A subscriber of networks gets a rename without anyone listing them.
	sub := p.Watch(xo.WatchOptions{Kinds: []string{"network"}})
	defer sub.Close()
	built("VM-template", "SR", "VBD", "PIF", "VM", "network")
	other := newClient(t, srv)
	if _, err := other.Call(ctx, "network.set_name_label", xapi.Ref(netRef), "renamed net"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func(c xo.Change) bool { return c.Op == "update" && c.Object["name_label"] == "renamed net" })

	// A reload builds the watched classes, and only them.
	srv.InjectFault(xapisim.FaultRule{Method: "event.from", Fault: xapisim.NewFault("EVENTS_LOST"), Count: 1})
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func(c xo.Change) bool { return c.Op == "reset" })
	built("network")
	if _, err := other.Call(ctx, "network.set_name_label", xapi.Ref(netRef), "renamed again"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func(c xo.Change) bool { return c.Op == "update" && c.Object["name_label"] == "renamed again" })

	// A miss must look at every class before it is final.
	if _, err := p.Object("", "no-such-object"); !errors.Is(err, xo.ErrNotFound) {
		t.Errorf("Object(no-such-object) = %v, want ErrNotFound", err)
	}
	all := xo.Kinds()
	built(all...)

	// A subscriber of every kind makes every class eager.
	sub2 := p.Watch(xo.WatchOptions{})
	defer sub2.Close()
	srv.InjectFault(xapisim.FaultRule{Method: "event.from", Fault: xapisim.NewFault("EVENTS_LOST"), Count: 1})
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub2, func(c xo.Change) bool { return c.Op == "reset" })
	built(all...)
}

// TestLazyKindChange checks records whose kind is not built: a VM whose
// snapshot_of comes to point at another VM becomes a VM-snapshot and
// leaves the VMs; when that VM is destroyed, it is a VM again, although
// no VM-snapshot object was ever built to record what it read.
func TestLazyKindChange(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	r := vmByName(t, p, "VM", "vm2")
	var target xo.Object
	for _, o := range p.Objects("VM") {
		if o["power_state"] == "Halted" && o["id"] != r["id"] {
			target = o
		}
	}
	if target == nil {
		t.Fatal("no halted VM")
	}
	inVMs := func(id any) bool {
		return slices.ContainsFunc(p.Objects("VM"), func(o xo.Object) bool { return o["id"] == id })
	}

	modify(t, srv, r["_xapiRef"].(string), map[string]any{"snapshot_of": target["_xapiRef"]})
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if inVMs(r["id"]) {
		t.Error("a VM whose snapshot_of resolves is still a VM")
	}
	if got := p.Built(); !slices.Equal(got, []string{"VM"}) {
		t.Errorf("built kinds %v, want [VM]", got)
	}

	for _, vbd := range target["$VBDs"].([]any) {
		ref, ok := p.Ref(vbd.(string))
		if !ok {
			t.Fatalf("VBD %v not found", vbd)
		}
		if _, err := p.Client().Call(ctx, "VBD.destroy", ref); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Client().Call(ctx, "VM.destroy", xapi.Ref(target["_xapiRef"].(string))); err != nil {
		t.Fatal(err)
	}
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !inVMs(r["id"]) {
		t.Error("a VM whose snapshot_of no longer resolves is not a VM again")
	}
	if inVMs(target["id"]) {
		t.Error("the destroyed VM is still listed")
	}
	cold := xo.NewPool(newClient(t, srv), xo.PoolOptions{})
	defer cold.Close()
	if err := cold.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"VM", "VM-snapshot"} {
		if got, want := p.Objects(kind), cold.Objects(kind); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d objects incrementally, %d after a reload (or they differ)", kind, len(got), len(want))
		}
	}
}

// TestRecordKind checks that the kind the cache predicts for a record
// without building its object (to build only the kinds asked for) is the
// kind of the object, for every record of the default pool, before and
// after operations that change kinds.
func TestRecordKind(t *testing.T) {
	srv, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	if bad := p.KindMismatches(); len(bad) > 0 {
		t.Errorf("kinds mispredicted: %v", bad)
	}
	vm := vmByName(t, p, "VM", "vm1")
	ref := xapi.Ref(vm["_xapiRef"].(string))
	if _, err := p.Client().CallAsyncWait(ctx, "VM.snapshot", ref, "snap"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client().Call(ctx, "VM.set_is_a_template", ref, true); err != nil {
		t.Fatal(err)
	}
	vdi := p.Objects("VDI")[0]
	modify(t, srv, vdi["_xapiRef"].(string), map[string]any{"managed": false})
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if bad := p.KindMismatches(); len(bad) > 0 {
		t.Errorf("kinds mispredicted after changes: %v", bad)
	}
	for kind := range slices.Values(xo.Kinds()) {
		if len(p.Objects(kind)) == 0 && kind != "task" { // tasks end
			t.Errorf("the pool has no %s: the check misses it", kind)
		}
	}
}
