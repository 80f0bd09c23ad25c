package xapisim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/xorest/xorest/transfer/xva"
)

// PUT /import (xapi.md §7.3, §8): sr_id|sr_uuid (default: the pool's
// default SR), restore (keep UUIDs and MACs), force (ignore checksum
// errors). The body is an XVA, raw or gzip- or zstd-compressed. A chunked
// body gets 403 and IMPORT_ERROR_CANNOT_HANDLE_CHUNKED (import.ml
// handler). The 200 goes out before the body is read; the VMs, VBDs, VDIs
// and VIFs of ova.xml are then created (the new VMs show {task: import}
// in current_operations) and the disks written. The task's result is the
// set of new VM refs; on any error everything created is destroyed again
// and the task fails: IMPORT_ERROR_PREMATURE_EOF when the body ends early
// (End_of_file in with_error_handling), IMPORT_ERROR otherwise.
//
// As in XAPI the archive's own structure says where it ends, not the
// Content-Length: the import stops reading once every disk of ova.xml has
// its virtual size (Stream_vdi.recv_all), without reading the tar's
// end-of-archive blocks, and completes the task then. A body shorter than
// its Content-Length is therefore fine when it holds the whole archive:
// that is how XO uploads a stream of unknown length (npm xen-api
// putResource: Content-Length 1 PiB, then the client closes). Without a
// Content-Length header at all the body is read until the client closes.

// serveImport handles PUT /import.
func (dp *dataPlane) serveImport(w http.ResponseWriter, r *http.Request) {
	t := dp.begin(w, r, "VM.import")
	if t == nil {
		return
	}
	var sr string
	var f *Fault
	dp.sim.DB.Read(func(tx *Tx) { sr, f = importSR(tx, t.param("sr_id"), t.param("sr_uuid")) })
	if f != nil {
		code := http.StatusInternalServerError
		if f.Code == "SR_OPERATION_NOT_SUPPORTED" {
			code = http.StatusBadRequest
		}
		t.fail(w, code, f)
		return
	}
	// XAPI checks the encoding after the SR, inside the import's context.
	if slices.Contains(r.TransferEncoding, "chunked") {
		t.fail(w, http.StatusForbidden, NewFault("IMPORT_ERROR_CANNOT_HANDLE_CHUNKED"))
		return
	}
	if err := t.respond(w, "HTTP/1.1", "Content-Type", "application/octet-stream"); err != nil {
		t.finish(nil, err)
		return
	}
	t.importBody()
	res, err := dp.importXVA(t, sr, t.param("restore") == "true", t.param("force") == "true")
	if err != nil {
		t.finish(nil, err)
		return
	}
	t.finish(res, nil)
}

// importSR returns the SR to import into: sr_id, sr_uuid, or the pool's
// default SR.
func importSR(tx *Tx, id, uuid string) (string, *Fault) {
	var sr string
	switch {
	case id != "" || uuid != "":
		ref, f := resolveRef(tx, "SR", id, uuid)
		if f != nil {
			return "", f
		}
		sr = ref
	default:
		for _, p := range tx.All("pool") {
			pr, _ := tx.GetClass("pool", p)
			sr = str(pr, "default_SR")
		}
		if _, ok := tx.GetClass("SR", sr); !ok {
			return "", NewFault("DEFAULT_SR_NOT_FOUND", sr)
		}
	}
	rec, _ := tx.GetClass("SR", sr)
	if str(rec, "content_type") == "iso" {
		return "", NewFault("SR_OPERATION_NOT_SUPPORTED", sr)
	}
	return sr, nil
}

// importError is the fault of a malformed or unreadable XVA: an archive
// that ends early (XAPI's End_of_file) is IMPORT_ERROR_PREMATURE_EOF,
// with no parameters.
func importError(err error) error {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, xva.ErrTruncated) {
		return NewFault("IMPORT_ERROR_PREMATURE_EOF")
	}
	return NewFault("IMPORT_ERROR", err.Error())
}

// requestLength is the request's Content-Length as XAPI's HTTP server
// parses it (http_svr.ml): -1 when there is no Content-Length header.
func requestLength(r *http.Request) int64 {
	if r.Header.Get("Content-Length") == "" {
		return -1
	}
	return r.ContentLength
}

// importBody sets the body of an import after respond: Content-Length
// bytes, or, without that header, everything until the client closes (XAPI
// reads the socket itself and stops where the format ends).
func (t *transfer) importBody() io.Reader {
	n := requestLength(t.r)
	if n < 0 {
		n = math.MaxInt64
	}
	t.in = &io.LimitedReader{R: t.brw.Reader, N: n}
	return t.in
}

