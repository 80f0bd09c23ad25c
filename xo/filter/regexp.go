package filter

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// translateRegExp compiles a JavaScript regular expression (no u flag, so
// with the Annex B extensions) into an equivalent Go regexp.
//
// The translation parses the JavaScript syntax and writes RE2 syntax in which
// every construct means what it means in JavaScript:
//   - "." excludes the four JavaScript line terminators; \s and \S are
//     JavaScript's white-space set; [] never matches and [^] always does;
//   - \cX, \xHH, \uHHHH, \0 and legacy octal escapes become code units;
//     identity escapes (\a, \z, \p, ...) become the plain character, not
//     RE2's meaning; "{" that does not start a quantifier is literal;
//   - with the i flag, literal characters and classes match what
//     JavaScript's Canonicalize makes equal (RE2's own case folding, which
//     differs for characters such as U+017F and U+212A, is never used);
//   - errors JavaScript reports (Unterminated group, Nothing to repeat, ...)
//     are reported with V8's message (ErrRegExp);
//   - backreferences, lookahead and lookbehind, and repeat counts above 1000
//     have no RE2 equivalent: ErrUnsupportedRegExp, unless the pattern also
//     has a JavaScript syntax error.
//
// JavaScript matches UTF-16 code units: "." or [^a] match one half of a
// character outside the BMP, and a quantifier after such a character applies
// to its low surrogate. To keep that, the pattern is translated unit by unit,
// surrogates are written as the private-use code points pseudo maps them
// to, and subjects are matched after jsUnits spells their characters outside
// the BMP the same way.
func translateRegExp(pattern, flags string) (*regexp.Regexp, error) {
	switch flags {
	case "", "i":
	default:
		return nil, &SyntaxError{Msg: fmt.Sprintf("Invalid regular expression flags %q", flags), Err: ErrRegExp}
	}
	t := reTranslator{pattern: pattern, flags: flags, ci: flags == "i"}
	for _, u := range utf16.Encode([]rune(pattern)) {
		t.src = append(t.src, rune(u))
	}
	t.prescan()
	if err := t.disjunction(); err != nil {
		return nil, err
	}
	if t.i < len(t.src) { // only a ')' stops the top-level disjunction
		return nil, t.errorf("Unmatched ')'")
	}
	if t.unsupportedReason != "" { // valid JavaScript, but not for RE2
		return nil, t.unsupported(t.unsupportedReason)
	}
	re, err := regexp.Compile(t.out.String())
	if err != nil {
		return nil, t.unsupported(err.Error())
	}
	return re, nil
}

type reTranslator struct {
	pattern, flags string
	src            []rune // UTF-16 code units of the pattern
	i              int
	ci             bool
	groups         int  // number of capturing groups in the pattern
	named          bool // the pattern has named groups
	names          map[string]bool
	out            strings.Builder
	// unsupportedReason is the first construct RE2 lacks; the translation
	// goes on, so that JavaScript syntax errors later in the pattern win.
	unsupportedReason string
	inClass           bool
	depth             int // group nesting
}

func (t *reTranslator) lacks(reason string) {
	if t.unsupportedReason == "" {
		t.unsupportedReason = reason
	}
}

func (t *reTranslator) errorf(format string, args ...any) error {
	return &SyntaxError{
		Msg: fmt.Sprintf("Invalid regular expression: /%s/%s: %s", t.pattern, t.flags, fmt.Sprintf(format, args...)),
		Err: ErrRegExp,
	}
}

func (t *reTranslator) unsupported(reason string) error {
	return &SyntaxError{
		Msg: fmt.Sprintf("unsupported regular expression /%s/%s: %s", t.pattern, t.flags, reason),
		Err: ErrUnsupportedRegExp,
	}
}

func (t *reTranslator) peek(k int) rune {
	if t.i+k < len(t.src) {
		return t.src[t.i+k]
	}
	return -1
}

