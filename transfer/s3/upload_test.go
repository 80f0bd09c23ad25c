package s3

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

const mib = 1 << 20

func TestPlanParts(t *testing.T) {
	tests := []struct {
		name      string
		expected  int64
		partSize  int64
		wantSizes map[int]int64 // part number -> size
		wantErr   error
	}{
		{name: "unknown starts at the part size", expected: -1, partSize: 8 * mib,
			wantSizes: map[int]int64{1: 8 * mib, 1000: 8 * mib, 1001: 16 * mib, 2001: 32 * mib, 9001: 4096 * mib, 10000: 4096 * mib}},
		{name: "zero means unknown", expected: 0, partSize: 5 * mib,
			wantSizes: map[int]int64{1: 5 * mib, 1001: 10 * mib}},
		{name: "unknown growth is capped at the largest part", expected: -1, partSize: 64 * mib,
			wantSizes: map[int]int64{6001: 64 * mib << 6, 7001: MaxPartSize, 10000: MaxPartSize}},
		{name: "small known size keeps the part size", expected: 1 << 30, partSize: 8 * mib,
			wantSizes: map[int]int64{1: 8 * mib, 5000: 8 * mib, 10000: 8 * mib}},
		{name: "known size above part size × 10000 raises it to whole MiB", expected: 1 << 40, partSize: 8 * mib,
			wantSizes: map[int]int64{1: 105 * mib, 10000: 105 * mib}},
		{name: "exactly part size × 10000", expected: 10000 * 8 * mib, partSize: 8 * mib,
			wantSizes: map[int]int64{1: 8 * mib}},
		{name: "largest object", expected: MaxParts * MaxPartSize, partSize: 5 * mib,
			wantSizes: map[int]int64{1: MaxPartSize}},
		{name: "too large", expected: MaxParts*MaxPartSize + 1, partSize: 5 * mib, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planParts(tt.expected, tt.partSize)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("planParts(%d, %d) error %v, want %v", tt.expected, tt.partSize, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			for n, want := range tt.wantSizes {
				if got := p.size(n); got != want {
					t.Errorf("size(%d) = %d, want %d", n, got, want)
				}
			}
			if tt.expected > 0 && p.capacity() < tt.expected {
				t.Errorf("capacity %d < expected %d", p.capacity(), tt.expected)
			}
			for n := 1; n <= MaxParts; n++ {
				if s := p.size(n); s < MinPartSize || s > MaxPartSize {
					t.Fatalf("size(%d) = %d outside the S3 limits", n, s)
				}
			}
		})
	}
}

