package xapisim

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestImplicitMessages(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	var vm, uuid string
	srv.DB.Write(func(tx *Tx) error {
		rec := NewRecord("VM")
		rec["name_label"] = "implicit-vm"
		vm = tx.Create("VM", rec)
		uuid = rec["uuid"].(string)
		return nil
	})
	steps := []struct {
		name   string
		method string
		params []any
		want   any    // expected result when code == ""
		code   string // expected fault code
		fparam []string
	}{
		{"get_by_uuid", "VM.get_by_uuid", []any{uuid}, vm, "", nil},
		{"get_by_uuid unknown", "VM.get_by_uuid", []any{"nope"}, nil, "UUID_INVALID", []string{"VM", "nope"}},
		{"get_by_uuid other class", "VDI.get_by_uuid", []any{uuid}, nil, "UUID_INVALID", []string{"VDI", uuid}},
		{"get_by_name_label", "VM.get_by_name_label", []any{"implicit-vm"}, []any{vm}, "", nil},
		{"get_uuid", "VM.get_uuid", []any{vm}, uuid, "", nil},
		{"set_name_label", "VM.set_name_label", []any{vm, "renamed"}, "", "", nil},
		{"get_name_label", "VM.get_name_label", []any{vm}, "renamed", "", nil},
		{"get_power_state", "VM.get_power_state", []any{vm}, "Halted", "", nil},
		{"get int as string", "VM.get_memory_static_max", []any{vm}, "0", "", nil},
		{"get bool", "VM.get_is_a_template", []any{vm}, false, "", nil},
		{"set_is_a_template", "VM.set_is_a_template", []any{vm, true}, "", "", nil},
		{"get bool again", "VM.get_is_a_template", []any{vm}, true, "", nil},
		{"set int from string", "VM.set_VCPUs_max", []any{vm, "4"}, "", "", nil},
		{"get int", "VM.get_VCPUs_max", []any{vm}, "4", "", nil},
		{"add_to_other_config", "VM.add_to_other_config", []any{vm, "k", "v"}, "", "", nil},
		{"add_to duplicate", "VM.add_to_other_config", []any{vm, "k", "w"}, nil, "MAP_DUPLICATE_KEY", []string{"VM", "other_config", vm, "k"}},
		{"get map", "VM.get_other_config", []any{vm}, map[string]any{"k": "v"}, "", nil},
		{"remove_from", "VM.remove_from_other_config", []any{vm, "k"}, "", "", nil},
		{"remove_from missing", "VM.remove_from_other_config", []any{vm, "k"}, "", "", nil},
		{"get map empty", "VM.get_other_config", []any{vm}, map[string]any{}, "", nil},
		{"add_tags", "VM.add_tags", []any{vm, "a"}, "", "", nil},
		{"add_tags prepends", "VM.add_tags", []any{vm, "b"}, "", "", nil},
		{"add_tags again", "VM.add_tags", []any{vm, "a"}, "", "", nil},
		{"get tags", "VM.get_tags", []any{vm}, []any{"b", "a"}, "", nil},
		{"remove_tags", "VM.remove_tags", []any{vm, "b"}, "", "", nil},
		{"set_tags", "VM.set_tags", []any{vm, []any{"x", "y"}}, "", "", nil},
		{"get tags set", "VM.get_tags", []any{vm}, []any{"x", "y"}, "", nil},
		{"enum key canonical", "VM.add_to_blocked_operations", []any{vm, "START", "true"}, "", "", nil},
		{"enum key stored canonical", "VM.get_blocked_operations", []any{vm}, map[string]any{"start": "true"}, "", nil},
		{"bad enum", "VM.add_to_blocked_operations", []any{vm, "fly", "true"}, nil, "INVALID_VALUE", []string{"blocked_operations", "fly"}},
		{"enum value canonical", "VM.set_actions_after_crash", []any{vm, "RESTART"}, "", "", nil},
		{"enum value stored", "VM.get_actions_after_crash", []any{vm}, "restart", "", nil},
		{"no setter for RO field", "VM.set_power_state", []any{vm, "Running"}, nil, "MESSAGE_METHOD_UNKNOWN", []string{"VM.set_power_state"}},
		{"handle invalid", "VM.get_name_label", []any{"OpaqueRef:nope"}, nil, "HANDLE_INVALID", []string{"VM", "OpaqueRef:nope"}},
		{"wrong type", "VM.set_is_a_template", []any{vm, "true"}, nil, "INTERNAL_ERROR", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := c.call(st.method, append([]any{s}, st.params...)...)
			if st.code != "" {
				wantFault(t, err, st.code, st.fparam...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, st.want) {
				t.Fatalf("got %#v, want %#v", got, st.want)
			}
		})
	}
	t.Run("get_all_records", func(t *testing.T) {
		all := c.must("VM.get_all_records", s).(map[string]any)
		rec, ok := all[vm].(map[string]any)
		if !ok || rec["name_label"] != "renamed" {
			t.Fatalf("record %v", all[vm])
		}
		if len(rec) != len(NewRecord("VM")) {
			t.Fatalf("record has %d fields, want %d", len(rec), len(NewRecord("VM")))
		}
	})
	t.Run("generic create and destroy", func(t *testing.T) {
		_, err := c.call("console.create", s, map[string]any{})
		if err == nil {
			t.Fatal("create without required fields succeeded")
		}
		ref := c.must("VM_appliance.create", s, map[string]any{"name_label": "app", "name_description": "d"}).(string)
		if got := c.must("VM_appliance.get_name_label", s, ref); got != "app" {
			t.Fatalf("name %v", got)
		}
		c.must("VM_appliance.destroy", s, ref)
		_, err = c.call("VM_appliance.get_record", s, ref)
		wantFault(t, err, "HANDLE_INVALID", "VM_appliance", ref)
	})
}

