package filter

import (
	"slices"
	"strings"
)

// Path is a chain of property names, as in the filter CPUs:number:>2,
// whose path is {"CPUs", "number"}.
type Path []string

// String formats the path as the filter language writes it (names joined
// by ":", quoted when needed), which tells any two paths apart.
func (p Path) String() string {
	var b strings.Builder
	for i, name := range p {
		if i > 0 {
			b.WriteByte(':')
		}
		formatString(&b, name)
	}
	return b.String()
}

// Column holds the value at one property path of every object of a
// sequence, as nested Property terms read it: a missing property is kept
// distinct from a null one, and a path that runs into null or a missing
// property on the way is marked so. A filter prepared with NewPlan reads
// properties from columns instead of probing each object, which touches
// far less memory when the objects are large maps. A Column is read-only
// once built and safe for concurrent use.
type Column struct {
	path Path
	// vals holds the values: undefined{} when missing, absent{} when
	// unreachable, inString{} when the value is strs[i].
	vals []any
	strs []string // string values, all in one block of memory
	// nums, when not nil, holds the float64 values again, densely, for
	// comparisons to read without following vals' pointers.
	nums []float64
	// codes, when not nil, numbers the string values: strs[i] is
	// dict[codes[i]] (codes[i] is noCode for other values). Columns with
	// few distinct strings are encoded so, for Matcher to match each
	// distinct string once.
	codes []uint16
	dict  []string
}

// maxDict is the most distinct strings of a dictionary-encoded column.
const maxDict = 256

// noCode is the code of a value that is not a string.
const noCode = 0xffff

// absent marks a path that cannot be followed to its end: a Property on
// the way met null or undefined, so it fails whatever its child.
type absent struct{}

// inString marks a string value, held in Column.strs.
type inString struct{}

// NewColumn reads the value at path (at least one name) of every object.
// String values are copied into one block of memory, so that scanning the
// column touches few cache lines; building it allocates a few blocks, not
// one per object.
func NewColumn(path Path, objects []map[string]any) *Column {
	c := &Column{path: slices.Clone(path), vals: make([]any, len(objects)), codes: make([]uint16, len(objects))}
	distinct := make(map[string]uint16)
	var b strings.Builder
	for i, o := range objects {
		v := valueAt(o, path)
		s, isString := v.(string)
		if !isString {
			c.vals[i] = v
			if f, isNumber := v.(float64); isNumber {
				if c.nums == nil {
					c.nums = make([]float64, len(objects))
				}
				c.nums[i] = f
			}
			if c.codes != nil {
				c.codes[i] = noCode
			}
			continue
		}
		if c.strs == nil {
			c.strs = make([]string, len(objects))
		}
		c.strs[i] = s // replaced by its copy below
		c.vals[i] = inString{}
		b.WriteString(s)
		if c.codes == nil {
			continue
		}
		code, found := distinct[s]
		if !found {
			if len(c.dict) == maxDict {
				c.codes, c.dict, distinct = nil, nil, nil // too many: no dictionary
				continue
			}
			code = uint16(len(c.dict))
			distinct[s] = code
			c.dict = append(c.dict, s)
		}
		c.codes[i] = code
	}
	all, at := b.String(), 0
	for i, s := range c.strs {
		if c.vals[i] == (inString{}) {
			c.strs[i] = all[at : at+len(s)]
			at += len(s)
		}
	}
	return c
}

// valueAt follows path from obj as nested Property terms do.
func valueAt(obj map[string]any, path Path) any {
	v, ok := obj[path[0]]
	if !ok {
		v = undefined{}
	}
	for _, name := range path[1:] {
		if v, ok = getProperty(v, name); !ok {
			return absent{}
		}
	}
	return v
}

// Path returns the path the column holds.
func (c *Column) Path() Path { return c.path }

// Len returns the number of objects the column was built from.
func (c *Column) Len() int { return len(c.vals) }

// Value returns the value at the column's path of object i, and whether
// the object has one (false when a property on the way is missing or
// null, or the last one is missing).
func (c *Column) Value(i int) (v any, ok bool) {
	switch v := c.vals[i].(type) {
	case undefined, absent:
		return nil, false
	case inString:
		return c.strs[i], true
	default:
		return v, true
	}
}

// String returns the value of object i if it is a string, without
// allocating.
func (c *Column) String(i int) (s string, ok bool) {
	if c.vals[i] == (inString{}) {
		return c.strs[i], true
	}
	return "", false
}

