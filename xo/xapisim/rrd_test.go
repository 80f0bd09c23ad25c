package xapisim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rrdNow is the clock of the RRD tests: 30 days after the model's boot
// times, 3 s past a 5 s boundary.
var rrdNow = baseTime.Add(30*24*time.Hour + 3*time.Second)

// rrdJSON is /rrd_updates' JSON answer as XAPI ≥ 23.31 sends it.
type rrdJSON struct {
	Meta struct {
		Start   int64    `json:"start"`
		Step    int64    `json:"step"`
		End     int64    `json:"end"`
		Rows    int      `json:"rows"`
		Columns int      `json:"columns"`
		Legend  []string `json:"legend"`
	} `json:"meta"`
	Data []struct {
		T      int64    `json:"t"`
		Values []string `json:"values"`
	} `json:"data"`
}

// rrdServer serves the default model with a fixed clock.
func rrdServer(t *testing.T) (*Server, string) {
	t.Helper()
	srv := NewServer(t, Default())
	srv.SetClock(func() time.Time { return rrdNow })
	return srv, srv.Session()
}

// rrdUUID returns the uuid of the object of class named name.
func rrdUUID(t *testing.T, s *Simulator, class, name string) string {
	t.Helper()
	ref := dpByName(t, s, class, name)
	return dpField(s, ref, "uuid").(string)
}

// rrdGet GETs /rrd_updates with q and returns the answer.
func rrdGet(t *testing.T, srv *Server, q url.Values, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, dpURL(srv, "/rrd_updates", q), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /rrd_updates: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, []byte(b.String())
}

func TestRRDUpdates(t *testing.T) {
	srv, session := rrdServer(t)
	now := rrdNow.Unix()
	host0 := rrdUUID(t, srv.Simulator, "host", "host0")
	vm0 := rrdUUID(t, srv.Simulator, "VM", "vm0")
	vm1 := rrdUUID(t, srv.Simulator, "VM", "vm1") // halted
	vm2 := rrdUUID(t, srv.Simulator, "VM", "vm2")
	vm4 := rrdUUID(t, srv.Simulator, "VM", "vm4") // paused
	xo := func(step, points int64) string { return strconv.FormatInt(now-step*points+step, 10) }
	for _, tc := range []struct {
		name      string
		q         url.Values
		step      int64
		rows      int
		cfs       []string // consolidation functions in the legend, in order
		host      bool     // the legend starts with host0's sources
		vms       []string // VMs in the legend
		firstTime int64    // time of the first (newest) row
	}{
		{"seconds as XO asks", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"5"}, "json": {"true"}, "start": {xo(5, 120)}},
			5, 119, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now - 3},
		{"minutes", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"60"}, "json": {"true"}, "start": {xo(60, 120)}},
			60, 119, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now / 60 * 60},
		{"hours", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"3600"}, "json": {"true"}, "start": {xo(3600, 168)}},
			3600, 167, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now / 3600 * 3600},
		{"days", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"86400"}, "json": {"true"}, "start": {xo(86400, 366)}},
			86400, 365, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now / 86400 * 86400},
		{"without host", url.Values{"cf": {"AVERAGE"}, "interval": {"5"}, "json": {""}, "start": {xo(5, 120)}},
			5, 119, []string{"AVERAGE"}, false, []string{vm0, vm2, vm4}, now - 3},
		{"vm_uuid filter", url.Values{"cf": {"AVERAGE"}, "interval": {"5"}, "json": {"true"}, "start": {xo(5, 120)}, "vm_uuid": {vm2, vm1}},
			5, 119, []string{"AVERAGE"}, false, []string{vm2}, now - 3},
		{"every cf", url.Values{"host": {"true"}, "interval": {"60"}, "json": {"true"}, "start": {xo(60, 120)}},
			60, 119, []string{"AVERAGE", "MIN", "MAX"}, true, []string{vm0, vm2, vm4}, now / 60 * 60},
		{"negative start is relative", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "json": {"true"}, "start": {"-60"}},
			5, 12, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now - 3},
		{"start older than the 5 s archive picks the minute one", url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"5"}, "json": {"true"}, "start": {strconv.FormatInt(now-3600, 10)}},
			60, 60, []string{"AVERAGE"}, true, []string{vm0, vm2, vm4}, now / 60 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rrdGet(t, srv, withSession(tc.q, session), nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var u rrdJSON
			if err := json.Unmarshal(body, &u); err != nil {
				t.Fatalf("decode: %v: %.200s", err, body)
			}
			start, _ := strconv.ParseInt(tc.q.Get("start"), 10, 64)
			if start < 0 {
				start += now
			}
			m := u.Meta
			if m.Step != tc.step || m.Rows != tc.rows || len(u.Data) != tc.rows || m.Columns != len(m.Legend) {
				t.Fatalf("step %d rows %d/%d columns %d legend %d, want step %d rows %d", m.Step, m.Rows, len(u.Data), m.Columns, len(m.Legend), tc.step, tc.rows)
			}
			if m.End != tc.firstTime || u.Data[0].T != tc.firstTime || m.Start != start/tc.step*tc.step+tc.step {
				t.Errorf("meta start %d end %d, first row %d; want end %d, start %d", m.Start, m.End, u.Data[0].T, tc.firstTime, start/tc.step*tc.step+tc.step)
			}
			for i, row := range u.Data {
				if want := tc.firstTime - int64(i)*tc.step; row.T != want || len(row.Values) != m.Columns {
					t.Fatalf("row %d: t %d (want %d), %d values", i, row.T, want, len(row.Values))
				}
				if row.T < start {
					t.Fatalf("row %d at %d is before start %d", i, row.T, start)
				}
			}
			var owners, cfs []string
			for _, l := range m.Legend {
				parts := strings.SplitN(l, ":", 4)
				if len(parts) != 4 {
					t.Fatalf("legend %q", l)
				}
				if !slices.Contains(cfs, parts[0]) {
					cfs = append(cfs, parts[0])
				}
				if o := parts[1] + ":" + parts[2]; !slices.Contains(owners, o) {
					owners = append(owners, o)
				}
			}
			var want []string
			if tc.host {
				want = append(want, "host:"+host0)
			}
			for _, vm := range slices.Sorted(slices.Values(tc.vms)) { // xcp-rrdd's Hashtbl order; the simulator sorts by uuid
				want = append(want, "vm:"+vm)
			}
			if !slices.Equal(owners, want) || !slices.Equal(cfs, tc.cfs) {
				t.Errorf("legend owners %v cfs %v, want %v %v", owners, cfs, want, tc.cfs)
			}
		})
	}
}

