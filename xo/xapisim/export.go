package xapisim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/transfer/xva"
)

// Transfers (xapi.md §7.1): every data-plane request authenticates with
// session_id (cookie or query) or Basic credentials, runs in the task_id
// task or in one of its own, answers errors found before the response
// headers with an HTTP error and fails the task, and after the headers
// reports the outcome in the task only. Responses are written on the
// hijacked connection, so they have no Content-Length and end when the
// connection closes, as XAPI's; PUT handlers answer 200 before they read
// the body.

// transfer is one data-plane request in progress.
type transfer struct {
	dp      *dataPlane
	r       *http.Request
	session string
	logout  func()
	task    string
	created bool // task made for this request (destroyed when done)

	conn net.Conn
	brw  *bufio.ReadWriter
	in   *io.LimitedReader // the request body, after respond

	mu       sync.Mutex
	total    int64 // bytes expected, for progress
	done     int64
	reported int64
	checked  int64
}

// begin authenticates r and finds its task. On failure it has answered
// (401 without touching any task, as XAPI's assert_credentials_ok) and
// returns nil.
func (dp *dataPlane) begin(w http.ResponseWriter, r *http.Request, label string) *transfer {
	dp.reconcile()
	session, logout, err := dp.sim.HTTPSession(r)
	if err != nil {
		Unauthorized(w)
		return nil
	}
	task, created, err := dp.sim.RequestTask(r, label)
	if err != nil {
		logout()
		HTTPError(w, http.StatusNotFound, asFault(err).Error())
		return nil
	}
	return &transfer{dp: dp, r: r, session: session, logout: logout, task: task, created: created}
}

// fail answers an error before the headers: HTTP code with the fault as the
// additional information, and the task failed.
func (t *transfer) fail(w http.ResponseWriter, code int, err error) {
	f := asFault(err)
	t.finish(nil, f)
	HTTPError(w, code, strings.Join(f.Description(), " "))
}

// finish completes the task with result or err, ends a temporary session,
// and closes a hijacked connection.
func (t *transfer) finish(result any, err error) {
	if errors.Is(err, context.Canceled) {
		err = NewFault("TASK_CANCELLED", t.task)
	}
	t.dp.sim.CompleteTask(t.task, result, err)
	if t.created {
		_ = t.dp.sim.DB.Write(func(tx *Tx) error {
			tx.Delete(t.task)
			return nil
		})
	}
	t.logout()
	if t.conn != nil {
		_ = t.brw.Flush()
		if t.r.Method == http.MethodPut {
			t.drain()
		}
		_ = t.conn.Close()
	}
}

// respond hijacks the connection and writes the 200 headers (status line
// proto, e.g. "HTTP/1.1"), with task-id, Connection: close and no
// Content-Length. For a PUT it first answers an Expect: 100-continue.
func (t *transfer) respond(w http.ResponseWriter, proto string, headers ...string) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("xapisim: connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return fmt.Errorf("xapisim: hijack: %w", err)
	}
	t.conn, t.brw = conn, brw
	var b strings.Builder
	if strings.EqualFold(t.r.Header.Get("Expect"), "100-continue") {
		b.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	}
	b.WriteString(proto + " 200 OK\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\ntask-id: " + t.task + "\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := brw.WriteString(b.String()); err != nil {
		return err
	}
	return brw.Flush()
}

// body returns the request body after respond: exactly Content-Length
// bytes read from the hijacked connection.
func (t *transfer) body() io.Reader {
	if t.in == nil {
		t.in = &io.LimitedReader{R: t.brw.Reader, N: max(t.r.ContentLength, 0)}
	}
	return t.in
}

// drain reads what is left of a PUT body (until it ends, or nothing comes
// for a second) before the connection closes, so that a client still
// sending sees the response rather than a reset connection.
func (t *transfer) drain() {
	body := t.body()
	buf := make([]byte, 64<<10)
	for {
		_ = t.conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := body.Read(buf); err != nil {
			return
		}
	}
}

// writer returns the response body writer after respond.
func (t *transfer) writer() io.Writer { return t.brw.Writer }

