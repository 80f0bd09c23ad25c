package xapisim

import (
	"fmt"
	"maps"
	"strconv"
	"time"
)

// classRegistrars register the explicit messages of each class (the
// behaviour beyond the generic implicit getters and setters). New calls
// them in order after the implicit messages, so an explicit create or
// destroy here replaces the generic one. The list is never modified.
var classRegistrars = []func(*Simulator){
	registerRelational,
	registerPool,
	registerHost,
	registerVM,
	registerVMResources,
	registerVMMigration,
	registerVDI,
	registerVBD,
	registerVIF,
	registerSR,
	registerNetwork,
	registerBond,
	registerMessage,
	registerPlugin,
	registerRRD,
	registerHostFiles,
	registerDataPlane, // last: wraps the VDI/VM copy and destroy calls (vdidata.go)
}

// registerRelational replaces the generic create and destroy of every class
// with a forward reference in relations by versions that keep the reverse
// sets consistent (PBD.create adds to SR.PBDs and host.PBDs, ...). Class
// files register richer versions afterwards where XAPI does more.
func registerRelational(s *Simulator) {
	done := map[string]bool{}
	for _, r := range relations {
		class := r.class
		if done[class] {
			continue
		}
		done[class] = true
		schema, _ := Schema(class)
		for _, ms := range schema.Messages {
			if !ms.Implicit || ms.Removed {
				continue
			}
			switch {
			case ms.Name == "create" && schema.Constructor != nil:
				s.Register(class+".create", Method{Params: 1, Async: true, Handler: func(c *Call) (any, error) {
					args, err := c.Struct(0)
					if err != nil {
						return nil, err
					}
					fields, err := constructorFields(c, class, args)
					if err != nil {
						return nil, err
					}
					var ref string
					err = c.Sim.DB.Write(func(tx *Tx) error {
						for _, rel := range relations {
							if t := str(fields, rel.field); rel.class == class && isRef(t) {
								if _, ok := tx.GetClass(rel.target, t); !ok {
									return NewFault("HANDLE_INVALID", rel.target, t)
								}
							}
						}
						ref = newObject(tx, class, fields)
						return nil
					})
					return ref, err
				}})
			case ms.Name == "destroy":
				s.Register(class+".destroy", Method{Params: 1, Async: true, Handler: func(c *Call) (any, error) {
					return nil, c.Sim.DB.Write(func(tx *Tx) error {
						ref, _, err := refArg(tx, c, 0, class)
						if err != nil {
							return err
						}
						deleteObject(tx, ref)
						return nil
					})
				}})
			}
		}
	}
	s.Register("PGPU.set_GPU_group", Method{Params: 2, Handler: func(c *Call) (any, error) {
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			pgpu, _, err := refArg(tx, c, 0, "PGPU")
			if err != nil {
				return err
			}
			group, _, err := refArg(tx, c, 1, "GPU_group")
			if err != nil {
				return err
			}
			setRef(tx, pgpu, "GPU_group", group)
			return nil
		})
	}})
}

// cloneStrMap returns a copy of a string map (never nil).
func cloneStrMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// constructorFields converts the record argument of <class>.create to a
// Record of schema-typed values, checking the constructor's required
// fields. Fields that are not constructor arguments are ignored, as XAPI
// does.
func constructorFields(c *Call, class string, args map[string]any) (Record, error) {
	schema, ok := Schema(class)
	if !ok {
		return nil, fmt.Errorf("xapisim: no schema for %s", class)
	}
	out := Record{}
	for _, arg := range schema.Constructor {
		v, present := args[arg.Name]
		if !present {
			if arg.Required {
				return nil, NewFault("INTERNAL_ERROR", "Dispatcher_FieldNotFound(\""+arg.Name+"\")")
			}
			continue
		}
		f, ok := schema.Field(arg.Name)
		if !ok {
			continue
		}
		cv, ok := wireToKind(f.Kind, v)
		if !ok {
			return nil, NewFault("INTERNAL_ERROR", fmt.Sprintf("%s.create: field %s: expected %s, got %v", class, arg.Name, f.Type, v))
		}
		out[arg.Name] = cv
	}
	return out, nil
}

// wireToKind converts a decoded wire value to the Go type of kind.
func wireToKind(kind Kind, v any) (any, bool) {
	switch kind {
	case KindString, KindEnum, KindRef:
		switch v := v.(type) {
		case string:
			return v, true
		case nil:
			return "", true
		}
	case KindInt:
		switch v := v.(type) {
		case int64:
			return v, true
		case float64:
			return int64(v), v == float64(int64(v))
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	case KindFloat:
		switch v := v.(type) {
		case float64:
			return v, true
		case int64:
			return float64(v), true
		case string:
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	case KindBool:
		switch v := v.(type) {
		case bool:
			return v, true
		case string:
			b, err := strconv.ParseBool(v)
			return b, err == nil
		}
	case KindDateTime:
		switch v := v.(type) {
		case time.Time:
			return v, true
		case string:
			return ParseTime(v)
		}
	case KindStringSet:
		switch v := v.(type) {
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				out = append(out, s)
			}
			return out, true
		case []string:
			return append([]string{}, v...), true
		case string, nil:
			if v == nil || v == "" {
				return []string{}, true
			}
		}
	case KindIntSet:
		if l, ok := v.([]any); ok {
			out := make([]int64, 0, len(l))
			for _, e := range l {
				n, ok := wireToKind(KindInt, e)
				if !ok {
					return nil, false
				}
				out = append(out, n.(int64))
			}
			return out, true
		}
		if v == nil || v == "" {
			return []int64{}, true
		}
	case KindStringMap:
		switch v := v.(type) {
		case map[string]any:
			out := make(map[string]string, len(v))
			for k, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				out[k] = s
			}
			return out, true
		case map[string]string:
			return maps.Clone(v), true
		case string, nil:
			if v == nil || v == "" {
				return map[string]string{}, true
			}
		}
	case KindIntMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]int64, len(m))
			for k, e := range m {
				n, ok := wireToKind(KindInt, e)
				if !ok {
					return nil, false
				}
				out[k] = n.(int64)
			}
			return out, true
		}
	}
	return nil, false
}

// refArg returns argument i as a ref to an existing object of class, or
// HANDLE_INVALID.
func refArg(tx *Tx, c *Call, i int, class string) (string, Record, error) {
	ref, err := c.String(i)
	if err != nil {
		return "", nil, err
	}
	rec, ok := tx.GetClass(class, ref)
	if !ok {
		return "", nil, NewFault("HANDLE_INVALID", class, ref)
	}
	return ref, rec, nil
}

// itoa64 formats n in decimal.
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