// prescan counts capturing groups, which decides whether \N is a
// backreference, and notes named groups, which decide what \k means.
func (t *reTranslator) prescan() {
	inClass := false
	for i := 0; i < len(t.src); i++ {
		switch c := t.src[i]; {
		case c == '\\':
			i++
		case inClass:
			inClass = c != ']'
		case c == '[':
			inClass = true
		case c == '(':
			if i+1 < len(t.src) && t.src[i+1] == '?' {
				if i+3 < len(t.src) && t.src[i+2] == '<' && t.src[i+3] != '=' && t.src[i+3] != '!' {
					t.groups++
					t.named = true
				}
			} else {
				t.groups++
			}
		}
	}
}

func (t *reTranslator) disjunction() error {
	for {
		if err := t.alternative(); err != nil {
			return err
		}
		if t.peek(0) != '|' {
			return nil
		}
		t.i++
		t.out.WriteByte('|')
	}
}

func (t *reTranslator) alternative() error {
	for t.i < len(t.src) && t.src[t.i] != '|' && t.src[t.i] != ')' {
		if err := t.term(); err != nil {
			return err
		}
	}
	return nil
}

func (t *reTranslator) term() error {
	c := t.src[t.i]
	switch c {
	case '^', '$':
		t.i++
		t.out.WriteRune(c)
		return nil
	case '\\':
		if n := t.peek(1); n == 'b' || n == 'B' {
			t.i += 2
			t.out.WriteByte('\\')
			t.out.WriteRune(n)
			return nil
		}
		if err := t.atomEscape(); err != nil {
			return err
		}
	case '(':
		if err := t.group(); err != nil {
			return err
		}
	case '[':
		if err := t.class(); err != nil {
			return err
		}
	case '.':
		t.i++
		t.out.WriteString(`[^\n\r\x{2028}\x{2029}]`)
	case '*', '+', '?':
		return t.errorf("Nothing to repeat")
	case '{':
		if _, _, _, ok := t.bracedQuantifier(); ok {
			return t.errorf("Nothing to repeat")
		}
		t.i++
		t.literal('{')
	default:
		t.i++
		t.literal(c)
	}
	return t.quantifier()
}

// bracedQuantifier parses {n}, {n,} or {n,m} at t.i without consuming it.
// max is -1 for {n,}.
func (t *reTranslator) bracedQuantifier() (minN, maxN, length int, ok bool) {
	j := t.i
	if j >= len(t.src) || t.src[j] != '{' {
		return 0, 0, 0, false
	}
	j++
	num := func() (int, bool) {
		start, n := j, 0
		for j < len(t.src) && '0' <= t.src[j] && t.src[j] <= '9' {
			if n < 1<<30 {
				n = n*10 + int(t.src[j]-'0')
			}
			j++
		}
		return n, j > start
	}
	minN, ok = num()
	if !ok {
		return 0, 0, 0, false
	}
	maxN = minN
	if j < len(t.src) && t.src[j] == ',' {
		j++
		var has bool
		if maxN, has = num(); !has {
			maxN = -1
		}
	}
	if j >= len(t.src) || t.src[j] != '}' {
		return 0, 0, 0, false
	}
	return minN, maxN, j + 1 - t.i, true
}

func (t *reTranslator) quantifier() error {
	switch c := t.peek(0); c {
	case '*', '+', '?':
		t.i++
		t.out.WriteRune(c)
	case '{':
		minN, maxN, length, ok := t.bracedQuantifier()
		if !ok {
			return nil
		}
		if maxN >= 0 && maxN < minN {
			return t.errorf("numbers out of order in {} quantifier")
		}
		t.i += length
		if minN > 1000 || maxN > 1000 {
			t.lacks("repeat counts above 1000 are not supported by RE2")
			minN, maxN = 1, 1
		}
		switch {
		case maxN < 0:
			fmt.Fprintf(&t.out, "{%d,}", minN)
		case maxN == minN:
			fmt.Fprintf(&t.out, "{%d}", minN)
		default:
			fmt.Fprintf(&t.out, "{%d,%d}", minN, maxN)
		}
	default:
		return nil
	}
	if t.peek(0) == '?' {
		t.i++
		t.out.WriteByte('?')
	}
	return nil
}

