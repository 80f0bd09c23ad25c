package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// A transfer is a request on a file name of an object, <id>.<ext> (§E):
// ServeMux patterns cannot match a wildcard with a suffix, so the GET
// routes of the objects, /<collection>/{id}, dispatch on the suffix
// (withTransfers), and their documentation says so.

// fileTransfer is a GET on <id><suffix> of a collection.
type fileTransfer struct {
	suffix  string
	summary string
	serve   func(s *server, w http.ResponseWriter, r *http.Request, c collection, id string) error
}

// exportTransfers returns the file names each collection serves, by
// collection name.
func exportTransfers() map[string][]fileTransfer {
	xvaExport := fileTransfer{
		suffix:  ".xva",
		summary: "<id>.xva exports it as an XVA (?compress=gzip|zstd; a running VM from a snapshot destroyed afterwards)",
		serve:   (*server).exportXVA,
	}
	disk := []fileTransfer{
		{suffix: ".vhd", summary: "<id>.vhd exports the disk as a VHD (?preferNbd&nbdConcurrency=N: data read over NBD, with a Content-Length)", serve: (*server).exportVHD},
		{suffix: ".raw", summary: "<id>.raw exports the disk as raw bytes (?preferNbd&nbdConcurrency=N: read over NBD)", serve: (*server).exportRaw},
	}
	ovaExport := fileTransfer{
		suffix:  ".ova",
		summary: "<id>.ova exports it as an OVA (OVF + streamOptimized VMDKs, with a Content-Length; a running VM from a snapshot destroyed afterwards)",
		serve:   (*server).exportOVA,
	}
	vm := []fileTransfer{xvaExport, ovaExport}
	return map[string][]fileTransfer{
		"vms": vm, "vm-snapshots": vm, "vm-templates": vm,
		"vdis": disk, "vdi-snapshots": disk,
	}
}

// withTransfers adds the transfer routes to routes: the GET object routes
// of the collections that export files dispatch <id>.<ext> to the export,
// and the import routes are appended.
func (s *server) withTransfers(routes []route) []route {
	exports := exportTransfers()
	for _, c := range collections() {
		files, ok := exports[c.name]
		if !ok {
			continue
		}
		pattern := BasePath + "/" + c.name + "/{id}"
		for i, rt := range routes {
			if rt.method != "GET" || rt.pattern != pattern {
				continue
			}
			next := rt.handler
			routes[i].handler = func(w http.ResponseWriter, r *http.Request) error {
				id := r.PathValue("id")
				for _, f := range files {
					if base, ok := strings.CutSuffix(id, f.suffix); ok && base != "" {
						return f.serve(s, w, r, c, base)
					}
				}
				return next(w, r)
			}
			for _, f := range files {
				routes[i].summary += "; " + f.summary
			}
			routes[i].resp.types = append(append([]string{}, routes[i].resp.types...), "application/octet-stream")
		}
	}
	return append(routes, s.importRoutes()...)
}

// compressions maps ?compress= to XAPI's use_compression (xapi.md §7.2).
var compressions = map[string]string{"": "false", "false": "false", "gzip": "true", "true": "true", "zstd": "zstd"}

// exportXVA answers GET /rest/v0/<vm collection>/<id>.xva: the VM streamed
// from XAPI's GET /export. A running or paused VM is exported from a
// snapshot taken for the purpose and destroyed afterwards, as Xen
// Orchestra does (exportSource); a client that leaves cancels the XAPI
// task, and the snapshot goes then too. The snapshot is destroyed before
// the handler returns, so the answer (chunked: its length is not known)
// ends once it is gone.
func (s *server) exportXVA(w http.ResponseWriter, r *http.Request, c collection, id string) error {
	q := r.URL.Query()
	comp, ok := compressions[q.Get("compress")]
	if !ok {
		return paramError("compress", "must be gzip or zstd", q.Get("compress"))
	}
	obj, pool, ref, err := s.target(r.Context(), c.kind, id)
	if err != nil {
		return err
	}
	st, err := s.openVMXVA(r.Context(), pool.Client(), ref, comp, "xorest: export "+c.noun+" "+id)
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	defer st.end(nil)
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set("Content-Disposition", attachment(nameOf(obj, id), ".xva"))
	return s.stream(w, r, st, st.size)
}

