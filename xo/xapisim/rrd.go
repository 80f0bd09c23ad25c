package xapisim

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Performance data (RRDs).
//
// The simulator answers GET /rrd_updates as xcp-rrdd does on the host that
// receives the request (the pool master on the pool URL, a member on its
// own listener: StartHost), through xapi's forwarder (rrdd_proxy.ml get_rrd_updates_forwarder):
//
//   - authentication as every data-plane handler (session_id or Basic, else
//     401); a task_id names a task that is completed when the answer is
//     written (Xapi_http.with_context, exec_with_forwarded_task); without
//     start the answer is 400.
//   - query (rrdd_http_handler.ml get_rrd_updates_handler): start (seconds;
//     negative is relative to the last update), interval (seconds, default
//     0), cf (AVERAGE, MIN, MAX or LAST; anything else means every
//     consolidation function), host=true to add the host's RRD, vm_uuid
//     (repeatable) to restrict the VMs (default: every VM with an RRD on
//     this host), json (present: JSON, else XML; an Accept header choosing
//     between application/json and text/xml wins).
//   - archive choice and rows (rrd_updates.ml create_multi, rrd.ml
//     find_best_rras): every RRD has a 5 s step and xcp-rrdd's archives
//     (rrdd_shared.ml timescales): 120 × 5 s AVERAGE, then 120 × 1 min,
//     168 × 1 h and 366 × 1 day, each AVERAGE, MIN and MAX. The first
//     archive of the wanted cf whose rows last at least interval and that
//     still covers start is used; rows are newest first, from the last
//     consolidated time down to start; meta.start is the first
//     consolidated time after start.
//   - JSON (rrd_updates.ml json_of_t, XAPI ≥ 23.31): compact, meta numbers
//     as JSON numbers, values as strings formatted with %0.15g, "0.0",
//     "NaN", "Infinity" (rrd_utils.ml f_to_s). Legends are
//     "<CF>:host:<uuid>:<ds>" and "<CF>:vm:<uuid>:<ds>".
//
// Values are a deterministic function of the model and the row's time:
// memory figures come from host_metrics, VM_metrics and VM records, rates
// and fractions from a hash of (object, data source, archive, time). A VM
// has an RRD while it is running or paused on the host; rows before its
// VM_metrics.start_time are NaN (a fresh RRD holds unknown values).
//
// VM data sources (Xapi_vm.get_data_sources, record_data_source,
// forget_data_source_archives; rrdd_server.ml add_vm_ds, forget_vm_ds,
// query_possible_dss): the standard ones (cpuN, memory, memory_target,
// memory_internal_free, vbd_<dev>_read|write, vif_<n>_rx|tx|rx_errors|
// tx_errors) are always recorded; the others (cpu_usage, runstate_*, the
// other vbd_* figures) only after VM.record_data_source, from then on.
// Forgetting a standard source drops its archive, which xcp-rrdd recreates
// empty at the next update (rrdd_monitor.ml merge_new_dss): its rows
// before the forget are NaN. A VM without an RRD (not running) has no data
// sources, and recording one fails as in xcp-rrdd (Datasource_missing).

// rrdStep is xcp-rrdd's base step, in seconds.
const rrdStep = 5

// rrdArchive is one round-robin archive of an RRD.
type rrdArchive struct {
	cf       string // AVERAGE, MIN, MAX
	pdpCount int64  // base steps per row
	rows     int64  // rows kept
}

// rrdArchives are the archives of every RRD xcp-rrdd creates, in order
// (rrdd_monitor.ml create_rras with use_min_max).
var rrdArchives = func() []rrdArchive {
	out := []rrdArchive{{"AVERAGE", 1, 120}}
	for _, ts := range [][2]int64{{120, 12}, {168, 720}, {366, 17280}} {
		for _, cf := range []string{"AVERAGE", "MIN", "MAX"} {
			out = append(out, rrdArchive{cf, ts[1], ts[0]})
		}
	}
	return out
}()

