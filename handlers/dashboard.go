package handlers

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"

	"github.com/xorest/xorest/xo"
)

// The dashboards of XO 0.39 (xoa.service getDashboard, pool.service
// getDashboard, vm.service getVmDashboard), with the parts XAPI can tell:
//
//   - GET /dashboard: nPools, nHosts, hostsStatus, resourcesOverview,
//     vmsStatus, storageRepositories, missingPatches (without nHostsEol).
//     Left out: poolsStatus (XO's server records), backupRepositories and
//     backups (XO's database and remotes).
//   - GET /pools/{id}/dashboard: hosts.status, hosts.topFiveUsage.ram,
//     hosts.missingPatches, vms.status, srs.topFiveUsage, alarms,
//     cpuProvisioning. Left out: hosts.topFiveUsage.cpu and
//     vms.topFiveUsage, which XO computes from RRD statistics.
//   - GET /vms/{id}/dashboard: quickInfo, alarms. Left out: backupsInfo
//     (XO's backup jobs, logs and archives).
//
// With ?ndjson each part is written as soon as it is known, as one line
// {"<key>": {"<sub key>": value}} (XO's promiseWriteInStream); the parts
// that ask the hosts (missing patches) come last. A part that fails is
// {"error": true}, as XO's handled parts.

// dashboardRoutes returns the three dashboard routes.
func (s *server) dashboardRoutes() []route {
	resp := func(what string) respDoc {
		return respDoc{
			description: what + "; with ndjson, one {\"<part>\": value} line per part",
			types:       []string{"application/json", contentNDJSON},
			schema:      map[string]any{"type": "object"},
		}
	}
	return []route{
		{
			method: "GET", pattern: BasePath + "/dashboard", handler: s.globalDashboard, tag: "dashboard",
			summary: "Counts and sizes over every pool (the parts of XO's dashboard that XAPI can tell)",
			params:  []string{"ndjson"}, resp: resp("nPools, nHosts, hostsStatus, resourcesOverview, vmsStatus, storageRepositories, missingPatches"),
		},
		{
			method: "GET", pattern: BasePath + "/pools/{id}/dashboard", handler: s.poolDashboard, tag: "pools",
			summary: "The pool's dashboard (the parts of XO's that XAPI can tell)",
			params:  []string{"ndjson"}, resp: resp("hosts, vms, srs, alarms, cpuProvisioning"),
		},
		{
			method: "GET", pattern: BasePath + "/vms/{id}/dashboard", handler: s.vmDashboard, tag: "vms",
			summary: "The VM's dashboard (quickInfo and alarms; no backup information)",
			params:  []string{"ndjson"}, resp: resp("quickInfo, alarms"),
		},
	}
}

// dashboard collects the parts of a dashboard, or streams them as NDJSON.
type dashboard struct {
	w      http.ResponseWriter
	ndjson bool
	rc     *http.ResponseController
	out    map[string]any
}

// newDashboard starts the answer of r.
func newDashboard(w http.ResponseWriter, r *http.Request) *dashboard {
	d := &dashboard{w: w, ndjson: queryOf(r).NDJSON, out: map[string]any{}}
	if d.ndjson {
		w.Header().Set("Content-Type", contentNDJSON)
		w.WriteHeader(http.StatusOK)
		d.rc = http.NewResponseController(w)
	}
	return d
}

// part adds value at path (keys from the outermost).
func (d *dashboard) part(value any, path ...string) error {
	if d.ndjson {
		line := value
		for _, k := range slices.Backward(path) {
			line = map[string]any{k: line}
		}
		b, err := json.Marshal(line)
		if err != nil {
			return fmt.Errorf("dashboard %v: %w", path, err)
		}
		if _, err := d.w.Write(append(b, '\n')); err != nil {
			return err
		}
		_ = d.rc.Flush()
		return nil
	}
	m := d.out
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = value
	return nil
}

// done ends the answer.
func (d *dashboard) done() error {
	if d.ndjson {
		return nil
	}
	return writeJSON(d.w, http.StatusOK, d.out)
}

