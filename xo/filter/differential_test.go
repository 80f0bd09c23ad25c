package filter

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const installHint = "complex-matcher 1.1.1 is not on the npm registry reachable here: pack it from the " +
	"vatesfr/xen-orchestra repository at its 1.1.1 release (packages/complex-matcher, commit fdb82ed68a) with npm pack, " +
	"npm install --prefix .peers THE.tgz, or set XOREST_NODE_MODULES to a node_modules folder holding it"

// nodeModules returns the folder holding complex-matcher@1.1.1.
func nodeModules(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("XOREST_NODE_MODULES"); dir != "" {
		return dir
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".peers", "node_modules")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

// nodePeer returns the node binary and the node_modules folder holding
// complex-matcher, failing with an install hint when either is missing.
func nodePeer(t testing.TB) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (apt-get install -y nodejs); %s", installHint)
	}
	modules = nodeModules(t)
	if _, err := os.Stat(filepath.Join(modules, "complex-matcher", "package.json")); err != nil {
		t.Fatalf("complex-matcher not found in %s: %s", modules, installHint)
	}
	return node, modules
}

type nodeResult struct {
	Filter    string          `json:"filter"`
	OK        bool            `json:"ok"`
	String    string          `json:"string"`
	AST       json.RawMessage `json:"ast"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Matches   []bool          `json:"matches"`
}

type nodeOutput struct {
	Version string       `json:"version"`
	Results []nodeResult `json:"results"`
	Unicode *struct {
		Raw   string      `json:"raw"`
		Lower [][2]any    `json:"lower"`
		Canon [][2]uint16 `json:"canon"`
	} `json:"unicode"`
}

// oracle selects where the complex-matcher answers come from: "file" (the
// default) reads the answers recorded from the real package under
// testdata/oracle; "live" runs node with complex-matcher 1.1.1 and records
// them. complex-matcher 1.1.1 is not on the npm registry reachable here (it
// lists 0.7.0 at most), so CI compares with the recording, and whoever
// changes the corpus records it again with the peer:
//
//	go test ./xo/filter -run 'Differential|Unicode' -oracle=live
var oracle = flag.String("oracle", "file", `complex-matcher answers: "file" (recorded) or "live" (node + complex-matcher 1.1.1, re-recorded)`)

// runNode returns complex-matcher's answers for filters over objects: from
// node running testdata/complex-matcher.js, or from the recording of an
// earlier such run for exactly the same input.
func runNode(t *testing.T, filters []string, objects []any, unicode bool) nodeOutput {
	t.Helper()
	input, err := json.Marshal(map[string]any{"filters": filters, "objects": objects, "unicode": unicode})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(input)
	file := filepath.Join("testdata", "oracle", hex.EncodeToString(sum[:8])+".json.gz")

	var out []byte
	switch *oracle {
	case "live":
		out = runNodeLive(t, input)
		if err := writeGzip(file, out); err != nil {
			t.Fatal(err)
		}
	case "file":
		out, err = readGzip(file)
		if errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("no recorded complex-matcher answers for this corpus (%s): record them with node and complex-matcher 1.1.1: "+
				"go test ./xo/filter -run 'Differential|Unicode' -oracle=live (%s)", file, installHint)
		} else if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("-oracle=%q: want file or live", *oracle)
	}
	var res nodeOutput
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decode complex-matcher answers: %v", err)
	}
	if res.Version != "1.1.1" {
		t.Fatalf("complex-matcher %s, want 1.1.1: %s", res.Version, installHint)
	}
	return res
}

// runNodeLive runs testdata/complex-matcher.js with node, failing the test
// with an install hint when node or the package is missing.
func runNodeLive(t *testing.T, input []byte) []byte {
	t.Helper()
	node, modules := nodePeer(t)
	cmd := exec.Command(node, filepath.Join("testdata", "complex-matcher.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, stderr.String(), installHint)
	}
	return out
}

func writeGzip(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func readGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(zr)
}

// differentialObjects are the values every filter of the corpus is matched
// against, on both sides.
const differentialObjects = `[
 {"type":"VM","id":"f07ab729-c0e8-721c-45ec-f11276377030","name_label":"MRA XOA","power_state":"Running",
  "tags":["prod","xo:no-bak"],"snapshots":["a","b","c"],"auto_poweron":false,"CPUs":{"max":2,"number":2},
  "memory":{"size":4294967296},"boot":{"order":"cd"},"startTime":null,"other":{"xo:notes":"hello"},
  "$VBDs":["v1","v2","v3","v4"],"name_description":"Line one\nline two\r\nΟΔΟΣ ΟΣΟ İstanbul straße \u212a"},
 {"type":"host","name_label":"xcp-ng-01","enabled":true,"cpus":{"cores":16},"tags":[],"version":"8.2.1",
  "memory":{"usage":0,"size":""},"length":2,"0":"first","1":{"k":"second"},"2":"hidden"},
 {"name_label":"32","count":32,"ratio":0.5,"list":[5],"pair":[1,2],"nested":[[7]],"empty":[],"nul":[null],
  "text":"x32y","exp":"1E3","num":1000,"neg":-1,"flag":"false","zero":"0","blank":"  ","hex":"0x10"},
 "Just a string with MRA and 32",
 42,
 null,
 true,
 [1, "two", {"three": "3"}, ["four"]],
 {"": "empty key", "a b": "space key", "ÅÄÖÉ": "åäöé", "quote\"key": "q", "emoji😀": "😀 smile", "length": "not a number"}
]`

// handFilters are hand-written filters covering every construct.
var handFilters = []string{
	fixturePattern, "", "   ", "foo", `"foo bar"`, "foo bar", "name_label:foo", "name_label : foo", "! foo",
	"!power_state:Running", "power_state:!Running", "(a b)", "|(a b)", "power_state:|(Running Halted)",
	"auto_poweron?", `"weird key"?`, "snapshots:length:>2", "$VBDs:length:>=4", ">5", "<=0.5", ">-1", ">abc",
	"32", "-1", "1e3", `"32"`, "chi*go", "*", "a*", `/^foo\/bar\./i`, "/abc/", "/abc", "a:b:c", "xo:no-bak",
	`foo"bar"`, `"unterminated`, `x:"a\"b"`, "foo)", "(foo", "|foo", ":a", "a:", "a,b", "a/b", "a=b", "a@b",
	"xoa", "XOA", "mra*xoa", "m*a", "power_state:running", "!power_state:Halted", "tags:prod", "tags:pro",
	"tags:/^prod$/", `tags:"xo:no-bak"`, "CPUs:number:2", "CPUs:number:>1", "CPUs:2", "2", `"2"`,
	"memory:size:>4e9", "startTime:>-1", "startTime:<1", "boot:order:cd", "name_label:/^MRA/",
	"name_label:/^mra/i", `other:"xo:notes":hello`, "!nonexistent:foo", "id:f07ab729", "power_state:Halted",
	"snapshots:length:>=4", "startTime?", "boot:order:cn", "name_label:/^mra/", "other:xo:notes:hello",
	"nonexistent:foo", "count:>31", "count:32", "name_label:32", `name_label:"32"`, "list:>4", "list:<6",
	"pair:>0", "pair:<10", "nested:>6", "empty:<1", "nul:<1", "nul:>-1", "text:32", "exp:1e3", "num:1e3",
	"neg:<0", "flag?", "zero?", "blank?", "blank:<1", "hex:>15", "ratio:<1", "ratio:0.5", "memory:usage?",
	"memory:size:<1", "first", "second", "hidden", "length:2", "1:k:second", "0:first", "tags:length:0",
	"tags:length:<1", "enabled?", "cpus:cores:>=16", "version:8.2", "version:8*1", "*2*", "32*", "3*2",
	"stri*", "three", "four", "3", `"3"`, "two", "length:>0", "length:<100", `"":x`, `"":empty`, `"a b":space`,
	"ÅÄÖÉ:åäöé", "åäöé", "ÅÄÖÉ", `"quote\"key"?`, `"emoji😀":smile`, "😀", `"😀"`, "smile", "k", "K",
	"\u212a", "σ", "ς", "Σ", "οδος", "οδοσ", "İ", "i", "ı", "istanbul", "i̇stanbul", "STRASSE", "straße",
	"STRAẞE", "/ß/i", "/ẞ/i", "/k/i", "/K/i", "/σ/i", "/ς/i", "line*two", "one*line", "/one.line/",
	"/one[^]line/", `/one\sline/`, `/two\r$/`, `/two$/`, `/^Line/`, "/^line/i", `/\bline\b/`, `/[a-z]+\d/`,
	`/\d{2,}/`, "/(?:MRA|XYZ) XOA/", "/(a)\\1/", "/a(?=b)/", "/(/", "/[/", "/a{2,1}/", `/\/`, `/a\\/b/`,
	"/x/i/", "/x/ii", "/x/g", "//", "/[]/", "/[^]/", `/\u0041/`, `/\x41/`, `/\101/`, `/\cJ/`, `/\c/`, `/[\c1]/`,
	`/\8/`, `/\k/`, "/(?<n>a)/", "/a{,3}/", "/a{3}/", "/{/", "/}/", "/]/", `/[\]]/`, `/[a-]/`, `/[\d-z]/`,
	`/[\s]/`, `/[\S]/`, `/\S+/`, "/./", "/^$/", `/\0/`, `/\p{L}/`, `/\z/`, `/\A/`, `/\Q/`, `/\e/`,
	`"a\\b"`, `" 12 "`, `""`, `"":x`, `"abc\`, `a "b\`, ">0x10", "<Infinity", ">1e21", "|(a)", `"32":x`,
	"/abc\\/", "\u00a0a\u3000b\ufeff", `"a b":"c:d"`, "a**b", "1*", "Infinity", "!(a |(b c))", "(>abc",
	"foo >=x", ">", ">+1", "😀é )", "é\"😀\" )", "a\tb\nc\rd\u2028e", ">0b11", ">0o7", ">-0", ">.5", ">5.",
	">1e-7", ">1_0", "1_0", "0x1F", "-0x1F", "$", "_", "-", ".", "..", "-.", "$1", "a?b", "a??", "a?:b", "!a?",
	"!!a", "! ! a", "( a )", "|( a b )", "| (a)", "|(  )", "()", "(a)(b)", "a:(b c)", "a:|(b c)", "a:!b",
	`a:"b`, `"a`, `"`, `\`, `\a`, "a:b:", "a: b", "a :b", "a ?", "a:?", ">=", "<=1", "<= 1", "< 1", "<<1",
	"><1", "!>1", "a:>=1e3", "x*y*z", "**", "*a*", "*1*", "1e*", "ǅ", "ª", "ß", "ﬀ", "ŉ", "ǰ", "ꟊ", "Ᲊ",
	"𐐀", `"𐐀"`, "𝐀", "Σ:x", "İ:x", "ı:x", `"\u00a0"`, "a\u00a0:b", "a\u200b", "a\u2028b", "a\u0085b",
	"a\u180eb", "name_description:/\\n/", "name_description:*two*", "name_description:one*line",
	"name_description:/one\\nline/", "name_description:/^line/", "/\\u{41}/", "/\\uD83D\\uDE00/", "/😀/",
	"/😀+/", "/[😀]/", "/a|b|/", "/(|a)/", "/a**/", "/a*?/", "/a+?/", "/a??/", "/a{1}?/", "/a{1001}/",
	"/(?i)a/", "/(?<a>x)(?<a>y)/", "/(?<1a>x)/", "/\\k<a>(?<b>x)/", "/(?<a>x)\\k/", "/(?<a>x)\\k<a>/",
	"/[z-a]/", "/[a-z-0]/", "/^*/", "/\\b*/", "/a{2}{3}/", "/\\1/", "/\\12/", "/(a)\\2/", "/\\08/",
	"/\\377/", "/\\400/", "/[\\b]/", "/\\B/", "/[\\B]/", "/\\ca/", "/[\\c_]/", "/\\xZZ/", "/\\uZZZZ/",
	"/\\u12/", "/a.c/i", "/A.C/", "/[A-Z]/i", "/[^a-z]/i", "/é/i", "/É/i", "/[é]/i", "/\\w/i", "/\\W/i",
}

