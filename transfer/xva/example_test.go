package xva_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/xorest/xorest/transfer/xva"
)

// Example writes a zstd-compressed XVA with two disks and reads it back.
func Example() {
	ova := []byte(`<value><struct>...</struct></value>`)
	sys := make([]byte, 3<<20) // 3 MiB: chunk 1 is all zero and omitted
	copy(sys, "boot sector")
	copy(sys[2<<20:], "data")
	swap := make([]byte, 1000)

	var archive bytes.Buffer
	n, err := xva.Write(context.Background(), &archive, ova, []xva.Disk{
		{Ref: "Ref:9", Size: int64(len(swap)), Data: bytes.NewReader(swap)},
		{Ref: "Ref:10", Size: int64(len(sys)), Data: bytes.NewReader(sys)},
	}, xva.WriterOptions{Compression: xva.Zstd})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", n == int64(archive.Len()))

	r, err := xva.NewReader(&archive, xva.ReaderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Printf("%s, ova.xml %d bytes\n", r.Compression(), len(r.OVAXML()))
	sizes := map[string]int64{"Ref:9": int64(len(swap)), "Ref:10": int64(len(sys))}
	for {
		d, err := r.NextDisk()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		d.SetSize(sizes[d.Ref])
		for {
			off, data, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s: %d bytes at %d\n", d.Ref, len(data), off)
		}
	}
	// Output:
	// wrote true
	// zstd, ova.xml 35 bytes
	// Ref:10: 1048576 bytes at 0
	// Ref:10: 1048576 bytes at 2097152
	// Ref:9: 1000 bytes at 0
}