// hostsStatus counts hosts as XO's getHostsStatus: running (and enabled),
// disabled (running, not enabled), halted, unknown.
func hostsStatus(hosts []xo.Object) map[string]int {
	st := map[string]int{"running": 0, "disabled": 0, "halted": 0, "unknown": 0, "total": len(hosts)}
	for _, h := range hosts {
		switch h["power_state"] {
		case "Running":
			if h["enabled"] == true {
				st["running"]++
			} else {
				st["disabled"]++
			}
		case "Halted":
			st["halted"]++
		default:
			st["unknown"]++
		}
	}
	return st
}

// vmsStatus counts VMs by power state as XO's getVmsStatus.
func vmsStatus(vms []xo.Object) map[string]int {
	st := map[string]int{"running": 0, "halted": 0, "paused": 0, "suspended": 0, "unknown": 0, "total": len(vms)}
	for _, vm := range vms {
		switch vm["power_state"] {
		case "Running":
			st["running"]++
		case "Halted":
			st["halted"]++
		case "Paused":
			st["paused"]++
		case "Suspended":
			st["suspended"]++
		default:
			st["unknown"]++
		}
	}
	st["active"] = st["running"] + st["paused"]
	st["inactive"] = st["halted"] + st["suspended"]
	return st
}

// srWritable is XO's isSrWritable: a size and not an ISO library.
func srWritable(sr xo.Object) bool { return num(sr["size"]) > 0 && sr["content_type"] != "iso" }

// topFive sorts items by their percent, largest first (NaN last), and
// keeps five, as XO's getTopPerProperty.
func topFive(items []map[string]any) []map[string]any {
	slices.SortStableFunc(items, func(a, b map[string]any) int {
		pa, pb := num(a["percent"]), num(b["percent"])
		switch {
		case math.IsNaN(pa) && math.IsNaN(pb):
			return 0
		case math.IsNaN(pa):
			return 1
		case math.IsNaN(pb):
			return -1
		}
		return cmp.Compare(pb, pa)
	})
	return items[:min(len(items), 5)]
}

// usagePercent is part/whole × 100, JSON-safe (0 for an empty whole).
func usagePercent(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return part / whole * 100
}

// isReplica is XO's isReplicaVm: start blocked and made by a backup job.
func isReplica(vm xo.Object) bool {
	blocked, _ := vm["blockedOperations"].(map[string]any)
	other, _ := vm["other"].(map[string]any)
	_, start := blocked["start"]
	_, job := other["xo:backup:job"]
	return start && job
}

// replicatedSize is the usage of the VDIs of SRs attached to replica VMs,
// with their parents, each counted once (XO's calculateReplicatedSize).
func replicatedSize(pool *xo.Pool, sr xo.Object) float64 {
	seen := map[string]bool{}
	var size func(id string) float64
	size = func(id string) float64 {
		if id == "" || seen[id] {
			return 0
		}
		vdi, err := pool.Object("VDI", id)
		if err != nil {
			if vdi, err = pool.Object("VDI-snapshot", id); err != nil {
				return 0
			}
		}
		seen[id] = true
		total := 0.0
		if replicaDisk(pool, vdi) {
			total = num(vdi["usage"])
		}
		parent, _ := vdi["parent"].(string)
		return total + size(parent)
	}
	total := 0.0
	for _, id := range stringsOf(sr["VDIs"]) {
		total += size(id)
	}
	return total
}

// replicaDisk reports whether the first VBD of vdi that names a VM plugs
// it into a replica (XO's isReplicaVmInVdb).
func replicaDisk(pool *xo.Pool, vdi xo.Object) bool {
	for _, id := range stringsOf(vdi["$VBDs"]) {
		vbd, err := pool.Object("VBD", id)
		if err != nil {
			continue
		}
		vm, err := pool.Object("VM", idString(vbd["VM"]))
		if err != nil {
			return false
		}
		return isReplica(vm)
	}
	return false
}

