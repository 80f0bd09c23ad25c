package filter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reproduces the few pieces of JavaScript string semantics that
// complex-matcher depends on: which characters are "raw" (cased letters),
// String.prototype.toLowerCase, the RegExp /i canonicalisation and \s.
//
// Go's unicode tables only have simple case mappings; JavaScript uses the full
// mappings of SpecialCasing.txt. The tables below hold the differences, as
// printed by node 20 (ICU 78, Unicode 17). TestUnicodeTablesAgainstNode
// re-checks every BMP code unit against node.

// fullUpperExpands lists the BMP code points whose JavaScript toUpperCase()
// is longer than one character (SpecialCasing.txt, unconditional mappings).
// For them JavaScript considers the character cased even when Go's simple
// mapping is the identity (ß, ŉ, ﬀ, ...), and the RegExp /i canonicalisation
// leaves them unchanged.
var fullUpperExpands = [...]rune{
	0xdf, 0x149, 0x1f0, 0x390, 0x3b0, 0x587, 0x1e96, 0x1e97, 0x1e98, 0x1e99,
	0x1e9a, 0x1f50, 0x1f52, 0x1f54, 0x1f56, 0x1f80, 0x1f81, 0x1f82, 0x1f83,
	0x1f84, 0x1f85, 0x1f86, 0x1f87, 0x1f88, 0x1f89, 0x1f8a, 0x1f8b, 0x1f8c,
	0x1f8d, 0x1f8e, 0x1f8f, 0x1f90, 0x1f91, 0x1f92, 0x1f93, 0x1f94, 0x1f95,
	0x1f96, 0x1f97, 0x1f98, 0x1f99, 0x1f9a, 0x1f9b, 0x1f9c, 0x1f9d, 0x1f9e,
	0x1f9f, 0x1fa0, 0x1fa1, 0x1fa2, 0x1fa3, 0x1fa4, 0x1fa5, 0x1fa6, 0x1fa7,
	0x1fa8, 0x1fa9, 0x1faa, 0x1fab, 0x1fac, 0x1fad, 0x1fae, 0x1faf, 0x1fb2,
	0x1fb3, 0x1fb4, 0x1fb6, 0x1fb7, 0x1fbc, 0x1fc2, 0x1fc3, 0x1fc4, 0x1fc6,
	0x1fc7, 0x1fcc, 0x1fd2, 0x1fd3, 0x1fd6, 0x1fd7, 0x1fe2, 0x1fe3, 0x1fe4,
	0x1fe6, 0x1fe7, 0x1ff2, 0x1ff3, 0x1ff4, 0x1ff6, 0x1ff7, 0x1ffc, 0xfb00,
	0xfb01, 0xfb02, 0xfb03, 0xfb04, 0xfb05, 0xfb06, 0xfb13, 0xfb14, 0xfb15,
	0xfb16, 0xfb17,
}

// newerCaseMappings holds BMP case pairs added after Unicode 15.0 (the
// version of Go's tables) that node already knows: upper -> lower.
var newerCaseMappings = [...][2]rune{
	{0x1c89, 0x1c8a}, // CYRILLIC CAPITAL/SMALL LETTER TJE (16.0)
	{0xa7cb, 0x0264}, // LATIN CAPITAL LETTER RAMS HORN (16.0)
	{0xa7cc, 0xa7cd}, // LATIN S WITH DIAGONAL STROKE (16.0)
	{0xa7ce, 0xa7cf}, // LATIN PHARYNGEAL VOICED FRICATIVE (17.0)
	{0xa7d2, 0xa7d3}, // LATIN DOUBLE THORN (17.0)
	{0xa7d4, 0xa7d5}, // LATIN DOUBLE WYNN (17.0)
	{0xa7da, 0xa7db}, // LATIN LAMBDA (16.0)
	{0xa7dc, 0x019b}, // LATIN LAMBDA WITH STROKE (16.0)
}

