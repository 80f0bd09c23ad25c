package s3

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Checksum selects how the integrity of each uploaded part is protected.
type Checksum int

const (
	// ChecksumCRC32 is the AWS SDK's default: a CRC32 of every part, sent as
	// a header or an aws-chunked trailer, declared on CreateMultipartUpload and
	// repeated in CompleteMultipartUpload. AWS S3 and versitygw accept it.
	ChecksumCRC32 Checksum = iota
	// ChecksumMD5 turns the SDK's automatic checksums off
	// (RequestChecksumCalculation=WhenRequired) and sends a Content-MD5 header
	// with every part instead. Use it for S3-compatible servers that reject
	// the SDK's CRC headers or aws-chunked bodies (Backblaze B2, Cloudflare R2,
	// older MinIO, Ceph and others).
	ChecksumMD5
	// ChecksumNone turns the SDK's automatic checksums off and sends none.
	// Over plain HTTP the SigV4 payload hash still covers each body.
	ChecksumNone
)

// String returns the checksum's name as used in configuration: "crc32",
// "md5" or "none".
func (c Checksum) String() string {
	switch c {
	case ChecksumCRC32:
		return "crc32"
	case ChecksumMD5:
		return "md5"
	case ChecksumNone:
		return "none"
	}
	return fmt.Sprintf("Checksum(%d)", int(c))
}

// ParseChecksum parses the names String returns.
func ParseChecksum(s string) (Checksum, error) {
	switch s {
	case "crc32", "":
		return ChecksumCRC32, nil
	case "md5":
		return ChecksumMD5, nil
	case "none":
		return ChecksumNone, nil
	}
	return 0, fmt.Errorf("%w: checksum %q (want crc32, md5 or none)", ErrInvalidConfig, s)
}

// Default retry settings for part uploads; see Config.
const (
	DefaultMaxAttempts   = 5
	DefaultRetryDelay    = 250 * time.Millisecond
	DefaultMaxRetryDelay = 15 * time.Second
	// DefaultAbortTimeout bounds the AbortMultipartUpload call that runs after a
	// failure, even when the upload's context is already cancelled.
	DefaultAbortTimeout = 30 * time.Second
	// MaxPresignExpiry is the longest expiry SigV4 allows for a presigned URL.
	MaxPresignExpiry = 7 * 24 * time.Hour
)

// Config says how to reach an S3 (or S3-compatible) service. The zero value
// talks to AWS S3 with the SDK's default region and credential chain
// (environment, shared files, container and instance roles).
type Config struct {
	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:7070"). Empty means AWS S3.
	Endpoint string
	// Region signs requests. Empty means the SDK's default chain, or
	// "us-east-1" when that yields nothing.
	Region string
	// UsePathStyle addresses buckets as https://host/bucket/key instead of
	// https://bucket.host/key. Most S3-compatible servers need it.
	UsePathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// When AccessKeyID is empty the SDK's default credential chain is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Checksum selects part integrity checks; the zero value is ChecksumCRC32.
	Checksum Checksum
	// HTTPClient sends every request; nil means the SDK's default client.
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts per part (and per single-request
	// PutObject); 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryDelay is the first backoff between attempts; it doubles with every
	// attempt up to MaxRetryDelay, with full jitter. 0 means the defaults.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// AbortTimeout bounds AbortMultipartUpload after a failure; 0 means
	// DefaultAbortTimeout.
	AbortTimeout time.Duration
}

func (c *Config) validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return fmt.Errorf("%w: endpoint %q: %v", ErrInvalidConfig, c.Endpoint, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: endpoint %q: want http(s)://host[:port]", ErrInvalidConfig, c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return fmt.Errorf("%w: static credentials need both an access key id and a secret", ErrInvalidConfig)
	}
	if c.AccessKeyID == "" && c.SessionToken != "" {
		return fmt.Errorf("%w: session token without an access key id", ErrInvalidConfig)
	}
	if c.Checksum < ChecksumCRC32 || c.Checksum > ChecksumNone {
		return fmt.Errorf("%w: checksum %d", ErrInvalidConfig, int(c.Checksum))
	}
	if c.MaxAttempts < 0 || c.RetryDelay < 0 || c.MaxRetryDelay < 0 || c.AbortTimeout < 0 {
		return fmt.Errorf("%w: negative retry setting", ErrInvalidConfig)
	}
	return nil
}

// Client uploads streams to S3 and presigns downloads. It is safe for
// concurrent use.
type Client struct {
	api     *awss3.Client
	presign *awss3.PresignClient
	cfg     Config
}

// New builds a Client. It checks cfg before any network call; with static
// credentials it reads nothing from the environment, otherwise it resolves the
// SDK's default configuration (which may read the environment and shared
// config files, but sends no request).
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.MaxRetryDelay == 0 {
		cfg.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if cfg.AbortTimeout == 0 {
		cfg.AbortTimeout = DefaultAbortTimeout
	}

	var awsCfg aws.Config
	if cfg.AccessKeyID != "" {
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)),
		}
	} else {
		var opts []func(*config.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, config.WithRegion(cfg.Region))
		}
		loaded, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
		}
		awsCfg = loaded
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
	}
	if cfg.Checksum == ChecksumCRC32 {
		awsCfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	} else {
		awsCfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}

	api := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		o.UsePathStyle = cfg.UsePathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Client{api: api, presign: awss3.NewPresignClient(api), cfg: cfg}, nil
}

// API returns the underlying SDK client, configured like this Client, for
// operations this package does not wrap (GetObject, HeadObject, listing).
func (c *Client) API() *awss3.Client { return c.api }

// Presign returns a URL that lets anyone holding it GET bucket/key with plain
// HTTP until expiry passes (at most MaxPresignExpiry). A URL signed with
// temporary credentials (a Lambda role) stops working when they expire, even
// if expiry is later.
func (c *Client) Presign(ctx context.Context, bucket, key string, expiry time.Duration) (string, error) {
	if bucket == "" || key == "" {
		return "", fmt.Errorf("%w: presign needs a bucket and a key", ErrInvalidOptions)
	}
	if expiry <= 0 || expiry > MaxPresignExpiry {
		return "", fmt.Errorf("%w: presign expiry %s not in (0, %s]", ErrInvalidOptions, expiry, MaxPresignExpiry)
	}
	req, err := c.presign.PresignGetObject(ctx, &awss3.GetObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
	}, awss3.WithPresignExpires(expiry))
	if err != nil {
		return "", fmt.Errorf("s3: presign GET %s/%s: %w", bucket, key, err)
	}
	return req.URL, nil
}
