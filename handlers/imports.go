package handlers

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/xorest/xorest/transfer/vhd"
	"github.com/xorest/xorest/xo/xapi"
)

// importRoutes returns the routes that upload into XAPI (§E.2, E.4, E.5):
// each streams the request body to an XAPI HTTP handler inside a task; or,
// with a JSON body {"url": …}, pulls the image from that URL in a job
// (imports_url.go). A body without a Content-Length (chunked, e.g. `curl
// -T -` from a pipe) works where XAPI can find the image's end itself: an
// XVA (xapi.UnknownSize), a VHD (whose length its block table gives,
// vhdLength); a raw image needs its Content-Length.
func (s *server) importRoutes() []route {
	const fromURL = ". Or a JSON body {\"url\": an http(s) URL such as a presigned GET, or s3://bucket/key}: the image is pulled from the URL by a job; 202 and the task's URL, with sync the answer below (loopback, link-local and private addresses are refused with 403 unless allowed by XOREST_IMPORT_ALLOW)"
	return []route{
		{
			method: "PUT", pattern: BasePath + "/vdis/{id}", handler: s.importIntoVDI, tag: "vdis",
			summary: "Write a disk image into a VDI (id: <uuid>.vhd or <uuid>.raw; the VHD's virtual size must be the VDI's, a raw image no larger; a VHD may come without a Content-Length (chunked), a raw image needs one)" + fromURL,
			params:  []string{"sync"},
			body:    bodyDoc{schema: objectSchema(importVDIURLParams)},
			resp:    noContent("The image was written"),
		},
		{
			method: "POST", pattern: BasePath + "/srs/{id}/vdis", handler: s.importNewVDI, tag: "srs",
			summary: "Create a VDI on the SR from a VHD body (?raw: a raw image; name_label, name_description), sized from the VHD footer or the raw image's Content-Length; a VHD may come without a Content-Length (chunked), a raw image needs one" + fromURL,
			params:  []string{"raw", "sync"},
			body:    bodyDoc{schema: objectSchema(importNewVDIURLParams)},
			resp:    createdResp("The new VDI's id"),
		},
		{
			method: "POST", pattern: BasePath + "/pools/{id}/vms", handler: s.importVM, tag: "pools",
			summary: "Import a VM from an XVA body, plain or gzip- or zstd-compressed, with or without a Content-Length (a chunked upload streams through; ?sr=<SR id>; else the pool's default SR)" + fromURL,
			params:  []string{"sync"},
			body:    bodyDoc{schema: objectSchema(importVMURLParams)},
			resp:    createdResp("The new VM's id"),
		},
	}
}

// createdResp documents a 201 answer {"id": …} with a Location.
func createdResp(description string) respDoc {
	return respDoc{status: http.StatusCreated, description: description, schema: map[string]any{
		"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}},
	}}
}

// bodyLength returns the request's Content-Length, or -1
// (xapi.UnknownSize) for a body without one (chunked).
func bodyLength(r *http.Request) int64 {
	if r.ContentLength < 0 {
		return xapi.UnknownSize
	}
	return r.ContentLength
}

// errRawLength refuses a raw image without a Content-Length (411).
func errRawLength() error {
	return &Error{Kind: ErrLengthRequired, Message: "a raw image needs a Content-Length: XAPI writes a raw image until " +
		"Content-Length bytes have arrived, so without the size it cannot tell a complete upload from a cut one " +
		"(send the file itself, or a VHD, or a JSON body {\"url\": …})"}
}

// diskBody returns the body of a disk image of format and its length: the
// Content-Length, or, for a VHD sent without one, the length its metadata
// gives (vhdLength). A raw image without a Content-Length is refused.
func diskBody(r *http.Request, format string) (io.Reader, int64, error) {
	length := bodyLength(r)
	switch {
	case length >= 0:
		return r.Body, length, nil
	case format == "vhd":
		n, body, err := vhdLength(r.Body)
		if err != nil {
			return nil, 0, err
		}
		return &exactBody{r: body, left: n}, n, nil
	default:
		return nil, 0, errRawLength()
	}
}

// maxVHDMetadata bounds what vhdLength reads before the blocks: the
// dynamic header's gap to the block table, and the table.
const maxVHDMetadata = 32 << 20

