package main

import (
	"testing"
	"time"

	"github.com/xorest/xorest/handlers"
)

func TestExportS3Config(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantS3     bool
		wantBucket string
		wantExpiry time.Duration
		wantErr    bool
	}{
		{name: "off without a bucket or an endpoint", env: map[string]string{"AWS_REGION": "eu-west-1"}},
		{name: "endpoint without a default bucket (s3:// imports, exports naming a bucket)", env: map[string]string{"XOREST_S3_ENDPOINT": "http://127.0.0.1:7070"},
			wantS3: true, wantExpiry: handlers.DefaultPresignExpiry},
		{name: "bucket", env: map[string]string{"XOREST_S3_BUCKET": "b", "AWS_REGION": "eu-west-1"},
			wantS3: true, wantBucket: "b", wantExpiry: handlers.DefaultPresignExpiry},
		{name: "endpoint, path style, expiry", env: map[string]string{"XOREST_S3_BUCKET": "b", "XOREST_S3_ENDPOINT": "http://127.0.0.1:7070",
			"XOREST_S3_PATH_STYLE": "true", "XOREST_S3_PRESIGN_EXPIRY": "2h"}, wantS3: true, wantBucket: "b", wantExpiry: 2 * time.Hour},
		{name: "bad endpoint", env: map[string]string{"XOREST_S3_BUCKET": "b", "XOREST_S3_ENDPOINT": "ftp://x"}, wantErr: true},
		{name: "expiry too long", env: map[string]string{"XOREST_S3_BUCKET": "b", "XOREST_S3_PRESIGN_EXPIRY": "200h"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
				t.Setenv(k, tt.env[k])
			}
			t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
			cfg, err := parseServe(nil, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			var hc handlers.Config
			err = cfg.s3.apply(t.Context(), &hc)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (hc.S3 != nil) != tt.wantS3 || hc.S3Bucket != tt.wantBucket || hc.PresignExpiry != tt.wantExpiry {
				t.Errorf("S3 %v bucket %q expiry %s", hc.S3 != nil, hc.S3Bucket, hc.PresignExpiry)
			}
			if tt.wantS3 && cfg.s3.pathStyle != (tt.env["XOREST_S3_PATH_STYLE"] == "true") {
				t.Errorf("path style %v", cfg.s3.pathStyle)
			}
		})
	}
	t.Run("lambda reads the same variables", func(t *testing.T) {
		cfg, err := parseLambda(envOf(map[string]string{"XOREST_XAPI": "https://a", "XOREST_XAPI_PASSWORD": "pw", "XOREST_S3_BUCKET": "b", "XOREST_S3_PATH_STYLE": "true"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.s3.bucket != "b" || !cfg.s3.pathStyle {
			t.Errorf("s3 %+v", cfg.s3)
		}
	})
}
