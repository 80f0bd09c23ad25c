package xapisim

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// registerImplicit registers the implicit messages (§3.1) of every stored
// class of the schema: get_record, get_all, get_all_records, get_by_uuid,
// get_by_name_label, get_<field>, and for RW fields set_<field>,
// add_to_/remove_from_<map> and add_/remove_<set>. Class code overrides
// any of them with Register.
func (s *Simulator) registerImplicit() {
	for _, c := range schemaTable {
		if !c.Stored() {
			continue
		}
		class := c.Name
		fieldGetters := class != "message" // message has explicit messages only
		listable := class != sessionClass  // sessions are not listed
		s.Register(class+".get_record", Method{Params: 1, Handler: func(c *Call) (any, error) {
			return c.getRecord(class)
		}})
		s.Register(class+".get_by_uuid", Method{Params: 1, Handler: func(c *Call) (any, error) {
			uuid, err := c.String(0)
			if err != nil {
				return nil, err
			}
			var ref string
			c.Sim.DB.Read(func(tx *Tx) {
				if cl, r, ok := tx.ByUUID(uuid); ok && cl == class {
					ref = r
				}
			})
			if ref == "" {
				return nil, NewFault("UUID_INVALID", class, uuid)
			}
			return ref, nil
		}})
		if listable {
			s.Register(class+".get_all", Method{Handler: func(c *Call) (any, error) {
				var refs []string
				c.Sim.DB.Read(func(tx *Tx) { refs = tx.All(class) })
				return refs, nil
			}})
			s.Register(class+".get_all_records", Method{Handler: func(c *Call) (any, error) {
				out := map[string]any{}
				c.Sim.DB.Read(func(tx *Tx) {
					for _, ref := range tx.All(class) {
						rec, _ := tx.GetClass(class, ref)
						out[ref] = rec.Clone()
					}
				})
				return out, nil
			}})
		}
		if !fieldGetters {
			continue
		}
		if _, ok := c.Field("name_label"); ok {
			s.Register(class+".get_by_name_label", Method{Params: 1, Handler: func(c *Call) (any, error) {
				label, err := c.String(0)
				if err != nil {
					return nil, err
				}
				refs := []string{}
				c.Sim.DB.Read(func(tx *Tx) {
					for _, ref := range tx.All(class) {
						rec, _ := tx.GetClass(class, ref)
						if l, _ := rec["name_label"].(string); l == label {
							refs = append(refs, ref)
						}
					}
				})
				return refs, nil
			}})
		}
		for i := range c.Fields {
			f := &c.Fields[i]
			s.registerFieldMessages(class, f)
		}
	}
}

func (s *Simulator) registerFieldMessages(class string, f *FieldSchema) {
	name := f.Name
	s.Register(class+".get_"+name, Method{Params: 1, Handler: func(c *Call) (any, error) {
		var v any
		err := c.withRecord(class, func(rec Record) { v = cloneValue(rec[name]) })
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = cloneValue(f.Default)
		}
		return v, nil
	}})
	if !f.RW() {
		return
	}
	s.Register(class+".set_"+name, Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.fieldArg(1, f)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(class, func(rec Record) error {
			rec[name] = v
			return nil
		})
	}})
	switch f.Kind {
	case KindStringMap:
		s.Register(class+".add_to_"+name, Method{Params: 3, Handler: func(c *Call) (any, error) {
			key, err := c.String(1)
			if err != nil {
				return nil, err
			}
			val, err := c.String(2)
			if err != nil {
				return nil, err
			}
			ref, _ := c.String(0)
			return nil, c.modify(class, func(rec Record) error {
				m := stringMap(rec, name)
				if _, dup := m[key]; dup {
					return NewFault("MAP_DUPLICATE_KEY", class, name, ref, key)
				}
				m[key] = val
				return nil
			})
		}})
		s.Register(class+".remove_from_"+name, Method{Params: 2, Handler: func(c *Call) (any, error) {
			key, err := c.String(1)
			if err != nil {
				return nil, err
			}
			return nil, c.modify(class, func(rec Record) error {
				delete(stringMap(rec, name), key)
				return nil
			})
		}})
	case KindStringSet:
		s.Register(class+".add_"+name, Method{Params: 2, Handler: func(c *Call) (any, error) {
			v, err := c.String(1)
			if err != nil {
				return nil, err
			}
			return nil, c.modify(class, func(rec Record) error {
				set, _ := rec[name].([]string)
				if !slices.Contains(set, v) {
					rec[name] = append([]string{v}, set...)
				}
				return nil
			})
		}})
		s.Register(class+".remove_"+name, Method{Params: 2, Handler: func(c *Call) (any, error) {
			v, err := c.String(1)
			if err != nil {
				return nil, err
			}
			return nil, c.modify(class, func(rec Record) error {
				set, _ := rec[name].([]string)
				rec[name] = slices.DeleteFunc(slices.Clone(set), func(e string) bool { return e == v })
				return nil
			})
		}})
	}
}

