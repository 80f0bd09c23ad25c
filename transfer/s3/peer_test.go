package s3

// The real peer: versitygw (an S3 server, Apache-2.0) on loopback with a
// posix backend in a temporary directory. It starts on first use, once per
// test binary, and TestMain stops it.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/xorest/xorest/internal/peertest"
)

const (
	peerAccessKey = "testkey"
	peerSecretKey = "testsecret"
)

var (
	peerOnce sync.Once
	peer     *peertest.VersityGW
	peerErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if peer != nil {
		peer.Stop()
	}
	os.Exit(code)
}

// startPeer returns the endpoint of the package's versitygw, starting it on
// first use. It fails the test with an install hint when versitygw is missing.
func startPeer(tb testing.TB) string {
	tb.Helper()
	peerOnce.Do(func() { peer, peerErr = peertest.StartVersityGW(peerAccessKey, peerSecretKey) })
	if peerErr != nil {
		tb.Fatalf("versitygw (the S3 test peer): %v", peerErr)
	}
	return peer.Endpoint
}

// peerConfig is a Config for the peer with fast retries.
func peerConfig(tb testing.TB) Config {
	return Config{
		Endpoint:        startPeer(tb),
		Region:          "us-east-1",
		UsePathStyle:    true,
		AccessKeyID:     peerAccessKey,
		SecretAccessKey: peerSecretKey,
		RetryDelay:      time.Millisecond,
		MaxRetryDelay:   10 * time.Millisecond,
	}
}

func newPeerClient(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	c, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

var bucketSeq atomic.Int64

var notBucketChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newBucket creates an empty bucket named after the test.
func newBucket(tb testing.TB, c *Client) string {
	tb.Helper()
	name := notBucketChars.ReplaceAllString(strings.ToLower(tb.Name()), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(fmt.Sprintf("b%d-%s", bucketSeq.Add(1), name), "-")
	if _, err := c.API().CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("CreateBucket %s: %v", name, err)
	}
	return name
}

// objectDigest downloads bucket/key and returns its size and sha256.
func objectDigest(tb testing.TB, c *Client, bucket, key string) (int64, [32]byte) {
	tb.Helper()
	out, err := c.API().GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		tb.Fatalf("GetObject %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		tb.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return n, [32]byte(h.Sum(nil))
}

// pendingUploads lists the bucket's unfinished multipart uploads.
func pendingUploads(tb testing.TB, c *Client, bucket string) []types.MultipartUpload {
	tb.Helper()
	out, err := c.API().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		tb.Fatalf("ListMultipartUploads %s: %v", bucket, err)
	}
	return out.Uploads
}

// assertNothingLeft checks that bucket holds neither an upload nor an object.
func assertNothingLeft(tb testing.TB, c *Client, bucket string) {
	tb.Helper()
	if ups := pendingUploads(tb, c, bucket); len(ups) != 0 {
		tb.Errorf("%d multipart uploads left behind, first key %q id %q", len(ups), aws.ToString(ups[0].Key), aws.ToString(ups[0].UploadId))
	}
	out, err := c.API().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		tb.Fatalf("ListObjectsV2 %s: %v", bucket, err)
	}
	for _, o := range out.Contents {
		tb.Errorf("object %q (%d bytes) left behind", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
}

// source is a deterministic, non-seekable stream of n pseudo-random bytes
// that hashes what it hands out.
type source struct {
	rng  *rand.ChaCha8
	left int64
	sum  hashWriter
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func newSource(seed byte, n int64) *source {
	return &source{rng: rand.NewChaCha8([32]byte{seed}), left: n, sum: sha256.New()}
}

func (s *source) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.rng.Read(p)
	s.sum.Write(p[:n])
	s.left -= int64(n)
	return n, nil
}

func (s *source) digest() [32]byte { return [32]byte(s.sum.Sum(nil)) }

// failAfter passes n bytes of r, then fails with err (or, when err is nil,
// calls then and keeps passing bytes).
type failAfter struct {
	r    io.Reader
	n    int64
	err  error
	then func()
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.then != nil {
			f.then()
			f.then = nil
		}
		return f.r.Read(p)
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// faultTransport injects failures into requests that fault selects.
type faultTransport struct {
	base  http.RoundTripper
	fault func(req *http.Request, op string, part string, attempt int) (fakeStatus int, fakeCode string, forwardThenFail bool)

	mu          sync.Mutex
	attempts    map[string]int // "op part" -> attempts seen
	inFlight    int            // UploadPart requests in flight
	maxInFlight int
}

// operation names a request the way the tests select them.
func operation(req *http.Request) (op, part string) {
	q := req.URL.Query()
	switch {
	case req.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart", q.Get("partNumber")
	case req.Method == http.MethodPut && strings.Contains(strings.Trim(req.URL.Path, "/"), "/"):
		return "PutObject", ""
	case req.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload", ""
	case req.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload", ""
	case req.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload", ""
	case req.Method == http.MethodGet && q.Has("uploadId"):
		return "ListParts", ""
	}
	return req.Method, ""
}

func (t *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op, part := operation(req)
	t.mu.Lock()
	if t.attempts == nil {
		t.attempts = map[string]int{}
	}
	t.attempts[op+" "+part]++
	attempt := t.attempts[op+" "+part]
	t.mu.Unlock()

	if op == "UploadPart" {
		t.mu.Lock()
		t.inFlight++
		t.maxInFlight = max(t.maxInFlight, t.inFlight)
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			t.inFlight--
			t.mu.Unlock()
		}()
	}
	if t.fault == nil {
		return t.base.RoundTrip(req)
	}
	status, code, forwardThenFail := t.fault(req, op, part, attempt)
	switch {
	case forwardThenFail:
		// The server stores the part, then the answer is lost.
		resp, err := t.base.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	case status != 0:
		if req.Body != nil {
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, code)
		return &http.Response{
			Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
			StatusCode:    status,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{"Content-Type": {"application/xml"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	}
	return t.base.RoundTrip(req)
}

func (t *faultTransport) seen(op, part string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts[op+" "+part]
}