// withSession returns q with session_id set.
func withSession(q url.Values, session string) url.Values {
	out := url.Values{"session_id": {session}}
	for k, v := range q {
		out[k] = v
	}
	return out
}

func TestRRDUpdatesValues(t *testing.T) {
	srv, session := rrdServer(t)
	now := rrdNow.Unix()
	host0 := rrdUUID(t, srv.Simulator, "host", "host0")
	q := url.Values{"cf": {"AVERAGE"}, "host": {"true"}, "interval": {"86400"}, "json": {"true"}, "start": {strconv.FormatInt(now-86400*365, 10)}}
	_, body := rrdGet(t, srv, withSession(q, session), nil)
	var u rrdJSON
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		i := slices.Index(u.Meta.Legend, name)
		if i < 0 {
			t.Fatalf("no %s in %v", name, u.Meta.Legend)
		}
		return i
	}
	vm0 := dpByName(t, srv.Simulator, "VM", "vm0")
	vm0UUID := dpField(srv.Simulator, vm0, "uuid").(string)
	started := dpField(srv.Simulator, dpField(srv.Simulator, vm0, "metrics").(string), "start_time").(time.Time).Unix()
	memory := dpField(srv.Simulator, dpField(srv.Simulator, vm0, "metrics").(string), "memory_actual").(int64)
	hostMetrics := dpField(srv.Simulator, dpByName(t, srv.Simulator, "host", "host0"), "metrics").(string)
	total := dpField(srv.Simulator, hostMetrics, "memory_total").(int64)

	mem, cpu, hostMem := col("AVERAGE:vm:"+vm0UUID+":memory"), col("AVERAGE:vm:"+vm0UUID+":cpu0"), col("AVERAGE:host:"+host0+":memory_total_kib")
	sawNaN, sawValue := false, false
	for _, row := range u.Data {
		if got := row.Values[hostMem]; got != strconv.FormatFloat(float64(total)/1024, 'g', 15, 64) {
			t.Fatalf("t %d: memory_total_kib %q, want %d/1024", row.T, got, total)
		}
		if row.T < started {
			sawNaN = true
			if row.Values[mem] != "NaN" || row.Values[cpu] != "NaN" {
				t.Fatalf("t %d before the VM started at %d: %q %q, want NaN", row.T, started, row.Values[mem], row.Values[cpu])
			}
			continue
		}
		sawValue = true
		if row.Values[mem] != strconv.FormatInt(memory, 10) {
			t.Fatalf("t %d: memory %q, want %d", row.T, row.Values[mem], memory)
		}
		f, err := strconv.ParseFloat(row.Values[cpu], 64)
		if err != nil || f < 0 || f > 1 {
			t.Fatalf("t %d: cpu0 %q", row.T, row.Values[cpu])
		}
	}
	if !sawNaN || !sawValue {
		t.Fatalf("expected rows before and after the VM's start (%d): NaN %v, values %v", started, sawNaN, sawValue)
	}
	// Deterministic: the same request gives the same bytes.
	if _, again := rrdGet(t, srv, withSession(q, session), nil); string(again) != string(body) {
		t.Fatal("two identical requests differ")
	}
}