// vhdLength computes the length of a dynamic or differencing VHD sent
// without a Content-Length, from its footer copy, dynamic header and
// block allocation table: the end of the last block (or of the table, of
// a parent locator, of a batmap), plus the footer. That is where XAPI
// looks for the footer: vhd-tool reads it at the last sector below the
// Content-Length (vhd_format f.ml openstream), so XO's 1 PiB
// Content-Length makes every VHD import fail with VDI_IO_ERROR once the
// blocks are written. With the computed length the import succeeds as
// with a file. The returned reader gives the whole body again. The image
// must end with its footer right after that point, as VHDs written by
// qemu-img, vhd-util and XAPI do.
func vhdLength(body io.Reader) (int64, io.Reader, error) {
	const head = vhd.FooterSize + vhd.HeaderSize
	b := make([]byte, head)
	if _, err := io.ReadFull(body, b); err != nil {
		return 0, nil, vhdReadError(err, "the VHD's footer copy and header")
	}
	if _, err := vhd.ParseFooter(b[:vhd.FooterSize], 0); err != nil {
		return 0, nil, vhdFormatError(err)
	}
	h, err := vhd.ParseHeader(b[vhd.FooterSize:], vhd.FooterSize)
	if err != nil {
		return 0, nil, vhdFormatError(err)
	}
	batBytes := (4*int64(h.MaxTableEntries) + vhd.SectorSize - 1) &^ (vhd.SectorSize - 1)
	if h.TableOffset < head || h.TableOffset+uint64(batBytes) > maxVHDMetadata {
		return 0, nil, BadRequest(fmt.Sprintf("invalid VHD: block table at byte %d (%d bytes): sent without a Content-Length, its metadata must lie within the first %d bytes", h.TableOffset, batBytes, maxVHDMetadata), nil)
	}
	meta := make([]byte, int64(h.TableOffset)+batBytes)
	copy(meta, b)
	if _, err := io.ReadFull(body, meta[head:]); err != nil {
		return 0, nil, vhdReadError(err, "the VHD's block table")
	}
	end := int64(h.TableOffset) + batBytes
	bitmap := (int64(h.BlockSize)/vhd.SectorSize/8 + vhd.SectorSize - 1) &^ (vhd.SectorSize - 1)
	blocks := false
	for i := int64(0); i < int64(h.MaxTableEntries); i++ {
		e := binary.BigEndian.Uint32(meta[int64(h.TableOffset)+4*i:])
		if e == 0xFFFFFFFF {
			continue
		}
		blocks = true
		end = max(end, int64(e)*vhd.SectorSize+bitmap+int64(h.BlockSize))
	}
	for _, l := range h.ParentLocators {
		if l.PlatformCode == [4]byte{} || l.DataOffset > vhd.MaxSize {
			continue
		}
		space := int64(l.DataSpace)
		if space < vhd.SectorSize { // sectors, as the specification says; some writers give bytes
			space *= vhd.SectorSize
		}
		length := (int64(l.DataLength) + vhd.SectorSize - 1) &^ (vhd.SectorSize - 1)
		end = max(end, int64(l.DataOffset)+max(space, length))
	}
	rest := io.MultiReader(bytes.NewReader(meta), body)
	if !blocks {
		// vhd-util keeps a batmap after the table; it may be all that
		// follows when no block is allocated.
		next := make([]byte, vhd.SectorSize)
		n, err := io.ReadFull(body, next)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, nil, fmt.Errorf("reading the VHD: %w", err)
		}
		if n == len(next) && string(next[:8]) == "tdbatmap" && end == int64(len(meta)) {
			off, sectors := int64(binary.BigEndian.Uint64(next[8:])), int64(binary.BigEndian.Uint32(next[16:]))
			if off >= end && off+sectors*vhd.SectorSize <= maxVHDMetadata {
				end = max(end+vhd.SectorSize, off+sectors*vhd.SectorSize)
			}
		}
		rest = io.MultiReader(bytes.NewReader(meta), bytes.NewReader(next[:n]), body)
	}
	return end + vhd.FooterSize, rest, nil
}

// vhdFormatError renders a malformed VHD as a 400.
func vhdFormatError(err error) error {
	if errors.Is(err, vhd.ErrInvalid) {
		return BadRequest("invalid VHD: "+err.Error(), nil)
	}
	return err
}

