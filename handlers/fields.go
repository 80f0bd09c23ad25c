package handlers

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Fields is a parsed fields parameter.
type Fields struct {
	// All is true for fields=*: whole objects.
	All bool
	// list are the fields to pick, in the order given.
	list []field
	// direct is true when picking is copying members: every field is a
	// plain key (no path syntax), none repeats, none is an array index
	// (JavaScript would list it first), href, url or a key lodash refuses.
	direct bool
}

// field is one entry of fields: a lodash property path.
type field struct {
	raw string // the entry as given
	// key is true when raw is always a single key (lodash isKey without
	// looking at the object: no "." and no "[...]").
	key bool
	// path is lodash's stringToPath(raw), used when raw is not a key of
	// the object itself.
	path []string
}

// Names returns the fields as given (nil for fields=*).
func (f *Fields) Names() []string {
	names := make([]string, len(f.list))
	for i, fl := range f.list {
		names[i] = fl.raw
	}
	return names
}

// ParseFields parses a fields parameter: "*" alone means whole objects;
// otherwise the value is split on "," without trimming (as XO does), and
// each entry is a lodash path: "CPUs.number", "tags[0]", "a['b.c']",
// "memory.dynamic.1". A key literally containing a dot wins over the path
// when the object has it.
func ParseFields(s string) *Fields {
	if s == "*" {
		return &Fields{All: true}
	}
	parts := strings.Split(s, ",")
	f := &Fields{list: make([]field, len(parts)), direct: true}
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		fl := field{raw: p, key: !isDeepProp(p)}
		if !fl.key {
			fl.path = stringToPath(p)
		}
		_, index := jsArrayIndex(p)
		switch {
		case !fl.key, seen[p], index, p == "href", p == "url", p == "__proto__", p == "constructor", p == "prototype":
			f.direct = false
		}
		seen[p] = true
		f.list[i] = fl
	}
	return f
}

// isDeepProp is lodash's reIsDeepProp test:
// /\.|\[(?:[^[\]]*|(["'])(?:(?!\1)[^\\]|\\.)*?\1)\]/.
func isDeepProp(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			return true
		case '[':
			j := i + 1
			for j < len(s) && s[j] != '[' && s[j] != ']' {
				j++
			}
			if j < len(s) && s[j] == ']' {
				return true
			}
			if _, _, ok := quotedBracket(s, i); ok {
				return true
			}
		}
	}
	return false
}

// quotedBracket matches \[(["'])((?:(?!\1)[^\\]|\\.)*?)\1\] at s[i] and
// returns the raw quoted content and the index after the closing bracket.
func quotedBracket(s string, i int) (content string, end int, ok bool) {
	if i+1 >= len(s) || s[i] != '[' || (s[i+1] != '"' && s[i+1] != '\'') {
		return "", 0, false
	}
	q := s[i+1]
	for j := i + 2; j < len(s); {
		switch c := s[j]; {
		case c == q:
			if j+1 < len(s) && s[j+1] == ']' {
				return s[i+2 : j], j + 2, true
			}
			return "", 0, false
		case c == '\\':
			// \\. : any character but a line terminator.
			if j+1 >= len(s) {
				return "", 0, false
			}
			r, size := utf8.DecodeRuneInString(s[j+1:])
			if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
				return "", 0, false
			}
			j += 1 + size
		default:
			j++
		}
	}
	return "", 0, false
}

// numberBracket matches \[(-?\d+(?:\.\d+)?)\] at s[i] and returns the number
// and the index after the closing bracket.
func numberBracket(s string, i int) (num string, end int, ok bool) {
	j := i + 1
	if j < len(s) && s[j] == '-' {
		j++
	}
	d := j
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j == d {
		return "", 0, false
	}
	if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	}
	if j >= len(s) || s[j] != ']' {
		return "", 0, false
	}
	return s[i+1 : j], j + 1, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// emptyAhead is the lookahead (?=(?:\.|\[\])(?:\.|\[\]|$)) at s[i].
func emptyAhead(s string, i int) bool {
	step := func(i int) (int, bool) {
		switch {
		case i < len(s) && s[i] == '.':
			return i + 1, true
		case i+1 < len(s) && s[i] == '[' && s[i+1] == ']':
			return i + 2, true
		}
		return i, false
	}
	j, ok := step(i)
	if !ok {
		return false
	}
	_, ok = step(j)
	return ok || j == len(s)
}

