package xapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/kolo/xmlrpc"
)

// EncodeCall returns the XML-RPC methodCall body for method and args,
// encoded by kolo/xmlrpc after adapting the arguments to XAPI's taste
// (xapi.md §1.2, §1.4, §1.8):
//
//   - the <params> element is always present, empty for zero arguments;
//   - integers of every size (and integer kinds such as time.Duration) are
//     sent as decimal strings, as XO does: XAPI reads int64 from strings,
//     and kolo would send uint kinds as <i4>;
//   - time.Time is sent as a string in UTC, "20060102T15:04:05Z";
//   - nil (and nil pointers/interfaces) is sent as "" (kolo would send an
//     empty <param>);
//   - map keys are XML-escaped (kolo writes them raw);
//   - structs become maps keyed by their `xapi` tag (else the field name);
//     fields tagged ",omitempty" are left out when zero;
//   - strings, Refs, bools, floats, slices and maps go through kolo as they are.
func EncodeCall(method string, args ...any) ([]byte, error) {
	prepared := make([]any, len(args)) // non-nil: kolo then writes <params>
	for i, a := range args {
		p, err := prepareArg(reflect.ValueOf(a), false)
		if err != nil {
			return nil, fmt.Errorf("xapi: %s argument %d: %w", method, i+1, err)
		}
		prepared[i] = p
	}
	var name bytes.Buffer
	if err := xml.EscapeText(&name, []byte(method)); err != nil {
		return nil, err
	}
	return xmlrpc.EncodeMethodCall(name.String(), prepared...)
}

func escapeKey(k string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(k)) // writes to a bytes.Buffer cannot fail
	return b.String()
}

// EncodeJSONCall returns the JSON-RPC 2.0 request body for method and
// args, {"jsonrpc":"2.0","method":…,"params":[…],"id":0} as XO sends it
// (xapi.md §1.7). Arguments are adapted as in EncodeCall, except that
// integers are JSON numbers and map keys are not escaped; time.Time is the
// string "20060102T15:04:05Z".
func EncodeJSONCall(method string, args ...any) ([]byte, error) {
	prepared := make([]any, len(args))
	for i, a := range args {
		p, err := prepareArg(reflect.ValueOf(a), true)
		if err != nil {
			return nil, fmt.Errorf("xapi: %s argument %d: %w", method, i+1, err)
		}
		prepared[i] = p
	}
	return json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
		ID      int    `json:"id"`
	}{"2.0", method, prepared, 0})
}

// prepareArg converts v into the plain values kolo (or encoding/json, when
// forJSON) should encode.
func prepareArg(v reflect.Value, forJSON bool) (any, error) {
	if !v.IsValid() {
		return "", nil
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC().Format("20060102T15:04:05Z"), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", nil
		}
		return prepareArg(v.Elem(), forJSON)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if forJSON {
			return json.Number(strconv.FormatInt(v.Int(), 10)), nil
		}
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if forJSON {
			return json.Number(strconv.FormatUint(v.Uint(), 10)), nil
		}
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); forJSON && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, fmt.Errorf("JSON cannot carry %v", f)
		}
		return v.Float(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			p, err := prepareArg(v.Index(i), forJSON)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case reflect.Map:
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			var key string
			switch k := iter.Key(); k.Kind() {
			case reflect.String:
				key = k.String()
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				key = strconv.FormatInt(k.Int(), 10)
			default:
				return nil, fmt.Errorf("unsupported map key type %s", k.Type())
			}
			p, err := prepareArg(iter.Value(), forJSON)
			if err != nil {
				return nil, err
			}
			if !forJSON {
				key = escapeKey(key)
			}
			out[key] = p
		}
		return out, nil
	case reflect.Struct:
		t := v.Type()
		out := make(map[string]any, t.NumField())
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omitempty := f.Tag.Get("xapi"), false
			if n, ok := cutSuffix(name, ",omitempty"); ok {
				name, omitempty = n, true
			}
			if name == "-" || omitempty && v.Field(i).IsZero() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p, err := prepareArg(v.Field(i), forJSON)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			if !forJSON {
				name = escapeKey(name)
			}
			out[name] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type())
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
