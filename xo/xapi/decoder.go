package xapi

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// Value kinds returned by decoder.value.
const (
	kUntyped = iota // <value>text</value>: XAPI's strings, ints and refs
	kString
	kBase64
	kInt // <int>, <i4>, <i8>
	kDouble
	kBool
	kDate
	kNil
	kStruct
	kArray
)

// decoder turns XML-RPC from a scanner into Go values. Decoding into `any`
// gives: untyped values and <string>/<base64> as string (base64 is NOT
// decoded, like kolo), <int>/<i4>/<i8> as int64, <double> as float64,
// <boolean> as bool, <dateTime.iso8601> as time.Time, <nil/> as nil,
// <struct> as map[string]any and <array> as []any.
//
// Differences from kolo/xmlrpc, on purpose: untyped strings keep their
// leading and trailing whitespace (kolo trims them), and an empty value
// (<value/>, <value></value>, <string/>) is "" (kolo gives nil in an `any`).
//
// A decoder interns member names and short string values, so the 10,000
// records of a get_all_records share one copy of each field name and of
// each repeated value ("OpaqueRef:NULL", "0", "Halted", …).
type decoder struct {
	s        *scanner
	keys     map[string]string // interned member names
	vals     map[string]any    // interned short strings, boxed once
	strs     map[string]string // interned short strings for typed fields
	depth    int
	text     []byte // scratch copy of scalar text
	types    map[reflect.Type]*structInfo
	mem      arena             // batched string storage
	styp     unsafe.Pointer    // type word of a string in an interface
	atyp     unsafe.Pointer    // type word of a []any in an interface
	stack    []any             // elements of the arrays being decoded
	strstack []string          // elements of the typed string arrays being decoded
	sizes    map[string]int    // last size of a struct by member name, to presize maps
	shapes   map[string]*shape // JSON objects' predicted members by member name (jsondecode.go), made on first use
	arrays   map[string]*shape // JSON arrays' predicted elements by member name, made on first use

	// records conversion of decodeJSONResultFor
	recFields   map[string]reflect.Type // the fields to convert, nil for none
	recordsNext bool                    // the next object is the records map
	recordNext  bool                    // the next object is a record
}

// recordHint is the sizes key shared by the records of a records map.
const recordHint = "\x00record"

const (
	maxInterned    = 1 << 16 // bound on each intern table
	maxInternedLen = 16      // longer strings are not interned: rarely repeated (refs are 46 bytes)
)

func newDecoder(r io.Reader) *decoder {
	return &decoder{
		s:     newScanner(r),
		keys:  make(map[string]string),
		vals:  make(map[string]any),
		strs:  make(map[string]string),
		styp:  stringType(),
		atyp:  anysType(),
		sizes: make(map[string]int),
	}
}

func (d *decoder) key(b []byte) string {
	if k, ok := d.keys[string(b)]; ok {
		return k
	}
	k := d.mem.string(b)
	if len(d.keys) < maxInterned {
		d.keys[k] = k
	}
	return k
}

// boxed returns b as a string in an interface, sharing one boxed copy per
// distinct short value.
func (d *decoder) boxed(b []byte) any {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternedLen {
		return d.mem.box(d.mem.string(b), d.styp)
	}
	if v, ok := d.vals[string(b)]; ok {
		return v
	}
	s := d.mem.string(b)
	v := d.mem.box(s, d.styp)
	if len(d.vals) < maxInterned {
		d.vals[s] = v
	}
	return v
}

// str returns b as a string, interning short values.
func (d *decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternedLen {
		return d.mem.string(b)
	}
	if v, ok := d.strs[string(b)]; ok {
		return v
	}
	v := d.mem.string(b)
	if len(d.strs) < maxInterned {
		d.strs[v] = v
	}
	return v
}

