package s3store

// The real peer: versitygw (an S3 server, Apache-2.0) on loopback with a
// posix backend in a temporary directory, as in transfer/s3. It starts on
// first use, once per test binary, and TestMain stops it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	peerAccessKey = "testkey"
	peerSecretKey = "testsecret"
	// peerInstall is how the test peer is installed (scripts/install-peers.sh).
	peerInstall = "GOBIN=<repo>/.peers/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)

// versitygw is one running server.
type versitygw struct {
	endpoint string
	cmd      *exec.Cmd
	dir      string
	log      bytes.Buffer
	exited   chan struct{}
}

// peerState is the package's one server, started on first use.
type peerState struct {
	once sync.Once
	gw   *versitygw
	err  error
}

// testPeer is reached only through startPeer; TestMain stops it.
var testPeer peerState

func TestMain(m *testing.M) {
	code := m.Run()
	if testPeer.gw != nil {
		testPeer.gw.stop()
	}
	os.Exit(code)
}

// startPeer returns the endpoint of the package's versitygw, starting it on
// first use. It fails the test with an install hint when versitygw is missing.
func startPeer(tb testing.TB) string {
	tb.Helper()
	testPeer.once.Do(func() { testPeer.gw, testPeer.err = launchVersitygw() })
	if testPeer.err != nil {
		tb.Fatalf("versitygw (the S3 test peer): %v", testPeer.err)
	}
	return testPeer.gw.endpoint
}

// findVersitygw looks in $XOREST_PEERS_BIN, then <repo>/.peers/bin, then PATH.
func findVersitygw() (string, error) {
	var tried []string
	if dir := os.Getenv("XOREST_PEERS_BIN"); dir != "" {
		tried = append(tried, dir)
		if p := filepath.Join(dir, "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	if root, err := repoRoot(); err == nil {
		dir := filepath.Join(root, ".peers", "bin")
		tried = append(tried, dir)
		if p := filepath.Join(dir, "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("not found in %s or PATH; install it with:\n\t%s\n(or run `make peers`)", strings.Join(tried, ", "), peerInstall)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}

func launchVersitygw() (*versitygw, error) {
	bin, err := findVersitygw()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "xorest-s3store-versitygw-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()

	g := &versitygw{endpoint: "http://" + addr, dir: dir, exited: make(chan struct{})}
	g.cmd = exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+peerAccessKey, "ROOT_SECRET_ACCESS_KEY="+peerSecretKey)
	g.cmd.Stdout = &g.log
	g.cmd.Stderr = &g.log
	if err := g.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()

	// Any HTTP answer (403 without credentials) means it is serving.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(g.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return g, nil
		}
		select {
		case <-g.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited before answering: %s", bin, g.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("%s did not answer on %s: %v", bin, addr, err)
		}
	}
}

func (g *versitygw) stop() {
	g.cmd.Process.Kill()
	<-g.exited
	os.RemoveAll(g.dir)
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
