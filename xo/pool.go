package xo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/xo/filter"
	"github.com/xorest/xorest/xo/xapi"
)

// cachedClasses lists the XAPI classes a Pool loads and watches, with
// XAPI's spelling (the one get_all_records wants). Besides the classes
// that become XO objects, it holds the ones read through links (metrics,
// guest metrics, bonds, certificates, updates, GPU types, VTPMs).
func cachedClasses() []string {
	return []string{ // the usually big ones first
		"VM", "VBD", "VDI", "VIF", "VM_metrics", "VM_guest_metrics", "message", "task",
		"pool", "host", "host_metrics", "host_patch", "pool_update", "Certificate",
		"SR", "PBD", "SM", "PIF", "PIF_metrics", "Bond", "network",
		"PCI", "PGPU", "VGPU", "VGPU_type", "GPU_group", "VTPM",
	}
}

// PoolOptions configures a Pool.
type PoolOptions struct {
	// EventTimeout is the timeout of the watch loop's blocking event.from
	// calls. Default 30s.
	EventTimeout time.Duration
	// LoadTimeout bounds one catch-up (a full load or an event.from), which
	// runs on behalf of every request waiting for it. Default 5 minutes.
	LoadTimeout time.Duration
}

// Pool is the object cache of one XAPI pool: the XAPI records of the
// cached classes by ref, the XO objects derived from them by id and by
// kind, and the event.from token they are current at.
//
// Freshness: every read must be preceded by Fresh, which catches up with
// event.from(classes, token, 0) — or loads everything when the cache is
// cold, after EVENTS_LOST, or after the client's session changed — so a
// read sees every write acknowledged before Fresh was called. Concurrent
// Fresh calls share catch-ups; a call never joins a catch-up that started
// before it.
//
// Derived objects are kept current incrementally: every transform records
// what it read (a field of another record, or that record's existence),
// and a change recomputes the objects that read what changed, not the
// whole pool. Objects are built per kind on first use (see ensure);
// until then a kind has records and no objects, and changes to its
// records only update the records (and, for a class with several kinds,
// check whether the record's kind changed to a built one).
//
// A Pool is safe for concurrent use.
type Pool struct {
	client *xapi.Client
	opts   PoolOptions

	ctx    context.Context // owns catch-ups and the watch loop
	cancel context.CancelFunc

	fmu     sync.Mutex // guards pending and running
	pending *flight    // the catch-up new Fresh calls join
	running bool       // a goroutine runs catch-ups

	mu        sync.RWMutex // guards the cache below
	classes   []string     // cached classes this pool knows
	canon     map[string]string
	loaded    bool
	session   xapi.Ref // the client's session at the last load
	token     string
	st        store
	byID      map[string]*entry
	byRef     map[xapi.Ref]*entry
	byKind    map[string]map[string]*entry
	sorted    map[string]*table // per kind; absent when stale
	deps      map[depKey]map[xapi.Ref]struct{}
	depFields map[xapi.Ref]map[string]int // target → read field → edges
	fwd       map[xapi.Ref][]depKey       // dependent → what it read
	indexed   bool                        // deps/fwd hold every built object
	unindexed []built                     // built, not yet in deps/fwd
	built     map[string]bool             // kinds whose objects are built
	eager     map[string]bool             // kinds built at load (watched); "" for all

	smu      sync.Mutex // guards the subscribers and the watch loop
	subs     map[*Subscription]struct{}
	stopLoop context.CancelFunc
}

// entry is one XO object in the cache.
type entry struct {
	id, kind string
	ref      xapi.Ref
	obj      Object
}

// flight is one catch-up shared by the Fresh calls that joined it.
type flight struct {
	done chan struct{}
	err  error
}

// NewPool returns an empty cache for the pool client talks to. It does no
// I/O; the first Fresh loads the pool.
func NewPool(client *xapi.Client, opts PoolOptions) *Pool {
	if opts.EventTimeout <= 0 {
		opts.EventTimeout = 30 * time.Second
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		client: client,
		opts:   opts,
		ctx:    ctx,
		cancel: cancel,
		subs:   make(map[*Subscription]struct{}),
		eager:  make(map[string]bool),
	}
}

