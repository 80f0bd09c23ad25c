package xo_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/filter"
	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// checkTable checks that cols are aligned with objs: every column holds,
// for every object, the value at its path.
func checkTable(t *testing.T, objs []xo.Object, cols []*filter.Column, paths []filter.Path) {
	t.Helper()
	if len(cols) != len(paths) {
		t.Fatalf("%d columns for %d paths", len(cols), len(paths))
	}
	for j, c := range cols {
		if !reflect.DeepEqual(c.Path(), paths[j]) || c.Len() != len(objs) {
			t.Fatalf("column %d: path %v, %d values; want %v, %d", j, c.Path(), c.Len(), paths[j], len(objs))
		}
		for i, o := range objs {
			var want any = o
			ok := true
			for _, name := range paths[j] {
				m, isMap := want.(map[string]any)
				if !isMap {
					ok = false
					break
				}
				want, ok = m[name]
				if !ok {
					break
				}
			}
			got, gotOK := c.Value(i)
			if gotOK != ok || (ok && !reflect.DeepEqual(got, want)) {
				t.Errorf("column %v of %v: %v, %v; want %v, %v", paths[j], o["name_label"], got, gotOK, want, ok)
			}
		}
	}
}

// TestTable checks that columns follow the objects: built on first use,
// rebuilt after a change, aligned with Objects, beyond the cached ones too.
func TestTable(t *testing.T) {
	_, p := newPool(t, xapisim.Default())
	ctx := t.Context()
	paths := []filter.Path{{"name_label"}, {"power_state"}, {"CPUs", "number"}, {"missing"}}
	objs, cols := p.Table("VM", paths)
	if !reflect.DeepEqual(objs, p.Objects("VM")) || len(objs) == 0 {
		t.Fatalf("Table objects differ from Objects")
	}
	checkTable(t, objs, cols, paths)
	again, cols2 := p.Table("VM", paths)
	if &again[0] != &objs[0] || cols2[0] != cols[0] {
		t.Errorf("an unchanged kind built its table again")
	}

	vm := vmByName(t, p, "VM", "vm1")
	if _, err := p.Client().Call(ctx, "VM.set_name_label", xapi.Ref(vm["_xapiRef"].(string)), "vm1 renamed"); err != nil {
		t.Fatal(err)
	}
	if err := p.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	objs, cols = p.Table("VM", paths)
	checkTable(t, objs, cols, paths)
	found := false
	for i := range objs {
		if v, _ := cols[0].Value(i); v == "vm1 renamed" {
			found = true
		}
	}
	if !found {
		t.Errorf("the name_label column misses the new name")
	}

	var many []filter.Path
	for i := range 40 {
		many = append(many, filter.Path{fmt.Sprintf("p%d", i)}, filter.Path{"name_label"})
	}
	objs, cols = p.Table("VM", many)
	checkTable(t, objs, cols, many)
}

// TestTables checks Pools.Tables over two pools: one table per pool, in
// order, each as the pool's Table.
func TestTables(t *testing.T) {
	_, p1 := newPool(t, xapisim.Default())
	_, p2 := newPool(t, xapisim.Model{VMs: 3})
	ps := xo.NewPools(p1, p2)
	paths := []filter.Path{{"name_label"}}
	tables, err := ps.Tables(t.Context(), "VM", paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 {
		t.Fatalf("%d tables", len(tables))
	}
	for i, p := range []*xo.Pool{p1, p2} {
		if !reflect.DeepEqual(tables[i].Objects, p.Objects("VM")) {
			t.Errorf("table %d: objects differ from its pool's", i)
		}
		checkTable(t, tables[i].Objects, tables[i].Columns, paths)
	}
}
