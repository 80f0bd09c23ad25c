package xapi

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON-RPC decoding (xapi.md §1.7). The decoder reads the response while
// it arrives, through the same buffered byte source as the XML scanner,
// and builds values with the XML decoder's interning and arena (decoder
// methods), so the generic form costs about what the XML one costs.
//
// Generic values follow the XML-RPC mapping so that callers see the same
// Go values over both transports: strings, refs and enums are strings;
// integer numbers (XAPI's ints) are their decimal text as a string, as
// XAPI's XML-RPC sends them; other numbers are float64; true/false bool;
// null nil; objects map[string]any; arrays []any. Datetimes arrive as
// strings; the Client turns them (and integral floats) into the XML-RPC
// types for the fields the typed records declare (see normalize.go).

// DecodeJSONResponse reads a JSON-RPC response (v2 or v1) from r and
// returns its result. A v2 error {"code","message","data"} gives an *Error
// whose Code is message and Params data; a v1 error array ["CODE", …]
// gives the *Error it describes. out works as in DecodeResponse: typed
// values are decoded straight from the stream with the conversions of
// typed XML-RPC decoding (strings and integer numbers are untyped text,
// other numbers <double>, true/false <boolean>, null <nil/>); interfaces
// inside out get the generic form. Malformed input gives an error
// matching ErrInvalidResponse.
func DecodeJSONResponse(r io.Reader, out any) (any, error) {
	if out == nil {
		return decodeJSONResult(r)
	}
	if p, ok := out.(*map[Ref]map[string]any); ok { // Client.GetAllRecords
		v, err := decodeJSONResult(r)
		if err != nil {
			return nil, err
		}
		return nil, recordsMapOf(p, v)
	}
	target := reflect.ValueOf(out)
	if target.Kind() != reflect.Pointer || target.IsNil() {
		return nil, fmt.Errorf("xapi: DecodeJSONResponse needs a non-nil pointer, got %T", out)
	}
	return nil, decodeJSONInto(r, target.Elem())
}

// assignOut converts the generic value v into the non-nil pointer out.
func assignOut(out any, v any) error {
	target := reflect.ValueOf(out)
	if target.Kind() != reflect.Pointer || target.IsNil() {
		return fmt.Errorf("xapi: decoding needs a non-nil pointer, got %T", out)
	}
	if p, ok := out.(*map[Ref]map[string]any); ok { // Client.GetAllRecords
		return recordsMapOf(p, v)
	}
	var a assigner
	return a.assign(target.Elem(), v)
}

// decodeJSONResult decodes a whole JSON-RPC response into its generic
// result, or the *Error it carries.
func decodeJSONResult(r io.Reader) (any, error) { return decodeJSONResultFor(r, nil, "") }

