package xapi

//go:generate go run ./internal/genrecords -in internal/genrecords/xapi-fields.md -out records_gen.go

import (
	"context"
)

// Record is implemented by the typed records of this package (VM, Host,
// …): Class returns the XAPI class name used in method names
// ("VM" for VM.get_all_records, "host" for host.get_record).
type Record interface {
	Class() string
}

// recordPtr constrains the type parameters of the generic record helpers:
// T is a record struct and *T is what gets decoded.
type recordPtr[T any] interface {
	*T
	Record
}

// GetAllRecords returns every record of T's class, decoded straight from
// the wire into *T (Class.get_all_records):
//
//	vms, err := xapi.GetAllRecords[xapi.VM](ctx, c)
//
// Any struct with `xapi` field tags and a Class method works as T.
func GetAllRecords[T any, P recordPtr[T]](ctx context.Context, c *Client) (map[Ref]*T, error) {
	var out map[Ref]*T
	class := P(new(T)).Class()
	if err := c.CallInto(ctx, &out, class+".get_all_records"); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRecord returns one record of T's class (Class.get_record). An unknown
// ref gives ErrHandleInvalid.
func GetRecord[T any, P recordPtr[T]](ctx context.Context, c *Client, ref Ref) (*T, error) {
	out := new(T)
	class := P(out).Class()
	if err := c.CallInto(ctx, out, class+".get_record", ref); err != nil {
		return nil, err
	}
	return out, nil
}

// GetAllRecords returns every record of class (e.g. "VM", "host") as
// generic maps, the shape the REST layer turns into XO objects. Values are
// as on the wire: ints, refs and enums are strings, sets are []any, maps
// are map[string]any, booleans bool, floats float64, datetimes time.Time.
// Field names and short repeated values are shared between records.
func (c *Client) GetAllRecords(ctx context.Context, class string) (map[Ref]map[string]any, error) {
	var out map[Ref]map[string]any
	if err := c.CallInto(ctx, &out, class+".get_all_records"); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRecord returns one record of class as a generic map (see
// GetAllRecords for the value types).
func (c *Client) GetRecord(ctx context.Context, class string, ref Ref) (map[string]any, error) {
	var out map[string]any
	if err := c.CallInto(ctx, &out, class+".get_record", ref); err != nil {
		return nil, err
	}
	return out, nil
}
