package xo

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"decimal string", "2147483648", 2147483648.0},
		{"float string", "0.25", 0.25},
		{"spaces", " 42 ", 42.0},
		{"empty string", "", 0.0},
		{"hex", "0x10", 16.0},
		{"not a number", "abc", nil},
		{"NaN string", "NaN", nil},
		{"Infinity string", "Infinity", nil},
		{"go-only syntax", "1_000", nil},
		{"json number", 3.5, 3.5},
		{"int64", int64(7), 7.0},
		{"null", nil, 0.0},
		{"true", true, 1.0},
		{"map", map[string]any{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := num(tc.in); got != tc.want {
				t.Errorf("num(%#v) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"xml-rpc time", time.Date(2024, 1, 15, 8, 0, 0, 0, time.UTC), 1705305600.0},
		{"xapi string", "20240115T08:00:00Z", 1705305600.0},
		{"iso string", "2024-01-15T08:00:00Z", 1705305600.0},
		{"numeric seconds", "1705219200.", 1705219200.0},
		{"fractional seconds", "1705219200.75", 1705219200.0},
		{"epoch", "19700101T00:00:00Z", nil},
		{"epoch time", time.Unix(0, 0).UTC(), nil},
		{"zero", "0", nil},
		{"garbage", "yesterday", nil},
		{"absent", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := timestamp(tc.in); got != tc.want {
				t.Errorf("timestamp(%#v) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeVMNetworks(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"empty", map[string]any{}, map[string]any{}},
		{"new protocol", map[string]any{"0/ipv4/0": "10.0.0.1", "0/ipv6/0": "fe80::1", "1/ipv4/0": "10.0.1.1"},
			map[string]any{"0/ipv4/0": "10.0.0.1", "0/ipv6/0": "fe80::1", "1/ipv4/0": "10.0.1.1"}},
		{"old protocol, several and duplicates", map[string]any{"0/ip": "10.0.0.1 10.0.0.2\n10.0.0.1", "0/ipv4/0": "10.0.0.1"},
			map[string]any{"0/ipv4/0": "10.0.0.1", "0/ipv4/1": "10.0.0.2"}},
		{"empty values and other keys dropped", map[string]any{"0/ipv4/0": " ", "0/mac": "aa", "1/ipv6/3": "fe80::2"},
			map[string]any{"1/ipv6/0": "fe80::2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeVMNetworks(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExtractIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]any
		want any
	}{
		{"ipv4 first", map[string]any{"1/ipv4/0": "b", "0/ipv6/0": "fe80::1", "0/ipv4/1": "a"}, "a"},
		{"old key", map[string]any{"0/ip": "c"}, "c"},
		{"ipv6 only", map[string]any{"0/ipv6/1": "x", "0/ipv6/0": "y"}, "y"},
		{"none", map[string]any{"0/mac": "m"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := extractIPFromVMNetworks(tc.in); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAlarm(t *testing.T) {
	st := &store{recs: map[xapi.Ref]*record{}, byUUID: map[string]xapi.Ref{}}
	for _, tc := range []struct {
		name      string
		msg       map[string]any
		alarm     bool
		wantBody  any
		wantTime  any
		wantObjTy string
	}{
		{"cpu alarm", map[string]any{"name": "ALARM", "body": "value: 0.954\nconfig:\n<variable>\n<name value=\"cpu_usage\"/>\n</variable>", "timestamp": "20240115T08:00:00Z", "obj_uuid": "u"},
			true, map[string]any{"value": "95.4", "name": "cpu_usage"}, 1705305600000.0, "unknown"},
		{"NaN value", map[string]any{"name": "ALARM", "body": "value: NaN config: <variable> <name value=\"mem\"/>"},
			true, map[string]any{"value": "NaN", "name": "mem"}, 0.0, "unknown"},
		{"bond", map[string]any{"name": "BOND_STATUS_CHANGED", "body": "The status of the eth0+eth1 bond is: 1/2 up"},
			true, map[string]any{"name": "The status of the eth0+eth1 bond is: 1/2 up"}, 0.0, "unknown"},
		{"case-insensitive substring", map[string]any{"name": "my_alarm_x", "body": "b"}, true, map[string]any{"name": "b"}, 0.0, "unknown"},
		{"plain message", map[string]any{"name": "VM_STARTED", "body": "started", "timestamp": "20240115T08:00:00Z"}, false, "started", 1705305600.0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tctx{s: st}
			o := transformMessage(c, tc.msg)
			if _, isAlarm := o["object"]; isAlarm != tc.alarm {
				t.Fatalf("alarm %v, want %v: %v", isAlarm, tc.alarm, o)
			}
			if !reflect.DeepEqual(o["body"], tc.wantBody) || o["time"] != tc.wantTime {
				t.Errorf("body %#v time %#v, want %#v %#v", o["body"], o["time"], tc.wantBody, tc.wantTime)
			}
			if tc.alarm && o["object"].(map[string]any)["type"] != tc.wantObjTy {
				t.Errorf("object %v", o["object"])
			}
		})
	}
}

func TestTemplateParsers(t *testing.T) {
	disks := templateDisks(`<?xml version="1.0" ?><provision><disk device="0" size="8589934592" sr="abc" bootable="true" type="system"/><disk device="1" size="x" sr="" bootable="false" type="user"/></provision>`)
	want := []any{
		map[string]any{"device": "0", "size": 8589934592.0, "SR": "abc", "bootable": true, "type": "system"},
		map[string]any{"device": "1", "size": nil, "SR": "", "bootable": false, "type": "user"},
	}
	if !reflect.DeepEqual(disks, want) {
		t.Errorf("disks %v, want %v", disks, want)
	}
	for _, tc := range []struct {
		name, doc, firmware string
		want                bool
	}{
		{"none", "", "uefi", true},
		{"says no", `<restrictions><restriction field="supports-uefi" value="no"/></restrictions>`, "uefi", false},
		{"says yes", `<restrictions><restriction field="supports-uefi" value="yes"/></restrictions>`, "uefi", true},
		{"other firmware", `<restrictions><restriction field="supports-uefi" value="no"/></restrictions>`, "bios", true},
		{"broken xml", `<restrictions`, "uefi", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isFirmwareSupported(tc.doc, tc.firmware); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

// FuzzRecordParsers feeds arbitrary text to the parsers of record
// contents that come from guests and templates (guest network keys,
// template disk XML, recommendations XML, alarm bodies, numbers, times):
// none may panic, and every result must encode as JSON.
func FuzzRecordParsers(f *testing.F) {
	f.Add("0/ip", "10.0.0.1 10.0.0.2", `<provision><disk size="1" bootable="true"/></provision>`, "value: 0.5 config: <variable> <name value=\"x\"/>")
	f.Add("1/ipv6/0", "fe80::1", `<restrictions><restriction field="supports-bios" value="no"/></restrictions>`, "NaN")
	f.Fuzz(func(t *testing.T, key, value, xmlDoc, body string) {
		nets := map[string]any{key: value, "0/ipv4/0": value}
		out := map[string]any{
			"addresses":  normalizeVMNetworks(nets),
			"ip":         extractIPFromVMNetworks(nets),
			"disks":      templateDisks(xmlDoc),
			"firmware":   isFirmwareSupported(xmlDoc, value),
			"num":        num(value),
			"time":       timestamp(value),
			"version":    compareVersions(key, value),
			"docker":     vmDocker(map[string]any{"xscontainer-monitor": key, "docker_ps": xmlDoc}),
			"obfuscated": obfuscate(map[string]any{key: value}),
		}
		c := &tctx{s: &store{recs: map[xapi.Ref]*record{}, byUUID: map[string]xapi.Ref{}}}
		out["message"] = transformMessage(c, map[string]any{"name": key, "body": body, "timestamp": value, "obj_uuid": value})
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("not JSON-encodable: %v", err)
		}
	})
}
