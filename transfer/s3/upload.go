package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Multipart limits of S3 and the defaults of Upload.
const (
	// MinPartSize is the smallest part S3 accepts (except the last one).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 accepts.
	MaxPartSize = 5 << 30
	// MaxParts is the most parts one multipart upload may have.
	MaxParts = 10000
	// DefaultPartSize is the first part size when UploadOptions.PartSize is 0.
	DefaultPartSize = 8 << 20
	// DefaultConcurrency is the number of parts in flight when
	// UploadOptions.Concurrency is 0.
	DefaultConcurrency = 4
	// GrowEvery is how many parts of an unknown-length stream share a size
	// before the part size doubles.
	GrowEvery = 1000
)

// UploadOptions describe one upload.
type UploadOptions struct {
	// Bucket and Key name the object. Required.
	Bucket, Key string
	// ExpectedSize is the stream's length when known (or an upper bound, such
	// as a disk's virtual size before compression). It sizes the parts: the
	// part size becomes at least ExpectedSize/MaxParts, and stays fixed. Zero
	// or negative means unknown: parts start at PartSize and double every
	// GrowEvery parts (capped at MaxPartSize), so an unknown stream of up to
	// GrowEvery·PartSize·(2^10-1) bytes fits: 7.8 TiB with the default 8 MiB,
	// 4.9 TiB with 5 MiB (AWS S3 and most S3-compatible servers cap objects
	// at 5 TiB or 48.8 TiB anyway). Memory grows with the part size, so pass
	// ExpectedSize when you have one.
	ExpectedSize int64
	// PartSize is the (first) part size; 0 means DefaultPartSize. It must lie
	// in [MinPartSize, MaxPartSize].
	PartSize int64
	// Concurrency is the number of parts buffered and in flight at once; 0
	// means DefaultConcurrency. Memory is bounded by Concurrency × part size:
	// one buffer is being filled from the reader while the others upload.
	Concurrency int
	// ContentType and Metadata are stored with the object.
	ContentType string
	Metadata    map[string]string
	// Progress, when set, is called after each part is stored with the total
	// number of bytes S3 has acknowledged so far. Calls are serialized and
	// their values increase; it must return quickly.
	Progress func(bytes int64)
}

func (o *UploadOptions) validate() error {
	switch {
	case o.Bucket == "":
		return fmt.Errorf("%w: upload needs a bucket", ErrInvalidOptions)
	case o.Key == "":
		return fmt.Errorf("%w: upload needs a key", ErrInvalidOptions)
	case o.PartSize != 0 && (o.PartSize < MinPartSize || o.PartSize > MaxPartSize):
		return fmt.Errorf("%w: part size %d not in [%d, %d]", ErrInvalidOptions, o.PartSize, MinPartSize, int64(MaxPartSize))
	case o.Concurrency < 0:
		return fmt.Errorf("%w: concurrency %d", ErrInvalidOptions, o.Concurrency)
	}
	return nil
}

// Result describes a stored object.
type Result struct {
	Bucket string
	Key    string
	// Size is the number of bytes read from the stream and stored.
	Size int64
	// ETag is the object's ETag as S3 returns it, quotes included; for a
	// multipart upload it ends in "-<parts>".
	ETag string
	// VersionID is set when the bucket is versioned.
	VersionID string
	// Parts is the number of parts, or 0 when a single PutObject stored the
	// object (streams shorter than one part).
	Parts int
}