// decodeJSONResultFor is decodeJSONResult followed by sc.result(method, …)
// (normalize.go), with the same result. The records of get_all_records and
// get_all_records_where are converted while they are decoded (and a value
// repeated from the previous record is converted once), rather than
// looked up again in maps that have left the CPU caches by then.
func decodeJSONResultFor(r io.Reader, sc schema, method string) (any, error) {
	d := newDecoder(r)
	s := d.s
	inline := false // records converted while decoded
	if dot := strings.LastIndexByte(method, '.'); sc != nil && dot >= 0 {
		if op := method[dot+1:]; op == "get_all_records" || op == "get_all_records_where" {
			d.recFields = sc[strings.ToLower(method[:dot])]
			inline = true
		}
	}
	if err := d.jsonSpace(); err != nil {
		return nil, err
	}
	if s.pos == s.end {
		return nil, s.errSyntax("empty JSON-RPC response")
	}
	if s.buf[s.pos] != '{' {
		return nil, s.errSyntax("JSON-RPC response is not an object")
	}
	s.pos++
	var (
		result, errv   any
		hasResult, has bool
	)
	for first := true; ; first = false {
		key, ok, err := d.jsonMember(first, true)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch key {
		case "result":
			if d.recFields != nil {
				c, err := d.jsonPeek()
				if err != nil {
					return nil, err
				}
				d.recordsNext = c == '{'
			}
			result, err = d.jsonAny("result")
			hasResult = true
		case "error":
			errv, err = d.jsonAny("error")
			has = errv != nil
		default:
			_, err = d.jsonAny(key)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := d.jsonSpace(); err != nil {
		return nil, err
	}
	if s.pos != s.end {
		return nil, s.errSyntax("data after the JSON-RPC response")
	}
	if has {
		return nil, jsonError(errv)
	}
	if !hasResult {
		return nil, s.errSyntax("JSON-RPC response has neither result nor error")
	}
	if sc != nil && !inline {
		result = sc.result(method, result)
	}
	return result, nil
}

// jsonError builds the *Error of a JSON-RPC error member: a v2 object
// {"code","message","data"} or a v1 array (or string) description.
func jsonError(v any) *Error {
	switch x := v.(type) {
	case map[string]any:
		code := scalarString(x["message"])
		if code == "" {
			code = "JSONRPC_ERROR_" + scalarString(x["code"])
		}
		var params []string
		switch data := x["data"].(type) {
		case []any:
			params = make([]string, len(data))
			for i, p := range data {
				params[i] = scalarString(p)
			}
		case nil:
		default:
			params = []string{scalarString(data)}
		}
		return &Error{Code: code, Params: params}
	case []any:
		desc := make([]string, len(x))
		for i, p := range x {
			desc[i] = scalarString(p)
		}
		return newError(desc)
	default:
		return newError([]string{scalarString(x)})
	}
}

// jsonSpace skips JSON whitespace; at end of input it returns nil with
// pos == end.
func (d *decoder) jsonSpace() error {
	s := d.s
	for {
		for s.pos < s.end {
			switch s.buf[s.pos] {
			case ' ', '\t', '\n', '\r':
				s.pos++
				continue
			}
			return nil
		}
		if !s.fill() {
			if s.rerr == io.EOF {
				return nil
			}
			return s.rerr
		}
	}
}

// jsonNext returns the next byte without consuming it when it is no
// whitespace and already buffered, else 0 (then the caller uses jsonPeek).
// It is inlined where every value pays for it.
func (d *decoder) jsonNext() byte {
	if s := d.s; s.pos < s.end {
		return s.buf[s.pos]
	}
	return 0
}

// jsonPeek skips whitespace and returns the next byte without consuming it.
func (d *decoder) jsonPeek() (byte, error) {
	if err := d.jsonSpace(); err != nil {
		return 0, err
	}
	if d.s.pos == d.s.end {
		return 0, d.s.readErr()
	}
	return d.s.buf[d.s.pos], nil
}

// jsonMember reads the next member name of an object (after its '{' or a
// previous member's value) and the ':' after it, or the closing '}'
// (ok=false). Names are interned unless they look like refs.
func (d *decoder) jsonMember(first, intern bool) (string, bool, error) {
	c, err := d.jsonPeek()
	if err != nil {
		return "", false, err
	}
	s := d.s
	if c == '}' {
		s.pos++
		return "", false, nil
	}
	if !first {
		if c != ',' {
			return "", false, s.errSyntax("expected ',' or '}' in object, found %q", c)
		}
		s.pos++
		if c, err = d.jsonPeek(); err != nil {
			return "", false, err
		}
	}
	if c != '"' {
		return "", false, s.errSyntax("expected a member name, found %q", c)
	}
	b, err := d.jsonString()
	if err != nil {
		return "", false, err
	}
	var name string
	if intern && !isRefBytes(b) {
		name = d.key(b)
	} else {
		name = d.mem.string(b)
	}
	if c, err = d.jsonPeek(); err != nil {
		return "", false, err
	}
	if c != ':' {
		return "", false, s.errSyntax("expected ':' after a member name, found %q", c)
	}
	s.pos++
	return name, true, nil
}

// isRefBytes reports whether a member name is a ref (a records map key).
func isRefBytes(b []byte) bool { return len(b) > 10 && string(b[:10]) == "OpaqueRef:" }

func isRef(s string) bool { return len(s) > 10 && s[:10] == "OpaqueRef:" }

// jsonAny decodes the next value. name is the member it belongs to, used
// to presize objects from the previous object of the same name.
func (d *decoder) jsonAny(name string) (any, error) {
	c := d.jsonNext()
	if c <= ' ' {
		var err error
		if c, err = d.jsonPeek(); err != nil {
			return nil, err
		}
	}
	s := d.s
	switch {
	case c == '"':
		b, err := d.jsonString()
		if err != nil {
			return nil, err
		}
		return d.boxed(b), nil
	case c == '{':
		s.pos++
		return d.jsonObject(name)
	case c == '[':
		s.pos++
		return d.jsonArray()
	case c == '-' || c >= '0' && c <= '9':
		b, integer, err := d.jsonNumber()
		if err != nil {
			return nil, err
		}
		if integer {
			return d.boxed(b), nil
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, s.errSyntax("number %s out of range", b)
		}
		return f, nil
	case c == 't':
		return true, d.jsonLiteral("true")
	case c == 'f':
		return false, d.jsonLiteral("false")
	case c == 'n':
		return nil, d.jsonLiteral("null")
	}
	return nil, s.errSyntax("unexpected %q at the start of a value", c)
}

func (d *decoder) jsonLiteral(lit string) error {
	s := d.s
	if !s.ensure(len(lit)) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		if s.rerr != nil && s.rerr != io.EOF {
			return s.rerr
		}
		return s.errSyntax("invalid literal, expected %s", lit)
	}
	s.pos += len(lit)
	return nil
}

func (d *decoder) jsonObject(hint string) (map[string]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	if isRef(hint) {
		hint = recordHint // the records of a records map share one shape
	}
	sh := d.shapeOf(hint)
	m := make(map[string]any, sh.size)
	s := d.s
	n := 0                                         // members so far
	records, record := d.recordsNext, d.recordNext // see decodeJSONResultFor
	d.recordsNext, d.recordNext = false, false
	for first := true; ; first = false {
		c := d.jsonNext()
		if c <= ' ' {
			var err error
			if c, err = d.jsonPeek(); err != nil {
				return nil, err
			}
		}
		if c == '}' {
			s.pos++
			break
		}
		if !first {
			if c != ',' {
				return nil, s.errSyntax("expected ',' or '}' in object, found %q", c)
			}
			s.pos++
			if c = d.jsonNext(); c <= ' ' {
				var err error
				if c, err = d.jsonPeek(); err != nil {
					return nil, err
				}
			}
		}
		if c != '"' {
			return nil, s.errSyntax("expected a member name, found %q", c)
		}
		name, err := d.jsonShapedName(sh, n)
		if err != nil {
			return nil, err
		}
		if records {
			c, err := d.jsonPeek()
			if err != nil {
				return nil, err
			}
			d.recordNext = c == '{'
		}
		v, err := d.jsonShapedValue(name, sh, n)
		if err != nil {
			return nil, err
		}
		if record {
			v = d.normalized(sh, n, name, v)
		}
		m[name] = v
		n++
	}
	sh.size = n
	return m, nil
}

// shape predicts the members of the objects decoded under one hint (the
// member name they belong to): the 10,000 records of a get_all_records
// list the same names in the same order, and many fields have the same
// value in most records. A prediction is only ever a candidate: it is
// used when the input bytes are exactly its JSON text, so a wrong one
// costs a comparison and never changes a result.
type shape struct {
	size  int    // members of the last object, to presize maps
	slots []slot // by member position
	elems bool   // a shape of array elements, whose slots never turn volatile
}

// slot predicts the member at one position of a shape.
type slot struct {
	key    string // member name, ASCII without escapes ("" for none)
	val    any    // last scalar value, a boxed string; nil for none
	text   string // val's JSON text without the quotes of a string
	quoted bool   // the text was a string (else an integer number)
	misses uint8  // recent wrong predictions, more than hits
	// the schema conversion of the member in records (decodeJSONResultFor)
	conv     reflect.Type // nil for none
	convSet  bool         // conv was looked up
	cin, out any          // the last string converted and its conversion
}

// volatile is the misses count from which a slot's values are taken to be
// unique (uuids, names, sizes): they are no longer interned, which would
// cost a lookup and fill the intern table for nothing.
const volatile = 4

const maxSlots = 1024 // bound on the predicted members of a shape

// shapeOf returns the shape of hint, creating it while the table has room
// (past that, a shared scratch shape).
func (d *decoder) shapeOf(hint string) *shape {
	if sh, ok := d.shapes[hint]; ok {
		return sh
	}
	if d.shapes == nil {
		d.shapes = make(map[string]*shape, 64)
	}
	sh := &shape{}
	if len(d.shapes) < maxInterned {
		d.shapes[hint] = sh
	}
	return sh
}

// jsonShapedName reads a member name at pos (on its opening quote) and the
// ':' after it, matching the name predicted at position n of sh first.
// Names are interned unless they look like refs.
func (d *decoder) jsonShapedName(sh *shape, n int) (string, error) {
	s := d.s
	var name string
	if n < len(sh.slots) {
		k := sh.slots[n].key
		if e := s.pos + 1 + len(k); k != "" && e < s.end && s.buf[e] == '"' && string(s.buf[s.pos+1:e]) == k {
			s.pos = e + 1
			name = k
		}
	}
	if name == "" {
		b, slow, err := d.jsonStringSlow()
		if err != nil {
			return "", err
		}
		ref := isRefBytes(b)
		if ref {
			name = d.mem.string(b)
		} else {
			name = d.key(b)
		}
		if !slow && !ref && n < maxSlots {
			if n < len(sh.slots) {
				sh.slots[n] = slot{key: name}
			} else if n == len(sh.slots) {
				sh.slots = append(sh.slots, slot{key: name})
			}
		}
	}
	if s.pos < s.end && s.buf[s.pos] == ':' {
		s.pos++
		return name, nil
	}
	c, err := d.jsonPeek()
	if err != nil {
		return "", err
	}
	if c != ':' {
		return "", s.errSyntax("expected ':' after a member name, found %q", c)
	}
	s.pos++
	return name, nil
}

// jsonShapedValue decodes the value of member name at position n of sh,
// matching the value predicted there first.
func (d *decoder) jsonShapedValue(name string, sh *shape, n int) (any, error) {
	c := d.jsonNext()
	if c <= ' ' {
		var err error
		if c, err = d.jsonPeek(); err != nil {
			return nil, err
		}
	}
	s := d.s
	var sl *slot
	if n < len(sh.slots) && sh.slots[n].key == name {
		sl = &sh.slots[n]
		if t := sl.text; sl.val != nil {
			if sl.quoted {
				if e := s.pos + 1 + len(t); c == '"' && e < s.end && s.buf[e] == '"' && string(s.buf[s.pos+1:e]) == t {
					s.pos = e + 1
					if sl.misses > 0 {
						sl.misses--
					}
					return sl.val, nil
				}
			} else if e := s.pos + len(t); e < s.end && jsonDelim(s.buf[e]) && string(s.buf[s.pos:e]) == t {
				s.pos = e
				if sl.misses > 0 {
					sl.misses--
				}
				return sl.val, nil
			}
		}
	}
	switch {
	case c == '"':
		b, slow, err := d.jsonStringSlow()
		if err != nil {
			return nil, err
		}
		if sl == nil || slow {
			return d.boxed(b), nil
		}
		return d.slotValue(sl, b, true, sh.elems), nil
	case c == '-' || c >= '0' && c <= '9':
		b, integer, err := d.jsonNumber()
		if err != nil {
			return nil, err
		}
		if !integer {
			f, err := strconv.ParseFloat(string(b), 64)
			if err != nil {
				return nil, s.errSyntax("number %s out of range", b)
			}
			return f, nil
		}
		if sl == nil {
			return d.boxed(b), nil
		}
		return d.slotValue(sl, b, false, sh.elems), nil
	case c == '[':
		s.pos++
		sh, ok := d.arrays[name]
		if !ok {
			if d.arrays == nil {
				d.arrays = make(map[string]*shape, 64)
			}
			sh = &shape{elems: true}
			if len(d.arrays) < maxInterned {
				d.arrays[name] = sh
			}
		}
		return d.jsonArrayOf(sh)
	}
	return d.jsonAny(name)
}

// slotValue boxes the string or integer text b, which sl did not predict,
// and makes it sl's prediction. Array elements (elems) are always
// interned: the strings of a member's arrays shift position from one
// record to the next, but come from a small set (operations, tags).
func (d *decoder) slotValue(sl *slot, b []byte, quoted, elems bool) any {
	misses := sl.misses
	if sl.val != nil && misses < 255 && !elems {
		misses++
	}
	var v any
	if misses >= volatile && len(b) > 0 {
		v = d.mem.box(d.mem.string(b), d.styp)
	} else {
		v = d.boxed(b)
	}
	sl.val, sl.text, sl.quoted, sl.misses = v, v.(string), quoted, misses
	return v
}

// normalized converts the value v of member name at position n of a
// record as recordFields does, through the slot of sh at n.
func (d *decoder) normalized(sh *shape, n int, name string, v any) any {
	var sl *slot
	var t reflect.Type
	if n < len(sh.slots) && sh.slots[n].key == name {
		sl = &sh.slots[n]
		if !sl.convSet {
			sl.conv, sl.convSet = d.recFields[name], true
		}
		t = sl.conv
	} else {
		t = d.recFields[name]
	}
	if t == nil {
		return v
	}
	if _, str := v.(string); !str {
		schema(nil).value(t, v) // maps and slices convert in place
		return v
	}
	if sl != nil && sl.cin != nil && sl.cin == v {
		return sl.out
	}
	z := schema(nil).value(t, v)
	if sl != nil {
		sl.cin, sl.out = v, z
	}
	return z
}

// jsonDelim reports whether c may follow a value inside an object or array.
func jsonDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t'
}

