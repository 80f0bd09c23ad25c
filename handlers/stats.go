package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// Stats routes (XO's xapi-stats.mjs behind the REST controllers): the RRD
// figures of hosts, VMs and pools, read from XAPI's /rrd_updates on each
// request (nothing is cached across requests).

// granularity is one value of the granularity query parameter: the RRD
// step asked of XAPI and the number of points XO asks for.
type granularity struct {
	step, points int64
}

// granularities are XO's RRD_STEP_FROM_STRING and RRD_POINTS_PER_STEP.
var granularities = map[string]granularity{
	"seconds": {5, 120},
	"minutes": {60, 120},
	"hours":   {3600, 168},
	"days":    {86400, 366},
}

// granularityEnum is the tsoa enum message of a bad granularity.
const granularityEnum = "should be one of the following; ['seconds','minutes','hours','days']"

// statsSchema documents a stats answer.
var statsSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"endTimestamp": map[string]any{"type": "number", "description": "Time of the last point (Unix seconds)"},
		"interval":     map[string]any{"type": "number", "description": "Seconds between points"},
		"stats":        map[string]any{"type": "object", "description": "Series of values, oldest first (null: unknown), by metric"},
	},
}

// statsRoutes returns the stats routes of hosts, VMs and pools, and the
// VM data source routes.
func (s *server) statsRoutes() []route {
	const summary = " (granularity: seconds, minutes, hours or days)"
	ds := BasePath + "/vms/{id}/stats/data_source/{ds}"
	return []route{
		{
			method: "GET", pattern: BasePath + "/hosts/{id}/stats", handler: s.hostStats, tag: "hosts",
			params:  []string{"granularity"},
			summary: "Statistics of one host" + summary,
			resp:    respDoc{description: "The host's series", schema: statsSchema},
		},
		{
			method: "GET", pattern: BasePath + "/vms/{id}/stats", handler: s.vmStats, tag: "vms",
			params:  []string{"granularity"},
			summary: "Statistics of one running VM (a halted VM is a 422)" + summary,
			resp:    respDoc{description: "The VM's series", schema: statsSchema},
		},
		{
			method: "GET", pattern: BasePath + "/pools/{id}/stats", handler: s.poolStats, tag: "pools",
			params:  []string{"granularity"},
			summary: "Statistics of every host of one pool, by host uuid ({\"error\"} for a host that failed)" + summary,
			resp:    respDoc{description: "The series of each host", schema: map[string]any{"type": "object", "additionalProperties": statsSchema}},
		},
		{
			method: "PUT", pattern: ds, handler: s.dataSource("VM.record_data_source"), tag: "vms",
			summary: "Start recording a data source of a running VM (e.g. cpu_usage, runstate_blocked, vbd_xvda_iops_total)",
			resp:    noContent("The data source is recorded"),
		},
		{
			method: "DELETE", pattern: ds, handler: s.dataSource("VM.forget_data_source_archives"), tag: "vms",
			summary: "Forget the archives of a data source of a VM",
			resp:    noContent("The data source's archives are dropped"),
		},
	}
}

// granularityOf returns the granularity of r's query (parsed and checked
// with the route's parameters: a 422 for any value but XO's four), seconds
// when absent.
func granularityOf(r *http.Request) granularity {
	name := queryOf(r).Granularity
	if name == "" {
		name = "seconds"
	}
	return granularities[name]
}

// hostStats answers GET /hosts/{id}/stats.
func (s *server) hostStats(w http.ResponseWriter, r *http.Request) error {
	g := granularityOf(r)
	ctx := r.Context()
	_, pool, ref, err := s.target(ctx, "host", r.PathValue("id"))
	if err != nil {
		return err
	}
	stats, err := fetchStats(ctx, pool, ref, "host", recordUUID(pool, ref), g)
	if err != nil {
		return err
	}
	return writeStats(w, marshalStats(stats))
}

// vmStats answers GET /vms/{id}/stats: the VM's figures from the host it
// is resident on.
func (s *server) vmStats(w http.ResponseWriter, r *http.Request) error {
	g := granularityOf(r)
	ctx := r.Context()
	id := r.PathValue("id")
	obj, pool, ref, err := s.target(ctx, "VM", id)
	if err != nil {
		return err
	}
	host := residentOn(pool, ref)
	if host == "" {
		// XO: incorrectState on resident_on, turned into a 422.
		return InvalidParameters("VM "+id+" is halted or host could not be found.", map[string]any{
			"errors": map[string]any{
				"code": 25,
				"data": map[string]any{"expected": "<host-uuid>", "object": obj, "property": "resident_on"},
			},
		})
	}
	stats, err := fetchStats(ctx, pool, host, "vm", recordUUID(pool, ref), g)
	if err != nil {
		return err
	}
	return writeStats(w, marshalStats(stats))
}