// stringMap returns the live map field of rec, creating it if needed.
func stringMap(rec Record, field string) map[string]string {
	m, _ := rec[field].(map[string]string)
	if m == nil {
		m = map[string]string{}
		rec[field] = m
	}
	return m
}

// HandleInvalid returns the HANDLE_INVALID fault for ref of class.
func HandleInvalid(class, ref string) *Fault { return NewFault("HANDLE_INVALID", class, ref) }

// getRecord returns a copy of the record of the object of class given as
// the first argument.
func (c *Call) getRecord(class string) (Record, error) {
	var out Record
	err := c.withRecord(class, func(rec Record) { out = rec.Clone() })
	return out, err
}

// withRecord runs fn under a read transaction with the record of the object
// of class given as the first argument, or returns HANDLE_INVALID.
func (c *Call) withRecord(class string, fn func(Record)) error {
	ref, err := c.String(0)
	if err != nil {
		return err
	}
	found := false
	c.Sim.DB.Read(func(tx *Tx) {
		if rec, ok := tx.GetClass(class, ref); ok {
			found = true
			fn(rec)
		}
	})
	if !found {
		return HandleInvalid(class, ref)
	}
	return nil
}

// modify runs fn in a write transaction on the record of the object of
// class given as the first argument, or returns HANDLE_INVALID. fn's fault
// leaves the record unchanged only if fn changed nothing before failing.
func (c *Call) modify(class string, fn func(Record) error) error {
	ref, err := c.String(0)
	if err != nil {
		return err
	}
	return c.Sim.DB.Write(func(tx *Tx) error {
		if _, ok := tx.GetClass(class, ref); !ok {
			return HandleInvalid(class, ref)
		}
		// Check on a copy first so that a failing fn changes nothing and
		// emits no event.
		probe, _ := tx.GetClass(class, ref)
		trial := probe.Clone()
		if err := fn(trial); err != nil {
			return err
		}
		rec := tx.Modify(ref)
		for k := range rec {
			delete(rec, k)
		}
		maps.Copy(rec, trial)
		return nil
	})
}

// fieldArg converts the i-th argument to the Go type of field f.
func (c *Call) fieldArg(i int, f *FieldSchema) (any, error) {
	switch f.Kind {
	case KindString, KindRef:
		return c.String(i)
	case KindEnum:
		v, err := c.String(i)
		if err != nil {
			return nil, err
		}
		return canonicalEnum(f, v), nil
	case KindInt:
		return c.Int(i)
	case KindFloat:
		return c.Float(i)
	case KindBool:
		return c.Bool(i)
	case KindDateTime:
		t, err := c.Time(i)
		if err != nil {
			return nil, err
		}
		if t.IsZero() {
			t = time.Unix(0, 0).UTC()
		}
		return t, nil
	case KindStringSet:
		v, err := c.Strings(i)
		if v == nil {
			v = []string{}
		}
		return v, err
	case KindIntSet:
		raw, err := c.slice(i)
		if err != nil {
			return nil, err
		}
		out := make([]int64, 0, len(raw))
		for j := range raw {
			n, err := (&Call{Method: c.Method, Args: raw}).Int(j)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	case KindStringMap, KindIntMap, KindStringSetMap:
		m, err := c.Struct(i)
		if err != nil {
			return nil, err
		}
		return structToField(c.Method, f, m)
	}
	return nil, c.typeError(i, f.Type)
}

// slice returns the i-th argument as an array.
func (c *Call) slice(i int) ([]any, error) {
	if i >= len(c.Args) {
		return nil, nil
	}
	switch v := c.Args[i].(type) {
	case []any:
		return v, nil
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
	}
	return nil, c.typeError(i, "array")
}

// structToField converts a decoded struct to a map field's Go type.
func structToField(method string, f *FieldSchema, m map[string]any) (any, error) {
	keys := slices.Sorted(maps.Keys(m))
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	conv := &Call{Method: method, Args: vals}
	switch f.Kind {
	case KindStringMap:
		out := make(map[string]string, len(m))
		for i, k := range keys {
			v, err := conv.String(i)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case KindIntMap:
		out := make(map[string]int64, len(m))
		for i, k := range keys {
			v, err := conv.Int(i)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	default:
		out := make(map[string][]string, len(m))
		for i, k := range keys {
			v, err := conv.Strings(i)
			if err != nil {
				return nil, err
			}
			if v == nil {
				v = []string{}
			}
			out[k] = v
		}
		return out, nil
	}
}

// canonicalEnum returns v in the canonical case of f's default when they
// match case-insensitively (XAPI accepts enums in any case).
func canonicalEnum(f *FieldSchema, v string) string {
	if d, ok := f.Default.(string); ok && strings.EqualFold(d, v) {
		return d
	}
	return v
}