func (d *decoder) jsonArray() (any, error) { return d.jsonArrayOf(nil) }

// jsonArrayOf decodes an array (after its '['), predicting its elements
// with sh when not nil: the same member's arrays in the records of a
// get_all_records often hold the same strings (allowed_operations, …).
func (d *decoder) jsonArrayOf(sh *shape) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	start := len(d.stack)
	defer func() {
		clear(d.stack[start:])
		d.stack = d.stack[:start]
	}()
	s := d.s
	for first := true; ; first = false {
		c := d.jsonNext()
		if c <= ' ' {
			var err error
			if c, err = d.jsonPeek(); err != nil {
				return nil, err
			}
		}
		if c == ']' {
			s.pos++
			break
		}
		if !first {
			if c != ',' {
				return nil, s.errSyntax("expected ',' or ']' in array, found %q", c)
			}
			s.pos++
		}
		var v any
		var err error
		if sh == nil {
			v, err = d.jsonAny("")
		} else {
			i := len(d.stack) - start
			if i == len(sh.slots) && i < maxSlots {
				sh.slots = append(sh.slots, slot{})
			}
			v, err = d.jsonShapedValue("", sh, i)
		}
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, v)
	}
	a := d.mem.anys(len(d.stack) - start)
	copy(a, d.stack[start:])
	return d.mem.boxAnys(a, d.atyp), nil
}