// progress counts n more bytes, sets the task's progress every 1% and
// checks every 16 MiB whether the task is being cancelled
// (task.cancel on a task_id task) or destroyed.
func (t *transfer) progress(n int64) error {
	t.mu.Lock()
	t.done += n
	done, total := t.done, t.total
	report := total > 0 && (done-t.reported)*100 >= total
	if report {
		t.reported = done
	}
	check := done-t.checked >= 16<<20
	if check {
		t.checked = done
	}
	t.mu.Unlock()
	if report {
		p := min(float64(done)/float64(total), 0.99)
		_ = t.dp.sim.DB.Write(func(tx *Tx) error {
			if rec, ok := tx.GetClass(taskClass, t.task); ok && str(rec, "status") == "pending" {
				tx.Modify(t.task)["progress"] = p
			}
			return nil
		})
	}
	if check && t.cancelling() {
		return NewFault("TASK_CANCELLED", t.task)
	}
	return nil
}

// cancelling reports whether task.cancel was called on the task.
func (t *transfer) cancelling() bool {
	cancel := false
	t.dp.sim.DB.Read(func(tx *Tx) {
		rec, ok := tx.GetClass(taskClass, t.task)
		if !ok {
			return
		}
		if st := str(rec, "status"); st == "cancelling" || st == "cancelled" {
			cancel = true
		}
		for _, op := range strMap(rec, "current_operations") {
			cancel = cancel || op == "cancel"
		}
	})
	return cancel
}

// param returns a query (or cookie) parameter.
func (t *transfer) param(name string) string { return requestParam(t.r, name) }

// resolveRef returns the ref of the object of class named by ref or uuid.
func resolveRef(tx *Tx, class, ref, uuid string) (string, *Fault) {
	if ref != "" {
		if _, ok := tx.GetClass(class, ref); ok {
			return ref, nil
		}
		if c, r, ok := tx.ByUUID(ref); ok && c == class {
			return r, nil
		}
		return "", HandleInvalid(class, ref)
	}
	if uuid != "" {
		if c, r, ok := tx.ByUUID(uuid); ok && c == class {
			return r, nil
		}
		return "", NewFault("UUID_INVALID", class, uuid)
	}
	return "", NewFault("INTERNAL_ERROR", "missing parameter: ref or uuid")
}

// addOperation adds {task: op} to the current_operations of ref and
// recomputes its allowed operations.
func addOperation(tx *Tx, ref, task, op string, update func(*Tx, string)) {
	rec := tx.Modify(ref)
	if rec == nil {
		return
	}
	cur := maps.Clone(strMap(rec, "current_operations"))
	cur[task] = op
	rec["current_operations"] = cur
	update(tx, ref)
}

// removeOperation removes task's entry from the current_operations of ref.
func removeOperation(tx *Tx, ref, task string, update func(*Tx, string)) {
	rec := tx.Modify(ref)
	if rec == nil {
		return
	}
	cur := maps.Clone(strMap(rec, "current_operations"))
	delete(cur, task)
	rec["current_operations"] = cur
	update(tx, ref)
}

// GET /export (xapi.md §7.2, §8).

// serveExport streams VM ref|uuid as an XVA: use_compression=true|gzip|zstd,
// preserve_power_state. The VM must be Halted or Suspended; it shows
// {task: export} in current_operations during the transfer.
func (dp *dataPlane) serveExport(w http.ResponseWriter, r *http.Request) {
	t := dp.begin(w, r, "VM.export")
	if t == nil {
		return
	}
	preserve := t.param("preserve_power_state") == "true"
	var (
		vm    string
		ova   []byte
		disks []exportDisk
	)
	err := dp.sim.DB.Write(func(tx *Tx) error {
		ref, f := resolveRef(tx, "VM", t.param("ref"), t.param("uuid"))
		if f != nil {
			return f
		}
		if f := vmOperationError(tx, ref, "export", false); f != nil {
			return f
		}
		vm = ref
		var err error
		ova, disks, err = dp.exportMetadata(tx, vm, preserve)
		if err != nil {
			return err
		}
		addOperation(tx, vm, t.task, "export", updateVMAllowedOperations)
		return nil
	})
	if err != nil {
		t.fail(w, http.StatusInternalServerError, err)
		return
	}
	for _, d := range disks {
		t.total += d.size
	}
	err = t.respond(w, "HTTP/1.0", "Content-Type", "application/octet-stream",
		"Content-Disposition", `attachment; filename="export.xva"`)
	if err == nil {
		err = dp.writeXVA(t, ova, disks, xva.ParseCompression(t.param("use_compression")))
	}
	// The VM is unlocked before the task completes, as in XAPI.
	_ = dp.sim.DB.Write(func(tx *Tx) error {
		removeOperation(tx, vm, t.task, updateVMAllowedOperations)
		return nil
	})
	t.finish(nil, err)
}

