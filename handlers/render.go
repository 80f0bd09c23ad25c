package handlers

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/filter"
)

// Content types of collection answers.
const (
	contentJSON     = "application/json; charset=utf-8"
	contentNDJSON   = "application/x-ndjson"
	contentMarkdown = "text/markdown; charset=utf-8"
)

// flushBytes is how much output is buffered before it is sent, once an
// answer is streamed.
const flushBytes = 32 << 10

// wholeBytes is the largest answer sent in one piece, with its
// Content-Length: a collection answer is buffered up to this size, and
// streamed in chunks of flushBytes only beyond. One write instead of a
// chunk per flushBytes saves system calls and the client's chunk parsing.
const wholeBytes = 1 << 20

// bufferPool keeps the buffers of collection answers for reuse (see
// wholeBytes), and their lists of matching rows: each answer takes them
// and gives them back.
type bufferPool struct{ p, rows sync.Pool }

// get returns an empty buffer, from the pool if it has one. A nil pool
// allocates.
func (bp *bufferPool) get() []byte {
	if bp != nil {
		if b, ok := bp.p.Get().(*[]byte); ok {
			return (*b)[:0]
		}
	}
	return make([]byte, 0, flushBytes+4096)
}

// put gives b back to the pool, unless it grew well past wholeBytes.
func (bp *bufferPool) put(b []byte) {
	if bp != nil && cap(b) <= 2*wholeBytes {
		bp.p.Put(&b)
	}
}

// getRows returns an empty row list, from the pool if it has one. A nil
// pool allocates.
func (bp *bufferPool) getRows() []int32 {
	if bp != nil {
		if r, ok := bp.rows.Get().(*[]int32); ok {
			return (*r)[:0]
		}
	}
	return nil
}

// putRows gives a row list back to the pool.
func (bp *bufferPool) putRows(r []int32) {
	if bp != nil && r != nil {
		bp.rows.Put(&r)
	}
}

// HrefIn returns the href function of objects listed under path, e.g.
// HrefIn("/rest/v0/vms") maps {id: "abc"} to "/rest/v0/vms/abc". A trailing
// slash of path is ignored.
func HrefIn(path string) func(map[string]any) string {
	path = strings.TrimRight(path, "/") + "/"
	return func(obj map[string]any) string { return path + idString(obj["id"]) }
}

// idString is JavaScript's String(id).
func idString(id any) string {
	switch id := id.(type) {
	case string:
		return id
	case nil:
		return "undefined"
	case float64, float32, int, int64, int32, uint, uint32, uint64:
		return string(appendJSON(nil, id, false, 0))
	}
	return fmt.Sprint(id)
}

// mapper turns objects into collection items as q asks: the URL without
// fields, else the picked fields (or every field for fields=*) followed by
// href and url.
type mapper struct {
	fields *Fields
	href   func(map[string]any) string
	// hrefBase, when set, replaces href for rows read from tables: the
	// URL is hrefBase + the id. It must need no JSON escaping.
	hrefBase string
	// scratch is reused to encode hrefs (nil: allocate).
	scratch *[]byte
	// keys, when set, keeps the member keys of appendDirect from row to
	// row (nil: build them for each item).
	keys *directKeys
	// items, when set, keeps the encoded items of tables' rows from
	// answer to answer (see itemCache); cur, set with it, is the block
	// of the current table.
	items *itemCache
	cur   *itemBlock
	noURL bool // only href, no url (single objects)
}

// directKeys are what precedes each member's value in appendDirect's
// items at one indentation: the newline and indent, the quoted key and
// the separator.
type directKeys struct {
	pretty bool
	depth  int
	fields [][]byte // one per Fields.list entry
	links  [][]byte // one per mapper.links
	end    []byte   // the newline and indent before the closing brace
}

