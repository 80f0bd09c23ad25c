package handlers

import (
	"encoding/json"
	"testing"
)

// FuzzRRDUpdates feeds arbitrary /rrd_updates answers to the parser and the
// XO mapping: they must not panic, and whatever they accept must render as
// valid JSON whose series have one value per row.
func FuzzRRDUpdates(f *testing.F) {
	const uuid = "0ffcbc7e-488b-57ef-8afe-183299b842af"
	for _, seed := range []string{
		`{"meta":{"start":1700000005,"step":5,"end":1700000010,"rows":2,"columns":3,"legend":["AVERAGE:host:` + uuid + `:cpu0","AVERAGE:host:` + uuid + `:memory_total_kib","AVERAGE:vm:` + uuid + `:vbd_xvda_read"]},"data":[{"t":1700000010,"values":["0.5","NaN","1e+20"]},{"t":1700000005,"values":["0.0","Infinity","-Infinity"]}]}`,
		`{meta: {start: 1, step: 5, end: 10, rows: 1, columns: 2, legend: ["AVERAGE:host:` + uuid + `:loadavg", "AVERAGE:host:` + uuid + `:pif_eth0_rx"],}, data: [{t: 10, values: [NaN, -Infinity]},]}`,
		`{"meta":{"step":"5","end":"10","legend":["AVERAGE:host:` + uuid + `:iops_total_abcdef01"]},"data":[{"values":[1,2,3]},{"values":[]}]}`,
		`{"meta":{"step":5,"legend":["AVERAGE:host:a:b:c:cpu0","AVERAGE::x:","x"]},"data":[{"values":[null]}]}`,
		`{"meta":{"step":5,"legend":["AVERAGE:host:` + uuid + `:cpu0"]},"data":[{"values":["1" ,"x"]}]}`,
		`{meta:{step:5,end:7,legend:['AVERAGE:vm:` + uuid + `:cpu0','it\'s "x"']},data:[{t:7,values:[0.25,-NaN]}]}`,
		``, `{`, `[]`, `{"meta":null,"data":null}`, `{a: "\"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseRRDUpdates(data)
		if err != nil {
			return
		}
		for _, typ := range []string{"host", "vm"} {
			stats, err := xoStats(doc, typ, uuid, 5, 1700000000)
			if err != nil {
				continue
			}
			out := marshalStats(stats)
			var parsed struct {
				Stats map[string]any `json:"stats"`
			}
			if err := json.Unmarshal(out, &parsed); err != nil {
				t.Fatalf("invalid JSON %q from %q: %v", out, data, err)
			}
			var check func(v any)
			check = func(v any) {
				switch v := v.(type) {
				case map[string]any:
					for _, c := range v {
						check(c)
					}
				case []any:
					if len(v) != len(doc.Data) {
						t.Fatalf("series of %d values for %d rows: %s", len(v), len(doc.Data), out)
					}
				default:
					t.Fatalf("stats member %T: %s", v, out)
				}
			}
			check(parsed.Stats)
		}
	})
}