// Client returns the XAPI client of the pool, for calls and actions.
func (p *Pool) Client() *xapi.Client { return p.client }

// UUID returns the pool's uuid, or "" before the first load.
func (p *Pool) UUID() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.poolUUID
}

// Token returns the event.from token the cache is current at ("" before
// the first load).
func (p *Pool) Token() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.token
}

// Close stops the watch loop and any catch-up, and ends every
// subscription with ErrClosed. It does not close the client.
func (p *Pool) Close() {
	p.cancel()
	p.smu.Lock()
	subs := p.subs
	p.subs = make(map[*Subscription]struct{})
	if p.stopLoop != nil {
		p.stopLoop()
		p.stopLoop = nil
	}
	p.smu.Unlock()
	for s := range subs {
		s.end(ErrClosed)
	}
}

// Fresh brings the cache up to date with XAPI: a full load when cold,
// else event.from(classes, token, 0). It returns when a catch-up that
// started after the call has been applied, so reads that follow see every
// write acknowledged before Fresh was called. Concurrent calls share one
// catch-up. Errors are XAPI's (*xapi.Error, xapi.ErrUnreachable, …),
// wrapped with the pool's URL; ctx only bounds the wait.
func (p *Pool) Fresh(ctx context.Context) error {
	f := p.join()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// join returns the catch-up that has not started yet, creating it and
// its runner if needed.
func (p *Pool) join() *flight {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	if p.pending == nil {
		p.pending = &flight{done: make(chan struct{})}
		if !p.running {
			p.running = true
			go p.runFlights()
		}
	}
	return p.pending
}

// runFlights runs pending catch-ups one after the other until none is
// left. It is the only caller of catchUp, so loads never overlap.
func (p *Pool) runFlights() {
	for {
		p.fmu.Lock()
		f := p.pending
		p.pending = nil
		if f == nil {
			p.running = false
			p.fmu.Unlock()
			return
		}
		p.fmu.Unlock()
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.LoadTimeout)
		f.err = p.catchUp(ctx)
		cancel()
		close(f.done)
	}
}

// catchUp applies what changed since the cache's token, or loads the pool.
func (p *Pool) catchUp(ctx context.Context) error {
	for {
		p.mu.RLock()
		loaded, session, token, classes := p.loaded, p.session, p.token, p.classes
		p.mu.RUnlock()
		if !loaded || p.client.Session() != session {
			return p.load(ctx)
		}
		b, err := p.client.EventFrom(ctx, eventClasses(classes), token, 0)
		switch {
		case errors.Is(err, xapi.ErrEventsLost), errors.Is(err, xapi.ErrEventFromTokenParseFailure):
			return p.load(ctx)
		case err != nil:
			return fmt.Errorf("pool %s: event.from: %w", p.client.URL(), err)
		case p.client.Session() != session:
			return p.load(ctx) // new session: a toolstack restart may have changed refs
		}
		if p.apply(b, token) {
			return nil
		}
		// The watch loop applied a batch meanwhile: poll from its token.
	}
}

// invalidate makes the next catch-up a full load, unless the cache has
// moved past token meanwhile.
func (p *Pool) invalidate(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token == token {
		p.loaded = false
	}
}

// eventClasses returns the event.from subscription for classes.
func eventClasses(classes []string) []string {
	out := make([]string, len(classes))
	for i, c := range classes {
		out[i] = strings.ToLower(c)
	}
	return out
}

