package xapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

const (
	jsonLogin   = `{"jsonrpc":"2.0","result":"OpaqueRef:1d6c9d33-8a2b-4e7c-9d7e-1a2b3c4d5e6f","id":0}`
	jsonFailure = `{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:abc"]},"id":0}`
	jsonV1Fail  = `{"result":null,"error":["HANDLE_INVALID","VM","OpaqueRef:x"],"id":7}`
	jsonV1OK    = `{"result":["a","b"],"error":null,"id":7}`
	jsonVoid    = `{"jsonrpc":"2.0","result":"","id":0}`
	jsonRecords = `{"jsonrpc":"2.0","result":{"OpaqueRef:1":{"uuid":"u1","name_label":"vm \"1\"\n","VCPUs_max":4,` +
		`"memory_static_max":17179869184,"is_a_template":false,"tags":["x","\u00e9"],"other_config":{"k":"v"},` +
		`"snapshot_time":"20250319T04:16:24Z","HVM_shadow_multiplier":1.5,"affinity":"OpaqueRef:NULL","nothing":null},` +
		`"OpaqueRef:2":{"uuid":"u2","name_label":"","VCPUs_max":1,"memory_static_max":0,"is_a_template":true,"tags":[],` +
		`"other_config":{},"snapshot_time":"19700101T00:00:00Z","HVM_shadow_multiplier":1,"affinity":""}},"id":0}`
)

func TestDecodeJSONResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr error
		params  []string
	}{
		{name: "v2 result", in: jsonLogin, want: "OpaqueRef:1d6c9d33-8a2b-4e7c-9d7e-1a2b3c4d5e6f"},
		{name: "v2 void", in: jsonVoid, want: ""},
		{name: "v1 result", in: jsonV1OK, want: []any{"a", "b"}},
		{name: "v2 error", in: jsonFailure, wantErr: ErrSessionInvalid, params: []string{"OpaqueRef:abc"}},
		{name: "v1 error array", in: jsonV1Fail, wantErr: ErrHandleInvalid, params: []string{"VM", "OpaqueRef:x"}},
		{name: "error after result", in: `{"result":null,"error":["EVENTS_LOST"]}`, wantErr: ErrEventsLost, params: []string{}},
		{name: "ints as decimal text, floats as float64", in: `{"result":[0,-12,12345678901234567890,1.5,2e3,true,false,null]}`,
			want: []any{"0", "-12", "12345678901234567890", 1.5, 2000.0, true, false, nil}},
		{name: "escapes", in: `{"result":"a\"\\\/\b\f\n\r\t\u0041\ud83d\ude00\ud800"}`, want: "a\"\\/\b\f\n\r\tA\U0001F600\uFFFD"},
		{name: "whitespace", in: " \n{ \"result\" : { \"a\" : [ 1 , \"x\" ] } }\r\n", want: map[string]any{"a": []any{"1", "x"}}},
		{name: "no result", in: `{"id":0}`, wantErr: ErrInvalidResponse},
		{name: "not an object", in: `[1]`, wantErr: ErrInvalidResponse},
		{name: "truncated", in: `{"result":{"a":`, wantErr: ErrInvalidResponse},
		{name: "trailing data", in: `{"result":1}x`, wantErr: ErrInvalidResponse},
		{name: "bad number", in: `{"result":01}`, wantErr: ErrInvalidResponse},
		{name: "bad literal", in: `{"result":tru}`, wantErr: ErrInvalidResponse},
		{name: "control character", in: "{\"result\":\"a\x01\"}", wantErr: ErrInvalidResponse},
		{name: "html", in: `<html>login</html>`, wantErr: ErrInvalidResponse},
		{name: "empty", in: ``, wantErr: ErrInvalidResponse},
		{name: "too deep", in: `{"result":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, wantErr: ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSONResponse(strings.NewReader(tt.in), nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var xe *Error
				if tt.params != nil && (!errors.As(err, &xe) || strings.Join(xe.Params, "|") != strings.Join(tt.params, "|")) {
					t.Fatalf("params of %v, want %q", err, tt.params)
				}
				return
			}
			if err != nil || !equalDecoded(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeJSONResponseTyped(t *testing.T) {
	var vms map[Ref]*VM
	if _, err := DecodeJSONResponse(strings.NewReader(jsonRecords), &vms); err != nil {
		t.Fatal(err)
	}
	vm := vms["OpaqueRef:1"]
	if vm == nil || vm.UUID != "u1" || vm.NameLabel != "vm \"1\"\n" || vm.VCPUsMax != 4 || vm.MemoryStaticMax != 17179869184 ||
		vm.IsATemplate || len(vm.Tags) != 2 || vm.Tags[1] != "é" || vm.OtherConfig["k"] != "v" ||
		!vm.SnapshotTime.Equal(time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)) || vm.HVMShadowMultiplier != 1.5 || vm.Affinity != "OpaqueRef:NULL" {
		t.Fatalf("VM 1 = %+v", vm)
	}
	vm2 := vms["OpaqueRef:2"]
	if vm2 == nil || !vm2.IsATemplate || vm2.Tags == nil || len(vm2.Tags) != 0 || vm2.HVMShadowMultiplier != 1 || !vm2.Affinity.IsNull() {
		t.Fatalf("VM 2 = %+v", vm2)
	}

	// the generic records map, and the same values as XML-RPC after the
	// schema conversions
	var generic map[Ref]map[string]any
	if _, err := DecodeJSONResponse(strings.NewReader(jsonRecords), &generic); err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{}
	for k, v := range generic {
		raw[string(k)] = v
	}
	newSchema().result("VM.get_all_records", raw)
	g := generic["OpaqueRef:1"]
	if g["VCPUs_max"] != "4" || g["HVM_shadow_multiplier"] != 1.5 || g["snapshot_time"] != time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC) {
		t.Fatalf("generic VM 1 = %#v", g)
	}
	if g2 := generic["OpaqueRef:2"]; g2["HVM_shadow_multiplier"] != 1.0 || g2["memory_static_max"] != "0" {
		t.Fatalf("generic VM 2 = %#v", g2)
	}

	// type mismatches are errors, not panics
	for _, in := range []string{`{"result":{"OpaqueRef:1":{"VCPUs_max":"x"}}}`, `{"result":{"OpaqueRef:1":{"tags":{}}}}`,
		`{"result":{"OpaqueRef:1":{"VCPUs_max":1.5}}}`, `{"result":[1]}`, `{"result":{"OpaqueRef:1":"x"}}`} {
		var m map[Ref]*VM
		if _, err := DecodeJSONResponse(strings.NewReader(in), &m); !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("%s: err = %v", in, err)
		}
	}
	if _, err := DecodeJSONResponse(strings.NewReader(`{"result":{"OpaqueRef:1":"x"}}`), &generic); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("generic records accepted a string record: %v", err)
	}
}

// FuzzDecodeJSONResponse checks that the JSON decoder never panics (also
// when decoding into typed records) and that reading one byte at a time
// gives the same result as reading the whole body, so buffer refills
// cannot change a value.
func FuzzDecodeJSONResponse(f *testing.F) {
	for _, s := range []string{jsonLogin, jsonFailure, jsonV1Fail, jsonV1OK, jsonVoid, jsonRecords,
		`{"result":[0,-1.5e-3,"\ud83d\ude00",{"a":null}]}`, `{"result":{"OpaqueRef:1":{"uuid":1.50e3,"tags":[1e1,true]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := DecodeJSONResponse(bytes.NewReader(in), nil)
		got1, err1 := DecodeJSONResponse(iotest.OneByteReader(bytes.NewReader(in)), nil)
		if (err == nil) != (err1 == nil) || err == nil && !equalDecoded(got, got1) {
			t.Fatalf("chunking changed the result:\nwhole: %#v, %v\nbytes: %#v, %v", got, err, got1, err1)
		}
		// streaming typed decoding agrees with the generic form converted
		// by the assigner whenever both accept the input
		var vms, vmsA map[Ref]*VM
		_, errT := DecodeJSONResponse(bytes.NewReader(in), &vms)
		errA := error(nil)
		if err == nil {
			errA = assignOut(&vmsA, got)
		}
		if err == nil && errT == nil && errA == nil && !reflect.DeepEqual(vms, vmsA) {
			t.Fatalf("typed decoders differ:\nstream %#v\nassign %#v", vms, vmsA)
		}
		var batch EventBatch
		_, _ = DecodeJSONResponse(bytes.NewReader(in), &batch)
		var generic map[Ref]map[string]any
		_, _ = DecodeJSONResponse(bytes.NewReader(in), &generic)
		if err == nil {
			newSchema().result("VM.get_all_records", got)
			newSchema().result("event.from", got)
		}
		checkResultFor(t, in)
	})
}

// checkResultFor checks that decodeJSONResultFor, which converts records
// while decoding them, gives what decoding then converting gives.
func checkResultFor(t *testing.T, in []byte) {
	t.Helper()
	sc := newSchema()
	for _, method := range []string{"VM.get_all_records", "host.get_all_records_where", "SR.get_all_records", "VM.get_record", "event.from", "pool.get_all_records"} {
		want, errW := decodeJSONResult(bytes.NewReader(in))
		if errW == nil {
			want = sc.result(method, want)
		}
		got, err := decodeJSONResultFor(bytes.NewReader(in), sc, method)
		if (err == nil) != (errW == nil) || err == nil && !equalDecoded(got, want) {
			t.Fatalf("%s: decodeJSONResultFor differs:\ngot  %#v, %v\nwant %#v, %v", method, got, err, want, errW)
		}
	}
}

// DecodeJSONRecords decodes a JSON-RPC response of method as the Client's
// generic calls do: decoding then converting with the schema, or (inline)
// converting while decoding. For the benchmarks of package xapi_test.
func DecodeJSONRecords(r io.Reader, method string, inline bool) (any, error) {
	if inline {
		return decodeJSONResultFor(r, newSchema(), method)
	}
	v, err := decodeJSONResult(r)
	if err != nil {
		return nil, err
	}
	return newSchema().result(method, v), nil
}

func TestDecodeJSONResultFor(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "records", in: jsonRecords},
		{name: "repeated datetimes", in: `{"result":{"OpaqueRef:1":{"snapshot_time":"20250319T04:16:24Z","HVM_shadow_multiplier":"1.5"},` +
			`"OpaqueRef:2":{"snapshot_time":"20250319T04:16:24Z","HVM_shadow_multiplier":"1.5"},` +
			`"OpaqueRef:3":{"HVM_shadow_multiplier":"1.5","snapshot_time":"20250319T04:16:24Z"},` +
			`"OpaqueRef:4":{"snapshot_time":"bad","HVM_shadow_multiplier":2,"x":{"snapshot_time":"20250319T04:16:24Z"}}}}`},
		{name: "records keyed by names", in: `{"result":{"a":{"snapshot_time":"20250319T04:16:24Z"},"b":[{"snapshot_time":"20250319T04:16:24Z"}],"c":"x"}}`},
		{name: "array result", in: `{"result":[{"snapshot_time":"20250319T04:16:24Z"}]}`},
		{name: "error", in: `{"result":{"a":{"snapshot_time":"20250319T04:16:24Z"}},"error":{"message":"X","data":{"snapshot_time":"20250319T04:16:24Z"}}}`},
		{name: "duplicate members", in: `{"result":{"a":{"snapshot_time":"20250319T04:16:24Z","snapshot_time":"x"}},"result":{"b":{"snapshot_time":"x","snapshot_time":"20250319T04:16:24Z"}}}`},
		{name: "escaped names", in: `{"result":{"a":{"snapshot\u005ftime":"20250319T04:16:24Z"},"b":{"snapshot_time":"20250319T04:16:24Z"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkResultFor(t, []byte(tt.in)) })
	}
	// the conversion happened
	v, err := decodeJSONResultFor(strings.NewReader(jsonRecords), newSchema(), "VM.get_all_records")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(map[string]any)["OpaqueRef:1"].(map[string]any)["snapshot_time"].(time.Time); !ok {
		t.Errorf("snapshot_time not converted: %#v", v)
	}
}

// FuzzJSONAgainstEncodingJSON is a differential test of the generic form
// against encoding/json (with UseNumber), the reference: a value wrapped
// as a response's result must be accepted by both or by neither, and
// decode to the same value, modulo the documented mapping (integer
// literals as their text, other numbers as float64). Known differences:
// this decoder limits nesting to 256 levels and rejects numbers that do
// not fit a float64.
func FuzzJSONAgainstEncodingJSON(f *testing.F) {
	for _, s := range []string{`"x"`, `0`, `-0.5e10`, `[1,"2",true,null,{}]`, `{"a":{"b":[[]]},"a":1}`,
		`"\u00e9\ud800\udc00\ud800x"`, "\"\xff\xfe\"", `{"OpaqueRef:1":{"k":"v"}}`, `1e400`, ` [ ] `, `"a\u0000"`,
		`[{"a":"x","b":12},{"a":"x","b":123},{"a":"x" ,"b":12e1}]`, `[{"a":"x"},{"a":"x\"},{"a\u0041":1}]`,
		`{"OpaqueRef:1":{"k":"v","n":1},"OpaqueRef:2":{"k":"v","n":1},"OpaqueRef:3":{"n":1,"k":"v"}}`,
		`[{"a":["x","y"]},{"a":["x","y","z"]},{"a":[1,"x"]},{"a":[["x"],"x",12]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		doc := append(append([]byte(`{"jsonrpc":"2.0","result":`), in...), `,"id":0}`...)
		got, err := DecodeJSONResponse(bytes.NewReader(doc), nil)

		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var ref map[string]any
		refErr := dec.Decode(&ref)
		if refErr == nil && !json.Valid(doc) { // json.Decoder stops after one value
			refErr = errors.New("data after the document")
		}
		var want any
		if refErr == nil {
			want, refErr = fromReference(ref["result"])
		}
		if refErr == nil {
			if e, ok := ref["error"]; ok && e != nil {
				if !errors.As(err, new(*Error)) {
					t.Fatalf("reference has error %v, got %#v, %v", e, got, err)
				}
				return
			}
			if _, ok := ref["result"]; !ok {
				refErr = errors.New("no result")
			}
		}
		switch {
		case err != nil && strings.Contains(err.Error(), "nested too deeply"):
			return
		case (err == nil) != (refErr == nil):
			t.Fatalf("accepted differently: ours %#v, %v; encoding/json %#v, %v", got, err, want, refErr)
		case err == nil && !equalDecoded(got, want):
			t.Fatalf("values differ:\nours          %#v\nencoding/json %#v", got, want)
		}
	})
}

// TestJSONShapes checks the member predictions of repeated objects
// (jsondecode.go, shape): a prediction that almost matches must never be
// taken, so each case decodes like encoding/json does.
func TestJSONShapes(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "same records", in: `[{"a":"x","b":12,"c":true},{"a":"x","b":12,"c":false}]`},
		{name: "longer number", in: `[{"b":12},{"b":123},{"b":12.5},{"b":12e1},{"b":-12},{"b":12}]`},
		{name: "number then string", in: `[{"b":12},{"b":"12"},{"b":12},{"b":"12x"}]`},
		{name: "prefix string", in: `[{"a":"ab"},{"a":"a"},{"a":"abc"},{"a":"ab\"c"},{"a":"ab"}]`},
		{name: "escaped twin", in: `[{"a":"x"},{"a":"\u0078"},{"\u0061":"y"},{"a":"\u00e9"},{"a":"\u00e9"}]`},
		{name: "prefix name", in: `[{"ab":1,"c":2},{"a":1,"c":2},{"abc":1,"c":2},{"c":2,"ab":1}]`},
		{name: "fewer and more members", in: `[{"a":1,"b":2,"c":3},{"a":1},{},{"a":1,"b":2,"c":3,"d":4}]`},
		{name: "duplicate members", in: `[{"a":1,"a":2},{"a":1,"a":2},{"a":2,"a":1}]`},
		{name: "value becomes object", in: `[{"a":"x"},{"a":{"a":"x"}},{"a":["x"]},{"a":null},{"a":"x"}]`},
		{name: "nested same name", in: `{"a":{"a":{"a":"x","b":1},"b":1},"b":{"a":"x","b":2}}`},
		{name: "spaces", in: "[{\"a\" : \"x\" , \"b\" : 1 },{\"a\":\"x\",\"b\":1\n},{\"a\":\"x\"\t,\"b\":1}]"},
		{name: "records map", in: `{"OpaqueRef:1":{"k":"v","n":1},"OpaqueRef:2":{"k":"v","n":1},"OpaqueRef:3":{"k":"w","n":10}}`},
		{name: "empty strings", in: `[{"a":""},{"a":""},{"a":"\""},{"a":""}]`},
		{name: "arrays", in: `[{"a":["x","y"]},{"a":["x","y","z"]},{"a":["x"]},{"a":[1,"x"]},{"a":[["x"],"x",12]},{"a":["x",123,[]]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"jsonrpc":"2.0","result":` + tt.in + `,"id":0}`
			dec := json.NewDecoder(strings.NewReader(tt.in))
			dec.UseNumber()
			var ref any
			if err := dec.Decode(&ref); err != nil {
				t.Fatal(err)
			}
			want, err := fromReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(doc)}, {"bytes", iotest.OneByteReader(strings.NewReader(doc))}} {
				got, err := DecodeJSONResponse(r.r, nil)
				if err != nil {
					t.Fatalf("%s: %v", r.name, err)
				}
				if !equalDecoded(got, want) {
					t.Errorf("%s:\ngot  %#v\nwant %#v", r.name, got, want)
				}
			}
		})
	}
}

// fromReference maps encoding/json's UseNumber form to this package's
// generic JSON form.
func fromReference(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			return string(x), nil
		}
		return x.Float64()
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			z, err := fromReference(y)
			if err != nil {
				return nil, err
			}
			out[i] = z
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			z, err := fromReference(y)
			if err != nil {
				return nil, err
			}
			out[k] = z
		}
		return out, nil
	}
	return v, nil
}