// jsonString reads a string at pos (on its opening quote) and returns its
// decoded bytes, valid until the next call on the decoder. Like
// encoding/json, invalid UTF-8 and lone surrogates become U+FFFD.
func (d *decoder) jsonString() ([]byte, error) {
	b, _, err := d.jsonStringSlow()
	return b, err
}

// SWAR constants: a byte repeated in every lane of a word, and the lanes'
// high bits.
const (
	lanes1 = 0x0101010101010101
	lanes8 = 0x8080808080808080
)

// jsonStringSlow is jsonString that also reports whether the string needed
// decoding (escapes or non-ASCII bytes); when not, its bytes are exactly
// the JSON text between the quotes.
func (d *decoder) jsonStringSlow() ([]byte, bool, error) {
	s := d.s
	i := 1 // offset from s.pos; fill keeps buf[pos:], so offsets survive refills
	slow := false
	for {
		// eight bytes at a time while none is a quote, a backslash, a
		// control or a non-ASCII byte (borrows only flag lanes above the
		// first flagged one, so the lowest flag is exact)
		for s.pos+i+8 <= s.end {
			x := binary.LittleEndian.Uint64(s.buf[s.pos+i:])
			q := x ^ (lanes1 * '"')
			b := x ^ (lanes1 * '\\')
			mask := ((q - lanes1) &^ q) | ((b - lanes1) &^ b) | (x - lanes1*0x20) | x
			mask &= lanes8
			if mask == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(mask) >> 3
			break
		}
		if s.pos+i >= s.end {
			if !s.fill() {
				return nil, false, s.readErr()
			}
			continue
		}
		switch c := s.buf[s.pos+i]; {
		case c == '"':
			raw := s.buf[s.pos+1 : s.pos+i]
			s.pos += i + 1
			if !slow {
				return raw, false, nil
			}
			b, err := d.unquote(raw)
			return b, true, err
		case c == '\\':
			slow = true
			i += 2
		case c < 0x20:
			s.pos += i
			return nil, false, s.errSyntax("control character %#x in string", c)
		case c >= utf8.RuneSelf:
			slow = true
			i++
		default: // the last bytes of the buffer
			i++
		}
	}
}

