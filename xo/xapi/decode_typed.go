package xapi

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Typed decoding: XML-RPC values straight into Go values, with the
// conversions XAPI's encoding needs (ints arrive as untyped decimal strings,
// enums and refs as untyped strings, absent values as "").
//
// Target kinds and what they accept:
//   - string kinds (string, Ref, …): any scalar, as its text; <boolean> as
//     "true"/"false"; <nil/> as "".
//   - int kinds: untyped, <string> or <int> decimal text.
//   - float kinds: <double>, untyped, <string> or <int> text.
//   - bool: <boolean>, or untyped/<string> text accepted by strconv.ParseBool.
//   - time.Time: <dateTime.iso8601>, untyped or <string> text (see parseTime).
//   - slices: <array>; maps with string or int keys: <struct>; structs:
//     <struct>, matched by the `xapi:"name"` field tag (else the field name),
//     unknown members skipped; pointers are allocated; interfaces get the
//     `any` decoding.
//   - <nil/> and the empty value "" give the zero value for every kind
//     except string kinds ("" is their zero value anyway).

var (
	timeType = reflect.TypeOf(time.Time{})
)

// structInfo maps wire member names to field indexes of a struct type.
type structInfo struct {
	fields map[string]int
}

func (d *decoder) structInfo(t reflect.Type) *structInfo {
	if si, ok := d.types[t]; ok {
		return si
	}
	si := &structInfo{fields: make(map[string]int, t.NumField())}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("xapi")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		si.fields[name] = i
	}
	if d.types == nil {
		d.types = make(map[reflect.Type]*structInfo)
	}
	d.types[t] = si
	return si
}

// into decodes the value whose <value> open tag was just read into v.
func (d *decoder) into(v reflect.Value) error {
	kind, txt, empty, err := d.value()
	if err != nil {
		return err
	}
	return d.intoOf(v, kind, txt, empty)
}

// typeError reports a value of the wrong XML-RPC type for the target.
func (d *decoder) typeError(kind int, t reflect.Type) error {
	names := [...]string{"untyped string", "string", "base64", "int", "double", "boolean", "dateTime", "nil", "struct", "array"}
	return d.s.errSyntax("cannot decode %s into %s", names[kind], t)
}