// poolStats answers GET /pools/{id}/stats: the stats of each host of the
// pool by host uuid, {"error": …} for a host whose stats failed.
func (s *server) poolStats(w http.ResponseWriter, r *http.Request) error {
	g := granularityOf(r)
	ctx := r.Context()
	_, pool, _, err := s.target(ctx, "pool", r.PathValue("id"))
	if err != nil {
		return err
	}
	hosts := pool.Objects("host")
	results := make([]any, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		id := idString(h["id"])
		ref, ok := pool.Ref(id)
		if !ok {
			results[i] = statsError(NotFound("host", id))
			continue
		}
		wg.Go(func() {
			stats, err := fetchStats(ctx, pool, ref, "host", id, g)
			if err != nil {
				s.log.DebugContext(ctx, "host stats", "host", id, "err", err)
				results[i] = statsError(err)
				return
			}
			results[i] = stats
		})
	}
	wg.Wait()
	out := &jsObject{}
	for i, h := range hosts {
		out.set(idString(h["id"]), results[i])
	}
	return writeStats(w, marshalStats(out))
}

// statsError is the {"error": …} member of a host whose stats failed: the
// message and data of the error body the route would have answered
// (XO serializes the error object itself).
func statsError(err error) *jsObject {
	status, body := describe(err)
	e := &jsObject{}
	e.set("message", body.Error)
	e.set("status", float64(status))
	if body.Data != nil {
		e.set("data", body.Data)
	}
	o := &jsObject{}
	o.set("error", e)
	return o
}

// dataSource answers PUT and DELETE /vms/{id}/stats/data_source/{ds} with
// method(vm, ds): 204.
func (s *server) dataSource(method string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		_, pool, ref, err := s.target(ctx, "VM", r.PathValue("id"))
		if err != nil {
			return err
		}
		ds := r.PathValue("ds")
		if _, err := pool.Client().Call(ctx, method, ref, ds); err != nil {
			return fmt.Errorf("%s %s %s: %w", method, ref, ds, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// writeStats writes a stats answer.
func writeStats(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", contentJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("writing stats: %w", err)
	}
	return nil
}

// recordUUID returns the uuid of the cached record ref.
func recordUUID(pool *xo.Pool, ref xapi.Ref) string {
	_, rec, _ := pool.Record(ref)
	u, _ := rec["uuid"].(string)
	return u
}

// refField returns a ref field of a cached record ("" for none or NULL).
func refField(pool *xo.Pool, ref xapi.Ref, field string) xapi.Ref {
	_, rec, _ := pool.Record(ref)
	var r xapi.Ref
	switch v := rec[field].(type) {
	case xapi.Ref:
		r = v
	case string:
		r = xapi.Ref(v)
	}
	if r == "" || r == "OpaqueRef:NULL" {
		return ""
	}
	return r
}

// residentOn returns the host a VM is resident on (XO's $resident_on), or
// "" when it has none or the host is not known.
func residentOn(pool *xo.Pool, vm xapi.Ref) xapi.Ref {
	host := refField(pool, vm, "resident_on")
	if host == "" {
		return ""
	}
	if class, _, ok := pool.Record(host); !ok || class != "host" {
		return ""
	}
	return host
}

// fetchStats reads the RRD updates of host, from host itself, for
// granularity g and maps the
// figures of the object uuid of type typ, as XO's _getAndUpdateStats:
// host.get_servertime, then /rrd_updates from one step after now - step ×
// points.
func fetchStats(ctx context.Context, pool *xo.Pool, host xapi.Ref, typ, uuid string, g granularity) (*jsObject, error) {
	c := pool.Client()
	res, err := c.Call(ctx, "host.get_servertime", host)
	if err != nil {
		return nil, fmt.Errorf("host.get_servertime %s: %w", host, err)
	}
	now, err := serverTime(res)
	if err != nil {
		return nil, err
	}
	query := url.Values{
		"cf":       {"AVERAGE"},
		"host":     {"true"},
		"interval": {strconv.FormatInt(g.step, 10)},
		"json":     {"true"},
		"start":    {strconv.FormatInt(now-g.step*g.points+g.step, 10)},
	}
	// XAPI answers /rrd_updates from the xcp-rrdd of the host the request
	// reaches: the request goes to host itself (the pool URL for the
	// master, the member's address otherwise).
	d, err := c.GetExportFrom(ctx, host, "/rrd_updates", query, "xorest stats")
	if err != nil {
		return nil, fmt.Errorf("GET /rrd_updates: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(d, maxRRDBytes+1))
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("GET /rrd_updates: %w", err)
	}
	if len(data) > maxRRDBytes {
		return nil, fmt.Errorf("GET /rrd_updates: answer larger than %d bytes", maxRRDBytes)
	}
	doc, err := parseRRDUpdates(data)
	if err != nil {
		return nil, err
	}
	return xoStats(doc, typ, uuid, g.step, now)
}

// serverTime converts host.get_servertime's answer to Unix seconds (XO's
// parseDateTime).
func serverTime(v any) (int64, error) {
	switch v := v.(type) {
	case time.Time:
		return v.Unix(), nil
	case string:
		for _, layout := range []string{"20060102T15:04:05Z", "2006-01-02T15:04:05Z", time.RFC3339, "20060102T15:04:05"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.Unix(), nil
			}
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("host.get_servertime: unexpected answer %v", v)
}
