package xapisim

import (
	"fmt"
	"testing"
)

// TestChangesSinceWalksOnlyChanges checks ChangesSince against a brute-force
// reading of the registry after interleaved creates, changes and deletes.
func TestChangesSinceWalksOnlyChanges(t *testing.T) {
	r := NewRegistry("t")
	var refs []string
	r.Write(func(tx *Tx) error {
		for i := range 100 {
			refs = append(refs, tx.Create("VM", Record{"name_label": fmt.Sprint(i)}))
		}
		return nil
	})
	mark, _ := r.Generation()
	steps := []func(tx *Tx){
		func(tx *Tx) { tx.Modify(refs[3])["name_label"] = "a" },
		func(tx *Tx) { tx.Modify(refs[50]); tx.Modify(refs[3]) }, // 3 again, after 50
		func(tx *Tx) { tx.Delete(refs[7]) },
		func(tx *Tx) { refs = append(refs, tx.Create("VM", Record{})) },
		func(tx *Tx) { tx.Delete(refs[len(refs)-1]) }, // created and deleted: nothing
		func(tx *Tx) { tx.Modify(refs[99]) },
	}
	for _, step := range steps {
		r.Write(func(tx *Tx) error { step(tx); return nil })
	}
	want := map[string]string{refs[3]: "mod", refs[50]: "mod", refs[7]: "del", refs[99]: "mod"}
	r.Read(func(tx *Tx) {
		got, ok := tx.ChangesSince(mark, nil)
		if !ok {
			t.Fatal("EVENTS_LOST")
		}
		if len(got) != len(want) {
			t.Fatalf("%d changes, want %d: %+v", len(got), len(want), got)
		}
		for i, c := range got {
			if want[c.Ref] != c.Operation {
				t.Errorf("%s: %s, want %s", c.Ref, c.Operation, want[c.Ref])
			}
			if i > 0 && got[i-1].Gen > c.Gen {
				t.Errorf("changes out of generation order: %+v", got)
			}
		}
		all, _ := tx.ChangesSince(0, nil)
		if len(all) != 99 { // 101 created, 2 deleted: deletions after their creation show nothing
			t.Errorf("changes since 0: %d, want 99 adds", len(all))
		}
		for _, c := range all {
			if c.Operation != "add" {
				t.Errorf("since 0: %s %s, want add", c.Ref, c.Operation)
			}
		}
		none, _ := tx.ChangesSince(tx.Gen(), nil)
		if len(none) != 0 {
			t.Errorf("changes since now: %+v", none)
		}
	})
}

func BenchmarkChangesSinceFew(b *testing.B) {
	r := NewRegistry("b")
	var refs []string
	r.Write(func(tx *Tx) error {
		for range 70000 {
			refs = append(refs, tx.Create("VM", Record{}))
		}
		return nil
	})
	r.Write(func(tx *Tx) error { tx.Modify(refs[10]); return nil })
	since, _ := r.Generation()
	r.Write(func(tx *Tx) error { tx.Modify(refs[20]); return nil })
	b.ResetTimer()
	for range b.N {
		r.Read(func(tx *Tx) {
			if c, _ := tx.ChangesSince(since, nil); len(c) != 1 {
				b.Fatal(len(c))
			}
		})
	}
}
