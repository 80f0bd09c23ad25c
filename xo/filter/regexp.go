package filter

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// translateRegExp compiles a JavaScript regular expression (no u flag, so
// with the Annex B extensions) into an equivalent Go regexp.
//
// The translation parses the JavaScript syntax and writes RE2 syntax in which
// every construct means what it means in JavaScript:
//   - "." excludes the four JavaScript line terminators; \s and \S are
//     JavaScript's white-space set; [] never matches and [^] always does;
//   - \cX, \xHH, \uHHHH, \0 and legacy octal escapes become code points;
//     identity escapes (\a, \z, \p, ...) become the plain character, not
//     RE2's meaning;
//   - with the i flag, literal characters match the characters JavaScript's
//     Canonicalize makes equal to them; character classes use RE2's case
//     folding (which differs for a handful of characters such as U+017F and
//     U+212A);
//   - errors JavaScript reports (Unterminated group, Nothing to repeat, ...)
//     are reported with V8's message (ErrRegExp);
//   - backreferences, lookahead and lookbehind, and repeat counts above 1000
//     have no RE2 equivalent: ErrUnsupportedRegExp.
//
// Known remaining differences: JavaScript matches UTF-16 code units, so a
// quantifier after a character outside the BMP applies to its low surrogate
// only in JavaScript, and escapes of lone surrogates (\uD800) are rejected
// here.
func translateRegExp(pattern, flags string) (*regexp.Regexp, error) {
	switch flags {
	case "", "i":
	default:
		return nil, &SyntaxError{Msg: fmt.Sprintf("Invalid regular expression flags %q", flags), Err: ErrRegExp}
	}
	t := reTranslator{pattern: pattern, flags: flags, src: []rune(pattern), ci: flags == "i"}
	t.prescan()
	if err := t.disjunction(); err != nil {
		return nil, err
	}
	if t.i < len(t.src) { // only a ')' stops the top-level disjunction
		return nil, t.errorf("Unmatched ')'")
	}
	re, err := regexp.Compile(t.out.String())
	if err != nil {
		return nil, t.unsupported(err.Error())
	}
	return re, nil
}

