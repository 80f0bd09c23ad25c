package handlers

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/xorest/xorest/xo/xapi"
)

// maxRunningProgress caps the progress a transfer reports while it runs:
// 1 is set when its task succeeds.
const maxRunningProgress = 0.99

// progressInterval is how often a transfer's progress is set on its task.
const progressInterval = time.Second

// progress reports the progress of a transfer on its task (a job's), from
// a goroutine of its own, every progressInterval: the transfer's reads
// never wait for XAPI (a task.set_progress per part or per percent would
// cost a round trip each). The value is the larger of
//
//   - the bytes read over total (the exact length, or an estimate: for an
//     XVA, the virtual size of the exported disks, xvaEstimate), and
//   - the progress XAPI reports on its own task of the transfer (source),
//     which for an XVA also counts the empty chunks it skips and does not
//     depend on compression;
//
// it never decreases and stays below 1 (maxRunningProgress). A nil
// *progress (nothing to base a value on) reports nothing.
type progress struct {
	c      *xapi.Client
	task   xapi.Ref // the task to report on
	source xapi.Ref // XAPI's task of the transfer, or ""
	total  int64    // the bytes expected, or 0 when unknown
	read   atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

// startProgress starts reporting on task, or returns nil when neither
// total nor source gives a value.
func startProgress(ctx context.Context, c *xapi.Client, task xapi.Ref, total int64, source xapi.Ref) *progress {
	if total <= 0 && source == "" {
		return nil
	}
	p := &progress{c: c, task: task, source: source, total: max(total, 0),
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(ctx)
	return p
}

// reader returns r counting the bytes read from it (r itself for a nil
// p).
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return readFunc(func(b []byte) (int, error) {
		n, err := r.Read(b)
		p.read.Add(int64(n))
		return n, err
	})
}

// run updates the task until end.
func (p *progress) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	reported := 0.0
	for {
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v := p.value(ctx)
		if v <= reported {
			continue
		}
		if _, err := p.c.Call(ctx, "task.set_progress", p.task, v); err == nil {
			reported = v
		}
	}
}

// value is the current progress, at most maxRunningProgress.
func (p *progress) value(ctx context.Context) float64 {
	v := 0.0
	if p.total > 0 {
		v = float64(p.read.Load()) / float64(p.total)
	}
	if p.source != "" {
		var xp float64
		if err := p.c.CallInto(ctx, &xp, "task.get_progress", p.source); err == nil {
			v = max(v, xp)
		}
	}
	return min(v, maxRunningProgress)
}

// end stops the updates and waits for the last one to finish (nothing
// for a nil p).
func (p *progress) end() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
}
