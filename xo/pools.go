package xo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/xorest/xorest/xo/xapi"
)

// Config configures Pools.
type Config struct {
	// XAPI has one entry per pool (the repeated --xapi flag): URL,
	// credentials and TLS options, passed as they are to xapi.New.
	XAPI []xapi.Options
	// Pool configures each pool's cache.
	Pool PoolOptions
}

// ErrNoPool is returned by New when Config lists no pool.
var ErrNoPool = errors.New("xo: no XAPI pool configured")

// Pools is the object cache of several XAPI pools. Collections merge
// the pools; lookups by id find the pool that holds the object.
type Pools struct {
	pools []*Pool
}

// New validates cfg and returns the caches of its pools. It does no I/O.
func New(cfg Config) (*Pools, error) {
	if len(cfg.XAPI) == 0 {
		return nil, ErrNoPool
	}
	ps := &Pools{}
	for i, o := range cfg.XAPI {
		c, err := xapi.New(o)
		if err != nil {
			return nil, fmt.Errorf("xo: pool %d (%s): %w", i, o.URL, err)
		}
		ps.pools = append(ps.pools, NewPool(c, cfg.Pool))
	}
	return ps, nil
}

// NewPools groups existing pool caches.
func NewPools(pools ...*Pool) *Pools {
	return &Pools{pools: pools}
}

// All returns the pools in configuration order.
func (ps *Pools) All() []*Pool { return ps.pools }

// Close closes every pool cache and logs out of every client.
func (ps *Pools) Close(ctx context.Context) error {
	var errs []error
	for _, p := range ps.pools {
		p.Close()
		if err := p.client.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Fresh brings every pool up to date (concurrently; see Pool.Fresh). The
// error joins the failures of the pools that could not catch up; each is
// wrapped with its pool's URL and matches what XAPI returned (e.g.
// xapi.ErrUnreachable).
func (ps *Pools) Fresh(ctx context.Context) error {
	return ps.fresh(ctx, ps.pools)
}

// fresh runs Fresh on pools concurrently.
func (ps *Pools) fresh(ctx context.Context, pools []*Pool) error {
	if len(pools) == 1 {
		return pools[0].Fresh(ctx)
	}
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Go(func() { errs[i] = p.Fresh(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Objects catches up with every pool and returns the objects of a kind
// (see Kinds) from all of them: pool by pool in configuration order,
// each sorted by id. The slice is new; the objects are shared
// (read-only).
func (ps *Pools) Objects(ctx context.Context, kind string) ([]Object, error) {
	if err := ps.Fresh(ctx); err != nil {
		return nil, err
	}
	var out []Object
	for _, p := range ps.pools {
		out = append(out, p.Objects(kind)...)
	}
	return out, nil
}

// Object catches up and returns the object of that kind ("" for any
// kind) whose id, uuid or XAPI ref is id, with its pool. Pools whose
// cache already holds id are caught up first; the others only when the
// object is not there. An unknown id gives a *NotFoundError
// (errors.Is(err, ErrNotFound)).
func (ps *Pools) Object(ctx context.Context, kind, id string) (Object, *Pool, error) {
	var likely []*Pool
	for _, p := range ps.pools {
		if p.has(id) {
			likely = append(likely, p)
		}
	}
	if len(likely) > 0 {
		if err := ps.fresh(ctx, likely); err != nil {
			return nil, nil, err
		}
		for _, p := range likely {
			if o, err := p.Object(kind, id); err == nil {
				return o, p, nil
			}
		}
	}
	if err := ps.Fresh(ctx); err != nil {
		return nil, nil, err
	}
	for _, p := range ps.pools {
		if o, err := p.Object(kind, id); err == nil {
			return o, p, nil
		}
	}
	return nil, nil, &NotFoundError{Type: kind, ID: id}
}

// Pool returns the pool cache whose pool has that uuid (or XAPI ref),
// after catching up.
func (ps *Pools) Pool(ctx context.Context, id string) (*Pool, error) {
	_, p, err := ps.Object(ctx, "pool", id)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Watch subscribes to the changes of every pool (see Pool.Watch). Each
// pool's changes arrive in order; changes of different pools interleave.
func (ps *Pools) Watch(opts WatchOptions) *Subscription {
	s := newSubscription(opts)
	for _, p := range ps.pools {
		p.attach(s)
	}
	return s
}
