package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xorest/xorest/transfer/urlsource"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// URL imports (issue 6). The three import routes — POST /pools/<id>/vms
// (XVA), PUT /vdis/<id>.vhd|.raw and POST /srs/<id>/vdis — take, instead
// of the image, a JSON body (Content-Type: application/json)
//
//	{"url": "https://…"}        an http(s) URL, e.g. an S3 presigned GET
//	{"url": "s3://bucket/key"}  an object of the server's S3 (Config.S3),
//	                            which xorest presigns itself
//
// with the route's other parameters as members where they make sense (the
// VM import: sr; a new VDI: raw, name_label, name_description). A query
// parameter of the same name still applies; given both ways it is a 422.
// Unknown members, a missing or malformed url are a 422 listing every
// problem; a body that is not one JSON object a 400.
//
// Before anything is created in XAPI the request checks what it can: the
// URL's syntax, the address policy (below), the object's size (a HEAD, or a
// GET of one byte for presigned URLs that refuse HEAD), and for disks the
// VHD footer and header (virtual size equal to the VDI's, block table
// within the object) or the raw size (no larger than the VDI). Then the
// transfer runs as a job (jobs.go), detached from the request: the answer
// is 202, Location: /rest/v0/tasks/<uuid>, the task URL as the body, and
// the task's progress follows the bytes pulled. With ?sync the request
// waits (bounded) and answers as the body imports do: 201 {"id"} with a
// Location for a new VM or VDI, 204 for a write into a VDI. The task's
// result is {"id", "size", "etag", "resumes"}.
//
// The job opens the URL again (transfer/urlsource): a URL whose object is
// no longer the one checked (size or ETag) fails with ErrChanged; a broken
// connection resumes with Range and If-Match; the byte count is verified.
// A failure leaves nothing behind: a new VDI is destroyed, XAPI removes
// what a failed /import created, and nothing is created before the checks.
//
// Address policy: only public addresses are reachable. Loopback, link-local
// (169.254.169.254, the cloud metadata service), private, shared and
// reserved addresses — also when a host name resolves to one, or a redirect
// leads to one — are refused with a 403 unless Config.ImportAllow
// (--import-allow, XOREST_IMPORT_ALLOW) lists the host or a prefix holding
// the address. 403 rather than 422: the request is well formed and the URL
// valid, but this server is not permitted to reach that address (the
// operator can permit it), and the answer does not say which address or
// why, so that it is no probe of the internal network. For s3://bucket/key
// the presigned URL's host (Config.S3's endpoint, possibly a private
// MinIO) is allowed without being listed, because xorest built that URL
// from its own configuration; an https URL to the same private endpoint
// must be allowed explicitly (an allowed host name opens every port of it).
//
// Errors of the remote side are 422 with the redacted URL (no query string,
// no userinfo): a 4xx status (an expired presigned URL answers 403, a
// missing object 404), a size that no answer tells, a byte count that
// differs from the announced size, an object that changed during the
// transfer, a refused redirect. A remote server that fails (5xx, after
// the retries) or cannot be reached is a 502. A presigned URL's query string is its
// credential: it appears in no answer, log line or task.

// Job kinds of URL imports (jobRunners).
const (
	jobImportVMURL     = "import-vm-url"
	jobImportVDIURL    = "import-vdi-url"
	jobImportNewVDIURL = "import-new-vdi-url"
)

// importPresignExpiry is the validity of the URL xorest presigns for an
// s3://bucket/key import; it is never shown, and only needs to outlast
// the transfer's resumes.
const importPresignExpiry = 12 * time.Hour

// maxImportURL bounds the url member: it travels in the job (a Lambda
// event is at most deploy.MaxJob), and presigned URLs, session token
// included, stay far below.
const maxImportURL = 16 << 10

// probeOptions bound the checks a request makes on an import URL (two
// attempts, 8 s of silence each), so that the answer comes within an API
// gateway's time limit (29 s).
var probeOptions = urlsource.Options{Retries: 2, Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second, IdleTimeout: 8 * time.Second}

// URL import parameters (the members of the JSON body).
var (
	importURLParam = actionParam{name: "url", typ: "string",
		description: "http(s) URL of the image, e.g. an S3 presigned GET, or s3://bucket/key of the server's S3"}
	importVMURLParams = []actionParam{importURLParam,
		{name: "sr", typ: "string", optional: true, kind: "SR", description: "The SR to import into; the pool's default SR when absent"}}
	importVDIURLParams    = []actionParam{importURLParam}
	importNewVDIURLParams = []actionParam{importURLParam,
		{name: "raw", typ: "boolean", optional: true, description: "The image is raw, not a VHD"},
		{name: "name_label", typ: "string", optional: true, description: "The new VDI's name"},
		{name: "name_description", typ: "string", optional: true, description: "The new VDI's description"}}
)