// intoOf finishes decoding a value whose kind was read by value into v.
func (d *decoder) intoOf(v reflect.Value, kind int, txt []byte, empty bool) error {
	t := v.Type()
	if kind == kNil || (kind == kUntyped || kind == kString) && len(txt) == 0 && t.Kind() != reflect.Interface {
		v.SetZero()
		return nil
	}
	if v.CanAddr() && (kind == kArray || kind == kStruct) {
		// fast paths for the collection types of the records
		var err error
		handled := true
		switch p := v.Addr().Interface().(type) {
		case *[]string:
			err = stringsInto(d, p, kind, empty)
		case *[]Ref:
			err = stringsInto(d, p, kind, empty)
		case *map[string]string:
			err = stringMapInto(d, p, kind, empty)
		default:
			handled = false
		}
		if handled {
			return err
		}
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.typeError(kind, t)
		}
		x, err := d.anyOf(kind, txt, empty, "")
		if err != nil {
			return err
		}
		if x == nil {
			v.SetZero()
		} else {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.intoOf(v.Elem(), kind, txt, empty)
	case reflect.String:
		switch kind {
		case kStruct, kArray:
			return d.typeError(kind, t)
		case kBool:
			b, err := strconv.ParseBool(string(txt))
			if err != nil {
				return d.s.errSyntax("bad boolean %q", txt)
			}
			v.SetString(strconv.FormatBool(b))
		default:
			v.SetString(d.str(txt))
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if kind != kUntyped && kind != kString && kind != kInt {
			return d.typeError(kind, t)
		}
		n, err := strconv.ParseInt(string(txt), 10, t.Bits())
		if err != nil {
			return d.s.errSyntax("bad int %q", txt)
		}
		v.SetInt(n)
		return nil
	case reflect.Float32, reflect.Float64:
		if kind != kUntyped && kind != kString && kind != kInt && kind != kDouble {
			return d.typeError(kind, t)
		}
		f, err := strconv.ParseFloat(string(txt), t.Bits())
		if err != nil {
			return d.s.errSyntax("bad double %q", txt)
		}
		v.SetFloat(f)
		return nil
	case reflect.Bool:
		if kind != kUntyped && kind != kString && kind != kBool {
			return d.typeError(kind, t)
		}
		b, err := strconv.ParseBool(string(txt))
		if err != nil {
			return d.s.errSyntax("bad boolean %q", txt)
		}
		v.SetBool(b)
		return nil
	case reflect.Struct:
		if t == timeType {
			if kind != kUntyped && kind != kString && kind != kDate {
				return d.typeError(kind, t)
			}
			tm, err := parseTime(txt)
			if err != nil {
				return d.s.errSyntax("%v", err)
			}
			v.Set(reflect.ValueOf(tm))
			return nil
		}
		if kind != kStruct {
			return d.typeError(kind, t)
		}
		v.SetZero()
		if !empty {
			if err := d.structInto(v); err != nil {
				return err
			}
		}
		return d.endValue()
	case reflect.Map:
		if kind != kStruct {
			return d.typeError(kind, t)
		}
		if t.Key().Kind() != reflect.String && !isIntKind(t.Key().Kind()) {
			return d.typeError(kind, t)
		}
		v.Set(reflect.MakeMap(t))
		if !empty {
			if err := d.mapInto(v); err != nil {
				return err
			}
		}
		return d.endValue()
	case reflect.Slice:
		if kind != kArray {
			return d.typeError(kind, t)
		}
		if !empty {
			if err := d.sliceInto(v); err != nil {
				return err
			}
		} else {
			v.Set(reflect.MakeSlice(t, 0, 0))
		}
		return d.endValue()
	}
	return d.typeError(kind, t)
}

func isIntKind(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Int64
}

// memberInto decodes a member's value into v; a self-closed <value/> is "".
func (d *decoder) memberInto(v reflect.Value) error {
	empty, err := d.memberValue()
	if err != nil {
		return err
	}
	if empty {
		return d.intoOf(v, kUntyped, nil, false)
	}
	return d.into(v)
}

// skipMember decodes and drops a member's value.
func (d *decoder) skipMember() error {
	empty, err := d.memberValue()
	if err != nil || empty {
		return err
	}
	_, err = d.any("")
	return err
}

func (d *decoder) structInto(v reflect.Value) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	si := d.structInfo(v.Type())
	for {
		name, ok, err := d.member()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if i, known := si.fields[name]; known {
			if err := d.memberInto(v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		} else if err := d.skipMember(); err != nil {
			return err
		}
		if err := d.endMember(); err != nil {
			return err
		}
	}
}

func (d *decoder) mapInto(m reflect.Value) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	t := m.Type()
	// fast paths for the common map types
	switch mm := m.Interface().(type) {
	case map[Ref]map[string]any: // Client.GetAllRecords
		for {
			name, ok, err := d.memberName(false)
			if err != nil || !ok {
				return err
			}
			empty, err := d.memberValue()
			if err != nil {
				return err
			}
			var rec map[string]any
			if !empty {
				kind, txt, isEmpty, err := d.value()
				if err != nil {
					return err
				}
				switch {
				case kind == kStruct && isEmpty:
					rec = map[string]any{}
					err = d.endValue()
				case kind == kStruct:
					if rec, err = d.structAny(recordHint); err == nil {
						err = d.endValue()
					}
				case kind != kNil && !(kind == kUntyped && len(txt) == 0):
					err = d.typeError(kind, t.Elem())
				}
				if err != nil {
					return err
				}
			}
			mm[Ref(name)] = rec
			if err := d.endMember(); err != nil {
				return err
			}
		}
	case map[string]any:
		for {
			name, ok, err := d.member()
			if err != nil || !ok {
				return err
			}
			empty, err := d.memberValue()
			if err != nil {
				return err
			}
			var x any = ""
			if !empty {
				if x, err = d.any(name); err != nil {
					return err
				}
			}
			mm[name] = x
			if err := d.endMember(); err != nil {
				return err
			}
		}
	case map[string]string:
		var s string
		sv := reflect.ValueOf(&s).Elem()
		for {
			name, ok, err := d.member()
			if err != nil || !ok {
				return err
			}
			if err := d.memberInto(sv); err != nil {
				return err
			}
			mm[name] = s
			if err := d.endMember(); err != nil {
				return err
			}
		}
	}
	key := reflect.New(t.Key()).Elem()
	for {
		name, ok, err := d.member()
		if err != nil || !ok {
			return err
		}
		if err := d.setMapKey(key, name); err != nil {
			return err
		}
		elem := reflect.New(t.Elem()).Elem()
		if err := d.memberInto(elem); err != nil {
			return err
		}
		m.SetMapIndex(key, elem)
		if err := d.endMember(); err != nil {
			return err
		}
	}
}