// Plan is a filter prepared to match the objects of a table: objects
// (decoded JSON maps) together with columns of some of their property
// paths. The properties the filter reads from the objects themselves —
// Property and TruthyProperty terms at the top, or under And, Or and Not —
// are read from the columns, following chains of Property terms
// (CPUs:number:>2 reads the column of CPUs:number); every other term
// matches the object itself. A Plan matches exactly what its filter
// matches. It is safe for concurrent use.
type Plan struct {
	root  step
	paths []Path
	memos int // propertySteps, numbered
}

// step is one node of a Plan, matching row i of a table.
type step interface {
	match(m *Matcher, i int, obj any) bool
	// keep returns the rows of rows (ascending) it matches, in place.
	keep(m *Matcher, rows []int32, objs []map[string]any) []int32
}

// NewPlan prepares n for Matcher.
func NewPlan(n Node) *Plan {
	p := &Plan{}
	p.root = p.bind(n)
	return p
}

// Paths returns the paths of the columns a Matcher reads, in the order it
// wants them.
func (p *Plan) Paths() []Path { return p.paths }

// Matcher matches the rows of one table with a Plan. It remembers what a
// term answered for each distinct string of a dictionary-encoded column,
// so it is not safe for concurrent use: take one per scan.
type Matcher struct {
	plan *Plan
	cols []*Column
	memo [][]int8 // per propertyStep, per dictionary code: 0 unknown, 1 no, 2 yes
}

// Matcher returns a matcher of the rows of the table whose columns are
// cols: cols[j] holds Paths()[j] over the table's objects.
func (p *Plan) Matcher(cols []*Column) *Matcher {
	return &Matcher{plan: p, cols: cols, memo: make([][]int8, p.memos)}
}

// Match reports whether the filter matches obj, the object at index i of
// the table. It panics if the columns do not fit.
func (m *Matcher) Match(i int, obj map[string]any) bool {
	return m.plan.root.match(m, i, obj)
}

// Rows appends to rows the indexes of the objects of the table that the
// filter matches, in ascending order, and returns the extended slice;
// objs are the table's objects. It matches what Match matches, but the
// terms of an And one after the other, each over the rows the terms
// before it kept, in a loop of its own (no dynamic call per row and
// term).
func (m *Matcher) Rows(objs []map[string]any, rows []int32) []int32 {
	start := len(rows)
	for i := range objs {
		rows = append(rows, int32(i))
	}
	kept := m.plan.root.keep(m, rows[start:], objs)
	return rows[:start+len(kept)]
}

// column returns the index of the column for path, adding it if needed.
func (p *Plan) column(path Path) int {
	for j, q := range p.paths {
		if slices.Equal(q, path) {
			return j
		}
	}
	p.paths = append(p.paths, path)
	return len(p.paths) - 1
}

// bind turns a node matched against whole objects into a step.
func (p *Plan) bind(n Node) step {
	switch n := n.(type) {
	case *And:
		s := andStep(make([]step, len(n.Children)))
		for i, c := range n.Children {
			s[i] = p.bind(c)
		}
		return s
	case *Or:
		s := orStep(make([]step, len(n.Children)))
		for i, c := range n.Children {
			s[i] = p.bind(c)
		}
		return s
	case *Not:
		return notStep{p.bind(n.Child)}
	case *Property:
		// Follow the chain name:name:…:child down to its last property.
		path := Path{n.Name}
		child := n.Child
		for {
			c, isProperty := child.(*Property)
			if !isProperty {
				break
			}
			path = append(path, c.Name)
			child = c.Child
		}
		if t, isTruthy := child.(*TruthyProperty); isTruthy {
			return truthyStep{col: p.column(append(path, t.Name))}
		}
		p.memos++
		if cmp, isComparison := child.(*Comparison); isComparison {
			return compareStep{col: p.column(path), cmp: cmp, memo: p.memos - 1}
		}
		return propertyStep{col: p.column(path), child: child, memo: p.memos - 1}
	case *TruthyProperty:
		return truthyStep{col: p.column(Path{n.Name})}
	}
	return nodeStep{n}
}

type andStep []step

func (s andStep) match(m *Matcher, i int, obj any) bool {
	for _, c := range s {
		if !c.match(m, i, obj) {
			return false
		}
	}
	return true
}

