package nbd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Options say how to reach one NBD export. For XAPI, one record of
// VDI.get_nbd_info gives Address (address and port), ExportName and, when
// its cert is set, TLS (see PinnedTLSConfig).
type Options struct {
	// Network is "tcp" (the default) or "unix".
	Network string
	// Address is host:port for TCP, the socket path for "unix".
	Address string
	// ExportName names the export; XAPI's embed the session
	// ("/<vdi-uuid>?session_id=<ref>").
	ExportName string
	// TLS, when set, makes the client upgrade the connection with
	// NBD_OPT_STARTTLS and then verify the server with this configuration.
	// A server that refuses STARTTLS is an error (ErrTLSRefused): the client
	// never falls back to plain text. When ServerName is empty it is taken
	// from Address. Verification is skipped only if the caller sets
	// InsecureSkipVerify.
	TLS *tls.Config
	// ExportNameOnly skips NBD_OPT_GO and selects the export with
	// NBD_OPT_EXPORT_NAME straight away, as XO does. Without it the client
	// tries NBD_OPT_GO first (nbdkit, qemu-nbd) and falls back to
	// NBD_OPT_EXPORT_NAME when the server answers NBD_REP_ERR_UNSUP
	// (xapi-nbd), which costs one round trip.
	ExportNameOnly bool
	// Dial opens the transport; nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Retries is how many times a failed read is retried on a new
	// connection (reads are idempotent); 0 means 4, negative means none.
	// Errors that a new connection cannot cure (EINVAL, EPERM, a cancelled
	// context, a closed client) are not retried.
	Retries int
	// Backoff is the wait before the first retry, doubled for each further
	// one up to 5 s; 0 means 250 ms. Waits end early when the context ends.
	Backoff time.Duration
}

func (o *Options) validate() error {
	switch o.Network {
	case "", "tcp", "tcp4", "tcp6", "unix":
	default:
		return fmt.Errorf("nbd: network %q is not tcp or unix", o.Network)
	}
	if o.Address == "" {
		return errors.New("nbd: no address")
	}
	if len(o.ExportName) > maxOptPayload {
		return fmt.Errorf("nbd: export name of %d bytes is longer than %d", len(o.ExportName), maxOptPayload)
	}
	return nil
}

func (o *Options) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return 4
	}
	return o.Retries
}

// connect opens the transport and runs the handshake (see handshake for meta).
func (o *Options) connect(ctx context.Context, meta bool) (net.Conn, export, error) {
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	nc, err := dial(ctx, network, o.Address)
	if err != nil {
		return nil, export{}, fmt.Errorf("nbd: %w", err)
	}
	tc, ex, err := handshake(ctx, nc, o, meta)
	if err != nil {
		nc.Close()
		return nil, export{}, err
	}
	return tc, ex, nil
}

// dial connects for reading.
func (o *Options) dial(ctx context.Context) (*conn, error) {
	tc, ex, err := o.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	return newConn(tc, ex), nil
}

// Client reads an NBD export. It is safe for concurrent use: concurrent
// reads are pipelined on one connection. When the connection breaks, the
// next read (or the retry of the failed one) reconnects.
type Client struct {
	opts Options
	ex   export

	mu     sync.Mutex // held while (re)connecting
	c      *conn
	closed bool
}

// Dial connects to the export described by opts and runs the handshake.
// ctx bounds the connection and the handshake only.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c, err := opts.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, ex: c.ex, c: c}, nil
}

// Size returns the size of the export in bytes.
func (c *Client) Size() int64 { return c.ex.size }

// Flags returns the transmission flags the server announced (FlagReadOnly, ...).
func (c *Client) Flags() uint16 { return c.ex.flags }

// TLS reports whether the connection is encrypted.
func (c *Client) TLS() bool { return c.ex.tls }

