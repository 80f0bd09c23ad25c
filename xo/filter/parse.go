package filter

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Errors that a *SyntaxError may wrap (test with errors.Is).
var (
	// ErrNotANumber: a comparison such as ">abc" whose operand is not a
	// JavaScript number. The message is complex-matcher's
	// "value must be a number".
	ErrNotANumber = errors.New("value must be a number")
	// ErrRegExp: a /regex/ that JavaScript rejects; the message is V8's
	// ("Invalid regular expression: /(/: Unterminated group").
	ErrRegExp = errors.New("invalid regular expression")
	// ErrUnsupportedRegExp: a /regex/ that JavaScript accepts but Go's RE2
	// engine cannot run (backreferences, lookaround, repeat counts above
	// 1000).
	ErrUnsupportedRegExp = errors.New("regular expression not supported by RE2")
	// ErrTooDeep: terms nested more than MaxDepth levels (complex-matcher
	// would overflow the JavaScript stack).
	ErrTooDeep = errors.New("filter nested too deeply")
)

// MaxDepth is the deepest nesting of terms Parse accepts.
const MaxDepth = 1000

// SyntaxError is the error returned by Parse.
//
// For a grammar error Err is nil and Msg is complex-matcher's message,
// "parse error: expected end of input at position N": complex-matcher's PEG
// parser backtracks, so the position is where the last complete top-level
// term ended, not where the offending character is. Otherwise Err is one of
// ErrNotANumber, ErrRegExp, ErrUnsupportedRegExp or ErrTooDeep, and Pos is
// where the offending term starts.
type SyntaxError struct {
	Pos int    // position in the filter, in UTF-16 code units as in JavaScript
	Msg string // the complete message
	Err error  // the kind of error, or nil for a grammar error
}

// Error returns Msg.
func (e *SyntaxError) Error() string { return e.Msg }

// Unwrap returns Err.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Parse parses a filter. It accepts what complex-matcher 1.1.1's parse
// accepts and builds the same tree, except regular expressions that RE2
// cannot run (ErrUnsupportedRegExp) and nesting deeper than MaxDepth
// (ErrTooDeep); it rejects what complex-matcher rejects, with the same
// message. See the package documentation for the grammar.
func Parse(s string) (Node, error) {
	p := parser{in: s}
	pos, _ := p.ws(0)
	var terms []Node
	for {
		n, next, ok, err := p.term(pos)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		terms = append(terms, n)
		pos = next
	}
	if pos < len(s) {
		at := utf16Len(s[:pos])
		return nil, &SyntaxError{Pos: at, Msg: fmt.Sprintf("parse error: expected end of input at position %d", at)}
	}
	if len(terms) == 0 {
		return &Null{}, nil
	}
	return NewAnd(terms...), nil
}

// parser mirrors complex-matcher's combinators. Positions are byte offsets;
// like the JavaScript one, a position may pass the end of the input by one
// after a quoted string ending with a lone backslash, and every parser then
// fails.
//
// Each parse function returns ok=false for a PEG failure (the caller tries
// its next alternative) and a non-nil error for what complex-matcher throws
// (bad number, bad regex), which aborts the whole parse.
type parser struct {
	in    string
	depth int
}

func (p *parser) at(pos int, c byte) bool {
	return pos < len(p.in) && p.in[pos] == c
}

// ws is /\s*/ with JavaScript's \s.
func (p *parser) ws(pos int) (int, bool) {
	if pos > len(p.in) {
		return pos, false
	}
	for pos < len(p.in) {
		r, size := utf8.DecodeRuneInString(p.in[pos:])
		if !isJSSpace(r) {
			break
		}
		pos += size
	}
	return pos, true
}

func (p *parser) errorAt(pos int, msg string, err error) error {
	return &SyntaxError{Pos: utf16Len(p.in[:min(pos, len(p.in))]), Msg: msg, Err: err}
}

// term := ( "(" ws term+ ")" | "|" ws "(" ws term+ ")" | "!" ws term
//
//	| /[<>]=?/ rawString | property ws ":" ws term | property "?" | value ) ws
func (p *parser) term(pos int) (Node, int, bool, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return nil, 0, false, p.errorAt(pos, ErrTooDeep.Error(), ErrTooDeep)
	}
	n, next, ok, err := p.termBody(pos)
	if err != nil || !ok {
		return nil, 0, false, err
	}
	next, ok = p.ws(next)
	if !ok {
		return nil, 0, false, nil
	}
	return n, next, true, nil
}

