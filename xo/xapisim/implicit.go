package xapisim

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// registerImplicit registers, for every class of the schema, the messages
// whose meaning is generic (§3.1): get_record, get_all, get_all_records,
// get_by_uuid, get_by_name_label, get_<field>, set_<field>,
// add_to_/remove_from_<map>, add_/remove_<set>, and the implicit create and
// destroy; removed messages answer MESSAGE_REMOVED. Which of them exist,
// and their parameter counts, come from the datamodel's message list.
// Class code overrides any of them with Register.
func (s *Simulator) registerImplicit() {
	for _, cs := range schemaTable {
		for i := range cs.Messages {
			ms := &cs.Messages[i]
			name := cs.Name + "." + ms.Name
			m := Method{Params: ms.Params, Defaults: ms.Defaults, NoSession: !ms.Session}
			if ms.Removed {
				m.Handler = func(*Call) (any, error) { return nil, NewFault("MESSAGE_REMOVED") }
				s.Register(name, m)
				continue
			}
			if ms.Name == "get_all_records" {
				// get_all_records_where is hidden from the datamodel's
				// documentation but exists wherever get_all_records does.
				s.Register(cs.Name+".get_all_records_where", Method{Params: 1, Handler: allRecordsWhere(cs.Name)})
			}
			if h := genericHandler(cs, ms); h != nil {
				m.Handler = h
				m.Async = ms.Name == "create" || ms.Name == "destroy"
				s.Register(name, m)
			}
		}
	}
}

// genericHandler returns the generic implementation of message ms of class
// cs, or nil if its meaning is class-specific.
func genericHandler(cs *ClassSchema, ms *MessageSchema) Handler {
	class := cs.Name
	switch ms.Name {
	case "get_record":
		return func(c *Call) (any, error) { return c.getRecord(class) }
	case "get_by_uuid":
		return func(c *Call) (any, error) {
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
		}
	case "get_all":
		return func(c *Call) (any, error) {
			var refs []string
			c.Sim.DB.Read(func(tx *Tx) { refs = tx.All(class) })
			return refs, nil
		}
	case "get_all_records":
		return func(c *Call) (any, error) {
			return liveRecords{db: c.Sim.DB, class: class}, nil
		}
	case "get_by_name_label":
		return func(c *Call) (any, error) {
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
		}
	case "create":
		if !ms.Implicit || cs.Constructor == nil {
			return nil
		}
		return func(c *Call) (any, error) { return c.genericCreate(cs) }
	case "destroy":
		if !ms.Implicit {
			return nil
		}
		return func(c *Call) (any, error) {
			ref, err := c.String(0)
			if err != nil {
				return nil, err
			}
			return nil, c.Sim.DB.Write(func(tx *Tx) error {
				if _, ok := tx.GetClass(class, ref); !ok {
					return HandleInvalid(class, ref)
				}
				tx.Delete(ref)
				return nil
			})
		}
	}
	for _, p := range []struct {
		prefix string
		kinds  []Kind // nil: any kind
		make   func(class string, f *FieldSchema) Handler
	}{
		{"get_", nil, getter},
		{"set_", nil, setter},
		{"add_to_", []Kind{KindStringMap}, mapAdder},
		{"remove_from_", []Kind{KindStringMap, KindIntMap, KindStringSetMap}, mapRemover},
		{"add_", []Kind{KindStringSet}, setAdder},
		{"remove_", []Kind{KindStringSet}, setRemover},
	} {
		field, ok := strings.CutPrefix(ms.Name, p.prefix)
		if !ok {
			continue
		}
		f, ok := cs.Field(field)
		if !ok || (p.kinds != nil && !slices.Contains(p.kinds, f.Kind)) {
			continue
		}
		return p.make(class, f)
	}
	return nil
}

// genericCreate creates an object from a constructor record: required
// fields must be present, optional ones default, others are ignored.
func (c *Call) genericCreate(cs *ClassSchema) (any, error) {
	args, err := c.Struct(0)
	if err != nil {
		return nil, err
	}
	rec := NewRecord(cs.Name)
	for _, a := range cs.Constructor {
		v, ok := args[a.Name]
		if !ok {
			if a.Required {
				return nil, NewFault("INTERNAL_ERROR", "Dispatcher_FieldNotFound(\""+a.Name+"\")")
			}
			continue
		}
		f, _ := cs.Field(a.Name)
		cv, err := (&Call{Method: c.Method, Args: []any{v}}).fieldArg(0, f)
		if err != nil {
			return nil, err
		}
		rec[a.Name] = cv
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		ref = tx.Create(cs.Name, rec)
		return nil
	})
	return ref, err
}

