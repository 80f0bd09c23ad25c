package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Endpoints are the places the export can be read from, e.g. one per
	// record of XAPI's VDI.get_nbd_info. Connection i goes to endpoint
	// i%len(Endpoints); an endpoint that cannot be reached is dropped and
	// the connection goes to the next one. All must serve the same size.
	Endpoints []Options
	// Connections is the number of connections (XO's nbdConcurrency);
	// 0 means 1. The Reader needs at least one to succeed.
	Connections int
	// Depth is the number of READ requests in flight on each connection;
	// 0 means 2. At most Connections×Depth+2 blocks are held in memory.
	Depth int
	// Blocks, when not nil, lists the BlockSize blocks worth reading, in
	// strictly increasing order (an allocation map, e.g. from CBT); the
	// others are not read, Next skips them and Raw yields zeros for them.
	Blocks []int64
}

// Reader reads a whole export in BlockSize blocks over several connections
// and delivers them in order, either as blocks (Next, which makes it a
// transfer/vhd BlockSource) or as the raw disk (Raw). Use one or the other.
type Reader struct {
	ctx     context.Context
	cancel  context.CancelFunc
	clients []*Client
	dead    []atomic.Bool // clients that failed for good
	size    int64
	nblocks int64
	wg      sync.WaitGroup

	order chan *block // blocks in index order, as they are started
	free  chan []byte

	cur *block
	err error
}

// block is one BlockSize block being read.
type block struct {
	idx  int64
	buf  []byte
	err  error
	done chan struct{}
}

// NewReader connects opts.Connections connections, one after the other (as
// XO does, not to race xapi-nbd's VBD plugging), and starts reading blocks.
// ctx bounds the whole read: when it ends, the connections close and Next
// and Raw's Read return its error. Close the Reader when done.
func NewReader(ctx context.Context, opts ReaderOptions) (*Reader, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("nbd: reader without endpoints")
	}
	for i := range opts.Endpoints {
		if err := opts.Endpoints[i].validate(); err != nil {
			return nil, err
		}
	}
	n := max(opts.Connections, 1)
	depth := opts.Depth
	if depth <= 0 {
		depth = 2
	}
	r := &Reader{}
	candidates := append([]Options(nil), opts.Endpoints...)
	var errs []error
	for i := 0; i < n && len(candidates) > 0; i++ {
		j := i % len(candidates)
		c, err := Dial(ctx, candidates[j])
		if err != nil {
			errs = append(errs, err)
			candidates = append(candidates[:j], candidates[j+1:]...)
			i--
			continue
		}
		if len(r.clients) > 0 && c.Size() != r.size {
			c.Close()
			r.closeClients()
			return nil, fmt.Errorf("nbd: %s serves %d bytes, %s serves %d", candidates[j].Address, c.Size(), r.clients[0].opts.Address, r.size)
		}
		r.size = c.Size()
		r.clients = append(r.clients, c)
	}
	if len(r.clients) == 0 {
		return nil, fmt.Errorf("nbd: no endpoint reachable: %w", errors.Join(errs...))
	}
	r.nblocks = (r.size + BlockSize - 1) / BlockSize
	for i, b := range opts.Blocks {
		if b < 0 || b >= r.nblocks || i > 0 && b <= opts.Blocks[i-1] {
			r.closeClients()
			return nil, fmt.Errorf("nbd: block list entry %d (%d) is not after the previous one or not within the export's %d blocks", i, b, r.nblocks)
		}
	}

	workers := len(r.clients) * depth
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.order = make(chan *block, workers)
	r.free = make(chan []byte, workers+2)
	jobs := make(chan *block)
	r.wg.Add(1 + workers)
	go r.produce(opts.Blocks, workers+2, jobs)
	r.dead = make([]atomic.Bool, len(r.clients))
	for w := range workers {
		go r.work(w%len(r.clients), jobs)
	}
	return r, nil
}

// Size returns the size of the export in bytes.
func (r *Reader) Size() int64 { return r.size }

// Connections returns the number of connections that were established.
func (r *Reader) Connections() int { return len(r.clients) }