func (t *reTranslator) group() error {
	if t.depth++; t.depth > MaxDepth {
		return t.unsupported("groups nested too deeply")
	}
	defer func() { t.depth-- }()
	t.i++ // (
	if t.peek(0) == '?' {
		switch t.peek(1) {
		case ':':
			t.i += 2
			t.out.WriteString("(?:")
		case '=', '!':
			t.lacks("lookahead assertions are not supported by RE2")
			t.i += 2
			t.out.WriteString("(?:")
		case '<':
			if n := t.peek(2); n == '=' || n == '!' {
				t.lacks("lookbehind assertions are not supported by RE2")
				t.i += 3
				t.out.WriteString("(?:")
				break
			}
			t.i += 2
			name, ok := t.groupName()
			if !ok {
				return t.errorf("Invalid capture group name")
			}
			if t.names[name] {
				return t.errorf("Duplicate capture group name")
			}
			if t.names == nil {
				t.names = map[string]bool{}
			}
			t.names[name] = true
			t.out.WriteByte('(')
		default:
			return t.errorf("Invalid group")
		}
	} else {
		t.out.WriteByte('(')
	}
	if err := t.disjunction(); err != nil {
		return err
	}
	if t.peek(0) != ')' {
		return t.errorf("Unterminated group")
	}
	t.i++
	t.out.WriteByte(')')
	return nil
}

// groupName reads "name>" of a named group or reference.
func (t *reTranslator) groupName() (string, bool) {
	start := t.i
	for t.i < len(t.src) && t.src[t.i] != '>' {
		c := t.src[t.i]
		ok := c == '$' || c == '_' || unicode.IsLetter(c) || (t.i > start && (unicode.IsDigit(c) || unicode.Is(unicode.Mn, c) || unicode.Is(unicode.Mc, c) || c == 0x200c || c == 0x200d))
		if !ok {
			return "", false
		}
		t.i++
	}
	if t.i >= len(t.src) || t.i == start {
		return "", false
	}
	name := string(t.src[start:t.i])
	t.i++ // >
	return name, true
}

// atomEscape translates an escape outside a class (t.i is on the \).
func (t *reTranslator) atomEscape() error {
	n := t.peek(1)
	switch {
	case n < 0:
		return t.errorf(`\ at end of pattern`)
	case '1' <= n && n <= '9':
		j, num := t.i+1, 0
		for j < len(t.src) && '0' <= t.src[j] && t.src[j] <= '9' && num <= t.groups {
			num = num*10 + int(t.src[j]-'0')
			j++
		}
		if num <= t.groups {
			t.lacks("backreferences are not supported by RE2")
			t.i = j
			return nil
		}
	case n == 'k' && t.named:
		if t.peek(2) != '<' {
			return t.errorf("Invalid named reference")
		}
		save := t.i
		t.i += 3
		name, ok := t.groupName()
		if !ok {
			return t.errorf("Invalid named reference")
		}
		if !t.hasGroupNamed(name) {
			t.i = save
			return t.errorf("Invalid named capture referenced")
		}
		t.lacks("backreferences are not supported by RE2")
		return nil
	}
	r, set, err := t.escape()
	if err != nil {
		return err
	}
	if set != nil {
		t.writeClass(set)
		return nil
	}
	t.literal(r)
	return nil
}

// hasGroupNamed reports whether the pattern defines (?<name>...).
func (t *reTranslator) hasGroupNamed(name string) bool {
	return strings.Contains(t.pattern, "(?<"+name+">")
}

