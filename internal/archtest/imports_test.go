package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/xorest/xorest"

// rule says which project packages a package (matched by prefix) may import
// and which third-party modules it must not.
type rule struct {
	pkg     string   // package path relative to the module, matched as prefix ("" = root)
	allow   []string // project packages it may import (prefix match); nil = none
	noThird []string // third-party import prefixes it must not use
}

var aws = []string{"github.com/aws/"}

// rules follow ../shared/design/ARCHITECTURE.md "Layout and who may import
// whom". The first matching rule wins, so more specific paths come first.
var rules = []rule{
	{pkg: "cmd/", allow: []string{""}},
	{pkg: "internal/bench/", allow: []string{""}}, // benchmark drivers, like cmd
	{pkg: "internal/", allow: []string{"internal/"}, noThird: aws},
	{pkg: "handlers", allow: []string{"xo", "transfer/", "auth"}, noThird: aws},
	{pkg: "xo/xapisim", allow: []string{"transfer/xva", "transfer/vhd"}, noThird: aws},
	{pkg: "xo/xapi", allow: nil, noThird: aws},
	{pkg: "xo/filter", allow: nil, noThird: aws},
	{pkg: "xo", allow: []string{"xo/xapi", "xo/filter"}, noThird: aws},
	{pkg: "transfer/s3", allow: []string{"transfer/"}},
	{pkg: "transfer", allow: []string{"transfer/"}, noThird: aws},
	{pkg: "auth/s3store", allow: []string{"auth", "transfer/s3"}}, // the S3 client is built in one place
	{pkg: "auth", allow: []string{"auth"}, noThird: aws},
	{pkg: "deploy/internal/", allow: []string{"deploy"}}, // test bootstraps around deploy
	{pkg: "deploy", allow: nil},
}

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	checked := 0
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := ruleFor(rel)
		if !ok {
			t.Errorf("package %s has no import rule: add it to the architecture page and to rules", p.ImportPath)
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if err := r.check(rel, imp); err != "" {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	if checked == 0 {
		t.Fatal("go list reported no packages")
	}
}

func ruleFor(rel string) (rule, bool) {
	for _, r := range rules {
		if matches(rel, r.pkg) {
			return r, true
		}
	}
	return rule{}, false
}

// matches reports whether package rel is prefix or below it. A prefix
// ending in "/" matches only packages below it; "" matches everything.
func matches(rel, prefix string) bool {
	if prefix == "" || rel == prefix {
		return true
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(rel, prefix)
	}
	return strings.HasPrefix(rel, prefix+"/")
}

func (r rule) check(rel, imp string) string {
	if !strings.HasPrefix(imp, module) {
		for _, bad := range r.noThird {
			if strings.HasPrefix(imp, bad) {
				return "third-party module not allowed here"
			}
		}
		return ""
	}
	target := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
	if matches(target, rel) && target != rel {
		return "" // a package may use its own sub-packages
	}
	for _, a := range r.allow {
		if matches(target, a) || (strings.HasSuffix(a, "/") && target == strings.TrimSuffix(a, "/")) {
			return ""
		}
	}
	return "not allowed by the architecture's import rules"
}

func TestRules(t *testing.T) {
	tests := []struct {
		name, pkg, imp string
		ok             bool
	}{
		{"sim must not use the client", "xo/xapisim", module + "/xo/xapi", false},
		{"sim may use vhd", "xo/xapisim", module + "/transfer/vhd", true},
		{"xo may use the client", "xo", module + "/xo/xapi", true},
		{"xo must not use transfer", "xo", module + "/transfer/vhd", false},
		{"handlers may use xo", "handlers", module + "/xo", true},
		{"handlers may use the filter", "handlers", module + "/xo/filter", true},
		{"handlers must not use deploy", "handlers", module + "/deploy", false},
		{"transfer must not use xo", "transfer/vhd", module + "/xo", false},
		{"transfer must not use handlers", "transfer/ova", module + "/handlers", false},
		{"transfer/ova may use transfer/vmdk", "transfer/ova", module + "/transfer/vmdk", true},
		{"deploy must not use handlers", "deploy", module + "/handlers", false},
		{"handlers must not use the AWS SDK", "handlers", "github.com/aws/aws-sdk-go-v2/service/s3", false},
		{"the S3 sink may", "transfer/s3", "github.com/aws/aws-sdk-go-v2/service/s3", true},
		{"cmd may use anything", "cmd/xorest", module + "/deploy", true},
		{"filter is a leaf", "xo/filter", module + "/xo", false},
		{"the S3 token store may use the SDK", "auth/s3store", "github.com/aws/aws-sdk-go-v2/service/s3", true},
		{"auth itself must not", "auth", "github.com/aws/aws-sdk-go-v2/service/s3", false},
		{"deploy must not use xo", "deploy", module + "/xo", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := ruleFor(tt.pkg)
			if !ok {
				t.Fatalf("no rule for %s", tt.pkg)
			}
			if got := r.check(tt.pkg, tt.imp) == ""; got != tt.ok {
				t.Errorf("check(%s -> %s) allowed=%v, want %v", tt.pkg, tt.imp, got, tt.ok)
			}
		})
	}
}
