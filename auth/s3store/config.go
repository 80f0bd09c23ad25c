package s3store

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// ErrInvalidConfig is returned (wrapped) by New and ParseURL for a
// configuration that cannot work, before any network call.
var ErrInvalidConfig = errors.New("s3store: invalid configuration")

// DefaultListConcurrency is how many token objects List fetches at once
// when Config.ListConcurrency is 0.
const DefaultListConcurrency = 16

// Config says where a Store keeps its tokens and how to reach S3.
//
// Either Client is set, and the connection fields (Endpoint to
// HTTPClient) must be empty, or a client is built from them: the zero
// connection fields talk to AWS S3 with the SDK's default region and
// credential chain (on Lambda, the function's role).
type Config struct {
	// Bucket holds the tokens. It must exist.
	Bucket string
	// Prefix is the key prefix of every object the store writes, without
	// leading or trailing slash ("xorest" gives "xorest/tokens/<hash>.json").
	// Empty means the bucket's root.
	Prefix string

	// Client is a ready SDK client. When nil, New builds one from the
	// fields below.
	Client *awss3.Client

	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:7070"). Empty means AWS S3.
	Endpoint string
	// Region signs requests. Empty means the SDK's default chain, or
	// "us-east-1" when that yields nothing.
	Region string
	// UsePathStyle addresses buckets as https://host/bucket/key. Most
	// S3-compatible servers need it.
	UsePathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// When AccessKeyID is empty the SDK's default credential chain is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// HTTPClient sends every request; nil means the SDK's default client.
	HTTPClient *http.Client

	// ListConcurrency bounds the GETs List runs at once; 0 means
	// DefaultListConcurrency.
	ListConcurrency int
	// Now is the store's clock for expiry; nil means time.Now.
	Now func() time.Time
}

// bucketRE is S3's rule for (new, general purpose) bucket names.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// checkBucket reports whether name is a valid S3 bucket name.
func checkBucket(name string) error {
	if !bucketRE.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: bucket %q: want 3-63 lowercase letters, digits, dots and hyphens", ErrInvalidConfig, name)
	}
	return nil
}

// checkPrefix reports whether p is a usable key prefix: slash-separated
// segments, none empty, "." or "..", no control characters.
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 512 {
		return fmt.Errorf("%w: prefix longer than 512 bytes", ErrInvalidConfig)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: prefix %q: empty, \".\" or \"..\" segment", ErrInvalidConfig, p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: prefix %q: control character or backslash", ErrInvalidConfig, p)
		}
	}
	return nil
}

func (c *Config) validate() error {
	if err := checkBucket(c.Bucket); err != nil {
		return err
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return err
	}
	if c.Client != nil {
		if c.Endpoint != "" || c.Region != "" || c.UsePathStyle || c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != "" || c.HTTPClient != nil {
			return fmt.Errorf("%w: Client is set together with connection settings; configure one or the other", ErrInvalidConfig)
		}
	}
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
	if c.ListConcurrency < 0 {
		return fmt.Errorf("%w: negative list concurrency", ErrInvalidConfig)
	}
	return nil
}

// ParseURL parses a token store location of the form s3://bucket[/prefix]
// (the value of XOREST_TOKEN_STORE) into a Config holding Bucket and
// Prefix; the caller adds the connection settings. Trailing slashes of the
// prefix are dropped. Credentials, ports, queries and fragments are refused.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("%w: token store URL: %v", ErrInvalidConfig, err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("%w: token store URL %q: want s3://bucket[/prefix]", ErrInvalidConfig, s)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return Config{}, fmt.Errorf("%w: token store URL %q: only s3://bucket[/prefix] is accepted", ErrInvalidConfig, s)
	}
	prefix := strings.TrimRight(strings.TrimPrefix(u.Path, "/"), "/")
	cfg := Config{Bucket: u.Host, Prefix: prefix}
	if err := checkBucket(cfg.Bucket); err != nil {
		return Config{}, err
	}
	if err := checkPrefix(cfg.Prefix); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// String returns the store's location as ParseURL reads it.
func (c Config) String() string {
	if c.Prefix == "" {
		return "s3://" + c.Bucket
	}
	return "s3://" + c.Bucket + "/" + c.Prefix
}
