package xapisim

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestHostRestartAgent(t *testing.T) {
	s, session := newTestSim(t, Default())
	h := byName(t, s, "host", "host0")
	agentStart := func() int64 {
		v := strings.TrimSuffix(strMap(get(t, s, h), "other_config")["agent_start_time"], ".")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("agent_start_time %q", v)
		}
		return n
	}
	for i := range 3 {
		before := agentStart()
		mustCall(t, s, session, "host.restart_agent", h)
		if after := agentStart(); after <= before {
			t.Fatalf("restart %d: agent_start_time %d -> %d", i, before, after)
		}
	}
}

func TestHostPower(t *testing.T) {
	s, session := newTestSim(t, Default())
	h0, h1 := byName(t, s, "host", "host0"), byName(t, s, "host", "host1")
	steps := []struct {
		name   string
		method string
		host   string
		want   string
	}{
		{"reboot enabled host", "host.reboot", h0, "HOST_NOT_DISABLED"},
		{"disable", "host.disable", h0, ""},
		{"reboot with guests", "host.reboot", h0, "HOST_IN_USE"},
		{"start on disabled", "VM.start_on", h0, "HOST_DISABLED"},
		{"evacuate", "host.evacuate", h0, ""},
		{"reboot empty host", "host.reboot", h0, ""},
		{"disable the other", "host.disable", h1, ""},
		{"disable again", "host.disable", h0, ""},
		{"evacuate with nowhere to go", "host.evacuate", h1, "NO_HOSTS_AVAILABLE"},
		{"enable", "host.enable", h1, ""},
	}
	halted := byName(t, s, "VM", haltedVM)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			args := []any{st.host}
			if st.method == "VM.start_on" {
				args = []any{halted, st.host, false, false}
			}
			_, f := call(t, s, session, st.method, args...)
			got := ""
			if f != nil {
				got = f.Code
			}
			if got != st.want {
				t.Fatalf("got %v, want %q", f, st.want)
			}
			switch st.name {
			case "evacuate":
				for _, vm := range strSet(get(t, s, h0), "resident_VMs") {
					if !get(t, s, vm)["is_control_domain"].(bool) {
						t.Errorf("guest %s still on host0 after evacuate", vm)
					}
				}
				if ops := strSet(get(t, s, h0), "allowed_operations"); !slices.Contains(ops, "reboot") {
					t.Errorf("empty disabled host0 cannot reboot: %v", ops)
				}
			case "reboot empty host":
				if !get(t, s, h0)["enabled"].(bool) {
					t.Error("host0 not enabled after reboot")
				}
			}
		})
	}
	if ops := strSet(get(t, s, h1), "allowed_operations"); !slices.Contains(ops, "vm_start") {
		t.Errorf("host1 allowed_operations %v", ops)
	}
	if mgmt := mustCall(t, s, session, "host.get_management_interface", h0).(string); !get(t, s, mgmt)["management"].(bool) {
		t.Error("management interface is not the management PIF")
	}
}

func TestHostShutdownPowerOn(t *testing.T) {
	s, session := newTestSim(t, Default())
	h1 := byName(t, s, "host", "host1")
	mustCall(t, s, session, "host.disable", h1)
	for _, vm := range residentGuestsOf(t, s, h1) {
		mustCall(t, s, session, "VM.hard_shutdown", vm)
	}
	mustCall(t, s, session, "host.shutdown", h1)
	if get(t, s, str(get(t, s, h1), "metrics"))["live"].(bool) {
		t.Fatal("host still live after shutdown")
	}
	if ops := strSet(get(t, s, h1), "allowed_operations"); !slices.Equal(ops, []string{"power_on"}) {
		t.Errorf("allowed_operations of a dead host %v", ops)
	}
	if _, f := call(t, s, session, "VM.start_on", byName(t, s, "VM", haltedVM), h1, false, false); f == nil || f.Code != "HOST_NOT_LIVE" {
		t.Fatalf("start on a dead host: %v", f)
	}
	mustCall(t, s, session, "host.power_on", h1)
	if rec := get(t, s, h1); !rec["enabled"].(bool) || !get(t, s, str(rec, "metrics"))["live"].(bool) {
		t.Fatal("host not back after power_on")
	}
}
