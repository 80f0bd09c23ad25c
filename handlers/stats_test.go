package handlers

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xorest/xorest/xo/xapisim"
)

// statsNow is the simulator's clock in the stats tests: 30 days after
// the model's boot times, 3 s past a 5 s boundary.
var statsNow = time.Date(2024, 2, 14, 8, 0, 3, 0, time.UTC)

// newStatsFixture serves a simulated pool of hosts hosts with a fixed
// clock.
func newStatsFixture(t *testing.T, hosts int) *simFixture {
	t.Helper()
	m := xapisim.Default()
	m.Hosts = hosts
	sf := newSimFixture(t, []xapisim.Model{m})
	sf.sims[0].SetClock(func() time.Time { return statsNow })
	return sf
}

// statsAnswer is the JSON answer of a stats route.
type statsAnswer struct {
	EndTimestamp *float64       `json:"endTimestamp"`
	Interval     float64        `json:"interval"`
	Stats        map[string]any `json:"stats"`
}

// series returns the series at path (dot-separated) of a stats answer.
func (a statsAnswer) series(t *testing.T, path string) []any {
	t.Helper()
	var v any = a.Stats
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in stats", path)
		}
		v = m[k]
	}
	s, ok := v.([]any)
	if !ok {
		t.Fatalf("stats %s is %T, want a series", path, v)
	}
	return s
}

// shape describes a stats answer for the golden file: every series path
// with its length, sorted.
func shape(stats map[string]any) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(prefix+"."+k, c)
			}
		case []any:
			out = append(out, prefix[1:]+" ×"+strconv.Itoa(len(v)))
		default:
			b, _ := json.Marshal(v)
			out = append(out, prefix[1:]+" "+string(b))
		}
	}
	walk("", stats)
	sort.Strings(out)
	return out
}

