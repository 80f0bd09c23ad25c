package s3store

// The real peer: versitygw (an S3 server, Apache-2.0) on loopback with a
// posix backend in a temporary directory, as in transfer/s3. It starts on
// first use, once per test binary, and TestMain stops it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/xorest/xorest/internal/peertest"
)

const (
	peerAccessKey = "testkey"
	peerSecretKey = "testsecret"
)

// peerState is the package's one server, started on first use.
type peerState struct {
	once sync.Once
	gw   *peertest.VersityGW
	err  error
}

// testPeer is reached only through startPeer; TestMain stops it.
var testPeer peerState

func TestMain(m *testing.M) {
	code := m.Run()
	if testPeer.gw != nil {
		testPeer.gw.Stop()
	}
	os.Exit(code)
}

// startPeer returns the endpoint of the package's versitygw, starting it on
// first use. It fails the test with an install hint when versitygw is missing.
func startPeer(tb testing.TB) string {
	tb.Helper()
	testPeer.once.Do(func() { testPeer.gw, testPeer.err = peertest.StartVersityGW(peerAccessKey, peerSecretKey) })
	if testPeer.err != nil {
		tb.Fatalf("versitygw (the S3 test peer): %v", testPeer.err)
	}
	return testPeer.gw.Endpoint
}

// peerConfig is a Config for the peer, without bucket.
func peerConfig(tb testing.TB) Config {
	return Config{
		Endpoint:        startPeer(tb),
		Region:          "us-east-1",
		UsePathStyle:    true,
		AccessKeyID:     peerAccessKey,
		SecretAccessKey: peerSecretKey,
	}
}

// adminClient is an SDK client for the peer, independent of any Store.
func adminClient(tb testing.TB) *awss3.Client {
	tb.Helper()
	c, err := newClient(context.Background(), peerConfig(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var bucketSeq atomic.Int64

var notBucketChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newBucket creates an empty bucket named after the test.
func newBucket(tb testing.TB) string {
	tb.Helper()
	name := notBucketChars.ReplaceAllString(strings.ToLower(tb.Name()), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(fmt.Sprintf("b%d-%s", bucketSeq.Add(1), name), "-")
	if _, err := adminClient(tb).CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("CreateBucket %s: %v", name, err)
	}
	return name
}

// newPeerStore opens a Store on bucket/prefix of the peer, with its own SDK
// client (as another Lambda instance would have).
func newPeerStore(tb testing.TB, bucket, prefix string, edit func(*Config)) *Store {
	tb.Helper()
	cfg := peerConfig(tb)
	cfg.Bucket, cfg.Prefix = bucket, prefix
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// object is one object of a bucket.
type object struct {
	key  string
	body []byte
}

// allObjects downloads every object of bucket.
func allObjects(tb testing.TB, bucket string) []object {
	tb.Helper()
	ctx := context.Background()
	c := adminClient(tb)
	var objs []object
	pages := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			tb.Fatalf("ListObjectsV2 %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				tb.Fatalf("GetObject %s: %v", aws.ToString(o.Key), err)
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(out.Body)
			out.Body.Close()
			if err != nil {
				tb.Fatalf("read %s: %v", aws.ToString(o.Key), err)
			}
			objs = append(objs, object{key: aws.ToString(o.Key), body: buf.Bytes()})
		}
	}
	return objs
}

// putObject writes key in bucket directly, bypassing the store.
func putObject(tb testing.TB, bucket, key, body string) {
	tb.Helper()
	_, err := adminClient(tb).PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		tb.Fatalf("PutObject %s: %v", key, err)
	}
}