// TestUnknownSizeCapacity pins the figures the UploadOptions doc promises.
func TestUnknownSizeCapacity(t *testing.T) {
	for _, tt := range []struct {
		name     string
		partSize int64
		want     int64
	}{
		{"default 8 MiB reaches 7.8 TiB", DefaultPartSize, 1000 * 8 * mib * 1023},
		{"5 MiB reaches 4.9 TiB", 5 * mib, 1000 * 5 * mib * 1023},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := planParts(-1, tt.partSize)
			if got := p.capacity(); got != tt.want {
				t.Errorf("capacity %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "static credentials and endpoint", cfg: Config{Endpoint: "http://127.0.0.1:7070", AccessKeyID: "a", SecretAccessKey: "b"}, ok: true},
		{name: "endpoint without scheme", cfg: Config{Endpoint: "127.0.0.1:7070", AccessKeyID: "a", SecretAccessKey: "b"}},
		{name: "ftp endpoint", cfg: Config{Endpoint: "ftp://host", AccessKeyID: "a", SecretAccessKey: "b"}},
		{name: "key without secret", cfg: Config{AccessKeyID: "a"}},
		{name: "secret without key", cfg: Config{SecretAccessKey: "b"}},
		{name: "session token alone", cfg: Config{SessionToken: "t"}},
		{name: "unknown checksum", cfg: Config{Checksum: 7, AccessKeyID: "a", SecretAccessKey: "b"}},
		{name: "negative attempts", cfg: Config{MaxAttempts: -1, AccessKeyID: "a", SecretAccessKey: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestParseChecksum(t *testing.T) {
	for _, c := range []Checksum{ChecksumCRC32, ChecksumMD5, ChecksumNone} {
		got, err := ParseChecksum(c.String())
		if err != nil || got != c {
			t.Errorf("ParseChecksum(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseChecksum("sha1"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseChecksum(sha1) error %v", err)
	}
}

func TestUploadOptionsValidation(t *testing.T) {
	c, err := New(context.Background(), Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts UploadOptions
	}{
		{"no bucket", UploadOptions{Key: "k"}},
		{"no key", UploadOptions{Bucket: "b"}},
		{"part too small", UploadOptions{Bucket: "b", Key: "k", PartSize: MinPartSize - 1}},
		{"part too large", UploadOptions{Bucket: "b", Key: "k", PartSize: MaxPartSize + 1}},
		{"negative concurrency", UploadOptions{Bucket: "b", Key: "k", Concurrency: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The reader must not be touched: nothing is sent for bad options.
			_, err := c.Upload(context.Background(), &failAfter{err: errors.New("read")}, tt.opts)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Upload error %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestPresignArguments(t *testing.T) {
	c, err := New(context.Background(), Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		bucket, key string
		expiry      time.Duration
	}{
		{"zero expiry", "b", "k", 0},
		{"beyond seven days", "b", "k", MaxPresignExpiry + time.Second},
		{"no key", "b", "", time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Presign(context.Background(), tt.bucket, tt.key, tt.expiry); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Presign error %v, want ErrInvalidOptions", err)
			}
		})
	}
}

// TestUploadSizes checks that the object's bytes equal the source's for
// sizes around the part boundaries, in every checksum mode.
func TestUploadSizes(t *testing.T) {
	const part = 5 * mib
	sizes := []struct {
		name      string
		size      int64
		expected  int64
		wantParts int
	}{
		{name: "empty", size: 0},
		{name: "one byte", size: 1},
		{name: "less than a part", size: part/2 + 3},
		{name: "exactly one part", size: part},
		{name: "exactly three parts", size: 3 * part, wantParts: 3},
		{name: "three parts and a byte", size: 3*part + 1, wantParts: 4},
		{name: "small expected size, exact", size: 1000, expected: 1000},
		{name: "small expected size, stream longer than a part", size: part + 7, expected: 100, wantParts: 2},
	}
	for _, mode := range []Checksum{ChecksumCRC32, ChecksumMD5, ChecksumNone} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := peerConfig(t)
			cfg.Checksum = mode
			c := newPeerClient(t, cfg)
			bucket := newBucket(t, c)
			for i, tt := range sizes {
				t.Run(tt.name, func(t *testing.T) {
					key := "dir/" + strings.ReplaceAll(tt.name, " ", "-") + ".bin"
					src := newSource(byte(i), tt.size)
					var last int64
					res, err := c.Upload(context.Background(), src, UploadOptions{
						Bucket: bucket, Key: key, ExpectedSize: tt.expected,
						PartSize: part, Concurrency: 2,
						Progress: func(n int64) {
							if n < last {
								t.Errorf("progress went back from %d to %d", last, n)
							}
							last = n
						},
					})
					if err != nil {
						t.Fatalf("Upload: %v", err)
					}
					if res.Size != tt.size || res.Parts != tt.wantParts || res.Bucket != bucket || res.Key != key {
						t.Errorf("result %+v, want size %d parts %d", res, tt.size, tt.wantParts)
					}
					if last != tt.size {
						t.Errorf("last progress %d, want %d", last, tt.size)
					}
					if tt.wantParts > 0 && !strings.HasSuffix(strings.Trim(res.ETag, `"`), "-"+strconv.Itoa(tt.wantParts)) {
						t.Errorf("multipart ETag %s does not end in -%d", res.ETag, tt.wantParts)
					}
					n, sum := objectDigest(t, c, bucket, key)
					if n != tt.size || sum != src.digest() {
						t.Errorf("object has %d bytes sha256 %x, source %d bytes sha256 %x", n, sum, tt.size, src.digest())
					}
				})
			}
			if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
				t.Errorf("%d multipart uploads left after successful uploads", len(ups))
			}
		})
	}
}

func TestUploadTypeAndMetadata(t *testing.T) {
	c := newPeerClient(t, peerConfig(t))
	bucket := newBucket(t, c)
	for _, tt := range []struct {
		name string
		size int64
	}{
		{"single request", 1000},
		{"multipart", 6 * mib},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.name + ".xva"
			_, err := c.Upload(context.Background(), newSource(1, tt.size), UploadOptions{
				Bucket: bucket, Key: key, PartSize: 5 * mib,
				ContentType: "application/x-xva", Metadata: map[string]string{"vm-uuid": "0f9a"},
			})
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			head, err := c.API().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("HeadObject: %v", err)
			}
			if got := aws.ToString(head.ContentType); got != "application/x-xva" {
				t.Errorf("content type %q", got)
			}
			if got := head.Metadata["vm-uuid"]; got != "0f9a" {
				t.Errorf("metadata %v", head.Metadata)
			}
		})
	}
}

// TestUploadLargeStream streams 200 MiB from a non-seekable reader in 5 MiB
// parts, 4 in flight, samples the heap meanwhile, and downloads the object
// back through a presigned URL with plain net/http.
func TestUploadLargeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB upload; run without -short")
	}
	const (
		size        = 200 * mib
		part        = 5 * mib
		concurrency = 4
	)
	c := newPeerClient(t, peerConfig(t))
	bucket := newBucket(t, c)
	src := newSource(42, size)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleHeap(t)

	var calls int
	res, err := c.Upload(context.Background(), struct{ io.Reader }{src}, UploadOptions{
		Bucket: bucket, Key: "big.raw", ExpectedSize: -1, PartSize: part, Concurrency: concurrency,
		Progress: func(int64) { calls++ },
	})
	heapPeak := peak()
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if res.Size != size || res.Parts != size/part || calls != size/part {
		t.Errorf("result %+v, %d progress calls; want %d bytes in %d parts", res, calls, size, size/part)
	}

	grown := int64(heapPeak) - int64(base.HeapAlloc)
	bound := int64(2*part*concurrency + 16*mib)
	t.Logf("heap: base %.1f MiB, peak %.1f MiB (+%.1f MiB) for %d MiB in %d MiB parts × %d; bound +%d MiB",
		float64(base.HeapAlloc)/mib, float64(heapPeak)/mib, float64(grown)/mib, size/mib, part/mib, concurrency, bound/mib)
	if grown > bound {
		t.Errorf("heap grew by %d MiB during the upload, more than %d MiB (part size × concurrency = %d MiB)", grown/mib, bound/mib, part*concurrency/mib)
	}

	url, err := c.Presign(context.Background(), bucket, "big.raw", 10*time.Minute)
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("presigned GET: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned GET: %s", resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("presigned GET body: %v", err)
	}
	if n != size || [32]byte(h.Sum(nil)) != src.digest() {
		t.Errorf("presigned GET gave %d bytes sha256 %x, source sha256 %x", n, h.Sum(nil), src.digest())
	}
}

