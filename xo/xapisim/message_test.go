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
