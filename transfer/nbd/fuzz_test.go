package nbd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xorest/xorest/transfer/nbd"
)

// scriptConn is the client's end of a connection whose server side is a
// fixed script of bytes; what the client writes is discarded.
type scriptConn struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}
func (c *scriptConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return len(p), nil
}
func (c *scriptConn) Close() error                     { c.closed.Store(true); return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "client", Net: "unix"} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "server", Net: "unix"} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// serverScript builds the server side of a conversation.
type serverScript struct{ b []byte }

func (s *serverScript) greeting(flags uint16) *serverScript {
	s.b = append(s.b, "NBDMAGICIHAVEOPT"...)
	s.b = binary.BigEndian.AppendUint16(s.b, flags)
	return s
}

func (s *serverScript) optReply(opt, typ uint32, payload []byte) *serverScript {
	s.b = binary.BigEndian.AppendUint64(s.b, 0x0003e889045565a9)
	s.b = binary.BigEndian.AppendUint32(s.b, opt)
	s.b = binary.BigEndian.AppendUint32(s.b, typ)
	s.b = binary.BigEndian.AppendUint32(s.b, uint32(len(payload)))
	s.b = append(s.b, payload...)
	return s
}

func (s *serverScript) exportReply(size uint64, zeroes bool) *serverScript {
	s.b = binary.BigEndian.AppendUint64(s.b, size)
	s.b = binary.BigEndian.AppendUint16(s.b, 3)
	if zeroes {
		s.b = append(s.b, make([]byte, 124)...)
	}
	return s
}

func (s *serverScript) reply(errno uint32, handle uint64, n int) *serverScript {
	s.b = binary.BigEndian.AppendUint32(s.b, 0x67446698)
	s.b = binary.BigEndian.AppendUint32(s.b, errno)
	s.b = binary.BigEndian.AppendUint64(s.b, handle)
	s.b = append(s.b, pattern(0, n)...)
	return s
}

// FuzzReplies plays arbitrary bytes as the server side of a handshake and
// of the replies to two reads (handles 1 and 2 for the first one, then 3,
// 4 and 5): the client must return data or an error, never panic, hang or
// allocate according to what the server claims.
func FuzzReplies(f *testing.F) {
	info := func(typ uint16, fields ...any) []byte {
		b := binary.BigEndian.AppendUint16(nil, typ)
		for _, v := range fields {
			b, _ = binary.Append(b, binary.BigEndian, v)
		}
		return b
	}
	// xapi-nbd: NBD_OPT_GO refused, 134-byte NBD_OPT_EXPORT_NAME reply.
	xapi := new(serverScript).greeting(1).optReply(7, 1<<31|1, nil).exportReply(1<<20, true).
		reply(0, 1, 4608).reply(0, 2, 512).reply(0, 4, 512).reply(0, 3, 512).reply(0, 5, 3584)
	f.Add(xapi.b)
	// nbdkit: NO_ZEROES, NBD_OPT_GO with export and block size info.
	go1 := new(serverScript).greeting(3).
		optReply(7, 3, info(0, uint64(1<<20), uint16(0x10b))).
		optReply(7, 3, info(3, uint32(4096), uint32(4096), uint32(1<<20))).
		optReply(7, 1, nil).
		reply(0, 1, 4096).reply(0, 2, 4096).reply(22, 3, 0).reply(0, 4, 4096)
	f.Add(go1.b)
	f.Add(new(serverScript).greeting(1).optReply(7, 1<<31|5, []byte("TLS required")).b)
	f.Add(new(serverScript).greeting(1).optReply(7, 1<<31|6, bytes.Repeat([]byte("x"), 5000)).b)
	f.Add(new(serverScript).greeting(1).optReply(7, 3, info(0, uint64(1<<63), uint16(1))).optReply(7, 1, nil).b)
	f.Add(new(serverScript).greeting(1).optReply(7, 1<<31|1, nil).exportReply(1<<20, true).reply(0, 77, 10).b)
	f.Add(new(serverScript).greeting(1).optReply(7, 1<<31|1, nil).exportReply(1<<20, true).reply(0, 1, 4608).reply(0, 1, 512).b)

	// nbdkit with block status: structured replies, base:allocation as
	// context 7, then two BLOCK_STATUS replies (data, then hole+zero).
	status := func(handle uint64, done bool, extents ...uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0x668e33ef)
		flags := uint16(0)
		if done {
			flags = 1
		}
		b = binary.BigEndian.AppendUint16(b, flags)
		b = binary.BigEndian.AppendUint16(b, 5)
		b = binary.BigEndian.AppendUint64(b, handle)
		b = binary.BigEndian.AppendUint32(b, uint32(4+4*len(extents)))
		b = binary.BigEndian.AppendUint32(b, 7)
		for _, e := range extents {
			b = binary.BigEndian.AppendUint32(b, e)
		}
		return b
	}
	meta := new(serverScript).greeting(3).optReply(8, 1, nil).
		optReply(10, 4, append(binary.BigEndian.AppendUint32(nil, 7), "base:allocation"...)).optReply(10, 1, nil).
		optReply(7, 3, info(0, uint64(6<<20), uint16(0x10b))).optReply(7, 1, nil)
	meta.b = append(meta.b, status(1, true, 3<<20, 0, 1<<20, 3)...)
	meta.b = append(meta.b, status(2, false, 2<<20, 3)...)
	meta.b = append(meta.b, new(serverScript).reply(5, 2, 0).b...)
	f.Add(meta.b)

	f.Fuzz(func(t *testing.T, script []byte) {
		opts := nbd.Options{Address: "fuzz", Retries: -1,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return &scriptConn{r: bytes.NewReader(script)}, nil
			}}
		size, blocks, err := nbd.AllocatedBlocks(context.Background(), opts)
		if err == nil && int64(len(blocks)) > (size+nbd.BlockSize-1)/nbd.BlockSize {
			t.Fatalf("%d blocks for a size of %d", len(blocks), size)
		}
		c, err := nbd.Dial(context.Background(), opts)
		if err != nil {
			return
		}
		defer c.Close()
		if c.Size() < 0 {
			t.Fatalf("negative size %d", c.Size())
		}
		p := make([]byte, 5000)
		if n, err := c.ReadAt(p, 0); n > len(p) || err == nil && int64(n) != min(int64(len(p)), c.Size()) {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		c.ReadAt(p[:4000], 700)
	})
}