// load fetches every cached class with get_all_records, concurrently,
// after taking the event token with event.inject on the pool object (as
// XO does), so that changes made during the load are replayed by the
// next catch-up. Classes the host does not know are dropped. The new
// state replaces the old at once and subscribers get a reset.
//
// Objects are not built here, except those of the kinds subscribers
// watch: each kind is built on first use (see ensure), so a cold process
// answering one collection pays only for that collection's objects.
func (p *Pool) load(ctx context.Context) error {
	var poolRefs []xapi.Ref
	if err := p.client.CallInto(ctx, &poolRefs, "pool.get_all"); err != nil {
		return fmt.Errorf("pool %s: load: %w", p.client.URL(), err)
	}
	session := p.client.Session() // logged in by now
	if len(poolRefs) != 1 {
		return fmt.Errorf("pool %s: load: pool.get_all returned %d pools", p.client.URL(), len(poolRefs))
	}
	var token string
	if err := p.client.CallInto(ctx, &token, "event.inject", "pool", poolRefs[0]); err != nil {
		return fmt.Errorf("pool %s: load: event.inject: %w", p.client.URL(), err)
	}

	// A few calls at a time, the big classes first (cachedClasses order):
	// enough to keep the host and the decoder busy together, without
	// holding every response in memory at once. Each response is merged
	// into the store as it arrives, while the bigger ones are still on
	// their way.
	classes := cachedClasses()
	errs := make([]error, len(classes))
	p.mu.RLock()
	hint := len(p.st.recs) // a reload expects about as many records
	p.mu.RUnlock()
	st := store{recs: make(map[xapi.Ref]*record, hint), poolRef: poolRefs[0]}
	var (
		wg      sync.WaitGroup
		merging sync.Mutex // guards st while loading
	)
	sem := make(chan struct{}, max(4, runtime.GOMAXPROCS(0)+1))
	for i, class := range classes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			recs, err := p.client.GetAllRecords(ctx, class)
			if err != nil {
				errs[i] = err
				return
			}
			merging.Lock()
			defer merging.Unlock()
			for r, f := range recs {
				st.recs[r] = &record{class: class, fields: f}
			}
		})
	}
	wg.Wait()
	known := classes[:0:0]
	for i, class := range classes {
		switch err := errs[i]; {
		case errors.Is(err, xapi.ErrMessageMethodUnknown):
			continue // an older host without this class
		case err != nil:
			return fmt.Errorf("pool %s: load: %s.get_all_records: %w", p.client.URL(), class, err)
		}
		known = append(known, class)
	}
	poolRec := st.recs[st.poolRef]
	if poolRec == nil {
		return fmt.Errorf("pool %s: load: pool %s missing from pool.get_all_records", p.client.URL(), st.poolRef)
	}
	st.poolUUID = str(poolRec.fields["uuid"])

	// The watched kinds are built before the new state is installed, so
	// that readers of the old state are not held up meanwhile.
	p.mu.RLock()
	eager := p.eagerKinds(known)
	p.mu.RUnlock()
	built := build(&st, eager, nil)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.classes = known
	p.canon = make(map[string]string, len(known))
	for _, c := range known {
		p.canon[strings.ToLower(c)] = c
	}
	p.st = st
	p.token = token
	p.session = session
	p.loaded = true
	p.byID = make(map[string]*entry, len(built))
	p.byRef = make(map[xapi.Ref]*entry, len(built))
	p.byKind = make(map[string]map[string]*entry)
	p.sorted = make(map[string]*table)
	p.deps = make(map[depKey]map[xapi.Ref]struct{})
	p.depFields = make(map[xapi.Ref]map[string]int)
	p.fwd = make(map[xapi.Ref][]depKey, len(built))
	p.indexed = false // indexed by the first batch that changes something
	p.unindexed = nil
	p.built = make(map[string]bool)
	for _, k := range eager {
		p.built[k] = true
	}
	p.addBuilt(built)
	p.ensure(p.eagerKinds(known)...) // a subscriber came meanwhile
	p.publish([]Change{{Op: "reset", Pool: st.poolUUID}})
	return nil
}

// eagerKinds returns the kinds of classes that subscribers watch (p.mu
// held).
func (p *Pool) eagerKinds(classes []string) []string {
	var out []string
	for _, c := range classes {
		for _, k := range kindsOf(c) {
			if p.eager[""] || p.eager[k] {
				out = append(out, k)
			}
		}
	}
	return out
}

// classOfKind is the XAPI class whose records make the objects of a kind.
func classOfKind(kind string) string {
	switch kind {
	case "VM-template", "VM-snapshot", "VM-controller":
		return "VM"
	case "VDI-snapshot", "VDI-unmanaged":
		return "VDI"
	case "alarm":
		return "message"
	}
	return kind
}

// kindsOf returns the kinds of the objects that records of class make
// (none for the classes read only through links).
func kindsOf(class string) []string {
	switch class {
	case "VM":
		return []string{"VM", "VM-template", "VM-snapshot", "VM-controller"}
	case "VDI":
		return []string{"VDI", "VDI-snapshot", "VDI-unmanaged"}
	case "message":
		return []string{"message", "alarm"}
	}
	if transformOf(class) == nil {
		return nil
	}
	return []string{class}
}