func (p *parser) termBody(pos int) (Node, int, bool, error) {
	// "(" ws term+ ")"
	if p.at(pos, '(') {
		q, _ := p.ws(pos + 1)
		terms, q, ok, err := p.terms(q)
		if err != nil {
			return nil, 0, false, err
		}
		if ok && p.at(q, ')') {
			return NewAnd(terms...), q + 1, true, nil
		}
	}
	// "|" ws "(" ws term+ ")"
	if p.at(pos, '|') {
		q, _ := p.ws(pos + 1)
		if p.at(q, '(') {
			q, _ = p.ws(q + 1)
			terms, q, ok, err := p.terms(q)
			if err != nil {
				return nil, 0, false, err
			}
			if ok && p.at(q, ')') {
				return NewOr(terms...), q + 1, true, nil
			}
		}
	}
	// "!" ws term
	if p.at(pos, '!') {
		q, _ := p.ws(pos + 1)
		child, q, ok, err := p.term(q)
		if err != nil {
			return nil, 0, false, err
		}
		if ok {
			return &Not{Child: child}, q, true, nil
		}
	}
	// /[<>]=?/ rawString
	if p.at(pos, '<') || p.at(pos, '>') {
		q := pos + 1
		if p.at(q, '=') {
			q++
		}
		op := p.in[pos:q]
		if raw, q, ok := p.rawString(q); ok {
			v := jsStringToNumber(raw)
			if math.IsNaN(v) {
				return nil, 0, false, p.errorAt(pos, ErrNotANumber.Error(), ErrNotANumber)
			}
			return &Comparison{op: op, value: v}, q, true, nil
		}
	}
	if name, q, ok := p.property(pos); ok {
		// property ws ":" ws term
		if r, wsOK := p.ws(q); wsOK && p.at(r, ':') {
			r, _ = p.ws(r + 1)
			child, r, ok, err := p.term(r)
			if err != nil {
				return nil, 0, false, err
			}
			if ok {
				return &Property{Name: name, Child: child}, r, true, nil
			}
		}
		// property "?"
		if p.at(q, '?') {
			return &TruthyProperty{Name: name}, q + 1, true, nil
		}
	}
	return p.value(pos)
}

// terms is term+ (repeat(1)).
func (p *parser) terms(pos int) ([]Node, int, bool, error) {
	var terms []Node
	for {
		n, next, ok, err := p.term(pos)
		if err != nil {
			return nil, 0, false, err
		}
		if !ok {
			return terms, pos, len(terms) > 0, nil
		}
		terms = append(terms, n)
		pos = next
	}
}

// property := quotedString | rawString
func (p *parser) property(pos int) (string, int, bool) {
	if s, q, ok := p.quotedString(pos); ok {
		return s, q, true
	}
	return p.rawString(pos)
}

// value := quotedString | regex | globPattern
func (p *parser) value(pos int) (Node, int, bool, error) {
	if s, q, ok := p.quotedString(pos); ok {
		return NewString(s), q, true, nil
	}
	if n, q, ok, err := p.regex(pos); err != nil || ok {
		return n, q, ok, err
	}
	q := pos
	for q < len(p.in) {
		r, size := utf8.DecodeRuneInString(p.in[q:])
		if r != '*' && !isRawUnit(r) {
			break
		}
		q += size
	}
	if q == pos {
		return nil, 0, false, nil
	}
	s := p.in[pos:q]
	if math.IsNaN(jsStringToNumber(s)) {
		return NewGlob(s), q, true, nil
	}
	return NewNumberOrString(s), q, true, nil
}

// rawString := rawChar+
func (p *parser) rawString(pos int) (string, int, bool) {
	q := pos
	for q < len(p.in) {
		r, size := utf8.DecodeRuneInString(p.in[q:])
		if !isRawUnit(r) {
			break
		}
		q += size
	}
	return p.in[pos:q], q, q > pos
}

// quotedString := '"' ( "\" any | any-but-'"' )* ( '"' | end of input )
//
// A backslash at the very end consumes a character that does not exist, and
// the position passes the end of the input (as in complex-matcher).
func (p *parser) quotedString(pos int) (string, int, bool) {
	if !p.at(pos, '"') {
		return "", 0, false
	}
	pos++
	var buf []byte
	for pos < len(p.in) {
		c := p.in[pos]
		pos++
		if c == '"' {
			return string(buf), pos, true
		}
		if c == '\\' {
			if pos >= len(p.in) {
				return string(buf), pos + 1, true
			}
			c = p.in[pos]
			pos++
		}
		buf = append(buf, c)
	}
	return string(buf), pos, true
}

// regex := "/" pattern "/" "i"?, where a "/" preceded by a backslash does not
// end the pattern; the backslashes stay in the pattern.
func (p *parser) regex(pos int) (Node, int, bool, error) {
	if !p.at(pos, '/') {
		return nil, 0, false, nil
	}
	start := pos
	pos++
	var c byte
	read := false
	escaped := false
	patternStart := pos
	patternEnd := pos
	for pos < len(p.in) {
		c = p.in[pos]
		read = true
		pos++
		if c == '/' && !escaped {
			break
		}
		escaped = c == '\\'
		patternEnd = pos
	}
	if !read || c != '/' {
		return nil, 0, false, nil
	}
	flags := ""
	if p.at(pos, 'i') {
		flags = "i"
		pos++
	}
	re, err := NewRegExp(p.in[patternStart:patternEnd], flags)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			se.Pos = utf16Len(p.in[:start])
		}
		return nil, 0, false, err
	}
	return re, pos, true, nil
}