type reTranslator struct {
	pattern, flags string
	src            []rune
	i              int
	ci             bool
	groups         int  // number of capturing groups in the pattern
	named          bool // the pattern has named groups
	names          map[string]bool
	out            strings.Builder
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
		if minN > 1000 || maxN > 1000 {
			return t.unsupported("repeat counts above 1000 are not supported by RE2")
		}
		t.i += length
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
	t.i++ // (
	if t.peek(0) == '?' {
		switch t.peek(1) {
		case ':':
			t.i += 2
			t.out.WriteString("(?:")
		case '=', '!':
			return t.unsupported("lookahead assertions are not supported by RE2")
		case '<':
			if n := t.peek(2); n == '=' || n == '!' {
				return t.unsupported("lookbehind assertions are not supported by RE2")
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
			return t.unsupported("backreferences are not supported by RE2")
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
		return t.unsupported("backreferences are not supported by RE2")
	}
	r, class, err := t.escape(false)
	if err != nil {
		return err
	}
	if class != "" {
		t.out.WriteString(class)
		return nil
	}
	t.literal(r)
	return nil
}

// hasGroupNamed reports whether the pattern defines (?<name>...).
func (t *reTranslator) hasGroupNamed(name string) bool {
	return strings.Contains(t.pattern, "(?<"+name+">")
}

// escape reads the escape at t.i (the \) and returns either a code point or,
// for \d \D \w \W \s \S, an RE2 class (a bracketed class outside a class,
// the bare ranges inside one).
func (t *reTranslator) escape(inClass bool) (r rune, class string, err error) {
	t.i++ // \
	if t.i >= len(t.src) {
		return 0, "", t.errorf(`\ at end of pattern`)
	}
	c := t.src[t.i]
	t.i++
	switch c {
	case 'd', 'D', 'w', 'W':
		if inClass {
			return 0, `\` + string(c), nil
		}
		return 0, `[\` + string(c) + `]`, nil
	case 's':
		if inClass {
			return 0, spaceClass(false), nil
		}
		return 0, "[" + spaceClass(false) + "]", nil
	case 'S':
		if inClass {
			return 0, spaceClass(true), nil
		}
		return 0, "[" + spaceClass(true) + "]", nil
	case 'f':
		return '\f', "", nil
	case 'n':
		return '\n', "", nil
	case 'r':
		return '\r', "", nil
	case 't':
		return '\t', "", nil
	case 'v':
		return '\v', "", nil
	case 'b': // only reached inside a class
		return '\b', "", nil
	case 'c':
		if n := t.peek(0); 'a' <= n && n <= 'z' || 'A' <= n && n <= 'Z' || inClass && ('0' <= n && n <= '9' || n == '_') {
			t.i++
			return n % 32, "", nil
		}
		t.i-- // Annex B: "\c" is a backslash followed by a c
		return '\\', "", nil
	case 'x':
		if v, ok := t.hex(2); ok {
			return v, "", nil
		}
		return 'x', "", nil
	case 'u':
		v, ok := t.hex(4)
		if !ok {
			return 'u', "", nil
		}
		if utf16IsHigh(v) && t.peek(0) == '\\' && t.peek(1) == 'u' {
			save := t.i
			t.i += 2
			if lo, ok := t.hex(4); ok && utf16IsLow(lo) {
				return (v-0xd800)<<10 + (lo - 0xdc00) + 0x10000, "", nil
			}
			t.i = save
		}
		if 0xd800 <= v && v <= 0xdfff {
			return 0, "", t.unsupported("lone surrogates cannot be matched in UTF-8 text")
		}
		return v, "", nil
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
		return v, "", nil
	}
	return c, "", nil // identity escape
}

func utf16IsHigh(r rune) bool { return 0xd800 <= r && r <= 0xdbff }
func utf16IsLow(r rune) bool  { return 0xdc00 <= r && r <= 0xdfff }

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

// spaceClass returns JavaScript's \s (or \S) as the inside of an RE2 class.
func spaceClass(negate bool) string {
	var b strings.Builder
	next := rune(0)
	for _, rg := range jsSpaceRanges {
		if negate {
			if rg[0] > next {
				writeRange(&b, next, rg[0]-1)
			}
			next = rg[1] + 1
		} else {
			writeRange(&b, rg[0], rg[1])
		}
	}
	if negate {
		writeRange(&b, next, unicode.MaxRune)
	}
	return b.String()
}

func writeRange(b *strings.Builder, lo, hi rune) {
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
	writeRange(&t.out, r, r)
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

// class translates a character class (t.i is on the [).
func (t *reTranslator) class() error {
	t.i++
	negate := false
	if t.peek(0) == '^' {
		negate = true
		t.i++
	}
	if t.peek(0) == ']' {
		t.i++
		if negate {
			t.out.WriteString(`[\x{0}-\x{10ffff}]`)
		} else {
			t.out.WriteString(`[^\x{0}-\x{10ffff}]`)
		}
		return nil
	}
	if t.ci {
		t.out.WriteString("(?i:")
	}
	t.out.WriteByte('[')
	if negate {
		t.out.WriteByte('^')
	}
	for {
		if t.i >= len(t.src) {
			return t.errorf("Unterminated character class")
		}
		if t.src[t.i] == ']' {
			t.i++
			break
		}
		lo, loClass, err := t.classAtom()
		if err != nil {
			return err
		}
		if t.peek(0) == '-' && t.peek(1) >= 0 && t.peek(1) != ']' {
			t.i++
			hi, hiClass, err := t.classAtom()
			if err != nil {
				return err
			}
			if loClass != "" || hiClass != "" { // Annex B: a literal "-"
				t.classItem(lo, loClass)
				writeRange(&t.out, '-', '-')
				t.classItem(hi, hiClass)
				continue
			}
			if lo > hi {
				return t.errorf("Range out of order in character class")
			}
			writeRange(&t.out, lo, hi)
			continue
		}
		t.classItem(lo, loClass)
	}
	t.out.WriteByte(']')
	if t.ci {
		t.out.WriteByte(')')
	}
	return nil
}

func (t *reTranslator) classItem(r rune, class string) {
	if class != "" {
		t.out.WriteString(class)
		return
	}
	writeRange(&t.out, r, r)
}

func (t *reTranslator) classAtom() (rune, string, error) {
	if t.src[t.i] == '\\' {
		return t.escape(true)
	}
	r := t.src[t.i]
	t.i++
	return r, "", nil
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