// exportStream is the content of an export, as the HTTP routes and the
// export action consume it.
type exportStream struct {
	io.Reader
	// size is the exact length, or -1 when not known beforehand.
	size int64
	// estimate, when size is -1 and estimate is not nil, says what the
	// content should be about as long as (0: no idea); see xvaEstimate.
	estimate func(context.Context) int64
	// task is XAPI's task of the transfer, whose progress XAPI reports,
	// or "".
	task        xapi.Ref
	contentType string
	// end releases the stream; outcome is nil when it was read completely.
	end func(outcome error)
}

// openXVA opens XAPI's GET /export of a VM with use_compression comp
// ("false", "true" or "zstd"). XAPI refuses a VM that is not halted or
// suspended (VM_BAD_POWER_STATE); openVMXVA snapshots such a VM first.
func openXVA(ctx context.Context, xc *xapi.Client, ref xapi.Ref, comp, label string) (*exportStream, error) {
	d, err := xc.GetExport(ctx, "/export/", url.Values{"ref": {string(ref)}, "use_compression": {comp}}, label)
	if err != nil {
		return nil, err
	}
	return &exportStream{Reader: d, size: -1, task: d.Task, contentType: "application/octet-stream", end: func(error) { _ = d.Close() }}, nil
}

// openVMXVA opens the XVA export of the VM, snapshot or template ref, from
// a snapshot when it is running or paused (exportSource): the stream's end
// closes the export, then destroys the snapshot. The stream's estimate is
// xvaEstimate's of what is exported.
func (s *server) openVMXVA(ctx context.Context, xc *xapi.Client, ref xapi.Ref, comp, label string) (*exportStream, error) {
	src, err := s.exportSource(ctx, xc, ref)
	if err != nil {
		return nil, err
	}
	st, err := openXVA(ctx, xc, src.ref, comp, label)
	if err != nil {
		src.release()
		return nil, err
	}
	st.estimate = func(ctx context.Context) int64 { return xvaEstimate(ctx, xc, src.ref) }
	closeExport := st.end
	st.end = func(outcome error) {
		closeExport(outcome)
		src.release()
	}
	return st, nil
}

// xvaEstimate is the sum of the virtual sizes of the disks XAPI's
// /export of vm streams (VBDs other than CDs, VDIs on SRs other than ISO
// ones, as XAPI's Export.export picks them), 0 if they cannot be read.
// XAPI's own progress of the export is its walk over these bytes
// (Stream_vdi.send_all); the uncompressed XVA is shorter by the empty
// 1 MiB chunks XAPI skips and longer by ~0.1% of tar headers and
// checksums.
func xvaEstimate(ctx context.Context, xc *xapi.Client, vm xapi.Ref) int64 {
	var vbds []xapi.Ref
	if err := xc.CallInto(ctx, &vbds, "VM.get_VBDs", vm); err != nil {
		return 0
	}
	var total int64
	for _, ref := range vbds {
		vbd, err := xapi.GetRecord[xapi.VBD](ctx, xc, ref)
		if err != nil || vbd.Type == "CD" || vbd.VDI.IsNull() {
			continue
		}
		vdi, err := xapi.GetRecord[xapi.VDI](ctx, xc, vbd.VDI)
		if err != nil {
			continue
		}
		var content string
		if err := xc.CallInto(ctx, &content, "SR.get_content_type", vdi.SR); err != nil || content == "iso" {
			continue
		}
		total += vdi.VirtualSize
	}
	return total
}

// exportSnapshotPrefix starts the name of the snapshot a running VM is
// exported from (XO's VM_export).
const exportSnapshotPrefix = "[XO Export] "

// exportSourceVM is what an export of a VM reads: the VM itself, or a
// snapshot of it taken for the export.
type exportSourceVM struct {
	ref  xapi.Ref // the VM or the snapshot
	name string   // the VM's name_label
	// release destroys the snapshot, if any; it may be called more than
	// once.
	release func()
}

