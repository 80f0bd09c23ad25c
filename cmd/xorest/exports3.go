package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/xorest/xorest/handlers"
	"github.com/xorest/xorest/transfer/s3"
)

// exportS3Config is the S3 of the export action and of s3://bucket/key
// imports: nothing is configured (both answer 501) unless a bucket or an
// endpoint is set. Region and credentials come from the AWS SDK's default
// chain (AWS_REGION, AWS_ACCESS_KEY_ID…, shared files, the Lambda role).
type exportS3Config struct {
	bucket    string
	endpoint  string
	pathStyle bool
	expiry    time.Duration
}

// register declares the flags (and so the XOREST_S3_* variables).
func (c *exportS3Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bucket, "s3-bucket", "", "default S3 bucket of the export action (S3 exports and s3:// imports are off unless this or --s3-endpoint is set)")
	fs.StringVar(&c.endpoint, "s3-endpoint", "", "base URL of an S3-compatible server (default: AWS S3)")
	fs.BoolVar(&c.pathStyle, "s3-path-style", false, "address buckets as host/bucket (most S3-compatible servers need it)")
	fs.DurationVar(&c.expiry, "s3-presign-expiry", handlers.DefaultPresignExpiry, "validity of the download URL of an export (at most 168h)")
}

// apply sets the S3 fields of hc when a bucket or an endpoint is set.
func (c exportS3Config) apply(ctx context.Context, hc *handlers.Config) error {
	if c.bucket == "" && c.endpoint == "" {
		return nil
	}
	if c.expiry <= 0 || c.expiry > s3.MaxPresignExpiry {
		return fmt.Errorf("%w: --s3-presign-expiry %s not in (0, %s]", errUsage, c.expiry, s3.MaxPresignExpiry)
	}
	client, err := s3.New(ctx, s3.Config{Endpoint: c.endpoint, UsePathStyle: c.pathStyle})
	if err != nil {
		return fmt.Errorf("S3 for exports: %w", err)
	}
	hc.S3, hc.S3Bucket, hc.PresignExpiry = client, c.bucket, c.expiry
	return nil
}