// unquote decodes the escapes and invalid UTF-8 of a raw string body.
func (d *decoder) unquote(raw []byte) ([]byte, error) {
	out := d.text[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			if i+1 >= len(raw) {
				return nil, d.s.errSyntax("unterminated escape in string")
			}
			e := raw[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(raw[i:])
				if !ok {
					return nil, d.s.errSyntax("invalid \\u escape in string")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2, ok = hex4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, d.s.errSyntax("invalid escape \\%c in string", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			i += size
		}
	}
	d.text = out
	return out, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonNumber reads a number at pos and returns its text (valid until the
// next call on the decoder) and whether it is an integer literal (no
// fraction, no exponent).
func (d *decoder) jsonNumber() ([]byte, bool, error) {
	s := d.s
	i := 0
	// at returns the byte at offset i, 0 at the end of input.
	at := func() byte {
		if s.pos+i >= s.end && !s.fill() {
			return 0
		}
		return s.buf[s.pos+i]
	}
	digits := func() int {
		n := 0
		for c := at(); c >= '0' && c <= '9'; c = at() {
			i++
			n++
		}
		return n
	}
	bad := func() ([]byte, bool, error) {
		if s.rerr != nil && s.rerr != io.EOF {
			return nil, false, s.rerr
		}
		return nil, false, s.errSyntax("invalid number")
	}
	if at() == '-' {
		i++
	}
	switch c := at(); {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return bad()
	}
	integer := true
	if at() == '.' {
		i++
		integer = false
		if digits() == 0 {
			return bad()
		}
	}
	if c := at(); c == 'e' || c == 'E' {
		i++
		integer = false
		if c := at(); c == '+' || c == '-' {
			i++
		}
		if digits() == 0 {
			return bad()
		}
	}
	if s.rerr != nil && s.rerr != io.EOF {
		return nil, false, s.rerr
	}
	b := s.buf[s.pos : s.pos+i]
	s.pos += i
	return b, integer, nil
}

// recordsMapOf fills a records map from a generic result.
func recordsMapOf(p *map[Ref]map[string]any, v any) error {
	switch x := v.(type) {
	case nil:
		*p = nil
		return nil
	case map[string]any:
		m := make(map[Ref]map[string]any, len(x))
		for k, rec := range x {
			switch r := rec.(type) {
			case map[string]any:
				m[Ref(k)] = r
			case nil:
				m[Ref(k)] = nil
			case string:
				if r != "" {
					return fmt.Errorf("%w: record %s is a string", ErrInvalidResponse, k)
				}
				m[Ref(k)] = nil
			default:
				return fmt.Errorf("%w: record %s is a %s", ErrInvalidResponse, k, kindName(rec))
			}
		}
		*p = m
		return nil
	case string:
		if x == "" {
			*p = nil
			return nil
		}
	}
	return fmt.Errorf("%w: cannot decode %s into map[Ref]map[string]any", ErrInvalidResponse, kindName(v))
}

// kindName names the JSON type of a generic value for errors.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
}

// decodeJSONInto decodes a JSON-RPC response's result straight into
// target (typed decoding without the generic form in between), or returns
// the *Error it carries. Scalars convert as in typed XML-RPC decoding
// (intoOf): strings and integer numbers are untyped text, other numbers
// are <double> text, true/false <boolean>, null <nil/>.
func decodeJSONInto(r io.Reader, target reflect.Value) error {
	d := newDecoder(r)
	s := d.s
	if err := d.jsonSpace(); err != nil {
		return err
	}
	if s.pos == s.end || s.buf[s.pos] != '{' {
		return s.errSyntax("JSON-RPC response is not an object")
	}
	s.pos++
	var (
		errv           any
		hasResult, has bool
	)
	for first := true; ; first = false {
		key, ok, err := d.jsonMember(first, true)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch key {
		case "result":
			err = d.jsonInto(target)
			hasResult = true
		case "error":
			errv, err = d.jsonAny("error")
			has = errv != nil
		default:
			_, err = d.jsonAny(key)
		}
		if err != nil {
			return err
		}
	}
	if err := d.jsonSpace(); err != nil {
		return err
	}
	if s.pos != s.end {
		return s.errSyntax("data after the JSON-RPC response")
	}
	if has {
		return jsonError(errv)
	}
	if !hasResult {
		return s.errSyntax("JSON-RPC response has neither result nor error")
	}
	return nil
}

// jsonInto decodes the next value into v.
func (d *decoder) jsonInto(v reflect.Value) error {
	c, err := d.jsonPeek()
	if err != nil {
		return err
	}
	s := d.s
	switch {
	case c == '"':
		b, err := d.jsonString()
		if err != nil {
			return err
		}
		return d.intoOf(v, kUntyped, b, false)
	case c == '{':
		s.pos++
		return d.jsonObjectInto(v)
	case c == '[':
		s.pos++
		return d.jsonArrayInto(v)
	case c == '-' || c >= '0' && c <= '9':
		b, integer, err := d.jsonNumber()
		if err != nil {
			return err
		}
		if integer {
			return d.intoOf(v, kUntyped, b, false)
		}
		if v.Kind() == reflect.String {
			txt, err := d.floatText(b)
			if err != nil {
				return err
			}
			v.SetString(txt)
			return nil
		}
		return d.intoOf(v, kDouble, b, false)
	case c == 't':
		if err := d.jsonLiteral("true"); err != nil {
			return err
		}
		return d.intoOf(v, kBool, []byte("true"), false)
	case c == 'f':
		if err := d.jsonLiteral("false"); err != nil {
			return err
		}
		return d.intoOf(v, kBool, []byte("false"), false)
	case c == 'n':
		if err := d.jsonLiteral("null"); err != nil {
			return err
		}
		return d.intoOf(v, kNil, nil, false)
	}
	return s.errSyntax("unexpected %q at the start of a value", c)
}

// jsonObjectInto decodes an object (after its '{') into v: a struct, a
// map with string or int keys, a pointer to one, or an empty interface.
func (d *decoder) jsonObjectInto(v reflect.Value) error {
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.jsonObjectInto(v.Elem())
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.typeError(kStruct, t)
		}
		m, err := d.jsonObject("")
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
		return nil
	case reflect.Struct:
		if t == timeType {
			return d.typeError(kStruct, t)
		}
	case reflect.Map:
		if kk := t.Key().Kind(); kk != reflect.String && !isIntKind(kk) {
			return d.typeError(kStruct, t)
		}
	default:
		return d.typeError(kStruct, t)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	if t.Kind() == reflect.Struct {
		v.SetZero()
		fields := d.structInfo(t).fields
		for first := true; ; first = false {
			name, ok, err := d.jsonMember(first, true)
			if err != nil || !ok {
				return err
			}
			if i, known := fields[name]; known {
				if err := d.jsonInto(v.Field(i)); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			} else if _, err := d.jsonAny(name); err != nil {
				return err
			}
		}
	}
	switch p := addrOf(v).(type) {
	case *map[string]any:
		m, err := d.jsonObject("")
		if err != nil {
			return err
		}
		*p = m
		return nil
	case *map[string]string:
		m := make(map[string]string)
		for first := true; ; first = false {
			name, ok, err := d.jsonMember(first, true)
			if err != nil {
				return err
			}
			if !ok {
				*p = m
				return nil
			}
			s, err := d.jsonScalarString()
			if err != nil {
				return err
			}
			m[name] = s
		}
	}
	m := reflect.MakeMap(t)
	key := reflect.New(t.Key()).Elem()
	for first := true; ; first = false {
		name, ok, err := d.jsonMember(first, !isIntKind(t.Key().Kind()))
		if err != nil {
			return err
		}
		if !ok {
			v.Set(m)
			return nil
		}
		if err := d.setMapKey(key, name); err != nil {
			return err
		}
		elem := reflect.New(t.Elem()).Elem()
		if err := d.jsonInto(elem); err != nil {
			return err
		}
		m.SetMapIndex(key, elem)
	}
}

// floatText formats a non-integer number for a string kind as the generic
// form (float64, then strconv's shortest 'g') would give it.
func (d *decoder) floatText(b []byte) (string, error) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return "", d.s.errSyntax("number %s out of range", b)
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// jsonScalarString reads a scalar as a string kind receives it.
func (d *decoder) jsonScalarString() (string, error) {
	c, err := d.jsonPeek()
	if err != nil {
		return "", err
	}
	switch {
	case c == '"':
		b, err := d.jsonString()
		if err != nil {
			return "", err
		}
		return d.str(b), nil
	case c == '-' || c >= '0' && c <= '9':
		b, integer, err := d.jsonNumber()
		if err != nil {
			return "", err
		}
		if integer {
			return d.str(b), nil
		}
		return d.floatText(b)
	case c == 't':
		return "true", d.jsonLiteral("true")
	case c == 'f':
		return "false", d.jsonLiteral("false")
	case c == 'n':
		return "", d.jsonLiteral("null")
	case c == '{':
		return "", d.typeError(kStruct, reflect.TypeFor[string]())
	}
	return "", d.typeError(kArray, reflect.TypeFor[string]())
}

// jsonArrayInto decodes an array (after its '[') into v: a slice, a
// pointer to one, or an empty interface.
func (d *decoder) jsonArrayInto(v reflect.Value) error {
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.jsonArrayInto(v.Elem())
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.typeError(kArray, t)
		}
		a, err := d.jsonArray()
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(a))
		return nil
	case reflect.Slice:
	default:
		return d.typeError(kArray, t)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	next := func(first bool) (bool, error) {
		c, err := d.jsonPeek()
		if err != nil {
			return false, err
		}
		if c == ']' {
			d.s.pos++
			return false, nil
		}
		if !first {
			if c != ',' {
				return false, d.s.errSyntax("expected ',' or ']' in array, found %q", c)
			}
			d.s.pos++
		}
		return true, nil
	}
	switch p := addrOf(v).(type) {
	case *[]string:
		return jsonStringsInto(d, p, next)
	case *[]Ref:
		return jsonStringsInto(d, p, next)
	}
	out := reflect.MakeSlice(t, 0, 4)
	for first := true; ; first = false {
		more, err := next(first)
		if err != nil {
			return err
		}
		if !more {
			v.Set(out)
			return nil
		}
		out = reflect.Append(out, reflect.Zero(t.Elem()))
		if err := d.jsonInto(out.Index(out.Len() - 1)); err != nil {
			return err
		}
	}
}

func jsonStringsInto[T ~string](d *decoder, p *[]T, next func(bool) (bool, error)) error {
	start := len(d.strstack)
	defer func() { d.strstack = d.strstack[:start] }()
	for first := true; ; first = false {
		more, err := next(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		s, err := d.jsonScalarString()
		if err != nil {
			return err
		}
		d.strstack = append(d.strstack, s)
	}
	out := make([]T, len(d.strstack)-start)
	for i, s := range d.strstack[start:] {
		out[i] = T(s)
	}
	*p = out
	return nil
}

// hasInterface reports whether values of t can hold an interface, whose
// generic contents the Client must convert with the schema (so the
// streaming typed decoding cannot be used).
func hasInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasInterface(t.Elem(), seen)
	case reflect.Map:
		return hasInterface(t.Key(), seen) || hasInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasInterface(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}
