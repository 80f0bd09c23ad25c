package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// This file reads XAPI's /rrd_updates answer and maps it to XO's stats
// (xo-server src/xapi-stats.mjs, _getAndUpdateStats and STATS).

// rrdDoc is the part of an /rrd_updates JSON answer that XO reads.
type rrdDoc struct {
	Meta struct {
		Step   rrdNum   `json:"step"`
		End    rrdNum   `json:"end"`
		Legend []string `json:"legend"`
	} `json:"meta"`
	Data []struct {
		Values []rrdNum `json:"values"`
	} `json:"data"`
}

// rrdNum is a number of an /rrd_updates answer: a JSON number, or (XAPI
// ≥ 23.31) a string holding one, "NaN", "Infinity" or "-Infinity". null is
// NaN. XO accepts the same (parseNumber, parseRrdValue), except that its
// typed array turns a null value into 0; here a null is unknown.
type rrdNum float64

// UnmarshalJSON implements json.Unmarshaler.
func (n *rrdNum) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*n = rrdNum(math.NaN())
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		f, err := parseJSNumber(s)
		if err != nil {
			return err
		}
		*n = rrdNum(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("cannot parse number: %s", b)
	}
	*n = rrdNum(f)
	return nil
}

// parseJSNumber parses s as XO does (+value): surrounding white space is
// ignored, an empty string is 0, "NaN" (exactly) is NaN, and "Infinity"
// may be signed; anything else that is not a decimal number is an error.
func parseJSNumber(s string) (float64, error) {
	if s == "NaN" {
		return math.NaN(), nil
	}
	t := strings.TrimSpace(s)
	switch t {
	case "":
		return 0, nil
	case "Infinity", "+Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	// strconv also accepts "inf", "nan" and hexadecimal floats, which
	// JavaScript does not; JavaScript reads "0x10" as 16, which XAPI never
	// writes and which is refused here.
	if strings.ContainsAny(t, "iInNxXpP_") {
		return 0, fmt.Errorf("cannot parse number: %q", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("cannot parse number: %q", s)
	}
	return f, nil
}

// maxRRDBytes bounds the /rrd_updates answer read (a host with a thousand
// VMs answers a few tens of MiB).
const maxRRDBytes = 256 << 20

// parseRRDUpdates parses an /rrd_updates JSON answer: strict JSON (XAPI
// ≥ 23.31), else the JSON5 of older XAPIs (unquoted keys, bare NaN and
// Infinity, trailing commas), as XO does (JSON.parse, then JSON5.parse).
func parseRRDUpdates(data []byte) (*rrdDoc, error) {
	var doc rrdDoc
	err := json.Unmarshal(data, &doc)
	if _, syntax := errors.AsType[*json.SyntaxError](err); syntax {
		fixed, ferr := json5ToJSON(data)
		if ferr != nil {
			return nil, fmt.Errorf("rrd_updates: %w", ferr)
		}
		doc = rrdDoc{}
		err = json.Unmarshal(fixed, &doc)
	}
	if err != nil {
		return nil, fmt.Errorf("rrd_updates: %w", err)
	}
	return &doc, nil
}

// json5ToJSON rewrites the JSON5 subset older XAPIs wrote into JSON:
// identifier keys are quoted, bare NaN and (signed) Infinity become
// strings, single-quoted strings are double-quoted, a leading + is dropped
// and trailing commas are removed. Other JSON5 syntax (comments,
// hexadecimal, line continuations) is left for the JSON parser to refuse.
func json5ToJSON(in []byte) ([]byte, error) {
	out := make([]byte, 0, len(in)+len(in)/8)
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(in) && in[j] != '"' {
				if in[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(in) {
				return nil, errors.New("unterminated string")
			}
			out = append(out, in[i:j+1]...)
			i = j + 1
		case c == '\'':
			// A single-quoted string: rewritten double-quoted.
			out = append(out, '"')
			j := i + 1
			for ; j < len(in) && in[j] != '\''; j++ {
				switch {
				case in[j] == '\\' && j+1 < len(in) && in[j+1] == '\'':
					out = append(out, '\'')
					j++
				case in[j] == '\\' && j+1 < len(in):
					out = append(out, in[j], in[j+1])
					j++
				case in[j] == '"':
					out = append(out, '\\', '"')
				default:
					out = append(out, in[j])
				}
			}
			if j >= len(in) {
				return nil, errors.New("unterminated string")
			}
			out = append(out, '"')
			i = j + 1
		case isIdentStart(c) || ((c == '-' || c == '+') && i+1 < len(in) && isIdentStart(in[i+1])):
			j := i + 1
			for j < len(in) && isIdentPart(in[j]) {
				j++
			}
			word := string(in[i:j])
			k := j
			for k < len(in) && isSpace(in[k]) {
				k++
			}
			switch {
			case k < len(in) && in[k] == ':' && c != '-' && c != '+':
				out = strconv.AppendQuote(out, word)
			case word == "NaN" || word == "-NaN" || word == "+NaN":
				out = append(out, `"NaN"`...)
			case word == "Infinity" || word == "-Infinity" || word == "+Infinity":
				out = strconv.AppendQuote(out, word)
			default:
				out = append(out, word...)
			}
			i = j
		case c == '+':
			i++ // JSON5 allows +1
		case c == ',':
			k := i + 1
			for k < len(in) && isSpace(in[k]) {
				k++
			}
			if k < len(in) && (in[k] == ']' || in[k] == '}') {
				i = k
				continue
			}
			out = append(out, c)
			i++
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// statMetric is one entry of XO's STATS table: a legend metric test and
// the path and unit conversion of its values.
type statMetric struct {
	name      string         // exact metric name, or "" to use re or suffix
	re        *regexp.Regexp // metric pattern; its first group is the last path element
	suffix    string         // the metric ends with suffix (XO's vm memory test)
	path      []string       // path of the values in stats
	transform func(float64) float64
}

func kib(v float64) float64     { return v * 1024 }
func percent(v float64) float64 { return v * 1e2 }
func mib(v float64) float64     { return v * (1 << 20) }
func milli(v float64) float64   { return v / 1e3 }

// exact, pattern and suffix build statMetrics.
func exact(name string, path []string, f func(float64) float64) statMetric {
	return statMetric{name: name, path: path, transform: f}
}

func pattern(re string, path []string, f func(float64) float64) statMetric {
	return statMetric{re: regexp.MustCompile(re), path: path, transform: f}
}

// statTables is XO's STATS for "host" and "vm", in XO's order (the first
// match wins). It is never modified.
var statTables = statsTables()

// statsTables builds statTables.
func statsTables() map[string][]statMetric {
	p := func(s ...string) []string { return s }
	return map[string][]statMetric{
		"host": {
			exact("loadavg", p("load"), nil),
			exact("memory_free_kib", p("memoryFree"), kib),
			exact("memory_total_kib", p("memory"), kib),
			pattern(`^cpu(\d+)$`, p("cpus"), percent),
			pattern(`^pif_eth(\d+)_rx$`, p("pifs", "rx"), nil),
			pattern(`^pif_eth(\d+)_tx$`, p("pifs", "tx"), nil),
			pattern(`^iops_read_(\w+)$`, p("iops", "r"), nil),
			pattern(`^iops_write_(\w+)$`, p("iops", "w"), nil),
			pattern(`^iops_total_(\w+)$`, p("iops", "total"), nil),
			pattern(`^io_throughput_read_(\w+)$`, p("ioThroughput", "r"), mib),
			pattern(`^io_throughput_write_(\w+)$`, p("ioThroughput", "w"), mib),
			pattern(`^io_throughput_total_(\w+)$`, p("ioThroughput", "total"), mib),
			pattern(`^read_latency_(\w+)$`, p("latency", "r"), milli),
			pattern(`^write_latency_(\w+)$`, p("latency", "w"), milli),
			pattern(`^latency_(\w+)$`, p("latency", "total"), milli),
			pattern(`^iowait_(\w+)$`, p("iowait"), nil),
			exact("hostload", p("hostload"), nil),
			exact("memory_reclaimed", p("memoryReclaimed"), kib),
			exact("memory_reclaimed_max", p("memoryReclaimedMax"), kib),
			exact("running_vcpus", p("runningVcpus"), nil),
			exact("pif_aggr_rx", p("pifsAggr", "rx"), nil),
			exact("pif_aggr_tx", p("pifsAggr", "tx"), nil),
		},
		"vm": {
			exact("memory_internal_free", p("memoryFree"), kib),
			{suffix: "memory", path: p("memory")},
			exact("memory_target", p("memoryTarget"), nil),
			pattern(`^cpu(\d+)$`, p("cpus"), percent),
			exact("cpu_usage", p("cpuUsage"), percent),
			exact("runstate_fullrun", p("runstateFullrun"), percent),
			exact("runstate_full_contention", p("runstateFullContention"), percent),
			exact("runstate_partial_run", p("runstatePartialRun"), percent),
			exact("runstate_partial_contention", p("runstatePartialContention"), percent),
			exact("runstate_concurrency_hazard", p("runstateConcurrencyHazard"), percent),
			exact("runstate_blocked", p("runstateBlocked"), percent),
			pattern(`^vif_(\d+)_rx$`, p("vifs", "rx"), nil),
			pattern(`^vif_(\d+)_tx$`, p("vifs", "tx"), nil),
			pattern(`^vif_(\d+)_rx_errors$`, p("vifErrors", "rx"), nil),
			pattern(`^vif_(\d+)_tx_errors$`, p("vifErrors", "tx"), nil),
			pattern(`^vbd_xvd(.)_read$`, p("xvds", "r"), nil),
			pattern(`^vbd_xvd(.)_write$`, p("xvds", "w"), nil),
			pattern(`^vbd_xvd(.)_iops_read$`, p("iops", "r"), nil),
			pattern(`^vbd_xvd(.)_iops_write$`, p("iops", "w"), nil),
			pattern(`^vbd_xvd(.)_iops_total$`, p("iops", "total"), nil),
			pattern(`^vbd_xvd(.)_read_latency$`, p("vbdLatency", "r"), milli),
			pattern(`^vbd_xvd(.)_write_latency$`, p("vbdLatency", "w"), milli),
			pattern(`^vbd_xvd(.)_io_throughput_read$`, p("ioThroughput", "r"), mib),
			pattern(`^vbd_xvd(.)_io_throughput_write$`, p("ioThroughput", "w"), mib),
			pattern(`^vbd_xvd(.)_io_throughput_total$`, p("ioThroughput", "total"), mib),
			pattern(`^vbd_xvd(.)_latency$`, p("vbdAvgLatency"), milli),
			pattern(`^vbd_xvd(.)_iowait$`, p("vbdIowait"), percent),
			pattern(`^vbd_xvd(.)_inflight$`, p("vbdInflight"), nil),
			pattern(`^vbd_xvd(.)_avgqu_sz$`, p("vbdAvgquSz"), nil),
		},
	}
}

// statPath returns the path of metric's values in stats, or nil when no
// entry of table matches it.
func statPath(table []statMetric, metric string) ([]string, func(float64) float64) {
	for _, m := range table {
		switch {
		case m.name != "":
			if metric == m.name {
				return m.path, m.transform
			}
		case m.suffix != "":
			if strings.HasSuffix(metric, m.suffix) {
				return m.path, m.transform
			}
		default:
			if g := m.re.FindStringSubmatch(metric); g != nil {
				return append(append([]string(nil), m.path...), g[1]), m.transform
			}
		}
	}
	return nil, nil
}

// legendRE is XO's legend pattern: AVERAGE:<type>:<uuid>:<metric>, the
// uuid running to the last colon.
var legendRE = regexp.MustCompile(`^AVERAGE:([^:]+):(.+):(.+)$`)

// jsObject is a JSON object that keeps JavaScript's member order
// (insertion order, array-index keys first, ascending).
type jsObject struct {
	keys []string
	vals []any // []any of float64 (NaN is null), or *jsObject
}

// child returns the object member key, adding it when absent.
func (o *jsObject) child(key string) *jsObject {
	for i, k := range o.keys {
		if k == key {
			if c, ok := o.vals[i].(*jsObject); ok {
				return c
			}
			c := &jsObject{}
			o.vals[i] = c
			return c
		}
	}
	c := &jsObject{}
	o.keys, o.vals = append(o.keys, key), append(o.vals, c)
	return c
}

// set sets member key to v.
func (o *jsObject) set(key string, v any) {
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = v
			return
		}
	}
	o.keys, o.vals = append(o.keys, key), append(o.vals, v)
}

// appendJSObject appends o as JSON (pretty: XO's two spaces).
func appendJSObject(b []byte, o *jsObject, pretty bool, depth int) []byte {
	order := jsKeyOrder(o.keys)
	return appendObject(b, len(o.keys), func(b []byte, i int) []byte {
		b = appendString(b, o.keys[order[i]])
		if pretty {
			b = append(b, ':', ' ')
		} else {
			b = append(b, ':')
		}
		return appendStatValue(b, o.vals[order[i]], pretty, depth+1)
	}, pretty, depth)
}

// appendStatValue appends a value of a jsObject.
func appendStatValue(b []byte, v any, pretty bool, depth int) []byte {
	switch v := v.(type) {
	case *jsObject:
		return appendJSObject(b, v, pretty, depth)
	case []float64:
		return appendArray(b, len(v), func(b []byte, i int) []byte { return appendFloat(b, v[i]) }, pretty, depth)
	}
	return appendJSON(b, v, pretty, depth)
}

// errFaultyGranularity matches XO's FaultyGranularity: XAPI answered with
// another step than the one asked (500, as in XO).
var errFaultyGranularity = errors.New("faulty granularity")

// xoStats maps doc to XO's stats of the object uuid of type typ ("host" or
// "vm"), as _getAndUpdateStats does: rows are reversed to oldest first,
// values go through a float32 (XO stores them in a Float32Array) and the
// metric's conversion, NaN and infinities are null. now is the host's time
// (the endTimestamp when there is no data).
func xoStats(doc *rrdDoc, typ, uuid string, step, now int64) (*jsObject, error) {
	if actual := float64(doc.Meta.Step); actual != float64(step) {
		shown := "null"
		if !math.IsNaN(actual) {
			shown = strconv.FormatFloat(actual, 'f', -1, 64)
		}
		return nil, fmt.Errorf("%w: Unable to get the true granularity: %s", errFaultyGranularity, shown)
	}
	stats := &jsObject{}
	found := false
	if len(doc.Data) > 0 {
		table := statTables[typ]
		for index, legend := range doc.Meta.Legend {
			m := legendRE.FindStringSubmatch(legend)
			if m == nil || m[1] != typ || m[2] != uuid {
				continue // XO throws a TypeError on a legend it cannot split; this skips it
			}
			path, transform := statPath(table, m[3])
			if path == nil {
				continue
			}
			found = true
			values := make([]float64, len(doc.Data))
			for i := range doc.Data {
				row := doc.Data[len(doc.Data)-1-i].Values
				v := math.NaN()
				if index < len(row) {
					v = float64(float32(row[index]))
				}
				if !math.IsNaN(v) && transform != nil {
					v = transform(v)
				}
				values[i] = v
			}
			o := stats
			for _, k := range path[:len(path)-1] {
				o = o.child(k)
			}
			o.set(path[len(path)-1], values)
		}
	}
	out := &jsObject{}
	if found {
		out.set("endTimestamp", float64(doc.Meta.End))
		out.set("interval", float64(step))
	} else {
		out.set("endTimestamp", float64(now))
		out.set("interval", float64(step))
	}
	out.set("stats", stats)
	return out, nil
}

// marshalStats renders o as XO does (JSON with two-space indentation).
func marshalStats(o *jsObject) []byte { return appendJSObject(nil, o, true, 0) }
