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
const fullUpperExpands = "" +
	"\u00df\u0149\u01f0\u0390\u03b0\u0587\u1e96\u1e97\u1e98\u1e99" +
	"\u1e9a\u1f50\u1f52\u1f54\u1f56\u1f80\u1f81\u1f82\u1f83\u1f84" +
	"\u1f85\u1f86\u1f87\u1f88\u1f89\u1f8a\u1f8b\u1f8c\u1f8d\u1f8e" +
	"\u1f8f\u1f90\u1f91\u1f92\u1f93\u1f94\u1f95\u1f96\u1f97\u1f98" +
	"\u1f99\u1f9a\u1f9b\u1f9c\u1f9d\u1f9e\u1f9f\u1fa0\u1fa1\u1fa2" +
	"\u1fa3\u1fa4\u1fa5\u1fa6\u1fa7\u1fa8\u1fa9\u1faa\u1fab\u1fac" +
	"\u1fad\u1fae\u1faf\u1fb2\u1fb3\u1fb4\u1fb6\u1fb7\u1fbc\u1fc2" +
	"\u1fc3\u1fc4\u1fc6\u1fc7\u1fcc\u1fd2\u1fd3\u1fd6\u1fd7\u1fe2" +
	"\u1fe3\u1fe4\u1fe6\u1fe7\u1ff2\u1ff3\u1ff4\u1ff6\u1ff7\u1ffc" +
	"\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\ufb13\ufb14\ufb15" +
	"\ufb16\ufb17"

// newerCaseMappings holds BMP case pairs added after Unicode 15.0 (the
// version of Go's tables) that node already knows, as upper, lower, upper,
// lower...: TJE (U+1C89), RAMS HORN (U+A7CB), S WITH DIAGONAL STROKE
// (U+A7CC), PHARYNGEAL VOICED FRICATIVE (U+A7CE), DOUBLE THORN (U+A7D2),
// DOUBLE WYNN (U+A7D4), LAMBDA (U+A7DA), LAMBDA WITH STROKE (U+A7DC).
const newerCaseMappings = "\u1c89\u1c8a\ua7cb\u0264\ua7cc\ua7cd\ua7ce\ua7cf" +
	"\ua7d2\ua7d3\ua7d4\ua7d5\ua7da\ua7db\ua7dc\u019b"

func inFullUpperExpands(r rune) bool {
	return r >= 0xdf && strings.ContainsRune(fullUpperExpands, r)
}

// newerLower and newerUpper give the post-15.0 mappings (ok=false if none).
func newerLower(r rune) (rune, bool) { return newerMapping(r, 0) }

func newerUpper(r rune) (rune, bool) { return newerMapping(r, 1) }

// newerMapping finds r at the even (from=0) or odd (from=1) places of
// newerCaseMappings and returns its partner.
func newerMapping(r rune, from int) (rune, bool) {
	if r < 0x19b {
		return r, false
	}
	pairs := []rune(newerCaseMappings)
	for i := from; i < len(pairs); i += 2 {
		if pairs[i] == r {
			return pairs[i^1], true
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

// jsSpaceRanges is \s as class ranges (sorted, inclusive).
func jsSpaceRanges() [][2]rune {
	return [][2]rune{
		{0x09, 0x0d}, {0x20, 0x20}, {0xa0, 0xa0}, {0x1680, 0x1680}, {0x2000, 0x200a},
		{0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000}, {0xfeff, 0xfeff},
	}
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
