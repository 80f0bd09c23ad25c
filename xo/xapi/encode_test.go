package xapi

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeCall(t *testing.T) {
	type vdiCreate struct {
		SR          Ref               `xapi:"SR"`
		VirtualSize int64             `xapi:"virtual_size"`
		Sharable    bool              `xapi:"sharable"`
		Tags        []string          `xapi:"tags,omitempty"`
		OtherConfig map[string]string `xapi:"other_config"`
	}
	tests := []struct {
		name   string
		method string
		args   []any
		want   []string // substrings, in order
	}{
		{name: "no args still has params", method: "system.listMethods",
			want: []string{`<methodName>system.listMethods</methodName><params></params>`}},
		{name: "ints as decimal strings", method: "VM.set_VCPUs_max", args: []any{"OpaqueRef:s", Ref("OpaqueRef:v"), int64(4), uint32(7), -2},
			want: []string{`<param><value><string>OpaqueRef:s</string></value></param>`, `<string>OpaqueRef:v</string>`, `<string>4</string>`, `<string>7</string>`, `<string>-2</string>`}},
		{name: "floats and bools typed", method: "event.from", args: []any{[]string{"*"}, "", 30.0, true},
			want: []string{`<array><data><value><string>*</string></value></data></array>`, `<double>30</double>`, `<boolean>1</boolean>`}},
		{name: "time in UTC with Z", method: "message.get_since", args: []any{time.Date(2025, 3, 19, 6, 16, 24, 0, time.FixedZone("", 7200))},
			want: []string{`<string>20250319T04:16:24Z</string>`}},
		{name: "nil is empty string", method: "x.y", args: []any{nil, (*int)(nil)},
			want: []string{`<param><value><string></string></value></param><param><value><string></string></value></param>`}},
		{name: "escaping of values and map keys", method: "VM.add_to_other_config", args: []any{map[string]string{"a<&b": "x&y"}},
			want: []string{`<name>a&lt;&amp;b</name><value><string>x&amp;y</string></value>`}},
		{name: "struct by tag with omitempty", method: "VDI.create", args: []any{vdiCreate{SR: "OpaqueRef:sr", VirtualSize: 1 << 30, OtherConfig: map[string]string{}}},
			want: []string{`<name>SR</name>`, `<name>virtual_size</name><value><string>1073741824</string></value>`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeCall(tc.method, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Fatalf("%s\nlacks %s", s, w)
				}
			}
			if strings.Contains(s, "<int>") || strings.Contains(s, "<i4>") || strings.Contains(s, "tags") {
				t.Fatalf("unwanted encoding in %s", s)
			}
		})
	}
	if _, err := EncodeCall("x", make(chan int)); err == nil {
		t.Fatal("no error for a channel argument")
	}
}