// isJSONBody reports whether the request's body is JSON: the import
// routes then take {"url": …} instead of the image itself.
func isJSONBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// importSource is where an import pulls from: an http(s) URL, or an object
// of the server's S3.
type importSource struct {
	URL    string `json:"url,omitempty"` // as the client gave it (a presigned URL is a credential)
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"`
}

// urlImportParams are the parameters of a URL import job (job.Params):
// what the request checked.
type urlImportParams struct {
	importSource
	// Size and ETag are the object's when the request checked it.
	Size int64  `json:"size"`
	ETag string `json:"etag,omitempty"`
	// Format of a disk image: vhd or raw.
	Format string `json:"format,omitempty"`
	// VDI is the VDI written into (import-vdi-url), VDIID its uuid.
	VDI   xapi.Ref `json:"vdi,omitempty"`
	VDIID string   `json:"vdi_id,omitempty"`
	// SR is the SR of a new VDI, or of a VM (empty: the default SR).
	SR xapi.Ref `json:"sr,omitempty"`
	// VirtualSize, NameLabel and NameDescription describe a new VDI.
	VirtualSize     int64  `json:"virtual_size,omitempty"`
	NameLabel       string `json:"name_label,omitempty"`
	NameDescription string `json:"name_description,omitempty"`
}

// parseImportSource checks the url member: s3://bucket/key, or an http(s)
// URL that urlsource.ParseURL accepts. Errors are field errors that never
// quote the query string.
func parseImportSource(raw string) (importSource, *fieldError) {
	if len(raw) > maxImportURL {
		return importSource{}, &fieldError{"url", fmt.Sprintf("must be at most %d bytes", maxImportURL)}
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok && strings.EqualFold(scheme, "s3") {
		bucket, key, _ := strings.Cut(rest, "/")
		switch {
		case !validBucket(bucket):
			return importSource{}, &fieldError{"url", "s3://bucket/key: the bucket must be 3 to 63 letters, digits, dots, hyphens or underscores"}
		case key == "" || len(key) > 1024 || !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return importSource{}, &fieldError{"url", "s3://bucket/key: the key must be 1 to 1024 bytes of UTF-8 without control characters"}
		}
		return importSource{Bucket: bucket, Key: key}, nil
	}
	if _, err := urlsource.ParseURL(raw); err != nil {
		return importSource{}, &fieldError{"url", "must be an http(s) URL or s3://bucket/key: " + strings.TrimPrefix(err.Error(), "urlsource: ")}
	}
	return importSource{URL: raw}, nil
}

// validBucket reports whether b can be an S3 bucket name (the legacy
// rules, which S3-compatible servers still accept, less what would break a
// URL).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range []byte(b) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// parseURLImport checks the members of a URL import's JSON body against
// params: query parameters of the same name (non-empty) apply when the
// body lacks them, and a parameter given both ways is an error. Object
// parameters are resolved in pool. It returns the arguments, the resolved
// refs and the source, or a 422 listing every problem.
func parseURLImport(members map[string]json.RawMessage, params []actionParam, query url.Values, pool *xo.Pool) (map[string]any, map[string]xapi.Ref, importSource, error) {
	var errs []fieldError
	for _, p := range params {
		v := query.Get(p.name)
		if p.name == "url" || !query.Has(p.name) || (v == "" && p.typ == "string") {
			continue
		}
		if _, ok := members[p.name]; ok {
			errs = append(errs, fieldError{p.name, "given both in the query and in the body"})
			continue
		}
		if p.typ == "boolean" { // a flag: bare or =true is on (ParseQuery checked it)
			v = fmt.Sprint(!strings.EqualFold(v, "false"))
			members[p.name] = json.RawMessage(v)
			continue
		}
		members[p.name], _ = json.Marshal(v)
	}
	args, refs := validateMembers(params, pool, members, "", &errs)
	var src importSource
	if u, ok := args["url"].(string); ok {
		s, ferr := parseImportSource(u)
		if ferr != nil {
			errs = append(errs, *ferr)
		}
		src = s
	}
	if len(errs) > 0 {
		return nil, nil, importSource{}, invalidFields(errs)
	}
	return args, refs, src, nil
}

// readURLImport reads and checks the JSON body of a URL import (see
// parseURLImport) and refuses s3:// sources when the server has no S3
// (501).
func (s *server) readURLImport(r *http.Request, pool *xo.Pool, params []actionParam, members map[string]json.RawMessage) (map[string]any, map[string]xapi.Ref, importSource, error) {
	args, refs, src, err := parseURLImport(members, params, r.URL.Query(), pool)
	if err != nil {
		return nil, nil, importSource{}, err
	}
	if src.Bucket != "" && s.cfg.S3 == nil {
		return nil, nil, importSource{}, NotImplemented("s3:// imports need S3 configured on this server (XOREST_S3_BUCKET, XOREST_S3_ENDPOINT); give an https URL instead, such as a presigned GET")
	}
	return args, refs, src, nil
}

// openSource opens src with opts: an s3:// source is presigned with the
// server's S3 client, and the presigned URL's host allowed. Errors are
// mapped with sourceError.
func (s *server) openSource(ctx context.Context, src importSource, opts urlsource.Options) (*urlsource.Reader, error) {
	raw := src.URL
	opts.Allow = slices.Clip(s.cfg.ImportAllow)
	if src.Bucket != "" {
		if s.cfg.S3 == nil {
			return nil, NotImplemented("s3:// imports need S3 configured on this server")
		}
		u, err := s.cfg.S3.Presign(ctx, src.Bucket, src.Key, importPresignExpiry)
		if err != nil {
			return nil, fmt.Errorf("presigning s3://%s/%s: %w", src.Bucket, src.Key, err)
		}
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("presigned URL of s3://%s/%s: %w", src.Bucket, src.Key, urlsource.ErrInvalidURL)
		}
		opts.Allow = append(opts.Allow, pu.Hostname())
		raw = u
	}
	rd, err := urlsource.Open(ctx, raw, opts)
	if err != nil {
		return nil, sourceError(&sourceFailure{err})
	}
	return rd, nil
}