// ReadAt reads len(p) bytes at off, like ReadAtContext without a context:
// only Close interrupts it. It implements io.ReaderAt.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	return c.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext reads len(p) bytes at offset off of the export. Offsets
// and lengths need no alignment: the client reads whole sectors and copies
// what was asked for. Reads larger than 2 MiB are split into requests that
// are all in flight at once. Reading past the end returns the bytes before
// it and io.EOF.
//
// A read that fails because the connection broke or the server answered
// EIO is retried on a new connection, up to Options.Retries times with a
// backoff bound to ctx. When ctx ends the connection is closed (NBD cannot
// cancel a request) and ctx.Err() is returned; the next read reconnects.
// Server errors are returned as *Error.
func (c *Client) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd: negative offset %d", off)
	}
	if off >= c.ex.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), c.ex.size)
	n := int(end - off)
	var eof error
	if n < len(p) {
		eof = io.EOF
	}
	reqs, fixups := c.ex.plan(p[:n], off)
	wait := c.opts.Backoff
	if wait <= 0 {
		wait = 250 * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		cn, err := c.conn(ctx)
		if err == nil {
			err = cn.read(ctx, reqs)
			if err == nil {
				for _, f := range fixups {
					copy(f.dst, f.src)
				}
				return n, eof
			}
		}
		if !retryable(ctx, err) {
			return 0, err
		}
		if attempt >= c.opts.retries() {
			return 0, fmt.Errorf("%w (%d attempts)", err, attempt+1)
		}
		if cn != nil {
			c.drop(cn)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w (retrying after: %w)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return false
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Errno.transient()
	}
	_, option := errors.AsType[*OptionError](err)
	return !option
}

// fixup copies the wanted part of a sector read into a scratch buffer.
type fixup struct{ dst, src []byte }

// plan turns a read of p at off into aligned requests: the aligned middle
// is read straight into p, a partial first or last sector into a scratch
// buffer that fixups copy from.
func (ex *export) plan(p []byte, off int64) ([]request, []fixup) {
	var reqs []request
	var fixups []fixup
	end := off + int64(len(p))
	al := ex.align
	// sector reads the aligned unit [s, s+al) (clipped to the export) for
	// the part [lo, hi) of p's range that it covers.
	sector := func(s, lo, hi int64) {
		buf := make([]byte, min(s+al, ex.size)-s)
		reqs = append(reqs, request{off: s, buf: buf})
		fixups = append(fixups, fixup{dst: p[lo-off : hi-off], src: buf[lo-s : hi-s]})
	}
	lo := off
	if r := off % al; r != 0 {
		s := off - r
		hi := min(s+al, end)
		sector(s, off, hi)
		lo = hi
	}
	hi := end
	if r := end % al; r != 0 && end != ex.size && end-r >= lo {
		hi = end - r
	}
	for o := lo; o < hi; o += ex.maxReq {
		e := min(o+ex.maxReq, hi)
		reqs = append(reqs, request{off: o, buf: p[o-off : e-off]})
	}
	if hi < end {
		sector(hi, hi, end)
	}
	return reqs, fixups
}

// conn returns the current connection, dialling a new one if needed.
func (c *Client) conn(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.c != nil && !c.c.failed() {
		return c.c, nil
	}
	if c.c != nil {
		c.c.close()
		c.c = nil
	}
	cn, err := c.opts.dial(ctx)
	if err != nil {
		return nil, err
	}
	if cn.ex.size != c.ex.size {
		cn.close()
		return nil, fmt.Errorf("nbd: export size changed from %d to %d on reconnection", c.ex.size, cn.ex.size)
	}
	c.c = cn
	return cn, nil
}

// drop closes cn if it is still the current connection.
func (c *Client) drop(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == cn {
		c.c = nil
	}
	cn.fail(errors.New("nbd: connection dropped after an error"))
}

// Close sends NBD_CMD_DISC and closes the connection. Reads in flight fail
// with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.c != nil {
		c.c.close()
		c.c = nil
	}
	return nil
}
