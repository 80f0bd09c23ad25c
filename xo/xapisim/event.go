package xapisim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// noEvents lists the classes whose changes event.from never reports
// (datamodel gen_events=false).
func noEvents(class string) bool { return class == sessionClass || class == "event" }

// subscription is one parsed event.from class entry.
type subscription struct {
	all   bool
	class string // lowercase
	ref   string // "" for a whole class
}

// parseSubscriptions parses event.from's classes as XAPI does: "*",
// "class" or "class/ref", class names case-insensitive.
func parseSubscriptions(classes []string) ([]subscription, error) {
	subs := make([]subscription, 0, len(classes))
	for _, c := range classes {
		switch {
		case c == "*":
			subs = append(subs, subscription{all: true})
		case c == "":
			return nil, NewFault("EVENT_SUBSCRIPTION_PARSE_FAILURE", c)
		default:
			cls, ref, _ := strings.Cut(c, "/")
			if cls == "" {
				return nil, NewFault("EVENT_SUBSCRIPTION_PARSE_FAILURE", c)
			}
			subs = append(subs, subscription{class: strings.ToLower(cls), ref: ref})
		}
	}
	return subs, nil
}

func matchSubscriptions(subs []subscription) func(class, ref string) bool {
	return func(class, ref string) bool {
		if noEvents(class) {
			return false
		}
		lc := strings.ToLower(class)
		for _, s := range subs {
			if s.all || (s.class == lc && (s.ref == "" || s.ref == ref)) {
				return true
			}
		}
		return false
	}
}

// FormatToken returns the event.from token of generation gen:
// "%020d,%020d" (database generation, message generation; messages live in
// the registry, so the second is always 0).
func FormatToken(gen int64) string { return fmt.Sprintf("%020d,%020d", gen, 0) }

// parseToken parses an event.from token; "" means from the beginning.
func parseToken(tok string) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	first, _, _ := strings.Cut(tok, ",")
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil || n < 0 {
		return 0, NewFault("EVENT_FROM_TOKEN_PARSE_FAILURE", tok)
	}
	return n, nil
}

// eventFrom implements event.from(classes, token, timeout).
func (s *Simulator) eventFrom(c *Call) (any, error) {
	classes, err := c.Strings(0)
	if err != nil {
		return nil, err
	}
	token, err := c.String(1)
	if err != nil {
		return nil, err
	}
	timeout, err := c.Float(2)
	if err != nil {
		return nil, err
	}
	subs, err := parseSubscriptions(classes)
	if err != nil {
		return nil, err
	}
	since, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	match := matchSubscriptions(subs)
	var deadline <-chan time.Time
	if timeout > 0 {
		d := time.Duration(timeout * float64(time.Second))
		if d > 24*time.Hour {
			d = 24 * time.Hour
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		var (
			events  []any
			counts  map[string]any
			gen     int64
			changed <-chan struct{}
			lost    bool
		)
		s.DB.Read(func(tx *Tx) {
			changes, ok := tx.ChangesSince(since, match)
			if !ok {
				lost = true
				return
			}
			gen = tx.Gen()
			changed = tx.r.changed
			if len(changes) == 0 && timeout > 0 {
				return
			}
			events = make([]any, 0, len(changes))
			for _, ch := range changes {
				ev := map[string]any{
					"id":        strconv.FormatInt(ch.Gen, 10),
					"timestamp": "0.0",
					"class":     strings.ToLower(ch.Class),
					"operation": ch.Operation,
					"ref":       ch.Ref,
				}
				if ch.Operation != "del" {
					ev["snapshot"] = ch.Record.Clone()
				}
				events = append(events, ev)
			}
			counts = validRefCounts(tx)
		})
		if lost {
			return nil, NewFault("EVENTS_LOST")
		}
		if events != nil {
			return map[string]any{
				"events":           events,
				"valid_ref_counts": counts,
				"token":            FormatToken(gen),
			}, nil
		}
		select {
		case <-changed:
		case <-deadline:
			timeout = 0 // one last collection, then return even if empty
		case <-c.Ctx.Done():
			return nil, fmt.Errorf("event.from: %w", c.Ctx.Err())
		}
	}
}

// validRefCounts counts the objects of every stored class (schema classes
// and any other class in the registry), keyed by lowercase class name.
func validRefCounts(tx *Tx) map[string]any {
	counts := make(map[string]any, len(schemaTable))
	for _, c := range schemaTable {
		if c.Stored() {
			counts[strings.ToLower(c.Name)] = Int32(tx.Count(c.Name))
		}
	}
	for _, c := range tx.Classes() {
		counts[strings.ToLower(c)] = Int32(tx.Count(c))
	}
	return counts
}

// legacySub is a session's event.register subscription.
type legacySub struct {
	subs []subscription
	gen  int64 // events after this generation are still to be delivered
}

// legacyEvents holds the event.register subscriptions by session.
type legacyEvents struct {
	mu   sync.Mutex
	subs map[string]*legacySub
}

// ocamlFloat formats f as OCaml's string_of_float ("%.12g", with a
// trailing dot for whole numbers).
func ocamlFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', 12, 64)
	if !strings.ContainsAny(s, ".e") {
		s += "."
	}
	return s
}

