package filter

import (
	"math"
	"regexp"
	"strings"
)

// Node is a parsed filter: a tree of the types below. Every Node is safe for
// concurrent use once built.
type Node interface {
	// Match reports whether the decoded-JSON value v satisfies the filter.
	// See the package documentation for the supported Go types.
	Match(v any) bool
	// String formats the filter the way complex-matcher's toString does;
	// parsing the result yields an equivalent tree (see the package
	// documentation for the exceptions).
	String() string

	// format writes the filter; nested is complex-matcher's isNested flag
	// (an And inside another node is parenthesised).
	format(b *strings.Builder, nested bool)
}

// Compile-time checks that every node type implements Node.
var (
	_ Node = (*Null)(nil)
	_ Node = (*And)(nil)
	_ Node = (*Or)(nil)
	_ Node = (*Not)(nil)
	_ Node = (*Property)(nil)
	_ Node = (*TruthyProperty)(nil)
	_ Node = (*StringNode)(nil)
	_ Node = (*NumberOrString)(nil)
	_ Node = (*Glob)(nil)
	_ Node = (*RegExp)(nil)
	_ Node = (*Comparison)(nil)
)

func nodeString(n Node) string {
	var b strings.Builder
	n.format(&b, false)
	return b.String()
}

// Null is the empty filter; it matches everything.
type Null struct{}

// Match always returns true.
func (*Null) Match(any) bool { return true }

// String returns "".
func (*Null) String() string { return "" }

func (*Null) format(*strings.Builder, bool) {}

// And matches when every child matches the same value. Parse never builds an
// And with a single child (it returns the child itself).
type And struct {
	Children []Node
}

// NewAnd returns the conjunction of children, or children[0] if there is
// only one, as complex-matcher's And constructor does.
func NewAnd(children ...Node) Node {
	if len(children) == 1 {
		return children[0]
	}
	return &And{Children: children}
}

// Match reports whether every child matches v.
func (n *And) Match(v any) bool {
	for _, c := range n.Children {
		if !c.Match(v) {
			return false
		}
	}
	return true
}

// String formats the children separated by spaces.
func (n *And) String() string { return nodeString(n) }

func (n *And) format(b *strings.Builder, nested bool) {
	if nested {
		b.WriteByte('(')
	}
	formatTerms(b, n.Children)
	if nested {
		b.WriteByte(')')
	}
}

func formatTerms(b *strings.Builder, terms []Node) {
	for i, t := range terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		t.format(b, true)
	}
}

// Or matches when at least one child matches the value.
type Or struct {
	Children []Node
}

// NewOr returns the disjunction of children, or children[0] if there is only
// one, as complex-matcher's Or constructor does.
func NewOr(children ...Node) Node {
	if len(children) == 1 {
		return children[0]
	}
	return &Or{Children: children}
}

// Match reports whether some child matches v.
func (n *Or) Match(v any) bool {
	for _, c := range n.Children {
		if c.Match(v) {
			return true
		}
	}
	return false
}

// String formats the filter as |(a b ...).
func (n *Or) String() string { return nodeString(n) }

func (n *Or) format(b *strings.Builder, _ bool) {
	b.WriteString("|(")
	formatTerms(b, n.Children)
	b.WriteByte(')')
}

// Not negates its child.
type Not struct {
	Child Node
}

// Match reports whether the child does not match v.
func (n *Not) Match(v any) bool { return !n.Child.Match(v) }

// String formats the filter as !child.
func (n *Not) String() string { return nodeString(n) }

func (n *Not) format(b *strings.Builder, _ bool) {
	b.WriteByte('!')
	n.Child.format(b, true)
}

// Property matches when v is not null and Child matches v[Name]. On arrays
// and strings, Name may be "length" or an index, as in JavaScript.
type Property struct {
	Name  string
	Child Node
}

// Match reports whether Child matches the property Name of v.
func (n *Property) Match(v any) bool {
	p, ok := getProperty(v, n.Name)
	return ok && n.Child.Match(p)
}