// sourceFailure marks an error of the import source (urlsource), so that
// it is told apart from XAPI's errors after PutImport wrapped it.
type sourceFailure struct{ err error }

func (e *sourceFailure) Error() string { return e.err.Error() }
func (e *sourceFailure) Unwrap() error { return e.err }

// sourceBody is the import source as a body for PutImport, its errors
// marked as the source's.
type sourceBody struct{ r io.Reader }

func (b sourceBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceFailure{err}
	}
	return n, err
}

// sourceError turns a failure of the import source into an answer: 403
// for an address the policy refuses (saying neither which nor why), 422
// with the redacted URL for everything the remote side did wrong. Errors
// already rendered (*Error), cancellations and errors of anything else
// (XAPI's) are returned as they are.
func sourceError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, urlsource.ErrForbiddenAddress) {
		return &Error{Kind: ErrForbidden, Message: "the import URL leads to an address this server may not reach (loopback, link-local, private and reserved addresses are refused unless allowed by XOREST_IMPORT_ALLOW)",
			Data: map[string]any{"field": "url"}, Err: err}
	}
	if errors.Is(err, urlsource.ErrInvalidAllow) {
		return fmt.Errorf("the server's import allowlist (XOREST_IMPORT_ALLOW): %w", err)
	}
	failure, ok := errors.AsType[*sourceFailure](err)
	if !ok {
		return err
	}
	data := map[string]any{"field": "url"}
	var what string
	var sentinel error
	kind := ErrInvalidParameters
	switch se, isStatus := errors.AsType[*urlsource.StatusError](err); {
	case isStatus:
		what = fmt.Sprintf("the import URL answered %d %s", se.StatusCode, http.StatusText(se.StatusCode))
		data["status"], data["url"] = se.StatusCode, se.URL
		if se.StatusCode >= 500 {
			kind = ErrBadGateway
		}
	case errors.Is(err, urlsource.ErrInvalidURL):
		what, sentinel = "the import URL is not valid", urlsource.ErrInvalidURL
	case errors.Is(err, urlsource.ErrRedirect):
		what, sentinel = "the import URL redirects where this server does not follow", urlsource.ErrRedirect
	case errors.Is(err, urlsource.ErrUnknownSize):
		what, sentinel = "the import URL does not tell the size of its object", urlsource.ErrUnknownSize
	case errors.Is(err, urlsource.ErrSizeMismatch):
		what, sentinel = "the import URL delivered another number of bytes than it announced", urlsource.ErrSizeMismatch
	case errors.Is(err, urlsource.ErrChanged):
		what, sentinel = "the object at the import URL changed during the import", urlsource.ErrChanged
	case errors.Is(err, urlsource.ErrNotResumable):
		what, sentinel = "the import broke and the object at the URL cannot be resumed (it has no ETag or Last-Modified)", urlsource.ErrNotResumable
	case errors.Is(err, urlsource.ErrProtocol):
		what, sentinel = "the server of the import URL broke HTTP range semantics", urlsource.ErrProtocol
	default:
		what, kind = "the import URL cannot be read", ErrBadGateway
	}
	// The details (their URLs redacted by urlsource), without repeating
	// what the message says.
	msg := failure.err.Error()
	if sentinel != nil {
		msg = strings.TrimPrefix(msg, sentinel.Error()+": ")
	}
	msg = strings.ReplaceAll(msg, "urlsource: ", "")
	return &Error{Kind: kind, Message: what + ": " + msg, Data: data, Err: err}
}

