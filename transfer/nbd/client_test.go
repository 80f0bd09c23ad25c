package nbd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
)

// TestReadAt reads ranges of every alignment through servers negotiated
// the ways xapi-nbd (fixed newstyle without NO_ZEROES, NBD_OPT_EXPORT_NAME
// only, 512-byte alignment enforced) and nbdkit (NBD_OPT_GO) behave.
func TestReadAt(t *testing.T) {
	const size = 5<<20 + 3*512
	path, data := randomFile(t, size, 1)
	// blocksize-policy makes nbdkit answer EINVAL to unaligned requests,
	// as xapi-nbd does, so any unaligned request the client sends fails.
	strict := func(flags ...string) []string {
		return append(flags, "--filter=blocksize-policy", "file", path, "blocksize-minimum=512", "blocksize-error-policy=error")
	}
	servers := []struct {
		name     string
		args     []string
		nameOnly bool
	}{
		{"go", strict(), false},
		{"export-name-only", strict(), true},
		// Like xapi-nbd: no NO_ZEROES (134-byte export reply), no NBD_OPT_GO
		// for this client (it goes straight to NBD_OPT_EXPORT_NAME).
		{"xapi-like-handshake", strict("--mask-handshake=1", "--no-sr"), true},
		{"mask-handshake-go", strict("--mask-handshake=1"), false},
	}
	reads := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{"aligned sector", 512, 512, 512, false},
		{"aligned 2 MiB", 2 << 20, 2 << 20, 2 << 20, false},
		{"unaligned head", 100, 1000, 1000, false},
		{"unaligned tail", 1024, 700, 700, false},
		{"inside one sector", 7, 9, 9, false},
		{"several requests unaligned", 333, 4<<20 + 777, 4<<20 + 777, false},
		{"whole export", 0, size, size, false},
		{"up to the end", size - 1000, 1000, 1000, false},
		{"across the end", size - 700, 4096, 700, true},
		{"past the end", size, 10, 0, true},
		{"empty", 4096, 0, 0, false},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := startNbdkit(t, false, srv.args...)
			opts := s.options()
			opts.ExportNameOnly = srv.nameOnly
			c := dial(t, opts)
			if c.Size() != size {
				t.Fatalf("Size = %d, want %d", c.Size(), size)
			}
			if c.Flags()&nbd.FlagReadOnly == 0 {
				t.Errorf("Flags = %#x, want FlagReadOnly", c.Flags())
			}
			for _, rd := range reads {
				t.Run(rd.name, func(t *testing.T) {
					p := make([]byte, rd.n)
					n, err := c.ReadAtContext(context.Background(), p, rd.off)
					if n != rd.wantN {
						t.Fatalf("n = %d, want %d (err %v)", n, rd.wantN, err)
					}
					if rd.wantEOF != (err == io.EOF) || err != nil && err != io.EOF {
						t.Fatalf("err = %v, want EOF %v", err, rd.wantEOF)
					}
					if !bytes.Equal(p[:n], data[rd.off:rd.off+int64(n)]) {
						t.Fatalf("bytes at %d differ from the file", rd.off)
					}
				})
			}
		})
	}
}