func TestRRDUpdatesFormatAndErrors(t *testing.T) {
	srv, session := rrdServer(t)
	start := strconv.FormatInt(rrdNow.Unix()-60, 10)
	for _, tc := range []struct {
		name   string
		q      url.Values
		header http.Header
		status int
		ctype  string
	}{
		{"json key with any value", url.Values{"session_id": {session}, "start": {start}, "host": {"true"}, "json": {"false"}}, nil, 200, "application/json"},
		{"xml without json", url.Values{"session_id": {session}, "start": {start}, "host": {"true"}}, nil, 200, "text/xml"},
		{"Accept json wins", url.Values{"session_id": {session}, "start": {start}, "host": {"true"}}, http.Header{"Accept": {"application/json"}}, 200, "application/json"},
		{"Accept xml wins", url.Values{"session_id": {session}, "start": {start}, "host": {"true"}, "json": {"true"}}, http.Header{"Accept": {"text/xml, application/json;q=0.5"}}, 200, "text/xml"},
		{"missing start", url.Values{"session_id": {session}, "host": {"true"}, "json": {"true"}}, nil, 400, ""},
		{"bad start", url.Values{"session_id": {session}, "start": {"soon"}}, nil, 500, ""},
		{"no session", url.Values{"start": {start}}, nil, 401, ""},
		{"bad session", url.Values{"session_id": {"OpaqueRef:nope"}, "start": {start}}, nil, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rrdGet(t, srv, tc.q, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.ctype == "" {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Fatalf("Content-Type %q, want %q", got, tc.ctype)
			}
			if tc.ctype == "text/xml" {
				var x struct {
					Meta struct {
						Step   int64    `xml:"step"`
						Legend []string `xml:"legend>entry"`
					} `xml:"meta"`
					Rows []struct {
						T int64    `xml:"t"`
						V []string `xml:"v"`
					} `xml:"data>row"`
				}
				if err := xml.Unmarshal(body, &x); err != nil {
					t.Fatalf("xml: %v", err)
				}
				if x.Meta.Step != 5 || len(x.Rows) != 12 || len(x.Rows[0].V) != len(x.Meta.Legend) {
					t.Fatalf("xml step %d, %d rows", x.Meta.Step, len(x.Rows))
				}
			}
		})
	}
}