// ensure builds the objects of those of kinds that are not built yet and
// whose class is cached (p.mu held for writing). Objects are built from
// the current records, so a kind built late is as current as the others;
// from then on, apply keeps it current.
func (p *Pool) ensure(kinds ...string) {
	if !p.loaded {
		return
	}
	var todo []string
	for _, k := range kinds {
		c := classOfKind(k)
		if !p.built[k] && p.canon[strings.ToLower(c)] == c && slices.Contains(kindsOf(c), k) && !slices.Contains(todo, k) {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return
	}
	bs := build(&p.st, todo, p.built)
	for _, k := range todo {
		p.built[k] = true
	}
	p.addBuilt(bs)
}

// touched reports whether some kind of class is built, so that its
// records are followed by apply (p.mu held).
func (p *Pool) touched(class string) bool {
	return slices.ContainsFunc(kindsOf(class), func(k string) bool { return p.built[k] })
}

// complete reports whether every kind of the cached classes is built
// (p.mu held).
func (p *Pool) complete() bool {
	for _, c := range p.classes {
		for _, k := range kindsOf(c) {
			if !p.built[k] {
				return false
			}
		}
	}
	return true
}

// allKinds returns the kinds of the cached classes (p.mu held).
func (p *Pool) allKinds() []string {
	var out []string
	for _, c := range p.classes {
		out = append(out, kindsOf(c)...)
	}
	return out
}

// addBuilt files freshly built objects (p.mu held): in the indexes, and
// their dependencies in the dependency index if it is built, else for
// the next index.
func (p *Pool) addBuilt(bs []built) {
	for _, b := range bs {
		if b.obj == nil {
			continue
		}
		p.put(&entry{id: str(b.obj["id"]), kind: kindOf(p.st.recs[b.ref].class, b.obj), ref: b.ref, obj: b.obj})
	}
	if p.indexed {
		for _, b := range bs {
			p.setDeps(b.ref, b.deps)
		}
	} else {
		p.unindexed = append(p.unindexed, bs...)
	}
}

// built is the result of transforming one record: its object, or none
// when the record's kind is not built (then deps are what decided its
// kind, so that apply notices when it changes).
type built struct {
	ref  xapi.Ref
	obj  Object
	deps []depKey
}

// build transforms the records of st whose kind is one of kinds, on all
// CPUs. The other records of the classes of kinds are reported without
// an object, with what decided their kind, unless their kind is in done
// (already built: they are left alone).
func build(st *store, kinds []string, done map[string]bool) []built {
	if len(kinds) == 0 {
		return nil
	}
	var classes []string
	for _, k := range kinds {
		if c := classOfKind(k); !slices.Contains(classes, c) {
			classes = append(classes, c)
		}
	}
	if slices.ContainsFunc(classes, usesUUIDs) {
		st.indexUUIDs()
	}
	var todo []xapi.Ref
	for r, rec := range st.recs {
		if slices.Contains(classes, rec.class) {
			todo = append(todo, r)
		}
	}
	out := make([]built, len(todo))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(todo)/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := tctx{s: st, memo: &memo{}, deps: make([]depKey, 0, 64)}
			for i := w; i < len(todo); i += workers {
				r := todo[i]
				rec := st.recs[r]
				c.self = r
				out[i].ref = r
				switch k := c.recordKind(rec.class, rec.fields); {
				case slices.Contains(kinds, k):
					out[i].obj = c.transform(rec.class, rec.fields)
				case done[k]:
					out[i].ref = "" // already built: left alone
				}
				out[i].deps = c.finish()
			}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(b built) bool { return b.ref == "" })
}

// kindOf is the collection an object belongs to: its type, except that
// alarm messages form the "alarm" collection (their type stays "message",
// as in XO).
func kindOf(class string, o Object) string {
	if class == "message" {
		if _, ok := o["object"]; ok {
			return "alarm"
		}
	}
	if class == "task" {
		return "task"
	}
	return str(o["type"])
}