// Upload streams r into bucket/key and returns when the object is complete.
//
// A stream shorter than one part is stored with a single PutObject; a longer
// one with a multipart upload whose parts are read into at most
// opts.Concurrency pooled buffers, uploaded concurrently and each retried
// (Config.MaxAttempts, exponential backoff with jitter, bound to ctx) when S3
// answers with a transient error. Parts are idempotent: a retry replaces the
// part with the same bytes.
//
// On any failure — a part that keeps failing, an error from r, ctx cancelled,
// the stream outgrowing MaxParts — Upload stops reading, lets the parts on the
// wire finish (ctx cancellation cuts them), calls AbortMultipartUpload (with a
// context detached from ctx and bounded by Config.AbortTimeout) until
// ListParts confirms the upload is gone, and returns the cause, joined with
// the abort's own error if that failed too. No upload is left behind unless
// S3 stays unreachable. Upload does not interrupt a blocked r.Read: tie r to ctx (an
// HTTP response body requested with ctx is).
func (c *Client) Upload(ctx context.Context, r io.Reader, opts UploadOptions) (Result, error) {
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	plan, err := planParts(opts.ExpectedSize, opts.PartSize)
	if err != nil {
		return Result{}, err
	}
	u := &upload{c: c, opts: opts, plan: plan, pool: newBufferPool(opts.Concurrency)}
	res, err := u.run(ctx, r)
	if err != nil {
		return Result{}, fmt.Errorf("s3: upload %s/%s: %w", opts.Bucket, opts.Key, err)
	}
	return res, nil
}

func (u *upload) run(ctx context.Context, r io.Reader) (Result, error) {
	if err := context.Cause(ctx); err != nil {
		return Result{}, err
	}
	first, rest, err := u.readFirst(ctx, r)
	if err != nil {
		return Result{}, err
	}
	if rest == nil {
		defer u.pool.put(first)
		return u.putObject(ctx, first)
	}
	return u.multipart(ctx, first, rest)
}

// partPlan gives the size of every part of one upload.
type partPlan struct {
	base int64
	grow bool // unknown length: double every GrowEvery parts
}

// planParts sizes the parts for a stream of expected bytes (<= 0: unknown).
func planParts(expected, partSize int64) (partPlan, error) {
	if expected <= 0 {
		return partPlan{base: partSize, grow: true}, nil
	}
	base := partSize
	if need := ceilDiv(expected, MaxParts); need > base {
		base = ceilDiv(need, 1<<20) << 20 // whole MiB
	}
	if base > MaxPartSize {
		return partPlan{}, fmt.Errorf("%w: %d bytes need parts of %d bytes, more than the %d allowed", ErrTooLarge, expected, base, int64(MaxPartSize))
	}
	return partPlan{base: base}, nil
}

// size returns the size of part n (1-based).
func (p partPlan) size(n int) int64 {
	if !p.grow {
		return p.base
	}
	shift := (n - 1) / GrowEvery
	if shift >= 30 || p.base<<shift > MaxPartSize {
		return MaxPartSize
	}
	return p.base << shift
}

// capacity returns the longest stream the plan can store in MaxParts parts.
func (p partPlan) capacity() int64 {
	var total int64
	for n := 1; n <= MaxParts; n += GrowEvery {
		total += p.size(n) * GrowEvery
	}
	return total
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// bufferPool hands out at most n part buffers at a time and reuses them.
type bufferPool struct {
	slots chan struct{}
	mu    sync.Mutex
	free  [][]byte
}

func newBufferPool(n int) *bufferPool {
	return &bufferPool{slots: make(chan struct{}, n)}
}

// get waits for a free slot and returns a buffer of length size.
func (p *bufferPool) get(ctx context.Context, size int64) ([]byte, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) > 0 {
		b := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		if int64(cap(b)) >= size {
			return b[:size], nil
		}
		// A smaller buffer from before the part size grew: let it go.
	}
	return make([]byte, size), nil
}

// put returns a buffer from get.
func (p *bufferPool) put(b []byte) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
	<-p.slots
}

// upload is the state of one Upload call.
type upload struct {
	c    *Client
	opts UploadOptions
	plan partPlan
	pool *bufferPool

	mu    sync.Mutex
	parts []types.CompletedPart
	acked int64
}

