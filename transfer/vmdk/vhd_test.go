package vmdk

import (
	"bytes"
	"context"
	"testing"

	"github.com/xorest/xorest/transfer/vhd"
)

// TestFromVHD converts a VHD stream to a VMDK with a *vhd.Reader as the
// BlockSource, the path of a disk exported by XAPI as VHD.
func TestFromVHD(t *testing.T) {
	tc := sizeCases[len(sizeCases)-1]
	raw := makeRaw(tc.size, 14, tc.filled...)
	blocks, err := vhd.ScanBlocks(context.Background(), bytes.NewReader(raw), tc.size)
	if err != nil {
		t.Fatal(err)
	}
	s, err := vhd.NewStream(vhd.Options{Size: tc.size}, blocks, vhd.ReaderAtSource(bytes.NewReader(raw), tc.size, blocks))
	if err != nil {
		t.Fatal(err)
	}
	r, err := vhd.NewReader(s)
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if _, err := Write(context.Background(), &img, Options{Size: r.Size(), BlockSize: r.BlockSize()}, r); err != nil {
		t.Fatal(err)
	}
	if _, got := readRaw(t, img.Bytes()); !bytes.Equal(got, raw) {
		t.Fatal("VMDK made from the VHD differs from the raw disk")
	}
}
