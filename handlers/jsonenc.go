package handlers

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The encoder below writes decoded-JSON-like values (map[string]any, []any,
// strings, float64, ...) as JavaScript's JSON.stringify does, without
// reflection: no HTML escaping, numbers as JavaScript prints them, NaN and
// infinities as null. Map keys are sorted (Go maps have no order). Values of
// other types go through encoding/json.

// jsonIndent is XO's 'json spaces' setting.
const jsonIndent = "  "

// appendJSON appends v. With pretty, it indents by two spaces per level,
// depth being the level of v itself, like JSON.stringify(v, null, 2).
func appendJSON(b []byte, v any, pretty bool, depth int) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case float64:
		return appendFloat(b, v)
	case float32:
		return appendFloat(b, float64(v))
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case json.Number:
		return append(b, v...)
	case map[string]any:
		keys := objectKeys(v)
		return appendObject(b, len(keys), func(b []byte, i int) []byte {
			b = appendString(b, keys[i])
			return appendValueAfterKey(b, v[keys[i]], pretty, depth)
		}, pretty, depth)
	case map[string]string:
		keys := objectKeys(v)
		return appendObject(b, len(keys), func(b []byte, i int) []byte {
			b = appendString(b, keys[i])
			return appendValueAfterKey(b, v[keys[i]], pretty, depth)
		}, pretty, depth)
	case []any:
		return appendArray(b, len(v), func(b []byte, i int) []byte { return appendJSON(b, v[i], pretty, depth+1) }, pretty, depth)
	case []string:
		return appendArray(b, len(v), func(b []byte, i int) []byte { return appendString(b, v[i]) }, pretty, depth)
	case []map[string]any:
		return appendArray(b, len(v), func(b []byte, i int) []byte { return appendJSON(b, v[i], pretty, depth+1) }, pretty, depth)
	case *pickNode:
		return appendPickNode(b, v, pretty, depth)
	default:
		return appendReflect(b, v, pretty, depth)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// objectKeys returns the keys of m in the order a JavaScript object built
// from it would list them, as far as a Go map allows: array-index keys in
// ascending order, then the others sorted (their insertion order is lost).
func objectKeys[V any](m map[string]V) []string {
	keys := sortedKeys(m)
	if !hasArrayIndex(keys) {
		return keys
	}
	order := jsKeyOrder(keys)
	out := make([]string, len(keys))
	for i, j := range order {
		out[i] = keys[j]
	}
	return out
}

// hasArrayIndex reports whether a key is a JavaScript array index.
func hasArrayIndex(keys []string) bool {
	for _, k := range keys {
		if _, ok := jsArrayIndex(k); ok {
			return true
		}
	}
	return false
}

// appendValueAfterKey appends the ":" separator and the value of a member.
func appendValueAfterKey(b []byte, v any, pretty bool, depth int) []byte {
	if pretty {
		b = append(b, ':', ' ')
	} else {
		b = append(b, ':')
	}
	return appendJSON(b, v, pretty, depth+1)
}

// appendObject appends an object of n members written by member.
func appendObject(b []byte, n int, member func([]byte, int) []byte, pretty bool, depth int) []byte {
	if n == 0 {
		return append(b, '{', '}')
	}
	b = append(b, '{')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNewline(b, pretty, depth+1)
		b = member(b, i)
	}
	b = appendNewline(b, pretty, depth)
	return append(b, '}')
}

// appendArray appends an array of n elements written by elem.
func appendArray(b []byte, n int, elem func([]byte, int) []byte, pretty bool, depth int) []byte {
	if n == 0 {
		return append(b, '[', ']')
	}
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNewline(b, pretty, depth+1)
		b = elem(b, i)
	}
	b = appendNewline(b, pretty, depth)
	return append(b, ']')
}

func appendNewline(b []byte, pretty bool, depth int) []byte {
	if !pretty {
		return b
	}
	b = append(b, '\n')
	for range depth {
		b = append(b, jsonIndent...)
	}
	return b
}

// appendPickNode appends a result of pick. Objects list canonical array
// index keys first, in ascending order, as JavaScript objects do; arrays
// show only their index keys, holes as null.
func appendPickNode(b []byte, n *pickNode, pretty bool, depth int) []byte {
	if n.array {
		size := 0
		for _, k := range n.keys {
			if i, ok := isIndex(k); ok && i < maxPickIndex && i+1 > size {
				size = i + 1
			}
		}
		elems := make([]any, size)
		for j, k := range n.keys {
			if i, ok := isIndex(k); ok && i < maxPickIndex {
				elems[i] = n.vals[j]
			}
		}
		return appendArray(b, size, func(b []byte, i int) []byte { return appendJSON(b, elems[i], pretty, depth+1) }, pretty, depth)
	}
	order := jsKeyOrder(n.keys)
	return appendObject(b, len(order), func(b []byte, i int) []byte {
		b = appendString(b, n.keys[order[i]])
		return appendValueAfterKey(b, n.vals[order[i]], pretty, depth)
	}, pretty, depth)
}

// jsKeyOrder returns the positions of keys in JavaScript's property order:
// array-index keys ascending, then the others in insertion order.
func jsKeyOrder(keys []string) []int {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	if !hasArrayIndex(keys) {
		return order
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ia, oka := jsArrayIndex(keys[a])
		ib, okb := jsArrayIndex(keys[b])
		switch {
		case oka && okb:
			return int(ia - ib)
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return order
}

// jsArrayIndex reports whether k is a JavaScript array index (a canonical
// integer below 2^32-1), which objects list first.
func jsArrayIndex(k string) (int64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	var n int64
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(k[i]-'0')
	}
	return n, n < 1<<32-1
}

// appendReflect encodes other types with encoding/json.
func appendReflect(b []byte, v any, pretty bool, depth int) []byte {
	var data []byte
	var err error
	if pretty {
		prefix := make([]byte, 0, depth*len(jsonIndent))
		for range depth {
			prefix = append(prefix, jsonIndent...)
		}
		data, err = json.MarshalIndent(v, string(prefix), jsonIndent)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, data...)
}

// appendFloat formats f as JavaScript's Number.prototype.toString does
// (the same rules encoding/json uses), NaN and infinities as null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	if f == 0 {
		return append(b, '0') // also -0, as JSON.stringify does
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as JSON.stringify does; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plainWord(s[i:i+8]) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Bytes repeated in every byte of a word, for plainWord.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether the 8 bytes of s are printable ASCII other
// than '"' and '\\', which appendString copies as they are. It tests them
// at once: (x - ones) &^ x & highs is not zero when a byte of x is zero,
// and (x - n*ones) &^ x & highs when a byte below 0x80 is below n.
func plainWord(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	quote, backslash := x^('"'*ones), x^('\\'*ones)
	special := (x-0x20*ones)&^x | (quote-ones)&^quote | (backslash-ones)&^backslash
	return (special|x)&highs == 0
}