// exportDisk is one VDI whose data goes into an XVA.
type exportDisk struct {
	id   string // "Ref:N"
	vdi  string
	size int64
}

// writeXVA streams the archive to the hijacked connection.
func (dp *dataPlane) writeXVA(t *transfer, ova []byte, disks []exportDisk, comp xva.Compression) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	xw, err := xva.NewWriter(t.writer(), ova, xva.WriterOptions{Compression: comp, ModTime: dp.sim.Now(), KeepAlive: 5 * time.Second})
	if err != nil {
		return err
	}
	slices.SortFunc(disks, func(a, b exportDisk) int { return strings.Compare(a.id, b.id) })
	for _, d := range disks {
		disk, size, err := dp.open(d.vdi)
		if err != nil {
			return err
		}
		var perr error
		src := newDiskReader(ctx, disk, size, func(n int64) {
			if e := t.progress(n); e != nil && perr == nil {
				perr = e
				cancel()
			}
		})
		if err := xw.WriteDisk(ctx, d.id, size, src); err != nil {
			if perr != nil {
				return perr
			}
			return err
		}
	}
	return xw.Close()
}

// exportMetadata builds ova.xml for vm (xapi.md §8.2): the VM, its VIFs
// and their networks, its VBDs, their VDIs and SRs, and its metrics, with
// every ref among them rewritten to a "Ref:N" id and every other ref to
// OpaqueRef:NULL. It returns the disks whose data follows.
func (dp *dataPlane) exportMetadata(tx *Tx, vm string, preserve bool) ([]byte, []exportDisk, error) {
	type object struct{ class, ref string }
	var objs []object
	ids := map[string]string{}
	add := func(class, ref string) {
		if !isRef(ref) || ids[ref] != "" {
			return
		}
		if _, ok := tx.GetClass(class, ref); !ok {
			return
		}
		ids[ref] = "Ref:" + strconv.FormatInt(dp.nextID.Add(1)-1, 10)
		objs = append(objs, object{class, ref})
	}
	vmRec, _ := tx.GetClass("VM", vm)
	add("VM", vm)
	vifs := slices.Sorted(slices.Values(strSet(vmRec, "VIFs")))
	for _, vif := range vifs {
		add("VIF", vif)
	}
	for _, vif := range vifs {
		vr, _ := tx.GetClass("VIF", vif)
		add("network", str(vr, "network"))
	}
	vbds := slices.Sorted(slices.Values(strSet(vmRec, "VBDs")))
	for _, vbd := range vbds {
		add("VBD", vbd)
	}
	var disks []exportDisk
	for _, vbd := range vbds {
		br, _ := tx.GetClass("VBD", vbd)
		vdi := str(br, "VDI")
		add("VDI", vdi)
		vr, ok := tx.GetClass("VDI", vdi)
		if !ok {
			continue
		}
		sr, _ := tx.GetClass("SR", str(vr, "SR"))
		if str(br, "type") != "CD" && str(sr, "content_type") != "iso" {
			size, _ := vr["virtual_size"].(int64)
			disks = append(disks, exportDisk{id: ids[vdi], vdi: vdi, size: size})
		}
	}
	if preserve && str(vmRec, "power_state") == "Suspended" {
		if sv := str(vmRec, "suspend_VDI"); isRef(sv) {
			add("VDI", sv)
			if vr, ok := tx.GetClass("VDI", sv); ok {
				size, _ := vr["virtual_size"].(int64)
				disks = append(disks, exportDisk{id: ids[sv], vdi: sv, size: size})
			}
		}
	}
	for _, o := range slices.Clone(objs) {
		if o.class == "VDI" {
			vr, _ := tx.GetClass("VDI", o.ref)
			add("SR", str(vr, "SR"))
		}
	}
	add("VM_metrics", str(vmRec, "metrics"))
	add("VM_guest_metrics", str(vmRec, "guest_metrics"))

	objects := make([]any, 0, len(objs))
	for _, o := range objs {
		rec, _ := tx.GetClass(o.class, o.ref)
		out := exportRecord(o.class, rec, ids)
		switch o.class {
		case "VM":
			if !preserve {
				out["power_state"] = "Halted"
			}
			out["is_a_snapshot"] = false
			out["snapshot_of"] = NullRef
			out["parent"] = NullRef
			out["current_operations"] = map[string]string{}
			out["allowed_operations"] = []string{}
			out["consoles"] = []string{}
			out["crash_dumps"] = []string{}
			out["blobs"] = map[string]string{}
			if !preserve {
				out["suspend_VDI"] = NullRef
			}
			out["resident_on"] = NullRef
			out["domid"] = int64(-1)
		case "VBD", "VIF":
			out["currently_attached"] = false
			out["metrics"] = NullRef
		case "SR":
			out["PBDs"] = []string{}
		case "network":
			out["PIFs"] = []string{}
		}
		objects = append(objects, map[string]any{"class": o.class, "id": ids[o.ref], "snapshot": out})
	}
	host := Record{}
	if pools := tx.All("pool"); len(pools) > 0 {
		pr, _ := tx.GetClass("pool", pools[0])
		host, _ = tx.GetClass("host", str(pr, "master"))
	}
	sv := strMap(host, "software_version")
	major, _ := host["API_version_major"].(int64)
	minor, _ := host["API_version_minor"].(int64)
	header := map[string]any{
		"version": map[string]any{
			"hostname":        str(host, "hostname"),
			"date":            dp.sim.Now().Format("2006-01-02"),
			"product_version": sv["product_version"],
			"product_brand":   sv["product_brand"],
			"build_number":    sv["build_number"],
			"xapi_major":      major,
			"xapi_minor":      minor,
			"export_vsn":      int64(2),
		},
		"objects": objects,
	}
	frag, err := EncodeXMLValue(header)
	if err != nil {
		return nil, nil, fmt.Errorf("xapisim: ova.xml: %w", err)
	}
	return []byte(frag), disks, nil
}

// exportRecord copies the schema fields of rec with refs rewritten: refs to
// exported objects become their ids, other refs OpaqueRef:NULL; ref sets
// keep only exported members; maps keyed or valued by refs are emptied.
func exportRecord(class string, rec Record, ids map[string]string) Record {
	cs, _ := Schema(class)
	out := Record{}
	for i := range cs.Fields {
		f := &cs.Fields[i]
		v := cloneValue(rec[f.Name])
		if v == nil {
			v = cloneValue(f.Default)
		}
		switch {
		case f.Kind == KindRef:
			ref, _ := v.(string)
			if id := ids[ref]; id != "" {
				v = id
			} else {
				v = NullRef
			}
		case f.Kind == KindStringSet && strings.HasSuffix(f.Type, " ref set"):
			var keep []string
			for _, ref := range strSetOf(v) {
				if id := ids[ref]; id != "" {
					keep = append(keep, id)
				}
			}
			v = append([]string{}, keep...)
		case strings.HasPrefix(f.Type, "(") && strings.Contains(f.Type, " ref"):
			v = cloneValue(f.Default)
		}
		out[f.Name] = v
	}
	return out
}

func strSetOf(v any) []string {
	s, _ := v.([]string)
	return s
}