// directKeys returns the member keys of appendDirect for items at depth,
// kept in m.keys when set.
func (m mapper) directKeys(pretty bool, depth int) *directKeys {
	if k := m.keys; k != nil && k.fields != nil && k.pretty == pretty && k.depth == depth {
		return k
	}
	k := m.keys
	if k == nil {
		k = &directKeys{}
	}
	member := func(name string) []byte {
		return appendKeySeparator(appendString(appendNewline(nil, pretty, depth+1), name), pretty)
	}
	*k = directKeys{pretty: pretty, depth: depth, end: appendNewline(nil, pretty, depth)}
	k.fields = make([][]byte, len(m.fields.list))
	for i, fl := range m.fields.list {
		k.fields[i] = member(fl.raw)
	}
	for _, name := range m.links() {
		k.links = append(k.links, member(name))
	}
	return k
}

// appendTableRow is appendRow for a row of a table, copying the item from
// m.items when it keeps the row's table.
func (m mapper) appendTableRow(b []byte, rw row, pretty bool, depth int) []byte {
	if m.items == nil || m.cur == nil {
		return m.appendRow(b, rw, pretty, depth)
	}
	key, ok := m.itemKey(rw, pretty, depth)
	if !ok {
		return m.appendRow(b, rw, pretty, depth)
	}
	if m.cur.key != key { // the first row of a table
		*m.cur = itemBlock{key: key} // none, unless the cache has it
		if found := m.items.block(m, key); found != nil {
			*m.cur = *found
		}
	}
	if m.cur.off == nil {
		return m.appendRow(b, rw, pretty, depth)
	}
	return append(b, m.cur.data[m.cur.off[rw.i]:m.cur.off[rw.i+1]]...)
}

// links returns the link members items get: href, and url unless noURL.
func (m mapper) links() []string {
	if m.noURL {
		return []string{"href"}
	}
	return []string{"href", "url"}
}

// appendKeySeparator appends what follows a member's key.
func appendKeySeparator(b []byte, pretty bool) []byte {
	if pretty {
		return append(b, ':', ' ')
	}
	return append(b, ':')
}

// row is an object of a collection answer, with columns to read some of
// its members from instead of the object: the object is row i of a table
// whose columns id and fields hold its id and its picked fields (in
// Fields.list order). Both are nil for an object read alone.
type row struct {
	obj    map[string]any
	id     *filter.Column
	fields []*filter.Column
	i      int
}

// idValue returns the id of the row's object, and whether it has one.
func (r row) idValue() (any, bool) {
	if r.id != nil {
		return r.id.Value(r.i)
	}
	v, ok := r.obj["id"]
	return v, ok
}

// appendItem appends the item for obj.
func (m mapper) appendItem(b []byte, obj map[string]any, pretty bool, depth int) []byte {
	return m.appendRow(b, row{obj: obj}, pretty, depth)
}

// appendRow appends the item for the row's object.
func (m mapper) appendRow(b []byte, rw row, pretty bool, depth int) []byte {
	if m.fields == nil {
		return append(b, m.hrefJSON(rw)...)
	}
	if !m.fields.All && m.fields.direct {
		return m.appendDirect(b, rw, m.hrefJSON(rw), pretty, depth)
	}
	obj := rw.obj
	href := m.hrefOf(rw)
	if m.fields.All {
		keys := make([]string, 0, len(obj)+2)
		for _, k := range objectKeys(obj) {
			if k != "href" && k != "url" {
				keys = append(keys, k)
			}
		}
		n, links := len(keys), m.links()
		return appendObject(b, n+len(links), func(b []byte, i int) []byte {
			if i >= n {
				return appendValueAfterKey(appendString(b, links[i-n]), href, pretty, depth)
			}
			return appendValueAfterKey(appendString(b, keys[i]), obj[keys[i]], pretty, depth)
		}, pretty, depth)
	}
	return appendPickNode(b, m.pickLinked(obj, href), pretty, depth)
}

// hrefOf returns the URL of the row's object.
func (m mapper) hrefOf(rw row) string {
	if m.hrefBase != "" {
		id, _ := rw.idValue()
		return m.hrefBase + idString(id)
	}
	return m.href(rw.obj)
}