// dataSource is one data source of an RRD.
type dataSource struct {
	name, description, units string
	standard                 bool // recorded by default
	min, max                 float64
	// value is the source's value for the archive row at time t (seconds)
	// of an archive of step seconds.
	value func(step, t int64) float64
	// since is when the source's data starts (unix seconds); 0 means
	// always.
	since int64
}

// rrdState is the state of the RRD handler: which non-standard VM data
// sources are recorded, and when archives were forgotten.
type rrdState struct {
	sim *Simulator

	mu       sync.Mutex
	recorded map[string]map[string]int64 // VM uuid → source → recorded since
	forgot   map[string]map[string]int64 // VM uuid → source → forgotten at
}

// registerRRD registers GET /rrd_updates and the VM data source messages
// (one of the class registrars).
func registerRRD(s *Simulator) {
	st := &rrdState{sim: s, recorded: map[string]map[string]int64{}, forgot: map[string]map[string]int64{}}
	s.HandleHTTP("GET /rrd_updates", http.HandlerFunc(st.serveUpdates))
	s.Register("VM.get_data_sources", Method{Handler: st.vmGetDataSources, Params: 1})
	s.Register("VM.record_data_source", Method{Handler: st.vmRecordDataSource, Params: 2, Async: true})
	s.Register("VM.forget_data_source_archives", Method{Handler: st.vmForgetDataSource, Params: 2, Async: true})
}

// frac is a deterministic value in [0, 1) for key at row t.
func frac(key string, step, t int64) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	var b [16]byte
	for i := range 8 {
		b[i] = byte(step >> (8 * i))
		b[8+i] = byte(t >> (8 * i))
	}
	_, _ = h.Write(b[:])
	return float64(h.Sum64()%10000) / 10000
}

// varying returns a source value base + span × frac(key).
func varying(key string, base, span float64) func(step, t int64) float64 {
	return func(step, t int64) float64 { return base + span*frac(key, step, t) }
}

// constant returns a source value v.
func constant(v float64) func(step, t int64) float64 {
	return func(int64, int64) float64 { return v }
}