// checkVersion refuses archives from a newer XAPI than the master's
// (IMPORT_INCOMPATIBLE_VERSION), comparing xapi_major and xapi_minor.
func (dp *dataPlane) checkVersion(version map[string]any) *Fault {
	if version == nil {
		return nil
	}
	major, okMajor := wireToKind(KindInt, version["xapi_major"])
	minor, okMinor := wireToKind(KindInt, version["xapi_minor"])
	if !okMajor || !okMinor {
		return nil
	}
	var ourMajor, ourMinor int64
	dp.sim.DB.Read(func(tx *Tx) {
		if hr, ok := tx.GetClass("host", dp.sim.masterLocked(tx)); ok {
			ourMajor, _ = hr["API_version_major"].(int64)
			ourMinor, _ = hr["API_version_minor"].(int64)
		}
	})
	m, n := major.(int64), minor.(int64)
	if m > ourMajor || (m == ourMajor && n > ourMinor) {
		return NewFault("IMPORT_INCOMPATIBLE_VERSION")
	}
	return nil
}

// masterLocked returns the pool master's ref inside a transaction.
func (s *Simulator) masterLocked(tx *Tx) string {
	for _, p := range tx.All("pool") {
		pr, _ := tx.GetClass("pool", p)
		return str(pr, "master")
	}
	return NullRef
}

// ovaObject is one entry of ova.xml's objects.
type ovaObject struct {
	class, id string
	rec       map[string]any
}

// parseOVAXML decodes ova.xml: a bare XML-RPC <value> struct with version
// and objects.
func parseOVAXML(b []byte) (version map[string]any, objects []ovaObject, err error) {
	p := &xmlParser{d: xml.NewDecoder(bytes.NewReader(b))}
	p.d.Strict = true
	if err := p.open("value"); err != nil {
		return nil, nil, fmt.Errorf("ova.xml: %w", err)
	}
	v, err := p.value(0)
	if err != nil {
		return nil, nil, fmt.Errorf("ova.xml: %w", err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, nil, errors.New("ova.xml: not a struct")
	}
	version, _ = top["version"].(map[string]any)
	list, ok := top["objects"].([]any)
	if !ok {
		return nil, nil, errors.New("ova.xml: no objects array")
	}
	seen := map[string]bool{}
	for i, o := range list {
		m, ok := o.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("ova.xml: object %d is not a struct", i)
		}
		class, _ := m["class"].(string)
		id, _ := m["id"].(string)
		rec, _ := m["snapshot"].(map[string]any)
		if class == "" || id == "" || rec == nil {
			return nil, nil, fmt.Errorf("ova.xml: object %d lacks class, id or snapshot", i)
		}
		if seen[id] {
			return nil, nil, fmt.Errorf("ova.xml: duplicate id %s", id)
		}
		seen[id] = true
		objects = append(objects, ovaObject{class: class, id: id, rec: rec})
	}
	return version, objects, nil
}

// importRecord converts the fields of an ova.xml record to the schema's
// types over the class defaults. Refs, ref sets and maps involving refs
// keep their defaults (the importer sets forward refs itself), as do
// fields whose value does not convert (the importer is lenient).
func importRecord(class string, in map[string]any) Record {
	rec := NewRecord(class)
	cs, _ := Schema(class)
	for i := range cs.Fields {
		f := &cs.Fields[i]
		v, ok := in[f.Name]
		if !ok || f.Kind == KindRef || strings.Contains(f.Type, " ref") {
			continue
		}
		if cv, ok := wireToKind(f.Kind, v); ok {
			if f.Kind == KindEnum {
				if s, err := canonicalEnum(f, cv.(string)); err == nil {
					cv = s
				}
			}
			rec[f.Name] = cv
		}
	}
	rec["current_operations"] = map[string]string{}
	if _, ok := rec["allowed_operations"]; ok {
		rec["allowed_operations"] = []string{}
	}
	return rec
}

// created lists what an import made, to undo it.
type created struct {
	vms, vdis, vbds, vifs, networks, metrics []string
}

