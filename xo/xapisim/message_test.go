package xapisim

import (
	"testing"
	"time"
)

func TestMessages(t *testing.T) {
	s, session := newTestSim(t, Default())
	vmUUIDStr := str(get(t, s, byName(t, s, "VM", runningVM)), "uuid")
	tests := []struct {
		name string
		cls  string
		uuid string
		want string
	}{
		{"VM message", "VM", vmUUIDStr, ""},
		{"unknown object", "VM", "00000000-0000-0000-0000-000000000000", "UUID_INVALID"},
		{"bad class", "Nope", vmUUIDStr, "INVALID_VALUE"},
	}
	var created string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, f := call(t, s, session, "message.create", "TEST", int64(2), tc.cls, tc.uuid, "body")
			got := ""
			if f != nil {
				got = f.Code
			} else {
				created = res.(string)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %q", f, tc.want)
			}
		})
	}
	since := mustCall(t, s, session, "message.get_since", baseTime.Add(time.Hour)).(map[string]any)
	if _, ok := since[created]; !ok || len(since) != 1 {
		t.Fatalf("get_since returned %d messages", len(since))
	}
	all := mustCall(t, s, session, "message.get_since", time.Unix(0, 0)).(map[string]any)
	if len(all) != 4 {
		t.Fatalf("get_since(epoch) returned %d messages, want 4", len(all))
	}
	byObj := mustCall(t, s, session, "message.get", "VM", vmUUIDStr, time.Unix(0, 0)).(map[string]any)
	if _, ok := byObj[created]; !ok {
		t.Fatal("message.get missed the new message")
	}
	mustCall(t, s, session, "message.destroy", created)
	if exists(s, created) {
		t.Fatal("message survived destroy")
	}
}

func TestVMLifecycleMessages(t *testing.T) {
	s, session := newTestSim(t, Default())
	vm := byName(t, s, "VM", haltedVM)
	rec := get(t, s, vm)
	h1 := byName(t, s, "host", "host1")
	h1Rec := get(t, s, h1)
	prefix := "VM 'vm1' (uuid: " + str(rec, "uuid") + ") "
	steps := []struct {
		method string
		args   []any
		name   string
		body   string
	}{
		{"VM.start_on", []any{h1, false, false}, "VM_STARTED", "started on host: host1 (uuid: " + str(h1Rec, "uuid") + ")"},
		{"VM.pause", nil, "VM_PAUSED", "paused"},
		{"VM.unpause", nil, "VM_UNPAUSED", "unpaused"},
		{"VM.clean_reboot", nil, "VM_REBOOTED", "rebooted cleanly"},
		{"VM.suspend", nil, "VM_SUSPENDED", "suspended"},
		{"VM.hard_shutdown", nil, "VM_SHUTDOWN", "shutdown forcibly"},
		{"VM.snapshot", []any{"snap"}, "VM_SNAPSHOTTED", "snapshotted, snapshot name: snap"},
	}
	for _, st := range steps {
		t.Run(st.method, func(t *testing.T) {
			before := map[string]bool{}
			s.DB.Read(func(tx *Tx) {
				for _, m := range tx.All("message") {
					before[m] = true
				}
			})
			mustCall(t, s, session, st.method, append([]any{vm}, st.args...)...)
			var got []Record
			s.DB.Read(func(tx *Tx) {
				for _, m := range tx.All("message") {
					if !before[m] {
						r, _ := tx.GetClass("message", m)
						got = append(got, r.Clone())
					}
				}
			})
			if len(got) != 1 {
				t.Fatalf("%d new messages", len(got))
			}
			m := got[0]
			if str(m, "name") != st.name || str(m, "body") != prefix+st.body || str(m, "cls") != "VM" ||
				str(m, "obj_uuid") != str(rec, "uuid") || m["priority"] != int64(5) {
				t.Fatalf("message %s %q (cls %s, priority %v)", str(m, "name"), str(m, "body"), str(m, "cls"), m["priority"])
			}
		})
	}
}