// rawRRD GETs /rrd_updates from the simulator as XO would for step and
// points, and returns the legend and the rows, newest first.
func rawRRD(t *testing.T, sf *simFixture, step, points int64) (legend []string, rows [][]string) {
	t.Helper()
	srv := sf.sims[0]
	q := url.Values{
		"session_id": {srv.Session()}, "cf": {"AVERAGE"}, "host": {"true"}, "json": {"true"},
		"interval": {strconv.FormatInt(step, 10)}, "start": {strconv.FormatInt(statsNow.Unix()-step*points+step, 10)},
	}
	resp, err := http.Get(strings.TrimSuffix(srv.URL, "/") + "/rrd_updates?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Meta struct {
			Legend []string `json:"legend"`
		} `json:"meta"`
		Data []struct {
			Values []string `json:"values"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("rrd_updates: %v", err)
	}
	for _, d := range doc.Data {
		rows = append(rows, d.Values)
	}
	return doc.Meta.Legend, rows
}

func TestStatsGranularities(t *testing.T) {
	sf := newStatsFixture(t, 1)
	host := sf.hostID(t, "host0")
	vm := sf.idOf(t, "vms", "vm0")
	pool := sf.anyID(t, "pools")
	now := statsNow.Unix()
	for _, tc := range []struct {
		name, query    string
		interval       float64
		points         int
		hostEnd, vmEnd int64
	}{
		{"default", "", 5, 119, now / 5 * 5, now / 5 * 5},
		{"seconds", "?granularity=seconds", 5, 119, now / 5 * 5, now / 5 * 5},
		{"minutes", "?granularity=minutes", 60, 119, now / 60 * 60, now / 60 * 60},
		{"hours", "?granularity=hours", 3600, 167, now / 3600 * 3600, now / 3600 * 3600},
		{"days", "?granularity=days", 86400, 365, now / 86400 * 86400, now / 86400 * 86400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				path string
				end  int64
				key  string
			}{
				{"/hosts/" + host + "/stats", tc.hostEnd, "cpus.0"},
				{"/vms/" + vm + "/stats", tc.vmEnd, "memory"},
			} {
				var a statsAnswer
				sf.getJSON(t, BasePath+c.path+tc.query, &a)
				if a.Interval != tc.interval || a.EndTimestamp == nil || int64(*a.EndTimestamp) != c.end {
					t.Errorf("%s: interval %v endTimestamp %v, want %v %d", c.path, a.Interval, a.EndTimestamp, tc.interval, c.end)
				}
				if n := len(a.series(t, c.key)); n != tc.points {
					t.Errorf("%s: %s has %d points, want %d", c.path, c.key, n, tc.points)
				}
			}
			var p map[string]statsAnswer
			sf.getJSON(t, BasePath+"/pools/"+pool+"/stats"+tc.query, &p)
			if a, ok := p[host]; !ok || a.Interval != tc.interval || len(a.series(t, "memory")) != tc.points {
				t.Errorf("pool stats: %v", p)
			}
		})
	}
}

func TestStatsGolden(t *testing.T) {
	sf := newStatsFixture(t, 1)
	host := sf.hostID(t, "host0")
	out := map[string][]string{}
	for _, c := range []struct{ name, path string }{
		{"host seconds", "/hosts/" + host + "/stats"},
		{"vm0 running, seconds", "/vms/" + sf.idOf(t, "vms", "vm0") + "/stats"},
		{"vm4 paused, days", "/vms/" + sf.idOf(t, "vms", "vm4") + "/stats?granularity=days"},
	} {
		var a statsAnswer
		sf.getJSON(t, BasePath+c.path, &a)
		out[c.name] = shape(a.Stats)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "stats/shapes.json", append(b, '\n'))
}

func TestStatsValues(t *testing.T) {
	sf := newStatsFixture(t, 1)
	host := sf.hostID(t, "host0")
	vm := sf.idOf(t, "vms", "vm0")
	for _, g := range []struct {
		name         string
		step, points int64
	}{{"seconds", 5, 120}, {"days", 86400, 366}} {
		t.Run(g.name, func(t *testing.T) {
			legend, rows := rawRRD(t, sf, g.step, g.points)
			// raw returns the XAPI values of a legend entry, oldest first.
			raw := func(entry string) []string {
				t.Helper()
				i := slices.Index(legend, entry)
				if i < 0 {
					t.Fatalf("no %s in the legend", entry)
				}
				out := make([]string, len(rows))
				for j, row := range rows {
					out[len(rows)-1-j] = row[i]
				}
				return out
			}
			check := func(a statsAnswer, path, entry string, conv func(float64) float64) {
				t.Helper()
				got, want := a.series(t, path), raw(entry)
				if len(got) != len(want) {
					t.Fatalf("%s: %d points, XAPI has %d", path, len(got), len(want))
				}
				for i := range want {
					f, err := strconv.ParseFloat(want[i], 64)
					if err != nil && want[i] != "NaN" {
						t.Fatalf("%s: XAPI value %q", entry, want[i])
					}
					if want[i] == "NaN" {
						if got[i] != nil {
							t.Fatalf("%s[%d] = %v, want null for NaN", path, i, got[i])
						}
						continue
					}
					exp := conv(float64(float32(f)))
					if g, ok := got[i].(float64); !ok || g != exp {
						t.Fatalf("%s[%d] = %v, want %v (XAPI %s)", path, i, got[i], exp, want[i])
					}
				}
			}
			id := func(v float64) float64 { return v }
			var h statsAnswer
			sf.getJSON(t, BasePath+"/hosts/"+host+"/stats?granularity="+g.name, &h)
			hp := "AVERAGE:host:" + host + ":"
			check(h, "cpus.0", hp+"cpu0", func(v float64) float64 { return v * 100 })
			check(h, "memory", hp+"memory_total_kib", func(v float64) float64 { return v * 1024 })
			check(h, "memoryFree", hp+"memory_free_kib", func(v float64) float64 { return v * 1024 })
			check(h, "load", hp+"loadavg", id)
			check(h, "pifs.rx.0", hp+"pif_eth0_rx", id)
			check(h, "pifsAggr.tx", hp+"pif_aggr_tx", id)
			check(h, "runningVcpus", hp+"running_vcpus", id)
			for _, e := range legend {
				sr, ok := strings.CutPrefix(e, hp+"io_throughput_read_")
				if !ok {
					continue
				}
				check(h, "ioThroughput.r."+sr, e, func(v float64) float64 { return v * (1 << 20) })
				check(h, "latency.total."+sr, hp+"latency_"+sr, func(v float64) float64 { return v / 1e3 })
				check(h, "latency.r."+sr, hp+"read_latency_"+sr, func(v float64) float64 { return v / 1e3 })
				check(h, "iops.total."+sr, hp+"iops_total_"+sr, id)
				check(h, "iowait."+sr, hp+"iowait_"+sr, id)
			}
			var v statsAnswer
			sf.getJSON(t, BasePath+"/vms/"+vm+"/stats?granularity="+g.name, &v)
			vp := "AVERAGE:vm:" + vm + ":"
			check(v, "cpus.0", vp+"cpu0", func(v float64) float64 { return v * 100 })
			check(v, "memory", vp+"memory", id)
			check(v, "memoryTarget", vp+"memory_target", id)
			check(v, "memoryFree", vp+"memory_internal_free", func(v float64) float64 { return v * 1024 })
			check(v, "xvds.r.a", vp+"vbd_xvda_read", id)
			check(v, "vifs.tx.0", vp+"vif_0_tx", id)
			check(v, "vifErrors.rx.0", vp+"vif_0_rx_errors", id)
			for _, k := range []string{"load", "pifs", "cpuUsage"} {
				if _, ok := v.Stats[k]; ok {
					t.Errorf("VM stats have %s", k)
				}
			}
		})
	}
}

func TestStatsErrors(t *testing.T) {
	sf := newStatsFixture(t, 2)
	host0, host1 := sf.hostID(t, "host0"), sf.hostID(t, "host1")
	vm0, vm1 := sf.idOf(t, "vms", "vm0"), sf.idOf(t, "vms", "vm1")
	// host1 is on a port where nothing listens: its stats, read from its
	// own address, fail (TestMemberStats reads a member that answers).
	modifyHost(t, sf, host1, func(rec map[string]any) { rec["address"] = "127.0.0.1:1" })
	missing := "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct {
		name, method, path string
		status             int
		msg                string // part of the error message
	}{
		{"bad granularity", "GET", "/hosts/" + host0 + "/stats?granularity=weeks", 422, "invalid parameters"},
		{"empty granularity", "GET", "/vms/" + vm0 + "/stats?granularity=", 422, "invalid parameters"},
		{"repeated granularity", "GET", "/pools/" + sf.anyID(t, "pools") + "/stats?granularity=days&granularity=hours", 422, "invalid parameters"},
		{"bad granularity before unknown object", "GET", "/hosts/" + missing + "/stats?granularity=x", 422, "invalid parameters"},
		{"unknown host", "GET", "/hosts/" + missing + "/stats", 404, "no such host " + missing},
		{"unknown VM", "GET", "/vms/" + missing + "/stats", 404, "no such VM " + missing},
		{"a host is not a VM", "GET", "/vms/" + host0 + "/stats", 404, "no such VM"},
		{"unknown pool", "GET", "/pools/" + missing + "/stats", 404, "no such pool " + missing},
		{"halted VM", "GET", "/vms/" + vm1 + "/stats", 422, "VM " + vm1 + " is halted or host could not be found."},
		{"unreachable pool member", "GET", "/hosts/" + host1 + "/stats", 503, "XAPI is unreachable"},
		{"data source of a halted VM", "PUT", "/vms/" + vm1 + "/stats/data_source/cpu0", 500, "INTERNAL_ERROR"},
		{"unknown data source", "PUT", "/vms/" + vm0 + "/stats/data_source/nope", 500, "Datasource_missing"},
		{"data source of an unknown VM", "DELETE", "/vms/" + missing + "/stats/data_source/cpu0", 404, "no such VM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := sf.send(t, tc.method, BasePath+tc.path, "")
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tc.status, tc.msg)
			}
		})
	}
	t.Run("halted VM body", func(t *testing.T) {
		var body struct {
			Error string `json:"error"`
			Data  struct {
				Errors struct {
					Code float64 `json:"code"`
					Data struct {
						Property string         `json:"property"`
						Expected string         `json:"expected"`
						Object   map[string]any `json:"object"`
					} `json:"data"`
				} `json:"errors"`
			} `json:"data"`
		}
		rec := sf.send(t, "GET", BasePath+"/vms/"+vm1+"/stats", "")
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		e := body.Data.Errors
		if e.Code != 25 || e.Data.Property != "resident_on" || e.Data.Expected != "<host-uuid>" || e.Data.Object["id"] != vm1 {
			t.Fatalf("body %s", rec.Body)
		}
	})
	t.Run("pool stats with an unreachable member", func(t *testing.T) {
		var p map[string]map[string]any
		sf.getJSON(t, BasePath+"/pools/"+sf.anyID(t, "pools")+"/stats", &p)
		if _, ok := p[host0]["stats"]; !ok || len(p) != 2 {
			t.Fatalf("pool stats %v", p)
		}
		e, _ := p[host1]["error"].(map[string]any)
		if msg, _ := e["message"].(string); msg != "XAPI is unreachable" {
			t.Fatalf("host1: %v, want an error", p[host1])
		}
	})
}

func TestStatsDataSource(t *testing.T) {
	sf := newStatsFixture(t, 1)
	vm := sf.idOf(t, "vms", "vm0")
	stats := func() statsAnswer {
		var a statsAnswer
		sf.getJSON(t, BasePath+"/vms/"+vm+"/stats", &a)
		return a
	}
	if _, ok := stats().Stats["cpuUsage"]; ok {
		t.Fatal("cpuUsage recorded before PUT")
	}
	for _, step := range []struct {
		method string
		want   bool
	}{{"PUT", true}, {"PUT", true}, {"DELETE", false}, {"DELETE", false}} {
		rec := sf.send(t, step.method, BasePath+"/vms/"+vm+"/stats/data_source/cpu_usage", "")
		if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
			t.Fatalf("%s: %d %s", step.method, rec.Code, rec.Body)
		}
		a := stats()
		if _, ok := a.Stats["cpuUsage"]; ok != step.want {
			t.Fatalf("after %s: cpuUsage present %v, want %v", step.method, ok, step.want)
		}
		if step.want {
			// Recorded from now on: every earlier point is unknown.
			s := a.series(t, "cpuUsage")
			if s[0] != nil || s[len(s)-1] == nil {
				t.Fatalf("cpuUsage %v", s)
			}
		}
	}
}

func TestRRDUpdatesParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		values   []float64 // of the first row; NaN compared as NaN
	}{
		{"XAPI ≥ 23.31", `{"meta":{"start":1,"step":5,"end":10,"rows":1,"columns":3,"legend":["a","b","c"]},"data":[{"t":10,"values":["0.5","NaN","-Infinity"]}]}`, true, []float64{0.5, math.NaN(), math.Inf(-1)}},
		{"numbers", `{"meta":{"step":"5","end":"10","legend":["a","b"]},"data":[{"t":10,"values":[1e3,null]}]}`, true, []float64{1000, math.NaN()}},
		{"JSON5 before 23.31", `{meta: {start: 1, step: 5, end: 10, rows: 1, columns: 3, legend: ["a:b", "c", "d"],}, data: [{t: 10, values: [NaN, -Infinity, +1.5]},]}`, true, []float64{math.NaN(), math.Inf(-1), 1.5}},
		{"JSON5 single quotes", `{meta:{step:5,legend:['a\'b "c"']},data:[{values:[-NaN]}]}`, true, []float64{math.NaN()}},
		{"bad number string", `{"meta":{"step":5,"legend":["a"]},"data":[{"values":["nan"]}]}`, false, nil},
		{"Go-only infinity", `{"meta":{"step":5,"legend":["a"]},"data":[{"values":["Inf"]}]}`, false, nil},
		{"not JSON", `<xport/>`, false, nil},
		{"unterminated", `{meta: {legend: ["a`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := parseRRDUpdates([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if float64(doc.Meta.Step) != 5 {
				t.Errorf("step %v", doc.Meta.Step)
			}
			for i, want := range tc.values {
				got := float64(doc.Data[0].Values[i])
				if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("value %d = %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestXOStatsMapping(t *testing.T) {
	uuid := "11111111-2222-3333-4444-555555555555"
	doc, err := parseRRDUpdates([]byte(`{"meta":{"step":60,"end":120,"legend":[
		"AVERAGE:vm:` + uuid + `:cpu1", "AVERAGE:vm:` + uuid + `:cpu0", "AVERAGE:vm:` + uuid + `:vbd_xvdb_iowait",
		"AVERAGE:vm:other:cpu0", "AVERAGE:host:` + uuid + `:loadavg", "MIN:vm:` + uuid + `:memory", "AVERAGE:vm:` + uuid + `:unknown_metric",
		"AVERAGE:vm:` + uuid + `:memory"]},
		"data":[{"t":120,"values":["0.25","0.5","0.1","1","1","1","1","Infinity"]},{"t":60,"values":["0.75","NaN","0.2","1","1","1","1","2048"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := xoStats(doc, "vm", uuid, 60, 999)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "endTimestamp": 120,
  "interval": 60,
  "stats": {
    "cpus": {
      "0": [
        null,
        50
      ],
      "1": [
        75,
        25
      ]
    },
    "vbdIowait": {
      "b": [
        ` + strconv.FormatFloat(float64(float32(0.2))*100, 'f', -1, 64) + `,
        ` + strconv.FormatFloat(float64(float32(0.1))*100, 'f', -1, 64) + `
      ]
    },
    "memory": [
      2048,
      null
    ]
  }
}`
	if string(marshalStats(got)) != want {
		t.Errorf("got\n%s\nwant\n%s", marshalStats(got), want)
	}
	if _, err := xoStats(doc, "vm", uuid, 5, 999); err == nil || !strings.Contains(err.Error(), "Unable to get the true granularity: 60") {
		t.Errorf("step mismatch: %v", err)
	}
	empty, _ := parseRRDUpdates([]byte(`{"meta":{"step":5,"end":7,"legend":[]},"data":[]}`))
	got, err = xoStats(empty, "host", uuid, 5, 999)
	if err != nil || string(marshalStats(got)) != "{\n  \"endTimestamp\": 999,\n  \"interval\": 5,\n  \"stats\": {}\n}" {
		t.Errorf("no data: %s %v", marshalStats(got), err)
	}
}