// String formats the filter as name:child.
func (n *Property) String() string { return nodeString(n) }

func (n *Property) format(b *strings.Builder, _ bool) {
	formatString(b, n.Name)
	b.WriteByte(':')
	n.Child.format(b, true)
}

// TruthyProperty matches when v is not null and v[Name] is truthy in the
// JavaScript sense (not undefined, null, false, 0, NaN or "").
type TruthyProperty struct {
	Name string
}

// Match reports whether the property Name of v is truthy.
func (n *TruthyProperty) Match(v any) bool {
	p, ok := getProperty(v, n.Name)
	return ok && truthy(p)
}

// String formats the filter as name?.
func (n *TruthyProperty) String() string { return nodeString(n) }

func (n *TruthyProperty) format(b *strings.Builder, _ bool) {
	formatString(b, n.Name)
	b.WriteByte('?')
}

// StringNode matches strings that contain its value, ignoring case, and
// arrays or objects with such a string somewhere inside.
type StringNode struct {
	value  string
	needle substring
}

// NewString returns a StringNode for value.
func NewString(value string) *StringNode {
	return &StringNode{value: value, needle: newSubstring(value)}
}

// Value returns the searched text.
func (n *StringNode) Value() string { return n.value }

// Match reports whether v contains the value (see StringNode).
func (n *StringNode) Match(v any) bool {
	if s, ok := v.(string); ok {
		return n.needle.in(s)
	}
	return some(n, v)
}

// String formats the value, quoted unless it is a raw string that is not a
// number.
func (n *StringNode) String() string { return nodeString(n) }

func (n *StringNode) format(b *strings.Builder, _ bool) { formatString(b, n.value) }

// NumberOrString is an unquoted number such as 32: it matches the number
// itself, strings containing the text, and arrays or objects holding either.
type NumberOrString struct {
	value  string
	number float64
	needle substring
}

// NewNumberOrString returns a NumberOrString for value (normally a
// JavaScript number literal).
func NewNumberOrString(value string) *NumberOrString {
	return &NumberOrString{value: value, number: jsStringToNumber(value), needle: newSubstring(value)}
}

// Value returns the text as written in the filter.
func (n *NumberOrString) Value() string { return n.value }

// Number returns the numeric value of the text (NaN if it is not a number).
func (n *NumberOrString) Number() float64 { return n.number }

// Match reports whether v is the number, contains the text or holds such a
// value.
func (n *NumberOrString) Match(v any) bool {
	if f, ok := toFloat(v); ok {
		return f == n.number
	}
	if s, ok := v.(string); ok {
		return n.needle.in(s)
	}
	return some(n, v)
}

// String returns the value as written.
func (n *NumberOrString) String() string { return n.value }

func (n *NumberOrString) format(b *strings.Builder, _ bool) { b.WriteString(n.value) }

// Glob is an unquoted word containing "*": it matches strings containing the
// pattern, "*" standing for any run of characters other than line
// terminators, ignoring case; and arrays or objects holding such a string.
type Glob struct {
	value string
	glob  globMatcher
}

// NewGlob returns a Glob for value, or a StringNode if value has no "*", as
// complex-matcher's GlobPattern constructor does.
func NewGlob(value string) Node {
	if !strings.Contains(value, "*") {
		return NewString(value)
	}
	return &Glob{value: value, glob: newGlobMatcher(value)}
}

// Value returns the pattern.
func (n *Glob) Value() string { return n.value }

// Match reports whether v matches the pattern (see Glob).
func (n *Glob) Match(v any) bool {
	if s, ok := v.(string); ok {
		return n.glob.match(s)
	}
	return some(n, v)
}

// String returns the pattern.
func (n *Glob) String() string { return n.value }

func (n *Glob) format(b *strings.Builder, _ bool) { b.WriteString(n.value) }