// vhdReadError renders a body that ends inside what of a VHD as a 400.
func vhdReadError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return BadRequest("truncated VHD: the body ends inside "+what, nil)
	}
	return fmt.Errorf("reading the VHD: %w", err)
}

// exactBody is a body of left bytes whose end before that is an
// io.ErrUnexpectedEOF (errTruncatedBody), not an io.EOF that net/http's
// client would only report as a length mismatch.
type exactBody struct {
	r    io.Reader
	left int64
	read int64
}

func (e *exactBody) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p[:min(int64(len(p)), e.left)])
	e.left -= int64(n)
	e.read += int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, &truncatedBody{read: e.read, want: e.read + e.left}
	}
	return n, err
}

// truncatedBody is the error of a body that ends before the length its
// image announces.
type truncatedBody struct{ read, want int64 }

func (t *truncatedBody) Error() string {
	return fmt.Sprintf("the image ends at byte %d, before byte %d where its metadata puts its end", t.read, t.want)
}

func (t *truncatedBody) Unwrap() error { return io.ErrUnexpectedEOF }

// uploadError renders what a failed body upload says about the body
// itself as a 400 (a VHD shorter than its metadata, an XVA that ends
// early); other errors are returned as they are.
func uploadError(err error) error {
	if tb, ok := errors.AsType[*truncatedBody](err); ok {
		return &Error{Kind: ErrBadRequest, Message: "truncated VHD: " + tb.Error(), Err: err}
	}
	if xe, ok := errors.AsType[*xapi.Error](err); ok && xe.Code == "IMPORT_ERROR_PREMATURE_EOF" {
		return &Error{Kind: ErrBadRequest, Message: "truncated XVA: the body ends before the archive's last disk (XAPI: IMPORT_ERROR_PREMATURE_EOF); nothing was imported",
			Data: map[string]any{"code": xe.Code}, Err: err}
	}
	return err
}

// vhdHead reads the footer copy and dynamic header at the start of a VHD
// body and checks them, and that a body of length bytes holds the block
// table and the footer they announce; the returned reader gives the whole
// body again. A malformed or truncated VHD is a 400 saying what is wrong.
func vhdHead(body io.Reader, length int64) (vhd.Footer, io.Reader, error) {
	const head = vhd.FooterSize + vhd.HeaderSize
	if length < head+vhd.FooterSize {
		return vhd.Footer{}, nil, BadRequest(fmt.Sprintf("not a dynamic VHD: %d bytes", length), nil)
	}
	b := make([]byte, head)
	if _, err := io.ReadFull(body, b); err != nil {
		return vhd.Footer{}, nil, fmt.Errorf("reading the VHD: %w", err)
	}
	f, err := vhd.ParseFooter(b[:vhd.FooterSize], 0)
	var h vhd.Header
	if err == nil {
		h, err = vhd.ParseHeader(b[vhd.FooterSize:], vhd.FooterSize)
	}
	if err != nil {
		if errors.Is(err, vhd.ErrInvalid) {
			return vhd.Footer{}, nil, BadRequest("invalid VHD: "+err.Error(), nil)
		}
		return vhd.Footer{}, nil, err
	}
	// The block allocation table and the closing footer must fit: a
	// shorter image is truncated, and XAPI would only find out after
	// the upload started.
	if h.TableOffset >= head {
		if need := h.TableOffset + 4*uint64(h.MaxTableEntries) + vhd.FooterSize; h.TableOffset > uint64(length) || need > uint64(length) {
			return vhd.Footer{}, nil, BadRequest(fmt.Sprintf("truncated VHD: %d bytes, too short for the block table (at byte %d, %d entries) and the footer", length, h.TableOffset, h.MaxTableEntries), nil)
		}
	}
	return f, io.MultiReader(bytes.NewReader(b), body), nil
}

