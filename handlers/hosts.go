package handlers

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// The routes of hosts (and pools) that are neither collections nor
// actions: the host's files served by XAPI, SMT and the missing patches
// (reference §E.6, §H.1). Like every route they require authentication,
// where XO lets any user with the host's privilege in.

// hostRoutes returns the host routes and GET /pools/{id}/missing_patches,
// and the dashboards (dashboard.go).
func (s *server) hostRoutes() []route {
	hosts := BasePath + "/hosts/{id}"
	routes := []route{
		{
			method: "GET", pattern: hosts + "/audit.txt", handler: s.hostAuditLog, tag: "hosts",
			summary: "Download the host's XAPI audit log (XAPI GET /audit_log; gzip-encoded when Accept-Encoding allows)",
			resp:    respDoc{description: "The audit log lines, as an attachment named <host name>-<ISO date>-audit.txt (XO 0.39 names every file after its documentation example, \"XCP XO 8.3.0 master\": not copied)", types: []string{"application/octet-stream"}},
		},
		{
			method: "GET", pattern: hosts + "/logs.tgz", handler: s.hostLogs, tag: "hosts",
			summary: "Download the host's logs (XAPI GET /host_logs_download)",
			resp:    respDoc{description: "A tar.gz of the host's logs", types: []string{"application/gzip"}},
		},
		{
			method: "GET", pattern: hosts + "/smt", handler: s.hostSMT, tag: "hosts",
			summary: "Whether simultaneous multithreading (hyper-threading) is enabled on the host",
			resp:    respDoc{description: "{enabled}: cpu_info threads_per_core > 1, else the hyperthreading.py plugin; false without either", schema: smtSchema},
		},
		{
			method: "GET", pattern: hosts + "/missing_patches", handler: s.hostMissingPatches, tag: "hosts",
			summary: "The updates available to an XCP-ng host (updater.py check_update, retried while busy; no XOA licence needed; 501 for other hosts)",
			resp:    respDoc{description: "The packages yum would update", schema: patchesSchema},
		},
		{
			method: "GET", pattern: BasePath + "/pools/{id}/missing_patches", handler: s.poolMissingPatches, tag: "pools",
			summary: "The updates available to the XCP-ng hosts of the pool, de-duplicated (hosts that fail are left out)",
			resp:    respDoc{description: "The packages yum would update on any host of the pool", schema: patchesSchema},
		},
	}
	return append(routes, s.dashboardRoutes()...)
}

var (
	smtSchema = map[string]any{"type": "object", "properties": map[string]any{"enabled": map[string]any{"type": "boolean"}}}
	// patchesSchema is XCP-ng's updater.py package entry.
	patchesSchema = map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
		"name": map[string]any{"type": "string"}, "version": map[string]any{"type": "string"}, "release": map[string]any{"type": "string"},
		"description": map[string]any{"type": "string"}, "changelog": map[string]any{"type": "object", "nullable": true},
		"url": map[string]any{"type": "string"}, "size": map[string]any{"type": "integer"}, "license": map[string]any{"type": "string"},
	}}}
)

// host returns the host id and its pool and ref.
func (s *server) host(ctx context.Context, id string) (xo.Object, *xo.Pool, xapi.Ref, error) {
	return s.target(ctx, "host", id)
}

// openHostFile opens XAPI's GET path on the host id, inside a task
// labelled label. The host must be running. XAPI answers these paths for
// the host that receives the request, so it is sent to that host: the
// pool URL for the master, the member's own address otherwise
// (xapi.Client.GetExportFrom).
func (s *server) openHostFile(ctx context.Context, id, path, label string) (xo.Object, *xapi.Download, error) {
	obj, pool, ref, err := s.host(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if obj["power_state"] != "Running" {
		return nil, nil, IncorrectState(map[string]any{"object": id, "property": "power_state", "actual": obj["power_state"], "expected": "Running"})
	}
	d, err := pool.Client().GetExportFrom(ctx, ref, path, nil, label)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s of host %s: %w", path, id, err)
	}
	return obj, d, nil
}

// hostAuditLog answers GET /hosts/{id}/audit.txt: XAPI's audit log of the
// host, as XO 0.39 serves it (application/octet-stream, an attachment,
// gzip-encoded when the client accepts gzip or x-gzip), except that the
// file is named after the host (XO names it after its documentation
// example, "XCP XO 8.3.0 master"). A client that leaves cancels the XAPI
// task.
func (s *server) hostAuditLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	obj, d, err := s.openHostFile(r.Context(), id, "/audit_log", "xorest: audit log of host "+id)
	if err != nil {
		return err
	}
	defer d.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", attachment(nameOf(obj, id)+"-"+s.now().UTC().Format("2006-01-02T15:04:05.000Z"), "-audit.txt"))
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		return s.stream(w, r, d, -1)
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(http.StatusOK)
	zw := gzip.NewWriter(w)
	n, err := copyLarge(zw, d)
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return s.abortStream(r, err, n)
	}
	return nil
}

