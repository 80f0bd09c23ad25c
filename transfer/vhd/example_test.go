package vhd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/xorest/xorest/transfer/vhd"
)

// Example converts a sparse raw disk to a VHD stream and back.
func Example() {
	raw := make([]byte, 5<<20) // 5 MiB: blocks 0, 1 and a partial block 2
	copy(raw[3<<20:], "hello") // only block 1 holds data

	ctx := context.Background()
	disk := bytes.NewReader(raw)
	blocks, err := vhd.ScanBlocks(ctx, disk, int64(len(raw)))
	if err != nil {
		log.Fatal(err)
	}
	s, err := vhd.NewStream(vhd.Options{Size: int64(len(raw))}, blocks, vhd.ReaderAtSource(disk, int64(len(raw)), blocks))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blocks:", blocks, "Content-Length:", s.Size())

	var img bytes.Buffer
	if _, err := s.WriteTo(&img); err != nil {
		log.Fatal(err)
	}

	r, err := vhd.NewReader(&img)
	if err != nil {
		log.Fatal(err)
	}
	back, err := io.ReadAll(r.Raw())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("virtual size:", r.Size(), "identical:", bytes.Equal(back, raw))
	// Output:
	// blocks: [1] Content-Length: 2100736
	// virtual size: 5242880 identical: true
}
