package xapisim

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// eventBatch calls event.from directly and returns events keyed by ref.
func eventBatch(t *testing.T, srv *Server, s string, classes []string, token string, timeout float64) (map[string]map[string]any, string, map[string]any) {
	t.Helper()
	cls := make([]any, len(classes))
	for i, c := range classes {
		cls[i] = c
	}
	res, err := srv.Call(t.Context(), "event.from", s, cls, token, timeout)
	if err != nil {
		t.Fatal(err)
	}
	batch := res.(map[string]any)
	evs := map[string]map[string]any{}
	for _, e := range batch["events"].([]any) {
		ev := e.(map[string]any)
		evs[ev["ref"].(string)] = ev
	}
	return evs, batch["token"].(string), batch["valid_ref_counts"].(map[string]any)
}

func newVM(t *testing.T, srv *Server, name string) string {
	t.Helper()
	var ref string
	srv.DB.Write(func(tx *Tx) error {
		rec := NewRecord("VM")
		rec["name_label"] = name
		ref = tx.Create("VM", rec)
		return nil
	})
	return ref
}

func TestEventCoalescing(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	_, token, _ := eventBatch(t, srv, s, []string{"vm"}, "", 0)

	existing := newVM(t, srv, "existing")
	doomed := newVM(t, srv, "doomed")
	_, token, _ = eventBatch(t, srv, s, []string{"vm"}, token, 0)

	added := newVM(t, srv, "added")
	transient := newVM(t, srv, "transient")
	srv.DB.Write(func(tx *Tx) error {
		tx.Modify(added)["name_label"] = "added-then-modified"
		tx.Modify(existing)["name_label"] = "modified"
		tx.Modify(doomed)["name_label"] = "modified-then-deleted"
		return nil
	})
	srv.DB.Write(func(tx *Tx) error {
		tx.Modify(existing)["name_description"] = "twice"
		tx.Delete(transient)
		tx.Delete(doomed)
		return nil
	})
	evs, _, counts := eventBatch(t, srv, s, []string{"VM"}, token, 0)
	tests := []struct {
		name, ref, op, label string
	}{
		{"add then mod is add", added, "add", "added-then-modified"},
		{"mod twice is one mod with the latest snapshot", existing, "mod", "modified"},
		{"mod then del is del", doomed, "del", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := evs[tc.ref]
			if ev == nil {
				t.Fatalf("no event for %s in %v", tc.ref, evs)
			}
			if ev["operation"] != tc.op || ev["class"] != "vm" || ev["timestamp"] != "0.0" {
				t.Fatalf("event %v", ev)
			}
			if _, err := fmt.Sscan(ev["id"].(string), new(int64)); err != nil {
				t.Fatalf("id %v", ev["id"])
			}
			snap, has := ev["snapshot"].(Record)
			if tc.op == "del" {
				if has || ev["snapshot"] != nil {
					t.Fatalf("del event has a snapshot: %v", ev)
				}
				return
			}
			if snap["name_label"] != tc.label {
				t.Fatalf("snapshot %v", snap["name_label"])
			}
		})
	}
	t.Run("add then del is nothing", func(t *testing.T) {
		if ev := evs[transient]; ev != nil {
			t.Fatalf("event %v", ev)
		}
	})
	t.Run("valid_ref_counts", func(t *testing.T) {
		for _, c := range []string{"vm", "task", "pool", "host", "session", "vdi"} {
			if _, ok := counts[c].(Int32); !ok {
				t.Errorf("count for %s: %#v", c, counts[c])
			}
		}
		n := 0
		srv.DB.Read(func(tx *Tx) { n = tx.Count("VM") })
		if counts["vm"] != Int32(n) {
			t.Errorf("vm count %v, want %d", counts["vm"], n)
		}
	})
}