// escape reads the escape at t.i (the \) and returns either a code unit or,
// for \d \D \w \W \s \S, the set of code units it matches.
func (t *reTranslator) escape() (r rune, set rangeSet, err error) {
	inClass := t.inClass
	t.i++ // \
	if t.i >= len(t.src) {
		return 0, nil, t.errorf(`\ at end of pattern`)
	}
	c := t.src[t.i]
	t.i++
	switch c {
	case 'd':
		return 0, digitSet(), nil
	case 'D':
		return 0, digitSet().complement(), nil
	case 'w':
		return 0, wordSet(), nil
	case 'W':
		return 0, wordSet().complement(), nil
	case 's':
		return 0, spaceSet(), nil
	case 'S':
		return 0, spaceSet().complement(), nil
	case 'f':
		return '\f', nil, nil
	case 'n':
		return '\n', nil, nil
	case 'r':
		return '\r', nil, nil
	case 't':
		return '\t', nil, nil
	case 'v':
		return '\v', nil, nil
	case 'b': // only reached inside a class
		return '\b', nil, nil
	case 'c':
		if n := t.peek(0); 'a' <= n && n <= 'z' || 'A' <= n && n <= 'Z' || inClass && ('0' <= n && n <= '9' || n == '_') {
			t.i++
			return n % 32, nil, nil
		}
		t.i-- // Annex B: "\c" is a backslash followed by a c
		return '\\', nil, nil
	case 'x':
		if v, ok := t.hex(2); ok {
			return v, nil, nil
		}
		return 'x', nil, nil
	case 'u':
		v, ok := t.hex(4)
		if !ok {
			return 'u', nil, nil
		}
		return v, nil, nil
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v := c - '0'
		maxDigits := 2
		if c >= '4' {
			maxDigits = 1
		}
		for k := 0; k < maxDigits; k++ {
			n := t.peek(0)
			if n < '0' || n > '7' {
				break
			}
			v = v*8 + n - '0'
			t.i++
		}
		return v, nil, nil
	}
	return c, nil, nil // identity escape
}

// Surrogate code units are written as these private-use code points, which
// jsUnits also produces, so that RE2 sees JavaScript's code units.
const (
	surrogateFirst  = 0xd800
	surrogateLast   = 0xdfff
	surrogateOffset = 0x10f000 - surrogateFirst // U+10F000..U+10F7FF
)

// pseudo maps a surrogate code unit to its private-use stand-in.
func pseudo(u rune) rune {
	if surrogateFirst <= u && u <= surrogateLast {
		return u + surrogateOffset
	}
	return u
}

// jsUnits spells each character of s outside the BMP as the stand-ins of
// its two UTF-16 code units (see translateRegExp). Other strings are
// returned unchanged, without allocating.
func jsUnits(s string) string {
	i := 0
	for i < len(s) && s[i] < 0xf0 {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r < 0x10000 {
			b.WriteRune(r)
			continue
		}
		hi, lo := utf16.EncodeRune(r)
		b.WriteRune(pseudo(hi))
		b.WriteRune(pseudo(lo))
	}
	return b.String()
}

func (t *reTranslator) hex(n int) (rune, bool) {
	if t.i+n > len(t.src) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(t.src[t.i:t.i+n]), 16, 32)
	if err != nil || strings.ContainsAny(string(t.src[t.i:t.i+n]), "+-_") {
		return 0, false
	}
	t.i += n
	return rune(v), true
}

// writeRange writes the code-unit range lo-hi inside a class; the part in
// the surrogate block becomes the stand-in range.
func writeRange(b *strings.Builder, lo, hi rune) {
	if lo <= surrogateLast && hi >= surrogateFirst {
		if lo < surrogateFirst {
			writeRange(b, lo, surrogateFirst-1)
		}
		writeRange(b, pseudo(max(lo, surrogateFirst)), pseudo(min(hi, surrogateLast)))
		if hi > surrogateLast {
			writeRange(b, surrogateLast+1, hi)
		}
		return
	}
	fmt.Fprintf(b, `\x{%x}`, lo)
	if hi != lo {
		fmt.Fprintf(b, `-\x{%x}`, hi)
	}
}