// exportSource returns what to export for the VM ref. XAPI exports only
// halted or suspended VMs (VM_BAD_POWER_STATE otherwise: /export locks the
// VM for the export operation, allowed in Halted and Suspended only), so a
// running or paused VM (not a snapshot or template) is snapshotted first,
// as Xen Orchestra's VM_export and exportVmOva do: a snapshot named
// "[XO Export] <name>", with is_a_template cleared (an XVA of a template
// would import as a template). Its release destroys the snapshot and its
// disks (xo.DestroyVM), whatever the outcome of the export and even when
// the request was cancelled.
func (s *server) exportSource(ctx context.Context, xc *xapi.Client, ref xapi.Ref) (*exportSourceVM, error) {
	vm, err := xapi.GetRecord[xapi.VM](ctx, xc, ref)
	if err != nil {
		return nil, fmt.Errorf("VM.get_record %s: %w", ref, err)
	}
	src := &exportSourceVM{ref: ref, name: vm.NameLabel, release: func() {}}
	if vm.IsASnapshot || vm.IsATemplate || (vm.PowerState != "Running" && vm.PowerState != "Paused") {
		return src, nil
	}
	// The snapshot is taken to its end even if ctx ends meanwhile: a
	// snapshot finished after its caller left would be left behind.
	sctx := context.WithoutCancel(ctx)
	v, err := xc.CallAsyncWait(sctx, "VM.snapshot", ref, exportSnapshotPrefix+vm.NameLabel)
	if err != nil {
		return nil, fmt.Errorf("snapshot for the export: %w", err)
	}
	snap, _ := v.(string)
	if !strings.HasPrefix(snap, "OpaqueRef:") {
		return nil, fmt.Errorf("snapshot for the export: VM.snapshot returned %v", v)
	}
	src.ref = xapi.Ref(snap)
	src.release = sync.OnceFunc(func() { s.dropExportSnapshot(sctx, xc, src.ref) })
	if _, err := xc.Call(sctx, "VM.set_is_a_template", src.ref, false); err != nil {
		// XO ignores LICENSE_RESTRICTION here; the XVA then imports as a template.
		s.log.WarnContext(ctx, "export snapshot stays a template", "snapshot", string(src.ref), "error", err.Error())
	}
	if err := ctx.Err(); err != nil {
		src.release()
		return nil, err
	}
	return src, nil
}

// dropExportSnapshot destroys the export snapshot snap with its disks
// (xo.DestroyVM) and the task DestroyVM reports on. The export's XAPI task
// may still hold the snapshot (current_operations) for a moment after it
// was cancelled: OTHER_OPERATION_IN_PROGRESS is retried for a while. A
// failure is logged, with the report task left in XAPI to say what
// remains.
func (s *server) dropExportSnapshot(ctx context.Context, xc *xapi.Client, snap xapi.Ref) {
	ctx, cancel := context.WithTimeout(ctx, snapshotDropTimeout)
	defer cancel()
	for {
		report, err := xo.DestroyVM(ctx, xc, snap)
		if err == nil {
			_ = xc.DestroyTask(ctx, report.Task)
			return
		}
		if !errors.Is(err, xapi.ErrOtherOperationInProgress) || report == nil || len(report.Deleted) > 0 {
			s.log.ErrorContext(ctx, "export snapshot not destroyed", "snapshot", string(snap), "error", err.Error())
			return
		}
		_ = xc.DestroyTask(ctx, report.Task)
		t := time.NewTimer(snapshotDropRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.ErrorContext(ctx, "export snapshot not destroyed", "snapshot", string(snap), "error", err.Error())
			return
		case <-t.C:
		}
	}
}

// Timing of dropExportSnapshot.
const (
	snapshotDropTimeout = 2 * time.Minute
	snapshotDropRetry   = 250 * time.Millisecond
)

// openDisk opens XAPI's GET /export_raw_vdi of a disk of virtual size
// size in format ("raw": exactly size bytes; "vhd": length unknown).
func openDisk(ctx context.Context, xc *xapi.Client, ref xapi.Ref, format string, size int64, label string) (*exportStream, error) {
	d, err := xc.GetExport(ctx, "/export_raw_vdi", url.Values{"vdi": {string(ref)}, "format": {format}}, label)
	if err != nil {
		return nil, err
	}
	st := &exportStream{Reader: d, size: -1, contentType: "application/vhd", end: func(error) { _ = d.Close() }}
	if format == "raw" {
		st.size, st.contentType = size, "application/octet-stream"
	}
	return st, nil
}

