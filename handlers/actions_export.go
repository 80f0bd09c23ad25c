package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/xo/xapi"
)

// The export action (POST …/<id>/actions/export) streams an export of a
// VM, snapshot or template (XVA, OVA) or of a disk (VHD, raw) from XAPI
// into S3 with a multipart upload (transfer/s3), on the action's task: the
// task's progress follows the bytes read over the length (known
// beforehand, or for an XVA estimated) and XAPI's own progress of its
// export (progress); it stays below 1 until the upload is complete. A
// running VM is exported from a snapshot destroyed afterwards (exportSource).
// The task's result is {bucket, key, size, etag, url}, url being
// a presigned GET valid Config.PresignExpiry. Any failure aborts the
// multipart upload (transfer/s3 does) and fails the task.

// DefaultPresignExpiry is the validity of an export's download URL when
// Config.PresignExpiry is 0.
const DefaultPresignExpiry = 24 * time.Hour

// exportTarget parameters shared by every export action.
var exportTargetParams = []actionParam{
	{name: "bucket", typ: "string", optional: true, description: "The S3 bucket; the server's default bucket when absent"},
	{name: "key", typ: "string", optional: true, description: "The object key; xorest/<collection>/<uuid>/<timestamp>.<ext> when absent"},
}

// exportVMAction is the export action of a collection of VMs.
func exportVMAction(collection string) action {
	return action{
		name:    "export",
		summary: "Export it to S3 as an XVA (optionally compressed) or an OVA, a running VM from a snapshot destroyed afterwards; the result is {bucket, key, size, etag, url}, url a presigned GET",
		params: append([]actionParam{
			{name: "format", typ: "string", optional: true, enum: []string{"xva", "ova"}, description: "xva (the default) or ova"},
			{name: "compress", typ: "string", optional: true, enum: []string{"gzip", "zstd"}, description: "XVA compression, done by XAPI"},
		}, exportTargetParams...),
		check: func(args map[string]any) []fieldError {
			if args["format"] == "ova" && args["compress"] != nil {
				return []fieldError{{"compress", "applies to the xva format only"}}
			}
			return nil
		},
		ready: exportReady,
		run: func(ctx context.Context, a *actionCall) (any, error) {
			format := a.str("format", "xva")
			label := "xorest: export " + idString(a.obj["uuid"]) + " to S3"
			return exportToS3(ctx, a, collection, format, func(ctx context.Context) (*exportStream, error) {
				if format == "ova" {
					return a.srv.openOVA(ctx, a.client, a.ref)
				}
				return a.srv.openVMXVA(ctx, a.client, a.ref, compressions[a.str("compress", "")], label)
			})
		},
	}
}

// exportDiskAction is the export action of a collection of disks.
func exportDiskAction(collection string) action {
	return action{
		name:    "export",
		summary: "Export the disk to S3 as a VHD or raw bytes (preferNbd: read over NBD when the SR allows it); the result is {bucket, key, size, etag, url}, url a presigned GET",
		params: append([]actionParam{
			{name: "format", typ: "string", optional: true, enum: []string{"vhd", "raw"}, description: "vhd (the default) or raw"},
			{name: "preferNbd", typ: "boolean", optional: true, description: "Read the data over NBD when available, else over HTTP"},
			{name: "nbdConcurrency", typ: "integer", optional: true, description: "NBD connections, 1 to 32 (default 1)"},
		}, exportTargetParams...),
		check: func(args map[string]any) []fieldError {
			if n, ok := args["nbdConcurrency"].(int64); ok && (n < 1 || n > 32) {
				return []fieldError{{"nbdConcurrency", "must be an integer from 1 to 32"}}
			}
			return nil
		},
		ready: exportReady,
		run: func(ctx context.Context, a *actionCall) (any, error) {
			format := a.str("format", "vhd")
			size := int64(num(a.obj["size"]))
			return exportToS3(ctx, a, collection, format, func(ctx context.Context) (*exportStream, error) {
				if nbd, _ := a.args["preferNbd"].(bool); nbd {
					conns := 1
					if n, ok := a.args["nbdConcurrency"].(int64); ok {
						conns = int(n)
					}
					st, err := a.srv.openDiskNBD(ctx, a.client, a.ref, size, format, nameOf(a.obj, idString(a.obj["uuid"])), conns)
					if err != nil || st != nil {
						return st, err
					}
				}
				return openDisk(ctx, a.client, a.ref, format, size, "xorest: export "+idString(a.obj["uuid"])+"."+format+" to S3")
			})
		},
	}
}