// acceptsGzip reports whether Accept-Encoding values name gzip or x-gzip,
// as XO's maybeCompressResponse reads them, except that a q-value of 0
// (RFC 9110: not acceptable) refuses it, where XO compresses anyway.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				if q, ok := strings.CutPrefix(strings.ReplaceAll(strings.ToLower(params), " ", ""), "q="); ok {
					if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
						continue
					}
				}
				return true
			}
		}
	}
	return false
}

// hostLogs answers GET /hosts/{id}/logs.tgz: the archive XAPI's
// logs-download script makes, as application/gzip (and, unlike XO, as an
// attachment named <host name>-<ISO date>-logs.tgz).
func (s *server) hostLogs(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	obj, d, err := s.openHostFile(r.Context(), id, "/host_logs_download", "xorest: logs of host "+id)
	if err != nil {
		return err
	}
	defer d.Close()
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", attachment(nameOf(obj, id)+"-"+s.now().UTC().Format("2006-01-02T15:04:05.000Z"), "-logs.tgz"))
	return s.stream(w, r, d, -1)
}

// hostSMT answers GET /hosts/{id}/smt with {"enabled": bool}, as XO 0.39:
// host.cpu_info threads_per_core > 1 when XAPI has it (XCP-ng 8.3 and
// later), else the hyperthreading.py plugin's answer other than "false";
// a host with neither (plugin or function missing) is false, XO's
// Boolean(null).
func (s *server) hostSMT(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	obj, pool, ref, err := s.host(r.Context(), id)
	if err != nil {
		return err
	}
	enabled, err := smtEnabled(r.Context(), pool.Client(), obj, ref)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]bool{"enabled": enabled})
}

// smtEnabled is xo-server's isHyperThreadingEnabled, with null as false.
func smtEnabled(ctx context.Context, xc *xapi.Client, host xo.Object, ref xapi.Ref) (bool, error) {
	if cpu, ok := host["CPUs"].(map[string]any); ok {
		if v, ok := cpu["threads_per_core"]; ok {
			n, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
			return n > 1, nil
		}
	}
	var out string
	err := xc.CallInto(ctx, &out, "host.call_plugin", ref, "hyperthreading.py", "get_hyperthreading", map[string]any{})
	if xe, ok := errors.AsType[*xapi.Error](err); ok && (xe.Code == "XENAPI_MISSING_PLUGIN" || xe.Code == "UNKNOWN_XENAPI_PLUGIN_FUNCTION") {
		return false, nil
	}
	if err != nil {
		return false, pluginError(idString(host["id"]), "get_hyperthreading", err)
	}
	return out != "false", nil
}

// pluginError is the error of a host.call_plugin on host id that failed:
// a 409 for a host that is offline (XAPI's HOST_OFFLINE), else err.
func pluginError(id, fn string, err error) error {
	if xe, ok := errors.AsType[*xapi.Error](err); ok && xe.Code == "HOST_OFFLINE" {
		return &Error{Kind: ErrIncorrectState, Message: "host " + id + " is offline", Err: err}
	}
	return fmt.Errorf("%s on host %s: %w", fn, id, err)
}

// Retries of check_update while the updater plugin is busy, as XO's
// _listXcpUpdates (pRetry: 10 tries, 2 s apart).
const (
	updaterTries = 10
	updaterDelay = 2 * time.Second
)

// updaterBusy matches the message of the fault updater.py raises while
// another of its operations holds its lock (code "-1").
var updaterBusy = regexp.MustCompile(`(?i)plugin is busy`)

// isUpdaterBusy is XO's isUpdaterBusyError.
func isUpdaterBusy(err error) bool {
	xe, ok := errors.AsType[*xapi.Error](err)
	return ok && xe.Code == "-1" && len(xe.Params) > 0 && updaterBusy.MatchString(xe.Params[0])
}

