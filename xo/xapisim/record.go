package xapisim

// The schema is generated from XAPI's datamodel JSON, _data/xenapi.json of
// github.com/xapi-project/xapi-project.github.io (read at commit
// b6706103bf3b3ed049e62d4d352a1cfe9f3e84b6); fetch it next to this file to
// regenerate.
//go:generate go run ./internal/schemagen -in xenapi.json -out schema.go

import (
	"maps"
	"slices"
	"time"
)

// Kind is the Go representation of a field's datamodel type in a Record.
type Kind uint8

// The kinds of field values, with the Go type a Record holds for each.
const (
	KindString       Kind = iota + 1 // string
	KindInt                          // int64
	KindFloat                        // float64
	KindBool                         // bool
	KindDateTime                     // time.Time
	KindEnum                         // string (canonical case)
	KindRef                          // string, OpaqueRef:NULL for none
	KindStringSet                    // []string (string, enum and ref sets)
	KindIntSet                       // []int64
	KindStringMap                    // map[string]string (values strings, refs or enums)
	KindIntMap                       // map[string]int64 (int keys as decimals)
	KindStringSetMap                 // map[string][]string
	KindRecord                       // Record (event snapshots)
)

// FieldSchema describes one public field of an XAPI class.
type FieldSchema struct {
	// Name is the wire name, e.g. "name_label".
	Name string
	// Type is the datamodel type as the appendix spells it, e.g. "VM ref set".
	Type string
	// Kind fixes the Go type of the value in a Record.
	Kind Kind
	// Qualifier is "RW", "RO/runtime" or "RO/constructor"; only RW fields
	// have implicit setters.
	Qualifier string
	// HasDefault reports whether the datamodel gives a default (so the
	// field may be omitted from a constructor record).
	HasDefault bool
	// Default is the default value, or the typed zero value when the
	// datamodel has none. Never modify it: NewRecord copies it.
	Default any
	// Enum names the enum type of an enum field, enum set, or map with
	// enum values ("" otherwise); Enum(name) lists its values.
	Enum string
}

// RW reports whether the field is settable through set_<field>.
func (f *FieldSchema) RW() bool { return f.Qualifier == "RW" }

// CtorArg is one field of a class's constructor record.
type CtorArg struct {
	Name     string
	Required bool
}

// MessageSchema describes one message (API call) of a class.
type MessageSchema struct {
	// Name is the message name without the class ("get_record").
	Name string
	// Params is the number of parameters after the session ref; Defaults
	// how many trailing ones are optional.
	Params, Defaults int
	// Session reports whether the first parameter is a session ref.
	Session bool
	// Implicit marks messages the datamodel generates (accessors, create,
	// destroy); Removed marks messages that answer MESSAGE_REMOVED.
	Implicit, Removed bool
	// Result is the datamodel type of the result ("void", "VM ref", ...).
	Result string
}

// ClassSchema describes one XAPI class: its public fields in datamodel
// order, its messages and, for classes with a constructor, the
// constructor's fields (RW and RO/constructor fields; those without a
// default are required).
type ClassSchema struct {
	Name        string
	Doc         string
	Fields      []FieldSchema
	Constructor []CtorArg
	Messages    []MessageSchema
}

// Message returns the message called name ("get_record").
func (c *ClassSchema) Message(name string) (*MessageSchema, bool) {
	for i := range c.Messages {
		if c.Messages[i].Name == name {
			return &c.Messages[i], true
		}
	}
	return nil, false
}

// Enum returns the values of the enum type called name, in datamodel
// (canonical) spelling.
func Enum(name string) []string { return slices.Clone(enumTable[name]) }

// Field returns the field called name.
func (c *ClassSchema) Field(name string) (*FieldSchema, bool) {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i], true
		}
	}
	return nil, false
}

// Stored reports whether objects of the class live in the database (and so
// have a valid_ref_counts entry): classes with a get_record message.
func (c *ClassSchema) Stored() bool {
	_, ok := c.Message("get_record")
	return ok
}

// Schema returns the schema of class (case-sensitive XAPI class name).
func Schema(class string) (*ClassSchema, bool) {
	for _, c := range schemaTable {
		if c.Name == class {
			return c, true
		}
	}
	return nil, false
}

// SchemaClasses returns the names of every class in the schema, in the
// appendix order.
func SchemaClasses() []string {
	names := make([]string, len(schemaTable))
	for i, c := range schemaTable {
		names[i] = c.Name
	}
	return names
}

// epoch is XAPI's "never" date, 19700101T00:00:00Z.
var epoch = time.Unix(0, 0).UTC()

// Epoch returns XAPI's "never" date, 19700101T00:00:00Z.
func Epoch() time.Time { return epoch }

// NewRecord returns a record of class with every public field set to its
// datamodel default, or to the typed zero value when there is none: "" for
// strings and enums, OpaqueRef:NULL for refs, 0, false, the epoch for
// datetimes, empty sets and maps. The caller owns the result. It panics if
// class is not in the schema, which is a programming error.
func NewRecord(class string) Record {
	c, ok := Schema(class)
	if !ok {
		panic("xapisim: NewRecord: unknown class " + class)
	}
	rec := make(Record, len(c.Fields))
	for i := range c.Fields {
		rec[c.Fields[i].Name] = cloneValue(c.Fields[i].Default)
	}
	return rec
}

// cloneValue deep-copies a Record value.
func cloneValue(v any) any {
	switch v := v.(type) {
	case []string:
		if v == nil {
			return []string{}
		}
		return slices.Clone(v)
	case []int64:
		if v == nil {
			return []int64{}
		}
		return slices.Clone(v)
	case map[string]string:
		if v == nil {
			return map[string]string{}
		}
		return maps.Clone(v)
	case map[string]int64:
		if v == nil {
			return map[string]int64{}
		}
		return maps.Clone(v)
	case map[string][]string:
		out := make(map[string][]string, len(v))
		for k, e := range v {
			out[k] = slices.Clone(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneValue(e)
		}
		return out
	case Record:
		return v.Clone()
	}
	return v
}

// Clone returns a deep copy of r.
func (r Record) Clone() Record {
	if r == nil {
		return nil
	}
	out := make(Record, len(r))
	for k, v := range r {
		out[k] = cloneValue(v)
	}
	return out
}
