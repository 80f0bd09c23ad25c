package xapisim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
)

// Hosts of the pool on the data plane.
//
// In a pool, an SR that is not shared (a host's local storage) is plugged
// on one host only, and only that host can read or write its VDIs. The
// pool master answers the transfer handlers for such objects with a
// redirect to the host that can (xen-api, ocaml/xapi):
//
//   - /export (export.ml handler): when the host cannot see every SR of
//     the VM (Importexport.check_vm_host_SRs: the SRs of its non-empty
//     VBDs, plus the suspend VDI's when Suspended), find_host_for_VM;
//   - /export_raw_vdi (export_raw_vdi.ml export_raw) and /import_raw_vdi
//     (import_raw_vdi.ml import): when the host cannot see the SR of the
//     vdi parameter (or, for an import without vdi, of sr_id/sr_uuid),
//     Importexport.find_host_for_sr;
//   - /import (import.ml handler): the same for sr_id, sr_uuid or the
//     pool's default SR.
//
// "Can see" is Xapi_vm_helpers.which_specified_SRs_not_available_on_host:
// a PBD of the host for the SR with currently_attached. The chosen host
// is a live one that sees the SRs (at random if several). The redirect is
// Http.http_302_redirect, written before the body is read and without
// touching the request's task: "HTTP/1.1 302 Found", "Connection: close",
// "Cache-Control: no-cache, no-store" and "Location:
// https://<host.address><path>?<query>" (Importexport.return_302_redirect:
// the query of the request, session_id and task_id included, cookies not),
// then the connection is closed. The credentials are checked first
// (Xapi_http.assert_credentials_ok): a request without them gets 401, not
// a redirect.
//
// The simulator serves every host from one process and one database: the
// pool URL (ServeHTTP, Start) is the master, and StartHost gives another
// host a listener of its own. Redirects only go to hosts that have one, so
// a model whose objects are on members' local SRs behaves as before
// unless those hosts are started. As a listener cannot be on port 443 of
// the host's address, the Location names the listener's scheme and port
// with the host's address (StartHost sets host.address to the listener's
// IP): "https://127.0.0.1:40123/import_raw_vdi?...". A request that a host
// cannot serve and no started host can is served where it arrived, as
// before. The member listener answers RPCs too, on the shared database.

// HostEndpoint is the HTTP listener of one host of the pool, made by
// StartHost.
type HostEndpoint struct {
	// Host is the host's ref.
	Host string
	// URL is the listener's base URL, e.g. "https://127.0.0.1:40123/".
	URL string
	// Certificate is the DER certificate of a TLS listener (nil for plain
	// HTTP), and CertificatePEM the same in PEM.
	Certificate    []byte
	CertificatePEM string

	srv    *http.Server
	dp     *dataPlane
	once   sync.Once
	served atomic.Int64
}

// Served is the number of data-plane requests (/export, /import,
// /export_raw_vdi, /import_raw_vdi) the listener has received.
func (e *HostEndpoint) Served() int64 { return e.served.Load() }

// Close stops the listener, and the master no longer redirects to the
// host.
func (e *HostEndpoint) Close(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		e.dp.mu.Lock()
		delete(e.dp.endpoints, e.Host)
		e.dp.mu.Unlock()
		err = e.srv.Shutdown(ctx)
	})
	return err
}

// hostEndpoint is how a started host is reached: the scheme and port of
// its listener (the address is the host record's).
type hostEndpoint struct{ scheme, port string }

// localHostKey is the request context key of the host a listener serves.
type localHostKey struct{}

// StartHost serves host (a ref, UUID or name_label), as a pool member with
// its own address, on addr (e.g. "127.0.0.1:0"): its data-plane handlers
// serve the SRs that host sees, and the master's redirect to it. With
// useTLS the listener has a self-signed certificate of its own (valid for
// 127.0.0.1, localhost and the hosts' addresses), as each XAPI host has.
// host.address becomes the listener's IP. Stop it with HostEndpoint.Close
// (Simulator.Close does not).
func (s *Simulator) StartHost(host, addr string, useTLS bool) (*HostEndpoint, error) {
	ref := ""
	s.DB.Read(func(tx *Tx) {
		if _, ok := tx.GetClass("host", host); ok {
			ref = host
			return
		}
		if class, r, ok := tx.ByUUID(host); ok && class == "host" {
			ref = r
			return
		}
		for _, h := range tx.All("host") {
			if rec, _ := tx.GetClass("host", h); str(rec, "name_label") == host {
				ref = h
			}
		}
	})
	if ref == "" {
		return nil, fmt.Errorf("xapisim: StartHost: no host %q", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("xapisim: StartHost: listen %s: %w", addr, err)
	}
	ip, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = s.DB.Write(func(tx *Tx) error {
		setField(tx, ref, "address", ip)
		return nil
	})
	e := &HostEndpoint{Host: ref, dp: s.dataPlane()}
	scheme := "http"
	if useTLS {
		cert, certPEM, err := selfSignedCert(s)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("xapisim: StartHost: certificate: %w", err)
		}
		e.Certificate, e.CertificatePEM = cert.Certificate[0], certPEM
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	e.URL = scheme + "://" + net.JoinHostPort(ip, port) + "/"
	e.srv = &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch trimSlash(r.URL.Path) {
		case "/export", "/import", "/export_raw_vdi", "/import_raw_vdi":
			e.served.Add(1)
		}
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), localHostKey{}, ref)))
	})}
	e.dp.mu.Lock()
	if e.dp.endpoints == nil {
		e.dp.endpoints = map[string]hostEndpoint{}
	}
	e.dp.endpoints[ref] = hostEndpoint{scheme: scheme, port: port}
	e.dp.mu.Unlock()
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return e, nil
}

