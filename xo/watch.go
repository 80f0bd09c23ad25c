package xo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

// Change is one XO-level change delivered to subscribers.
type Change struct {
	// Op is "update" (an object was added or changed: Object is the new
	// one), "remove" (an object disappeared: Object is the last known
	// one), or "reset" (the pool was reloaded — first load, EVENTS_LOST,
	// new session: changes may have been missed, list again).
	Op string
	// Kind is the collection of the object (see Kinds); "" for a reset.
	Kind string
	// ID is the object's id; "" for a reset.
	ID string
	// Object is the object (read-only); nil for a reset.
	Object Object
	// Pool is the uuid of the pool the change comes from.
	Pool string
}

// WatchOptions configures a Subscription.
type WatchOptions struct {
	// Kinds restricts the changes to these collections (resets always
	// come); empty means every kind.
	Kinds []string
	// Buffer is the number of changes queued for the subscriber; when a
	// change does not fit, the subscriber is dropped: its channel closes
	// and Err returns ErrSlowSubscriber. Default 4096.
	Buffer int
}

// ErrSlowSubscriber ends a subscription whose queue overflowed: the
// consumer must subscribe again and list again.
var ErrSlowSubscriber = errors.New("xo: subscriber too slow, changes dropped")

// ErrClosed ends subscriptions of a closed Pool or Pools.
var ErrClosed = errors.New("xo: closed")

// Subscription receives the changes of one or more pools. Each
// subscription has its own bounded queue; publishing never blocks, and a
// subscriber that falls behind is dropped without affecting the others.
type Subscription struct {
	ch    chan Change
	kinds map[string]bool

	mu     sync.Mutex
	closed bool
	err    error
	pools  []*Pool
}

// Changes returns the channel changes arrive on, in the order they were
// applied per pool. It is closed when the subscription ends; Err says
// why.
func (s *Subscription) Changes() <-chan Change { return s.ch }

// Err returns why the subscription ended: ErrSlowSubscriber, ErrClosed, a
// fatal XAPI error of a watch loop (wrong credentials), or nil while it
// runs or after Close.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription; a pool's watch loop stops when its last
// subscriber leaves. It is idempotent.
func (s *Subscription) Close() { s.end(nil) }

// end closes the subscription with err and detaches it from its pools.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.err = true, err
	close(s.ch)
	pools := s.pools
	s.mu.Unlock()
	for _, p := range pools {
		p.unsubscribe(s)
	}
}

// send queues c without blocking; it reports false when the queue is
// full (the caller then ends the subscription).
func (s *Subscription) send(c Change) bool {
	if c.Op != "reset" && s.kinds != nil && !s.kinds[c.Kind] {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	select {
	case s.ch <- c:
		return true
	default:
		return false
	}
}

// newSubscription makes an unattached subscription.
func newSubscription(opts WatchOptions) *Subscription {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	s := &Subscription{ch: make(chan Change, opts.Buffer)}
	if len(opts.Kinds) > 0 {
		s.kinds = make(map[string]bool, len(opts.Kinds))
		for _, k := range opts.Kinds {
			s.kinds[k] = true
		}
	}
	return s
}

// Watch subscribes to the pool's changes and starts its watch loop (one
// event.from long poll shared by every subscriber) if it is not running.
// Changes applied by Fresh calls are delivered too. A subscriber of a cold
// pool first gets a "reset" when the loop loads it. The subscription ends
// with Close, when its queue overflows, or when the pool is closed.
//
// To send a snapshot followed by changes without a gap, subscribe first,
// then Fresh and list: a change may then arrive twice (in the list and
// as an update), never not at all.
func (p *Pool) Watch(opts WatchOptions) *Subscription {
	s := newSubscription(opts)
	p.attach(s)
	return s
}

// attach adds s to the pool's subscribers. The kinds s watches are built
// from now on at every load and right away if the pool is loaded, since
// apply only publishes changes of built objects.
func (p *Pool) attach(s *Subscription) {
	s.mu.Lock()
	s.pools = append(s.pools, p)
	s.mu.Unlock()
	p.mu.Lock()
	if s.kinds == nil {
		p.eager[""] = true
	}
	for k := range s.kinds {
		p.eager[k] = true
	}
	p.ensure(p.eagerKinds(p.classes)...)
	p.mu.Unlock()
	p.smu.Lock()
	defer p.smu.Unlock()
	if p.ctx.Err() != nil {
		go s.end(ErrClosed)
		return
	}
	p.subs[s] = struct{}{}
	if p.stopLoop == nil {
		ctx, cancel := context.WithCancel(p.ctx)
		p.stopLoop = cancel
		go p.watchLoop(ctx)
	}
}

// unsubscribe removes s and stops the loop after the last subscriber.
func (p *Pool) unsubscribe(s *Subscription) {
	p.smu.Lock()
	defer p.smu.Unlock()
	delete(p.subs, s)
	if len(p.subs) == 0 && p.stopLoop != nil {
		p.stopLoop()
		p.stopLoop = nil
	}
}

// publish fans changes out to the subscribers (p.mu held, so that
// batches are delivered in the order they were applied). Subscribers
// whose queue is full are dropped.
func (p *Pool) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	p.smu.Lock()
	var slow []*Subscription
	for s := range p.subs {
		for _, c := range changes {
			if !s.send(c) {
				slow = append(slow, s)
				break
			}
		}
	}
	p.smu.Unlock()
	for _, s := range slow {
		s.end(ErrSlowSubscriber)
	}
}

// watchLoop long-polls event.from from the cache's token and applies
// what arrives until ctx ends. Reloads (cold cache, EVENTS_LOST, new
// session) go through Fresh, so they never overlap with a request's
// catch-up; batches go through apply, which drops a batch when a
// catch-up moved the token meanwhile. Transient failures are retried with
// backoff up to 30s; wrong credentials end every subscription.
func (p *Pool) watchLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		p.mu.RLock()
		loaded, session, token, classes := p.loaded, p.session, p.token, p.classes
		p.mu.RUnlock()
		var err error
		if !loaded || p.client.Session() != session {
			err = p.Fresh(ctx)
		} else {
			var b *xapi.EventBatch
			b, err = p.client.EventFrom(ctx, eventClasses(classes), token, p.opts.EventTimeout)
			switch {
			case err == nil && p.client.Session() != session:
				err = p.Fresh(ctx) // reloads: the session changed
			case err == nil:
				p.apply(b, token)
			case errors.Is(err, xapi.ErrEventsLost), errors.Is(err, xapi.ErrEventFromTokenParseFailure):
				p.invalidate(token)
				err = p.Fresh(ctx) // reloads
			}
		}
		switch {
		case err == nil:
			backoff = 100 * time.Millisecond
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, xapi.ErrSessionAuthenticationFailed):
			p.failSubscribers(err)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// failSubscribers ends every subscription with err.
func (p *Pool) failSubscribers(err error) {
	p.smu.Lock()
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.smu.Unlock()
	for _, s := range subs {
		s.end(err)
	}
}
