package handlers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/xorest/xorest/internal/peertest"
	"github.com/xorest/xorest/transfer/s3"
	"github.com/xorest/xorest/xo/xapisim"
)

// BenchmarkImport256MiB writes a 256 MiB raw image into a VDI three ways
// in one run: as the request body, and pulled by xorest from versitygw
// through a presigned URL and through s3://bucket/key (?sync). The MB/s
// columns compare them:
//
//	go test ./handlers -run '^$' -bench Import256MiB -benchtime 3x
func BenchmarkImport256MiB(b *testing.B) {
	const size = 256 << 20
	gw, err := peertest.StartVersityGW("benchkey", "benchsecret")
	if err != nil {
		b.Fatalf("versitygw (the S3 test peer): %v", err)
	}
	b.Cleanup(gw.Stop)
	client, err := s3.New(b.Context(), s3.Config{
		Endpoint: gw.Endpoint, Region: "us-east-1", UsePathStyle: true, AccessKeyID: "benchkey", SecretAccessKey: "benchsecret",
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.API().CreateBucket(b.Context(), &awss3.CreateBucketInput{Bucket: aws.String("images")}); err != nil {
		b.Fatal(err)
	}
	m := xapisim.Default()
	m.DiskSize = size
	sf := newSimFixture(b, []xapisim.Model{m}, allowLoopback, func(c *Config) { c.S3 = client })
	ts := httptest.NewServer(sf.h)
	b.Cleanup(ts.Close)
	line := []byte("256 MiB through xorest, from S3 or from the request body.\n")
	image := bytes.Repeat(line, size/len(line)+1)[:size]
	if _, err := client.API().PutObject(b.Context(), &awss3.PutObjectInput{
		Bucket: aws.String("images"), Key: aws.String("disk.raw"), Body: bytes.NewReader(image), ContentLength: aws.Int64(size),
	}); err != nil {
		b.Fatal(err)
	}
	presigned, err := client.Presign(b.Context(), "images", "disk.raw", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	dst := sf.idOf(b, "vdis", "vm5 disk 0")
	target := ts.URL + BasePath + "/vdis/" + dst + ".raw"
	put := func(b *testing.B, body io.Reader, length int64, json bool) {
		req, err := http.NewRequestWithContext(b.Context(), "PUT", target, body)
		if err != nil {
			b.Fatal(err)
		}
		req.ContentLength = length
		if json {
			req.URL.RawQuery = "sync"
			req.Header.Set("Content-Type", "application/json")
		}
		req.AddCookie(&http.Cookie{Name: tokenCookie, Value: sf.token})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d: %s", resp.StatusCode, msg)
		}
	}
	for _, bc := range []struct {
		name string
		run  func(b *testing.B)
	}{
		{"body", func(b *testing.B) { put(b, bytes.NewReader(image), size, false) }},
		{"url-presigned", func(b *testing.B) {
			body := urlBody(presigned)
			put(b, strings.NewReader(body), int64(len(body)), true)
		}},
		{"url-s3", func(b *testing.B) {
			body := urlBody("s3://images/disk.raw")
			put(b, strings.NewReader(body), int64(len(body)), true)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				bc.run(b)
			}
			b.StopTimer()
			got := make([]byte, 1<<20)
			if _, err := sf.sims[0].ReadVDIAt(dst, got, size-1<<20); err != nil && err != io.EOF {
				b.Fatal(err)
			}
			if !bytes.Equal(got, image[size-1<<20:]) {
				b.Fatal("the VDI's last MiB differs from the image's")
			}
		})
	}
}
