package xapi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Exact response bytes as XAPI emits them (xapi.md §1.3, §1.4).
const (
	respLogin       = `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:3c5f7b0e-0d3a-4b8e-9d6a-1a2b3c4d5e6f</value></member></struct></value></param></params></methodResponse>`
	respFailure     = `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>HANDLE_INVALID</value><value>VM</value><value>OpaqueRef:bad</value></data></array></value></member></struct></value></param></params></methodResponse>`
	respListMethods = `<?xml version="1.0"?><methodResponse><params><param><value><array><data><value>VM.get_all_records</value><value>host.get_all_records</value></data></array></value></param></params></methodResponse>`
	respVoid        = `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value></value></member></struct></value></param></params></methodResponse>`
	respRecord      = `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct>` +
		`<member><name>uuid</name><value>9b1f2c3d-0000-4000-8000-000000000001</value></member>` +
		`<member><name>name_label</name><value>a &amp; b &lt;c&gt; &quot;d&quot; &#233;</value></member>` +
		`<member><name>name_description</name><value/></member>` +
		`<member><name>power_state</name><value>Halted</value></member>` +
		`<member><name>memory_static_max</name><value>4294967296</value></member>` +
		`<member><name>VCPUs_max</name><value>2</value></member>` +
		`<member><name>domid</name><value>-1</value></member>` +
		`<member><name>is_a_template</name><value><boolean>0</boolean></value></member>` +
		`<member><name>is_control_domain</name><value><boolean>1</boolean></value></member>` +
		`<member><name>snapshot_time</name><value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value></member>` +
		`<member><name>VBDs</name><value><array><data><value>OpaqueRef:vbd1</value><value>OpaqueRef:vbd2</value></data></array></value></member>` +
		`<member><name>VIFs</name><value><array><data></data></array></value></member>` +
		`<member><name>other_config</name><value><struct><member><name>mac_seed</name><value>abc</value></member><member><name>empty</name><value></value></member></struct></value></member>` +
		`<member><name>blocked_operations</name><value><struct></struct></value></member>` +
		`<member><name>suspend_VDI</name><value>OpaqueRef:NULL</value></member>` +
		`<member><name>progress</name><value><double>0.25</double></value></member>` +
		`</struct></value></member></struct></value></param></params></methodResponse>`
)

