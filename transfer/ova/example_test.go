package ova_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/xorest/xorest/transfer/ova"
	"github.com/xorest/xorest/transfer/vmdk"
)

// Example writes a one-disk VM as an OVA; a handler would set Content-Length
// to a.Size() and write to the response.
func Example() {
	disk := make([]byte, 64<<20) // a 64 MiB disk with data in its first 2 MiB block
	copy(disk, bytes.Repeat([]byte("boot sector and friends "), 10000))

	vm := ova.VM{
		Name: "web01", Description: "front end", CPUs: 2, Memory: 2 << 30,
		Disks: []ova.Disk{{
			Name:      "xvda",
			Capacity:  int64(len(disk)),
			Allocated: 2 << 20, // one 2 MiB block holds data
			Open: func(context.Context) (vmdk.BlockSource, error) {
				return vmdk.ReaderAtSource(bytes.NewReader(disk), int64(len(disk)), 0), nil
			},
		}},
		NICs: []ova.NIC{{Network: "Pool-wide network associated with eth0"}},
	}
	a, err := ova.New(context.Background(), vm, ova.Options{})
	if err != nil {
		log.Fatal(err)
	}
	n, err := a.Write(context.Background(), io.Discard)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Files(), n == a.Size())
	// Output: [web01.ovf web01-disk1.vmdk] true
}
