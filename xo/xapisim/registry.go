package xapisim

import (
	"crypto/sha1"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Record holds one XAPI object's public fields, keyed by their wire names.
//
// Values use these Go types, which fix their wire encoding:
//   - string (also refs, uuids and enums): untyped XML-RPC string
//   - int64: untyped decimal string in XML-RPC, number in JSON-RPC
//   - float64: <double>
//   - bool: <boolean>
//   - time.Time: <dateTime.iso8601> YYYYMMDDTHH:MM:SSZ
//   - []string: array (sets of strings or refs)
//   - map[string]string: struct (string->string and ref->string maps)
//   - map[string]any, []any: nested values of the types above
type Record map[string]any

// NullRef is XAPI's reference to no object.
const NullRef = "OpaqueRef:NULL"

type object struct {
	class    string
	ref      string
	rec      Record
	created  int64 // generation at which the object was added
	modified int64 // generation of the last change

	// prev and next link the objects in order of modified, oldest first,
	// so that ChangesSince walks only what changed after a token.
	prev, next *object
}

type tombstone struct {
	class   string
	ref     string
	created int64
	deleted int64
}

// Registry is the simulator's object database. Every change goes through a
// write transaction (Registry.Write), which bumps the generation once and
// records which objects changed, so event.from can report coalesced
// add/mod/del events since any token.
type Registry struct {
	mu      sync.RWMutex // Read holds it shared, Write exclusively
	seed    string
	nextID  atomic.Int64 // UUID counter; atomic so read transactions may draw UUIDs
	gen     int64
	objects map[string]*object            // by ref
	byClass map[string]map[string]*object // class -> ref -> object
	byUUID  map[string]*object
	dead    []tombstone // in order of deletion
	horizon int64       // tokens older than this generation get EVENTS_LOST
	// oldest and newest end the list of live objects in order of their
	// last change (object.prev/next).
	oldest, newest *object
	changed        chan struct{} // closed and replaced on every committed write
}

// maxTombstones bounds the deletion log; older tokens get EVENTS_LOST.
const maxTombstones = 100000

// NewRegistry returns an empty registry whose generated refs and UUIDs are a
// deterministic function of seed and creation order.
func NewRegistry(seed string) *Registry {
	return &Registry{
		seed:    seed,
		objects: make(map[string]*object),
		byClass: make(map[string]map[string]*object),
		byUUID:  make(map[string]*object),
		changed: make(chan struct{}),
	}
}

// Tx is a transaction on the registry. A Tx from Read must not change
// anything; a Tx from Write may, and its changes become visible to event.from
// atomically when the write function returns.
type Tx struct {
	r       *Registry
	write   bool
	touched map[string]bool
	gen     int64
}

// Read runs fn with the registry locked for reading; reads run
// concurrently with each other.
func (r *Registry) Read(fn func(tx *Tx)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn(&Tx{r: r})
}

// Write runs fn with the registry locked. Objects created, modified (through
// Tx.Modify) or deleted in fn get the next generation. If fn returns an error
// the changes made so far are still applied: simulator code checks
// preconditions before it changes anything, as XAPI does.
func (r *Registry) Write(fn func(tx *Tx) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := &Tx{r: r, write: true, touched: map[string]bool{}, gen: r.gen + 1}
	err := fn(tx)
	if len(tx.touched) > 0 {
		r.gen = tx.gen
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return err
}

// Generation returns the current generation and a channel that is closed at
// the next committed change.
func (r *Registry) Generation() (int64, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gen, r.changed
}

// NewUUID returns the next deterministic UUID (a name-based UUID of the
// registry seed and a counter). It needs no transaction.
func (r *Registry) NewUUID() string { return r.newUUID() }

func (r *Registry) newUUID() string {
	n := r.nextID.Add(1)
	h := sha1.Sum([]byte(fmt.Sprintf("%s/%d", r.seed, n)))
	h[6] = h[6]&0x0f | 0x50 // version 5
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// NewRef returns a fresh OpaqueRef.
func (tx *Tx) NewRef() string { return "OpaqueRef:" + tx.r.newUUID() }

// NewUUID returns a fresh deterministic UUID.
func (tx *Tx) NewUUID() string { return tx.r.newUUID() }

// Create adds an object of class (the XAPI class name, e.g. "VM") and returns
// its ref. A missing "uuid" field is filled in.
func (tx *Tx) Create(class string, rec Record) string {
	tx.mustWrite()
	ref := tx.NewRef()
	tx.CreateWithRef(class, ref, rec)
	return ref
}

// CreateWithRef adds an object under a ref chosen by the caller (sessions).
func (tx *Tx) CreateWithRef(class, ref string, rec Record) {
	tx.mustWrite()
	if u, _ := rec["uuid"].(string); u == "" {
		rec["uuid"] = tx.r.newUUID()
	}
	if old := tx.r.objects[ref]; old != nil {
		tx.r.unlink(old)
	}
	o := &object{class: class, ref: ref, rec: rec, created: tx.gen, modified: tx.gen}
	tx.r.append(o)
	tx.r.objects[ref] = o
	m := tx.r.byClass[class]
	if m == nil {
		m = make(map[string]*object)
		tx.r.byClass[class] = m
	}
	m[ref] = o
	tx.r.byUUID[rec["uuid"].(string)] = o
	tx.touched[ref] = true
}

// Get returns the live record of ref and its class. Callers must not change
// it outside Modify.
func (tx *Tx) Get(ref string) (class string, rec Record, ok bool) {
	o := tx.r.objects[ref]
	if o == nil {
		return "", nil, false
	}
	return o.class, o.rec, true
}

// GetClass returns the record of ref if it is an object of class.
func (tx *Tx) GetClass(class, ref string) (Record, bool) {
	o := tx.r.objects[ref]
	if o == nil || o.class != class {
		return nil, false
	}
	return o.rec, true
}

// ByUUID returns the ref and class of the object with uuid.
func (tx *Tx) ByUUID(uuid string) (class, ref string, ok bool) {
	o := tx.r.byUUID[uuid]
	if o == nil {
		return "", "", false
	}
	return o.class, o.ref, true
}

// All returns the refs of every object of class, sorted for determinism.
func (tx *Tx) All(class string) []string {
	m := tx.r.byClass[class]
	refs := make([]string, 0, len(m))
	for ref := range m {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	return refs
}

// Count returns the number of objects of class.
func (tx *Tx) Count(class string) int { return len(tx.r.byClass[class]) }

// Classes returns the classes that have or had objects.
func (tx *Tx) Classes() []string {
	cs := make([]string, 0, len(tx.r.byClass))
	for c := range tx.r.byClass {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Modify marks ref as changed in this transaction and returns its live
// record for the caller to update. It returns nil if ref does not exist.
func (tx *Tx) Modify(ref string) Record {
	tx.mustWrite()
	o := tx.r.objects[ref]
	if o == nil {
		return nil
	}
	if o.modified != tx.gen || o != tx.r.newest {
		tx.r.unlink(o)
		o.modified = tx.gen
		tx.r.append(o)
	}
	tx.touched[ref] = true
	return o.rec
}

// append puts o at the newest end of the change-ordered list.
func (r *Registry) append(o *object) {
	o.prev, o.next = r.newest, nil
	if r.newest != nil {
		r.newest.next = o
	} else {
		r.oldest = o
	}
	r.newest = o
}

// unlink takes o out of the change-ordered list.
func (r *Registry) unlink(o *object) {
	if o.prev != nil {
		o.prev.next = o.next
	} else if r.oldest == o {
		r.oldest = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else if r.newest == o {
		r.newest = o.prev
	}
	o.prev, o.next = nil, nil
}

// Delete removes ref. It does not touch objects that refer to it: class code
// keeps reverse references consistent.
func (tx *Tx) Delete(ref string) {
	tx.mustWrite()
	o := tx.r.objects[ref]
	if o == nil {
		return
	}
	tx.r.unlink(o)
	delete(tx.r.objects, ref)
	delete(tx.r.byClass[o.class], ref)
	if u, _ := o.rec["uuid"].(string); u != "" && tx.r.byUUID[u] == o {
		delete(tx.r.byUUID, u)
	}
	tx.r.dead = append(tx.r.dead, tombstone{class: o.class, ref: ref, created: o.created, deleted: tx.gen})
	if len(tx.r.dead) > maxTombstones {
		drop := len(tx.r.dead) - maxTombstones/2
		tx.r.horizon = tx.r.dead[drop-1].deleted
		tx.r.dead = append([]tombstone(nil), tx.r.dead[drop:]...)
	}
	tx.touched[ref] = true
}

func (tx *Tx) mustWrite() {
	if !tx.write {
		panic("xapisim: change in a read transaction")
	}
}

// Change is one coalesced change since a generation, as event.from reports it.
type Change struct {
	Class     string
	Ref       string
	Operation string // "add", "mod" or "del"
	Record    Record // nil for "del"; the live record: copy or encode under Read
	Gen       int64
}

// ChangesSince returns the coalesced changes after generation since for the
// classes accepted by match (nil matches all), and false if since is older
// than the registry keeps deletions for (EVENTS_LOST). Call it inside Read.
func (tx *Tx) ChangesSince(since int64, match func(class, ref string) bool) ([]Change, bool) {
	if since < tx.r.horizon {
		return nil, false
	}
	// Walk back from the newest change: the cost is the number of objects
	// changed since the token, not the size of the database.
	var out []Change
	for o := tx.r.newest; o != nil && o.modified > since; o = o.prev {
		if match != nil && !match(o.class, o.ref) {
			continue
		}
		op := "mod"
		if o.created > since {
			op = "add"
		}
		out = append(out, Change{Class: o.class, Ref: o.ref, Operation: op, Record: o.rec, Gen: o.modified})
	}
	first := sort.Search(len(tx.r.dead), func(i int) bool { return tx.r.dead[i].deleted > since })
	for _, d := range tx.r.dead[first:] {
		if d.created > since || (match != nil && !match(d.class, d.ref)) {
			continue
		}
		out = append(out, Change{Class: d.class, Ref: d.ref, Operation: "del", Gen: d.deleted})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Gen != out[j].Gen {
			return out[i].Gen < out[j].Gen
		}
		return out[i].Ref < out[j].Ref
	})
	return out, true
}

// Gen returns the current generation (inside a transaction).
func (tx *Tx) Gen() int64 { return tx.r.gen }
