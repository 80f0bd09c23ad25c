package filter

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// undefined stands for JavaScript's undefined: the value of a missing
// property. JSON null is Go nil.
type undefined struct{}

// toFloat returns v as a float64 if v is a number.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float32:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !isRangeError(err) {
			return math.NaN(), true
		}
		return f, true
	}
	return 0, false
}

// truthy is JavaScript's ToBoolean.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, undefined:
		return false
	case bool:
		return x
	case string:
		return x != ""
	}
	if f, ok := toFloat(v); ok {
		return f != 0 && !math.IsNaN(f)
	}
	return true
}

// toNumber is JavaScript's ToNumber as used by the relational operators.
// Objects convert through their string form: "[object Object]" (NaN), and
// arrays through Array.prototype.join.
func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case undefined:
		return math.NaN()
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		return jsStringToNumber(x)
	case []any:
		switch len(x) {
		case 0:
			return 0
		case 1:
			if x[0] == nil {
				return 0 // [null].join() is ""
			}
			if _, ok := x[0].(bool); ok {
				return math.NaN() // "true" / "false"
			}
			return toNumber(x[0])
		}
		return math.NaN() // the joined string contains a comma
	case []string:
		switch len(x) {
		case 0:
			return 0
		case 1:
			return jsStringToNumber(x[0])
		}
		return math.NaN()
	case time.Time: // a JavaScript Date: its valueOf, in milliseconds
		return float64(x.UnixMilli())
	}
	if f, ok := toFloat(v); ok {
		return f
	}
	return math.NaN()
}

// getProperty is v[name] for a JavaScript value v. ok is false when v is
// null or undefined (complex-matcher's "value != null" guard).
func getProperty(v any, name string) (p any, ok bool) {
	switch x := v.(type) {
	case nil, undefined:
		return nil, false
	case map[string]any:
		if p, found := x[name]; found {
			return p, true
		}
	case map[string]string:
		if p, found := x[name]; found {
			return p, true
		}
	case []any:
		if name == "length" {
			return len(x), true // an int: boxing small ints does not allocate
		}
		if i, isIndex := arrayIndex(name); isIndex && i < len(x) {
			return x[i], true
		}
	case []string:
		if name == "length" {
			return len(x), true // an int: boxing small ints does not allocate
		}
		if i, isIndex := arrayIndex(name); isIndex && i < len(x) {
			return x[i], true
		}
	case string:
		if name == "length" {
			return utf16Len(x), true
		}
		if i, isIndex := arrayIndex(name); isIndex {
			if c, found := utf16At(x, i); found {
				return c, true
			}
		}
	}
	return undefined{}, true
}

// arrayIndex parses a canonical array index ("0", "17", not "01" or "+1").
func arrayIndex(s string) (int, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n < math.MaxUint32
}

// utf16Len is the JavaScript length of s.
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < utf8.RuneSelf:
			n++
		case c >= 0xf0:
			n += 2 // 4-byte sequence: a surrogate pair
		case c >= 0xc0:
			n++
		}
	}
	return n
}

// utf16At returns s[i] in JavaScript: the i-th UTF-16 code unit as a string.
// A lone surrogate half is returned as U+FFFD.
func utf16At(s string, i int) (string, bool) {
	for _, r := range s {
		n := 1
		if r >= 0x10000 {
			n = 2
		}
		if i < n {
			if n == 2 {
				hi, lo := utf16.EncodeRune(r)
				if i == 0 {
					return string(hi), true // a surrogate: becomes U+FFFD
				}
				return string(lo), true
			}
			return string(r), true
		}
		i -= n
	}
	return "", false
}

// some is lodash's some(collection, node.match) as complex-matcher uses it:
// it applies to arrays and plain objects only. An object with a numeric
// "length" is array-like for lodash: only its index keys below length are
// visited.
func some(n Node, v any) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if n.Match(e) {
				return true
			}
		}
	case []string:
		for _, e := range x {
			if n.Match(e) {
				return true
			}
		}
	case map[string]any:
		if l, found := x["length"]; found {
			if max, arrayLike := lodashLength(l); arrayLike {
				for k, e := range x {
					if i, isIndex := arrayIndex(k); isIndex && float64(i) < max && n.Match(e) {
						return true
					}
				}
				return false
			}
		}
		for _, e := range x {
			if n.Match(e) {
				return true
			}
		}
	case map[string]string:
		// A string "length" is not a number: never array-like.
		for _, e := range x {
			if n.Match(e) {
				return true
			}
		}
	}
	return false
}

// lodashLength is lodash's isLength check of an array-like's length.
func lodashLength(v any) (float64, bool) {
	f, ok := toFloat(v)
	if !ok || f <= -1 || f != math.Trunc(f) || f > 1<<53-1 {
		return 0, false
	}
	return f, true
}

// substring is a case-insensitive (toLowerCase) substring search.
type substring struct {
	lower string // jsToLower(needle)
	ascii bool   // lower is ASCII
}

func newSubstring(needle string) substring {
	lower := jsToLower(needle)
	return substring{lower: lower, ascii: isASCII(lower)}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// in reports whether jsToLower(s) contains the needle.
func (n substring) in(s string) bool {
	if n.ascii && lowersToASCIIOnlyFromASCII(s) {
		return indexFoldASCII(s, n.lower) >= 0
	}
	return strings.Contains(jsToLower(s), n.lower)
}

// lowersToASCIIOnlyFromASCII reports whether the ASCII characters of
// jsToLower(s) are exactly the lowered ASCII characters of s, so that an
// ASCII needle can be searched in s itself, ignoring ASCII case: true unless
// s holds U+212A KELVIN SIGN (lowered to "k") or U+0130 (lowered to "i"
// and a combining dot). Bytes of multi-byte characters never equal ASCII
// bytes.
func lowersToASCIIOnlyFromASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 0xe2:
			if strings.HasPrefix(s[i:], "\u212a") {
				return false
			}
		case 0xc4:
			if strings.HasPrefix(s[i:], "\u0130") {
				return false
			}
		}
	}
	return true
}