// num returns an int or float field as a float64.
func num(rec Record, field string) float64 {
	switch v := rec[field].(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// rrdMaster returns the pool master's ref, the host whose xcp-rrdd the
// simulator's address reaches.
func rrdMaster(tx *Tx) string {
	for _, p := range tx.All("pool") {
		rec, _ := tx.GetClass("pool", p)
		return str(rec, "master")
	}
	return ""
}

// hasRRD reports whether VM vm has an RRD on host: it runs or is paused
// there.
func hasRRD(vm Record, host string) bool {
	ps := str(vm, "power_state")
	return (ps == "Running" || ps == "Paused") && str(vm, "resident_on") == host && !vm.bool("is_control_domain")
}

// bool returns a boolean field.
func (r Record) bool(field string) bool { b, _ := r[field].(bool); return b }

// hostSources returns the data sources of host.
func hostSources(tx *Tx, host string) []dataSource {
	hr, ok := tx.GetClass("host", host)
	if !ok {
		return nil
	}
	uuid := str(hr, "uuid")
	key := func(name string) string { return uuid + "/" + name }
	var out []dataSource
	add := func(name, desc, units string, min, max float64, v func(step, t int64) float64) {
		out = append(out, dataSource{name: name, description: desc, units: units, standard: true, min: min, max: max, value: v})
	}
	// One source per physical CPU: host_CPUs when the host has host_cpu
	// objects, else cpu_info's cpu_count.
	cpus := len(strs(hr, "host_CPUs"))
	if cpus == 0 {
		cpus, _ = strconv.Atoi(strMap(hr, "cpu_info")["cpu_count"])
	}
	for i := range cpus {
		name := "cpu" + strconv.Itoa(i)
		add(name, "Physical cpu usage for cpu "+strconv.Itoa(i), "(fraction)", 0, 1, varying(key(name), 0.02, 0.6))
	}
	add("cpu_avg", "Average physical cpu usage", "(fraction)", 0, 1, varying(key("cpu_avg"), 0.02, 0.6))
	add("loadavg", "Domain0 loadavg", "", 0, math.Inf(1), varying(key("loadavg"), 0, 2))
	hm, _ := tx.GetClass("host_metrics", str(hr, "metrics"))
	total, free := num(hm, "memory_total")/1024, num(hm, "memory_free")/1024
	add("memory_total_kib", "Total amount of memory in the host", "KiB", 0, math.Inf(1), constant(total))
	add("memory_free_kib", "Total amount of free memory", "KiB", 0, math.Inf(1), constant(free))
	add("memory_reclaimed", "Host memory reclaimed by squeezing", "KiB", 0, math.Inf(1), constant(0))
	add("memory_reclaimed_max", "Host memory that could be reclaimed by squeezing", "KiB", 0, math.Inf(1), constant(0))
	var pifs []string
	for _, p := range tx.All("PIF") {
		if pr, _ := tx.GetClass("PIF", p); str(pr, "host") == host && str(pr, "device") != "" && isRef(str(pr, "network")) {
			pifs = append(pifs, str(pr, "device"))
		}
	}
	sort.Strings(pifs)
	pifs = slices.Compact(pifs)
	for _, dir := range []string{"rx", "tx"} {
		var parts []func(step, t int64) float64
		for _, dev := range pifs {
			name := "pif_" + dev + "_" + dir
			v := varying(key(name), 0, 1e6)
			parts = append(parts, v)
			add(name, "Bytes per second "+dir+" on physical interface "+dev, "B/s", 0, math.Inf(1), v)
		}
		add("pif_aggr_"+dir, "Bytes per second "+dir+" on all physical interfaces", "B/s", 0, math.Inf(1), func(step, t int64) float64 {
			s := 0.0
			for _, p := range parts {
				s += p(step, t)
			}
			return s
		})
	}
	for _, sr := range hostSRs(tx, host) {
		sr8 := sr[:min(8, len(sr))]
		for _, m := range []struct {
			name, units string
			span        float64
		}{
			{"iops_read_", "requests/s", 200}, {"iops_write_", "requests/s", 200}, {"iops_total_", "requests/s", 400},
			{"io_throughput_read_", "MiB/s", 50}, {"io_throughput_write_", "MiB/s", 50}, {"io_throughput_total_", "MiB/s", 100},
			{"read_latency_", "μs", 2000}, {"write_latency_", "μs", 2000}, {"latency_", "μs", 2000},
			{"iowait_", "s", 0.2}, {"inflight_", "requests", 4}, {"avgqu_sz_", "requests", 2},
		} {
			add(m.name+sr8, "SR "+sr8+" "+strings.TrimSuffix(m.name, "_"), m.units, 0, math.Inf(1), varying(key(m.name+sr), 0, m.span))
		}
	}
	vcpus, domains := 0.0, 1.0
	for _, vm := range tx.All("VM") {
		if vr, _ := tx.GetClass("VM", vm); hasRRD(vr, host) {
			domains++
			metrics, _ := tx.GetClass("VM_metrics", str(vr, "metrics"))
			vcpus += num(metrics, "VCPUs_number")
		}
	}
	add("running_vcpus", "The total number of running vCPUs per host", "count", 0, math.Inf(1), constant(vcpus))
	add("running_domains", "The total number of running domains per host", "count", 0, math.Inf(1), constant(domains))
	add("xapi_memory_usage_kib", "Total memory allocated used by xapi daemon", "KiB", 0, math.Inf(1), varying(key("xapi_memory_usage_kib"), 60000, 10000))
	add("xapi_open_fds", "Number of open file descriptors held by xapi", "count", 0, math.Inf(1), varying(key("xapi_open_fds"), 50, 20))
	return out
}

// strs returns a set field.
func strs(rec Record, field string) []string { v, _ := rec[field].([]string); return v }

// hostSRs returns the uuids of the SRs attached to host that hold disks
// (not ISO or udev), in order.
func hostSRs(tx *Tx, host string) []string {
	var out []string
	for _, p := range tx.All("PBD") {
		pr, _ := tx.GetClass("PBD", p)
		if str(pr, "host") != host || !pr.bool("currently_attached") {
			continue
		}
		sr, ok := tx.GetClass("SR", str(pr, "SR"))
		if !ok || str(sr, "content_type") == "iso" || str(sr, "type") == "udev" || str(sr, "type") == "iso" {
			continue
		}
		out = append(out, str(sr, "uuid"))
	}
	sort.Strings(out)
	return out
}

// vmSources returns every possible data source of VM vm (standard or
// not), or nil when it has no RRD.
func vmSources(tx *Tx, vm string) []dataSource {
	vr, ok := tx.GetClass("VM", vm)
	if !ok || !hasRRD(vr, str(vr, "resident_on")) {
		return nil
	}
	uuid := str(vr, "uuid")
	key := func(name string) string { return uuid + "/" + name }
	metrics, _ := tx.GetClass("VM_metrics", str(vr, "metrics"))
	var since int64
	if st, ok := metrics["start_time"].(time.Time); ok && st.Unix() > 0 {
		since = st.Unix()
	}
	var out []dataSource
	add := func(name, desc, units string, standard bool, max float64, v func(step, t int64) float64) {
		out = append(out, dataSource{name: name, description: desc, units: units, standard: standard, max: max, value: v, since: since})
	}
	vcpus := int(num(metrics, "VCPUs_number"))
	for i := range vcpus {
		name := "cpu" + strconv.Itoa(i)
		add(name, "CPU"+strconv.Itoa(i)+" usage", "(fraction)", true, 1, varying(key(name), 0.01, 0.5))
	}
	add("cpu_usage", "Domain CPU usage", "(fraction)", false, float64(max(vcpus, 1)), varying(key("cpu_usage"), 0.01, 0.5))
	actual := num(metrics, "memory_actual")
	target := num(vr, "memory_target")
	if target == 0 {
		target = actual
	}
	add("memory", "Memory currently allocated to VM", "B", true, math.Inf(1), constant(actual))
	add("memory_target", "Target of VM balloon driver", "B", true, math.Inf(1), constant(target))
	if isRef(str(vr, "guest_metrics")) {
		add("memory_internal_free", "Memory used as reported by the guest agent", "KiB", true, math.Inf(1), varying(key("memory_internal_free"), actual/1024*0.3, actual/1024*0.4))
	}
	for _, rs := range []string{"fullrun", "full_contention", "concurrency_hazard", "blocked", "partial_run", "partial_contention"} {
		add("runstate_"+rs, "Fraction of time the vCPUs are "+strings.ReplaceAll(rs, "_", " "), "(fraction)", false, 1, varying(key("runstate_"+rs), 0, 0.3))
	}
	var vbds []string
	for _, ref := range strs(vr, "VBDs") {
		br, _ := tx.GetClass("VBD", ref)
		if str(br, "type") == "Disk" && br.bool("currently_attached") && str(br, "device") != "" {
			vbds = append(vbds, str(br, "device"))
		}
	}
	sort.Strings(vbds)
	for _, dev := range vbds {
		p := "vbd_" + dev + "_"
		for _, m := range []struct {
			suffix, units string
			standard      bool
			span          float64
		}{
			{"read", "B/s", true, 5e6}, {"write", "B/s", true, 5e6},
			{"read_latency", "μs", false, 2000}, {"write_latency", "μs", false, 2000},
			{"iops_read", "requests/s", false, 200}, {"iops_write", "requests/s", false, 200}, {"iops_total", "requests/s", false, 400},
			{"io_throughput_read", "MiB/s", false, 5}, {"io_throughput_write", "MiB/s", false, 5}, {"io_throughput_total", "MiB/s", false, 10},
			{"latency", "μs", false, 2000}, {"iowait", "s", false, 0.2}, {"inflight", "requests", false, 4}, {"avgqu_sz", "requests", false, 2},
		} {
			add(p+m.suffix, "VBD "+dev+" "+strings.ReplaceAll(m.suffix, "_", " "), m.units, m.standard, math.Inf(1), varying(key(p+m.suffix), 0, m.span))
		}
	}
	var vifs []string
	for _, ref := range strs(vr, "VIFs") {
		if fr, _ := tx.GetClass("VIF", ref); fr.bool("currently_attached") && str(fr, "device") != "" {
			vifs = append(vifs, str(fr, "device"))
		}
	}
	sort.Strings(vifs)
	for _, dev := range vifs {
		for _, m := range []struct {
			suffix string
			span   float64
		}{{"rx", 1e6}, {"tx", 1e6}, {"rx_errors", 0}, {"tx_errors", 0}} {
			name := "vif_" + dev + "_" + m.suffix
			add(name, "Bytes per second "+m.suffix+" on VIF "+dev, "B/s", true, math.Inf(1), varying(key(name), 0, m.span))
		}
	}
	return out
}

// vmRecorded returns the sources of vm that are recorded, with since set
// to when their data starts.
func (st *rrdState) vmRecorded(uuid string, all []dataSource) []dataSource {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []dataSource
	for _, ds := range all {
		if at, ok := st.forgot[uuid][ds.name]; ok && ds.standard {
			ds.since = max(ds.since, at)
		}
		if !ds.standard {
			at, ok := st.recorded[uuid][ds.name]
			if !ok {
				continue
			}
			ds.since = max(ds.since, at)
		}
		out = append(out, ds)
	}
	return out
}

// rrdOwner is one RRD in an answer: its legend prefix and sources.
type rrdOwner struct {
	prefix  string // "host:<uuid>:" or "vm:<uuid>:"
	sources []dataSource
}

// rrdQuery is a parsed /rrd_updates query.
type rrdQuery struct {
	start    int64
	interval int64
	cf       string // "" for every cf
	host     bool
	vms      []string // vm_uuid filter; nil for every VM
	json     bool
	local    string // the host whose xcp-rrdd answers ("": the master)
}

// parseRRDQuery parses the query of r. status is 400 when start is
// missing (xapi's forwarder), 500 when it is not an integer (xcp-rrdd's
// Int64.of_string fails), else 200.
func parseRRDQuery(r *http.Request) (q rrdQuery, status int) {
	v := r.URL.Query()
	if !v.Has("start") {
		return q, http.StatusBadRequest
	}
	start, err := parseOCamlInt64(v.Get("start"))
	if err != nil {
		return q, http.StatusInternalServerError
	}
	q.start = start
	q.interval, _ = parseOCamlInt64(v.Get("interval"))
	switch cf := v.Get("cf"); cf {
	case "AVERAGE", "MIN", "MAX", "LAST":
		q.cf = cf
	}
	q.host = v.Get("host") == "true"
	q.vms = v["vm_uuid"]
	q.json = prefersJSON(r.Header.Get("Accept"), v.Has("json"))
	return q, http.StatusOK
}

// parseOCamlInt64 parses an integer as OCaml's Int64.of_string does
// (decimal, optional sign, 0x/0o/0b prefixes, underscores).
func parseOCamlInt64(s string) (int64, error) {
	return strconv.ParseInt(s, 0, 64)
}

// prefersJSON is rrdd_http_handler.ml client_prefers_json: the Accept
// header's preference between application/json and text/xml when it
// accepts either, else whether the query has a json key.
func prefersJSON(accept string, jsonKey bool) bool {
	if accept == "" {
		return jsonKey
	}
	qJSON, qXML := -1.0, -1.0
	for part := range strings.SplitSeq(accept, ",") {
		fields := strings.Split(part, ";")
		typ := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					q = f
				}
			}
		}
		if typ == "application/json" || typ == "application/*" || typ == "*/*" {
			qJSON = max(qJSON, q)
		}
		if typ == "text/xml" || typ == "text/*" || typ == "*/*" {
			qXML = max(qXML, q)
		}
	}
	if qJSON <= 0 && qXML <= 0 {
		return jsonKey
	}
	return qJSON >= qXML
}