func TestEventFromTokens(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	vm := newVM(t, srv, "tok")
	t.Run("empty token gives every object as add", func(t *testing.T) {
		evs, token, _ := eventBatch(t, srv, s, []string{"*"}, "", 0)
		if evs[vm] == nil || evs[vm]["operation"] != "add" {
			t.Fatalf("no add for %s", vm)
		}
		for _, ev := range evs {
			if ev["class"] == "session" {
				t.Fatalf("session event %v", ev)
			}
		}
		gen, _ := srv.DB.Generation()
		if token != FormatToken(gen) || len(token) != 41 {
			t.Fatalf("token %q", token)
		}
	})
	t.Run("subscription filters", func(t *testing.T) {
		other := newVM(t, srv, "other")
		evs, _, _ := eventBatch(t, srv, s, []string{"vm/" + vm}, "", 0)
		if len(evs) != 1 || evs[vm] == nil {
			t.Fatalf("events %v", evs)
		}
		evs, _, _ = eventBatch(t, srv, s, []string{"pool"}, "", 0)
		if evs[vm] != nil || evs[other] != nil {
			t.Fatal("pool subscription got a VM")
		}
	})
	t.Run("inject", func(t *testing.T) {
		tok, err := srv.Call(t.Context(), "event.inject", s, "VM", vm)
		if err != nil {
			t.Fatal(err)
		}
		evs, _, _ := eventBatch(t, srv, s, []string{"vm"}, tok.(string), 0)
		if len(evs) != 1 || evs[vm]["operation"] != "mod" {
			t.Fatalf("events %v", evs)
		}
		_, err = srv.Call(t.Context(), "event.inject", s, "vm", vm)
		wantFault(t, err, "HANDLE_INVALID", "vm", vm)
	})
	t.Run("errors", func(t *testing.T) {
		_, err := srv.Call(t.Context(), "event.from", s, []any{"vm"}, "garbage", 0.0)
		wantFault(t, err, "EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage")
		_, err = srv.Call(t.Context(), "event.from", s, []any{""}, "", 0.0)
		wantFault(t, err, "EVENT_SUBSCRIPTION_PARSE_FAILURE", "")
	})
	t.Run("get_current_id", func(t *testing.T) {
		id, err := srv.Call(t.Context(), "event.get_current_id", s)
		gen, _ := srv.DB.Generation()
		if err != nil || id != gen {
			t.Fatalf("%v %v", id, err)
		}
	})
}

func TestEventsLost(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	_, token, _ := eventBatch(t, srv, s, []string{"vm"}, "", 0)
	srv.DB.Write(func(tx *Tx) error {
		for i := 0; i <= maxTombstones; i++ {
			rec := NewRecord("message")
			tx.Delete(tx.Create("message", rec))
		}
		return nil
	})
	srv.DB.Write(func(tx *Tx) error { // a later generation pushes the horizon past token
		for i := 0; i <= maxTombstones/2+1; i++ {
			tx.Delete(tx.Create("message", NewRecord("message")))
		}
		return nil
	})
	_, err := srv.Call(t.Context(), "event.from", s, []any{"vm"}, token, 0.0)
	wantFault(t, err, "EVENTS_LOST")
}

func TestEventFromBlocks(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	_, token, _ := eventBatch(t, srv, s, []string{"vm"}, "", 0)

	t.Run("wakes on a matching change", func(t *testing.T) {
		type result struct {
			evs map[string]map[string]any
		}
		done := make(chan result, 1)
		go func() {
			evs, _, _ := eventBatch(t, srv, s, []string{"vm"}, token, 60)
			done <- result{evs}
		}()
		// A non-matching change must not end the wait.
		srv.DB.Write(func(tx *Tx) error {
			tx.Create("message", NewRecord("message"))
			return nil
		})
		select {
		case r := <-done:
			t.Fatalf("returned early with %v", r.evs)
		case <-time.After(50 * time.Millisecond):
		}
		vm := newVM(t, srv, "wake")
		r := <-done
		if r.evs[vm] == nil {
			t.Fatalf("events %v", r.evs)
		}
	})
	t.Run("timeout returns an empty batch", func(t *testing.T) {
		_, cur, _ := eventBatch(t, srv, s, []string{"vm"}, "", 0)
		evs, tok, _ := eventBatch(t, srv, s, []string{"vm"}, cur, 0.05)
		if len(evs) != 0 || tok == "" {
			t.Fatalf("events %v token %q", evs, tok)
		}
	})
	t.Run("client going away ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := srv.Call(ctx, "event.from", s, []any{"vm"}, FormatToken(1<<40), 60.0)
			errc <- err
		}()
		cancel()
		if err := <-errc; err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestLegacyEvents(t *testing.T) {
	srv := NewServer(t, Default())
	s := srv.Session()
	_, err := srv.Call(t.Context(), "event.next", s)
	wantFault(t, err, "SESSION_NOT_REGISTERED", s)
	if _, err := srv.Call(t.Context(), "event.register", s, []any{"vm"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan []any, 1)
	go func() {
		res, err := srv.Call(t.Context(), "event.next", s)
		if err != nil {
			t.Error(err)
		}
		evs, _ := res.([]any)
		done <- evs
	}()
	srv.DB.Write(func(tx *Tx) error { // not subscribed: does not end the wait
		tx.Create("message", NewRecord("message"))
		return nil
	})
	vm := newVM(t, srv, "legacy")
	evs := <-done
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	ev := evs[0].(map[string]any)
	if ev["ref"] != vm || ev["operation"] != "add" || ev["class"] != "vm" || !strings.HasSuffix(ev["timestamp"].(string), ".") {
		t.Fatalf("event %v", ev)
	}
	if _, err := srv.Call(t.Context(), "event.unregister", s, []any{"vm"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := srv.Call(ctx, "event.next", s); err == nil {
		t.Fatal("event.next without subscriptions returned events")
	}
}
