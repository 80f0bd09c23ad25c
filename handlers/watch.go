package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/filter"
)

// errWatchReset ends a watch stream when a pool was reloaded (XAPI lost
// events, or the session changed): changes may have been missed, so the
// client must list again and watch again, as after an overflow.
var errWatchReset = errors.New("pool reloaded, changes may have been missed: list and watch again")

// watch answers ?ndjson&watch on the collection of kind: from the moment
// the request is caught up with XAPI, every change of an object of that
// kind in any pool is one line, until the client leaves.
//
// Semantics (decided here; XO only watches tasks): no initial snapshot
// (list first, then watch, as in XO); ["update", item] for an object that
// is created or changed and matches the filter; ["remove", {"href"}] for
// an object that is removed and matched the filter, and for an object
// that matched the filter and stops matching it, so that a client keeping
// the filtered set current only needs the lines. Without a filter every
// update and every removal is sent. The stream ends, with the error
// logged, when the subscriber falls behind (xo.ErrSlowSubscriber: the
// client reconnects and lists again, like XO's overflow), when a pool is
// reloaded (errWatchReset) or closed, and when the client leaves. A
// newline is sent every Config.KeepAlive when nothing else was. All the
// watchers of a pool share that pool's one event.from loop (xo.Pools.Watch).
func (s *server) watch(w http.ResponseWriter, r *http.Request, q Query, pools *xo.Pools, kind string, href func(map[string]any) string) error {
	sub := pools.Watch(xo.WatchOptions{Kinds: []string{kind}})
	defer sub.Close()
	sel := selection{filter: q.Filter}
	// Subscribed first, then caught up: every change after this point
	// reaches the subscription, possibly twice, which only repeats a line.
	if q.Filter != nil {
		objs, err := pools.Objects(r.Context(), kind)
		if err != nil {
			return err
		}
		sel.init(objs)
	} else if err := pools.Fresh(r.Context()); err != nil {
		return err
	}

	// Changes queued by now were applied before the snapshot: a reset
	// among them (the first load of a cold pool) missed nothing.
	before := len(sub.Changes())

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan Event)
	var (
		wg       sync.WaitGroup
		endCause error
	)
	wg.Go(func() {
		defer close(events)
		for ch := range sub.Changes() {
			if ch.Op == "reset" {
				if before > 0 {
					before--
					continue
				}
				endCause = errWatchReset
				return
			}
			before = max(before-1, 0)
			ev, ok := sel.event(ch)
			if !ok {
				continue
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		endCause = sub.Err()
	})
	err := WriteWatch(w, r, q, events, href, s.cfg.KeepAlive)
	cancel()
	sub.Close() // ends the producer's range over Changes
	wg.Wait()
	if err == nil && endCause != nil {
		err = fmt.Errorf("watch %s: %w", kind, endCause)
	}
	return err
}

// selection turns XO changes into the watch lines of a filtered
// collection. With a filter it tracks the ids of the objects that match,
// to turn "stops matching" into a removal and to send removals of matching
// objects only.
type selection struct {
	filter  filter.Node
	matched map[string]bool // ids matching the filter (nil without a filter)
}

// init records which of objs match the filter.
func (s *selection) init(objs []xo.Object) {
	s.matched = make(map[string]bool)
	for _, o := range objs {
		if s.filter.Match(o) {
			s.matched[idString(o["id"])] = true
		}
	}
}

// event returns the line for ch, if the client gets one.
func (s *selection) event(ch xo.Change) (Event, bool) {
	if s.filter == nil {
		switch ch.Op {
		case "update":
			return Event{Kind: EventUpdate, Object: ch.Object}, true
		case "remove":
			return Event{Kind: EventRemove, Object: ch.Object}, true
		}
		return Event{}, false
	}
	was := s.matched[ch.ID]
	switch {
	case ch.Op == "update" && s.filter.Match(ch.Object):
		s.matched[ch.ID] = true
		return Event{Kind: EventUpdate, Object: ch.Object}, true
	case (ch.Op == "update" || ch.Op == "remove") && was:
		delete(s.matched, ch.ID)
		return Event{Kind: EventRemove, Object: ch.Object}, true
	}
	return Event{}, false
}