// literal writes the code point r; with the i flag, as the class of the
// characters JavaScript's Canonicalize makes equal to it.
func (t *reTranslator) literal(r rune) {
	if t.ci {
		if set := canonicalEquivalents(r); len(set) > 1 {
			t.out.WriteByte('[')
			for _, e := range set {
				writeRange(&t.out, e, e)
			}
			t.out.WriteByte(']')
			return
		}
	}
	if r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == ' ' || r == '_' || r == '-') {
		t.out.WriteRune(r)
		return
	}
	writeRange(&t.out, pseudo(r), pseudo(r))
}

// canonicalEquivalents lists the code points d with
// jsCanonicalize(d) == jsCanonicalize(r), r first.
func canonicalEquivalents(r rune) []rune {
	c := jsCanonicalize(r)
	set := []rune{r}
	add := func(d rune) {
		for _, e := range set {
			if e == d {
				return
			}
		}
		if jsCanonicalize(d) == c {
			set = append(set, d)
		}
	}
	for d := unicode.SimpleFold(r); d != r; d = unicode.SimpleFold(d) {
		add(d)
	}
	if u, ok := newerUpper(r); ok {
		add(u)
	}
	if l, ok := newerLower(r); ok {
		add(l)
	}
	return set
}

// class translates a character class (t.i is on the [). The class is
// computed as a set of code units, closed under JavaScript's /i
// canonicalisation when the flag is set, complemented if negated, and
// written as explicit ranges.
func (t *reTranslator) class() error {
	t.i++
	negate := false
	if t.peek(0) == '^' {
		negate = true
		t.i++
	}
	t.inClass = true
	defer func() { t.inClass = false }()
	var set rangeSet
	for {
		if t.i >= len(t.src) {
			return t.errorf("Unterminated character class")
		}
		if t.src[t.i] == ']' {
			t.i++
			break
		}
		lo, loSet, err := t.classAtom()
		if err != nil {
			return err
		}
		if t.peek(0) == '-' && t.peek(1) >= 0 && t.peek(1) != ']' {
			t.i++
			hi, hiSet, err := t.classAtom()
			if err != nil {
				return err
			}
			if loSet != nil || hiSet != nil { // Annex B: a literal "-"
				set = append(set, loSet...)
				set = append(set, hiSet...)
				if loSet == nil {
					set = append(set, [2]rune{lo, lo})
				}
				if hiSet == nil {
					set = append(set, [2]rune{hi, hi})
				}
				set = append(set, [2]rune{'-', '-'})
				continue
			}
			if lo > hi {
				return t.errorf("Range out of order in character class")
			}
			set = append(set, [2]rune{lo, hi})
			continue
		}
		if loSet != nil {
			set = append(set, loSet...)
		} else {
			set = append(set, [2]rune{lo, lo})
		}
	}
	set = set.normalize()
	if t.ci {
		set = set.closeCase()
	}
	if negate {
		set = set.complement()
	}
	t.writeClass(set)
	return nil
}

func (t *reTranslator) classAtom() (rune, rangeSet, error) {
	if t.src[t.i] == '\\' {
		return t.escape()
	}
	r := t.src[t.i]
	t.i++
	return r, nil, nil
}

// writeClass writes a set of code units as an RE2 class.
func (t *reTranslator) writeClass(set rangeSet) {
	if len(set) == 0 {
		t.out.WriteString(`[^\x{0}-\x{10ffff}]`)
		return
	}
	t.out.WriteByte('[')
	for _, rg := range set {
		writeRange(&t.out, rg[0], rg[1])
	}
	t.out.WriteByte(']')
}

