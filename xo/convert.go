package xo

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

// Value conversions from generic XAPI record values (as xapi.Client
// decodes them: strings for ints, refs and enums over XML-RPC, numbers
// over JSON-RPC, bool, float64, time.Time, map[string]any, []any) to the
// JSON-ready values of XO objects. They follow JavaScript's conversions,
// because XO computes its objects with them: num is `+v`, truthy is
// `Boolean(v)`.

// str returns v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// num is JavaScript's unary plus (`+v`) on a record value, as a float64.
// NaN and ±Inf, which JSON cannot carry (JSON.stringify writes null),
// become nil.
func num(v any) any {
	f, ok := numF(v)
	if !ok {
		return nil
	}
	return f
}

// numF is like num and reports whether the result is a finite number.
func numF(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, true // +null
	case float64:
		f = x
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, true
		}
		var err error
		f, err = strconv.ParseFloat(s, 64)
		if err != nil {
			if n, ok := jsIntLiteral(s); ok {
				return n, true
			}
			return 0, false
		}
		if strings.ContainsAny(s, "_xXpP") || strings.EqualFold(strings.TrimLeft(s, "+-"), "nan") ||
			strings.EqualFold(strings.TrimLeft(s, "+-"), "inf") {
			return 0, false // Go syntax that JavaScript's Number() rejects
		}
	case time.Time:
		return float64(x.UnixMilli()), true
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// jsIntLiteral parses the 0x/0o/0b integer literals Number() accepts.
func jsIntLiteral(s string) (float64, bool) {
	if len(s) < 3 || s[0] != '0' {
		return 0, false
	}
	base := 0
	switch s[1] {
	case 'x', 'X':
		base = 16
	case 'o', 'O':
		base = 8
	case 'b', 'B':
		base = 2
	default:
		return 0, false
	}
	n, err := strconv.ParseUint(s[2:], base, 64)
	if err != nil || strings.Contains(s, "_") {
		return 0, false
	}
	return float64(n), true
}

// truthy is JavaScript's Boolean(v) on a record value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0 && !math.IsNaN(x)
	case int64:
		return x != 0
	default:
		return true
	}
}

// boolean reads an XAPI bool field. XAPI sends real booleans; a string
// "true" (hand-written records) counts too.
func boolean(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// strMap returns v as a map, or an empty map (XAPI maps are never null,
// and XO reads their members unconditionally).
func strMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

// list returns v as a slice, or nil.
func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// orEmptyList returns v when it is a slice, else an empty one, so that
// set-valued fields encode as [] rather than null.
func orEmptyList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{}
}

// ref returns v as a Ref; "" for anything that is not a string.
func ref(v any) xapi.Ref {
	if r, ok := v.(xapi.Ref); ok {
		return r
	}
	return xapi.Ref(str(v))
}

// timestamp is XO's toTimestamp (parseDateTime of @xen-orchestra/xapi):
// an XAPI datetime (time.Time from XML-RPC, or the string forms
// "YYYYMMDDTHH:MM:SSZ", "YYYY-MM-DDTHH:MM:SSZ") or a numeric string of
// seconds becomes Unix seconds; the epoch, an absent value and anything
// unparsable give nil (JSON null).
func timestamp(v any) any {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			if f == 0 {
				return nil
			}
			return math.Floor(f)
		}
		var ok bool
		if t, ok = parseXAPITime(s); !ok {
			return nil
		}
	case float64:
		if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return math.Floor(x)
	case int64:
		if x == 0 {
			return nil
		}
		return float64(x)
	default:
		return nil
	}
	if t.Unix() == 0 || t.IsZero() {
		return nil
	}
	return float64(t.Unix())
}

// parseXAPITime parses the datetime spellings XAPI uses.
func parseXAPITime(s string) (time.Time, bool) {
	for _, layout := range []string{
		"20060102T15:04:05Z",
		"20060102T15:04:05",
		"20060102T15:04:05Z07:00",
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04:05.999999999Z07:00",
		"20060102T150405Z",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// timeMillis converts an XAPI datetime to Unix milliseconds (XO's task
// timestamps), or nil.
func timeMillis(v any) any {
	s := timestamp(v)
	if s == nil {
		return nil
	}
	if t, ok := v.(time.Time); ok {
		return float64(t.UnixMilli())
	}
	return s.(float64) * 1000
}

// compareVersions compares dotted version strings numerically, component
// by component ("3.4" < "3.10"); missing components count as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
