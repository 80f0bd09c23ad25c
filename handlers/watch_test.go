package handlers

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/filter"
	"github.com/xorest/xorest/xo/xapisim"
)

// watchLine decodes one watch line: the event and the item.
func watchLine(t testing.TB, line string) (string, any) {
	t.Helper()
	var ev []json.RawMessage
	if err := json.Unmarshal([]byte(line), &ev); err != nil || len(ev) != 2 {
		t.Fatalf("watch line %q: %v", line, err)
	}
	var kind string
	var item any
	if err := json.Unmarshal(ev[0], &kind); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ev[1], &item); err != nil {
		t.Fatal(err)
	}
	return kind, item
}

// TestWatch changes VMs through XAPI and reads the lines of watchers with
// fields and a filter.
func TestWatch(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.KeepAlive = time.Hour })
	srv := httptest.NewServer(sf.h)
	t.Cleanup(srv.Close) // after the streams' contexts end
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	halted := openStream(t, ctx, srv.URL+BasePath+"/vms?ndjson&watch&fields=name_label,power_state&filter="+
		url.QueryEscape("power_state:Halted"), sf.token)
	all := openStream(t, ctx, srv.URL+BasePath+"/vms?ndjson&watch", sf.token)
	// Both watchers are subscribed once their headers arrived.

	vm1 := sf.idOf(t, "vms", "vm1") // halted
	vm0 := sf.idOf(t, "vms", "vm0") // running
	href1 := BasePath + "/vms/" + vm1

	// A change of a running VM: no line for the Halted watcher; the next
	// line it gets must be about vm1.
	sf.call(t, "VM.set_name_label", sf.ref(t, "VM", vm0), "vm0 renamed")
	sf.call(t, "VM.set_name_label", sf.ref(t, "VM", vm1), "vm1 renamed")
	kind, item := watchLine(t, halted.next(t))
	want := map[string]any{"name_label": "vm1 renamed", "power_state": "Halted", "href": href1, "url": href1}
	if kind != EventUpdate || !jsonEqual(item, want) {
		t.Errorf("Halted watcher: %s %v, want update %v", kind, item, want)
	}
	// The unfiltered watcher sees both, as URLs.
	for _, id := range []string{vm0, vm1} {
		kind, item := watchLine(t, all.next(t))
		if kind != EventUpdate || item != BasePath+"/vms/"+id {
			t.Errorf("unfiltered watcher: %s %v, want update of %s", kind, item, id)
		}
	}

	// vm1 starts: it stops matching power_state:Halted, which is a remove.
	sf.call(t, "VM.start", sf.ref(t, "VM", vm1), false, false)
	for {
		kind, item := watchLine(t, halted.next(t))
		if kind == EventUpdate {
			// Intermediate states of the start may still be Halted.
			if item.(map[string]any)["power_state"] != "Halted" {
				t.Fatalf("update of a VM that does not match: %v", item)
			}
			continue
		}
		if kind != EventRemove || !jsonEqual(item, map[string]any{"href": href1}) {
			t.Fatalf("%s %v, want remove of %s", kind, item, href1)
		}
		break
	}

	// A halted VM destroyed: a remove line.
	vm5 := sf.idOf(t, "vms", "vm5")
	sf.call(t, "VM.destroy", sf.ref(t, "VM", vm5))
	for {
		kind, item := watchLine(t, halted.next(t))
		if kind == EventUpdate {
			continue // the VM's last changes before it goes
		}
		if kind != EventRemove || !jsonEqual(item, map[string]any{"href": BasePath + "/vms/" + vm5}) {
			t.Fatalf("%s %v, want remove of vm5", kind, item)
		}
		break
	}

	// The client leaves: the handlers end (their access log lines are
	// written when they return) and the pool's watch loop stops.
	cancel()
	waitFor(t, "the watch handlers to end", func() bool {
		n := 0
		for _, l := range logLines(t, sf.logs.String()) {
			if strings.Contains(l["path"].(string), "/vms") && l["client_gone"] == true {
				n++
			}
		}
		return n == 2
	})
}