func getter(class string, f *FieldSchema) Handler {
	name := f.Name
	return func(c *Call) (any, error) {
		var v any
		if err := c.withRecord(class, func(rec Record) { v = cloneValue(rec[name]) }); err != nil {
			return nil, err
		}
		if v == nil {
			v = cloneValue(f.Default)
		}
		return v, nil
	}
}

func setter(class string, f *FieldSchema) Handler {
	return func(c *Call) (any, error) {
		v, err := c.fieldArg(1, f)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(class, func(rec Record) error {
			rec[f.Name] = v
			return nil
		})
	}
}

func mapAdder(class string, f *FieldSchema) Handler {
	return func(c *Call) (any, error) {
		ref, err := c.String(0)
		if err != nil {
			return nil, err
		}
		key, err := c.String(1)
		if err != nil {
			return nil, err
		}
		val, err := c.String(2)
		if err != nil {
			return nil, err
		}
		if f.Enum != "" {
			// (enum -> string) maps have enum keys, (string -> enum) maps enum values.
			if strings.HasPrefix(f.Type, "(enum ") {
				key, err = canonicalEnum(f, key)
			} else {
				val, err = canonicalEnum(f, val)
			}
			if err != nil {
				return nil, err
			}
		}
		return nil, c.modify(class, func(rec Record) error {
			m := stringMap(rec, f.Name)
			if _, dup := m[key]; dup {
				return NewFault("MAP_DUPLICATE_KEY", class, f.Name, ref, key)
			}
			m[key] = val
			return nil
		})
	}
}

func mapRemover(class string, f *FieldSchema) Handler {
	return func(c *Call) (any, error) {
		key, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(class, func(rec Record) error {
			switch m := rec[f.Name].(type) {
			case map[string]string:
				delete(m, key)
			case map[string]int64:
				delete(m, key)
			case map[string][]string:
				delete(m, key)
			}
			return nil
		})
	}
}

func setAdder(class string, f *FieldSchema) Handler {
	return func(c *Call) (any, error) {
		v, err := c.String(1)
		if err != nil {
			return nil, err
		}
		if f.Enum != "" {
			if v, err = canonicalEnum(f, v); err != nil {
				return nil, err
			}
		}
		return nil, c.modify(class, func(rec Record) error {
			set, _ := rec[f.Name].([]string)
			if !slices.Contains(set, v) {
				rec[f.Name] = append([]string{v}, set...)
			}
			return nil
		})
	}
}

func setRemover(class string, f *FieldSchema) Handler {
	return func(c *Call) (any, error) {
		v, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(class, func(rec Record) error {
			set, _ := rec[f.Name].([]string)
			rec[f.Name] = slices.DeleteFunc(slices.Clone(set), func(e string) bool { return strings.EqualFold(e, v) && (f.Enum != "" || e == v) })
			return nil
		})
	}
}

// liveRecords is the result of get_all_records: a ref → record map that
// the encoder reads straight from the registry under its read lock, rather
// than from a copy (10,000 VM records are ~90 MB of XML; copying them first
// doubled the time and the memory of the call). Simulator.Call turns it into
// a map of copies.
type liveRecords struct {
	db    *Registry
	class string
	match func(Record) bool // nil: every object
}

// each calls fn for every matching object, under the registry's read lock.
func (l liveRecords) each(fn func(ref string, rec Record)) {
	l.db.Read(func(tx *Tx) {
		for _, ref := range tx.All(l.class) {
			rec, _ := tx.GetClass(l.class, ref)
			if l.match == nil || l.match(rec) {
				fn(ref, rec)
			}
		}
	})
}

// materialize replaces live results by copies, for Go callers.
func materialize(v any) any {
	if l, ok := v.(liveRecords); ok {
		out := map[string]any{}
		l.each(func(ref string, rec Record) { out[ref] = rec.Clone() })
		return out
	}
	return v
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
		return canonicalEnum(f, v)
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
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []string{}
		}
		if f.Enum != "" {
			for j := range v {
				if v[j], err = canonicalEnum(f, v[j]); err != nil {
					return nil, err
				}
			}
		}
		return v, nil
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

// canonicalEnum returns v in the canonical case of f's enum type (XAPI
// accepts enums in any case), or INVALID_VALUE if it is not a value of it.
func canonicalEnum(f *FieldSchema, v string) (string, error) {
	values := enumTable[f.Enum]
	if values == nil {
		return v, nil
	}
	for _, e := range values {
		if strings.EqualFold(e, v) {
			return e, nil
		}
	}
	return "", NewFault("INVALID_VALUE", f.Name, v)
}
