package xapi

import (
	"reflect"
	"strconv"
	"strings"
)

// JSON-RPC carries datetimes as strings and floats as plain numbers, so an
// integral float (1.0) looks like an int. Over XML-RPC the same values are
// <dateTime.iso8601> (time.Time) and <double> (float64). To give callers
// the same generic values over both transports, the Client converts the
// fields that the typed records declare as time.Time or float (also inside
// maps and sets) in the results of get_all_records, get_all_records_where,
// get_record, get_<field> and event.from/event.next snapshots, and the
// datetimes of host.get_servertime and host.get_server_localtime. Values
// outside these results keep the generic JSON form: datetimes stay
// strings, integral floats stay decimal strings.

// schema maps a lowercase class name to the fields to convert and their
// Go types.
type schema map[string]map[string]reflect.Type

// newSchema derives the conversions from the typed records.
func newSchema() schema {
	s := make(schema)
	for _, r := range [...]Record{Session{}, Pool{}, Host{}, HostMetrics{}, HostCPU{}, VM{}, VMMetrics{},
		VMGuestMetrics{}, SR{}, VDI{}, VBD{}, VBDMetrics{}, VIF{}, VIFMetrics{}, PIF{}, PIFMetrics{},
		Network{}, PBD{}, SM{}, PCI{}, PGPU{}, GPUGroup{}, VGPU{}, VTPM{}, VUSB{}, Console{}, Task{},
		Message{}, Bond{}, VLAN{}} {
		t := reflect.TypeOf(r)
		fields := make(map[string]reflect.Type)
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("xapi")
			if name == "" || name == "-" || !needsNormalize(f.Type) {
				continue
			}
			fields[name] = f.Type
		}
		if len(fields) > 0 {
			s[strings.ToLower(r.Class())] = fields
		}
	}
	return s
}

// needsNormalize reports whether values of t differ between the generic
// JSON and XML forms.
func needsNormalize(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return true
	case reflect.Struct:
		return t == timeType
	case reflect.Map, reflect.Slice, reflect.Pointer:
		return needsNormalize(t.Elem())
	}
	return false
}

// value converts a generic JSON value of a field of type t to its XML form.
func (schema) value(t reflect.Type, x any) any {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		if s, ok := x.(string); ok && s != "" {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return f
			}
		}
	case reflect.Struct:
		if s, ok := x.(string); ok && t == timeType && s != "" {
			if tm, err := parseTime([]byte(s)); err == nil {
				return tm
			}
		}
	case reflect.Pointer:
		return schema(nil).value(t.Elem(), x)
	case reflect.Map:
		if m, ok := x.(map[string]any); ok {
			for k, y := range m {
				m[k] = schema(nil).value(t.Elem(), y)
			}
		}
	case reflect.Slice:
		if l, ok := x.([]any); ok {
			for i, y := range l {
				l[i] = schema(nil).value(t.Elem(), y)
			}
		}
	}
	return x
}

// record converts the fields of one record of class in place.
func (s schema) record(class string, x any) {
	recordFields(s[strings.ToLower(class)], x)
}

// recordFields converts the given fields of one record in place. A value
// that stays the same (a map or slice converted in place, a string that
// is no number or datetime) is not stored again.
func recordFields(fields map[string]reflect.Type, x any) {
	rec, ok := x.(map[string]any)
	if !ok || len(fields) == 0 {
		return
	}
	for name, t := range fields {
		y, ok := rec[name]
		if !ok {
			continue
		}
		if _, str := y.(string); !str {
			schema(nil).value(t, y) // maps and slices convert in place
			continue
		}
		if z := schema(nil).value(t, y); z != y {
			rec[name] = z // a float64 or time.Time from the string
		}
	}
}

// result converts the result of method in place (maps and slices) and
// returns it (scalars are replaced).
func (s schema) result(method string, v any) any {
	dot := strings.LastIndexByte(method, '.')
	if dot < 0 {
		return v
	}
	class, op := method[:dot], method[dot+1:]
	if class == "event" && (op == "from" || op == "next") {
		var events []any
		switch x := v.(type) {
		case map[string]any: // event.from
			events, _ = x["events"].([]any)
		case []any: // event.next
			events = x
		}
		for _, e := range events {
			if em, ok := e.(map[string]any); ok {
				cl, _ := em["class"].(string)
				s.record(cl, em["snapshot"])
			}
		}
		return v
	}
	if method == "host.get_servertime" || method == "host.get_server_localtime" {
		return s.value(timeType, v) // datetime results that are no field
	}
	fields := s[strings.ToLower(class)]
	if fields == nil {
		return v
	}
	switch {
	case op == "get_all_records" || op == "get_all_records_where":
		if m, ok := v.(map[string]any); ok {
			for _, rec := range m {
				recordFields(fields, rec)
			}
		}
	case op == "get_record":
		recordFields(fields, v)
	case strings.HasPrefix(op, "get_"):
		if t, ok := fields[op[len("get_"):]]; ok {
			return s.value(t, v)
		}
	}
	return v
}
