package xapisim

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The host's own files that XAPI serves over HTTP, and the updater plugin
// of XCP-ng.
//
// GET /audit_log (xen-api ocaml/xapi/audit_log.ml) streams the lines of
// /var/log/audit.log* of the host that answers, oldest first, as
// text/plain, keeping the lines whose timestamp (the 21 characters after
// the first '[') is not before since= (ISO 8601 with '-' and 'Z' dropped).
// The simulated audit log has one line per session.login_with_password
// audited on this host: the sessions of the registry whose this_host is
// the host, at their validation_time.
//
// GET /host_logs_download (xapi_logs_download.ml) runs the host's
// logs-download script, a tar.gz of /var/log written straight to the
// socket after a bare 200 (no Content-Type). The simulated archive holds
// var/log/audit.log (as above), var/log/xensource.log (one line per VM of
// the registry resident on the host, or halted) and
// etc/xensource-inventory.
//
// Both run in the request's task_id task (or one of their own) and are
// answered for the host that receives the request: a member on its own
// listener (StartHost), else the session's this_host (the master).

// registerHostFiles registers GET /audit_log and GET /host_logs_download
// (with XAPI's prefix matching: a trailing slash is accepted too).
func registerHostFiles(s *Simulator) {
	for _, p := range []string{"/audit_log", "/audit_log/"} {
		s.HandleHTTP("GET "+p, http.HandlerFunc(s.serveAuditLog))
	}
	for _, p := range []string{"/host_logs_download", "/host_logs_download/"} {
		s.HandleHTTP("GET "+p, http.HandlerFunc(s.serveHostLogs))
	}
}

// auditTimestamp is the timestamp format of XAPI's log lines
// (Debug.gettimestring), "20090910T11:31:11.417Z"; since= compares the
// first 21 characters.
const auditTimestamp = "20060102T15:04:05.000Z"

// auditSinceLength is audit_log.ml's line_timestamp_length.
const auditSinceLength = 21

// auditSince is log_timestamp_of_iso8601: since without '-' and 'Z'.
func auditSince(since string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == 'Z' {
			return -1
		}
		return r
	}, since)
}

// auditKept reports whether write_line keeps line for since.
func auditKept(line, since string) bool {
	i := strings.IndexByte(line, '[') + 1
	if len(line) <= auditSinceLength+i {
		return false
	}
	return since == "" || line[i:i+auditSinceLength] >= since
}

// localHost is the host the request's session runs on (XAPI's localhost),
// the master if the session names none.
func localHost(tx *Tx, session string) string {
	if rec, ok := tx.GetClass(sessionClass, session); ok {
		if h := str(rec, "this_host"); h != "" && h != NullRef {
			return h
		}
	}
	for _, p := range tx.All("pool") {
		rec, _ := tx.GetClass("pool", p)
		return str(rec, "master")
	}
	return NullRef
}

// answeringHost is the host whose files answer r: the host of the member
// listener r arrived on (StartHost), else localHost.
func answeringHost(tx *Tx, r *http.Request, session string) string {
	if h, ok := r.Context().Value(localHostKey{}).(string); ok {
		return h
	}
	return localHost(tx, session)
}

// auditLines returns the audit log of host, oldest first.
func auditLines(tx *Tx, host string) []string {
	hrec, _ := tx.GetClass("host", host)
	name := str(hrec, "hostname")
	type entry struct {
		at   time.Time
		line string
	}
	var entries []entry
	for _, ref := range tx.All(sessionClass) {
		rec, _ := tx.GetClass(sessionClass, ref)
		if str(rec, "this_host") != host {
			continue
		}
		at, _ := rec["validation_time"].(time.Time)
		at = at.UTC()
		kind := "LOCAL_SUPERUSER"
		if b, _ := rec["is_local_superuser"].(bool); !b {
			kind = "SUBJECT"
		}
		id := strings.TrimPrefix(ref, "OpaqueRef:")
		if len(id) > 8 {
			id = id[:8]
		}
		entries = append(entries, entry{at, fmt.Sprintf(
			"%s %s xapi: [%s|audit|%s|0 /var/lib/xcp/xapi|session.login_with_password D:%s|audit] ('trackid=%s' '%s' '%s' 'ALLOWED' 'OK' 'API' 'session.login_with_password' (('originator' '%s' '' '')))\n",
			at.Format(time.Stamp), name, at.Format(auditTimestamp), name, id, id, kind, str(rec, "auth_user_name"), str(rec, "originator"))})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.at.Compare(b.at) })
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.line
	}
	return lines
}

