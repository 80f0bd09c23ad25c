package xapisim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the architecture rule: the simulator imports only
// the standard library, transfer/xva and transfer/vhd, and never the
// project's XAPI client (xo/xapi), so that a codec bug cannot be cancelled
// out by the same bug on both sides.
func TestImports(t *testing.T) {
	const module = "github.com/xorest/xorest/"
	allowed := map[string]bool{module + "transfer/xva": true, module + "transfer/vhd": true, module + "xo/xapisim": true}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			stdlib := !strings.Contains(first, ".")
			if !stdlib && !allowed[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