// importIntoVDI answers PUT /rest/v0/vdis/<id>.vhd|.raw: the body goes to
// XAPI's PUT /import_raw_vdi. Sizes are checked before XAPI sees anything.
// Without a Content-Length a VHD is sent with the length its metadata
// gives (diskBody); a raw image is refused.
// A JSON body {"url": …} pulls the image from a URL instead
// (importIntoVDIFromURL).
func (s *server) importIntoVDI(w http.ResponseWriter, r *http.Request) error {
	id, format := r.PathValue("id"), ""
	for _, f := range []string{"vhd", "raw"} {
		if base, ok := strings.CutSuffix(id, "."+f); ok && base != "" {
			id, format = base, f
		}
	}
	if format == "" {
		return NotFound("route", r.URL.Path+" (use <id>.vhd or <id>.raw)")
	}
	if isJSONBody(r) {
		return s.importIntoVDIFromURL(w, r, id, format)
	}
	body, length, err := diskBody(r, format)
	if err != nil {
		return err
	}
	obj, pool, ref, err := s.target(r.Context(), "VDI", id)
	if err != nil {
		return err
	}
	body, err = checkDiskImage(body, length, format, int64(num(obj["size"])))
	if err != nil {
		return err
	}
	if err := writeVDI(r.Context(), pool.Client(), ref, id, format, body, length); err != nil {
		return uploadError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkDiskImage checks an image of length bytes to write into a VDI of
// size bytes: a raw image no larger, a VHD of exactly that virtual size.
// The returned reader gives the whole image again.
func checkDiskImage(body io.Reader, length int64, format string, size int64) (io.Reader, error) {
	switch format {
	case "raw":
		if length > size {
			return nil, InvalidParameters(fmt.Sprintf("the raw image (%d bytes) is larger than the VDI (%d bytes)", length, size), nil)
		}
	case "vhd":
		f, rest, err := vhdHead(body, length)
		if err != nil {
			return nil, err
		}
		if int64(f.CurrentSize) != size {
			return nil, InvalidParameters(fmt.Sprintf("the VHD's virtual size (%d bytes) differs from the VDI's (%d bytes)", f.CurrentSize, size), nil)
		}
		body = rest
	}
	return body, nil
}

// writeVDI sends an image of length bytes to XAPI's PUT /import_raw_vdi
// into the VDI ref, whose uuid is id.
func writeVDI(ctx context.Context, c *xapi.Client, ref xapi.Ref, id, format string, body io.Reader, length int64) error {
	_, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(ref)}, "format": {format}}, body, length, "xorest: import into VDI "+id)
	if err != nil {
		return fmt.Errorf("import into VDI %s: %w", id, err)
	}
	return nil
}

// importNewVDI answers POST /rest/v0/srs/<id>/vdis: VDI.create sized from
// the VHD footer (or the Content-Length with ?raw), then the upload; a
// failed upload destroys the VDI. Without a Content-Length a VHD is sent
// with the length its metadata gives (diskBody); a raw image is refused. A JSON body {"url": …} pulls the image
// from a URL instead (importNewVDIFromURL).
func (s *server) importNewVDI(w http.ResponseWriter, r *http.Request) error {
	if isJSONBody(r) {
		return s.importNewVDIFromURL(w, r)
	}
	q := r.URL.Query()
	format := "vhd"
	if queryOf(r).Raw { // a bare ?raw or raw=true, as every flag
		format = "raw"
	}
	body, length, err := diskBody(r, format)
	if err != nil {
		return err
	}
	_, pool, sr, err := s.target(r.Context(), "SR", r.PathValue("id"))
	if err != nil {
		return err
	}
	body, size, err := newDiskSize(body, length, format)
	if err != nil {
		return err
	}
	d := newDisk{sr: sr, name: s.newDiskName(q.Get("name_label")), description: q.Get("name_description"), size: size, format: format}
	uuid, err := d.create(r.Context(), pool.Client(), body, length)
	if err != nil {
		return uploadError(err)
	}
	return created(w, BasePath+"/vdis/", uuid)
}

// newDiskSize returns the virtual size of a new VDI for an image of length
// bytes: the VHD's virtual size, or the raw image's length. The returned
// reader gives the whole image again.
func newDiskSize(body io.Reader, length int64, format string) (io.Reader, int64, error) {
	size := length
	if format == "vhd" {
		f, rest, err := vhdHead(body, length)
		if err != nil {
			return nil, 0, err
		}
		body, size = rest, int64(f.CurrentSize)
	}
	if size <= 0 {
		return nil, 0, BadRequest("an empty disk image", nil)
	}
	return body, size, nil
}