// importXVA reads the XVA body, creates its objects and writes its disks.
func (dp *dataPlane) importXVA(t *transfer, sr string, restore, force bool) (any, error) {
	xr, err := xva.NewReader(t.body(), xva.ReaderOptions{IgnoreChecksums: force})
	if err != nil {
		return nil, importError(err)
	}
	defer xr.Close()
	version, objects, err := parseOVAXML(xr.OVAXML())
	if err != nil {
		return nil, importError(err)
	}
	if f := dp.checkVersion(version); f != nil {
		return nil, f
	}
	var made created
	refs := map[string]string{} // ova.xml id -> new ref
	err = dp.sim.DB.Write(func(tx *Tx) error {
		return dp.createImported(tx, t.task, objects, sr, restore, refs, &made)
	})
	if err == nil {
		err = dp.importDisks(t, xr, objects, refs, made.vdis)
	}
	if err != nil {
		dp.undoImport(&made)
		return nil, importError(err)
	}
	var vms, snaps []string
	_ = dp.sim.DB.Write(func(tx *Tx) error {
		for _, vm := range made.vms {
			removeOperation(tx, vm, t.task, updateVMAllowedOperations)
			if rec, ok := tx.GetClass("VM", vm); ok && rec["is_a_snapshot"].(bool) {
				snaps = append(snaps, vm)
			} else {
				vms = append(vms, vm)
			}
		}
		return nil
	})
	if len(vms) == 0 {
		vms = snaps
	}
	return vms, nil
}

// createImported creates the objects of ova.xml in one transaction.
func (dp *dataPlane) createImported(tx *Tx, task string, objects []ovaObject, sr string, restore bool, refs map[string]string, made *created) error {
	byClass := map[string][]ovaObject{}
	ids := map[string]ovaObject{}
	for _, o := range objects {
		byClass[o.class] = append(byClass[o.class], o)
		ids[o.id] = o
	}
	if len(byClass["VM"]) == 0 {
		return errors.New("ova.xml: no VM object")
	}
	now := dp.sim.Now()
	keepUUID := func(rec Record) {
		if u := str(rec, "uuid"); !restore || u == "" {
			rec["uuid"] = ""
		} else if _, _, taken := tx.ByUUID(u); taken {
			rec["uuid"] = ""
		}
	}
	fwd := func(o ovaObject, field string) string {
		id, _ := o.rec[field].(string)
		return id
	}
	// Networks: the pool's network with the same UUID, bridge or name,
	// else a new one.
	for _, o := range byClass["network"] {
		rec := importRecord("network", o.rec)
		match := ""
		for _, n := range tx.All("network") {
			nr, _ := tx.GetClass("network", n)
			if str(nr, "uuid") == str(rec, "uuid") {
				match = n
				break
			}
		}
		for _, field := range []string{"bridge", "name_label"} {
			for _, n := range tx.All("network") {
				nr, _ := tx.GetClass("network", n)
				if match == "" && str(rec, field) != "" && str(nr, field) == str(rec, field) {
					match = n
				}
			}
		}
		if match == "" {
			rec["uuid"] = ""
			rec["bridge"] = "xapi" + itoa64(int64(tx.Count("network")))
			rec["managed"] = true
			match = newObject(tx, "network", rec)
			made.networks = append(made.networks, match)
		}
		refs[o.id] = match
	}
	// VMs, with {task: import} while the disks arrive.
	for _, o := range byClass["VM"] {
		rec := importRecord("VM", o.rec)
		keepUUID(rec)
		rec["power_state"] = "Halted"
		rec["resident_on"] = NullRef
		rec["scheduled_to_be_resident_on"] = NullRef
		rec["domid"] = int64(-1)
		rec["current_operations"] = map[string]string{task: "import"}
		rec["metrics"] = newVMMetrics(tx, rec, now)
		made.metrics = append(made.metrics, str(rec, "metrics"))
		vm := newObject(tx, "VM", rec)
		refs[o.id] = vm
		made.vms = append(made.vms, vm)
	}
	// VDIs: on sr, except ISOs, which are looked up.
	for _, o := range byClass["VDI"] {
		srObj, hasSR := ids[fwd(o, "SR")]
		if hasSR {
			if ct, _ := srObj.rec["content_type"].(string); ct == "iso" {
				uuid, _ := o.rec["uuid"].(string)
				if c, ref, ok := tx.ByUUID(uuid); ok && c == "VDI" {
					refs[o.id] = ref
				}
				continue
			}
		}
		rec := importRecord("VDI", o.rec)
		keepUUID(rec)
		if size, _ := rec["virtual_size"].(int64); size < 0 {
			return fmt.Errorf("ova.xml: VDI %s: negative virtual_size", o.id)
		}
		rec["SR"] = sr
		rec["location"] = tx.NewUUID()
		rec["managed"] = true
		rec["missing"] = false
		rec["is_a_snapshot"] = false
		rec["snapshot_of"] = NullRef
		rec["physical_utilisation"] = int64(0)
		rec["cbt_enabled"] = false
		sm := strMap(rec, "sm_config")
		delete(sm, "vhd-parent")
		rec["sm_config"] = sm
		vdi := newObject(tx, "VDI", rec)
		refs[o.id] = vdi
		made.vdis = append(made.vdis, vdi)
	}
	// A VM exported Suspended with its suspend image comes back Suspended.
	for _, o := range byClass["VM"] {
		state, _ := o.rec["power_state"].(string)
		if sv := refs[fwd(o, "suspend_VDI")]; state == "Suspended" && sv != "" {
			setField(tx, refs[o.id], "suspend_VDI", sv)
			setField(tx, refs[o.id], "power_state", "Suspended")
		}
	}
	for _, o := range byClass["VBD"] {
		vm := refs[fwd(o, "VM")]
		if vm == "" {
			continue
		}
		rec := importRecord("VBD", o.rec)
		rec["uuid"] = ""
		rec["VM"] = vm
		rec["currently_attached"] = false
		rec["device"] = ""
		if vdi := refs[fwd(o, "VDI")]; vdi != "" {
			rec["VDI"] = vdi
			rec["empty"] = false
		} else {
			rec["VDI"] = NullRef
			rec["empty"] = true
			if str(rec, "type") != "CD" {
				return fmt.Errorf("ova.xml: VBD %s: disk %s is not in the archive", o.id, fwd(o, "VDI"))
			}
		}
		made.vbds = append(made.vbds, newObject(tx, "VBD", rec))
	}
	for i, o := range byClass["VIF"] {
		vm, net := refs[fwd(o, "VM")], refs[fwd(o, "network")]
		if vm == "" || net == "" {
			continue
		}
		rec := importRecord("VIF", o.rec)
		rec["uuid"] = ""
		rec["VM"] = vm
		rec["network"] = net
		rec["currently_attached"] = false
		if !restore && (rec["MAC_autogenerated"] == true || str(rec, "MAC") == "") {
			rec["MAC"] = mac(0x1e, int(tx.Gen())<<4|i&0xf)
		}
		made.vifs = append(made.vifs, newObject(tx, "VIF", rec))
	}
	for _, vbd := range made.vbds {
		updateVBDAllowedOperations(tx, vbd)
	}
	for _, vif := range made.vifs {
		updateVIFAllowedOperations(tx, vif)
	}
	for _, vdi := range made.vdis {
		updateVDIAllowedOperations(tx, vdi)
	}
	for _, vm := range made.vms {
		updateVMAllowedOperations(tx, vm)
	}
	updateSRUsage(tx, sr)
	return nil
}

