package vmdk_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/xorest/xorest/transfer/vmdk"
)

// Example converts a raw disk into a streamOptimized VMDK and reads it back.
func Example() {
	raw := make([]byte, 3<<20) // a 3 MiB disk with data in its second MiB
	copy(raw[1<<20:], bytes.Repeat([]byte("hello, grain "), 1000))

	var img bytes.Buffer
	n, err := vmdk.Write(context.Background(), &img, vmdk.Options{Size: int64(len(raw)), FileName: "disk1.vmdk"},
		vmdk.ReaderAtSource(bytes.NewReader(raw), int64(len(raw)), 0))
	if err != nil {
		log.Fatal(err)
	}

	r, err := vmdk.NewReader(bytes.NewReader(img.Bytes()), n)
	if err != nil {
		log.Fatal(err)
	}
	back, err := io.ReadAll(r.Raw())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.CreateType(), r.Size(), bytes.Equal(back, raw), n <= vmdk.MaxSize(int64(len(raw)), 1<<20))
	// Output: streamOptimized 3145728 true true
}
