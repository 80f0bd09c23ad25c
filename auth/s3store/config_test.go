package s3store

import (
	"context"
	"errors"
	"strings"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, in       string
		bucket, prefix string
		bad            bool
	}{
		{name: "bucket only", in: "s3://tokens", bucket: "tokens"},
		{name: "bucket slash", in: "s3://tokens/", bucket: "tokens"},
		{name: "prefix", in: "s3://my-bucket/xorest", bucket: "my-bucket", prefix: "xorest"},
		{name: "nested prefix trailing slash", in: "s3://my.bucket/a/b/", bucket: "my.bucket", prefix: "a/b"},
		{name: "escaped prefix", in: "s3://bkt/a%20b", bucket: "bkt", prefix: "a b"},
		{name: "other scheme", in: "https://bkt/p", bad: true},
		{name: "no scheme", in: "bkt/p", bad: true},
		{name: "empty", in: "", bad: true},
		{name: "no bucket", in: "s3:///p", bad: true},
		{name: "uppercase bucket", in: "s3://Bucket/p", bad: true},
		{name: "short bucket", in: "s3://ab", bad: true},
		{name: "bucket with dots in a row", in: "s3://a..b", bad: true},
		{name: "credentials", in: "s3://key:secret@bkt/p", bad: true},
		{name: "port", in: "s3://bkt:9000/p", bad: true},
		{name: "query", in: "s3://bkt/p?x=1", bad: true},
		{name: "fragment", in: "s3://bkt/p#f", bad: true},
		{name: "double slash", in: "s3://bkt/a//b", bad: true},
		{name: "dot dot", in: "s3://bkt/a/../b", bad: true},
		{name: "control character", in: "s3://bkt/a%00b", bad: true},
		{name: "opaque", in: "s3:bkt", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseURL(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("ParseURL(%q) = %+v, %v; want ErrInvalidConfig", tc.in, cfg, err)
				}
				return
			}
			if err != nil || cfg.Bucket != tc.bucket || cfg.Prefix != tc.prefix {
				t.Errorf("ParseURL(%q) = bucket %q prefix %q, %v; want %q %q", tc.in, cfg.Bucket, cfg.Prefix, err, tc.bucket, tc.prefix)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://tokens", "s3://b-1/x/y/", "s3://a..b", "s3://k:s@b/p?q#f", "s3://bkt/a%2F%2Fb", "s3://bkt/%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("ParseURL(%q) error %v does not match ErrInvalidConfig", s, err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("ParseURL(%q) = %+v, which does not validate: %v", s, cfg, err)
		}
		if strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
			t.Fatalf("ParseURL(%q) prefix %q has an edge slash", s, cfg.Prefix)
		}
		again, err := ParseURL(cfg.String())
		if err != nil || again.Bucket != cfg.Bucket || again.Prefix != cfg.Prefix {
			t.Fatalf("ParseURL(%q) = %+v, but its String %q parses to %+v, %v", s, cfg, cfg.String(), again, err)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no bucket", Config{}},
		{"bad prefix", Config{Bucket: "bkt", Prefix: "/abs"}},
		{"client and endpoint", Config{Bucket: "bkt", Client: awss3.New(awss3.Options{}), Endpoint: "http://127.0.0.1:1"}},
		{"client and credentials", Config{Bucket: "bkt", Client: awss3.New(awss3.Options{}), AccessKeyID: "k", SecretAccessKey: "s"}},
		{"endpoint without scheme", Config{Bucket: "bkt", Endpoint: "127.0.0.1:9000"}},
		{"key without secret", Config{Bucket: "bkt", AccessKeyID: "k"}},
		{"secret without key", Config{Bucket: "bkt", SecretAccessKey: "s"}},
		{"session token alone", Config{Bucket: "bkt", SessionToken: "t"}},
		{"negative concurrency", Config{Bucket: "bkt", AccessKeyID: "k", SecretAccessKey: "s", ListConcurrency: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := New(context.Background(), tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, %v; want ErrInvalidConfig", s, err)
			}
		})
	}
}
