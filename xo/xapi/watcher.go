package xapi

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Batch is what a Watcher delivers to its subscribers.
type Batch struct {
	// Reset means Events hold the complete current state of the watched
	// classes (one "add" per object): drop whatever was known before and
	// rebuild from this batch. Sent first to every subscriber when the
	// watcher (re)loads, after EVENTS_LOST or a new session, to a new
	// subscriber that asked for a baseline, and to a subscriber that fell
	// behind.
	Reset bool
	// Events are the coalesced changes since the previous batch, or the
	// full state for a Reset. Batches are shared between subscribers:
	// treat them as read-only.
	Events []Event
	// Token is the event.from token the batch ends at.
	Token string
}

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	// Classes to watch: "*" (everything, the default), class names
	// ("vm", "task"), or "class/ref".
	Classes []string
	// Timeout of each blocking event.from call. Default: the Client's
	// EventTimeout (30 s).
	Timeout time.Duration
}

// SubscribeOptions configures a Subscription.
type SubscribeOptions struct {
	// Buffer is the number of batches the subscription queues before the
	// subscriber counts as slow. Default 16.
	Buffer int
	// Baseline asks for a Reset batch with the full current state first.
	// Without it, the subscription starts with the next change.
	Baseline bool
}

// Watcher runs one event.from loop for a Client and fans its batches out
// to any number of subscribers.
//
// Slow consumers: each Subscription has its own bounded queue, and the
// watcher never blocks on it. When a batch does not fit, the subscriber
// misses it and every later one until its queue has room again; it then
// receives a Reset batch with the full current state (one extra
// event.from("") load, done for the lagging subscribers only). Other
// subscribers are not affected. So a consumer sees every change or, after
// falling behind, a fresh full state — never a silent gap.
//
// Session loss: the Client logs in again by itself; when the watcher sees
// the session change (a toolstack restart invalidates sessions and may
// change refs) or gets EVENTS_LOST or a rejected token, it reloads and
// sends every subscriber a Reset.
type Watcher struct {
	c       *Client
	classes []string
	timeout time.Duration

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	wakeup  context.CancelFunc // interrupts the current long poll
	stopped bool
	err     error
}

// NewWatcher returns a watcher for c. It does nothing until Run.
func NewWatcher(c *Client, opts WatcherOptions) *Watcher {
	classes := opts.Classes
	if len(classes) == 0 {
		classes = []string{"*"}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = c.opts.EventTimeout
	}
	return &Watcher{c: c, classes: classes, timeout: timeout, subs: make(map[*Subscription]struct{})}
}

// Subscription is one consumer's view of a Watcher.
type Subscription struct {
	w         *Watcher
	ch        chan Batch
	needReset bool // guarded by w.mu
	closed    bool // guarded by w.mu
	err       error
}

// Subscribe adds a consumer. It may be called before or while Run runs;
// after Run has returned, the subscription is closed at once.
func (w *Watcher) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.Buffer <= 0 {
		opts.Buffer = 16
	}
	s := &Subscription{w: w, ch: make(chan Batch, opts.Buffer), needReset: opts.Baseline}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		s.closed, s.err = true, w.err
		close(s.ch)
		return s
	}
	w.subs[s] = struct{}{}
	if opts.Baseline && w.wakeup != nil {
		w.wakeup() // serve the baseline now rather than after the long poll
	}
	return s
}

// Batches returns the channel batches arrive on. It is closed by Close or
// when the watcher stops; Err then says why.
func (s *Subscription) Batches() <-chan Batch { return s.ch }

// Err returns why the subscription ended: nil while it runs or after
// Close, else the error Run returned.
func (s *Subscription) Err() error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.err
}

// Close ends the subscription and closes its channel. It is idempotent.
func (s *Subscription) Close() {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if !s.closed {
		s.closed = true
		delete(s.w.subs, s)
		close(s.ch)
	}
}

// Run runs the event loop until ctx ends, and returns ctx's error; it
// returns earlier only for failures that retrying cannot fix (wrong
// credentials, no event.from on the host). Transient failures (host
// unreachable) are retried with backoff up to 30 s. When Run returns,
// every subscription is closed with its error.
func (w *Watcher) Run(ctx context.Context) (err error) {
	defer func() { w.stop(err) }()
	token := ""
	var session Ref
	backoff := time.Second
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var b *EventBatch
		var callErr error
		switch {
		case token == "":
			if b, callErr = w.c.EventFrom(ctx, w.classes, "", 0); callErr == nil {
				token = b.Token
				session = w.c.Session()
				w.deliver(b, true, true)
			}
		case w.laggards():
			if b, callErr = w.c.EventFrom(ctx, w.classes, "", 0); callErr == nil {
				w.deliver(b, true, false)
			}
		default:
			pollCtx, cancel := context.WithCancel(ctx)
			w.mu.Lock()
			w.wakeup = cancel
			w.mu.Unlock()
			b, callErr = w.c.EventFrom(pollCtx, w.classes, token, w.timeout)
			w.mu.Lock()
			w.wakeup = nil
			w.mu.Unlock()
			woken := pollCtx.Err() != nil && ctx.Err() == nil
			cancel()
			if woken {
				continue // a subscriber wants a baseline
			}
			if callErr == nil {
				if s := w.c.Session(); s != session {
					token = "" // new session: refs and tokens may be stale
					continue
				}
				token = b.Token
				if len(b.Events) > 0 {
					w.deliver(b, false, false)
				}
			}
		}
		switch {
		case callErr == nil:
			backoff = time.Second
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(callErr, ErrEventsLost), errors.Is(callErr, ErrEventFromTokenParseFailure):
			token = ""
		case errors.Is(callErr, ErrSessionAuthenticationFailed), errors.Is(callErr, ErrMessageMethodUnknown):
			return callErr
		default:
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if backoff *= 2; backoff > 30*time.Second {
				backoff = 30 * time.Second
			}
		}
	}
}

// laggards reports whether a subscriber waits for a Reset and has room
// to receive it.
func (w *Watcher) laggards() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.subs {
		if s.needReset && len(s.ch) < cap(s.ch) {
			return true
		}
	}
	return false
}

// deliver sends b to the subscribers without ever blocking. A Reset goes
// to everyone when all is set (a reload), else only to those waiting for
// one; an ordinary batch goes to everyone not waiting for a Reset.
func (w *Watcher) deliver(eb *EventBatch, reset, all bool) {
	b := Batch{Reset: reset, Events: eb.Events, Token: eb.Token}
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.subs {
		if reset != s.needReset && !all {
			continue
		}
		select {
		case s.ch <- b:
			if reset {
				s.needReset = false
			}
		default:
			s.needReset = true // fell behind: resync once it has room
		}
	}
}

// stop closes every subscription with err.
func (w *Watcher) stop(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped, w.err = true, err
	for s := range w.subs {
		s.closed, s.err = true, err
		close(s.ch)
		delete(w.subs, s)
	}
}
