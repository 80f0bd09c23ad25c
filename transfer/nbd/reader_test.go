package nbd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
	"github.com/xorest/xorest/transfer/vhd"
)

// nonZeroBlocks lists the BlockSize blocks of data that hold a non-zero byte.
func nonZeroBlocks(data []byte) []int64 {
	var blocks []int64
	for off := 0; off < len(data); off += nbd.BlockSize {
		blk := data[off:min(len(data), off+nbd.BlockSize)]
		if slices.ContainsFunc(blk, func(b byte) bool { return b != 0 }) {
			blocks = append(blocks, int64(off/nbd.BlockSize))
		}
	}
	return blocks
}

func newReader(tb testing.TB, ctx context.Context, opts nbd.ReaderOptions) *nbd.Reader {
	tb.Helper()
	r, err := nbd.NewReader(ctx, opts)
	if err != nil {
		tb.Fatalf("NewReader: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// TestReader reads whole exports over 1 to 4 connections, one or several
// endpoints, with and without TLS and a block list, and checks both the
// block sequence and the raw stream against the file.
func TestReader(t *testing.T) {
	const size = 21<<20 + 5*512 // 11 blocks, the last one short
	path, data := randomFile(t, size, 9)
	a := startNbdkit(t, false, "file", path)
	b := startNbdkit(t, true, "file", path)
	self := newCert(t, "xcp-host.example", false, nil, "xcp-host.example")
	c := startNbdkit(t, true, "--tls=require", "--tls-certificates="+tlsDir(t, self, self), "file", path)
	tlsOpts := c.options()
	tlsOpts.TLS = pinned(t, self.pem, "xcp-host.example")
	dead := nbd.Options{Network: "unix", Address: filepath.Join(t.TempDir(), "nobody-listens")}

	all := make([]int64, (size+nbd.BlockSize-1)/nbd.BlockSize)
	for i := range all {
		all[i] = int64(i)
	}
	allocated := nonZeroBlocks(data)
	if len(allocated) == len(all) || len(allocated) == 0 {
		t.Fatalf("test data should have holes: %v", allocated)
	}
	cases := []struct {
		name      string
		endpoints []nbd.Options
		conns     int
		depth     int
		blocks    []int64
		wantConns int
	}{
		{"one connection", []nbd.Options{a.options()}, 1, 0, nil, 1},
		{"one connection depth 1", []nbd.Options{a.options()}, 1, 1, nil, 1},
		{"two connections", []nbd.Options{a.options()}, 2, 0, nil, 2},
		{"four connections depth 3", []nbd.Options{a.options()}, 4, 3, nil, 4},
		{"block list", []nbd.Options{a.options()}, 2, 0, allocated, 2},
		{"block list with the last block only", []nbd.Options{a.options()}, 3, 0, []int64{int64(len(all) - 1)}, 3},
		{"empty block list", []nbd.Options{a.options()}, 2, 0, []int64{}, 2},
		{"two endpoints and a dead one", []nbd.Options{dead, a.options(), b.options()}, 4, 0, nil, 4},
		{"TLS", []nbd.Options{tlsOpts}, 3, 0, allocated, 3},
	}
	for _, tc := range cases {
		want := tc.blocks
		if want == nil {
			want = all
		}
		wantRaw := bytes.Clone(data)
		for i := range all {
			if !slices.Contains(want, int64(i)) {
				clear(wantRaw[i*nbd.BlockSize : min(size, (i+1)*nbd.BlockSize)])
			}
		}
		opts := nbd.ReaderOptions{Endpoints: tc.endpoints, Connections: tc.conns, Depth: tc.depth, Blocks: tc.blocks}
		t.Run(tc.name+"/blocks", func(t *testing.T) {
			r := newReader(t, context.Background(), opts)
			if r.Size() != size || r.Connections() != tc.wantConns {
				t.Fatalf("Size, Connections = %d, %d; want %d, %d", r.Size(), r.Connections(), size, tc.wantConns)
			}
			var got []int64
			for {
				idx, blk, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, idx)
				off := idx * nbd.BlockSize
				if !bytes.Equal(blk, data[off:min(size, off+nbd.BlockSize)]) {
					t.Fatalf("block %d differs from the file", idx)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("blocks %v, want %v", got, want)
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next after the end: %v", err)
			}
		})
		t.Run(tc.name+"/raw", func(t *testing.T) {
			r := newReader(t, context.Background(), opts)
			var got bytes.Buffer
			// A small buffer exercises partial reads of blocks.
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{r.Raw()}, make([]byte, 100_000)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), wantRaw) {
				t.Fatalf("raw stream (%d bytes) differs from the file (%d bytes)", got.Len(), len(wantRaw))
			}
		})
	}
}

// TestReaderErrors covers bad options and endpoints.
func TestReaderErrors(t *testing.T) {
	path1, _ := randomFile(t, 4<<20, 10)
	path2, _ := randomFile(t, 6<<20, 11)
	s1 := startNbdkit(t, false, "file", path1)
	s2 := startNbdkit(t, false, "file", path2)
	dead := nbd.Options{Network: "unix", Address: filepath.Join(t.TempDir(), "nobody-listens")}
	cases := []struct {
		name string
		opts nbd.ReaderOptions
	}{
		{"no endpoints", nbd.ReaderOptions{}},
		{"only dead endpoints", nbd.ReaderOptions{Endpoints: []nbd.Options{dead, dead}, Connections: 2}},
		{"different sizes", nbd.ReaderOptions{Endpoints: []nbd.Options{s1.options(), s2.options()}, Connections: 2}},
		{"block beyond the end", nbd.ReaderOptions{Endpoints: []nbd.Options{s1.options()}, Blocks: []int64{0, 2}}},
		{"blocks not increasing", nbd.ReaderOptions{Endpoints: []nbd.Options{s1.options()}, Blocks: []int64{1, 1}}},
		{"negative block", nbd.ReaderOptions{Endpoints: []nbd.Options{s1.options()}, Blocks: []int64{-1}}},
		{"bad network", nbd.ReaderOptions{Endpoints: []nbd.Options{{Network: "udp", Address: "x"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := nbd.NewReader(context.Background(), tc.opts)
			if err == nil {
				r.Close()
				t.Fatal("NewReader succeeded")
			}
			t.Log(err)
		})
	}
}

// TestReaderCancel ends a read through its context and through Close.
func TestReaderCancel(t *testing.T) {
	path, _ := randomFile(t, 8<<20, 12)
	s := startNbdkit(t, false, "--filter=delay", "file", path, "rdelay=30")
	opts := nbd.ReaderOptions{Endpoints: []nbd.Options{s.options()}, Connections: 2}

	ctx, cancel := context.WithCancel(context.Background())
	r := newReader(t, ctx, opts)
	go func() {
		time.Sleep(50 * time.Millisecond) // let requests go out; not needed for correctness
		cancel()
	}()
	if _, _, err := r.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	if _, err := r.Raw().Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancellation = %v, want context.Canceled", err)
	}

	// A server of its own: the first one may still be busy with the
	// cancelled reader's delayed requests (it then dropped new connections
	// at the greeting once in a -count=4 run on a loaded machine).
	r.Close()
	s2 := startNbdkit(t, false, "--filter=delay", "file", path, "rdelay=30")
	r2 := newReader(t, context.Background(), nbd.ReaderOptions{Endpoints: []nbd.Options{s2.options()}, Connections: 2})
	r2.Close() // with reads in flight: must not hang
	if _, _, err := r2.Next(); !errors.Is(err, nbd.ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
}

// TestVHDFromNBD builds a VHD with transfer/vhd from blocks read over NBD,
// as the gateway does for .vhd exports with preferNbd, and has qemu-img
// compare it with the source.
func TestVHDFromNBD(t *testing.T) {
	qemuImg := requireTool(t, "qemu-img")
	const size = 17<<20 + 512
	path, data := randomFile(t, size, 13)
	tlsSelf := newCert(t, "xcp-host.example", false, nil, "xcp-host.example")
	s := startNbdkit(t, true, "--mask-handshake=1", "--no-sr", "--tls=require", "--tls-certificates="+tlsDir(t, tlsSelf, tlsSelf), "file", path)
	ep := s.options()
	ep.TLS, ep.ExportNameOnly = pinned(t, tlsSelf.pem, "xcp-host.example"), true

	blocks := nonZeroBlocks(data)
	r := newReader(t, context.Background(), nbd.ReaderOptions{Endpoints: []nbd.Options{ep}, Connections: 2, Blocks: blocks})
	var src vhd.BlockSource = r
	st, err := vhd.NewStream(vhd.Options{Size: r.Size()}, blocks, src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "disk.vhd")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if n != st.Size() {
		t.Fatalf("wrote %d bytes, Size() announced %d", n, st.Size())
	}
	cmp, err := exec.Command(qemuImg, "compare", "-f", "raw", "-F", "vpc", path, out).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare: %v: %s", err, cmp)
	}
	t.Logf("qemu-img compare: %s", bytes.TrimSpace(cmp))
}

var _ vhd.BlockSource = (*nbd.Reader)(nil)

// TestReaderFailover kills one of two servers during a read: the blocks go
// to the connection that is left and the result is still the whole disk.
func TestReaderFailover(t *testing.T) {
	const size = 32 << 20
	path, data := randomFile(t, size, 14)
	a := startNbdkit(t, false, "file", path)
	b := startNbdkit(t, false, "file", path)
	ea, eb := a.options(), b.options()
	ea.Retries, ea.Backoff = 1, time.Millisecond
	r := newReader(t, context.Background(), nbd.ReaderOptions{Endpoints: []nbd.Options{ea, eb}, Connections: 2, Depth: 1})
	var got []byte
	for {
		idx, blk, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if idx == 0 {
			a.kill()
		}
		got = append(got, blk...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data read with a failover differs from the file")
	}
}

// TestAllocatedBlocks asks nbdkit for the allocation of sparse exports and
// checks that xapi-like servers (no structured replies) say they cannot.
func TestAllocatedBlocks(t *testing.T) {
	const size = 40<<20 + 4096
	path := filepath.Join(t.TempDir(), "sparse.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	// Data: all of block 0, 4 KiB inside block 5, the end of block 9 and
	// the start of block 10, the 4 KiB of the last, partial block 20.
	for _, w := range []struct{ off, n int64 }{{0, 2 << 20}, {5<<20 + 8192, 4096}, {20<<20 - 4096, 8192}, {40 << 20, 4096}} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, int(w.n)), w.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 2, 9, 10, 20}
	cases := []struct {
		name    string
		args    []string
		want    []int64
		wantErr error
	}{
		{"file", []string{"file", path}, want, nil},
		// 64 KiB requests: the blocks come from many BLOCK_STATUS round trips.
		{"file, small extents", []string{"--filter=blocksize", "file", path, "maxlen=65536"}, want, nil},
		{"memory, all zero", []string{"memory", "size=8M"}, nil, nil},
		{"no structured replies", []string{"--no-sr", "file", path}, nil, nbd.ErrNoBlockStatus},
		{"no fixed newstyle", []string{"--mask-handshake=0", "file", path}, nil, nbd.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startNbdkit(t, false, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			gotSize, got, err := nbd.AllocatedBlocks(ctx, s.options())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("blocks %v, want %v (size %d)", got, tc.want, gotSize)
			}
		})
	}
}