// readFirst reads the first part. It returns rest == nil when the stream
// ended within it, otherwise a reader for the remaining bytes.
func (u *upload) readFirst(ctx context.Context, r io.Reader) (first []byte, rest io.Reader, err error) {
	size := u.plan.size(1)
	initial := size
	if e := u.opts.ExpectedSize; e > 0 && e < size {
		initial = e + 1 // one more byte tells whether the hint was right
	}
	buf, err := u.pool.get(ctx, initial)
	if err != nil {
		return nil, nil, err
	}
	n, err := io.ReadFull(r, buf)
	if err == nil && initial < size { // longer than expected: fill a whole part
		buf = append(buf, make([]byte, size-initial)...)
		var m int
		m, err = io.ReadFull(r, buf[n:])
		n += m
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n], nil, nil
	case err != nil:
		u.pool.put(buf)
		return nil, nil, fmt.Errorf("read source: %w", err)
	}
	// A full part: peek one byte to tell a one-part stream from a longer one.
	peek := make([]byte, 1)
	if _, err := io.ReadFull(r, peek); errors.Is(err, io.EOF) {
		return buf, nil, nil
	} else if err != nil {
		u.pool.put(buf)
		return nil, nil, fmt.Errorf("read source: %w", err)
	}
	return buf, io.MultiReader(bytes.NewReader(peek), r), nil
}

func (u *upload) putObject(ctx context.Context, body []byte) (Result, error) {
	in := awss3.PutObjectInput{
		Bucket:        aws.String(u.opts.Bucket),
		Key:           aws.String(u.opts.Key),
		ContentLength: aws.Int64(int64(len(body))),
		Metadata:      u.opts.Metadata,
	}
	if u.opts.ContentType != "" {
		in.ContentType = aws.String(u.opts.ContentType)
	}
	if u.c.cfg.Checksum == ChecksumMD5 {
		in.ContentMD5 = aws.String(contentMD5(body))
	}
	var out *awss3.PutObjectOutput
	err := u.c.retry(ctx, func(ctx context.Context) error {
		attempt := in
		attempt.Body = bytes.NewReader(body)
		var err error
		out, err = u.c.api.PutObject(ctx, &attempt, withoutSDKRetries)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("PutObject: %w", err)
	}
	u.progress(int64(len(body)))
	return Result{
		Bucket:    u.opts.Bucket,
		Key:       u.opts.Key,
		Size:      int64(len(body)),
		ETag:      aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionId),
	}, nil
}

func (u *upload) multipart(ctx context.Context, first []byte, r io.Reader) (Result, error) {
	create := awss3.CreateMultipartUploadInput{
		Bucket:   aws.String(u.opts.Bucket),
		Key:      aws.String(u.opts.Key),
		Metadata: u.opts.Metadata,
	}
	if u.opts.ContentType != "" {
		create.ContentType = aws.String(u.opts.ContentType)
	}
	if u.c.cfg.Checksum == ChecksumCRC32 {
		create.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	}
	created, err := u.c.api.CreateMultipartUpload(ctx, &create)
	if err != nil {
		u.pool.put(first)
		return Result{}, fmt.Errorf("CreateMultipartUpload: %w", err)
	}
	uploadID := aws.ToString(created.UploadId)

	// The first failure (a part, the reader, ctx) stops reading, sending and
	// retrying. Parts already on the wire finish (unless ctx itself ends), so
	// that none is still being stored when the upload is aborted.
	stop, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	send := func(num int, buf []byte) {
		wg.Go(func() {
			defer u.pool.put(buf)
			if err := u.uploadPart(ctx, stop, uploadID, num, buf); err != nil {
				cancel(err)
			}
		})
	}

	size := int64(len(first))
	send(1, first)
	for num := 2; ; num++ {
		buf, err := u.pool.get(stop, u.plan.size(num))
		if err != nil {
			break // stopped: the cause is in stop
		}
		n, err := io.ReadFull(r, buf)
		last := errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last && !errors.Is(err, io.EOF) {
			u.pool.put(buf)
			cancel(fmt.Errorf("read source after %d bytes: %w", size+int64(n), err))
			break
		}
		if n == 0 {
			u.pool.put(buf)
			break
		}
		if num > MaxParts {
			u.pool.put(buf)
			cancel(fmt.Errorf("%w: more than %d bytes fill all %d parts; pass ExpectedSize or a larger PartSize", ErrTooLarge, size, MaxParts))
			break
		}
		size += int64(n)
		send(num, buf[:n])
		if last {
			break
		}
	}
	wg.Wait()
	if err := context.Cause(stop); err != nil {
		return Result{}, u.abort(ctx, uploadID, err)
	}

	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	done, err := u.c.api.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.opts.Bucket),
		Key:             aws.String(u.opts.Key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return Result{}, u.abort(ctx, uploadID, fmt.Errorf("CompleteMultipartUpload: %w", err))
	}
	return Result{
		Bucket:    u.opts.Bucket,
		Key:       u.opts.Key,
		Size:      size,
		ETag:      aws.ToString(done.ETag),
		VersionID: aws.ToString(done.VersionId),
		Parts:     len(u.parts),
	}, nil
}

