package handlers

import (
	"bytes"
	"context"
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
// each streams the request body, with its Content-Length, to an XAPI HTTP
// handler inside a task; or, with a JSON body {"url": …}, pulls the image
// from that URL in a job (imports_url.go).
func (s *server) importRoutes() []route {
	const fromURL = ". Or a JSON body {\"url\": an http(s) URL such as a presigned GET, or s3://bucket/key}: the image is pulled from the URL by a job; 202 and the task's URL, with sync the answer below (loopback, link-local and private addresses are refused with 403 unless allowed by XOREST_IMPORT_ALLOW)"
	return []route{
		{
			method: "PUT", pattern: BasePath + "/vdis/{id}", handler: s.importIntoVDI, tag: "vdis",
			summary: "Write a disk image into a VDI (id: <uuid>.vhd or <uuid>.raw; Content-Length required; the VHD's virtual size must be the VDI's, a raw image no larger)" + fromURL,
			params:  []string{"sync"},
			body:    bodyDoc{schema: objectSchema(importVDIURLParams)},
			resp:    noContent("The image was written"),
		},
		{
			method: "POST", pattern: BasePath + "/srs/{id}/vdis", handler: s.importNewVDI, tag: "srs",
			summary: "Create a VDI on the SR from a VHD body (?raw: a raw image; name_label, name_description), sized from the VHD footer or the Content-Length" + fromURL,
			params:  []string{"raw", "sync"},
			body:    bodyDoc{schema: objectSchema(importNewVDIURLParams)},
			resp:    createdResp("The new VDI's id"),
		},
		{
			method: "POST", pattern: BasePath + "/pools/{id}/vms", handler: s.importVM, tag: "pools",
			summary: "Import a VM from an XVA body (?sr=<SR id>; else the pool's default SR)" + fromURL,
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

// bodyLength returns the request's Content-Length: XAPI refuses chunked
// uploads, and the VDI size may come from it.
func bodyLength(r *http.Request) (int64, error) {
	if r.ContentLength < 0 {
		return 0, &Error{Kind: ErrBadRequest, Message: "a Content-Length is required (XAPI does not accept chunked uploads)"}
	}
	return r.ContentLength, nil
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
	length, err := bodyLength(r)
	if err != nil {
		return err
	}
	obj, pool, ref, err := s.target(r.Context(), "VDI", id)
	if err != nil {
		return err
	}
	body, err := checkDiskImage(r.Body, length, format, int64(num(obj["size"])))
	if err != nil {
		return err
	}
	if err := writeVDI(r.Context(), pool.Client(), ref, id, format, body, length); err != nil {
		return err
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
// failed upload destroys the VDI. A JSON body {"url": …} pulls the image
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
	length, err := bodyLength(r)
	if err != nil {
		return err
	}
	_, pool, sr, err := s.target(r.Context(), "SR", r.PathValue("id"))
	if err != nil {
		return err
	}
	body, size, err := newDiskSize(r.Body, length, format)
	if err != nil {
		return err
	}
	d := newDisk{sr: sr, name: s.newDiskName(q.Get("name_label")), description: q.Get("name_description"), size: size, format: format}
	uuid, err := d.create(r.Context(), pool.Client(), body, length)
	if err != nil {
		return err
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
// VM's id is answered. XAPI removes what a failed import created. A JSON
// body {"url": …} pulls the XVA from a URL instead (importVMFromURL).
func (s *server) importVM(w http.ResponseWriter, r *http.Request) error {
	if isJSONBody(r) {
		return s.importVMFromURL(w, r)
	}
	length, err := bodyLength(r)
	if err != nil {
		return err
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
	uuid, err := importXVA(r.Context(), pool.Client(), sr, r.Body, length)
	if err != nil {
		return err
	}
	return created(w, BasePath+"/vms/", uuid)
}

// importXVA sends an XVA of length bytes to XAPI's PUT /import, into the
// SR sr (empty: the pool's default SR), and returns the new VM's uuid.
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