// value reads what follows a <value> open tag. For scalars it consumes
// everything up to and including </value> and returns the text, valid
// until the next call on the decoder. For <struct> and <array> it returns
// after their open tag (empty reports a self-closed <struct/> or <array/>);
// the caller reads the content and then calls endValue.
func (d *decoder) value() (kind int, text []byte, empty bool, err error) {
	s := d.s
	txt, err := s.readText()
	if err != nil {
		return 0, nil, false, err
	}
	// fast path for untyped values: </value> follows the text in the buffer
	if s.end-s.pos >= 8 && string(s.buf[s.pos:s.pos+8]) == "</value>" {
		s.pos += 8
		return kUntyped, txt, false, nil
	}
	d.text = append(d.text[:0], txt...)
	k, err := s.tag()
	if err != nil {
		return 0, nil, false, err
	}
	if k == tagClose {
		if !s.is("value") {
			return 0, nil, false, s.errSyntax("unexpected </%s> in <value>", s.tagName())
		}
		return kUntyped, d.text, false, nil
	}
	for _, c := range d.text {
		if !isSpace(c) {
			return 0, nil, false, s.errSyntax("text before a typed value")
		}
	}
	switch string(s.tagName()) {
	case "string":
		kind = kString
	case "base64":
		kind = kBase64
	case "int", "i4", "i8":
		kind = kInt
	case "double":
		kind = kDouble
	case "boolean":
		kind = kBool
	case "dateTime.iso8601":
		kind = kDate
	case "nil":
		kind = kNil
	case "struct":
		return kStruct, nil, k == tagSelfClose, nil
	case "array":
		return kArray, nil, k == tagSelfClose, nil
	default:
		return 0, nil, false, s.errSyntax("unsupported value type <%s>", s.tagName())
	}
	d.text = d.text[:0]
	if k == tagOpen {
		txt, err := s.readText()
		if err != nil {
			return 0, nil, false, err
		}
		d.text = append(d.text, txt...)
		if kind == kNil && len(d.text) > 0 {
			return 0, nil, false, s.errSyntax("text in <nil>")
		}
		// the type's end tag
		if k, err = s.tag(); err != nil {
			return 0, nil, false, err
		}
		if k != tagClose {
			return 0, nil, false, s.errSyntax("unexpected element in a scalar value")
		}
		// kolo accepts any end tag here, and so do we (e.g. <i4>1</int>)
	}
	if err := d.endValue(); err != nil {
		return 0, nil, false, err
	}
	return kind, d.text, false, nil
}

// endValue consumes the </value> that closes a value.
func (d *decoder) endValue() error { return d.s.expect(tagClose, "value") }

// any decodes the value whose <value> open tag was just read. name is the
// member name the value belongs to ("" for array elements and results),
// used to presize maps from the previous struct of the same name.
func (d *decoder) any(name string) (any, error) {
	kind, txt, empty, err := d.value()
	if err != nil {
		return nil, err
	}
	return d.anyOf(kind, txt, empty, name)
}

// anyOf finishes decoding a value whose kind was read by value.
func (d *decoder) anyOf(kind int, txt []byte, empty bool, name string) (any, error) {
	switch kind {
	case kUntyped, kString, kBase64:
		return d.boxed(txt), nil
	case kInt:
		n, err := strconv.ParseInt(string(txt), 10, 64)
		if err != nil {
			return nil, d.s.errSyntax("bad int %q", txt)
		}
		return n, nil
	case kDouble:
		f, err := strconv.ParseFloat(string(txt), 64)
		if err != nil {
			return nil, d.s.errSyntax("bad double %q", txt)
		}
		return f, nil
	case kBool:
		b, err := strconv.ParseBool(string(txt))
		if err != nil {
			return nil, d.s.errSyntax("bad boolean %q", txt)
		}
		return b, nil
	case kDate:
		t, err := parseTime(txt)
		if err != nil {
			return nil, d.s.errSyntax("%v", err)
		}
		return t, nil
	case kNil:
		return nil, nil
	case kStruct:
		if empty {
			return map[string]any{}, d.endValue()
		}
		m, err := d.structAny(name)
		if err != nil {
			return nil, err
		}
		return m, d.endValue()
	case kArray:
		if empty {
			return []any{}, d.endValue()
		}
		a, err := d.arrayAny()
		if err != nil {
			return nil, err
		}
		return d.mem.boxAnys(a, d.atyp), d.endValue()
	}
	panic("unreachable")
}

// member reads "<member><name>…</name>" or the struct's end tag. It
// returns the interned name, or ok=false at </struct>. After it, the
// caller reads the member's value with memberValue.
func (d *decoder) member() (name string, ok bool, err error) {
	return d.memberName(true)
}

// memberName is member with a choice: intern the name (field names), or
// not (refs as keys of a records map, which are all different).
func (d *decoder) memberName(intern bool) (name string, ok bool, err error) {
	s := d.s
	if !s.exact(false, "member") {
		k, err := s.tag()
		if err != nil {
			return "", false, err
		}
		if k == tagClose && s.is("struct") {
			return "", false, nil
		}
		if k != tagOpen || !s.is("member") {
			return "", false, s.errSyntax("expected <member>, found %s", tagString(k, string(s.tagName())))
		}
	}
	if !s.exact(false, "name") {
		k, err := s.tag()
		if err != nil {
			return "", false, err
		}
		if !s.is("name") || k == tagClose {
			return "", false, s.errSyntax("expected <name> in <member>")
		}
		if k == tagSelfClose {
			return "", true, nil
		}
	}
	return d.memberNameText(intern)
}