// hostPatches returns the updates available to the XCP-ng host, from
// host.call_plugin(host, "updater.py", "check_update", {}), retried while
// the plugin is busy. Other hosts are a 501: XenServer's updates come from
// updates.ops.xenserver.com or XenServer's CDN, not XAPI. A halted host
// is a 409; an XCP-ng host without the plugin a 501.
func hostPatches(ctx context.Context, xc *xapi.Client, host xo.Object, ref xapi.Ref) ([]map[string]any, error) {
	id, _ := host["id"].(string)
	if host["productBrand"] != "XCP-ng" {
		return nil, NotImplemented(fmt.Sprintf("listing the missing patches of %v hosts needs their vendor's update service, not XAPI: only XCP-ng hosts are supported", host["productBrand"]))
	}
	if host["power_state"] != "Running" {
		return nil, IncorrectState(map[string]any{"object": id, "property": "power_state", "actual": host["power_state"], "expected": "Running"})
	}
	var out string
	var err error
	for try := 1; ; try++ {
		err = xc.CallInto(ctx, &out, "host.call_plugin", ref, "updater.py", "check_update", map[string]any{})
		if !isUpdaterBusy(err) || try == updaterTries {
			break
		}
		t := time.NewTimer(updaterDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("check_update on host %s: %w", id, context.Cause(ctx))
		case <-t.C:
		}
	}
	if xe, ok := errors.AsType[*xapi.Error](err); ok && (xe.Code == "XENAPI_MISSING_PLUGIN" || xe.Code == "UNKNOWN_XENAPI_PLUGIN_FUNCTION") {
		return nil, &Error{Kind: ErrNotImplemented, Message: "host " + id + " has no updater.py check_update plugin", Err: err}
	}
	if err != nil {
		return nil, pluginError(id, "check_update", err)
	}
	return parseUpdates(out)
}

// parseUpdates decodes check_update's answer: a JSON list of packages, or
// an object whose error member says what failed.
func parseUpdates(out string) ([]map[string]any, error) {
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("check_update answered no JSON: %w", err)
	}
	switch v := v.(type) {
	case []any:
		pkgs := make([]map[string]any, 0, len(v))
		for _, p := range v {
			m, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("check_update: package %v is not an object", p)
			}
			pkgs = append(pkgs, m)
		}
		return pkgs, nil
	case map[string]any:
		if e, ok := v["error"]; ok && e != nil {
			return nil, fmt.Errorf("check_update: %v", e)
		}
	}
	return nil, fmt.Errorf("check_update answered neither a list nor an error: %.100s", out)
}

// mergePatches de-duplicates lists of patches by id, or name without an
// id, as XO 0.39's getMissingPatchesInfo (a Map keyed so: the first
// position, the last value).
func mergePatches(lists ...[]map[string]any) []map[string]any {
	out := []map[string]any{}
	at := map[string]int{}
	for _, l := range lists {
		for _, p := range l {
			key := fmt.Sprint(p["name"])
			if id, ok := p["id"]; ok && id != nil {
				key = "id:" + fmt.Sprint(id)
			} else {
				key = "name:" + key
			}
			if i, ok := at[key]; ok {
				out[i] = p
				continue
			}
			at[key] = len(out)
			out = append(out, p)
		}
	}
	return out
}

// hostMissingPatches answers GET /hosts/{id}/missing_patches. There is no
// XOA licence check (XO's LIST_MISSING_PATCHES feature) and no 60-second
// debounce: every request asks the host.
func (s *server) hostMissingPatches(w http.ResponseWriter, r *http.Request) error {
	obj, pool, ref, err := s.host(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	pkgs, err := hostPatches(r.Context(), pool.Client(), obj, ref)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, mergePatches(pkgs))
}

// poolPatches is the outcome of listing the missing patches of each host
// of a pool.
type poolPatches struct {
	lists     [][]map[string]any // per host, nil for the hosts that failed
	errs      []error            // per host
	withPatch int                // hosts with at least one missing patch
	failed    int                // hosts whose listing failed
}

// listPoolPatches lists the missing patches of every host of pool, in
// parallel.
func listPoolPatches(ctx context.Context, pool *xo.Pool) poolPatches {
	hosts := pool.Objects("host")
	pp := poolPatches{lists: make([][]map[string]any, len(hosts)), errs: make([]error, len(hosts))}
	var wg sync.WaitGroup
	for i, h := range hosts {
		ref, ok := pool.Ref(idString(h["id"]))
		if !ok {
			pp.errs[i] = NotFound("host", idString(h["id"]))
			continue
		}
		wg.Go(func() { pp.lists[i], pp.errs[i] = hostPatches(ctx, pool.Client(), h, ref) })
	}
	wg.Wait()
	for i, err := range pp.errs {
		switch {
		case err != nil:
			pp.failed++
		case len(pp.lists[i]) > 0:
			pp.withPatch++
		}
	}
	return pp
}

// poolMissingPatches answers GET /pools/{id}/missing_patches: the union of
// the missing patches of the pool's hosts, de-duplicated as XO does. As in
// XO, hosts whose listing fails are left out (and logged); when every host
// fails, the first failure is the answer (a pool of XenServer hosts: 501).
func (s *server) poolMissingPatches(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.pools()
	if err != nil {
		return err
	}
	pool, err := pools.Pool(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	pp := listPoolPatches(r.Context(), pool)
	if pp.failed > 0 && pp.failed == len(pp.errs) {
		return pp.errs[0]
	}
	for _, err := range pp.errs {
		if err != nil {
			s.log.WarnContext(r.Context(), "listing the missing patches of a host failed", "pool", r.PathValue("id"), "error", err.Error())
		}
	}
	return writeJSON(w, http.StatusOK, mergePatches(pp.lists...))
}