// TestRecordFieldOrder checks that get_all_records emits fields in the
// datamodel's order, as XAPI does.
func TestRecordFieldOrder(t *testing.T) {
	srv, c := newTestServer(t)
	s := c.login()
	srv.DB.Write(func(tx *Tx) error {
		rec := NewRecord("VM")
		rec["name_label"] = "ordered"
		tx.Create("VM", rec)
		return nil
	})
	_, body := c.post("/", "text/xml", encodeCall("VM.get_all_records_where", s, `field "name__label" = "ordered"`))
	cs, _ := Schema("VM")
	last := -1
	for _, f := range cs.Fields {
		i := bytes.Index(body, []byte("<name>"+f.Name+"</name>"))
		if i < 0 {
			t.Fatalf("field %s missing", f.Name)
		}
		if i < last {
			t.Fatalf("field %s out of datamodel order", f.Name)
		}
		last = i
	}
}

// TestDispatchTableMatchesDatamodel checks every registered method that
// the datamodel knows against its signature there: parameter counts (which
// MESSAGE_PARAMETER_COUNT_MISMATCH reports) and whether it takes a session.
func TestDispatchTableMatchesDatamodel(t *testing.T) {
	sim := New(Default())
	checked := 0
	for _, name := range sim.Methods() {
		class, msg, _ := strings.Cut(name, ".")
		cs, ok := Schema(class)
		if !ok {
			continue
		}
		ms, ok := cs.Message(msg)
		if !ok {
			continue // get_all_records_where and other hidden messages
		}
		checked++
		m, _ := sim.Method(name)
		if m.Params != ms.Params || m.Defaults != ms.Defaults || m.NoSession == ms.Session {
			t.Errorf("%s: registered Params=%d Defaults=%d NoSession=%v; datamodel %d params, %d optional, session=%v",
				name, m.Params, m.Defaults, m.NoSession, ms.Params, ms.Defaults, ms.Session)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d methods checked", checked)
	}
	// A wrong registration is caught.
	sim.Register("VM.start", Method{Params: 1})
	m, _ := sim.Method("VM.start")
	cs, _ := Schema("VM")
	if ms, _ := cs.Message("start"); m.Params == ms.Params {
		t.Fatal("schema says VM.start takes 1 param")
	}
}
