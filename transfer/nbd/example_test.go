package nbd_test

import (
	"context"
	"log"
	"net"
	"os"
	"strconv"

	"github.com/xorest/xorest/transfer/nbd"
	"github.com/xorest/xorest/transfer/vhd"
)

// nbdInfo is one record of XAPI's VDI.get_nbd_info.
type nbdInfo struct {
	Address, ExportName, Cert, Subject string
	Port                               int
}

// Example reads a VDI over NBD with two connections, as XAPI's
// VDI.get_nbd_info describes it, and writes it as a dynamic VHD.
func Example() {
	ctx := context.Background()
	infos := []nbdInfo{{
		Address:    "192.0.2.10",
		Port:       10809,
		ExportName: "/2f4ad5a1-9a34-4a9b-bd4b-52a3e1c9c8d1?session_id=OpaqueRef:c0ffee",
		Cert:       "-----BEGIN CERTIFICATE-----\n...",
		Subject:    "xcp-host-1",
	}}
	var endpoints []nbd.Options
	for _, info := range infos {
		opts := nbd.Options{
			Address:        net.JoinHostPort(info.Address, strconv.Itoa(info.Port)),
			ExportName:     info.ExportName,
			ExportNameOnly: true, // xapi-nbd knows no NBD_OPT_GO
		}
		if info.Cert != "" {
			cfg, err := nbd.PinnedTLSConfig([]byte(info.Cert), info.Subject)
			if err != nil {
				log.Fatal(err)
			}
			opts.TLS = cfg
		}
		endpoints = append(endpoints, opts)
	}

	r, err := nbd.NewReader(ctx, nbd.ReaderOptions{Endpoints: endpoints, Connections: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	// Every block is listed; with CBT, list only the changed ones and pass
	// the same list as ReaderOptions.Blocks.
	blocks := make([]int64, (r.Size()+nbd.BlockSize-1)/nbd.BlockSize)
	for i := range blocks {
		blocks[i] = int64(i)
	}
	s, err := vhd.NewStream(vhd.Options{Size: r.Size()}, blocks, r)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.WriteTo(os.Stdout); err != nil {
		log.Fatal(err)
	}
}