// serveUpdates answers GET /rrd_updates.
func (st *rrdState) serveUpdates(w http.ResponseWriter, r *http.Request) {
	_, logout, err := st.sim.HTTPSession(r)
	if err != nil {
		Unauthorized(w)
		return
	}
	defer logout()
	task := ""
	if ref := requestParam(r, "task_id"); ref != "" {
		t, _, err := st.sim.RequestTask(r, "Get RRD updates.")
		if err != nil {
			HTTPError(w, http.StatusNotFound, asFault(err).Error())
			return
		}
		task = t
	}
	complete := func(err error) {
		if task != "" {
			st.sim.CompleteTask(task, "", err)
		}
	}
	q, status := parseRRDQuery(r)
	switch status {
	case http.StatusBadRequest:
		complete(nil)
		HTTPError(w, status, "get_rrd_updates: missing the 'start' parameter")
		return
	case http.StatusInternalServerError:
		complete(NewFault("INTERNAL_ERROR", "Failure(\"Int64.of_string\")"))
		HTTPError(w, status, "")
		return
	}
	q.local = st.sim.dataPlane().localHost(r)
	u, ok := st.updates(q, st.sim.Now().Unix())
	if !ok {
		complete(NewFault("INTERNAL_ERROR", "Rrd.No_RRA_Available"))
		HTTPError(w, http.StatusInternalServerError, "")
		return
	}
	var body []byte
	if q.json {
		body = u.json()
		w.Header().Set("Content-Type", "application/json")
	} else {
		body = u.xml()
		w.Header().Set("Content-Type", "text/xml")
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Headers", "X-Requested-With")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	complete(nil)
}

// rrdUpdates is the answer of /rrd_updates (rrd_updates.ml t).
type rrdUpdates struct {
	start, step, end int64
	legend           []string
	rows             []rrdRow
}

// rrdRow is one row: its time and a value per legend entry.
type rrdRow struct {
	t      int64
	values []float64
}

// updates computes the answer to q at time now (the RRDs' last update),
// as rrd_updates.ml create_multi does. ok is false when there is no RRD
// or no archive of the wanted cf (No_RRA_Available).
func (st *rrdState) updates(q rrdQuery, now int64) (rrdUpdates, bool) {
	var owners []rrdOwner
	st.sim.DB.Read(func(tx *Tx) {
		host := q.local
		if host == "" {
			host = rrdMaster(tx)
		}
		if q.host {
			if hr, ok := tx.GetClass("host", host); ok {
				owners = append(owners, rrdOwner{prefix: "host:" + str(hr, "uuid") + ":", sources: hostSources(tx, host)})
			}
		}
		var vms []rrdOwner
		for _, vm := range tx.All("VM") {
			vr, _ := tx.GetClass("VM", vm)
			uuid := str(vr, "uuid")
			if !hasRRD(vr, host) || (q.vms != nil && !slices.Contains(q.vms, uuid)) {
				continue
			}
			vms = append(vms, rrdOwner{prefix: "vm:" + uuid + ":", sources: st.vmRecorded(uuid, vmSources(tx, vm))})
		}
		sort.Slice(vms, func(i, j int) bool { return vms[i].prefix < vms[j].prefix })
		owners = append(owners, vms...)
	})
	if len(owners) == 0 {
		return rrdUpdates{}, false
	}
	lastUpdated := now
	start := q.start
	if start < 0 {
		start += lastUpdated
	}
	rras := bestArchives(lastUpdated, q.interval/rrdStep, q.cf, start)
	if len(rras) == 0 {
		return rrdUpdates{}, false
	}
	step := rrdStep * rras[0].pdpCount
	lastCDP := floorTo(lastUpdated, step)
	u := rrdUpdates{start: floorTo(start, step) + step, step: step, end: lastCDP}
	for _, o := range owners {
		for _, a := range rras {
			for _, ds := range o.sources {
				u.legend = append(u.legend, a.cf+":"+o.prefix+ds.name)
			}
		}
	}
	for i := int64(0); ; i++ {
		t := lastCDP - i*step
		if t < start || i >= rras[0].rows {
			break
		}
		row := rrdRow{t: t, values: make([]float64, 0, len(u.legend))}
		for _, o := range owners {
			for _, a := range rras {
				for _, ds := range o.sources {
					row.values = append(row.values, archiveValue(ds, a, step, t))
				}
			}
		}
		u.rows = append(u.rows, row)
	}
	return u, true
}

// archiveValue is the value of ds in archive a at row t.
func archiveValue(ds dataSource, a rrdArchive, step, t int64) float64 {
	if ds.since > 0 && t < ds.since {
		return math.NaN()
	}
	v := ds.value(step, t)
	switch a.cf {
	case "MIN":
		v *= 0.9
	case "MAX":
		v *= 1.1
	}
	return v
}

// floorTo is rrd.ml get_times: t rounded down to a multiple of step.
func floorTo(t, step int64) int64 { return step * (t / step) }

// bestArchives is rrd.ml find_best_rras for an RRD with xcp-rrdd's
// archives last updated at lastUpdated.
func bestArchives(lastUpdated, pdpInterval int64, cf string, start int64) []rrdArchive {
	var rras []rrdArchive
	for _, a := range rrdArchives {
		if cf == "" || a.cf == cf {
			rras = append(rras, a)
		}
	}
	if len(rras) == 0 {
		return nil
	}
	lastPDP := floorTo(lastUpdated, rrdStep)
	contains := func(t int64, a rrdArchive) bool {
		return a.pdpCount >= pdpInterval && t > lastPDP-rrdStep*a.rows*a.pdpCount
	}
	same := func(first rrdArchive) []rrdArchive {
		var out []rrdArchive
		for _, a := range rras {
			if a.rows == first.rows && a.pdpCount == first.pdpCount {
				out = append(out, a)
			}
		}
		return out
	}
	for _, a := range rras {
		if contains(start, a) {
			return same(a)
		}
	}
	last := rras[len(rras)-1]
	newStart := 1 + lastPDP - rrdStep*last.rows*last.pdpCount
	var out []rrdArchive
	for _, a := range rras {
		if contains(newStart, a) {
			out = append(out, a)
		}
	}
	return out
}

// formatRRDValue is rrd_utils.ml f_to_s.
func formatRRDValue(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0.0"
	}
	return strconv.FormatFloat(f, 'g', 15, 64)
}