// eventRegister implements the deprecated event.register(classes).
func (s *Simulator) eventRegister(c *Call) (any, error) {
	classes, err := c.Strings(0)
	if err != nil {
		return nil, err
	}
	subs, err := parseSubscriptions(classes)
	if err != nil {
		return nil, err
	}
	gen, _ := s.DB.Generation()
	s.legacy.mu.Lock()
	defer s.legacy.mu.Unlock()
	if s.legacy.subs == nil {
		s.legacy.subs = make(map[string]*legacySub)
	}
	sub := s.legacy.subs[c.Session]
	if sub == nil {
		sub = &legacySub{gen: gen}
		s.legacy.subs[c.Session] = sub
	}
	sub.subs = append(sub.subs, subs...)
	return nil, nil
}

// eventUnregister implements the deprecated event.unregister(classes).
func (s *Simulator) eventUnregister(c *Call) (any, error) {
	classes, err := c.Strings(0)
	if err != nil {
		return nil, err
	}
	drop, err := parseSubscriptions(classes)
	if err != nil {
		return nil, err
	}
	s.legacy.mu.Lock()
	defer s.legacy.mu.Unlock()
	if sub := s.legacy.subs[c.Session]; sub != nil {
		sub.subs = slices.DeleteFunc(sub.subs, func(x subscription) bool { return slices.Contains(drop, x) })
	}
	return nil, nil
}

// eventNext implements the deprecated event.next(): it blocks until a
// change matches the session's registered classes and returns the events
// (with snapshots) since the previous call.
func (s *Simulator) eventNext(c *Call) (any, error) {
	for {
		s.legacy.mu.Lock()
		sub := s.legacy.subs[c.Session]
		var subs []subscription
		var since int64
		if sub != nil {
			subs, since = slices.Clone(sub.subs), sub.gen
		}
		s.legacy.mu.Unlock()
		if sub == nil {
			return nil, NewFault("SESSION_NOT_REGISTERED", c.Session)
		}
		var (
			events  []any
			gen     int64
			changed <-chan struct{}
			lost    bool
		)
		now := ocamlFloat(float64(s.Now().Unix()))
		s.DB.Read(func(tx *Tx) {
			changes, ok := tx.ChangesSince(since, matchSubscriptions(subs))
			if !ok {
				lost = true
				return
			}
			gen, changed = tx.Gen(), tx.r.changed
			for _, ch := range changes {
				ev := map[string]any{
					"id":        strconv.FormatInt(ch.Gen, 10),
					"timestamp": now,
					"class":     strings.ToLower(ch.Class),
					"operation": ch.Operation,
					"ref":       ch.Ref,
				}
				if ch.Operation != "del" {
					ev["snapshot"] = ch.Record.Clone()
					ev["obj_uuid"] = ch.Record["uuid"]
				}
				events = append(events, ev)
			}
		})
		if lost {
			return nil, NewFault("EVENTS_LOST")
		}
		s.legacy.mu.Lock()
		if cur := s.legacy.subs[c.Session]; cur == sub && sub.gen == since {
			sub.gen = gen
		}
		s.legacy.mu.Unlock()
		if len(events) > 0 {
			return events, nil
		}
		select {
		case <-changed:
		case <-c.Ctx.Done():
			return nil, fmt.Errorf("event.next: %w", c.Ctx.Err())
		}
	}
}

func (s *Simulator) registerEvent() {
	s.Register("event.register", Method{Params: 1, Handler: s.eventRegister})
	s.Register("event.unregister", Method{Params: 1, Handler: s.eventUnregister})
	s.Register("event.next", Method{Handler: s.eventNext})
	s.Register("event.from", Method{Params: 3, Handler: s.eventFrom})
	s.Register("event.inject", Method{Params: 2, Handler: func(c *Call) (any, error) {
		class, err := c.String(0)
		if err != nil {
			return nil, err
		}
		ref, err := c.String(1)
		if err != nil {
			return nil, err
		}
		var token string
		err = c.Sim.DB.Write(func(tx *Tx) error {
			if _, ok := tx.GetClass(class, ref); !ok {
				return HandleInvalid(class, ref)
			}
			tx.Modify(ref)
			token = FormatToken(tx.gen - 1)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return token, nil
	}})
	s.Register("event.get_current_id", Method{Handler: func(c *Call) (any, error) {
		gen, _ := c.Sim.DB.Generation()
		return gen, nil
	}})
}