// masterRecord returns the pool master's host record, or nil.
func (s *store) masterRecord() map[string]any {
	pool := s.recs[s.poolRef]
	if pool == nil {
		return nil
	}
	if m := s.recs[ref(pool.fields["master"])]; m != nil {
		return m.fields
	}
	return nil
}

// put adds e to the indexes (p.mu held).
func (p *Pool) put(e *entry) {
	p.byID[e.id] = e
	p.byRef[e.ref] = e
	k := p.byKind[e.kind]
	if k == nil {
		k = make(map[string]*entry)
		p.byKind[e.kind] = k
	}
	k[e.id] = e
	delete(p.sorted, e.kind)
}

// drop removes e from the indexes (p.mu held).
func (p *Pool) drop(e *entry) {
	if p.byID[e.id] == e {
		delete(p.byID, e.id)
	}
	if p.byRef[e.ref] == e {
		delete(p.byRef, e.ref)
	}
	if k := p.byKind[e.kind]; k[e.id] == e {
		delete(k, e.id)
	}
	delete(p.sorted, e.kind)
}

// index adds the dependencies of the objects built since the last load
// to the reverse index (p.mu held). Deferred until a batch needs it, so
// that a cold process answering one request never pays for it.
func (p *Pool) index() {
	for _, b := range p.unindexed {
		p.setDeps(b.ref, b.deps)
	}
	p.unindexed = nil
	p.indexed = true
}

// setDeps replaces what dependent is recorded to have read (p.mu held).
func (p *Pool) setDeps(dependent xapi.Ref, keys []depKey) {
	for _, k := range p.fwd[dependent] {
		set := p.deps[k]
		delete(set, dependent)
		if len(set) == 0 {
			delete(p.deps, k)
			if k.field != "" {
				if f := p.depFields[k.ref]; f != nil {
					if f[k.field]--; f[k.field] <= 0 {
						delete(f, k.field)
					}
					if len(f) == 0 {
						delete(p.depFields, k.ref)
					}
				}
			}
		}
	}
	if len(keys) == 0 {
		delete(p.fwd, dependent)
		return
	}
	for _, k := range keys {
		set := p.deps[k]
		if set == nil {
			set = make(map[xapi.Ref]struct{}, 1)
			p.deps[k] = set
			if k.field != "" {
				f := p.depFields[k.ref]
				if f == nil {
					f = make(map[string]int, 2)
					p.depFields[k.ref] = f
				}
				f[k.field]++
			}
		}
		set[dependent] = struct{}{}
	}
	p.fwd[dependent] = keys
}

// dependents adds to dirty every record that read key (p.mu held).
func (p *Pool) dependents(k depKey, dirty map[xapi.Ref]struct{}) {
	for d := range p.deps[k] {
		dirty[d] = struct{}{}
	}
}

// apply applies an event batch obtained with event.from(…, from, …) if
// the cache is still at token from, recomputes the objects that depend on
// what changed, and publishes the changes. It reports false, applying
// nothing, when the cache has moved past from (the other path — watch
// loop or catch-up — got there first), so no batch is applied twice and
// none is skipped.
func (p *Pool) apply(b *xapi.EventBatch, from string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loaded || p.token != from {
		return false
	}
	p.token = b.Token
	events := b.Events
	if !p.indexed {
		// The first batch after a load holds at least the load's own
		// event.inject, which changes nothing: skip such no-op events
		// before paying for the index.
		events = p.withoutNoops(events)
	}
	if len(events) > 0 {
		p.index()
	}
	dirty := make(map[xapi.Ref]struct{})
	for _, ev := range events {
		class := p.canon[strings.ToLower(ev.Class)]
		if class == "" {
			continue
		}
		old := p.st.recs[ev.Ref]
		switch ev.Operation {
		case "del":
			if old == nil {
				continue
			}
			delete(p.st.recs, ev.Ref)
			if u := str(old.fields["uuid"]); u != "" && p.st.byUUID != nil && p.st.byUUID[u] == ev.Ref {
				delete(p.st.byUUID, u)
				p.dependents(depKey{xapi.Ref("uuid:" + u), ""}, dirty)
			}
			p.dependents(depKey{ev.Ref, ""}, dirty)
		case "add", "mod":
			if ev.Snapshot == nil {
				continue
			}
			if old == nil {
				p.dependents(depKey{ev.Ref, ""}, dirty)
			} else {
				for f := range p.depFields[ev.Ref] {
					if !sameValue(old.fields[f], ev.Snapshot[f]) {
						p.dependents(depKey{ev.Ref, f}, dirty)
					}
				}
			}
			p.st.recs[ev.Ref] = &record{class: class, fields: ev.Snapshot}
			if u := str(ev.Snapshot["uuid"]); u != "" && p.st.byUUID != nil && p.st.byUUID[u] != ev.Ref {
				p.st.byUUID[u] = ev.Ref
				p.dependents(depKey{xapi.Ref("uuid:" + u), ""}, dirty)
			}
		default:
			continue
		}
		dirty[ev.Ref] = struct{}{}
	}
	var changes []Change
	m := &memo{}
	for r := range dirty {
		changes = p.recompute(r, m, changes)
	}
	p.publish(changes)
	return true
}