func (d *decoder) sliceInto(v reflect.Value) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	t := v.Type()
	s := reflect.MakeSlice(t, 0, 4)
	inData := false
	for {
		ok, empty, err := d.arrayElem(&inData)
		if err != nil {
			return err
		}
		if !ok {
			v.Set(s)
			return nil
		}
		s = reflect.Append(s, reflect.Zero(t.Elem()))
		elem := s.Index(s.Len() - 1)
		if empty {
			err = d.intoOf(elem, kUntyped, nil, false)
		} else {
			err = d.into(elem)
		}
		if err != nil {
			return err
		}
	}
}

// scalarString reads a scalar value (after its <value> open tag, or an
// empty one) as a string, the way intoOf converts scalars for string kinds.
func (d *decoder) scalarString(empty bool) (string, error) {
	if empty {
		return "", nil
	}
	kind, txt, _, err := d.value()
	if err != nil {
		return "", err
	}
	switch kind {
	case kStruct, kArray:
		return "", d.typeError(kind, reflect.TypeFor[string]())
	case kNil:
		return "", nil
	case kBool:
		b, err := strconv.ParseBool(string(txt))
		if err != nil {
			return "", d.s.errSyntax("bad boolean %q", txt)
		}
		return strconv.FormatBool(b), nil
	}
	return d.str(txt), nil
}

// stringsInto decodes an array of scalars into a string slice, sized
// exactly, without reflection.
func stringsInto[T ~string](d *decoder, p *[]T, kind int, empty bool) error {
	if kind != kArray {
		return d.typeError(kind, reflect.TypeOf(p).Elem())
	}
	if empty {
		*p = []T{}
		return d.endValue()
	}
	if err := d.enter(); err != nil {
		return err
	}
	start := len(d.strstack)
	defer func() { d.strstack = d.strstack[:start]; d.depth-- }()
	inData := false
	for {
		ok, emptyElem, err := d.arrayElem(&inData)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s, err := d.scalarString(emptyElem)
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
	return d.endValue()
}

// stringMapInto decodes a struct of scalars into a map[string]string.
func stringMapInto(d *decoder, p *map[string]string, kind int, empty bool) error {
	if kind != kStruct {
		return d.typeError(kind, reflect.TypeOf(p).Elem())
	}
	if empty {
		*p = map[string]string{}
		return d.endValue()
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	m := make(map[string]string)
	for {
		name, ok, err := d.member()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		emptyVal, err := d.memberValue()
		if err != nil {
			return err
		}
		s, err := d.scalarString(emptyVal)
		if err != nil {
			return err
		}
		m[name] = s
		if err := d.endMember(); err != nil {
			return err
		}
	}
	*p = m
	return d.endValue()
}

// setMapKey sets key, of a string or integer kind, from a member name
// (XAPI's int-keyed maps name their keys in decimal).
func (d *decoder) setMapKey(key reflect.Value, name string) error {
	if key.Kind() == reflect.String {
		key.SetString(name)
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(name), 10, key.Type().Bits())
	if err != nil {
		return d.s.errSyntax("bad int map key %q", name)
	}
	key.SetInt(n)
	return nil
}