// newDiskName is the name_label of an imported disk: name, else XO's
// "[XO] Imported disk - <time>".
func (s *server) newDiskName(name string) string {
	if name == "" {
		name = "[XO] Imported disk - " + s.now().UTC().Format(time.RFC3339)
	}
	return name
}

// newDisk is a VDI to create and fill with an image.
type newDisk struct {
	sr                xapi.Ref
	name, description string
	size              int64  // virtual size
	format            string // of the image: vhd or raw
}

// create creates the VDI, writes the image of length bytes into it and
// returns its uuid; when the write fails the VDI is destroyed.
func (d newDisk) create(ctx context.Context, c *xapi.Client, body io.Reader, length int64) (string, error) {
	var vdi xapi.Ref
	if err := c.CallInto(ctx, &vdi, "VDI.create", map[string]any{
		"name_label": d.name, "name_description": d.description, "SR": d.sr, "virtual_size": d.size,
		"type": "user", "sharable": false, "read_only": false, "other_config": map[string]string{},
		"xenstore_data": map[string]string{}, "sm_config": map[string]string{}, "tags": []string{},
	}); err != nil {
		return "", fmt.Errorf("VDI.create: %w", err)
	}
	if _, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(vdi)}, "format": {d.format}}, body, length,
		"xorest: import new VDI "+d.name); err != nil {
		dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer stop()
		_, _ = c.Call(dctx, "VDI.destroy", vdi)
		return "", fmt.Errorf("import of a new VDI: %w", err)
	}
	var uuid string
	if err := c.CallInto(ctx, &uuid, "VDI.get_uuid", vdi); err != nil {
		return "", fmt.Errorf("VDI.get_uuid: %w", err)
	}
	return uuid, nil
}

// importVM answers POST /rest/v0/pools/<id>/vms: the XVA body goes to
// XAPI's PUT /import (into ?sr=, else the pool's default SR) and the new
// VM's id is answered. A body without a Content-Length streams through
// (xapi.UnknownSize): XAPI reads the archive to its last disk. XAPI
// removes what a failed import created, a truncated body included. A JSON
// body {"url": …} pulls the XVA from a URL instead (importVMFromURL).
func (s *server) importVM(w http.ResponseWriter, r *http.Request) error {
	if isJSONBody(r) {
		return s.importVMFromURL(w, r)
	}
	_, pool, _, err := s.target(r.Context(), "pool", r.PathValue("id"))
	if err != nil {
		return err
	}
	var sr xapi.Ref
	if id := r.URL.Query().Get("sr"); id != "" {
		obj, srPool, ref, err := s.target(r.Context(), "SR", id)
		if err != nil {
			return err
		}
		if srPool != pool {
			return InvalidParameters("SR "+idString(obj["id"])+" is not in pool "+r.PathValue("id"), nil)
		}
		sr = ref
	}
	uuid, err := importXVA(r.Context(), pool.Client(), sr, r.Body, bodyLength(r))
	if err != nil {
		return uploadError(err)
	}
	return created(w, BasePath+"/vms/", uuid)
}

// importXVA sends an XVA of length bytes (xapi.UnknownSize: until the
// body ends) to XAPI's PUT /import, into the SR sr (empty: the pool's
// default SR), and returns the new VM's uuid.
func importXVA(ctx context.Context, c *xapi.Client, sr xapi.Ref, body io.Reader, length int64) (string, error) {
	query := url.Values{}
	if sr != "" {
		query.Set("sr_id", string(sr))
	}
	v, err := c.PutImport(ctx, "/import/", query, body, length, "xorest: VM import")
	if err != nil {
		return "", fmt.Errorf("VM import: %w", err)
	}
	refs, _ := v.([]any)
	if len(refs) == 0 {
		return "", fmt.Errorf("VM import: no VM in the task result %v", v)
	}
	ref, _ := refs[0].(string)
	var uuid string
	if err := c.CallInto(ctx, &uuid, "VM.get_uuid", xapi.Ref(ref)); err != nil {
		return "", fmt.Errorf("VM.get_uuid: %w", err)
	}
	return uuid, nil
}

// created answers 201 with a Location and {"id": id}.
func created(w http.ResponseWriter, prefix, id string) error {
	w.Header().Set("Location", prefix+id)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	return json.NewEncoder(w).Encode(map[string]string{"id": id})
}
