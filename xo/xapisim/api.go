package xapisim

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Fault is an XAPI error as it travels in ErrorDescription: a code followed
// by string parameters.
type Fault struct {
	Code   string
	Params []string
}

// NewFault returns a fault with code and params.
func NewFault(code string, params ...string) *Fault {
	return &Fault{Code: code, Params: params}
}

func (f *Fault) Error() string {
	if len(f.Params) == 0 {
		return f.Code
	}
	return f.Code + "(" + strings.Join(f.Params, ", ") + ")"
}

// Description returns the fault as XAPI's ErrorDescription array.
func (f *Fault) Description() []string {
	return append([]string{f.Code}, f.Params...)
}

// Call is one API call being served.
type Call struct {
	// Ctx is cancelled when the client goes away (sync calls) or by
	// task.cancel on the call's task (Async calls, whose work outlives the
	// request, like XAPI's).
	Ctx context.Context
	// Sim is the simulator serving the call.
	Sim *Simulator
	// Method is the wire name without any "Async." prefix, in its canonical
	// "Class.method" spelling (a "Class_method" request is normalised).
	Method string
	// Session is the caller's session ref, "" for calls without one.
	Session string
	// Args are the parameters after the session ref, decoded to string,
	// int64, float64, bool, time.Time, []any, map[string]any or nil.
	Args []any
	// Task is the ref of the task running the call: set for Async calls
	// and, as in XAPI, for sync calls of methods with an async mode (a
	// transient task destroyed when the call returns), so handlers can
	// always record {Task: op} in current_operations. It is "" for sync
	// calls of other methods.
	Task string
}

// Handler implements one XAPI method. It returns the result value (using
// the Go types documented on Record; nil or "" for void) or an error; a
// *Fault error is reported to the client as it is, any other error as
// INTERNAL_ERROR.
type Handler func(c *Call) (any, error)

// Method describes one XAPI method of the dispatch table.
type Method struct {
	Handler Handler
	// Params is the number of parameters after the session ref.
	Params int
	// Defaults is how many trailing parameters may be omitted (they have
	// datamodel defaults); extra trailing parameters are then ignored, as
	// XAPI does.
	Defaults int
	// Async reports whether an Async.<method> form exists.
	Async bool
	// NoSession marks calls that take no session ref (login, listMethods).
	NoSession bool
}

// String returns the i-th argument as a string, or a fault.
func (c *Call) String(i int) (string, error) {
	if i >= len(c.Args) {
		return "", nil
	}
	switch v := c.Args[i].(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	}
	return "", c.typeError(i, "string")
}

// Int returns the i-th argument as an int64; decimal strings are accepted,
// as XAPI does.
func (c *Call) Int(i int) (int64, error) {
	if i >= len(c.Args) {
		return 0, nil
	}
	switch v := c.Args[i].(type) {
	case int64:
		return v, nil
	case float64:
		if v == float64(int64(v)) {
			return int64(v), nil
		}
	case string:
		var n int64
		if _, err := fmt.Sscan(v, &n); err == nil && fmt.Sprint(n) == strings.TrimPrefix(v, "+") {
			return n, nil
		}
	}
	return 0, c.typeError(i, "int")
}

// Float returns the i-th argument as a float64; ints and decimal strings
// are accepted.
func (c *Call) Float(i int) (float64, error) {
	if i >= len(c.Args) {
		return 0, nil
	}
	switch v := c.Args[i].(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case string:
		var f float64
		if _, err := fmt.Sscan(v, &f); err == nil {
			return f, nil
		}
	}
	return 0, c.typeError(i, "float")
}

// Bool returns the i-th argument as a bool. Only <boolean> is accepted, as
// in XAPI.
func (c *Call) Bool(i int) (bool, error) {
	if i >= len(c.Args) {
		return false, nil
	}
	if v, ok := c.Args[i].(bool); ok {
		return v, nil
	}
	return false, c.typeError(i, "bool")
}

// Strings returns the i-th argument as a string set.
func (c *Call) Strings(i int) ([]string, error) {
	if i >= len(c.Args) {
		return nil, nil
	}
	switch v := c.Args[i].(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok && e != nil {
				return nil, c.typeError(i, "string set")
			}
			out = append(out, s)
		}
		return out, nil
	case string:
		if v == "" { // <value/> for an empty set
			return nil, nil
		}
	case nil:
		return nil, nil
	}
	return nil, c.typeError(i, "string set")
}

// Struct returns the i-th argument as a struct (constructor records, maps).
func (c *Call) Struct(i int) (map[string]any, error) {
	if i >= len(c.Args) {
		return nil, nil
	}
	switch v := c.Args[i].(type) {
	case map[string]any:
		return v, nil
	case string:
		if v == "" {
			return map[string]any{}, nil
		}
	case nil:
		return map[string]any{}, nil
	}
	return nil, c.typeError(i, "struct")
}

// Time returns the i-th argument as a time (dateTime.iso8601 or a string in
// one of XAPI's date formats).
func (c *Call) Time(i int) (time.Time, error) {
	if i >= len(c.Args) {
		return time.Time{}, nil
	}
	switch v := c.Args[i].(type) {
	case time.Time:
		return v, nil
	case string:
		if t, ok := ParseTime(v); ok {
			return t, nil
		}
	}
	return time.Time{}, c.typeError(i, "datetime")
}

func (c *Call) typeError(i int, want string) *Fault {
	return NewFault("INTERNAL_ERROR", fmt.Sprintf("%s: parameter %d is not a %s: %v", c.Method, i+1, want, c.Args[i]))
}

// ParseTime parses XAPI's date formats: YYYYMMDDTHH:MM:SS with an optional
// Z or ±hh:mm zone, with or without dashes; no zone means UTC.
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range []string{
		"20060102T15:04:05Z07:00", "20060102T15:04:05Z", "20060102T15:04:05",
		"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
