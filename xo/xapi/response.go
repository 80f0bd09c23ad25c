package xapi

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// DecodeResponse reads an XML-RPC methodResponse from r and returns its
// result. XAPI wraps results in a struct {Status, Value | ErrorDescription}
// (xapi.md §1.3): "Success" gives Value, "Failure" gives an *Error built
// from ErrorDescription. A response without a Status member (XAPI's
// system.listMethods) gives the bare value. An XML-RPC <fault> gives an
// *Error with Code "XMLRPC_FAULT" and Params [faultCode, faultString].
//
// If out is nil the result is returned decoded as `any` (see the package
// documentation for the type mapping). Otherwise out must be a non-nil
// pointer: the result is decoded into it and the returned value is nil.
// Malformed input gives an error matching ErrInvalidResponse.
func DecodeResponse(r io.Reader, out any) (any, error) {
	var target reflect.Value
	if out != nil {
		target = reflect.ValueOf(out)
		if target.Kind() != reflect.Pointer || target.IsNil() {
			return nil, fmt.Errorf("xapi: DecodeResponse needs a non-nil pointer, got %T", out)
		}
		target = target.Elem()
	}
	d := newDecoder(r)
	return d.response(target)
}

// DecodeValue decodes a bare XML-RPC value fragment, "<value>…</value>",
// as found in a task's result field (xapi.md §5.3). An empty fragment
// (XS 6.5 gave "" for void results) decodes to "". out works as in
// DecodeResponse.
func DecodeValue(fragment string, out any) (any, error) {
	var target reflect.Value
	if out != nil {
		target = reflect.ValueOf(out)
		if target.Kind() != reflect.Pointer || target.IsNil() {
			return nil, fmt.Errorf("xapi: DecodeValue needs a non-nil pointer, got %T", out)
		}
		target = target.Elem()
	}
	d := newDecoder(strings.NewReader(fragment))
	s := d.s
	if err := s.skipMisc(); err != nil {
		return nil, err
	}
	if s.pos == s.end && s.rerr == io.EOF {
		if target.IsValid() {
			return nil, d.intoOf(target, kUntyped, nil, false)
		}
		return "", nil
	}
	k, err := s.tag()
	if err != nil {
		return nil, err
	}
	if !s.is("value") || k == tagClose {
		return nil, s.errSyntax("expected <value>, found %s", tagString(k, string(s.tagName())))
	}
	var v any
	switch {
	case k == tagSelfClose && target.IsValid():
		err = d.intoOf(target, kUntyped, nil, false)
	case k == tagSelfClose:
		v = ""
	case target.IsValid():
		err = d.into(target)
	default:
		v, err = d.any("")
	}
	if err != nil {
		return nil, err
	}
	return v, d.end()
}

// end checks that only misc follows the root element.
func (d *decoder) end() error {
	if err := d.s.skipMisc(); err != nil {
		return err
	}
	if d.s.pos != d.s.end {
		return d.s.errSyntax("data after the root element")
	}
	return nil
}

// response decodes a methodResponse; see DecodeResponse.
func (d *decoder) response(target reflect.Value) (any, error) {
	s := d.s
	if err := s.expect(tagOpen, "methodResponse"); err != nil {
		return nil, err
	}
	k, err := s.tag()
	if err != nil {
		return nil, err
	}
	if k != tagOpen {
		return nil, s.errSyntax("expected <params> or <fault>")
	}
	switch {
	case s.is("fault"):
		return nil, d.fault()
	case !s.is("params"):
		return nil, s.errSyntax("expected <params> or <fault>, found <%s>", s.tagName())
	}
	if err := s.expect(tagOpen, "param"); err != nil {
		return nil, err
	}
	if k, err = s.tag(); err != nil {
		return nil, err
	}
	if !s.is("value") || k == tagClose {
		return nil, s.errSyntax("expected <value> in <param>")
	}
	var result any
	var failure error
	if k == tagSelfClose {
		result, err = d.bare(target, kUntyped, nil, false)
	} else {
		kind, txt, empty, verr := d.value()
		switch {
		case verr != nil:
			err = verr
		case kind == kStruct && !empty:
			result, failure, err = d.wrapper(target)
		default:
			result, err = d.bare(target, kind, txt, empty)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, name := range [...]string{"param", "params", "methodResponse"} {
		if err := s.expect(tagClose, name); err != nil {
			return nil, err
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return result, failure
}

// bare finishes a result that is not XAPI's Status struct.
func (d *decoder) bare(target reflect.Value, kind int, txt []byte, empty bool) (any, error) {
	if target.IsValid() {
		return nil, d.intoOf(target, kind, txt, empty)
	}
	return d.anyOf(kind, txt, empty, "")
}

// wrapper decodes XAPI's {Status, Value, ErrorDescription} struct, whose
// <struct> open tag was just read. Value is decoded into target when valid.
// A struct without Status is returned as a plain result.
func (d *decoder) wrapper(target reflect.Value) (result any, failure, err error) {
	var (
		status    string
		hasStatus bool
		value     any
		hasValue  bool
		desc      []string
		others    map[string]any
	)
	if err := d.enter(); err != nil {
		return nil, nil, err
	}
	for {
		name, ok, err := d.member()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		switch name {
		case "Status":
			err = d.memberInto(reflect.ValueOf(&status).Elem())
			hasStatus = true
		case "Value":
			hasValue = true
			if target.IsValid() {
				err = d.memberInto(target)
			} else {
				var empty bool
				if empty, err = d.memberValue(); err == nil {
					value = ""
					if !empty {
						value, err = d.any("")
					}
				}
			}
		case "ErrorDescription":
			err = d.memberInto(reflect.ValueOf(&desc).Elem())
		default:
			var x any = ""
			var empty bool
			if empty, err = d.memberValue(); err == nil && !empty {
				x, err = d.any(name)
			}
			if others == nil {
				others = make(map[string]any)
			}
			others[name] = x
		}
		if err != nil {
			return nil, nil, err
		}
		if err := d.endMember(); err != nil {
			return nil, nil, err
		}
	}
	d.depth--
	if err := d.endValue(); err != nil {
		return nil, nil, err
	}
	switch {
	case hasStatus && status == "Success":
		return value, nil, nil
	case hasStatus:
		return nil, newError(desc), nil
	case target.IsValid():
		return nil, nil, d.s.errSyntax("response struct has no Status member")
	}
	// not XAPI's wrapper: give the struct back as it came
	m := others
	if m == nil {
		m = make(map[string]any)
	}
	if hasValue {
		m["Value"] = value
	}
	if desc != nil {
		a := make([]any, len(desc))
		for i, x := range desc {
			a[i] = x
		}
		m["ErrorDescription"] = a
	}
	return m, nil, nil
}

// fault decodes <fault><value><struct>faultCode, faultString</struct></value></fault>.
func (d *decoder) fault() error {
	s := d.s
	if err := s.expect(tagOpen, "value"); err != nil {
		return err
	}
	v, err := d.any("")
	if err != nil {
		return err
	}
	if err := s.expect(tagClose, "fault"); err != nil {
		return err
	}
	if err := s.expect(tagClose, "methodResponse"); err != nil {
		return err
	}
	if err := d.end(); err != nil {
		return err
	}
	m, _ := v.(map[string]any)
	return &Error{Code: "XMLRPC_FAULT", Params: []string{scalarString(m["faultCode"]), scalarString(m["faultString"])}}
}

// scalarString formats a decoded scalar as XAPI would send it.
func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}