// json is rrd_updates.ml json_of_t (Yojson.to_string: compact).
func (u rrdUpdates) json() []byte {
	b := make([]byte, 0, 256+len(u.rows)*len(u.legend)*12)
	b = append(b, `{"meta":{"start":`...)
	b = strconv.AppendInt(b, u.start, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, u.step, 10)
	b = append(b, `,"end":`...)
	b = strconv.AppendInt(b, u.end, 10)
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, int64(len(u.rows)), 10)
	b = append(b, `,"columns":`...)
	b = strconv.AppendInt(b, int64(len(u.legend)), 10)
	b = append(b, `,"legend":[`...)
	for i, l := range u.legend {
		if i > 0 {
			b = append(b, ',')
		}
		enc, _ := json.Marshal(l) // a string always encodes
		b = append(b, enc...)
	}
	b = append(b, `]},"data":[`...)
	for i, row := range u.rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"t":`...)
		b = strconv.AppendInt(b, row.t, 10)
		b = append(b, `,"values":[`...)
		for j, v := range row.values {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, formatRRDValue(v)...)
			b = append(b, '"')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// xml is rrd_updates.ml xml_of (Xmlm output, no indentation).
func (u rrdUpdates) xml() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<xport><meta>")
	for _, f := range []struct {
		tag string
		v   int64
	}{{"start", u.start}, {"step", u.step}, {"end", u.end}, {"rows", int64(len(u.rows))}, {"columns", int64(len(u.legend))}} {
		b.WriteString("<" + f.tag + ">" + strconv.FormatInt(f.v, 10) + "</" + f.tag + ">")
	}
	b.WriteString("<legend>")
	for _, l := range u.legend {
		b.WriteString("<entry>" + xmlEscape(l) + "</entry>")
	}
	b.WriteString("</legend></meta><data>")
	for _, row := range u.rows {
		b.WriteString("<row><t>" + strconv.FormatInt(row.t, 10) + "</t>")
		for _, v := range row.values {
			b.WriteString("<v>" + formatRRDValue(v) + "</v>")
		}
		b.WriteString("</row>")
	}
	b.WriteString("</data></xport>")
	return []byte(b.String())
}

// xmlEscape escapes the XML special characters of s.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// vmDataSourceArgs returns the VM (ref, uuid, possible sources) of a data
// source call.
func vmDataSourceArgs(c *Call) (uuid string, sources []dataSource, err error) {
	c.Sim.DB.Read(func(tx *Tx) {
		var ref string
		var rec Record
		ref, rec, err = refArg(tx, c, 0, "VM")
		if err != nil {
			return
		}
		uuid = str(rec, "uuid")
		sources = vmSources(tx, ref)
	})
	return uuid, sources, err
}

// datasourceMissing is the fault of xcp-rrdd's fail_missing as xapi
// reports it (an unhandled Rrdd_error becomes INTERNAL_ERROR).
func datasourceMissing(name string) *Fault {
	return NewFault("INTERNAL_ERROR", "Rrd_interface.Rrdd_error(Datasource_missing(\""+name+"\"))")
}

// vmGetDataSources is VM.get_data_sources: every possible source of a VM
// with an RRD, by name, with enabled and standard (data_source records).
func (st *rrdState) vmGetDataSources(c *Call) (any, error) {
	uuid, all, err := vmDataSourceArgs(c)
	if err != nil {
		return nil, err
	}
	enabled := map[string]bool{}
	for _, ds := range st.vmRecorded(uuid, all) {
		enabled[ds.name] = true
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	out := make([]any, 0, len(all))
	for _, ds := range all {
		out = append(out, map[string]any{
			"name_label":       ds.name,
			"name_description": ds.description,
			"enabled":          enabled[ds.name],
			"standard":         ds.standard,
			"units":            ds.units,
			"min":              ds.min,
			"max":              ds.max,
			"value":            0.0,
		})
	}
	return out, nil
}

// vmRecordDataSource is VM.record_data_source: start recording a source
// of a VM with an RRD (a no-op for a recorded one).
func (st *rrdState) vmRecordDataSource(c *Call) (any, error) {
	uuid, all, err := vmDataSourceArgs(c)
	if err != nil {
		return nil, err
	}
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	if all == nil {
		return nil, datasourceMissing("VM: " + uuid)
	}
	i := slices.IndexFunc(all, func(ds dataSource) bool { return ds.name == name })
	if i < 0 {
		return nil, datasourceMissing(name)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if all[i].standard {
		return nil, nil
	}
	if _, ok := st.recorded[uuid][name]; !ok {
		if st.recorded[uuid] == nil {
			st.recorded[uuid] = map[string]int64{}
		}
		// Recorded from the last update on (the simulator's RRDs are
		// updated at every 5 s boundary of its clock).
		st.recorded[uuid][name] = floorTo(c.Sim.Now().Unix(), rrdStep)
	}
	return nil, nil
}

// vmForgetDataSource is VM.forget_data_source_archives: drop a source's
// archive (a standard source starts again empty; an unknown name or a VM
// without an RRD is a no-op, as in xcp-rrdd).
func (st *rrdState) vmForgetDataSource(c *Call) (any, error) {
	uuid, all, err := vmDataSourceArgs(c)
	if err != nil {
		return nil, err
	}
	name, err := c.String(1)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.recorded[uuid], name)
	if i := slices.IndexFunc(all, func(ds dataSource) bool { return ds.name == name }); i >= 0 && all[i].standard {
		if st.forgot[uuid] == nil {
			st.forgot[uuid] = map[string]int64{}
		}
		st.forgot[uuid][name] = floorTo(c.Sim.Now().Unix(), rrdStep)
	}
	return nil, nil
}
