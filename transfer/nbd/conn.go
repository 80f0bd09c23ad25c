package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// conn is one connection in the transmission phase. Any number of
// goroutines may read through it at once: requests are pipelined and the
// replies, in whatever order they come, are matched by handle by a single
// receiving goroutine that reads each payload straight into its
// destination.
type conn struct {
	nc net.Conn
	ex export

	wmu sync.Mutex // serializes writes of requests

	mu      sync.Mutex
	pending map[uint64]*request // nil once the connection has failed
	handle  uint64
	err     error // why the connection failed, set once

	recvDone chan struct{} // closed when the receiving goroutine has exited
}

// errCancelled is what reads sharing a connection with a cancelled read
// get; the cancelled read itself returns its context's error.
var errCancelled = errors.New("nbd: connection closed: a read on it was cancelled")

// request is one READ in flight.
type request struct {
	off  int64
	buf  []byte
	done chan error // buffered; receives exactly one value
}

func newConn(nc net.Conn, ex export) *conn {
	c := &conn{nc: nc, ex: ex, pending: make(map[uint64]*request), recvDone: make(chan struct{})}
	go c.receive()
	return c
}

// fail records err as the reason the connection is unusable and closes the
// socket; the receiving goroutine then fails every pending request.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.nc.Close()
}

// failed reports whether the connection is unusable.
func (c *conn) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

func (c *conn) receive() {
	defer close(c.recvDone)
	err := c.receiveLoop(bufio.NewReaderSize(c.nc, 64<<10))
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()
	for _, r := range pending {
		r.done <- err
	}
}

func (c *conn) receiveLoop(br *bufio.Reader) error {
	be := binary.BigEndian
	var hdr [replySize]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("nbd: reading a reply: %w", err)
		}
		switch m := be.Uint32(hdr[:]); m {
		case magicSimple:
		case magicStructred:
			return protoErr("structured reply although none was negotiated")
		default:
			return protoErr("reply magic %#x", m)
		}
		errno := Errno(be.Uint32(hdr[4:]))
		handle := be.Uint64(hdr[8:])
		c.mu.Lock()
		r := c.pending[handle]
		delete(c.pending, handle)
		c.mu.Unlock()
		if r == nil {
			return protoErr("reply for unknown handle %d", handle)
		}
		if errno != 0 {
			r.done <- &Error{Command: "READ", Errno: errno, Offset: r.off, Length: uint32(len(r.buf))}
			continue
		}
		if _, err := io.ReadFull(br, r.buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			err = fmt.Errorf("nbd: reading %d bytes at %d: %w", len(r.buf), r.off, err)
			r.done <- err
			return err
		}
		r.done <- nil
	}
}

// read sends one READ per request (each within the server's limits) in a
// single write and waits for all the replies. A cancelled ctx fails the
// connection, since NBD cannot cancel a request in flight; read then waits
// for the receiving goroutine to let go of the buffers before it returns.
func (c *conn) read(ctx context.Context, reqs []request) error {
	stop := context.AfterFunc(ctx, func() { c.fail(errCancelled) })
	defer stop()

	msg := make([]byte, requestSize*len(reqs))
	c.mu.Lock()
	if c.pending == nil || c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	for i := range reqs {
		r := &reqs[i]
		r.done = make(chan error, 1)
		c.handle++
		c.pending[c.handle] = r
		putRequest(msg[i*requestSize:], cmdRead, c.handle, uint64(r.off), uint32(len(r.buf)))
	}
	c.mu.Unlock()

	c.wmu.Lock()
	_, err := c.nc.Write(msg)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("nbd: sending READ requests: %w", err))
	}
	var first error
	for i := range reqs {
		if err := <-reqs[i].done; err != nil && first == nil {
			first = err
		}
	}
	if first != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// close sends NBD_CMD_DISC (best effort) and closes the connection.
func (c *conn) close() {
	c.mu.Lock()
	alive := c.err == nil
	if alive {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	if alive {
		var msg [requestSize]byte
		putRequest(msg[:], cmdDisc, 0, 0, 0)
		c.wmu.Lock()
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(msg[:])
		c.wmu.Unlock()
	}
	c.nc.Close()
	<-c.recvDone
}