// importDisks writes the disks of the archive into the new VDIs. Like
// XAPI's Stream_vdi.recv_all it stops once every new VDI has been read to
// its virtual size: what follows (the tar's end-of-archive blocks) is not
// read.
func (dp *dataPlane) importDisks(t *transfer, xr *xva.Reader, objects []ovaObject, refs map[string]string, vdis []string) error {
	sizes := map[string]int64{}
	for _, o := range objects {
		if o.class == "VDI" {
			if n, ok := wireToKind(KindInt, o.rec["virtual_size"]); ok {
				sizes[o.id] = n.(int64)
				t.total += n.(int64)
			}
		}
	}
	pending := map[string]bool{} // new VDIs with data to come
	for _, o := range objects {
		if vdi := refs[o.id]; o.class == "VDI" && sizes[o.id] > 0 && slices.Contains(vdis, vdi) {
			pending[vdi] = true
		}
	}
	for len(pending) > 0 {
		dr, err := xr.NextDisk()
		if errors.Is(err, io.EOF) {
			return &xva.FormatError{Kind: xva.ErrTruncated, Detail: fmt.Sprintf("the archive ends before the data of %d disks", len(pending))}
		}
		if err != nil {
			return err
		}
		vdi, ok := refs[dr.Ref]
		if !ok {
			return fmt.Errorf("xva: %s: no VDI with this id in ova.xml", dr.Ref)
		}
		size := sizes[dr.Ref]
		dr.SetSize(size)
		delete(pending, vdi)
		d, _, err := dp.openForWrite(vdi)
		if err != nil {
			return err
		}
		var last int64
		for {
			off, data, err := dr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if !allZero(data) {
				if _, err := d.f.WriteAt(data, off); err != nil {
					return NewFault("VDI_IO_ERROR", err.Error())
				}
			}
			end := off + int64(len(data))
			if perr := t.progress(end - last); perr != nil {
				return perr
			}
			last = end
		}
	}
	return nil
}

// undoImport destroys what a failed import created, contents included.
func (dp *dataPlane) undoImport(made *created) {
	_ = dp.sim.DB.Write(func(tx *Tx) error {
		for _, list := range [][]string{made.vbds, made.vifs, made.vdis, made.vms, made.metrics, made.networks} {
			for _, ref := range list {
				deleteObject(tx, ref)
			}
		}
		return nil
	})
	dp.reconcile()
}