// TestUnalignedExport reads the partial last sector of an export whose
// size is not a multiple of 512 (nbdkit allows it, xapi-nbd never has it).
func TestUnalignedExport(t *testing.T) {
	path, data := randomFile(t, 3000, 2)
	s := startNbdkit(t, false, "file", path)
	c := dial(t, s.options())
	for _, off := range []int64{0, 2047, 2560, 2999} {
		p := make([]byte, 3000-off)
		if n, err := c.ReadAt(p, off); n != len(p) || err != nil {
			t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
		}
		if !bytes.Equal(p, data[off:]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
}

// TestConcurrentReads pipelines many reads from several goroutines on one
// connection.
func TestConcurrentReads(t *testing.T) {
	const size = 16 << 20
	path, data := randomFile(t, size, 3)
	s := startNbdkit(t, false, "file", path)
	c := dial(t, s.options())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for range 40 {
				off := rnd.Int64N(size)
				n := rnd.IntN(300 << 10)
				p := make([]byte, n)
				m, err := c.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:m], data[off:off+int64(m)]) {
					errs <- errors.New("data mismatch")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestServerErrors maps error replies to *nbd.Error with the errno.
func TestServerErrors(t *testing.T) {
	path, _ := randomFile(t, 1<<20, 4)
	cases := []struct {
		name    string
		errno   string
		want    nbd.Errno
		retries int
	}{
		{"EIO without retry", "EIO", nbd.EIO, -1},
		{"EIO after retries", "EIO", nbd.EIO, 2},
		{"EPERM", "EPERM", nbd.EPERM, 3},
		{"ENOSPC", "ENOSPC", nbd.ENOSPC, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startNbdkit(t, false, "--filter=error", "file", path, "error-pread="+tc.errno, "error-pread-rate=1")
			opts := s.options()
			opts.Retries, opts.Backoff = tc.retries, time.Millisecond
			c := dial(t, opts)
			_, err := c.ReadAt(make([]byte, 4096), 8192)
			e, ok := errors.AsType[*nbd.Error](err)
			if !ok || e.Errno != tc.want || e.Offset != 8192 || e.Length != 4096 {
				t.Fatalf("err = %v, want *nbd.Error %v for 4096 bytes at 8192", err, tc.want)
			}
		})
	}
}

// TestCancel closes the connection when the context ends during a read,
// and the next read reconnects.
func TestCancel(t *testing.T) {
	path, data := randomFile(t, 1<<20, 5)
	// Every read takes 30 s: the read can only end early by cancellation.
	s := startNbdkit(t, false, "--filter=delay", "file", path, "rdelay=30")
	c := dial(t, s.options())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.ReadAtContext(ctx, make([]byte, 4096), 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the request go out; not needed for correctness
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// The server now answers at once; the client reconnects on its own.
	s.kill()
	s.args = []string{"file", path}
	s.start()
	p := make([]byte, 4096)
	if _, err := c.ReadAt(p, 4096); err != nil {
		t.Fatalf("read after cancellation: %v", err)
	}
	if !bytes.Equal(p, data[4096:8192]) {
		t.Fatal("data mismatch after reconnection")
	}
}

// TestServerDies kills nbdkit: reads fail once the retries are spent, and
// succeed through a reconnection when the server comes back, including a
// read that was in flight when the server died.
func TestServerDies(t *testing.T) {
	path, data := randomFile(t, 4<<20, 6)
	s := startNbdkit(t, false, "file", path)
	opts := s.options()
	opts.Retries, opts.Backoff = 2, time.Millisecond
	c := dial(t, opts)
	p := make([]byte, 1<<20)
	if _, err := c.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}

	s.kill()
	if _, err := c.ReadAt(p, 0); err == nil {
		t.Fatal("read from a dead server succeeded")
	}

	s.start()
	if _, err := c.ReadAt(p, 1<<20); err != nil {
		t.Fatalf("read after the server restarted: %v", err)
	}
	if !bytes.Equal(p, data[1<<20:2<<20]) {
		t.Fatal("data mismatch after reconnection")
	}

	// A server that dies with the read in flight and comes back.
	s.kill()
	s.args = []string{"--filter=delay", "file", path, "rdelay=30"}
	s.start()
	opts.Retries, opts.Backoff = 20, 50*time.Millisecond
	c2 := dial(t, opts)
	done := make(chan error, 1)
	q := make([]byte, 3<<20)
	go func() {
		_, err := c2.ReadAt(q, 512)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the request go out; not needed for correctness
	s.kill()
	s.args = []string{"file", path}
	s.start()
	if err := <-done; err != nil {
		t.Fatalf("read in flight when the server died: %v", err)
	}
	if !bytes.Equal(q, data[512:512+3<<20]) {
		t.Fatal("data mismatch after the in-flight reconnection")
	}
}

// TestClosed: reads after Close fail with ErrClosed.
func TestClosed(t *testing.T) {
	path, _ := randomFile(t, 1<<20, 7)
	s := startNbdkit(t, false, "file", path)
	c := dial(t, s.options())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(make([]byte, 512), 0); !errors.Is(err, nbd.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}