func TestDecodeResponseAny(t *testing.T) {
	ts := time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr error
	}{
		{name: "login", in: respLogin, want: "OpaqueRef:3c5f7b0e-0d3a-4b8e-9d6a-1a2b3c4d5e6f"},
		{name: "void", in: respVoid, want: ""},
		{name: "failure", in: respFailure, wantErr: &Error{Code: "HANDLE_INVALID", Params: []string{"VM", "OpaqueRef:bad"}}},
		{name: "bare listMethods", in: respListMethods, want: []any{"VM.get_all_records", "host.get_all_records"}},
		{name: "record", in: respRecord, want: map[string]any{
			"uuid":               "9b1f2c3d-0000-4000-8000-000000000001",
			"name_label":         `a & b <c> "d" é`,
			"name_description":   "",
			"power_state":        "Halted",
			"memory_static_max":  "4294967296",
			"VCPUs_max":          "2",
			"domid":              "-1",
			"is_a_template":      false,
			"is_control_domain":  true,
			"snapshot_time":      ts,
			"VBDs":               []any{"OpaqueRef:vbd1", "OpaqueRef:vbd2"},
			"VIFs":               []any{},
			"other_config":       map[string]any{"mac_seed": "abc", "empty": ""},
			"blocked_operations": map[string]any{},
			"suspend_VDI":        "OpaqueRef:NULL",
			"progress":           0.25,
		}},
		{name: "whitespace kept in untyped strings", in: wrapValue(`<value>  two  words
</value>`), want: "  two  words\n"},
		{name: "pretty printed", in: "<?xml version=\"1.0\"?>\n<methodResponse>\n <params>\n  <param>\n   <value>\n    <struct>\n     <member>\n      <name>Status</name>\n      <value>Success</value>\n     </member>\n     <member>\n      <name>Value</name>\n      <value>\n       <array>\n        <data>\n         <value><i4>7</i4></value>\n         <value><string>s</string></value>\n         <value><nil/></value>\n        </data>\n       </array>\n      </value>\n     </member>\n    </struct>\n   </value>\n  </param>\n </params>\n</methodResponse>\n",
			want: []any{int64(7), "s", nil}},
		{name: "typed scalars", in: wrapValue(`<value><array><data><value><int>-3</int></value><value><i8>9007199254740993</i8></value><value><double>nan</double></value><value><boolean>true</boolean></value><value><base64>aGk=</base64></value><value><string/></value><value/></data></array></value>`),
			want: []any{int64(-3), int64(9007199254740993), "NaN", true, "aGk=", "", ""}},
		{name: "dates", in: wrapValue(`<value><array><data><value><dateTime.iso8601>20250319T04:16:24</dateTime.iso8601></value><value><dateTime.iso8601>2025-03-19T04:16:24Z</dateTime.iso8601></value><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></data></array></value>`),
			want: []any{ts, ts, time.Unix(0, 0).UTC()}},
		{name: "cdata comment crlf", in: wrapValue("<value>a<!-- c --><![CDATA[<b>]]>\r\nc</value>"), want: "a<b>\nc"},
		{name: "fault", in: `<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>Too many parameters.</string></value></member></struct></value></fault></methodResponse>`,
			wantErr: &Error{Code: "XMLRPC_FAULT", Params: []string{"4", "Too many parameters."}}},
		{name: "truncated", in: respRecord[:len(respRecord)/2], wantErr: ErrInvalidResponse},
		{name: "html error page", in: "<html><body>Internal Error</body></html>", wantErr: ErrInvalidResponse},
		{name: "bad entity", in: wrapValue(`<value>&bogus;</value>`), wantErr: ErrInvalidResponse},
		{name: "bad int", in: wrapValue(`<value><int>12x</int></value>`), wantErr: ErrInvalidResponse},
		{name: "trailing garbage", in: respVoid + "<x/>", wantErr: ErrInvalidResponse},
		{name: "unknown type", in: wrapValue(`<value><float>1</float></value>`), wantErr: ErrInvalidResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				wrap func(string) *strings.Reader
			}{{"whole", strings.NewReader}} {
				got, err := DecodeResponse(r.wrap(tc.in), nil)
				checkDecoded(t, got, err, tc.want, tc.wantErr)
			}
			// one byte at a time exercises every buffer refill boundary
			got, err := DecodeResponse(iotest.OneByteReader(strings.NewReader(tc.in)), nil)
			checkDecoded(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkDecoded(t *testing.T, got any, err error, want any, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("err = %v, want %v", err, wantErr)
		}
		var xe *Error
		if we, ok := wantErr.(*Error); ok && errors.As(err, &xe) && !reflect.DeepEqual(xe.Params, we.Params) {
			t.Fatalf("params = %q, want %q", xe.Params, we.Params)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if f, ok := got.([]any); ok && len(f) > 2 {
		if x, ok := f[2].(float64); ok && x != x { // NaN never equals itself
			f[2] = "NaN"
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

// wrapValue puts a <value> in XAPI's Success wrapper.
func wrapValue(v string) string {
	return `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>` + v + `</member></struct></value></param></params></methodResponse>`
}

func TestDecodeResponseTyped(t *testing.T) {
	type vm struct {
		UUID             string            `xapi:"uuid"`
		NameLabel        string            `xapi:"name_label"`
		NameDescription  string            `xapi:"name_description"`
		PowerState       string            `xapi:"power_state"`
		MemoryStaticMax  int64             `xapi:"memory_static_max"`
		VCPUsMax         int64             `xapi:"VCPUs_max"`
		Domid            int64             `xapi:"domid"`
		IsATemplate      bool              `xapi:"is_a_template"`
		IsControlDomain  bool              `xapi:"is_control_domain"`
		SnapshotTime     time.Time         `xapi:"snapshot_time"`
		VBDs             []Ref             `xapi:"VBDs"`
		VIFs             []Ref             `xapi:"VIFs"`
		OtherConfig      map[string]string `xapi:"other_config"`
		BlockedOps       map[string]string `xapi:"blocked_operations"`
		SuspendVDI       Ref               `xapi:"suspend_VDI"`
		Progress         float64           `xapi:"progress"`
		NotSentByServer  string            `xapi:"absent"`
		unexportedIgnore string            //lint:ignore U1000 present to check that the decoder skips unexported fields
	}
	var got vm
	if _, err := DecodeResponse(strings.NewReader(respRecord), &got); err != nil {
		t.Fatal(err)
	}
	want := vm{
		UUID: "9b1f2c3d-0000-4000-8000-000000000001", NameLabel: `a & b <c> "d" é`, PowerState: "Halted",
		MemoryStaticMax: 4294967296, VCPUsMax: 2, Domid: -1, IsControlDomain: true,
		SnapshotTime: time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC),
		VBDs:         []Ref{"OpaqueRef:vbd1", "OpaqueRef:vbd2"}, VIFs: []Ref{},
		OtherConfig: map[string]string{"mac_seed": "abc", "empty": ""}, BlockedOps: map[string]string{},
		SuspendVDI: NullRef, Progress: 0.25,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	t.Run("records map", func(t *testing.T) {
		in := wrapValue(`<value><struct><member><name>OpaqueRef:a</name><value><struct><member><name>uuid</name><value>u1</value></member></struct></value></member><member><name>OpaqueRef:b</name><value><struct><member><name>uuid</name><value>u2</value></member></struct></value></member></struct></value>`)
		var m map[Ref]map[string]any
		if _, err := DecodeResponse(strings.NewReader(in), &m); err != nil {
			t.Fatal(err)
		}
		want := map[Ref]map[string]any{"OpaqueRef:a": {"uuid": "u1"}, "OpaqueRef:b": {"uuid": "u2"}}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("got %#v", m)
		}
	})
	t.Run("int keyed map", func(t *testing.T) {
		in := wrapValue(`<value><struct><member><name>0</name><value>12</value></member><member><name>3</name><value>-1</value></member></struct></value>`)
		var m map[int64]int64
		if _, err := DecodeResponse(strings.NewReader(in), &m); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, map[int64]int64{0: 12, 3: -1}) {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("type mismatch", func(t *testing.T) {
		var n int64
		_, err := DecodeResponse(strings.NewReader(wrapValue(`<value><array><data></data></array></value>`)), &n)
		if !errors.Is(err, ErrInvalidResponse) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("failure wins over target", func(t *testing.T) {
		var n int64
		_, err := DecodeResponse(strings.NewReader(respFailure), &n)
		if !errors.Is(err, ErrHandleInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{name: "ref", in: `<value>OpaqueRef:1</value>`, want: "OpaqueRef:1"},
		{name: "void", in: `<value></value>`, want: ""},
		{name: "xs65 empty result", in: ``, want: ""},
		{name: "ref set", in: `<value><array><data><value>OpaqueRef:1</value></data></array></value>`, want: []any{"OpaqueRef:1"}},
		{name: "escaped text", in: `<value>a&lt;b</value>`, want: "a<b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeValue(tc.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	var refs []Ref
	if _, err := DecodeValue(`<value><array><data><value>OpaqueRef:1</value></data></array></value>`, &refs); err != nil || !reflect.DeepEqual(refs, []Ref{"OpaqueRef:1"}) {
		t.Fatalf("typed: %v %v", refs, err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"20250319T04:16:24Z", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC), true},
		{"20250319T04:16:24", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC), true},
		{"2025-03-19T04:16:24Z", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC), true},
		{"20250319T06:16:24+02:00", time.Date(2025, 3, 19, 4, 16, 24, 0, time.UTC), true},
		{"20250230T04:16:24Z", time.Time{}, false},
		{"never", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTime([]byte(tc.in))
			if (err == nil) != tc.ok || tc.ok && !got.Equal(tc.want) {
				t.Fatalf("parseTime(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}