// hrefJSON returns the URL of the row's object as a JSON string, in
// m.scratch when set (valid until the next call).
func (m mapper) hrefJSON(rw row) []byte {
	var b []byte
	if m.scratch != nil {
		b = (*m.scratch)[:0]
		defer func() { *m.scratch = b }()
	}
	if m.hrefBase != "" && rw.id != nil {
		if id, ok := rw.id.String(rw.i); ok {
			// "base" and "id" encoded apart, joined: the same bytes as
			// appendString(base + id), since base needs no escaping.
			b = append(b, '"')
			b = append(b, m.hrefBase...)
			at := len(b)
			b = appendString(b, id)
			copy(b[at:], b[at+1:])
			return b[:len(b)-1]
		}
	}
	b = appendString(b, m.hrefOf(rw))
	return b
}

// appendDirect appends the picked fields of obj, href and url, when picking
// is copying members (Fields.direct): the fast path of plain field names.
func (m mapper) appendDirect(b []byte, rw row, hrefJSON []byte, pretty bool, depth int) []byte {
	keys := m.directKeys(pretty, depth)
	b = append(b, '{')
	for k, fl := range m.fields.list {
		var v any
		var ok bool
		if rw.fields != nil {
			c := rw.fields[k]
			if s, isString := c.String(rw.i); isString {
				b = append(b, keys.fields[k]...)
				b = appendString(b, s)
				b = append(b, ',')
				continue
			}
			v, ok = c.Value(rw.i)
		} else {
			v, ok = rw.obj[fl.raw]
		}
		if !ok {
			continue
		}
		b = append(b, keys.fields[k]...)
		b = appendJSON(b, v, pretty, depth+1)
		b = append(b, ',')
	}
	for i, key := range keys.links {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, key...)
		b = append(b, hrefJSON...)
	}
	b = append(b, keys.end...)
	return append(b, '}')
}

// pickLinked picks the fields of obj and adds href and url last (a picked
// field of either name is replaced).
func (m mapper) pickLinked(obj map[string]any, href string) *pickNode {
	p := m.fields.pick(obj)
	for i := 0; i < len(p.keys); {
		if p.keys[i] == "href" || p.keys[i] == "url" {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			p.vals = append(p.vals[:i], p.vals[i+1:]...)
			continue
		}
		i++
	}
	for _, k := range m.links() {
		p.keys = append(p.keys, k)
		p.vals = append(p.vals, href)
	}
	return p
}

// itemCache keeps, for a collection route, the encoded items of every row
// of its recent tables, for the answers whose items are read from columns
// alone (URLs, or a few plain fields read from columns): such an answer
// copies the items of its rows instead of encoding them. Tables and their
// columns never change (a change to a kind makes a new table), so a block
// is keyed by the columns it was encoded from. A block is built when its
// key is asked for the second time, and the cache keeps the itemCacheSize
// most recent, so one-off queries cost no encoding of whole tables.
type itemCache struct {
	mu     sync.Mutex
	blocks []*itemBlock // most recent first
	asked  []itemKey    // keys asked for once, most recent first
}

// itemCacheSize is the most blocks an itemCache keeps (each holds the
// items of a whole table: about 2 MiB for 10,000 VMs and two fields).
const itemCacheSize = 2

// itemCacheMinRows is the smallest table whose items are cached.
const itemCacheMinRows = 1000

// itemKey identifies the items of a table's rows: the columns they are
// read from and how they are indented.
type itemKey struct {
	id     *filter.Column
	fields [maxFieldColumns]*filter.Column
	pretty bool
	depth  int
}

// itemBlock holds the items of every row of a table: row i's is
// data[off[i]:off[i+1]]. off is nil in the block of a table that is not
// cached (see maxItemBlock).
type itemBlock struct {
	key  itemKey
	data []byte
	off  []uint32
}

// itemSample is how many items of a block size the rest of it.
const itemSample = 64