// RegExp is a /pattern/flags term: it matches strings the JavaScript regular
// expression finds a match in (translated to Go's RE2 syntax), and arrays or
// objects holding such a string.
type RegExp struct {
	pattern   string
	flags     string
	source    string
	re        *regexp.Regexp
	literal   literalRegExp // used instead of re when isLiteral
	isLiteral bool
}

// NewRegExp compiles a JavaScript regular expression. flags may be "" or "i".
// It returns an error wrapping ErrRegExp if JavaScript would reject the
// pattern, or ErrUnsupportedRegExp if RE2 cannot express it (backreferences,
// lookaround).
func NewRegExp(pattern, flags string) (*RegExp, error) {
	re, err := translateRegExp(pattern, flags)
	if err != nil {
		return nil, err
	}
	n := &RegExp{pattern: pattern, flags: flags, source: regExpSource(pattern), re: re}
	n.literal, n.isLiteral = parseLiteralRegExp(pattern, flags)
	return n, nil
}

// Source returns the pattern as JavaScript's RegExp.prototype.source shows it.
func (n *RegExp) Source() string { return n.source }

// Flags returns the flags ("" or "i").
func (n *RegExp) Flags() string { return n.flags }

// Regexp returns the compiled Go regular expression.
func (n *RegExp) Regexp() *regexp.Regexp { return n.re }

// Match reports whether v matches the expression (see RegExp).
func (n *RegExp) Match(v any) bool {
	if s, ok := v.(string); ok {
		return n.matchString(s)
	}
	return some(n, v)
}

// matchString is Match for a string.
func (n *RegExp) matchString(s string) bool {
	if n.isLiteral {
		return n.literal.match(s)
	}
	return n.re.MatchString(jsUnits(s))
}

// String formats the expression as /source/flags.
func (n *RegExp) String() string { return nodeString(n) }

func (n *RegExp) format(b *strings.Builder, _ bool) {
	b.WriteByte('/')
	b.WriteString(n.source)
	b.WriteByte('/')
	b.WriteString(n.flags)
}

// Comparison compares v with a number using a JavaScript relational operator
// (>, >=, < or <=) and JavaScript's coercion of v to a number.
type Comparison struct {
	op    string
	value float64
}

// NewComparison returns a Comparison. op must be one of >, >=, < and <=;
// value must not be NaN (ErrNotANumber).
func NewComparison(op string, value float64) (*Comparison, error) {
	switch op {
	case ">", ">=", "<", "<=":
	default:
		return nil, &SyntaxError{Msg: "invalid comparison operator " + op}
	}
	if math.IsNaN(value) {
		return nil, &SyntaxError{Msg: ErrNotANumber.Error(), Err: ErrNotANumber}
	}
	return &Comparison{op: op, value: value}, nil
}

// Op returns the operator.
func (n *Comparison) Op() string { return n.op }

// Value returns the number compared with.
func (n *Comparison) Value() float64 { return n.value }

// Match reports whether "v op value" is true in JavaScript.
func (n *Comparison) Match(v any) bool { return n.compare(toNumber(v)) }

// compare reports whether "f op value" is true.
func (n *Comparison) compare(f float64) bool {
	switch n.op {
	case ">":
		return f > n.value
	case ">=":
		return f >= n.value
	case "<":
		return f < n.value
	default:
		return f <= n.value
	}
}

// String formats the comparison as op followed by JavaScript's String(value).
func (n *Comparison) String() string { return nodeString(n) }

func (n *Comparison) format(b *strings.Builder, _ bool) {
	b.WriteString(n.op)
	b.WriteString(jsNumberToString(n.value))
}

// formatString is complex-matcher's formatString: a string that is not a
// number is written raw if it can be, else quoted with \ and " escaped; a
// number-like string is quoted without escaping.
func formatString(b *strings.Builder, s string) {
	if !math.IsNaN(jsStringToNumber(s)) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	if isRawString(s) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '"' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}
