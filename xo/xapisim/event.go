package xapisim

import (
	"fmt"
	"strconv"
	"strings"
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

func (s *Simulator) registerEvent() {
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
