package filter

import (
	"regexp"
	"strings"
)

// globMatcher implements complex-matcher's glob: the pattern split on "*",
// each part escaped, joined with ".*" and compiled with the i flag, not
// anchored. Since JavaScript's "." does not match line terminators, a match
// lies within one line; within a line, finding each part leftmost after the
// previous one is enough to decide.
type globMatcher struct {
	lower []string       // non-empty parts, ASCII-lowered (fast path)
	canon []string       // non-empty parts, jsCanonicalize-d (general path)
	ascii bool           // every part is ASCII
	re    *regexp.Regexp // used instead when a part holds a line terminator
}

func newGlobMatcher(pattern string) globMatcher {
	var g globMatcher
	g.ascii = isASCII(pattern)
	for _, p := range strings.Split(pattern, "*") {
		if p == "" {
			continue
		}
		if strings.ContainsFunc(p, isLineTerminator) {
			g.re = globRegexp(pattern)
		}
		g.lower = append(g.lower, strings.ToLower(p))
		g.canon = append(g.canon, canonicalizeString(p))
	}
	return g
}

// globRegexp compiles the glob as complex-matcher does (lodash escapeRegExp
// on each part, joined with ".*", flag i), for the patterns the line-by-line
// search cannot handle; Parse never builds such globs, NewGlob may.
func globRegexp(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		var b strings.Builder
		for _, r := range p {
			if strings.ContainsRune(`\^$.*+?()[]{}|`, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		parts[i] = b.String()
	}
	re, err := translateRegExp(strings.Join(parts, ".*"), "i")
	if err != nil { // an escaped text is always valid: only RE2 limits
		return regexp.MustCompile(`[^\x{0}-\x{10ffff}]`)
	}
	return re
}

func isLineTerminator(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029
}

func canonicalizeString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(jsCanonicalize(r))
	}
	return b.String()
}

func (g *globMatcher) match(s string) bool {
	if g.re != nil {
		return g.re.MatchString(jsUnits(s))
	}
	if len(g.lower) == 0 {
		return true // only stars: ".*" matches the empty string
	}
	parts, index := g.lower, indexFoldASCII
	if !g.ascii {
		// Canonicalize never maps a non-ASCII character to an ASCII one, so
		// ASCII parts are searched in s itself, other parts in its
		// canonical form.
		s, parts, index = canonicalizeString(s), g.canon, strings.Index
	}
	for {
		line, rest, more := cutLine(s)
		if matchParts(line, parts, index) {
			return true
		}
		if !more {
			return false
		}
		s = rest
	}
}

// cutLine splits s at its first JavaScript line terminator (\n, \r, U+2028,
// U+2029).
func cutLine(s string) (line, rest string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r':
			return s[:i], s[i+1:], true
		case 0xe2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				return s[:i], s[i+3:], true
			}
		}
	}
	return s, "", false
}

// matchParts reports whether the parts occur in order in line.
func matchParts(line string, parts []string, index func(s, sub string) int) bool {
	for _, p := range parts {
		i := index(line, p)
		if i < 0 {
			return false
		}
		line = line[i+len(p):]
	}
	return true
}

// indexFoldASCII is strings.Index ignoring ASCII case; sub is ASCII lower
// case (bytes of non-ASCII characters in s never match it).
func indexFoldASCII(s, sub string) int {
	if len(sub) == 0 {
		return 0
	}
	first := sub[0]
	firstUpper := first
	if 'a' <= first && first <= 'z' {
		firstUpper -= 'a' - 'A'
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		c := s[i]
		if c != first && c != firstUpper {
			continue
		}
		j := 1
		for ; j < len(sub); j++ {
			d := s[i+j]
			if 'A' <= d && d <= 'Z' {
				d += 'a' - 'A'
			}
			if d != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return i
		}
	}
	return -1
}