// maxItemBlock bounds the items of a block: a table whose items take more
// (long field values) is not cached, its block left empty.
const maxItemBlock = 16 << 20

// itemKey returns the key of rw's item, and false when the item is not
// read from columns alone.
func (m mapper) itemKey(rw row, pretty bool, depth int) (itemKey, bool) {
	if rw.id == nil || m.hrefBase == "" || m.noURL || rw.id.Len() < itemCacheMinRows {
		return itemKey{}, false
	}
	key := itemKey{id: rw.id, pretty: pretty, depth: depth}
	if m.fields != nil {
		if m.fields.All || !m.fields.direct || rw.fields == nil || len(rw.fields) > maxFieldColumns {
			return itemKey{}, false
		}
		copy(key.fields[:], rw.fields)
	}
	return key, true
}

// block returns the block of key, building it if key was asked for
// before, or nil.
func (c *itemCache) block(m mapper, key itemKey) *itemBlock {
	c.mu.Lock()
	for i, b := range c.blocks {
		if b.key == key {
			copy(c.blocks[1:i+1], c.blocks[:i])
			c.blocks[0] = b
			c.mu.Unlock()
			return b
		}
	}
	i := slices.Index(c.asked, key)
	if i < 0 {
		c.asked = append([]itemKey{key}, c.asked[:min(len(c.asked), itemCacheSize-1)]...)
		c.mu.Unlock()
		return nil
	}
	c.asked = slices.Delete(c.asked, i, i+1)
	c.mu.Unlock()

	// Encoded outside the lock; two answers may both build it.
	n := key.id.Len()
	b := &itemBlock{key: key, off: make([]uint32, n+1)}
	rw := row{id: key.id}
	if m.fields != nil {
		rw.fields = key.fields[:len(m.fields.list)]
	}
	m.keys, m.scratch = &directKeys{}, new([]byte)
	for i := range n {
		if i == itemSample {
			// Room for the rest, as long as the first items say, so
			// that the block is not copied as it grows.
			b.data = slices.Grow(b.data, len(b.data)/itemSample*(n-i)*9/8)
		}
		if len(b.data) > maxItemBlock {
			// Too large to keep: the block stays, empty, to say so.
			b.data, b.off = nil, nil
			break
		}
		b.off[i] = uint32(len(b.data))
		rw.i = i
		b.data = m.appendRow(b.data, rw, key.pretty, key.depth)
	}
	if b.off != nil {
		b.off[n] = uint32(len(b.data))
		b.data = slices.Clip(b.data)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, other := range c.blocks {
		if other.key == key { // built meanwhile by another answer
			return other
		}
	}
	c.blocks = append([]*itemBlock{b}, c.blocks[:min(len(c.blocks), itemCacheSize-1)]...)
	return b
}

// WriteCollection answers a collection: the objects of items that match
// q.Filter, at most q.Limit of them (in items' order), each mapped as q.Fields
// says (URLs, picked fields plus href and url, or whole objects plus href and
// url), as pretty JSON (XO's 2 spaces), NDJSON (q.NDJSON) or a markdown table
// (q.Markdown). href gives each object's URL (see HrefIn).
//
// An answer of up to wholeBytes (1 MiB) is sent in one write with its
// Content-Length; a larger one is streamed: items are encoded one by one
// and sent in chunks, so a large collection is never held in one buffer.
// Once the first byte is sent, errors can no longer change the status; they
// are returned for the log. It stops early, returning the context's error,
// when the client leaves.
func WriteCollection(w http.ResponseWriter, r *http.Request, q Query, items iter.Seq[map[string]any], href func(map[string]any) string) error {
	rows := func(yield func(row) bool) {
		for obj := range items {
			if !yield(row{obj: obj}) {
				return
			}
		}
	}
	return writeRows(w, r, q, rows, mapper{fields: q.Fields, href: href, keys: new(directKeys)}, nil)
}

// writeTables answers a collection read from xo tables (see
// Pools.Tables) as WriteCollection does, reading from the tables' columns
// what tableQuery says.
func writeTables(w http.ResponseWriter, r *http.Request, q Query, pools *xo.Pools, kind, base string, st *routeState) error {
	tq := newTableQuery(q)
	tables, err := pools.Tables(r.Context(), kind, tq.paths)
	if err != nil {
		return err
	}
	return tq.write(w, r, q, tables, base, st)
}

// routeState is what a collection route keeps from answer to answer:
// buffers and encoded items. The zero value is ready to use.
type routeState struct {
	bufs  bufferPool
	items itemCache
}

// tableQuery is a collection query over xo tables: the columns it reads
// are the filter plan's properties, the id (for href, base + "/" + id)
// and, when they are few, the picked fields.
type tableQuery struct {
	plan      *filter.Plan  // nil without a filter
	paths     []filter.Path // of the columns to read
	nplan     int           // paths[:nplan] are the plan's, paths[nplan] the id
	fieldCols bool          // paths[nplan+1:] are Fields.list
}

// newTableQuery returns the table query of q.
func newTableQuery(q Query) tableQuery {
	var tq tableQuery
	if q.Filter != nil {
		tq.plan = filter.NewPlan(q.Filter)
		tq.paths = append(tq.paths, tq.plan.Paths()...)
	}
	tq.nplan = len(tq.paths)
	tq.paths = append(tq.paths, filter.Path{"id"})
	if f := q.Fields; f != nil && f.direct && !f.All && len(f.list) <= maxFieldColumns {
		tq.fieldCols = true
		for _, fl := range f.list {
			tq.paths = append(tq.paths, filter.Path{fl.raw})
		}
	}
	return tq
}

// write answers q over tables, whose columns hold tq.paths, with the
// objects' URLs under base, using the route's state st (nil: none).
func (tq tableQuery) write(w http.ResponseWriter, r *http.Request, q Query, tables []xo.Table, base string, st *routeState) error {
	var bufs *bufferPool
	m := mapper{fields: q.Fields, href: HrefIn(base), scratch: new([]byte), keys: new(directKeys)}
	if st != nil {
		bufs, m.items, m.cur = &st.bufs, &st.items, new(itemBlock)
	}
	matched := bufs.getRows() // the rows the filter matches, table by table
	defer func() { bufs.putRows(matched) }()
	rows := func(yield func(row) bool) {
		for _, t := range tables {
			rw := row{id: t.Columns[tq.nplan]}
			if tq.fieldCols {
				rw.fields = t.Columns[tq.nplan+1:]
			}
			if tq.plan == nil || q.Limit >= 0 {
				// A row at a time, to stop at the limit.
				var m *filter.Matcher
				if tq.plan != nil {
					m = tq.plan.Matcher(t.Columns[:tq.nplan])
				}
				for i, obj := range t.Objects {
					if m != nil && !m.Match(i, obj) {
						continue
					}
					rw.obj, rw.i = obj, i
					if !yield(rw) {
						return
					}
				}
				continue
			}
			// A filter step at a time over the whole table.
			matched = tq.plan.Matcher(t.Columns[:tq.nplan]).Rows(t.Objects, matched[:0])
			for _, i := range matched {
				rw.obj, rw.i = t.Objects[i], int(i)
				if !yield(rw) {
					return
				}
			}
		}
	}
	q.Filter = nil // applied by rows
	if base = strings.TrimRight(base, "/") + "/"; string(appendString(nil, base)) == `"`+base+`"` {
		m.hrefBase = base
	}
	return writeRows(w, r, q, rows, m, bufs)
}

// maxFieldColumns is the most picked fields writeTables reads from
// columns: a column costs a read of every object of the kind when it is
// built, so it only pays for a few fields.
const maxFieldColumns = 4

// writeRows is WriteCollection over rows, with m mapping them, in a
// buffer of bufs (nil: a new one).
func writeRows(w http.ResponseWriter, r *http.Request, q Query, rows iter.Seq[row], m mapper, bufs *bufferPool) error {
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), buf: bufs.get()}
	defer func() { bufs.put(sw.buf) }()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	var md *markdownTable
	switch {
	case q.NDJSON:
		h.Set("Content-Type", contentNDJSON)
	case q.Markdown:
		h.Set("Content-Type", contentMarkdown)
		md = &markdownTable{}
	default:
		h.Set("Content-Type", contentJSON)
		sw.buf = append(sw.buf, '[')
	}
	ctx := r.Context()
	n := 0
	for rw := range rows {
		if q.Limit >= 0 && n >= q.Limit {
			break
		}
		if q.Filter != nil && !q.Filter.Match(rw.obj) {
			continue
		}
		switch {
		case q.NDJSON:
			sw.buf = m.appendTableRow(sw.buf, rw, false, 0)
			sw.buf = append(sw.buf, '\n')
		case md != nil:
			sw.buf = md.appendRow(sw.buf, m, rw.obj)
		default:
			if n > 0 {
				sw.buf = append(sw.buf, ',')
			}
			sw.buf = append(sw.buf, '\n', ' ', ' ')
			sw.buf = m.appendTableRow(sw.buf, rw, true, 1)
		}
		n++
		if len(sw.buf) >= flushBytes && (sw.sent || len(sw.buf) >= wholeBytes) {
			if err := sw.flush(); err != nil {
				return err
			}
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("writing collection: %w", context.Cause(ctx))
			}
		}
	}
	switch {
	case q.NDJSON:
	case md != nil:
		if n == 0 {
			sw.buf = append(sw.buf, "No results."...)
		}
	default:
		if n > 0 {
			sw.buf = append(sw.buf, '\n')
		}
		sw.buf = append(sw.buf, ']')
	}
	return sw.finish()
}

