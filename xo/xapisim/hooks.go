package xapisim

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// FaultRule makes calls of a method fail with a fault instead of running
// the handler, like vcsim's fault injection. Rules are checked in the order
// they were added; the first rule that fires wins.
type FaultRule struct {
	// Method is the wire name without "Async." ("VM.start"), or "*" for
	// every method. An Async call fails its task with the fault.
	Method string
	// Fault is the fault returned.
	Fault *Fault
	// Count is how many calls fail before the rule retires; 0 means every
	// call.
	Count int
	// Probability is the chance, in (0, 1), that a matching call fails;
	// 0 means always.
	Probability float64
}

type faultEntry struct {
	rule FaultRule
	left int // remaining failures when rule.Count > 0
	id   int
}

// hooks holds the test hooks of a simulator: fault rules and latency.
type hooks struct {
	mu     sync.Mutex
	faults []*faultEntry
	delays map[string]time.Duration
	nextID int
}

// InjectFault adds a fault rule and returns a function that removes it.
func (s *Simulator) InjectFault(r FaultRule) (remove func()) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	id := h.nextID
	h.faults = append(h.faults, &faultEntry{rule: r, left: r.Count, id: id})
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i, e := range h.faults {
			if e.id == id {
				h.faults = append(h.faults[:i], h.faults[i+1:]...)
				return
			}
		}
	}
}

// SetDelay makes every call of method ("Class.method", or "*" for all)
// wait d before its handler runs (for Async calls: inside the task). A
// zero d removes the delay.
func (s *Simulator) SetDelay(method string, d time.Duration) {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.delays == nil {
		h.delays = make(map[string]time.Duration)
	}
	if d <= 0 {
		delete(h.delays, method)
		return
	}
	h.delays[method] = d
}

// ClearHooks removes every fault rule and delay.
func (s *Simulator) ClearHooks() {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
	h.delays = nil
}

// before applies the delay and fault rules for method. It returns the
// fault to report, or nil to run the handler.
func (h *hooks) before(ctx context.Context, method string) *Fault {
	h.mu.Lock()
	d, ok := h.delays[method]
	if !ok {
		d = h.delays["*"]
	}
	var fault *Fault
	for i, e := range h.faults {
		if e.rule.Method != method && e.rule.Method != "*" {
			continue
		}
		if p := e.rule.Probability; p > 0 && p < 1 && rand.Float64() >= p {
			continue
		}
		fault = e.rule.Fault
		if e.rule.Count > 0 {
			e.left--
			if e.left <= 0 {
				h.faults = append(h.faults[:i], h.faults[i+1:]...)
			}
		}
		break
	}
	h.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if fault == nil {
		return nil
	}
	return fault
}
