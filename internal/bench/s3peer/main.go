// Command s3peer is the peer of xorest's export to S3 in `make bench`: a
// plain AWS SDK multipart upload of an XAPI export stream. It GETs the
// stream from XAPI (the same /export or /export_raw_vdi xorest reads) and
// uploads it with one of the SDK's own multipart uploaders,
// feature/s3/manager or feature/s3/transfermanager, with the part size and
// concurrency xorest's export uses (transfer/s3's defaults) and the SDK's
// default CRC32 checksums, to the S3 server xorest writes to.
//
// Usage:
//
//	s3peer mkbucket -bucket B
//	s3peer upload -src URL -bucket B -key K [-uploader manager|transfermanager] [-case NAME]
//	s3peer rm -bucket B -key K
//
// The S3 endpoint, region and credentials come from the SDK's default
// chain (AWS_ENDPOINT_URL_S3 or -endpoint, AWS_REGION, AWS_ACCESS_KEY_ID…);
// -path-style addresses buckets as host/bucket.
//
// upload prints one JSON line: case, bytes, seconds (from the GET to the
// completed upload), etag, peak_rss_bytes (VmHWM of this process) and
// start_rss_bytes (its VmRSS before the GET, once the client is built). rm
// deletes an object.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	xs3 "github.com/xorest/xorest/transfer/s3"
)

// options are the flags of every subcommand.
type options struct {
	endpoint    string
	pathStyle   bool
	bucket, key string
	src         string
	uploader    string
	name        string
	partSize    int64
	concurrency int
	timeout     time.Duration
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "s3peer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: s3peer mkbucket|upload|rm [flags]")
	}
	cmd := args[0]
	var o options
	fs := flag.NewFlagSet("s3peer "+cmd, flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint URL (default: the SDK's, AWS_ENDPOINT_URL_S3)")
	fs.BoolVar(&o.pathStyle, "path-style", true, "address buckets as host/bucket")
	fs.StringVar(&o.bucket, "bucket", "", "bucket")
	fs.StringVar(&o.key, "key", "", "object key")
	fs.StringVar(&o.src, "src", "", "URL of the export stream to upload (upload)")
	fs.StringVar(&o.uploader, "uploader", "manager", "manager (feature/s3/manager) or transfermanager (feature/s3/transfermanager)")
	fs.StringVar(&o.name, "case", "", "the case name printed (default: sdk <uploader>)")
	fs.Int64Var(&o.partSize, "part-size", xs3.DefaultPartSize, "part size in bytes (xorest's default)")
	fs.IntVar(&o.concurrency, "concurrency", xs3.DefaultConcurrency, "parts in flight (xorest's default)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound of the whole command")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.bucket == "" {
		return errors.New("-bucket is required")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := awss3.NewFromConfig(awsCfg, func(so *awss3.Options) {
		so.UsePathStyle = o.pathStyle
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
		}
	})
	switch cmd {
	case "mkbucket":
		if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(o.bucket)}); err != nil {
			return fmt.Errorf("CreateBucket %s: %w", o.bucket, err)
		}
		return nil
	case "upload":
		return upload(ctx, client, o, stdout)
	case "rm":
		if _, err := client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)}); err != nil {
			return fmt.Errorf("DeleteObject %s/%s: %w", o.bucket, o.key, err)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q (want mkbucket, upload or rm)", cmd)
}

// upload streams o.src into o.bucket/o.key and prints the measurement.
func upload(ctx context.Context, client *awss3.Client, o options, stdout io.Writer) error {
	if o.src == "" || o.key == "" {
		return errors.New("upload needs -src and -key")
	}
	name := o.name
	if name == "" {
		name = "sdk " + o.uploader
	}
	var put func(io.Reader) (string, error)
	switch o.uploader {
	case "manager":
		//lint:ignore SA1019 the SDK's (deprecated) uploader is the common peer this benchmark compares with
		u := manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = o.partSize
			u.Concurrency = o.concurrency
		})
		put = func(r io.Reader) (string, error) {
			//lint:ignore SA1019 see above
			out, err := u.Upload(ctx, &awss3.PutObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key), Body: r})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.ETag), nil
		}
	case "transfermanager":
		tm := transfermanager.New(client, func(to *transfermanager.Options) {
			to.PartSizeBytes = o.partSize
			to.Concurrency = o.concurrency
		})
		put = func(r io.Reader) (string, error) {
			out, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key), Body: r})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.ETag), nil
		}
	default:
		return fmt.Errorf("unknown uploader %q (want manager or transfermanager)", o.uploader)
	}

	startRSS := procStatus("VmRSS")
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.src, nil)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET source: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET source: %s: %s", resp.Status, b)
	}
	// Hide the body's type so that neither uploader learns the length: the
	// XVA and VHD streams xorest uploads have none either.
	body := &countingReader{r: resp.Body}
	etag, err := put(body)
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", o.bucket, o.key, err)
	}
	secs := time.Since(start).Seconds()
	return json.NewEncoder(stdout).Encode(map[string]any{
		"case": name, "bytes": body.n, "seconds": secs, "etag": strings.Trim(etag, `"`), "peak_rss_bytes": procStatus("VmHWM"), "start_rss_bytes": startRSS,
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// procStatus returns a memory field of this process's /proc/self/status
// (VmHWM, VmRSS) in bytes, or -1 when unknown.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