// sampleHeap samples HeapAlloc every few milliseconds until the returned
// function is called, which returns the largest value seen.
func sampleHeap(t testing.TB) func() uint64 {
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		peak uint64
	)
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	finish := func() uint64 {
		once.Do(func() { close(stop); wg.Wait() })
		return peak
	}
	t.Cleanup(func() { finish() })
	return finish
}

// TestUploadConcurrencyBound checks that no more than Concurrency parts are
// ever sent at once.
func TestUploadConcurrencyBound(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		t.Run(strconv.Itoa(concurrency), func(t *testing.T) {
			ft := &faultTransport{base: http.DefaultTransport}
			cfg := peerConfig(t)
			cfg.HTTPClient = &http.Client{Transport: ft}
			c := newPeerClient(t, cfg)
			bucket := newBucket(t, c)
			src := newSource(3, 41*mib)
			res, err := c.Upload(context.Background(), src, UploadOptions{Bucket: bucket, Key: "k", PartSize: 5 * mib, Concurrency: concurrency})
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if res.Parts != 9 {
				t.Errorf("%d parts, want 9", res.Parts)
			}
			if ft.maxInFlight > concurrency {
				t.Errorf("%d parts in flight at once, want at most %d", ft.maxInFlight, concurrency)
			}
			if n, sum := objectDigest(t, c, bucket, "k"); n != 41*mib || sum != src.digest() {
				t.Errorf("object differs from the source")
			}
		})
	}
}

var errSource = errors.New("source broke")