// localHost is the host that serves r: the one of its listener, else the
// pool master.
func (dp *dataPlane) localHost(r *http.Request) string {
	if h, ok := r.Context().Value(localHostKey{}).(string); ok {
		return h
	}
	return dp.sim.MasterHost()
}

// redirect answers r with XAPI's 302 to the host that sees the SRs of the
// request's object when the host serving r does not and a started host
// does, and reports whether it did. Requests without valid credentials,
// and objects that cannot be resolved, are left to the handler.
func (dp *dataPlane) redirect(w http.ResponseWriter, r *http.Request, path string) bool {
	dp.mu.Lock()
	endpoints := maps.Clone(dp.endpoints)
	dp.mu.Unlock()
	if len(endpoints) == 0 {
		return false
	}
	_, logout, err := dp.sim.HTTPSession(r)
	if err != nil {
		return false
	}
	logout()
	local := dp.localHost(r)
	var location string
	dp.sim.DB.Read(func(tx *Tx) {
		srs := requiredSRs(tx, path, r)
		if len(srs) == 0 || hostSeesSRs(tx, local, srs) {
			return
		}
		hosts := tx.All("host")
		slices.Sort(hosts)
		for _, h := range hosts {
			ep, started := endpoints[h]
			if h == local || !started || !hostLive(tx, h) || !hostSeesSRs(tx, h, srs) {
				continue
			}
			rec, _ := tx.GetClass("host", h)
			u := url.URL{Scheme: ep.scheme, Host: net.JoinHostPort(str(rec, "address"), ep.port), Path: r.URL.Path}
			if q := r.URL.Query(); len(q) > 0 {
				u.RawQuery = q.Encode()
			}
			location = u.String()
			return
		}
	})
	if location == "" {
		return false
	}
	writeRedirect(w, location)
	return true
}

// writeRedirect writes Http.http_302_redirect on the raw connection and
// closes it, as Http_svr.headers and the closing request do: no
// Content-Length, no body.
func writeRedirect(w http.ResponseWriter, location string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Cache-Control", "no-cache, no-store")
		h.Set("Location", location)
		w.WriteHeader(http.StatusFound)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 302 Found\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\nLocation: " + location + "\r\n\r\n")
	_ = brw.Flush()
}

// requiredSRs returns the SRs the host must see to serve the request of
// the transfer path, nil when the object cannot be resolved (the handler
// then answers the error).
func requiredSRs(tx *Tx, path string, r *http.Request) []string {
	param := func(name string) string { return requestParam(r, name) }
	vdiSR := func(id string) []string {
		ref, f := resolveRef(tx, "VDI", id, "")
		if f != nil {
			return nil
		}
		rec, _ := tx.GetClass("VDI", ref)
		return []string{str(rec, "SR")}
	}
	srParam := func() []string {
		if param("sr_id") == "" && param("sr_uuid") == "" {
			return nil
		}
		ref, f := resolveRef(tx, "SR", param("sr_id"), param("sr_uuid"))
		if f != nil {
			return nil
		}
		return []string{ref}
	}
	switch path {
	case "/export":
		vm, f := resolveRef(tx, "VM", param("ref"), param("uuid"))
		if f != nil {
			return nil
		}
		rec, _ := tx.GetClass("VM", vm)
		var vdis []string
		for _, vbd := range strSet(rec, "VBDs") {
			if b, ok := tx.GetClass("VBD", vbd); ok && !boolField(b, "empty") {
				vdis = append(vdis, str(b, "VDI"))
			}
		}
		if str(rec, "power_state") == "Suspended" {
			if v := str(rec, "suspend_VDI"); isRef(v) {
				vdis = append(vdis, v)
			}
		}
		var srs []string
		for _, v := range vdis {
			if vr, ok := tx.GetClass("VDI", v); ok {
				srs = append(srs, str(vr, "SR"))
			}
		}
		return srs
	case "/export_raw_vdi":
		return vdiSR(param("vdi"))
	case "/import_raw_vdi":
		if v := param("vdi"); v != "" {
			return vdiSR(v)
		}
		return srParam()
	case "/import":
		if srs := srParam(); srs != nil || param("sr_id") != "" || param("sr_uuid") != "" {
			return srs
		}
		for _, p := range tx.All("pool") {
			rec, _ := tx.GetClass("pool", p)
			if sr := str(rec, "default_SR"); isRef(sr) {
				return []string{sr}
			}
		}
	}
	return nil
}

// hostSeesSRs reports whether host has an attached PBD for each of srs.
func hostSeesSRs(tx *Tx, host string, srs []string) bool {
	rec, ok := tx.GetClass("host", host)
	if !ok {
		return false
	}
	var seen []string
	for _, pbd := range strSet(rec, "PBDs") {
		if p, ok := tx.GetClass("PBD", pbd); ok && boolField(p, "currently_attached") {
			seen = append(seen, str(p, "SR"))
		}
	}
	for _, sr := range srs {
		if !slices.Contains(seen, sr) {
			return false
		}
	}
	return true
}

// hostLive reports whether host's metrics say it is live.
func hostLive(tx *Tx, host string) bool {
	rec, _ := tx.GetClass("host", host)
	m, ok := tx.GetClass("host_metrics", str(rec, "metrics"))
	return !ok || boolField(m, "live")
}

// boolField returns a bool field of rec.
func boolField(rec Record, field string) bool {
	b, _ := rec[field].(bool)
	return b
}