// probeSource opens src within the request's bounds, runs check on the
// object (nil: none) and records its size and ETag in p.
func (s *server) probeSource(ctx context.Context, src importSource, p *urlImportParams, check func(rd *urlsource.Reader) error) error {
	rd, err := s.openSource(ctx, src, probeOptions)
	if err != nil {
		return err
	}
	defer rd.Close()
	if check != nil {
		if err := check(rd); err != nil {
			if _, ok := errors.AsType[*Error](err); ok {
				return err
			}
			return sourceError(&sourceFailure{err})
		}
	}
	p.importSource, p.Size, p.ETag = src, rd.Size(), rd.ETag()
	return nil
}

// urlImportTarget is the common start of a URL import: the JSON body, the
// target object and the checked arguments.
func (s *server) urlImportTarget(w http.ResponseWriter, r *http.Request, kind, id string, params []actionParam) (xo.Object, *xo.Pool, xapi.Ref, map[string]any, map[string]xapi.Ref, importSource, error) {
	data, err := s.readJSONObject(w, r, false)
	if err != nil {
		return nil, nil, "", nil, nil, importSource{}, err
	}
	obj, pool, ref, err := s.target(r.Context(), kind, id)
	if err != nil {
		return nil, nil, "", nil, nil, importSource{}, err
	}
	args, refs, src, err := s.readURLImport(r, pool, params, data)
	if err != nil {
		return nil, nil, "", nil, nil, importSource{}, err
	}
	return obj, pool, ref, args, refs, src, nil
}

// importIntoVDIFromURL answers PUT /rest/v0/vdis/<id>.vhd|.raw with a
// JSON body {"url"}.
func (s *server) importIntoVDIFromURL(w http.ResponseWriter, r *http.Request, id, format string) error {
	obj, pool, ref, _, _, src, err := s.urlImportTarget(w, r, "VDI", id, importVDIURLParams)
	if err != nil {
		return err
	}
	size := int64(num(obj["size"]))
	uuid := idString(obj["id"])
	p := urlImportParams{Format: format, VDI: ref, VDIID: uuid}
	if err := s.probeSource(r.Context(), src, &p, func(rd *urlsource.Reader) error {
		_, err := checkDiskImage(rd, rd.Size(), format, size)
		return err
	}); err != nil {
		return err
	}
	return s.startJob(w, r, jobStart{
		Pool: pool, Name: "REST API: import into VDI from a URL", AppliesTo: uuid, Kind: jobImportVDIURL, Params: p,
		Sync: queryOf(r).Sync, Done: func(w http.ResponseWriter, _ any) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		},
	})
}

// importNewVDIFromURL answers POST /rest/v0/srs/<id>/vdis with a JSON
// body {"url", "raw", "name_label", "name_description"}.
func (s *server) importNewVDIFromURL(w http.ResponseWriter, r *http.Request) error {
	obj, pool, sr, args, _, src, err := s.urlImportTarget(w, r, "SR", r.PathValue("id"), importNewVDIURLParams)
	if err != nil {
		return err
	}
	format := "vhd"
	if raw, _ := args["raw"].(bool); raw {
		format = "raw"
	}
	name, _ := args["name_label"].(string)
	desc, _ := args["name_description"].(string)
	p := urlImportParams{Format: format, SR: sr, NameLabel: s.newDiskName(name), NameDescription: desc}
	if err := s.probeSource(r.Context(), src, &p, func(rd *urlsource.Reader) error {
		_, size, err := newDiskSize(rd, rd.Size(), format)
		p.VirtualSize = size
		return err
	}); err != nil {
		return err
	}
	return s.startJob(w, r, jobStart{
		Pool: pool, Name: "REST API: import a new VDI from a URL", AppliesTo: idString(obj["id"]), Kind: jobImportNewVDIURL, Params: p,
		Sync: queryOf(r).Sync, Done: createdDone("/vdis/"),
	})
}

