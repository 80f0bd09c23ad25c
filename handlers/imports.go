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
// handler inside a task.
func (s *server) importRoutes() []route {
	return []route{
		{
			method: "PUT", pattern: BasePath + "/vdis/{id}", handler: s.importIntoVDI, tag: "vdis",
			summary: "Write a disk image into a VDI (id: <uuid>.vhd or <uuid>.raw; Content-Length required; the VHD's virtual size must be the VDI's, a raw image no larger)",
			resp:    noContent("The image was written"),
		},
		{
			method: "POST", pattern: BasePath + "/srs/{id}/vdis", handler: s.importNewVDI, tag: "srs",
			summary: "Create a VDI on the SR from a VHD body (?raw: a raw image; name_label, name_description), sized from the VHD footer or the Content-Length",
			params:  []string{"raw"},
			resp:    createdResp("The new VDI's id"),
		},
		{
			method: "POST", pattern: BasePath + "/pools/{id}/vms", handler: s.importVM, tag: "pools",
			summary: "Import a VM from an XVA body (?sr=<SR id>; else the pool's default SR)",
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
// body and checks them; the returned reader gives the whole body again.
// A malformed VHD is a 400 saying what is wrong.
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
	if err == nil {
		_, err = vhd.ParseHeader(b[vhd.FooterSize:], vhd.FooterSize)
	}
	if err != nil {
		if errors.Is(err, vhd.ErrInvalid) {
			return vhd.Footer{}, nil, BadRequest("invalid VHD: "+err.Error(), nil)
		}
		return vhd.Footer{}, nil, err
	}
	return f, io.MultiReader(bytes.NewReader(b), body), nil
}

// importIntoVDI answers PUT /rest/v0/vdis/<id>.vhd|.raw: the body goes to
// XAPI's PUT /import_raw_vdi. Sizes are checked before XAPI sees anything.
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
	length, err := bodyLength(r)
	if err != nil {
		return err
	}
	obj, pool, ref, err := s.target(r.Context(), "VDI", id)
	if err != nil {
		return err
	}
	size := int64(num(obj["size"]))
	body := io.Reader(r.Body)
	switch format {
	case "raw":
		if length > size {
			return InvalidParameters(fmt.Sprintf("the raw image (%d bytes) is larger than the VDI (%d bytes)", length, size), nil)
		}
	case "vhd":
		f, rest, err := vhdHead(body, length)
		if err != nil {
			return err
		}
		if int64(f.CurrentSize) != size {
			return InvalidParameters(fmt.Sprintf("the VHD's virtual size (%d bytes) differs from the VDI's (%d bytes)", f.CurrentSize, size), nil)
		}
		body = rest
	}
	_, err = pool.Client().PutImport(r.Context(), "/import_raw_vdi", url.Values{
		"vdi": {string(ref)}, "format": {format},
	}, body, length, "xorest: import into VDI "+id)
	if err != nil {
		return fmt.Errorf("import into VDI %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// importNewVDI answers POST /rest/v0/srs/<id>/vdis: VDI.create sized from
// the VHD footer (or the Content-Length with ?raw), then the upload; a
// failed upload destroys the VDI.
func (s *server) importNewVDI(w http.ResponseWriter, r *http.Request) error {
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
	body, size := io.Reader(r.Body), length
	if format == "vhd" {
		f, rest, err := vhdHead(body, length)
		if err != nil {
			return err
		}
		body, size = rest, int64(f.CurrentSize)
	}
	if size <= 0 {
		return BadRequest("an empty disk image", nil)
	}
	name := q.Get("name_label")
	if name == "" {
		name = "[XO] Imported disk - " + s.now().UTC().Format(time.RFC3339)
	}
	c := pool.Client()
	ctx := r.Context()
	var vdi xapi.Ref
	if err := c.CallInto(ctx, &vdi, "VDI.create", map[string]any{
		"name_label": name, "name_description": q.Get("name_description"), "SR": sr, "virtual_size": size,
		"type": "user", "sharable": false, "read_only": false, "other_config": map[string]string{},
		"xenstore_data": map[string]string{}, "sm_config": map[string]string{}, "tags": []string{},
	}); err != nil {
		return fmt.Errorf("VDI.create: %w", err)
	}
	if _, err := c.PutImport(ctx, "/import_raw_vdi", url.Values{"vdi": {string(vdi)}, "format": {format}}, body, length,
		"xorest: import new VDI "+name); err != nil {
		dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer stop()
		_, _ = c.Call(dctx, "VDI.destroy", vdi)
		return fmt.Errorf("import of a new VDI: %w", err)
	}
	var uuid string
	if err := c.CallInto(ctx, &uuid, "VDI.get_uuid", vdi); err != nil {
		return fmt.Errorf("VDI.get_uuid: %w", err)
	}
	return created(w, BasePath+"/vdis/", uuid)
}

// importVM answers POST /rest/v0/pools/<id>/vms: the XVA body goes to
// XAPI's PUT /import (into ?sr=, else the pool's default SR) and the new
// VM's id is answered. XAPI removes what a failed import created.
func (s *server) importVM(w http.ResponseWriter, r *http.Request) error {
	length, err := bodyLength(r)
	if err != nil {
		return err
	}
	_, pool, _, err := s.target(r.Context(), "pool", r.PathValue("id"))
	if err != nil {
		return err
	}
	query := url.Values{}
	if id := r.URL.Query().Get("sr"); id != "" {
		obj, srPool, sr, err := s.target(r.Context(), "SR", id)
		if err != nil {
			return err
		}
		if srPool != pool {
			return InvalidParameters("SR "+idString(obj["id"])+" is not in pool "+r.PathValue("id"), nil)
		}
		query.Set("sr_id", string(sr))
	}
	c := pool.Client()
	ctx := r.Context()
	v, err := c.PutImport(ctx, "/import/", query, r.Body, length, "xorest: VM import")
	if err != nil {
		return fmt.Errorf("VM import: %w", err)
	}
	refs, _ := v.([]any)
	if len(refs) == 0 {
		return fmt.Errorf("VM import: no VM in the task result %v", v)
	}
	ref, _ := refs[0].(string)
	var uuid string
	if err := c.CallInto(ctx, &uuid, "VM.get_uuid", xapi.Ref(ref)); err != nil {
		return fmt.Errorf("VM.get_uuid: %w", err)
	}
	return created(w, BasePath+"/vms/", uuid)
}

// created answers 201 with a Location and {"id": id}.
func created(w http.ResponseWriter, prefix, id string) error {
	w.Header().Set("Location", prefix+id)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	return json.NewEncoder(w).Encode(map[string]string{"id": id})
}
