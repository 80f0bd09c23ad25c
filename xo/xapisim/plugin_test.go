package xapisim

import (
	"strconv"
	"testing"
)

// addLVMSR adds an SM driver of type lvm with the SR_TRIM capability and
// an SR of that type, as on a host with local LVM storage, and returns the
// SR's ref.
func addLVMSR(t *testing.T, s *Simulator) string {
	t.Helper()
	var sr string
	if err := s.DB.Write(func(tx *Tx) error {
		newObject(tx, "SM", Record{"type": "lvm", "name_label": "Local LVM",
			"capabilities": []string{"SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE", trimCapability}})
		sr = newObject(tx, "SR", Record{"name_label": "lvm0", "type": "lvm", "content_type": "user",
			"physical_size": srSize, "other_config": map[string]string{}, "sm_config": map[string]string{}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sr
}

func TestHostCallPlugin(t *testing.T) {
	s, session := newTestSim(t, Default())
	host := s.MasterHost()
	lvm := addLVMSR(t, s)
	nfs := byName(t, s, "SR", "sr0")
	uuidOf := func(ref string) string { return str(get(t, s, ref), "uuid") }
	tests := []struct {
		name           string
		host           string
		plugin, fn     string
		args           map[string]any
		want           string
		fault          string
		faultParams    []string
		checkTriggered bool
	}{
		{name: "trim a LVM SR", plugin: "trim", fn: "do_trim", args: map[string]any{"sr_uuid": uuidOf(lvm)},
			want: "True", checkTriggered: true},
		{name: "trim an NFS SR", plugin: "trim", fn: "do_trim", args: map[string]any{"sr_uuid": uuidOf(nfs)},
			want: `<?xml version="1.0" ?><trim_response><key_value_pair><key>errcode</key><value>UnsupportedSRForTrim</value></key_value_pair>` +
				`<key_value_pair><key>errmsg</key><value>Trim on [` + uuidOf(nfs) + `] not supported</value></key_value_pair></trim_response>`},
		{name: "trim without sr_uuid", plugin: "trim", fn: "do_trim", args: map[string]any{},
			fault: "XENAPI_PLUGIN_FAILURE", faultParams: []string{"do_trim", "KeyError", "'sr_uuid'"}},
		{name: "trim an unknown SR", plugin: "trim", fn: "do_trim", args: map[string]any{"sr_uuid": "nope"},
			fault: "XENAPI_PLUGIN_FAILURE", faultParams: []string{"do_trim", "Failure", "['UUID_INVALID', 'SR', 'nope']"}},
		{name: "missing plugin", plugin: "smartctl.py", fn: "health", args: map[string]any{},
			fault: "XENAPI_MISSING_PLUGIN", faultParams: []string{"smartctl.py"}},
		{name: "unknown function", plugin: "trim", fn: "do_nothing", args: map[string]any{},
			fault: "UNKNOWN_XENAPI_PLUGIN_FUNCTION", faultParams: []string{"do_nothing"}},
		{name: "hyperthreading", plugin: "hyperthreading.py", fn: "get_hyperthreading", args: map[string]any{}, want: "true"},
		{name: "invalid host", host: "OpaqueRef:nope", plugin: "trim", fn: "do_trim", args: map[string]any{},
			fault: "HANDLE_INVALID", faultParams: []string{"host", "OpaqueRef:nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host
			if tt.host != "" {
				h = tt.host
			}
			got, f := call(t, s, session, "host.call_plugin", h, tt.plugin, tt.fn, tt.args)
			if tt.fault != "" {
				if f == nil || f.Code != tt.fault || !equalStrings(f.Params, tt.faultParams) {
					t.Fatalf("got %v, %v; want fault %s%q", got, f, tt.fault, tt.faultParams)
				}
				return
			}
			if f != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, f, tt.want)
			}
			if tt.checkTriggered {
				v := strMap(get(t, s, lvm), "other_config")["trim_last_triggered"]
				if ts, err := strconv.ParseFloat(v, 64); err != nil || int64(ts) != s.Now().Unix() {
					t.Errorf("trim_last_triggered %q, now %d", v, s.Now().Unix())
				}
			}
		})
	}
}

func TestHostCallPluginOfflineAndAsync(t *testing.T) {
	s, session := newTestSim(t, Default())
	h1 := byName(t, s, "host", "host1")
	mustCall(t, s, session, "host.disable", h1)
	mustCall(t, s, session, "host.evacuate", h1)
	mustCall(t, s, session, "host.shutdown", h1)
	if _, f := call(t, s, session, "host.call_plugin", h1, "hyperthreading.py", "get_hyperthreading", map[string]any{}); f == nil || f.Code != "HOST_OFFLINE" {
		t.Fatalf("call on a halted host: %v", f)
	}
	task := mustCall(t, s, session, "Async.host.call_plugin", s.MasterHost(), "trim", "do_trim", map[string]any{"sr_uuid": str(get(t, s, addLVMSR(t, s)), "uuid")}).(string)
	if rec := waitTask(t, &Server{Simulator: s}, session, task); str(rec, "status") != "success" || str(rec, "result") != "<value>True</value>" {
		t.Errorf("task %s result %q", str(rec, "status"), str(rec, "result"))
	}
}

// equalStrings reports whether a and b hold the same strings in order.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
