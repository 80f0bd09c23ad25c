package xo_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapisim"
)

// TestGolden compares every kind's objects, built from the simulator's
// Default model, with testdata/<kind>.golden.json (go test -update
// rewrites them).
func TestGolden(t *testing.T) {
	_, p := newPool(t, xapisim.Default())
	for _, kind := range xo.Kinds() {
		t.Run(kind, func(t *testing.T) {
			got, err := json.MarshalIndent(p.Objects(kind), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", kind+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s objects differ from %s (go test -update rewrites it); got:\n%s", kind, path, got)
			}
		})
	}
}