// rangeSet is a set of UTF-16 code units as inclusive ranges; normalised
// sets are sorted and disjoint.
type rangeSet [][2]rune

// digitSet is \d.
func digitSet() rangeSet { return rangeSet{{'0', '9'}} }

// wordSet is \w.
func wordSet() rangeSet { return rangeSet{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}} }

// spaceSet is \s.
func spaceSet() rangeSet { return jsSpaceRanges() }

func (s rangeSet) normalize() rangeSet {
	if len(s) == 0 {
		return nil
	}
	sorted := slices.Clone(s)
	slices.SortFunc(sorted, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	out := rangeSet{sorted[0]}
	for _, rg := range sorted[1:] {
		last := &out[len(out)-1]
		if rg[0] <= last[1]+1 {
			last[1] = max(last[1], rg[1])
			continue
		}
		out = append(out, rg)
	}
	return out
}

// complement returns the code units 0..0xFFFF not in s (s normalised).
func (s rangeSet) complement() rangeSet {
	var out rangeSet
	next := rune(0)
	for _, rg := range s {
		if rg[0] > next {
			out = append(out, [2]rune{next, rg[0] - 1})
		}
		next = rg[1] + 1
	}
	if next <= 0xffff {
		out = append(out, [2]rune{next, 0xffff})
	}
	return out
}

func (s rangeSet) contains(r rune) bool {
	_, found := slices.BinarySearchFunc(s, r, func(rg [2]rune, r rune) int {
		switch {
		case rg[1] < r:
			return -1
		case rg[0] > r:
			return 1
		}
		return 0
	})
	return found
}

// closeCase adds to s every code unit whose canonicalisation equals that of
// a member (how a JavaScript /i class matches).
func (s rangeSet) closeCase() rangeSet {
	size := 0
	for _, rg := range s {
		size += int(rg[1]-rg[0]) + 1
	}
	out := slices.Clone(s)
	if size <= 1024 {
		for _, rg := range s {
			for r := rg[0]; r <= rg[1]; r++ {
				for _, e := range canonicalEquivalents(r) {
					out = append(out, [2]rune{e, e})
				}
			}
		}
		return out.normalize()
	}
	// Only characters with a case mapping have equivalents: visit those.
	visit := func(r rune) {
		if s.contains(r) {
			return
		}
		for _, e := range canonicalEquivalents(r) {
			if s.contains(e) {
				out = append(out, [2]rune{r, r})
				return
			}
		}
	}
	for _, cr := range unicode.CaseRanges {
		for r := rune(cr.Lo); r <= rune(cr.Hi) && r <= 0xffff; r++ {
			visit(r)
		}
	}
	for _, r := range newerCaseMappings {
		visit(r)
	}
	return out.normalize()
}

// regExpSource is RegExp.prototype.source as V8 computes it for a pattern:
// "/" outside a class and line terminators are escaped; the empty pattern is
// "(?:)".
func regExpSource(pattern string) string {
	if pattern == "" {
		return "(?:)"
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pattern); {
		r, size := utf8.DecodeRuneInString(pattern[i:])
		i += size
		switch {
		case r == '\\':
			if i < len(pattern) {
				n, nsize := utf8.DecodeRuneInString(pattern[i:])
				if isLineTerminator(n) {
					continue // the line terminator is escaped below
				}
				b.WriteByte('\\')
				b.WriteString(pattern[i : i+nsize])
				i += nsize
				continue
			}
		case r == '/' && !inClass:
			b.WriteByte('\\')
		case r == '[':
			inClass = true
		case r == ']':
			inClass = false
		case r == '\n':
			b.WriteString(`\n`)
			continue
		case r == '\r':
			b.WriteString(`\r`)
			continue
		case r == 0x2028:
			b.WriteString(`\u2028`)
			continue
		case r == 0x2029:
			b.WriteString(`\u2029`)
			continue
		}
		b.WriteString(pattern[i-size : i])
	}
	return b.String()
}