// WriteObject answers one object as pretty JSON (XO's 2 spaces): the
// whole object, or only the picked fields when fields is not nil (see
// ParseFields; fields=* is the whole object), followed by href.
func WriteObject(w http.ResponseWriter, fields *Fields, obj map[string]any, href string) error {
	if fields == nil {
		fields = &Fields{All: true}
	}
	m := mapper{fields: fields, href: func(map[string]any) string { return href }, noURL: true}
	h := w.Header()
	h.Set("Content-Type", contentJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	if _, err := w.Write(m.appendItem(nil, obj, true, 0)); err != nil {
		return fmt.Errorf("writing object: %w", err)
	}
	return nil
}

// streamWriter sends a byte buffer to the client in chunks.
type streamWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	buf  []byte
	sent bool // something was sent
}

// flush sends the buffer, in chunks of at most flushBytes, flushing the
// connection after each.
func (s *streamWriter) flush() error {
	for chunk := range slices.Chunk(s.buf, flushBytes) {
		if _, err := s.w.Write(chunk); err != nil {
			return fmt.Errorf("writing response: %w", err)
		}
		if err := s.flushConn(); err != nil {
			return err
		}
	}
	if len(s.buf) == 0 {
		if err := s.flushConn(); err != nil {
			return err
		}
	}
	s.buf, s.sent = s.buf[:0], true
	return nil
}