// TestWatchKeepAlive checks that an idle stream gets newlines.
func TestWatchKeepAlive(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()}, func(c *Config) { c.KeepAlive = 10 * time.Millisecond })
	srv := httptest.NewServer(sf.h)
	t.Cleanup(srv.Close) // after the streams' contexts end
	s := openStream(t, t.Context(), srv.URL+BasePath+"/hosts?ndjson&watch", sf.token)
	for range 3 {
		select {
		case l := <-s.lines:
			if l != "" {
				t.Fatalf("line %q on an idle stream", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no keep-alive")
		}
	}
}

// TestWatchEveryCollection opens a watch on every collection.
func TestWatchEveryCollection(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	srv := httptest.NewServer(sf.h)
	t.Cleanup(srv.Close) // after the streams' contexts end
	for _, c := range collections() {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			openStream(t, ctx, srv.URL+BasePath+"/"+c.name+"?ndjson&watch", sf.token)
		})
	}
	t.Run("task lines", func(t *testing.T) {
		s := openStream(t, t.Context(), srv.URL+BasePath+"/tasks?ndjson=true&watch=true&fields=status,properties.name", sf.token)
		task := sf.call(t, "task.create", "watched", "").(string)
		kind, item := watchLine(t, s.next(t))
		m, _ := item.(map[string]any)
		if kind != EventUpdate || m["status"] != "pending" || !jsonEqual(m["properties"], map[string]any{"name": "watched"}) {
			t.Errorf("%s %v", kind, item)
		}
		sf.call(t, "task.set_status", task, "success")
		sf.call(t, "task.destroy", task)
		for {
			kind, item := watchLine(t, s.next(t))
			if kind == EventRemove {
				if !strings.HasPrefix(item.(map[string]any)["href"].(string), BasePath+"/tasks/") {
					t.Errorf("remove %v", item)
				}
				break
			}
		}
	})
	t.Run("watch without ndjson", func(t *testing.T) {
		rec := sf.get(t, BasePath+"/vms?watch")
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "watch=true requires ndjson=true") {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

// TestSelection checks the watch semantics of filters without a pool.
func TestSelection(t *testing.T) {
	f, err := filter.Parse("power_state:Halted")
	if err != nil {
		t.Fatal(err)
	}
	vm := func(id, state string) xo.Object { return xo.Object{"id": id, "power_state": state} }
	steps := []struct {
		name   string
		change xo.Change
		want   string // "" for no line
	}{
		{"change of a matching object", xo.Change{Op: "update", ID: "a", Object: vm("a", "Halted")}, EventUpdate},
		{"change of an object that does not match", xo.Change{Op: "update", ID: "b", Object: vm("b", "Running")}, ""},
		{"object that starts matching", xo.Change{Op: "update", ID: "b", Object: vm("b", "Halted")}, EventUpdate},
		{"object that stops matching", xo.Change{Op: "update", ID: "a", Object: vm("a", "Running")}, EventRemove},
		{"removed object that no longer matched", xo.Change{Op: "remove", ID: "a", Object: vm("a", "Running")}, ""},
		{"removed object that matched", xo.Change{Op: "remove", ID: "b", Object: vm("b", "Halted")}, EventRemove},
		{"removed object never seen", xo.Change{Op: "remove", ID: "c", Object: vm("c", "Halted")}, ""},
		{"object matching at the start, removed", xo.Change{Op: "remove", ID: "d", Object: vm("d", "Halted")}, EventRemove},
	}
	sel := selection{filter: f}
	sel.init([]xo.Object{vm("a", "Running"), vm("d", "Halted")})
	for _, st := range steps {
		ev, ok := sel.event(st.change)
		got := ""
		if ok {
			got = ev.Kind
		}
		if got != st.want {
			t.Errorf("%s: %q, want %q", st.name, got, st.want)
		}
	}
	var none selection
	for _, op := range []string{"update", "remove"} {
		if ev, ok := none.event(xo.Change{Op: op, ID: "x", Object: vm("x", "Running")}); !ok || ev.Kind != op {
			t.Errorf("without a filter, %s gives %v %v", op, ev, ok)
		}
	}
}

// jsonEqual compares decoded JSON values.
func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// waitFor polls cond until it holds, failing after a generous bound (a
// hang, not a timing assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