// serveAuditLog answers GET /audit_log[?since=...].
func (s *Simulator) serveAuditLog(w http.ResponseWriter, r *http.Request) {
	t := s.dataPlane().begin(w, r, "audit_log_get request")
	if t == nil {
		return
	}
	since := auditSince(t.param("since"))
	var lines []string
	s.DB.Read(func(tx *Tx) { lines = auditLines(tx, answeringHost(tx, r, t.session)) })
	if err := t.respond(w, "HTTP/1.1", "Content-Type", "text/plain"); err != nil {
		t.finish(nil, err)
		return
	}
	var err error
	for _, line := range lines {
		if !auditKept(line, since) {
			continue
		}
		if _, err = io.WriteString(t.writer(), line); err != nil {
			break
		}
		if err = t.progress(int64(len(line))); err != nil {
			break
		}
	}
	t.finish(nil, err)
}

// serveHostLogs answers GET /host_logs_download with a tar.gz of the
// host's logs.
func (s *Simulator) serveHostLogs(w http.ResponseWriter, r *http.Request) {
	t := s.dataPlane().begin(w, r, "Downloading host logs")
	if t == nil {
		return
	}
	var files []hostFile
	s.DB.Read(func(tx *Tx) { files = hostLogFiles(tx, answeringHost(tx, r, t.session), s.Now()) })
	if err := t.respond(w, "HTTP/1.1"); err != nil {
		t.finish(nil, err)
		return
	}
	t.finish(nil, writeHostLogs(t.writer(), files, t.cancelling))
}

// hostFile is one member of the logs archive.
type hostFile struct {
	name    string
	content string
	mtime   time.Time
}

// hostLogFiles returns the members of the logs archive of host.
func hostLogFiles(tx *Tx, host string, now time.Time) []hostFile {
	hrec, _ := tx.GetClass("host", host)
	name := str(hrec, "hostname")
	var xensource strings.Builder
	for _, vm := range tx.All("VM") {
		rec, _ := tx.GetClass("VM", vm)
		if b, _ := rec["is_a_template"].(bool); b {
			continue
		}
		if b, _ := rec["is_control_domain"].(bool); b {
			continue
		}
		if on := str(rec, "resident_on"); on != host && !(on == NullRef || on == "") {
			continue
		}
		fmt.Fprintf(&xensource, "%s %s xapi: [%s|info|%s|0 |xapi_vm|] VM %s (%q) power_state=%s\n",
			now.Format(time.Stamp), name, now.Format(auditTimestamp), name, str(rec, "uuid"), str(rec, "name_label"), str(rec, "power_state"))
	}
	var dom0 string
	if cd := str(hrec, "control_domain"); cd != "" {
		if rec, ok := tx.GetClass("VM", cd); ok {
			dom0 = str(rec, "uuid")
		}
	}
	inventory := fmt.Sprintf("BUILD_NUMBER='%s'\nCONTROL_DOMAIN_UUID='%s'\nINSTALLATION_UUID='%s'\nPRODUCT_BRAND='%s'\nPRODUCT_VERSION='%s'\n",
		strMap(hrec, "software_version")["build_number"], dom0, str(hrec, "uuid"),
		strMap(hrec, "software_version")["product_brand"], strMap(hrec, "software_version")["product_version"])
	return []hostFile{
		{"etc/xensource-inventory", inventory, now},
		{"var/log/audit.log", strings.Join(auditLines(tx, host), ""), now},
		{"var/log/xensource.log", xensource.String(), now},
	}
}

