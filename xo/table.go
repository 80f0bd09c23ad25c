package xo

import (
	"context"
	"sync"

	"github.com/xorest/xorest/xo/filter"
)

// maxCachedColumns bounds the columns a table keeps, since filters name
// arbitrary properties: further columns are built for each call.
const maxCachedColumns = 16

// table is the snapshot of one kind of a Pool: its objects sorted by id,
// and the property columns built so far. A change to the kind replaces the
// table rather than updating it, so a table is never stale for its
// objects.
type table struct {
	objs []Object

	mu   sync.Mutex                // guards cols
	cols map[string]*filter.Column // by path.String()
}

// columns returns the columns of paths over the table's objects, building
// the missing ones.
func (t *table) columns(paths []filter.Path) []*filter.Column {
	out := make([]*filter.Column, len(paths))
	t.mu.Lock()
	defer t.mu.Unlock()
	for j, path := range paths {
		key := path.String()
		c := t.cols[key]
		if c == nil {
			c = filter.NewColumn(path, t.objs)
			if t.cols == nil {
				t.cols = make(map[string]*filter.Column)
			}
			if len(t.cols) < maxCachedColumns {
				t.cols[key] = c
			}
		}
		out[j] = c
	}
	return out
}

// Table is the objects of a kind in one pool with columns of some of their
// property paths, aligned with Objects (see Pool.Table).
type Table struct {
	Objects []Object
	Columns []*filter.Column
}

// Tables catches up with every pool and returns, pool by pool in
// configuration order, the objects of a kind with the columns of paths
// (see Pool.Table). Objects and columns are shared (read-only).
func (ps *Pools) Tables(ctx context.Context, kind string, paths []filter.Path) ([]Table, error) {
	if err := ps.Fresh(ctx); err != nil {
		return nil, err
	}
	out := make([]Table, len(ps.pools))
	for i, p := range ps.pools {
		out[i].Objects, out[i].Columns = p.Table(kind, paths)
	}
	return out, nil
}