// produce starts the blocks in order, holding at most maxBufs buffers.
func (r *Reader) produce(list []int64, maxBufs int, jobs chan<- *block) {
	defer r.wg.Done()
	defer close(jobs)
	defer close(r.order)
	allocated := 0
	for i := int64(0); ; i++ {
		idx := i
		if list != nil {
			if i >= int64(len(list)) {
				return
			}
			idx = list[i]
		} else if i >= r.nblocks {
			return
		}
		var buf []byte
		if allocated < maxBufs {
			buf = make([]byte, BlockSize)
			allocated++
		} else {
			select {
			case buf = <-r.free:
			case <-r.ctx.Done():
				return
			}
		}
		b := &block{idx: idx, buf: buf[:min(BlockSize, r.size-idx*BlockSize)], done: make(chan struct{})}
		select {
		case r.order <- b:
		case <-r.ctx.Done():
			return
		}
		select {
		case jobs <- b:
		case <-r.ctx.Done():
			b.err = r.ctx.Err()
			close(b.done)
			return
		}
	}
}

func (r *Reader) work(first int, jobs <-chan *block) {
	defer r.wg.Done()
	for b := range jobs {
		b.err = r.readBlock(first, b)
		close(b.done)
	}
}

// readBlock reads b through connection i or, when that one has failed for
// good (its own reconnections exhausted), through the next live one, like
// XO's MultiNbdClient evicts dead connections.
func (r *Reader) readBlock(i int, b *block) error {
	var last error
	for range r.clients {
		if !r.dead[i].Load() {
			_, err := r.clients[i].ReadAtContext(r.ctx, b.buf, b.idx*BlockSize)
			if err == nil {
				return nil
			}
			if !retryable(r.ctx, err) {
				return fmt.Errorf("nbd: reading block %d: %w", b.idx, err)
			}
			r.dead[i].Store(true)
			last = err
		}
		i = (i + 1) % len(r.clients)
	}
	return fmt.Errorf("nbd: reading block %d: no connection left: %w", b.idx, last)
}

// Next returns the next block: its index and its data, BlockSize bytes
// (less for a short last block), valid until the following call to Next.
// It returns io.EOF after the last block.
func (r *Reader) Next() (index int64, data []byte, err error) {
	if r.cur != nil {
		r.free <- r.cur.buf[:cap(r.cur.buf)]
		r.cur = nil
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	b, ok := <-r.order
	if !ok {
		if err := r.ctx.Err(); err != nil {
			return 0, nil, r.fail(err)
		}
		r.err = io.EOF
		return 0, nil, io.EOF
	}
	select {
	case <-b.done:
	case <-r.ctx.Done():
		return 0, nil, r.fail(r.ctx.Err())
	}
	if b.err != nil {
		return 0, nil, r.fail(b.err)
	}
	r.cur = b
	return b.idx, b.buf, nil
}

func (r *Reader) fail(err error) error {
	r.err = err
	r.cancel()
	return err
}

// Close stops the reading and closes the connections. Next and Raw's Read
// then return ErrClosed. Like Next, it must not be called concurrently
// with Next or Read.
func (r *Reader) Close() error {
	if r.err == nil || r.err == io.EOF {
		r.err = ErrClosed
	}
	r.cancel()
	r.wg.Wait()
	r.closeClients()
	return nil
}

func (r *Reader) closeClients() {
	for _, c := range r.clients {
		c.Close()
	}
}

// Raw returns the export's content as a stream, with zeros for the blocks
// left out of ReaderOptions.Blocks.
func (r *Reader) Raw() io.Reader { return &rawReader{r: r} }

type rawReader struct {
	r        *Reader
	idx      int64  // next block to deliver
	cur      []byte // rest of the block being delivered
	pend     bool   // pendIdx/pendData hold a block from Next not yet reached
	srcDone  bool
	pendIdx  int64
	pendData []byte
	zero     []byte
}

func (rr *rawReader) Read(p []byte) (int, error) {
	r := rr.r
	for len(rr.cur) == 0 {
		if rr.idx >= r.nblocks {
			return 0, io.EOF
		}
		if !rr.pend && !rr.srcDone {
			idx, data, err := r.Next()
			switch {
			case err == io.EOF:
				rr.srcDone = true
			case err != nil:
				return 0, err
			default:
				rr.pend, rr.pendIdx, rr.pendData = true, idx, data
			}
		}
		if rr.pend && rr.pendIdx == rr.idx {
			rr.cur, rr.pend = rr.pendData, false
		} else {
			if rr.zero == nil {
				rr.zero = make([]byte, BlockSize)
			}
			rr.cur = rr.zero[:min(BlockSize, r.size-rr.idx*BlockSize)]
		}
		rr.idx++
	}
	n := copy(p, rr.cur)
	rr.cur = rr.cur[n:]
	return n, nil
}