// exportReady reports, before any work, that exports to S3 are not
// configured (501) or that no bucket is known (422).
func exportReady(s *server, args map[string]any) error {
	if s.cfg.S3 == nil {
		return NotImplemented("export to S3 is not configured on this server (set XOREST_S3_BUCKET)")
	}
	if _, ok := args["bucket"]; !ok && s.cfg.S3Bucket == "" {
		return invalidFields([]fieldError{{"bucket", "is required: the server has no default bucket"}})
	}
	return nil
}

// exportToS3 uploads the stream open returns to S3 and presigns its
// download.
func exportToS3(ctx context.Context, a *actionCall, collection, format string, open func(context.Context) (*exportStream, error)) (any, error) {
	s := a.srv
	bucket := a.str("bucket", s.cfg.S3Bucket)
	key := a.str("key", fmt.Sprintf("xorest/%s/%s/%s.%s", collection, idString(a.obj["uuid"]), s.now().UTC().Format("20060102T150405.000Z"), format))
	// Cancelling ctx stops the XAPI download when the upload fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", idString(a.obj["uuid"]), err)
	}
	opts := s3.UploadOptions{Bucket: bucket, Key: key, ExpectedSize: st.size, ContentType: st.contentType}
	total := st.size
	if total < 0 && st.estimate != nil {
		total = st.estimate(ctx)
	}
	progress := startProgress(ctx, a.client, a.task, total, st.task)
	body := progress.reader(st)
	if st.size >= 0 {
		body = &exactReader{r: body, expect: st.size}
	}
	res, err := s.cfg.S3.Upload(ctx, body, opts)
	progress.end()
	st.end(err)
	if err != nil {
		return nil, err
	}
	expiry := s.cfg.PresignExpiry
	if expiry == 0 {
		expiry = DefaultPresignExpiry
	}
	u, err := s.cfg.S3.Presign(ctx, bucket, key, expiry)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"bucket": res.Bucket, "key": res.Key, "size": float64(res.Size), // a JSON number in the task too
		"etag": strings.Trim(res.ETag, `"`), "url": u,
	}, nil
}

// exactReader fails a stream that does not have its announced length, so
// that the upload aborts instead of storing a truncated export.
type exactReader struct {
	r         io.Reader
	n, expect int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.n > e.expect || (errors.Is(err, io.EOF) && e.n != e.expect) {
		return n, fmt.Errorf("%d bytes exported, %d announced: %w", e.n, e.expect, io.ErrUnexpectedEOF)
	}
	return n, err
}

// openOVA opens an OVA of the VM ref, built with transfer/ova (its exact
// length known beforehand), as a stream written by a goroutine that the
// stream's end stops. A running VM is read from a snapshot that the end
// destroys (vmOVA).
func (s *server) openOVA(ctx context.Context, xc *xapi.Client, ref xapi.Ref) (*exportStream, error) {
	arch, _, release, err := s.vmOVA(ctx, xc, ref)
	if err != nil {
		return nil, fmt.Errorf("OVA: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := arch.Write(ctx, pw)
		if err == nil && n != arch.Size() {
			err = fmt.Errorf("OVA: %d bytes written, %d announced", n, arch.Size())
		}
		pw.CloseWithError(err)
	}()
	return &exportStream{Reader: pr, size: arch.Size(), contentType: "application/octet-stream", end: func(outcome error) {
		cancel()
		pr.CloseWithError(errors.Join(errAborted, outcome))
		<-done
		release()
	}}, nil
}

// readFunc is a function as an io.Reader.
type readFunc func([]byte) (int, error)

func (f readFunc) Read(b []byte) (int, error) { return f(b) }
