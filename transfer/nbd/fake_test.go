package nbd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/xorest/xorest/transfer/nbd"
)

// pattern returns n bytes of the fake export's content at off.
func pattern(off int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		o := off + int64(i)
		b[i] = byte(o*7 + o>>9)
	}
	return b
}

type fakeReq struct {
	handle uint64
	off    int64
	length uint32
}

// fakeServer speaks like xapi-nbd: fixed newstyle without NO_ZEROES,
// NBD_REP_ERR_UNSUP to every option but NBD_OPT_EXPORT_NAME, 134-byte
// export reply, simple replies. It answers READ requests in batches with
// reply, so tests choose the order and the faults.
type fakeServer struct {
	size  int64
	batch int
	reply func(w io.Writer, reqs []fakeReq)
}

func (f *fakeServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	client, server := net.Pipe()
	go f.serve(server)
	return client, nil
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	be := binary.BigEndian
	c.Write(append([]byte("NBDMAGICIHAVEOPT"), 0, 1))
	var flags [4]byte
	if _, err := io.ReadFull(c, flags[:]); err != nil {
		return
	}
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		opt := be.Uint32(hdr[8:])
		if _, err := io.CopyN(io.Discard, c, int64(be.Uint32(hdr[12:]))); err != nil {
			return
		}
		if opt == 1 { // NBD_OPT_EXPORT_NAME
			reply := make([]byte, 134)
			be.PutUint64(reply, uint64(f.size))
			be.PutUint16(reply[8:], 3)
			c.Write(reply)
			break
		}
		reply := be.AppendUint64(nil, 0x0003e889045565a9)
		reply = be.AppendUint32(reply, opt)
		reply = be.AppendUint32(reply, 1<<31|1) // NBD_REP_ERR_UNSUP
		reply = be.AppendUint32(reply, 0)
		c.Write(reply)
	}
	var reqs []fakeReq
	for {
		var req [28]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		if be.Uint16(req[6:]) == 2 { // NBD_CMD_DISC
			return
		}
		reqs = append(reqs, fakeReq{be.Uint64(req[8:]), int64(be.Uint64(req[16:])), be.Uint32(req[24:])})
		if len(reqs) == f.batch {
			f.reply(c, reqs)
			reqs = nil
		}
	}
}

func simpleReply(w io.Writer, magic, errno uint32, handle uint64, data []byte) {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, errno)
	b = binary.BigEndian.AppendUint64(b, handle)
	w.Write(append(b, data...))
}

// TestFakeServer checks out-of-order replies, the NBD_OPT_GO fallback and
// the handling of faulty replies against a scripted xapi-nbd-like server.
func TestFakeServer(t *testing.T) {
	const size = 64 << 20
	const magic = 0x67446698
	cases := []struct {
		name    string
		reply   func(w io.Writer, reqs []fakeReq)
		wantErr error
	}{
		{"replies in reverse order", func(w io.Writer, reqs []fakeReq) {
			for _, r := range slices.Backward(reqs) {
				simpleReply(w, magic, 0, r.handle, pattern(r.off, int(r.length)))
			}
		}, nil},
		{"replies interleaved", func(w io.Writer, reqs []fakeReq) {
			for _, i := range []int{1, 0, 2} {
				simpleReply(w, magic, 0, reqs[i].handle, pattern(reqs[i].off, int(reqs[i].length)))
			}
		}, nil},
		{"error reply", func(w io.Writer, reqs []fakeReq) {
			simpleReply(w, magic, 0, reqs[2].handle, pattern(reqs[2].off, int(reqs[2].length)))
			simpleReply(w, magic, 22, reqs[0].handle, nil)
			simpleReply(w, magic, 0, reqs[1].handle, pattern(reqs[1].off, int(reqs[1].length)))
		}, &nbd.Error{Errno: nbd.EINVAL}},
		{"unknown handle", func(w io.Writer, reqs []fakeReq) {
			simpleReply(w, magic, 0, 999, nil)
		}, nbd.ErrProtocol},
		{"bad magic", func(w io.Writer, reqs []fakeReq) {
			simpleReply(w, 0x12345678, 0, reqs[0].handle, nil)
		}, nbd.ErrProtocol},
		{"structured reply", func(w io.Writer, reqs []fakeReq) {
			simpleReply(w, 0x668e33ef, 0, reqs[0].handle, nil)
		}, nbd.ErrProtocol},
		{"truncated data", func(w io.Writer, reqs []fakeReq) {
			simpleReply(w, magic, 0, reqs[0].handle, pattern(reqs[0].off, 1000))
			w.(net.Conn).Close()
		}, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{size: size, batch: 3, reply: tc.reply}
			c := dial(t, nbd.Options{Address: "fake", Dial: f.dial, Retries: -1})
			if c.Size() != size || c.Flags() != nbd.FlagHasFlags|nbd.FlagReadOnly {
				t.Fatalf("Size, Flags = %d, %#x", c.Size(), c.Flags())
			}
			// 6 MiB: three 2 MiB requests in flight, answered as a batch.
			p := make([]byte, 6<<20)
			n, err := c.ReadAt(p, 2<<20)
			switch want := tc.wantErr; {
			case want == nil:
				if err != nil {
					t.Fatal(err)
				}
				if n != len(p) || !bytes.Equal(p, pattern(2<<20, len(p))) {
					t.Fatal("data differs")
				}
			case errors.Is(err, want):
			default:
				if e, ok := errors.AsType[*nbd.Error](err); !ok || e.Errno != want.(*nbd.Error).Errno {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
		})
	}
}