func inFullUpperExpands(r rune) bool {
	lo, hi := 0, len(fullUpperExpands)
	for lo < hi {
		m := (lo + hi) / 2
		switch v := fullUpperExpands[m]; {
		case v == r:
			return true
		case v < r:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// newerLower and newerUpper give the post-15.0 mappings (ok=false if none).
func newerLower(r rune) (rune, bool) {
	for _, p := range newerCaseMappings {
		if p[0] == r {
			return p[1], true
		}
	}
	return r, false
}

func newerUpper(r rune) (rune, bool) {
	for _, p := range newerCaseMappings {
		if p[1] == r {
			return p[0], true
		}
	}
	return r, false
}

// isCased reports whether JavaScript's c.toUpperCase() !== c ||
// c.toLowerCase() !== c holds for the code point r.
func isCased(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	if unicode.ToUpper(r) != r || unicode.ToLower(r) != r || inFullUpperExpands(r) {
		return true
	}
	_, lo := newerLower(r)
	_, up := newerUpper(r)
	return lo || up
}

// isRawUnit reports whether complex-matcher's isRawStringChar accepts the
// character when the parser looks at it. The parser indexes the input by
// UTF-16 code unit, so a character outside the BMP (a surrogate pair) is
// never raw there.
func isRawUnit(r rune) bool {
	switch {
	case '0' <= r && r <= '9', r == '_', r == '-', r == '.', r == '$':
		return true
	case r >= 0x10000:
		return false
	}
	return isCased(r)
}

// isRawChar is isRawStringChar applied to a whole code point, as
// complex-matcher's isRawString (used by toString) does.
func isRawChar(r rune) bool {
	switch {
	case '0' <= r && r <= '9', r == '_', r == '-', r == '.', r == '$':
		return true
	}
	return isCased(r)
}

// isRawString reports whether every code point of s is raw.
func isRawString(s string) bool {
	for _, r := range s {
		if !isRawChar(r) {
			return false
		}
	}
	return true
}

// isJSSpace reports whether r is matched by the JavaScript RegExp \s class
// (WhiteSpace and LineTerminator).
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return 0x2000 <= r && r <= 0x200a
}

// jsSpaceRanges is \s as RE2 class ranges (sorted, inclusive).
var jsSpaceRanges = [...][2]rune{
	{0x09, 0x0d}, {0x20, 0x20}, {0xa0, 0xa0}, {0x1680, 0x1680}, {0x2000, 0x200a},
	{0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000}, {0xfeff, 0xfeff},
}

// jsLowerRune is the simple part of toLowerCase for one code point.
func jsLowerRune(r rune) rune {
	if l := unicode.ToLower(r); l != r {
		return l
	}
	if l, ok := newerLower(r); ok {
		return l
	}
	return r
}

// jsToLower is String.prototype.toLowerCase: simple mappings, plus
// U+0130 -> "i\u0307" and the Final_Sigma rule for U+03A3.
func jsToLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		case r == 0x130:
			b.WriteString("i\u0307")
		case r == 0x3a3:
			if isFinalSigma(s, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(jsLowerRune(r))
		}
	}
	return b.String()
}

// isFinalSigma implements the Final_Sigma casing context for the sigma at
// byte offset i of s: preceded by a cased letter and not followed by one,
// skipping case-ignorable characters on both sides.
func isFinalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:j])
		j -= size
		if isCaseIgnorable(r) {
			continue
		}
		before = isCasedLetter(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, size := utf8.DecodeRuneInString(s[j:])
		j += size
		if isCaseIgnorable(r) {
			continue
		}
		return !isCasedLetter(r)
	}
	return true
}

// isCasedLetter is the Unicode "Cased" property.
func isCasedLetter(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable is the Unicode "Case_Ignorable" property.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// jsCanonicalize is the Canonicalize operation of a non-unicode JavaScript
// RegExp with the i flag (ECMA-262 22.2.2.7.3): the character's upper case
// if it is a single character and does not map a non-ASCII character to an
// ASCII one. Characters outside the BMP are matched as surrogate halves by
// JavaScript and therefore never change.
func jsCanonicalize(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}
	if r >= 0x10000 || inFullUpperExpands(r) {
		return r
	}
	u := unicode.ToUpper(r)
	if u == r {
		u, _ = newerUpper(r)
	}
	if u < utf8.RuneSelf {
		return r
	}
	return u
}