// finish sends what is left: when nothing was sent yet, the whole answer
// in one write, with its Content-Length.
func (s *streamWriter) finish() error {
	if s.sent {
		return s.flush()
	}
	s.w.Header().Set("Content-Length", strconv.Itoa(len(s.buf)))
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("writing response: %w", err)
	}
	s.buf, s.sent = s.buf[:0], true
	return nil
}

// flushConn flushes the connection.
func (s *streamWriter) flushConn() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flushing response: %w", err)
	}
	return nil
}

// markdownTable renders items as XO's makeMarkdownTable: the header is the
// keys of the first object (without href and url); objects' cells are
// compact JSON; "|" is escaped and newlines become spaces; URL items are
// one per line; no items is "No results.".
type markdownTable struct {
	rows   int
	header []string
}

func (t *markdownTable) appendRow(b []byte, m mapper, obj map[string]any) []byte {
	if t.rows > 0 {
		b = append(b, '\n')
	}
	t.rows++
	href := m.href(obj)
	if m.fields == nil {
		return append(b, href...)
	}
	var get func(key string) (any, bool)
	if m.fields.All {
		get = func(key string) (any, bool) { v, ok := obj[key]; return v, ok }
	} else {
		p := m.fields.pick(obj)
		get = func(key string) (any, bool) { v, i := p.get(key); return v, i >= 0 }
		if t.header == nil {
			t.header = []string{}
			for _, i := range jsKeyOrder(p.keys) {
				t.header = append(t.header, p.keys[i])
			}
		}
	}
	if t.header == nil {
		t.header = []string{}
		for _, k := range objectKeys(obj) {
			if k != "href" && k != "url" {
				t.header = append(t.header, k)
			}
		}
	}
	if t.rows == 1 {
		b = append(b, '|')
		for _, k := range t.header {
			b = append(b, ' ')
			b = appendCell(b, k)
			b = append(b, " |"...)
		}
		b = append(b, "\n|"...)
		for range t.header {
			b = append(b, " --- |"...)
		}
		b = append(b, '\n')
	}
	b = append(b, '|')
	for _, k := range t.header {
		b = append(b, ' ')
		if v, ok := get(k); ok {
			b = appendCell(b, cellText(v))
		}
		b = append(b, " |"...)
	}
	return b
}