// uploadPart sends one part with ctx, retrying until stop ends.
func (u *upload) uploadPart(ctx, stop context.Context, uploadID string, num int, buf []byte) error {
	in := awss3.UploadPartInput{
		Bucket:        aws.String(u.opts.Bucket),
		Key:           aws.String(u.opts.Key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(int32(num)),
		ContentLength: aws.Int64(int64(len(buf))),
	}
	switch u.c.cfg.Checksum {
	case ChecksumCRC32:
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	case ChecksumMD5:
		in.ContentMD5 = aws.String(contentMD5(buf))
	}
	var out *awss3.UploadPartOutput
	err := u.c.retry(stop, func(context.Context) error {
		attempt := in
		attempt.Body = bytes.NewReader(buf)
		var err error
		out, err = u.c.api.UploadPart(ctx, &attempt, withoutSDKRetries)
		return err
	})
	if err != nil {
		return fmt.Errorf("UploadPart %d: %w", num, err)
	}
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{
		PartNumber:    aws.Int32(int32(num)),
		ETag:          out.ETag,
		ChecksumCRC32: out.ChecksumCRC32,
	})
	u.mu.Unlock()
	u.progress(int64(len(buf)))
	return nil
}

// progress adds n acknowledged bytes and reports the total.
func (u *upload) progress(n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.acked += n
	if u.opts.Progress != nil {
		u.opts.Progress(u.acked)
	}
}

// abort removes the multipart upload after cause and returns cause, joined
// with the abort's error if it failed. A part that S3 was still storing when
// the upload was aborted can bring it back, so abort checks with ListParts
// that the upload is gone and aborts again until it is (as AWS advises), for
// at most Config.AbortTimeout.
func (u *upload) abort(ctx context.Context, uploadID string, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.c.cfg.AbortTimeout)
	defer cancel()
	err := u.c.retry(actx, func(ctx context.Context) error {
		_, err := u.c.api.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
			Bucket:   aws.String(u.opts.Bucket),
			Key:      aws.String(u.opts.Key),
			UploadId: aws.String(uploadID),
		})
		if err != nil && !isNoSuchUpload(err) {
			return err
		}
		_, err = u.c.api.ListParts(ctx, &awss3.ListPartsInput{
			Bucket:   aws.String(u.opts.Bucket),
			Key:      aws.String(u.opts.Key),
			UploadId: aws.String(uploadID),
			MaxParts: aws.Int32(1),
		})
		switch {
		case isNoSuchUpload(err):
			return nil
		case err == nil:
			return uploadStillListed{}
		}
		return err
	})
	if err != nil {
		return errors.Join(cause, fmt.Errorf("AbortMultipartUpload %s failed; its parts stay until a lifecycle rule removes them: %w", uploadID, err))
	}
	return cause
}

// uploadStillListed makes abort try again: the SDK's classification, which
// retryable uses, treats errors with a RetryableError method as transient.
type uploadStillListed struct{}

func (uploadStillListed) Error() string        { return "upload still listed after abort" }
func (uploadStillListed) RetryableError() bool { return true }

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}

func contentMD5(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
