package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// compact removes the zero sectors between the descriptor and the first
// grain of one of our images and moves every offset accordingly, so that
// fuzz seeds are a few KiB instead of 64.
func compact(t testing.TB, img []byte) []byte {
	t.Helper()
	const cut = overheadSectors - 1 - descriptorSectors
	want := mustRaw(t, img)
	v, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, e := range v.gd {
		if e == 0 {
			continue
		}
		for i := range GTEntries {
			p := int(e)*SectorSize + 4*i
			if g := le.Uint32(img[p:]); g > 1 {
				le.PutUint32(img[p:], g-cut)
			}
		}
	}
	gd := int(v.header.GDOffset) * SectorSize
	for i := range v.gd {
		if g := le.Uint32(img[gd+4*i:]); g != 0 {
			le.PutUint32(img[gd+4*i:], g-cut)
		}
	}
	footer := len(img) - 2*SectorSize
	le.PutUint64(img[footer+56:], v.header.GDOffset-cut)
	for _, h := range []int{0, footer} {
		le.PutUint64(img[h+64:], overheadSectors-cut)
	}
	out := append(img[:(1+descriptorSectors)*SectorSize:(1+descriptorSectors)*SectorSize], img[overheadSectors*SectorSize:]...)
	if _, got := readRaw(t, out); !bytes.Equal(got, want) {
		t.Fatal("compacted seed reads differently")
	}
	return out
}

func mustRaw(t testing.TB, img []byte) []byte {
	t.Helper()
	_, raw := readRaw(t, img)
	return raw
}

// FuzzReader feeds arbitrary images to NewReader and Next: they must either
// read or fail with an I/O-free *FormatError, never panic or allocate
// without bound.
func FuzzReader(f *testing.F) {
	for _, tc := range []struct {
		size   int64
		filled []region
		opts   Options
	}{
		{GrainSize * 3, []region{{0, 1000, false}}, Options{CID: 1}},
		{GrainSize*2 + 512, []region{{GrainSize, 512, true}}, Options{CID: 2, PadTo: MaxSize(GrainSize*2+512, GrainSize*3)}},
		{0, nil, Options{CID: 3}},
	} {
		raw := makeRaw(tc.size, 9, tc.filled...)
		f.Add(compact(f, buildVMDK(f, raw, tc.opts)))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		v, err := NewReader(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewReader: %v is not a *FormatError", err)
			}
			return
		}
		last := int64(-1)
		for {
			idx, data, err := v.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Next: %v does not match ErrInvalid", err)
				}
				return
			}
			if idx <= last || int64(len(data)) > v.GrainBytes() || idx*v.GrainBytes()+int64(len(data)) > v.Size() {
				t.Fatalf("grain %d (%d bytes) after %d in a disk of %d", idx, len(data), last, v.Size())
			}
			last = idx
		}
	})
}