// cellText is a markdown cell's text: empty for null, compact JSON for
// objects and arrays, the value for strings, numbers and booleans.
func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	return string(appendJSON(nil, v, false, 0))
}

// appendCell appends s with "|" escaped and line breaks as spaces.
func appendCell(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '|':
			b = append(b, '\\', '|')
		case '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// Watch events.
const (
	EventUpdate = "update" // an object was created or changed
	EventRemove = "remove" // an object was deleted
)

// Event is one change of a watched collection.
type Event struct {
	// Kind is EventUpdate or EventRemove.
	Kind string
	// Object is the object; for EventRemove at least what the href
	// function needs (its id).
	Object map[string]any
}

// WriteWatch streams a watch answer (?ndjson&watch): one NDJSON line per
// event, ["update", item] with item mapped as in WriteCollection (URL,
// picked fields, or the whole object) for the updates that match
// q.Filter, and ["remove", {"href": url}] for every removal (not filtered:
// the removed object may not be known any more). A newline is sent every
// keepAlive when nothing else was, and the output is flushed after every
// line. It returns nil when events is closed, and the context's error when
// the client leaves. It blocks while the client reads slowly, so the
// producer of events must buffer, or drop the watcher, rather than wait.
func WriteWatch(w http.ResponseWriter, r *http.Request, q Query, events <-chan Event, href func(map[string]any) string, keepAlive time.Duration) error {
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 4096)}
	m := mapper{fields: q.Fields, href: href}
	h := w.Header()
	h.Set("Content-Type", contentNDJSON)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := sw.flush(); err != nil {
		return err
	}
	if keepAlive <= 0 {
		keepAlive = DefaultKeepAlive
	}
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch: %w", context.Cause(ctx))
		case <-ticker.C:
			sw.buf = append(sw.buf, '\n')
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Kind {
			case EventRemove:
				sw.buf = append(sw.buf, `["remove",{"href":`...)
				sw.buf = appendString(sw.buf, href(ev.Object))
				sw.buf = append(sw.buf, "}]\n"...)
			case EventUpdate:
				if q.Filter != nil && !q.Filter.Match(ev.Object) {
					continue
				}
				sw.buf = append(sw.buf, `["update",`...)
				sw.buf = m.appendItem(sw.buf, ev.Object, false, 0)
				sw.buf = append(sw.buf, "]\n"...)
			default:
				return fmt.Errorf("watch: unknown event kind %q", ev.Kind)
			}
			ticker.Reset(keepAlive)
		}
		if err := sw.flush(); err != nil {
			return err
		}
	}
}