// TestUploadFailureLeavesNothing makes uploads fail in different ways and
// checks that the error says why and that no multipart upload is left.
func TestUploadFailureLeavesNothing(t *testing.T) {
	const part = 5 * mib
	tests := []struct {
		name string
		// run uploads into bucket and returns the error.
		run     func(t *testing.T, c *Client, bucket string) error
		wantErr func(error) bool
	}{
		{
			name: "reader fails midway",
			run: func(t *testing.T, c *Client, bucket string) error {
				_, err := c.Upload(context.Background(), &failAfter{r: newSource(1, 100*mib), n: 12 * mib, err: errSource},
					UploadOptions{Bucket: bucket, Key: "k", PartSize: part, Concurrency: 2})
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, errSource) },
		},
		{
			name: "reader fails in the first part",
			run: func(t *testing.T, c *Client, bucket string) error {
				_, err := c.Upload(context.Background(), &failAfter{r: newSource(1, 100*mib), n: 1 * mib, err: errSource},
					UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, errSource) },
		},
		{
			name: "reader fails right after the first part",
			run: func(t *testing.T, c *Client, bucket string) error {
				_, err := c.Upload(context.Background(), &failAfter{r: newSource(1, 100*mib), n: part, err: errSource},
					UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, errSource) },
		},
		{
			name: "context cancelled midway",
			run: func(t *testing.T, c *Client, bucket string) error {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				_, err := c.Upload(ctx, &failAfter{r: newSource(1, 100*mib), n: 17 * mib, then: cancel},
					UploadOptions{Bucket: bucket, Key: "k", PartSize: part, Concurrency: 3})
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, context.Canceled) },
		},
		{
			name: "context already cancelled",
			run: func(t *testing.T, c *Client, bucket string) error {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_, err := c.Upload(ctx, newSource(1, 100*mib), UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, context.Canceled) },
		},
		{
			name: "a part keeps failing with 500",
			run: func(t *testing.T, c *Client, bucket string) error {
				ft := &faultTransport{base: http.DefaultTransport, fault: func(_ *http.Request, op, part string, _ int) (int, string, bool) {
					if op == "UploadPart" && part == "3" {
						return http.StatusInternalServerError, "InternalError", false
					}
					return 0, "", false
				}}
				cfg := peerConfig(t)
				cfg.HTTPClient = &http.Client{Transport: ft}
				cfg.MaxAttempts = 3
				_, err := newPeerClient(t, cfg).Upload(context.Background(), newSource(1, 30*mib), UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				if got := ft.seen("UploadPart", "3"); got != 3 {
					t.Errorf("part 3 was tried %d times, want MaxAttempts = 3", got)
				}
				return err
			},
			wantErr: func(err error) bool { return apiCode(err) == "InternalError" },
		},
		{
			name: "a part is denied, not retried",
			run: func(t *testing.T, c *Client, bucket string) error {
				ft := &faultTransport{base: http.DefaultTransport, fault: func(_ *http.Request, op, part string, _ int) (int, string, bool) {
					if op == "UploadPart" && part == "2" {
						return http.StatusForbidden, "AccessDenied", false
					}
					return 0, "", false
				}}
				cfg := peerConfig(t)
				cfg.HTTPClient = &http.Client{Transport: ft}
				_, err := newPeerClient(t, cfg).Upload(context.Background(), newSource(1, 30*mib), UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				if got := ft.seen("UploadPart", "2"); got != 1 {
					t.Errorf("part 2 was tried %d times, want 1 (AccessDenied is permanent)", got)
				}
				return err
			},
			wantErr: func(err error) bool { return apiCode(err) == "AccessDenied" },
		},
		{
			name: "complete fails",
			run: func(t *testing.T, c *Client, bucket string) error {
				ft := &faultTransport{base: http.DefaultTransport, fault: func(_ *http.Request, op, _ string, _ int) (int, string, bool) {
					if op == "CompleteMultipartUpload" {
						return http.StatusBadRequest, "InvalidPart", false
					}
					return 0, "", false
				}}
				cfg := peerConfig(t)
				cfg.HTTPClient = &http.Client{Transport: ft}
				_, err := newPeerClient(t, cfg).Upload(context.Background(), newSource(1, 11*mib), UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				return err
			},
			wantErr: func(err error) bool { return apiCode(err) == "InvalidPart" },
		},
		{
			name: "upload still there after the first abort",
			run: func(t *testing.T, c *Client, bucket string) error {
				// The first abort is answered 204 without reaching the server.
				ft := &faultTransport{base: http.DefaultTransport, fault: func(_ *http.Request, op, _ string, attempt int) (int, string, bool) {
					if op == "AbortMultipartUpload" && attempt == 1 {
						return http.StatusNoContent, "", false
					}
					return 0, "", false
				}}
				cfg := peerConfig(t)
				cfg.HTTPClient = &http.Client{Transport: ft}
				_, err := newPeerClient(t, cfg).Upload(context.Background(), &failAfter{r: newSource(1, 100*mib), n: 12 * mib, err: errSource},
					UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				if got := ft.seen("AbortMultipartUpload", ""); got != 2 {
					t.Errorf("AbortMultipartUpload sent %d times, want 2", got)
				}
				return err
			},
			wantErr: func(err error) bool { return errors.Is(err, errSource) },
		},
		{
			name: "wrong credentials",
			run: func(t *testing.T, c *Client, bucket string) error {
				cfg := peerConfig(t)
				cfg.SecretAccessKey = "not-the-secret"
				_, err := newPeerClient(t, cfg).Upload(context.Background(), newSource(1, 30*mib), UploadOptions{Bucket: bucket, Key: "k", PartSize: part})
				return err
			},
			wantErr: func(err error) bool { return apiCode(err) == "SignatureDoesNotMatch" },
		},
		{
			name: "wrong access key, small object",
			run: func(t *testing.T, c *Client, bucket string) error {
				cfg := peerConfig(t)
				cfg.AccessKeyID = "nobody"
				_, err := newPeerClient(t, cfg).Upload(context.Background(), newSource(1, 10), UploadOptions{Bucket: bucket, Key: "k"})
				return err
			},
			// AWS says InvalidAccessKeyId (403); versitygw XAdminUserNotFound (404).
			wantErr: func(err error) bool {
				return apiCode(err) == "InvalidAccessKeyId" || apiCode(err) == "XAdminUserNotFound"
			},
		},
	}
	c := newPeerClient(t, peerConfig(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := newBucket(t, c)
			err := tt.run(t, c, bucket)
			if err == nil {
				t.Fatal("Upload succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if !tt.wantErr(err) {
				t.Errorf("unexpected error: %v", err)
			}
			if !strings.Contains(err.Error(), bucket+"/k") {
				t.Errorf("error does not name the object %s/k: %v", bucket, err)
			}
			assertNothingLeft(t, c, bucket)
		})
	}
}

// apiCode returns the S3 error code inside err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestUploadRetriesTransientFailures injects one failure per case and checks
// the upload is retried and the object is intact.
func TestUploadRetriesTransientFailures(t *testing.T) {
	const part = 5 * mib
	tests := []struct {
		name   string
		size   int64
		op     string
		part   string
		status int
		code   string
		// forward lets the server store the request, then loses the answer.
		forward bool
	}{
		{name: "part throttled with 503 SlowDown", size: 16 * mib, op: "UploadPart", part: "2", status: http.StatusServiceUnavailable, code: "SlowDown"},
		{name: "part stored but the answer lost", size: 16 * mib, op: "UploadPart", part: "3", forward: true},
		{name: "last part 500 InternalError", size: 16 * mib, op: "UploadPart", part: "4", status: http.StatusInternalServerError, code: "InternalError"},
		{name: "single request 502", size: 1234, op: "PutObject", status: http.StatusBadGateway, code: "BadGateway"},
	}
	for _, mode := range []Checksum{ChecksumCRC32, ChecksumMD5} {
		t.Run(mode.String(), func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ft := &faultTransport{base: http.DefaultTransport, fault: func(_ *http.Request, op, part string, attempt int) (int, string, bool) {
						if op == tt.op && part == tt.part && attempt == 1 {
							return tt.status, tt.code, tt.forward
						}
						return 0, "", false
					}}
					cfg := peerConfig(t)
					cfg.Checksum = mode
					cfg.HTTPClient = &http.Client{Transport: ft}
					c := newPeerClient(t, cfg)
					bucket := newBucket(t, c)
					src := newSource(7, tt.size)
					if _, err := c.Upload(context.Background(), src, UploadOptions{Bucket: bucket, Key: "k", PartSize: part, Concurrency: 2}); err != nil {
						t.Fatalf("Upload: %v", err)
					}
					if got := ft.seen(tt.op, tt.part); got != 2 {
						t.Errorf("%s %s sent %d times, want 2", tt.op, tt.part, got)
					}
					n, sum := objectDigest(t, c, bucket, "k")
					if n != tt.size || sum != src.digest() {
						t.Errorf("object has %d bytes sha256 %x, want %d bytes %x", n, sum, tt.size, src.digest())
					}
					if ups := pendingUploads(t, c, bucket); len(ups) != 0 {
						t.Errorf("%d uploads pending after success", len(ups))
					}
				})
			}
		})
	}
}

// TestRetryStopsWithContext checks that a backoff does not outlive ctx.
func TestRetryStopsWithContext(t *testing.T) {
	c := &Client{cfg: Config{MaxAttempts: 100, RetryDelay: time.Hour, MaxRetryDelay: time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	transient := &smithy.GenericAPIError{Code: "SlowDown"}
	calls := 0
	err := c.retry(ctx, func(context.Context) error {
		calls++
		cancel()
		return transient
	})
	if calls != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, transient) {
		t.Fatalf("retry made %d calls and returned %v; want 1 call, the API error and context.Canceled", calls, err)
	}
}