// memberNameText reads the text of a <name> and its end tag.
func (d *decoder) memberNameText(intern bool) (name string, ok bool, err error) {
	s := d.s
	txt, err := s.readText()
	if err != nil {
		return "", false, err
	}
	if intern {
		name = d.key(txt)
	} else {
		name = d.mem.string(txt)
	}
	return name, true, s.expect(tagClose, "name")
}

// memberValue reads the <value> open tag of a member. It reports empty for
// a self-closed <value/>, whose value is "".
func (d *decoder) memberValue() (empty bool, err error) {
	if d.s.exact(false, "value") {
		return false, nil
	}
	k, err := d.s.tag()
	if err != nil {
		return false, err
	}
	if !d.s.is("value") || k == tagClose {
		return false, d.s.errSyntax("expected <value> in <member>")
	}
	return k == tagSelfClose, nil
}

func (d *decoder) endMember() error { return d.s.expect(tagClose, "member") }

func (d *decoder) enter() error {
	d.depth++
	if d.depth > 256 {
		return d.s.errSyntax("values nested too deeply")
	}
	return nil
}

func (d *decoder) structAny(hint string) (map[string]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	if len(hint) > maxInternedLen {
		hint = "" // a ref: every one differs, don't keep sizes for them
	}
	m := make(map[string]any, d.sizes[hint])
	for {
		name, ok, err := d.member()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		empty, err := d.memberValue()
		if err != nil {
			return nil, err
		}
		var v any = ""
		if !empty {
			if v, err = d.any(name); err != nil {
				return nil, err
			}
		}
		if err := d.endMember(); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if len(d.sizes) < maxInterned {
		d.sizes[hint] = len(m)
	}
	return m, nil
}

// arrayElem reads the next <value> of an array's <data>, or its end. It
// reports ok=false at the end of the array (after consuming </array>), and
// empty for <value/>.
func (d *decoder) arrayElem(inData *bool) (ok, empty bool, err error) {
	s := d.s
	for {
		k, err := s.tag()
		if err != nil {
			return false, false, err
		}
		switch {
		case !*inData && k == tagOpen && s.is("data"):
			*inData = true
		case !*inData && k == tagSelfClose && s.is("data"):
			return false, false, s.expect(tagClose, "array")
		case !*inData && k == tagClose && s.is("array"):
			return false, false, nil
		case *inData && k == tagClose && s.is("data"):
			return false, false, s.expect(tagClose, "array")
		case *inData && k != tagClose && s.is("value"):
			return true, k == tagSelfClose, nil
		default:
			return false, false, s.errSyntax("unexpected %s in <array>", tagString(k, string(s.tagName())))
		}
	}
}

func (d *decoder) arrayAny() ([]any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	// elements go on a shared stack (nested arrays push above and pop
	// back), then into a slice of exactly the right size
	start := len(d.stack)
	defer func() {
		clear(d.stack[start:])
		d.stack = d.stack[:start]
	}()
	inData := false
	for {
		ok, empty, err := d.arrayElem(&inData)
		if err != nil {
			return nil, err
		}
		if !ok {
			a := d.mem.anys(len(d.stack) - start)
			copy(a, d.stack[start:])
			return a, nil
		}
		var v any = ""
		if !empty {
			if v, err = d.any(""); err != nil {
				return nil, err
			}
		}
		d.stack = append(d.stack, v)
	}
}

// parseTime parses XAPI's dateTime.iso8601 forms: YYYYMMDDTHH:MM:SS with a
// "Z", a ±hh:mm offset or no zone (taken as UTC), and the dashed
// YYYY-MM-DDTHH:MM:SS variants. These are the layouts kolo accepts.
func parseTime(b []byte) (time.Time, error) {
	// fast path: 20250319T04:16:24Z and 20250319T04:16:24
	if (len(b) == 17 || len(b) == 18 && b[17] == 'Z') && b[8] == 'T' && b[11] == ':' && b[14] == ':' {
		var n [6]int
		ok := true
		for i, p := range [6][2]int{{0, 4}, {4, 6}, {6, 8}, {9, 11}, {12, 14}, {15, 17}} {
			v := 0
			for _, c := range b[p[0]:p[1]] {
				if c < '0' || c > '9' {
					ok = false
				}
				v = v*10 + int(c-'0')
			}
			n[i] = v
		}
		if ok && n[1] >= 1 && n[1] <= 12 && n[2] >= 1 && n[2] <= daysIn(n[1], n[0]) && n[3] < 24 && n[4] < 60 && n[5] < 60 {
			return time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC), nil
		}
	}
	s := string(b)
	for _, layout := range [...]string{"20060102T15:04:05", "20060102T15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad dateTime.iso8601 %q", s)
}

func daysIn(m, y int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
