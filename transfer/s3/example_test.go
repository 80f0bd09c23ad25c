package s3_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xorest/xorest/transfer/s3"
)

// An export streams into a bucket and hands back a download link.
func Example() {
	ctx := context.Background()
	client, err := s3.New(ctx, s3.Config{
		Endpoint:        "http://127.0.0.1:7070", // omit for AWS S3
		UsePathStyle:    true,
		Region:          "us-east-1",
		AccessKeyID:     "testkey", // omit for the SDK's default chain
		SecretAccessKey: "testsecret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	var export io.Reader = strings.NewReader("the bytes of a VM export") // e.g. an XAPI /export body
	res, err := client.Upload(ctx, export, s3.UploadOptions{
		Bucket:       "backups",
		Key:          "vms/0f9a.xva",
		ExpectedSize: -1, // unknown: parts grow as the stream does
		ContentType:  "application/x-xva",
		Progress:     func(n int64) { /* report n bytes stored on the task */ },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	url, err := client.Presign(ctx, res.Bucket, res.Key, 24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Size, res.ETag, url)
}
