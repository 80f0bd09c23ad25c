package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxStatusRequest is the length asked for in one NBD_CMD_BLOCK_STATUS; the
// server may answer for less, and the client asks again from there.
const maxStatusRequest = 1 << 30

// AllocatedBlocks asks the server which BlockSize blocks of the export hold
// data, with NBD_CMD_BLOCK_STATUS and the base:allocation context (nbdkit,
// qemu-nbd), on a connection of its own. A block holds data unless all its
// extents read as zeros (NBD_STATE_ZERO). The result suits
// ReaderOptions.Blocks and transfer/vhd's block lists. A server without
// block status, such as xapi-nbd, gives an error matching ErrNoBlockStatus:
// then read every block, or take the list from elsewhere (CBT).
//
// Memory is bounded by the number of blocks, whatever the server sends.
func AllocatedBlocks(ctx context.Context, opts Options) (size int64, blocks []int64, err error) {
	if err := opts.validate(); err != nil {
		return 0, nil, err
	}
	tc, ex, err := opts.connect(ctx, true)
	if err != nil {
		return 0, nil, err
	}
	defer tc.Close()
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	defer stop()

	s := &statusReader{br: bufio.NewReaderSize(tc, 64<<10), metaID: ex.metaID}
	var req [requestSize]byte
	for off, handle := int64(0), uint64(1); off < ex.size; handle++ {
		length := min(ex.size-off, maxStatusRequest)
		putRequest(req[:], cmdBlockStatus, handle, uint64(off), uint32(length))
		if _, err := tc.Write(req[:]); err != nil {
			return 0, nil, s.wrap(ctx, fmt.Errorf("nbd: sending BLOCK_STATUS: %w", err))
		}
		covered, err := s.reply(handle, off, length)
		if err != nil {
			return 0, nil, s.wrap(ctx, err)
		}
		off += covered
	}
	putRequest(req[:], cmdDisc, 0, 0, 0)
	tc.Write(req[:])
	return ex.size, s.blocks, nil
}

// statusReader parses the replies to NBD_CMD_BLOCK_STATUS.
type statusReader struct {
	br     *bufio.Reader
	metaID uint32
	blocks []int64
	buf    [20]byte
}

func (s *statusReader) wrap(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func (s *statusReader) read(n int) ([]byte, error) {
	if _, err := io.ReadFull(s.br, s.buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("nbd: reading a BLOCK_STATUS reply: %w", err)
	}
	return s.buf[:n], nil
}

// data records that [off, off+n) holds data.
func (s *statusReader) data(off, n int64) {
	first, last := off/BlockSize, (off+n-1)/BlockSize
	if k := len(s.blocks); k > 0 && s.blocks[k-1] >= first {
		first = s.blocks[k-1] + 1
	}
	for b := first; b <= last; b++ {
		s.blocks = append(s.blocks, b)
	}
}

// reply reads the reply chunks to the request handle for [off, off+length)
// and returns how many bytes from off the extents covered.
func (s *statusReader) reply(handle uint64, off, length int64) (covered int64, err error) {
	be := binary.BigEndian
	for {
		b, err := s.read(4)
		if err != nil {
			return 0, err
		}
		switch m := be.Uint32(b); m {
		case magicSimple:
			b, err := s.read(12)
			if err != nil {
				return 0, err
			}
			if h := be.Uint64(b[4:]); h != handle {
				return 0, protoErr("reply for handle %d while %d is expected", h, handle)
			}
			if errno := Errno(be.Uint32(b)); errno != 0 {
				return 0, &Error{Command: "BLOCK_STATUS", Errno: errno, Offset: off, Length: uint32(length)}
			}
			return 0, protoErr("simple reply without error to BLOCK_STATUS")
		case magicStructred:
		default:
			return 0, protoErr("reply magic %#x", m)
		}
		b, err = s.read(16)
		if err != nil {
			return 0, err
		}
		flags, typ, h, n := be.Uint16(b), be.Uint16(b[2:]), be.Uint64(b[4:]), int64(be.Uint32(b[12:]))
		if h != handle {
			return 0, protoErr("reply for handle %d while %d is expected", h, handle)
		}
		switch typ {
		case replyTypeNone:
			if n != 0 {
				return 0, protoErr("NBD_REPLY_TYPE_NONE with %d bytes", n)
			}
		case replyTypeStatus:
			c, err := s.extents(n, off+covered, off+length)
			if err != nil {
				return 0, err
			}
			covered += c
		case replyTypeError, replyTypeErrorAt:
			if n < 6 {
				return 0, protoErr("error chunk of %d bytes", n)
			}
			b, err := s.read(4)
			if err != nil {
				return 0, err
			}
			errno := Errno(be.Uint32(b))
			if _, err := io.CopyN(io.Discard, s.br, n-4); err != nil {
				return 0, fmt.Errorf("nbd: reading a BLOCK_STATUS reply: %w", err)
			}
			if errno == 0 {
				return 0, protoErr("error chunk with error 0")
			}
			return 0, &Error{Command: "BLOCK_STATUS", Errno: errno, Offset: off, Length: uint32(length)}
		default:
			if typ&(1<<15) != 0 {
				return 0, protoErr("unknown error chunk type %#x", typ)
			}
			if _, err := io.CopyN(io.Discard, s.br, n); err != nil {
				return 0, fmt.Errorf("nbd: reading a BLOCK_STATUS reply: %w", err)
			}
		}
		if flags&replyFlagDone != 0 {
			if covered <= 0 {
				return 0, protoErr("BLOCK_STATUS reply without extents at %d", off)
			}
			return covered, nil
		}
	}
}

// extents reads a NBD_REPLY_TYPE_BLOCK_STATUS payload of n bytes
// describing the export from pos on, clipped to end.
func (s *statusReader) extents(n, pos, end int64) (int64, error) {
	be := binary.BigEndian
	if n < 12 || (n-4)%8 != 0 {
		return 0, protoErr("BLOCK_STATUS chunk of %d bytes", n)
	}
	b, err := s.read(4)
	if err != nil {
		return 0, err
	}
	if be.Uint32(b) != s.metaID {
		// Another context: skip it.
		if _, err := io.CopyN(io.Discard, s.br, n-4); err != nil {
			return 0, fmt.Errorf("nbd: reading a BLOCK_STATUS reply: %w", err)
		}
		return 0, nil
	}
	start := pos
	for i := int64(0); i < (n-4)/8; i++ {
		b, err := s.read(8)
		if err != nil {
			return 0, err
		}
		l, flags := int64(be.Uint32(b)), be.Uint32(b[4:])
		if l == 0 {
			return 0, protoErr("empty extent at %d", pos)
		}
		l = min(l, end-pos)
		if l > 0 && flags&stateZero == 0 {
			s.data(pos, l)
		}
		pos += l
	}
	return pos - start, nil
}