// withoutNoops returns the events that change the cache: it drops
// "add"/"mod" events whose snapshot equals the cached record (p.mu held).
func (p *Pool) withoutNoops(events []xapi.Event) []xapi.Event {
	var out []xapi.Event
	for _, ev := range events {
		if ev.Operation != "del" && ev.Snapshot != nil {
			if old := p.st.recs[ev.Ref]; old != nil && reflect.DeepEqual(old.fields, ev.Snapshot) {
				continue
			}
		}
		out = append(out, ev)
	}
	return out
}

// sameValue compares two record values.
func sameValue(a, b any) bool {
	if x, ok := a.(string); ok {
		y, ok := b.(string)
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

// recompute rebuilds the object of record r and appends the resulting
// changes (p.mu held).
func (p *Pool) recompute(r xapi.Ref, m *memo, changes []Change) []Change {
	old := p.byRef[r]
	var obj Object
	rec := p.st.recs[r]
	switch {
	case rec != nil && !p.touched(rec.class):
		return changes // built from the records when first needed
	case rec != nil:
		c := tctx{s: &p.st, self: r, memo: m}
		if p.built[c.recordKind(rec.class, rec.fields)] {
			obj = c.transform(rec.class, rec.fields)
		}
		p.setDeps(r, c.finish())
	default:
		p.setDeps(r, nil)
	}
	if obj == nil {
		if old != nil {
			p.drop(old)
			changes = append(changes, Change{Op: "remove", Kind: old.kind, ID: old.id, Object: old.obj, Pool: p.st.poolUUID})
		}
		return changes
	}
	e := &entry{id: str(obj["id"]), kind: kindOf(rec.class, obj), ref: r, obj: obj}
	if old != nil {
		if old.id == e.id && old.kind == e.kind && reflect.DeepEqual(old.obj, obj) {
			return changes
		}
		p.drop(old)
		if old.id != e.id || old.kind != e.kind {
			changes = append(changes, Change{Op: "remove", Kind: old.kind, ID: old.id, Object: old.obj, Pool: p.st.poolUUID})
		}
	}
	p.put(e)
	return append(changes, Change{Op: "update", Kind: e.kind, ID: e.id, Object: obj, Pool: p.st.poolUUID})
}

// Objects returns the cached objects of a kind ("VM", "VM-template",
// "host", "alarm", "task", …; see Kinds), sorted by id. It does no I/O:
// call Fresh first. The slice is shared: do not modify it.
func (p *Pool) Objects(kind string) []Object {
	return p.table(kind).objs
}

// Table returns what Objects(kind) returns, together with the columns of
// the property paths of those objects (see filter.Column): cols[j] holds
// paths[j], aligned with objs. Columns are built on first
// use and kept until an object of the kind changes, so that filters over
// large collections read a few compact columns rather than probe every
// object. It does no I/O: call Fresh first. Both are shared: do not
// modify them.
func (p *Pool) Table(kind string, paths []filter.Path) (objs []Object, cols []*filter.Column) {
	t := p.table(kind)
	return t.objs, t.columns(paths)
}

// table returns the current table of a kind, building it if needed.
func (p *Pool) table(kind string) *table {
	p.mu.RLock()
	t, ok := p.sorted[kind]
	p.mu.RUnlock()
	if ok {
		return t
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.sorted[kind]; ok {
		return t
	}
	p.ensure(kind)
	es := p.byKind[kind]
	ids := make([]string, 0, len(es))
	for id := range es {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s := make([]Object, len(ids))
	for i, id := range ids {
		s[i] = es[id].obj
	}
	t = &table{objs: s}
	if p.sorted != nil {
		p.sorted[kind] = t
	}
	return t
}

// Object returns the cached object of that kind with that id. The id may
// be the object's id (its uuid, or "<pool uuid>-<uuid>" for default
// templates), its uuid, or its XAPI ref, as XO accepts. kind "" matches
// any kind. It does no I/O: call Fresh first. A miss is a *NotFoundError
// (errors.Is(err, ErrNotFound)).
func (p *Pool) Object(kind, id string) (Object, error) {
	if e := p.find(kind, id); e != nil {
		return e.obj, nil
	}
	return nil, &NotFoundError{Type: kind, ID: id}
}

// find returns the entry of that kind ("" for any) and id, building the
// kinds that may hold it if they are not built yet.
func (p *Pool) find(kind, id string) *entry {
	p.mu.RLock()
	e, final := p.lookupKind(kind, id)
	p.mu.RUnlock()
	if e != nil || final {
		return e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.indexUUIDs()
	if kind != "" {
		p.ensure(kind)
	} else {
		// Try the kind of the record behind a uuid or ref first.
		r, ok := p.st.byUUID[id]
		if !ok {
			r = xapi.Ref(id)
		}
		if rec := p.st.recs[r]; rec != nil {
			c := tctx{s: &p.st, self: r}
			p.ensure(c.recordKind(rec.class, rec.fields))
		}
		if p.lookup(id) == nil {
			p.ensure(p.allKinds()...)
		}
	}
	e, _ = p.lookupKind(kind, id)
	return e
}

// lookupKind finds the entry of that kind ("" for any) and id among the
// objects built (p.mu held); final reports whether a miss is final: the
// kinds that could hold the object are built and so is the uuid index
// (or the pool is not loaded).
func (p *Pool) lookupKind(kind, id string) (e *entry, final bool) {
	if e := p.lookup(id); e != nil && (kind == "" || e.kind == kind) {
		return e, true
	}
	if !p.loaded {
		return nil, true
	}
	if p.st.byUUID == nil && !strings.HasPrefix(id, "OpaqueRef:") {
		return nil, false
	}
	if kind != "" {
		return nil, p.built[kind]
	}
	return nil, p.complete()
}

// lookup finds an entry by id, uuid (once indexed) or ref among the
// objects built (p.mu held).
func (p *Pool) lookup(id string) *entry {
	if e := p.byID[id]; e != nil {
		return e
	}
	if strings.HasPrefix(id, "OpaqueRef:") {
		return p.byRef[xapi.Ref(id)]
	}
	if r, ok := p.st.byUUID[id]; ok {
		return p.byRef[r]
	}
	return nil
}

// Ref returns the XAPI ref behind an object id (or uuid, or ref), for
// calls on it; ok is false when the cache has no such object.
func (p *Pool) Ref(id string) (r xapi.Ref, ok bool) {
	if e := p.find("", id); e != nil {
		return e.ref, true
	}
	return "", false
}

// Record returns the cached XAPI record behind ref (shared: read only),
// and its class.
func (p *Pool) Record(r xapi.Ref) (class string, fields map[string]any, ok bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if rec := p.st.recs[r]; rec != nil {
		return rec.class, rec.fields, true
	}
	return "", nil, false
}

// has reports whether the cache may hold an object with that id, uuid or
// ref: one is built, or a record has that uuid or ref. It builds no
// objects (but the uuid index if needed).
func (p *Pool) has(id string) bool {
	p.mu.RLock()
	indexed := p.st.byUUID != nil
	p.mu.RUnlock()
	if !indexed {
		p.mu.Lock()
		p.st.indexUUIDs()
		p.mu.Unlock()
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.lookup(id) != nil {
		return true
	}
	if _, ok := p.st.byUUID[id]; ok {
		return true
	}
	_, ok := p.st.recs[xapi.Ref(id)]
	return ok
}