// randomFilters generates filters from tokens that exercise the grammar,
// including broken ones.
func randomFilters(n int) []string {
	tokens := []string{"a", "b", "name_label", "tags", "prod", "length", "32", "2", "-1", "1e3", "0x1F", "xoa",
		"MRA", "é", "Σ", "İ", "\u212a", "ß", "😀", "$", "_", ".", "-", "*", "(", ")", "|", "!", ":", "?", ">",
		">=", "<", "<=", `"`, `\`, "/", "/^m/i", "/x+/", "/[a-z]/", "/(/", `/\d/`, " ", " ", " ", "\t", "\n",
		"\u00a0", ",", "=", "@", "#", "&", "'", "[", "]", "{", "}", "~", "^", ";", "+", "%", "i", "Infinity"}
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for k := rng.IntN(8) + 1; k > 0; k-- {
			b.WriteString(tokens[rng.IntN(len(tokens))])
		}
		out[i] = b.String()
	}
	return out
}

// grammarFilters generates mostly valid filters over the properties and
// values of differentialObjects, to compare matching.
func grammarFilters(n int) []string {
	names := []string{"type", "name_label", "power_state", "tags", "snapshots", "auto_poweron", "CPUs", "number",
		"max", "memory", "size", "usage", "boot", "order", "startTime", "other", `"xo:notes"`, "$VBDs", "length",
		"0", "1", "2", "k", "enabled", "cpus", "cores", "version", "count", "ratio", "list", "pair", "nested",
		"empty", "nul", "text", "exp", "num", "neg", "flag", "zero", "blank", "hex", "three", `""`, `"a b"`,
		"ÅÄÖÉ", "name_description", "missing"}
	values := []string{"VM", "vm", "host", "MRA", "xoa", "XOA", "running", "Halted", "prod", "pro", `"xo:no-bak"`,
		"a", "b", "c", "2", "32", "16", "0", "-1", "1e3", "0.5", "8.2", "8*", "*1", "x*y", "m*a", "*", "cd",
		"hello", "first", "second", "two", "four", "3", `"3"`, `"32"`, "true", "false", "null", "åäöé", "smile",
		"σ", "İ", "k", "line", "one*two", "straße", "/^m/i", "/^M/", "/\\d+/", "/o$/", "/[aeiou]{2}/i",
		`/\s/`, "/./", "/^$/", "/x|y/"}
	ops := []string{">", ">=", "<", "<="}
	nums := []string{"0", "1", "-1", "2", "4", "16", "31", "32", "1000", "4e9", "0.5", "1e3", "0x10"}
	rng := rand.New(rand.NewPCG(3, 4))
	var term func(depth int) string
	term = func(depth int) string {
		k := rng.IntN(10)
		if depth > 3 {
			k = 9
		}
		switch k {
		case 0, 1, 2:
			return names[rng.IntN(len(names))] + ":" + term(depth+1)
		case 3:
			return names[rng.IntN(len(names))] + "?"
		case 4:
			return ops[rng.IntN(len(ops))] + nums[rng.IntN(len(nums))]
		case 5:
			return "!" + term(depth+1)
		case 6:
			return "|(" + term(depth+1) + " " + term(depth+1) + ")"
		case 7:
			return "(" + term(depth+1) + " " + term(depth+1) + ")"
		default:
			return values[rng.IntN(len(values))]
		}
	}
	out := make([]string, n)
	for i := range out {
		parts := make([]string, rng.IntN(3)+1)
		for j := range parts {
			parts[j] = term(0)
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

// regexSubjects are strings the regular expressions of regexFilters are
// matched against.
var regexSubjects = []any{"", "a", "A", "ab", "abc", "ABC", "aab", "a\nb", "a\rb", "a\u2028b", "a b", "a\u00a0b",
	"a\tb", "123", "a1", "_", "-", "]", "[", "{", "}", "{1}", "a{1}", "\\", "/", "x/y", "é", "É", "ß", "ẞ", "k",
	"\u212a", "s", "ſ", "σ", "ς", "Σ", "😀", "\x00", "\x01", "\n", "aaaa", "abab", "$", "^", ".", "a.b", "?",
	"c", "\x08", "A1_b", "  ", "ä", "Ä", "ǅ", "ǆ", "Ǆ", "θ", "ϑ", "ϴ", "µ", "μ", "Μ"}

// regexFilters generates /regex/ filters from JavaScript regex fragments.
func regexFilters(n int) []string {
	frags := []string{"a", "b", "A", "é", "ß", "k", "s", "σ", "😀", ".", "^", "$", "*", "+", "?", "*?", "{1}", "{1,}",
		"{0,2}", "{,1}", "{", "}", "(", ")", "(?:", "|", "[", "]", "[^", "[a-c]", "[^a]", "[]", "[^]", "-", `\`,
		`\d`, `\D`, `\w`, `\W`, `\s`, `\S`, `\b`, `\B`, `\n`, `\r`, `\t`, `\v`, `\f`, `\0`, `\1`, `\8`, `\x41`,
		`\x4`, `\u00e9`, `\u00E9`, `\cA`, `\c`, `\-`, `\]`, `\[`, `\/`, `\.`, `\*`, `\\`, `\a`, `\e`, `\z`, `\p`,
		`\k`, "1", "_", " ", "\u00a0", "/", "[k]", "[s-t]", "[^k]", `[\w]`, `[\W]`, `[^\W]`, "[ſ]", "[\u212a]", "[σ]", "[ß]", "[é-ë]", `[\uD800-\uDFFF]`, `\uD83D`, `\uDE00`, "[😀]", "[^😀]", `[\s\d]`, `[\S]`, "[-a]", "[a-]", `[\d-z]`, `[\b]`, `[\c1]`, `[\c]`}
	rng := rand.New(rand.NewPCG(5, 6))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		b.WriteByte('/')
		for k := rng.IntN(6) + 1; k > 0; k-- {
			b.WriteString(frags[rng.IntN(len(frags))])
		}
		b.WriteByte('/')
		if rng.IntN(3) == 0 {
			b.WriteByte('i')
		}
		out[i] = b.String()
	}
	return out
}

// TestDifferentialRegExp compares the translation of JavaScript regular
// expressions with V8 on short subjects.
func TestDifferentialRegExp(t *testing.T) {
	filters := regexFilters(6000)
	res := runNode(t, filters, regexSubjects, false)
	var parsed, failed, unsupported int
	for i, want := range res.Results {
		f := filters[i]
		n, err := Parse(f)
		switch {
		case !want.OK && err == nil:
			t.Errorf("Parse(%q) = %s; complex-matcher: %s", f, n, want.Error)
		case !want.OK && errors.Is(err, ErrUnsupportedRegExp):
			t.Errorf("Parse(%q): %v; complex-matcher: %s", f, err, want.Error)
		case !want.OK:
			failed++
			if err.Error() != want.Error {
				t.Errorf("Parse(%q) error %q, want %q", f, err, want.Error)
			}
		case errors.Is(err, ErrUnsupportedRegExp):
			unsupported++
		case err != nil:
			t.Errorf("Parse(%q): %v; complex-matcher accepts it: %s", f, err, want.String)
		default:
			parsed++
			if got := n.String(); got != want.String {
				t.Errorf("Parse(%q).String() = %q, want %q", f, got, want.String)
			}
			for j, s := range regexSubjects {
				if got := n.Match(s); got != want.Matches[j] {
					t.Errorf("Parse(%q).Match(%q) = %v, want %v (RE2 %s)", f, s, got, want.Matches[j], n.(*RegExp).Regexp())
				}
			}
		}
	}
	t.Logf("%d regexps: %d agree, %d rejected by both, %d unsupported by RE2", len(filters), parsed, failed, unsupported)
}

// TestDifferential compares Parse, String and Match with the real npm
// complex-matcher 1.1.1 run by node.
func TestDifferential(t *testing.T) {
	filters := append(append(append([]string{}, handFilters...), randomFilters(4000)...), grammarFilters(4000)...)
	var objects []any
	if err := json.Unmarshal([]byte(differentialObjects), &objects); err != nil {
		t.Fatal(err)
	}
	res := runNode(t, filters, objects, false)
	if len(res.Results) != len(filters) {
		t.Fatalf("node returned %d results for %d filters", len(res.Results), len(filters))
	}
	var parsed, failed, unsupported int
	for i, want := range res.Results {
		f := filters[i]
		n, err := Parse(f)
		if !want.OK {
			failed++
			if err == nil {
				t.Errorf("Parse(%q) = %s; complex-matcher: %s %s", f, n, want.ErrorType, want.Error)
				continue
			}
			var se *SyntaxError
			switch {
			case !errors.As(err, &se):
				t.Errorf("Parse(%q): %T %v is not a *SyntaxError", f, err, err)
			case errors.Is(err, ErrUnsupportedRegExp):
				t.Errorf("Parse(%q): %v; complex-matcher rejects it too (%s) but for another reason", f, err, want.Error)
			case err.Error() != want.Error:
				t.Errorf("Parse(%q) error %q, want %q", f, err, want.Error)
			}
			continue
		}
		if err != nil {
			if errors.Is(err, ErrUnsupportedRegExp) {
				unsupported++
				t.Logf("unsupported by RE2 (documented): %q: %v", f, err)
				continue
			}
			t.Errorf("Parse(%q): %v; complex-matcher accepts it: %s", f, err, want.String)
			continue
		}
		parsed++
		var wantAST any
		if err := json.Unmarshal(want.AST, &wantAST); err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(wantAST)
		if got := astJSON(t, n); got != string(wantJSON) {
			t.Errorf("Parse(%q):\n got %s\nwant %s", f, got, wantJSON)
			continue
		}
		if got := n.String(); got != want.String {
			t.Errorf("Parse(%q).String() = %q, want %q", f, got, want.String)
		}
		for j, o := range objects {
			if got := n.Match(o); got != want.Matches[j] {
				t.Errorf("Parse(%q).Match(object %d) = %v, want %v", f, j, got, want.Matches[j])
			}
		}
	}
	t.Logf("%d filters: %d parsed identically, %d rejected by both, %d unsupported by RE2", len(filters), parsed, failed, unsupported)
	if unsupported > 10 {
		t.Errorf("%d filters unsupported by RE2: the corpus expects only the lookaround/backreference ones", unsupported)
	}
}

// TestUnicodeTablesAgainstNode checks, for every BMP code unit, which
// characters are raw, toLowerCase and the RegExp /i canonicalisation.
func TestUnicodeTablesAgainstNode(t *testing.T) {
	res := runNode(t, []string{}, []any{}, true)
	u := res.Unicode
	if u == nil || len(u.Raw) != 0x10000 {
		t.Fatal("node did not return the unicode tables")
	}
	lower := map[rune]string{}
	for _, p := range u.Lower {
		lower[rune(p[0].(float64))] = p[1].(string)
	}
	canon := map[rune]rune{}
	for _, p := range u.Canon {
		canon[rune(p[0])] = rune(p[1])
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 30 {
			t.Errorf(format, args...)
		}
	}
	for r := rune(0); r < 0x10000; r++ {
		if 0xd800 <= r && r < 0xe000 {
			continue
		}
		if got, want := isRawUnit(r), u.Raw[r] == '1' || r >= '0' && r <= '9' || strings.ContainsRune("_-.$", r); got != want {
			report("isRawUnit(%U) = %v, want %v", r, got, want)
		}
		wantLower, ok := lower[r]
		if !ok {
			wantLower = string(r)
		}
		if got := jsToLower(string(r)); got != wantLower {
			report("toLowerCase(%U) = %q, want %q", r, got, wantLower)
		}
		wantCanon, ok := canon[r]
		if !ok {
			wantCanon = r
		}
		if got := jsCanonicalize(r); got != wantCanon {
			report("Canonicalize(%U) = %U, want %U", r, got, wantCanon)
		}
	}
	if bad > 0 {
		t.Errorf("%d differences", bad)
	}
}