// exportRaw answers GET /rest/v0/<vdi collection>/<id>.raw: the disk's
// bytes from XAPI's GET /export_raw_vdi?format=raw, with a Content-Length
// of its virtual size.
func (s *server) exportRaw(w http.ResponseWriter, r *http.Request, c collection, id string) error {
	return s.exportDisk(w, r, c, id, "raw")
}

// exportVHD answers GET /rest/v0/<vdi collection>/<id>.vhd: the disk as a
// dynamic VHD from XAPI's GET /export_raw_vdi?format=vhd (its length is
// not known beforehand).
func (s *server) exportVHD(w http.ResponseWriter, r *http.Request, c collection, id string) error {
	return s.exportDisk(w, r, c, id, "vhd")
}

// exportDisk streams a disk from /export_raw_vdi in format.
func (s *server) exportDisk(w http.ResponseWriter, r *http.Request, c collection, id, format string) error {
	q := r.URL.Query()
	conns, err := nbdConcurrency(q)
	if err != nil {
		return err
	}
	obj, pool, ref, err := s.target(r.Context(), c.kind, id)
	if err != nil {
		return err
	}
	if q.Has("preferNbd") {
		done, err := s.exportDiskNBD(w, r, pool.Client(), ref, int64(num(obj["size"])), format, nameOf(obj, id), conns)
		if done || err != nil {
			return err
		}
	}
	st, err := openDisk(r.Context(), pool.Client(), ref, format, int64(num(obj["size"])), "xorest: export "+c.noun+" "+id+"."+format)
	if err != nil {
		return fmt.Errorf("export %s.%s: %w", id, format, err)
	}
	defer st.end(nil)
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set("Content-Disposition", attachment(nameOf(obj, id), "."+format))
	return s.stream(w, r, st, st.size)
}

// stream copies body to w with a 200 (and a Content-Length if size is not
// negative). An error after the headers went out cannot be rendered: it is
// logged and the response is aborted, so that the client sees a truncated
// body rather than a complete one.
func (s *server) stream(w http.ResponseWriter, r *http.Request, body io.Reader, size int64) error {
	if size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	n, err := copyLarge(w, body)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("%d bytes sent, %d announced", n, size)
	}
	if err == nil {
		return nil
	}
	return s.abortStream(r, err, n)
}

// copyBufferSize is the chunk size of streamed transfers: large chunks mean
// fewer system calls per byte, which is what a pass-through spends its CPU
// on (make bench, section xva).
const copyBufferSize = 1 << 20

// copyLarge copies src to dst in copyBufferSize chunks. It hides any
// ReaderFrom/WriterTo, which would make io.CopyBuffer fall back to 32 KiB
// chunks through net/http's body readers.
func copyLarge(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufferSize)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

// abortStream handles err, met after n bytes of a response whose headers
// went out: it is logged and the response aborted.
func (s *server) abortStream(r *http.Request, err error, n int64) error {
	if info := requestInfoFrom(r.Context()); info != nil {
		info.err = err
	}
	if !errors.Is(err, context.Canceled) {
		s.log.ErrorContext(r.Context(), "transfer aborted", "path", r.URL.Path, "bytes", n, "error", err.Error())
	}
	panic(http.ErrAbortHandler)
}

// nameOf is the object's name_label, or fallback.
func nameOf(obj xo.Object, fallback string) string {
	if n, _ := obj["name_label"].(string); strings.TrimSpace(n) != "" {
		return n
	}
	return fallback
}

// attachment is a Content-Disposition header offering name+ext.
func attachment(name, ext string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	v := mime.FormatMediaType("attachment", map[string]string{"filename": name + ext})
	if v == "" {
		return `attachment; filename="export` + ext + `"`
	}
	return v
}

// num is a JSON number as a float64 (0 if v is not a number).
func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return 0
}
