package xapi

import "unsafe"

// Allocation batching for decoded strings. A get_all_records of 10,000 VMs
// yields about a million string values; allocating each one (and, in an
// `any`, its boxed header) separately dominated decoding time through the
// garbage collector. The decoder instead copies string bytes into shared
// chunks and boxes strings from shared slabs.
//
// Both are sound with the Go garbage collector: a string or interface that
// points into a chunk or slab keeps the whole chunk alive, and chunks are
// never written after a string was made from them. The cost is retention:
// one live string keeps its (small) chunk alive, which fits records that
// are used and dropped together.

const (
	arenaChunk  = 32 << 10 // bytes per string chunk
	arenaMaxStr = 1 << 10  // longer strings get their own allocation
	slabSize    = 256      // boxed strings per slab
)

type arena struct {
	buf    []byte   // current chunk; strings are made from buf[:len(buf)]
	slab   []string // current slab of boxed strings
	elems  []any    // current chunk of array elements
	slices [][]any  // current slab of boxed arrays
}

// grow returns the size of the next chunk after one of size n: chunks
// start at a sixteenth of full, then double, so that the small answers of
// most calls do not pay for full chunks.
func grow(n, full int) int {
	if n == 0 {
		return full / 16
	}
	return min(2*n, full)
}

// string returns a string with the bytes of b, batching small ones.
func (a *arena) string(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > arenaMaxStr {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(grow(cap(a.buf), arenaChunk), arenaMaxStr))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], n)
}

// eface is the runtime layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// stringType is the type word of an `any` holding a string.
func stringType() unsafe.Pointer {
	var x any = ""
	return (*eface)(unsafe.Pointer(&x)).typ
}

// box returns s in an interface whose data word points into a shared slab,
// which is what the runtime would allocate on its own for `any(s)`.
func (a *arena) box(s string, typ unsafe.Pointer) any {
	if len(a.slab) == cap(a.slab) {
		a.slab = make([]string, 0, grow(cap(a.slab), slabSize))
	}
	a.slab = append(a.slab, s)
	var x any
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = typ, unsafe.Pointer(&a.slab[len(a.slab)-1])
	return x
}

const anyChunk = 4096 // []any elements per chunk

// anys returns a slice of length and capacity n carved from a shared
// chunk (appending to it copies, it never overwrites a neighbour).
func (a *arena) anys(n int) []any {
	if n == 0 {
		return []any{}
	}
	if n > anyChunk/16 {
		return make([]any, n)
	}
	if cap(a.elems)-len(a.elems) < n {
		a.elems = make([]any, 0, max(grow(cap(a.elems), anyChunk), anyChunk/16))
	}
	start := len(a.elems)
	a.elems = a.elems[:start+n]
	return a.elems[start : start+n : start+n]
}

// boxAnys returns s in an interface whose data word points into a shared
// slab of slice headers (see box).
func (a *arena) boxAnys(s []any, typ unsafe.Pointer) any {
	if len(a.slices) == cap(a.slices) {
		a.slices = make([][]any, 0, grow(cap(a.slices), slabSize))
	}
	a.slices = append(a.slices, s)
	var x any
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = typ, unsafe.Pointer(&a.slices[len(a.slices)-1])
	return x
}

// anysType is the type word of an `any` holding a []any.
func anysType() unsafe.Pointer {
	var x any = []any(nil)
	return (*eface)(unsafe.Pointer(&x)).typ
}
