package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// smallBlockVHD builds a dynamic VHD with 4 KiB blocks (the reader accepts
// any power-of-two block size), so that fuzz seeds with data stay small.
func smallBlockVHD(t testing.TB, size int64, blocks ...int64) []byte {
	t.Helper()
	const bs = 4096
	f := Footer{Features: 2, FileFormatVersion: version1, DataOffset: 512, CurrentSize: uint64(size),
		OriginalSize: uint64(size), DiskType: DiskTypeDynamic, UniqueID: NewUUID()}
	n := (size + bs - 1) / bs
	h := Header{DataOffset: noDataOffset, TableOffset: 1536, HeaderVersion: version1, MaxTableEntries: uint32(n), BlockSize: bs}
	fb, _ := f.MarshalBinary()
	hdr, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	img := append(append([]byte{}, fb...), hdr...)
	bat := make([]byte, batSize(n))
	for i := range n {
		binary.BigEndian.PutUint32(bat[4*i:], unusedEntry)
	}
	img = append(img, bat...)
	for k, b := range blocks {
		binary.BigEndian.PutUint32(img[1536+4*b:], uint32(len(img)/SectorSize))
		img = append(img, bytes.Repeat([]byte{0xFF}, SectorSize)...)
		img = append(img, bytes.Repeat([]byte{byte(k + 1)}, bs)...)
	}
	return append(img, fb...)
}

func TestSmallBlockVHD(t *testing.T) {
	img := smallBlockVHD(t, 5*4096+512, 1, 4)
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r.Raw())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 5*4096+512)
	copy(want[4096:], bytes.Repeat([]byte{1}, 4096))
	copy(want[4*4096:], bytes.Repeat([]byte{2}, 4096))
	if !bytes.Equal(raw, want) {
		t.Error("raw content of a 4 KiB-block VHD differs")
	}
}

// FuzzReader feeds arbitrary bytes to both readers and the raw adapter. They
// must return errors, never panic, and never allocate for sizes the input
// does not contain (limits are checked before allocating).
func FuzzReader(f *testing.F) {
	f.Add(smallBlockVHD(f, 5*4096+512, 1, 4))
	f.Add(smallBlockVHD(f, 3*4096, 0, 1, 2))
	f.Add(buildVHD(f, makeRaw(2*BlockSize, 1), Options{Parent: &Parent{Name: "p"}}))
	f.Add(smallBlockVHD(f, 2*4096, 1)[:2100])
	f.Fuzz(func(t *testing.T, data []byte) {
		// A tiny valid image may announce a 2 TiB disk of zeros: read a bounded prefix.
		const limit = 64 << 20
		if r, err := NewReader(bytes.NewReader(data)); err == nil {
			n, _ := io.CopyN(io.Discard, r.Raw(), limit)
			if n > r.Size() {
				t.Fatalf("raw stream gave %d bytes for a %d-byte disk", n, r.Size())
			}
		}
		if r, err := NewReaderAt(bytes.NewReader(data), int64(len(data))); err == nil {
			n, err := io.CopyN(io.Discard, r.Raw(), limit)
			if (err == nil && n != limit) || (errors.Is(err, io.EOF) && n != r.Size()) {
				t.Fatalf("raw stream gave %d bytes (%v) for a %d-byte disk", n, err, r.Size())
			}
		}
	})
}