// writeHostLogs writes files as a tar.gz to w, checking cancelled between
// members.
func writeHostLogs(w io.Writer, files []hostFile, cancelled func() bool) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if cancelled() {
			return fmt.Errorf("host logs: %w", NewFault("TASK_CANCELLED"))
		}
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.content)), ModTime: f.mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("host logs: %w", err)
		}
		if _, err := io.WriteString(tw, f.content); err != nil {
			return fmt.Errorf("host logs: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("host logs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("host logs: %w", err)
	}
	return nil
}

// updater.py / check_update (xcp-ng-xapi-plugins): the yum updates of the
// host's enabled repositories, as a JSON list of
// {name, version, release, description, changelog: {date, author,
// description} | null, url, size, license}. The plugin takes the
// updater's operation lock and raises, through error_wrapped,
// XenAPIPlugin.Failure("-1", ["The updater plugin is busy (current
// operation: <op>)", "", <traceback>]) when another operation holds it;
// inject that fault (FaultRule on host.call_plugin) to simulate it.
//
// The simulated repositories carry, for each of the host's xapi and xen
// packages (software_version xapi_build and xen, "<version>-<release>" or
// "<version>"), the next release of the installed version; a host whose
// software_version lacks both has nothing to update.

// UpdaterBusy returns the fault updater.py raises when its operation lock
// is held by op (e.g. "update").
func UpdaterBusy(op string) *Fault {
	return NewFault("-1", "The updater plugin is busy (current operation: "+op+")", "",
		"Traceback (most recent call last):\n  File \"/etc/xapi.d/plugins/xcpngutils/operationlocker.py\", in _raise_busy\nOperationException")
}

// updaterPackage is one entry of check_update's answer.
type updaterPackage struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Release     string            `json:"release"`
	Description string            `json:"description"`
	Changelog   *updaterChangelog `json:"changelog"`
	URL         string            `json:"url"`
	Size        int64             `json:"size"`
	License     string            `json:"license"`
}

// updaterChangelog is the latest changelog entry of a package.
type updaterChangelog struct {
	Date        int64  `json:"date"`
	Author      string `json:"author"`
	Description string `json:"description"`
}

// updaterRepoPackage is a package of the simulated repositories, versioned
// like the software_version key of the host.
type updaterRepoPackage struct {
	key, name, description, url, license string
	size                                 int64
}

// updaterRepoPackages are the packages of the simulated repositories.
func updaterRepoPackages() []updaterRepoPackage {
	return []updaterRepoPackage{
		{"xapi_build", "xapi-core", "xapi - xen toolstack for XCP", "http://github.com/xapi-project/xen-api", "LGPL+linking exception", 9_437_184},
		{"xen", "xen-hypervisor", "The Xen Hypervisor", "https://xenproject.org/", "GPLv2 and LGPLv2+ and BSD", 2_621_440},
	}
}

// updaterCheckUpdate is updater.py's check_update.
func updaterCheckUpdate(c *Call, tx *Tx, host string, _ map[string]string) (string, error) {
	rec, _ := tx.GetClass("host", host)
	sv := strMap(rec, "software_version")
	pkgs := []updaterPackage{}
	for _, p := range updaterRepoPackages() {
		installed, ok := sv[p.key]
		if !ok || installed == "" {
			continue
		}
		version, release, _ := strings.Cut(installed, "-")
		next := "1"
		if n, err := strconv.Atoi(release); err == nil {
			next = strconv.Itoa(n + 1)
		} else if release != "" {
			next = release + ".1"
		}
		pkgs = append(pkgs, updaterPackage{
			Name: p.name, Version: version, Release: next + ".xcpng8.3", Description: p.description,
			Changelog: &updaterChangelog{Date: c.Sim.Now().Unix(), Author: "XCP-ng packagers <packagers@xcp-ng.org>", Description: "- Update to " + version + "-" + next},
			URL:       p.url, Size: p.size, License: p.license,
		})
	}
	b, err := json.Marshal(pkgs)
	if err != nil {
		return "", pluginFailure("check_update", "TypeError", err.Error())
	}
	return string(b), nil
}
