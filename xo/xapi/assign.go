package xapi

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// assigner converts generic values (the `any` form of either decoder) into
// typed Go values with the rules of typed XML-RPC decoding (see
// decode_typed.go): ints and floats parse from strings, "" and nil give
// zero values, time.Time parses from strings, structs match `xapi` tags.
// JSON-RPC responses are typed this way.
type assigner struct {
	types map[reflect.Type]map[string]int
}

func (a *assigner) fields(t reflect.Type) map[string]int {
	if f, ok := a.types[t]; ok {
		return f
	}
	f := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Tag.Get("xapi")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f[name] = i
	}
	if a.types == nil {
		a.types = make(map[reflect.Type]map[string]int)
	}
	a.types[t] = f
	return f
}

func assignError(x any, t reflect.Type) error {
	return fmt.Errorf("%w: cannot decode %s into %s", ErrInvalidResponse, kindName(x), t)
}

// assign stores x into v.
func (a *assigner) assign(v reflect.Value, x any) error {
	t := v.Type()
	if s, ok := x.(string); x == nil || ok && s == "" && t.Kind() != reflect.Interface {
		v.SetZero()
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return assignError(x, t)
		}
		v.Set(reflect.ValueOf(x))
		return nil
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return a.assign(v.Elem(), x)
	case reflect.String:
		switch y := x.(type) {
		case string:
			v.SetString(y)
		case bool:
			v.SetString(strconv.FormatBool(y))
		case float64:
			v.SetString(strconv.FormatFloat(y, 'g', -1, 64))
		case time.Time:
			v.SetString(y.Format("20060102T15:04:05Z07:00"))
		default:
			return assignError(x, t)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch y := x.(type) {
		case string:
			var err error
			if n, err = strconv.ParseInt(y, 10, t.Bits()); err != nil {
				return fmt.Errorf("%w: bad int %q", ErrInvalidResponse, y)
			}
		case int64:
			n = y
		case float64:
			if y != math.Trunc(y) || y < math.MinInt64 || y >= math.MaxInt64 {
				return fmt.Errorf("%w: bad int %v", ErrInvalidResponse, y)
			}
			n = int64(y)
		default:
			return assignError(x, t)
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%w: int %d overflows %s", ErrInvalidResponse, n, t)
		}
		v.SetInt(n)
		return nil
	case reflect.Float32, reflect.Float64:
		switch y := x.(type) {
		case string:
			f, err := strconv.ParseFloat(y, t.Bits())
			if err != nil {
				return fmt.Errorf("%w: bad double %q", ErrInvalidResponse, y)
			}
			v.SetFloat(f)
		case float64:
			v.SetFloat(y)
		case int64:
			v.SetFloat(float64(y))
		default:
			return assignError(x, t)
		}
		return nil
	case reflect.Bool:
		switch y := x.(type) {
		case bool:
			v.SetBool(y)
		case string:
			b, err := strconv.ParseBool(y)
			if err != nil {
				return fmt.Errorf("%w: bad boolean %q", ErrInvalidResponse, y)
			}
			v.SetBool(b)
		default:
			return assignError(x, t)
		}
		return nil
	case reflect.Struct:
		if t == timeType {
			switch y := x.(type) {
			case time.Time:
				v.Set(reflect.ValueOf(y))
			case string:
				tm, err := parseTime([]byte(y))
				if err != nil {
					return fmt.Errorf("%w: %v", ErrInvalidResponse, err)
				}
				v.Set(reflect.ValueOf(tm))
			default:
				return assignError(x, t)
			}
			return nil
		}
		m, ok := x.(map[string]any)
		if !ok {
			return assignError(x, t)
		}
		v.SetZero()
		fields := a.fields(t)
		for name, y := range m {
			if i, known := fields[name]; known {
				if err := a.assign(v.Field(i), y); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		}
		return nil
	case reflect.Map:
		m, ok := x.(map[string]any)
		if !ok {
			return assignError(x, t)
		}
		kk := t.Key().Kind()
		if kk != reflect.String && !isIntKind(kk) {
			return assignError(x, t)
		}
		if p, ok := addrOf(v).(*map[string]string); ok {
			out := make(map[string]string, len(m))
			for k, y := range m {
				s, err := scalarText(y)
				if err != nil {
					return err
				}
				out[k] = s
			}
			*p = out
			return nil
		}
		out := reflect.MakeMapWithSize(t, len(m))
		key := reflect.New(t.Key()).Elem()
		for k, y := range m {
			if kk == reflect.String {
				key.SetString(k)
			} else {
				n, err := strconv.ParseInt(strings.TrimSpace(k), 10, t.Key().Bits())
				if err != nil {
					return fmt.Errorf("%w: bad int map key %q", ErrInvalidResponse, k)
				}
				key.SetInt(n)
			}
			elem := reflect.New(t.Elem()).Elem()
			if err := a.assign(elem, y); err != nil {
				return err
			}
			out.SetMapIndex(key, elem)
		}
		v.Set(out)
		return nil
	case reflect.Slice:
		l, ok := x.([]any)
		if !ok {
			return assignError(x, t)
		}
		if v.CanAddr() {
			switch p := v.Addr().Interface().(type) {
			case *[]string:
				return scalarsInto(p, l)
			case *[]Ref:
				return scalarsInto(p, l)
			}
		}
		out := reflect.MakeSlice(t, len(l), len(l))
		for i, y := range l {
			if err := a.assign(out.Index(i), y); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	}
	return assignError(x, t)
}

// addrOf returns a pointer to v as an `any`, or nil if v is not addressable.
func addrOf(v reflect.Value) any {
	if !v.CanAddr() {
		return nil
	}
	return v.Addr().Interface()
}

// scalarText is a scalar as a string kind receives it.
func scalarText(x any) (string, error) {
	switch y := x.(type) {
	case nil:
		return "", nil
	case string:
		return y, nil
	case bool:
		return strconv.FormatBool(y), nil
	case float64:
		return strconv.FormatFloat(y, 'g', -1, 64), nil
	case time.Time:
		return y.Format("20060102T15:04:05Z07:00"), nil
	}
	return "", assignError(x, reflect.TypeFor[string]())
}

func scalarsInto[T ~string](p *[]T, l []any) error {
	out := make([]T, len(l))
	for i, y := range l {
		s, err := scalarText(y)
		if err != nil {
			return err
		}
		out[i] = T(s)
	}
	*p = out
	return nil
}