func (s andStep) keep(m *Matcher, rows []int32, objs []map[string]any) []int32 {
	for _, c := range s {
		if len(rows) == 0 {
			break
		}
		rows = c.keep(m, rows, objs)
	}
	return rows
}

type orStep []step

func (s orStep) match(m *Matcher, i int, obj any) bool {
	for _, c := range s {
		if c.match(m, i, obj) {
			return true
		}
	}
	return false
}

func (s orStep) keep(m *Matcher, rows []int32, objs []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if s.match(m, int(i), objs[i]) {
			out = append(out, i)
		}
	}
	return out
}

type notStep struct{ child step }

func (s notStep) match(m *Matcher, i int, obj any) bool { return !s.child.match(m, i, obj) }

func (s notStep) keep(m *Matcher, rows []int32, objs []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if !s.child.match(m, int(i), objs[i]) {
			out = append(out, i)
		}
	}
	return out
}

// propertyStep is a chain of Property terms with the value at its path
// read from a column (the objects are maps, so the outer "value != null"
// guard always passes; the inner ones failed if the value is absent).
type propertyStep struct {
	col   int
	child Node
	memo  int // index in Matcher.memo
}

func (s propertyStep) match(m *Matcher, i int, _ any) bool {
	c := m.cols[s.col]
	switch v := c.vals[i].(type) {
	case inString:
		if c.codes == nil {
			return matchString(s.child, c.strs[i])
		}
		memo := m.memo[s.memo]
		if memo == nil {
			memo = make([]int8, len(c.dict))
			m.memo[s.memo] = memo
		}
		code := c.codes[i]
		if memo[code] == 0 {
			memo[code] = 1
			if matchString(s.child, c.dict[code]) {
				memo[code] = 2
			}
		}
		return memo[code] == 2
	case absent:
		return false
	default:
		return s.child.Match(v)
	}
}

func (s propertyStep) keep(m *Matcher, rows []int32, _ []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if s.match(m, int(i), nil) {
			out = append(out, i)
		}
	}
	return out
}

// compareStep is a propertyStep whose child is a Comparison: numbers are
// compared straight from the column's dense copy of them.
type compareStep struct {
	col  int
	cmp  *Comparison
	memo int // index in Matcher.memo
}

func (s compareStep) match(m *Matcher, i int, obj any) bool {
	c := m.cols[s.col]
	if _, isNumber := c.vals[i].(float64); isNumber {
		return s.cmp.compare(c.nums[i])
	}
	return propertyStep{col: s.col, child: s.cmp, memo: s.memo}.match(m, i, obj)
}

func (s compareStep) keep(m *Matcher, rows []int32, _ []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if s.match(m, int(i), nil) {
			out = append(out, i)
		}
	}
	return out
}

// truthyStep is a chain of Property terms ending with a TruthyProperty,
// with the value read from a column.
type truthyStep struct{ col int }

func (s truthyStep) match(m *Matcher, i int, _ any) bool {
	c := m.cols[s.col]
	switch v := c.vals[i].(type) {
	case inString:
		return c.strs[i] != ""
	case absent:
		return false
	default:
		return truthy(v)
	}
}

func (s truthyStep) keep(m *Matcher, rows []int32, _ []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if s.match(m, int(i), nil) {
			out = append(out, i)
		}
	}
	return out
}

// nodeStep matches the whole object.
type nodeStep struct{ n Node }

func (s nodeStep) match(_ *Matcher, _ int, obj any) bool { return s.n.Match(obj) }

func (s nodeStep) keep(_ *Matcher, rows []int32, objs []map[string]any) []int32 {
	out := rows[:0]
	for _, i := range rows {
		if s.n.Match(objs[i]) {
			out = append(out, i)
		}
	}
	return out
}

// matchString is n.Match(s) without boxing s for the nodes that match
// strings themselves.
func matchString(n Node, s string) bool {
	switch n := n.(type) {
	case *StringNode:
		return n.needle.in(s)
	case *NumberOrString:
		return n.needle.in(s) // a string is never a number here
	case *Glob:
		return n.glob.match(s)
	case *RegExp:
		return n.matchString(s)
	case *Comparison:
		return n.compare(jsStringToNumber(s))
	case *Not:
		return !matchString(n.Child, s)
	case *Null:
		return true
	}
	return n.Match(s)
}
