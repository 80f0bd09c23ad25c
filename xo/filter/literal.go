package filter

import "strings"

// literalRegExp is a fast path for the most common regular expressions in
// filters: a plain text, optionally anchored with ^ and $ (/^MRA/i,
// /prod$/, /^foo\/bar\./). It matches like the compiled expression without
// running the regexp engine.
type literalRegExp struct {
	text       string // the literal, jsCanonicalize-d when ci
	lower      string // ASCII-lowered literal when ci and ASCII
	ascii      bool
	ci         bool
	start, end bool // anchored with ^ / $
}

// parseLiteralRegExp recognises a pattern made of characters that match
// themselves (escaped punctuation included) between an optional leading ^
// and an optional trailing $. It is only called on patterns that compiled.
func parseLiteralRegExp(pattern, flags string) (literalRegExp, bool) {
	l := literalRegExp{ci: flags == "i"}
	if strings.HasPrefix(pattern, "^") {
		l.start = true
		pattern = pattern[1:]
	}
	if strings.HasSuffix(pattern, "$") && !strings.HasSuffix(pattern, `\$`) {
		l.end = true
		pattern = pattern[:len(pattern)-1]
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\':
			if i+1 >= len(pattern) || !isASCIIPunct(pattern[i+1]) {
				return l, false // \d, \b, \1, \x41, ...: not a plain character
			}
			i++
			b.WriteByte(pattern[i])
		case strings.IndexByte(`.*+?()[]{}|^$`, c) >= 0:
			return l, false
		default:
			b.WriteByte(c)
		}
	}
	l.text = b.String()
	l.ascii = isASCII(l.text)
	if l.ci {
		if l.ascii {
			l.lower = strings.ToLower(l.text)
		}
		l.text = canonicalizeString(l.text)
	}
	return l, true
}

func isASCIIPunct(c byte) bool {
	return c < 0x80 && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_')
}

func (l *literalRegExp) match(s string) bool {
	if !l.ci {
		return l.find(s, l.text, strings.Index)
	}
	if l.ascii { // Canonicalize never maps a non-ASCII character to ASCII
		return l.find(s, l.lower, indexFoldASCII)
	}
	return l.find(canonicalizeString(s), l.text, strings.Index)
}

// find applies the anchors; index finds sub in s (for the unanchored case
// and to compare prefix and suffix).
func (l *literalRegExp) find(s, sub string, index func(s, sub string) int) bool {
	switch {
	case l.start && l.end:
		return len(s) == len(sub) && index(s, sub) == 0
	case l.start:
		return len(s) >= len(sub) && index(s[:len(sub)], sub) == 0
	case l.end:
		return len(s) >= len(sub) && index(s[len(s)-len(sub):], sub) == 0
	}
	return index(s, sub) >= 0
}