// stringToPath is lodash 4's stringToPath: the global regexp
// /[^.[\]]+|\[(?:(-?\d+(?:\.\d+)?)|(["'])((?:(?!\2)[^\\]|\\.)*?)\2)\]|(?=(?:\.|\[\])(?:\.|\[\]|$))/g
// applied with String.replace, plus a leading "" for a leading ".".
func stringToPath(s string) []string {
	var path []string
	if strings.HasPrefix(s, ".") {
		path = append(path, "")
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '.' && c != '[' && c != ']' {
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && s[j] != ']' {
				j++
			}
			path = append(path, s[i:j])
			i = j
			continue
		}
		if c == '[' {
			if num, end, ok := numberBracket(s, i); ok {
				path = append(path, num)
				i = end
				continue
			}
			if content, end, ok := quotedBracket(s, i); ok {
				path = append(path, unescapePath(content))
				i = end
				continue
			}
		}
		if emptyAhead(s, i) {
			path = append(path, "")
		}
		i++ // an empty match or no match: the scan moves on by one
	}
	return path
}

// unescapePath is lodash's subString.replace(/\\(\\)?/g, '$1').
func unescapePath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 < len(s) && s[i+1] == '\\' {
				b.WriteByte('\\')
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isIndex is lodash's isIndex for path keys: a canonical non-negative
// integer below 2^53-1.
func isIndex(key string) (int, bool) {
	if key == "" || (len(key) > 1 && key[0] == '0') || len(key) > 16 {
		return 0, false
	}
	for i := 0; i < len(key); i++ {
		if !isDigit(key[i]) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(key, 10, 64)
	if err != nil || n >= 1<<53-1 {
		return 0, false
	}
	return int(n), true
}

// maxPickIndex bounds the arrays pick creates: lodash would create an array
// as long as the index, a denial of service with one large index.
const maxPickIndex = 1 << 16

// child returns v[key] with JavaScript's "key in Object(v)" semantics for
// decoded JSON values (own properties only: prototype members such as
// "constructor" are not seen).
func child(v any, key string) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		c, ok := v[key]
		return c, ok
	case []any:
		if key == "length" {
			return float64(len(v)), true
		}
		if i, ok := isIndex(key); ok && i < len(v) {
			return v[i], true
		}
	case []string:
		if key == "length" {
			return float64(len(v)), true
		}
		if i, ok := isIndex(key); ok && i < len(v) {
			return v[i], true
		}
	case []map[string]any:
		if key == "length" {
			return float64(len(v)), true
		}
		if i, ok := isIndex(key); ok && i < len(v) {
			return v[i], true
		}
	case map[string]string:
		c, ok := v[key]
		return c, ok
	case string:
		if key == "length" {
			return float64(utf16Len(v)), true
		}
		if i, ok := isIndex(key); ok && i < utf16Len(v) {
			units := utf16.Encode([]rune(v))
			return string(utf16.Decode(units[i : i+1])), true
		}
	}
	return nil, false
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// isContainer is lodash's isObject for decoded JSON values.
func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any, []string, []map[string]any, map[string]string:
		return true
	}
	return false
}

// pickNode is an object or array being built by pick, in insertion order.
type pickNode struct {
	array bool
	keys  []string
	vals  []any // a *pickNode, or a value of the source object
}

func (n *pickNode) get(key string) (any, int) {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i], i
		}
	}
	return nil, -1
}

func (n *pickNode) set(key string, v any) {
	if _, i := n.get(key); i >= 0 {
		n.vals[i] = v
		return
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

// pick is lodash's pick(obj, fields) (basePickBy with hasIn and baseSet).
func (f *Fields) pick(obj map[string]any) *pickNode {
	// Room for href and url, which pickLinked adds.
	out := &pickNode{keys: make([]string, 0, len(f.list)+2), vals: make([]any, 0, len(f.list)+2)}
	for _, fl := range f.list {
		if v, ok := obj[fl.raw]; ok {
			// castPath: a key of the object itself wins over path syntax.
			setPath(out, []string{fl.raw}, v)
			continue
		}
		if fl.key {
			continue
		}
		v, ok := getPath(obj, fl.path)
		if !ok {
			continue
		}
		setPath(out, fl.path, v)
	}
	return out
}

// getPath is hasIn + baseGet.
func getPath(v any, path []string) (any, bool) {
	if len(path) == 0 {
		return nil, false
	}
	for _, k := range path {
		c, ok := child(v, k)
		if !ok {
			return nil, false
		}
		v = c
	}
	return v, true
}

// setPath is lodash's baseSet on the result of pick.
func setPath(n *pickNode, path []string, v any) {
	for i, key := range path {
		if key == "__proto__" || key == "constructor" || key == "prototype" {
			return
		}
		if i == len(path)-1 {
			n.set(key, v)
			return
		}
		existing, at := n.get(key)
		switch e := existing.(type) {
		case *pickNode:
			n = e
			continue
		default:
			if at >= 0 && isContainer(e) {
				// lodash writes into the source's own container the value it
				// already holds: nothing changes.
				return
			}
		}
		idx, isIdx := isIndex(path[i+1])
		next := &pickNode{array: isIdx && idx < maxPickIndex}
		n.set(key, next)
		n = next
	}
}