// importVMFromURL answers POST /rest/v0/pools/<id>/vms with a JSON body
// {"url", "sr"}.
func (s *server) importVMFromURL(w http.ResponseWriter, r *http.Request) error {
	obj, pool, _, _, refs, src, err := s.urlImportTarget(w, r, "pool", r.PathValue("id"), importVMURLParams)
	if err != nil {
		return err
	}
	p := urlImportParams{SR: refs["sr"]}
	if err := s.probeSource(r.Context(), src, &p, nil); err != nil {
		return err
	}
	return s.startJob(w, r, jobStart{
		Pool: pool, Name: "REST API: import a VM from a URL", AppliesTo: idString(obj["id"]), Kind: jobImportVMURL, Params: p,
		Sync: queryOf(r).Sync, Done: createdDone("/vms/"),
	})
}

// createdDone answers a ?sync URL import whose result is {"id"} of a new
// object of the collection path ("/vms/").
func createdDone(path string) func(http.ResponseWriter, any) error {
	return func(w http.ResponseWriter, result any) error {
		m, _ := result.(map[string]any)
		id := idString(m["id"])
		if id == "" {
			return fmt.Errorf("URL import: no id in the job's result %v", result)
		}
		return created(w, BasePath+path, id)
	}
}

// runURLImportJob is the jobRunner of the URL import kinds.
func runURLImportJob(ctx context.Context, s *server, pool *xo.Pool, j *job) (any, error) {
	return s.runURLImport(ctx, pool.Client(), j.Task, j.Kind, j.Params)
}

// runURLImport is the job of a URL import of kind: it opens the source
// again, checks it is the object the request checked, and streams it into
// XAPI, the task's progress following the bytes. The result is {"id",
// "size", "etag", "resumes"}.
func (s *server) runURLImport(ctx context.Context, c *xapi.Client, task xapi.Ref, kind string, params json.RawMessage) (any, error) {
	var p urlImportParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("%s job parameters: %w", kind, err)
	}
	rd, err := s.openSource(ctx, p.importSource, urlsource.Options{})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	progress := startProgress(ctx, c, task, p.Size, "")
	defer progress.end()
	if rd.Size() != p.Size || (p.ETag != "" && rd.ETag() != p.ETag) {
		return nil, sourceError(&sourceFailure{fmt.Errorf("%w: %s is now %d bytes (ETag %s), it was %d bytes (ETag %s) when the request was checked",
			urlsource.ErrChanged, rd.URL(), rd.Size(), rd.ETag(), p.Size, p.ETag)})
	}
	body := sourceBody{progress.reader(rd)}
	var id string
	switch kind {
	case jobImportVMURL:
		id, err = importXVA(ctx, c, p.SR, body, p.Size)
	case jobImportVDIURL:
		id, err = p.VDIID, writeVDI(ctx, c, p.VDI, p.VDIID, p.Format, body, p.Size)
	case jobImportNewVDIURL:
		d := newDisk{sr: p.SR, name: p.NameLabel, description: p.NameDescription, size: p.VirtualSize, format: p.Format}
		id, err = d.create(ctx, c, body, p.Size)
	default:
		err = fmt.Errorf("unknown URL import kind %q", kind)
	}
	attrs := []slog.Attr{slog.String("kind", kind), slog.String("url", rd.URL()), slog.Int64("size", p.Size),
		slog.Int64("bytes", rd.BytesRead()), slog.Int("resumes", rd.Resumes()), slog.String("id", id)}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "URL import failed", append(attrs, slog.String("error", logMessage(err)))...)
		return nil, sourceError(err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "URL import", attrs...)
	return map[string]any{
		"id": id, "size": float64(p.Size), // JSON numbers, as in the task
		"etag": strings.Trim(rd.ETag(), `"`), "resumes": float64(rd.Resumes()),
	}, nil
}
