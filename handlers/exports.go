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
		summary: "<id>.xva exports it as an XVA (?compress=gzip|zstd)",
		serve:   (*server).exportXVA,
	}
	disk := []fileTransfer{
		{suffix: ".vhd", summary: "<id>.vhd exports the disk as a VHD (?preferNbd&nbdConcurrency=N: data read over NBD, with a Content-Length)", serve: (*server).exportVHD},
		{suffix: ".raw", summary: "<id>.raw exports the disk as raw bytes (?preferNbd&nbdConcurrency=N: read over NBD)", serve: (*server).exportRaw},
	}
	ovaExport := fileTransfer{
		suffix:  ".ova",
		summary: "<id>.ova exports it as an OVA (OVF + streamOptimized VMDKs, with a Content-Length)",
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
// from XAPI's GET /export. A VM that is not halted or suspended is a 409
// (VM_BAD_POWER_STATE, from the task); a client that leaves cancels the
// XAPI task.
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
	st, err := openXVA(r.Context(), pool.Client(), ref, comp, "xorest: export "+c.noun+" "+id)
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
	size        int64
	contentType string
	// end releases the stream; outcome is nil when it was read completely.
	end func(outcome error)
}

// openXVA opens XAPI's GET /export of a VM with use_compression comp
// ("false", "true" or "zstd").
func openXVA(ctx context.Context, xc *xapi.Client, ref xapi.Ref, comp, label string) (*exportStream, error) {
	d, err := xc.GetExport(ctx, "/export/", url.Values{"ref": {string(ref)}, "use_compression": {comp}}, label)
	if err != nil {
		return nil, err
	}
	return &exportStream{Reader: d, size: -1, contentType: "application/octet-stream", end: func(error) { _ = d.Close() }}, nil
}

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