func TestRRDUpdatesTask(t *testing.T) {
	srv, session := rrdServer(t)
	task := dpTask(t, srv, session)
	q := url.Values{"session_id": {session}, "task_id": {task}, "start": {"-10"}, "host": {"true"}, "json": {"true"}}
	if resp, body := rrdGet(t, srv, q, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if st := dpField(srv.Simulator, task, "status"); st != "success" {
		t.Fatalf("task status %v, want success", st)
	}
}

func TestRRDDataSources(t *testing.T) {
	srv, session := rrdServer(t)
	ctx := context.Background()
	vm0 := dpByName(t, srv.Simulator, "VM", "vm0")
	vm0UUID := dpField(srv.Simulator, vm0, "uuid").(string)
	vm1 := dpByName(t, srv.Simulator, "VM", "vm1")
	sources := func(vm string) map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for _, r := range dpCall(t, srv, session, "VM.get_data_sources", vm).([]any) {
			rec := r.(map[string]any)
			out[rec["name_label"].(string)] = rec["enabled"].(bool)
		}
		return out
	}
	legend := func() []string {
		t.Helper()
		q := url.Values{"session_id": {session}, "start": {"-10"}, "json": {"true"}, "vm_uuid": {vm0UUID}}
		_, body := rrdGet(t, srv, q, nil)
		var u rrdJSON
		if err := json.Unmarshal(body, &u); err != nil {
			t.Fatal(err)
		}
		return u.Meta.Legend
	}
	ds := sources(vm0)
	for name, enabled := range map[string]bool{"cpu0": true, "memory": true, "memory_target": true, "vbd_xvda_read": true, "vif_0_tx": true, "cpu_usage": false, "runstate_blocked": false, "vbd_xvda_iops_total": false} {
		if got, ok := ds[name]; !ok || got != enabled {
			t.Errorf("data source %s: present %v enabled %v, want enabled %v", name, ok, got, enabled)
		}
	}
	if slices.Contains(legend(), "AVERAGE:vm:"+vm0UUID+":cpu_usage") {
		t.Fatal("cpu_usage recorded before record_data_source")
	}
	dpCall(t, srv, session, "VM.record_data_source", vm0, "cpu_usage")
	if !sources(vm0)["cpu_usage"] || !slices.Contains(legend(), "AVERAGE:vm:"+vm0UUID+":cpu_usage") {
		t.Fatal("cpu_usage not recorded after record_data_source")
	}
	dpCall(t, srv, session, "VM.forget_data_source_archives", vm0, "cpu_usage")
	if sources(vm0)["cpu_usage"] || slices.Contains(legend(), "AVERAGE:vm:"+vm0UUID+":cpu_usage") {
		t.Fatal("cpu_usage still recorded after forget_data_source_archives")
	}
	_, err := srv.Call(ctx, "VM.record_data_source", session, vm0, "no_such_source")
	var f *Fault
	if !errors.As(err, &f) || f.Code != "INTERNAL_ERROR" || !strings.Contains(f.Params[0], "Datasource_missing") {
		t.Fatalf("unknown source: %v, want INTERNAL_ERROR Datasource_missing", err)
	}
	if got := sources(vm1); len(got) != 0 {
		t.Fatalf("halted VM has data sources %v", got)
	}
	if _, err := srv.Call(ctx, "VM.record_data_source", session, vm1, "cpu0"); !errors.As(err, &f) || !strings.Contains(f.Params[0], "VM: ") {
		t.Fatalf("halted VM: %v, want Datasource_missing(VM: …)", err)
	}
	if _, err := srv.Call(ctx, "VM.forget_data_source_archives", session, vm1, "cpu0"); err != nil {
		t.Fatalf("forget on a halted VM: %v, want a no-op", err)
	}
	if _, err := srv.Call(ctx, "VM.record_data_source", session, "OpaqueRef:nope", "cpu0"); !errors.As(err, &f) || f.Code != "HANDLE_INVALID" {
		t.Fatalf("bad ref: %v, want HANDLE_INVALID", err)
	}
}

func TestFormatRRDValue(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0.0"}, {0.5, "0.5"}, {1.0 / 3, "0.333333333333333"}, {16777216, "16777216"}, {1e20, "1e+20"}, {1.5e-7, "1.5e-07"},
	} {
		if got := formatRRDValue(tc.in); got != tc.want {
			t.Errorf("formatRRDValue(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