// stringsOf is a JSON list of strings.
func stringsOf(v any) []string {
	var out []string
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// alarmIDs are the ids of the alarms of pool whose object is uuid ("" for
// every alarm of the pool).
func alarmIDs(pool *xo.Pool, uuid string) []string {
	ids := []string{}
	var of func(xo.Object, string) bool
	for _, sub := range relatedCollections() {
		if sub.name == "alarms" {
			of = sub.of
		}
	}
	for _, a := range pool.Objects("alarm") {
		if uuid == "" || of(a, uuid) {
			ids = append(ids, idString(a["id"]))
		}
	}
	return ids
}

// globalDashboard answers GET /dashboard.
func (s *server) globalDashboard(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.pools()
	if err != nil {
		return err
	}
	if err := pools.Fresh(r.Context()); err != nil {
		return err
	}
	var hosts, vms, srs []xo.Object
	var nCPUs, memory, srSize, used, replicated float64
	for _, p := range pools.All() {
		for _, po := range p.Objects("pool") {
			if cpus, ok := po["cpus"].(map[string]any); ok {
				nCPUs += num(cpus["cores"])
			}
		}
		ph := p.Objects("host")
		hosts = append(hosts, ph...)
		for _, h := range ph {
			if m, ok := h["memory"].(map[string]any); ok {
				memory += num(m["size"])
			}
		}
		vms = append(vms, p.Objects("VM")...)
		for _, sr := range p.Objects("SR") {
			if !srWritable(sr) {
				continue
			}
			srs = append(srs, sr)
			srSize += num(sr["size"])
			used += num(sr["physical_usage"])
			replicated += replicatedSize(p, sr)
		}
	}
	d := newDashboard(w, r)
	nPools := len(pools.All())
	resources := map[string]any{"nCpus": nCPUs, "memorySize": memory, "srSize": srSize}
	if nPools == 0 && len(hosts) == 0 && len(srs) == 0 {
		resources = map[string]any{"isEmpty": true}
	}
	storage := map[string]any{"size": map[string]any{"available": srSize - used, "other": used - replicated, "replicated": replicated, "total": srSize, "used": used}}
	if len(srs) == 0 {
		storage = map[string]any{"isEmpty": true}
	}
	for _, p := range []struct {
		key   string
		value any
	}{
		{"nPools", nPools}, {"nHosts", len(hosts)}, {"hostsStatus", hostsStatus(hosts)},
		{"resourcesOverview", resources}, {"vmsStatus", vmsStatus(vms)}, {"storageRepositories", storage},
	} {
		if err := d.part(p.value, p.key); err != nil {
			return err
		}
	}
	missing := map[string]any{"hasAuthorization": true, "nHosts": len(hosts), "nPools": nPools}
	nFailed, nWith, nPoolsWith := 0, 0, 0
	for _, p := range pools.All() {
		pp := listPoolPatches(r.Context(), p)
		nFailed += pp.failed
		nWith += pp.withPatch
		if pp.withPatch > 0 {
			nPoolsWith++
		}
	}
	missing["nHostsFailed"], missing["nHostsWithMissingPatches"], missing["nPoolsWithMissingPatches"] = nFailed, nWith, nPoolsWith
	if err := d.part(missing, "missingPatches"); err != nil {
		return err
	}
	return d.done()
}

// poolDashboard answers GET /pools/{id}/dashboard.
func (s *server) poolDashboard(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.pools()
	if err != nil {
		return err
	}
	obj, pool, err := pools.Object(r.Context(), "pool", r.PathValue("id"))
	if err != nil {
		return err
	}
	hosts := pool.Objects("host")
	vms := pool.Objects("VM")
	vmSt := vmsStatus(vms)
	hostSt := hostsStatus(hosts)
	delete(hostSt, "unknown")
	for _, k := range []string{"active", "inactive", "unknown"} {
		delete(vmSt, k)
	}
	srUsage := []map[string]any{}
	for _, sr := range pool.Objects("SR") {
		if !srWritable(sr) || sr["SR_type"] == "udev" {
			continue
		}
		srUsage = append(srUsage, map[string]any{"name_label": sr["name_label"], "id": sr["id"],
			"percent": usagePercent(num(sr["physical_usage"]), num(sr["size"])), "physical_usage": sr["physical_usage"], "size": sr["size"]})
	}
	ram := []map[string]any{}
	for _, h := range hosts {
		if h["power_state"] != "Running" {
			continue
		}
		m, _ := h["memory"].(map[string]any)
		ram = append(ram, map[string]any{"name_label": h["name_label"], "id": h["id"],
			"size": num(m["size"]), "usage": num(m["usage"]), "percent": usagePercent(num(m["usage"]), num(m["size"]))})
	}
	assigned := 0.0
	for _, vm := range vms {
		if vm["power_state"] != "Running" {
			continue
		}
		if cpus, ok := vm["CPUs"].(map[string]any); ok {
			assigned += num(cpus["number"])
		}
	}
	total := 0.0
	if cpus, ok := obj["cpus"].(map[string]any); ok {
		total = num(cpus["cores"])
	}
	d := newDashboard(w, r)
	for _, p := range []struct {
		path  []string
		value any
	}{
		{[]string{"hosts", "status"}, hostSt},
		{[]string{"vms", "status"}, vmSt},
		{[]string{"alarms"}, alarmIDs(pool, "")},
		{[]string{"srs", "topFiveUsage"}, topFive(srUsage)},
		{[]string{"hosts", "topFiveUsage", "ram"}, topFive(ram)},
		{[]string{"cpuProvisioning"}, map[string]any{"total": total, "assigned": assigned, "percent": usagePercent(assigned, total)}},
	} {
		if err := d.part(p.value, p.path...); err != nil {
			return err
		}
	}
	pp := listPoolPatches(r.Context(), pool)
	var missing any = map[string]any{"hasAuthorization": true, "missingPatches": mergePatches(pp.lists...)}
	if pp.failed > 0 && pp.failed == len(pp.errs) {
		s.log.WarnContext(r.Context(), "dashboard: listing the missing patches failed", "pool", r.PathValue("id"), "error", pp.errs[0].Error())
		missing = map[string]any{"error": true}
	}
	if err := d.part(missing, "hosts", "missingPatches"); err != nil {
		return err
	}
	return d.done()
}

// vmDashboard answers GET /vms/{id}/dashboard.
func (s *server) vmDashboard(w http.ResponseWriter, r *http.Request) error {
	vm, pool, _, err := s.target(r.Context(), "VM", r.PathValue("id"))
	if err != nil {
		return err
	}
	d := newDashboard(w, r)
	if err := d.part(vmQuickInfo(vm), "quickInfo"); err != nil {
		return err
	}
	uuid, _ := vm["uuid"].(string)
	if err := d.part(alarmIDs(pool, uuid), "alarms"); err != nil {
		return err
	}
	return d.done()
}

// vmQuickInfo is XO's getDashboardQuickInfo of vm.
func vmQuickInfo(vm xo.Object) map[string]any {
	sub := func(key, field string) any {
		if m, ok := vm[key].(map[string]any); ok {
			return m[field]
		}
		return nil
	}
	q := map[string]any{
		"id":                vm["id"],
		"power_state":       vm["power_state"],
		"uuid":              vm["uuid"],
		"name_description":  vm["name_description"],
		"CPUs":              map[string]any{"number": sub("CPUs", "number")},
		"os_version":        map[string]any{},
		"memory":            map[string]any{"size": sub("memory", "size")},
		"creation":          map[string]any{},
		"$pool":             vm["$pool"],
		"tags":              vm["tags"],
		"pvDriversDetected": vm["pvDriversDetected"] == true,
	}
	if v := sub("os_version", "name"); v != nil {
		q["os_version"] = map[string]any{"name": v}
	}
	creation := map[string]any{}
	if v := sub("creation", "date"); v != nil {
		creation["date"] = v
	}
	if v := sub("creation", "user"); v != nil {
		creation["user"] = v
	}
	q["creation"] = creation
	for _, k := range []string{"mainIpAddress", "virtualizationMode", "pvDriversVersion", "pvDriversUpToDate", "startTime"} {
		if v, ok := vm[k]; ok {
			q[k] = v
		}
	}
	if c, ok := vm["$container"]; ok && c != vm["$pool"] {
		q["host"] = c
	}
	return q
}
