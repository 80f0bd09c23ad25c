package filter

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// compact is the notation of reference/xo-rest-api.md §A.4.3.
func compact(n Node) string {
	list := func(ns []Node) string {
		parts := make([]string, len(ns))
		for i, c := range ns {
			parts[i] = compact(c)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	switch n := n.(type) {
	case *Null:
		return "Null"
	case *And:
		return "And" + list(n.Children)
	case *Or:
		return "Or" + list(n.Children)
	case *Not:
		return "Not(" + compact(n.Child) + ")"
	case *Property:
		return "Property(" + n.Name + "," + compact(n.Child) + ")"
	case *TruthyProperty:
		return "TruthyProperty(" + n.Name + ")"
	case *StringNode:
		return "String(" + n.Value() + ")"
	case *NumberOrString:
		return "NumberOrString(" + n.Value() + ")"
	case *Glob:
		return "Glob(" + n.Value() + ")"
	case *RegExp:
		return "RegExp(" + n.Source() + "," + n.Flags() + ")"
	case *Comparison:
		return "Comparison(" + n.Op() + "," + jsNumberToString(n.Value()) + ")"
	}
	return "?"
}

// The fixture of complex-matcher's index.fixtures.js.
const fixturePattern = `foo !"\\ \"" name:|(wonderwoman batman) hasCape? age:32 chi*go /^foo\/bar\./i`

func TestFixture(t *testing.T) {
	re, err := NewRegExp(`^foo/bar\.`, "i")
	if err != nil {
		t.Fatal(err)
	}
	want := &And{Children: []Node{
		NewString("foo"),
		&Not{Child: NewString(`\ "`)},
		&Property{Name: "name", Child: &Or{Children: []Node{NewString("wonderwoman"), NewString("batman")}}},
		&TruthyProperty{Name: "hasCape"},
		&Property{Name: "age", Child: NewNumberOrString("32")},
		NewGlob("chi*go"),
		re,
	}}
	got, err := Parse(fixturePattern)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := astJSON(t, got), astJSON(t, want); g != w {
		t.Errorf("parse:\n got %s\nwant %s", g, w)
	}
	if s := want.String(); s != fixturePattern {
		t.Errorf("toString of the fixture AST = %q, want %q", s, fixturePattern)
	}
	if s := got.String(); s != fixturePattern {
		t.Errorf("toString of the parsed fixture = %q, want %q", s, fixturePattern)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
		str            string // expected String(); "" means the input
	}{
		{"empty", ``, `Null`, ``},
		{"blank", `   `, `Null`, ``},
		{"word", `foo`, `String(foo)`, ``},
		{"quoted", `"foo bar"`, `String(foo bar)`, ``},
		{"two words", `foo bar`, `And[String(foo),String(bar)]`, ``},
		{"property", `name_label:foo`, `Property(name_label,String(foo))`, ``},
		{"spaces around colon", `name_label : foo`, `Property(name_label,String(foo))`, `name_label:foo`},
		{"not with space", `! foo`, `Not(String(foo))`, `!foo`},
		{"not property", `!power_state:Running`, `Not(Property(power_state,String(Running)))`, ``},
		{"property of not", `power_state:!Running`, `Property(power_state,Not(String(Running)))`, ``},
		{"parentheses", `(a b)`, `And[String(a),String(b)]`, `a b`},
		{"or", `|(a b)`, `Or[String(a),String(b)]`, ``},
		{"property of or", `power_state:|(Running Halted)`, `Property(power_state,Or[String(Running),String(Halted)])`, ``},
		{"truthy", `auto_poweron?`, `TruthyProperty(auto_poweron)`, ``},
		{"quoted truthy", `"weird key"?`, `TruthyProperty(weird key)`, ``},
		{"length", `snapshots:length:>2`, `Property(snapshots,Property(length,Comparison(>,2)))`, ``},
		{"dollar", `$VBDs:length:>=4`, `Property($VBDs,Property(length,Comparison(>=,4)))`, ``},
		{"greater", `>5`, `Comparison(>,5)`, ``},
		{"less or equal fraction", `<=0.5`, `Comparison(<=,0.5)`, ``},
		{"negative", `>-1`, `Comparison(>,-1)`, ``},
		{"number", `32`, `NumberOrString(32)`, ``},
		{"negative number", `-1`, `NumberOrString(-1)`, ``},
		{"exponent number", `1e3`, `NumberOrString(1e3)`, ``},
		{"quoted number", `"32"`, `String(32)`, ``},
		{"glob", `chi*go`, `Glob(chi*go)`, ``},
		{"star", `*`, `Glob(*)`, ``},
		{"trailing star", `a*`, `Glob(a*)`, ``},
		{"regexp", `/^foo\/bar\./i`, `RegExp(^foo\/bar\.,i)`, ``},
		{"plain regexp", `/abc/`, `RegExp(abc,)`, ``},
		{"nested property", `a:b:c`, `Property(a,Property(b,String(c)))`, ``},
		{"tag unquoted", `xo:no-bak`, `Property(xo,String(no-bak))`, ``},
		{"word then quote", `foo"bar"`, `And[String(foo),String(bar)]`, `foo bar`},
		{"unterminated quote", `"unterminated`, `String(unterminated)`, `unterminated`},
		{"escaped quote", `x:"a\"b"`, `Property(x,String(a"b))`, ``},
		{"non-ASCII letters", `åäöé:ÅÄÖÉ`, `Property(åäöé,String(ÅÄÖÉ))`, ``},
		{"hex comparison", `>0x10`, `Comparison(>,16)`, `>16`},
		{"infinity comparison", `<Infinity`, `Comparison(<,Infinity)`, ``},
		{"big comparison", `>1e21`, `Comparison(>,1e+21)`, `>1e+21`},
		{"one element or", `|(a)`, `String(a)`, `a`},
		{"quoted numeric key", `"32":x`, `Property(32,String(x))`, ``},
		{"empty regexp", `//`, `RegExp((?:),)`, `/(?:)/`},
		{"regexp ends at end of input", `/abc\/`, `RegExp(abc\/,)`, `/abc\//`},
		{"regexp double backslash", `/a\\/b/`, `RegExp(a\\\/b,)`, `/a\\\/b/`},
		{"unicode spaces", "\u00a0a\u3000b\ufeff", `And[String(a),String(b)]`, `a b`},
		{"quoted needs quotes", `"a b":"c:d"`, `Property(a b,String(c:d))`, ``},
		{"double star", `a**b`, `Glob(a**b)`, ``},
		{"number glob", `1*`, `Glob(1*)`, ``},
		{"infinity word", `Infinity`, `NumberOrString(Infinity)`, ``},
		{"nested parentheses", `!(a |(b c))`, `Not(And[String(a),Or[String(b),String(c)]])`, ``},
		{"escaped backslash", `"a\\b"`, `String(a\b)`, ``},
		{"number-like text quoted", `" 12 "`, `String( 12 )`, ``},
		{"empty quoted", `""`, `String()`, ``},
		{"empty quoted key", `"":x`, `Property(,String(x))`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := compact(n); got != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
			}
			wantStr := tt.str
			if wantStr == "" {
				wantStr = tt.in
			}
			if tt.want == "Null" {
				wantStr = ""
			}
			if got := n.String(); got != wantStr {
				t.Errorf("String() = %q, want %q", got, wantStr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, msg string
		pos           int
		kind          error
	}{
		{"not a number", `>abc`, `value must be a number`, 0, ErrNotANumber},
		{"not a number later", `foo >=x`, `value must be a number`, 4, ErrNotANumber},
		{"not a number in open group", `(>abc`, `value must be a number`, 1, ErrNotANumber},
		{"unterminated regexp", `/abc`, `parse error: expected end of input at position 0`, 0, nil},
		{"extra parenthesis", `foo)`, `parse error: expected end of input at position 3`, 3, nil},
		{"open parenthesis", `(foo`, `parse error: expected end of input at position 0`, 0, nil},
		{"or without parenthesis", `|foo`, `parse error: expected end of input at position 0`, 0, nil},
		{"colon first", `:a`, `parse error: expected end of input at position 0`, 0, nil},
		{"missing value", `a:`, `parse error: expected end of input at position 1`, 1, nil},
		{"comma", `a,b`, `parse error: expected end of input at position 1`, 1, nil},
		{"slash", `a/b`, `parse error: expected end of input at position 1`, 1, nil},
		{"equals", `a=b`, `parse error: expected end of input at position 1`, 1, nil},
		{"at", `a@b`, `parse error: expected end of input at position 1`, 1, nil},
		{"lone backslash in quote", `a "b\`, `parse error: expected end of input at position 2`, 2, nil},
		{"position in UTF-16 units", `😀é )`, `parse error: expected end of input at position 0`, 0, nil},
		{"position after astral", `é"😀" )`, `parse error: expected end of input at position 6`, 6, nil},
		{"bare operator", `>`, `parse error: expected end of input at position 0`, 0, nil},
		{"plus is not raw", `>+1`, `parse error: expected end of input at position 0`, 0, nil},
		{"invalid regexp", `/(/`, `Invalid regular expression: /(/: Unterminated group`, 0, ErrRegExp},
		{"invalid regexp i", `a /(/i`, `Invalid regular expression: /(/i: Unterminated group`, 2, ErrRegExp},
		{"nothing to repeat", `/*/`, `Invalid regular expression: /*/: Nothing to repeat`, 0, ErrRegExp},
		{"unmatched parenthesis", `/a)/`, `Invalid regular expression: /a)/: Unmatched ')'`, 0, ErrRegExp},
		{"range out of order", `/[z-a]/`, `Invalid regular expression: /[z-a]/: Range out of order in character class`, 0, ErrRegExp},
		{"backreference", `/(a)\1/`, `unsupported regular expression /(a)\1/: backreferences are not supported by RE2`, 0, ErrUnsupportedRegExp},
		{"lookahead", `/a(?=b)/`, `unsupported regular expression /a(?=b)/: lookahead assertions are not supported by RE2`, 0, ErrUnsupportedRegExp},
		{"lookbehind", `/(?<!a)b/`, `unsupported regular expression /(?<!a)b/: lookbehind assertions are not supported by RE2`, 0, ErrUnsupportedRegExp},
		{"too deep", strings.Repeat("!", MaxDepth+1) + "a", `filter nested too deeply`, MaxDepth, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tt.in, compact(n))
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", tt.in, err, err)
			}
			if se.Error() != tt.msg {
				t.Errorf("message %q, want %q", se.Error(), tt.msg)
			}
			if se.Pos != tt.pos {
				t.Errorf("Pos %d, want %d", se.Pos, tt.pos)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			if tt.kind == nil && se.Err != nil {
				t.Errorf("grammar error wraps %v", se.Err)
			}
		})
	}
}

func TestNewComparison(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, err := NewComparison(">", math.NaN()); !errors.Is(err, ErrNotANumber) || err.Error() != "value must be a number" {
		t.Errorf("NaN: %v", err)
	}
	if _, err := NewComparison("=", 1); err == nil {
		t.Error("operator = accepted")
	}
	tests := []struct {
		name string
		op   string
		n    float64
		v    any
		want bool
	}{
		{"greater", ">", 42, 43.0, true},
		{"greater equal value", ">", 42, 42.0, false},
		{"greater or equal", ">=", 42, 42.0, true},
		{"less", "<", 42, 41.0, true},
		{"less equal value", "<", 42, 42.0, false},
		{"less or equal", "<=", 42, 42.0, true},
		{"int", ">", 42, 43, true},
		{"int64", ">", 1e12, int64(1e12 + 1), true},
		{"json.Number", "<", 1, json.Number("0.5"), true},
		{"date after", ">", float64(ts.UnixMilli()), ts.Add(time.Millisecond), true},
		{"date equal", ">", float64(ts.UnixMilli()), ts, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewComparison(tt.op, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Match(tt.v); got != tt.want {
				t.Errorf("%s%v .Match(%v) = %v, want %v", tt.op, tt.n, tt.v, got, tt.want)
			}
		})
	}
}

const sampleVM = `{"type":"VM","id":"f07ab729-c0e8-721c-45ec-f11276377030","name_label":"MRA XOA","power_state":"Running",
"tags":["prod","xo:no-bak"],"snapshots":["a","b","c"],"auto_poweron":false,"CPUs":{"max":2,"number":2},
"memory":{"size":4294967296},"boot":{"order":"cd"},"startTime":null,"other":{"xo:notes":"hello"}}`

func TestMatchVM(t *testing.T) {
	vm := decodeJSON(t, sampleVM)
	matching := []string{"", "xoa", "XOA", "mra*xoa", "m*a", "power_state:running", "!power_state:Halted",
		"power_state:|(Halted Running)", "tags:prod", "tags:pro", "tags:/^prod$/", `tags:"xo:no-bak"`,
		"snapshots:length:>2", "CPUs:number:2", "CPUs:number:>1", "CPUs:2", "2", `"2"`, "memory:size:>4e9",
		"startTime:>-1", "startTime:<1", "boot:order:cd", "name_label:/^MRA/", "name_label:/^mra/i",
		`other:"xo:notes":hello`, "!nonexistent:foo", "id:f07ab729"}
	failing := []string{"power_state:Halted", "snapshots:length:>=4", "auto_poweron?", "startTime?",
		"boot:order:cn", "name_label:/^mra/", "other:xo:notes:hello", "nonexistent:foo"}
	check := func(f string, want bool) {
		t.Run(f, func(t *testing.T) {
			n, err := Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Match(vm); got != want {
				t.Errorf("%q.Match(vm) = %v, want %v", f, got, want)
			}
		})
	}
	for _, f := range matching {
		check(f, true)
	}
	for _, f := range failing {
		check(f, false)
	}
}

func TestMatchScalars(t *testing.T) {
	tests := []struct {
		name, filter string
		value        any
		want         bool
	}{
		{"number greater", ">1", 2.0, true},
		{"numeric string greater", ">1", "2", true},
		{"text not a number", ">1", "abc", false},
		{"null is zero", ">-1", nil, true},
		{"undefined is NaN", ">-1", undefined{}, false},
		{"true is one", "<1", true, false},
		{"false is zero", "<1", false, true},
		{"empty array is zero", "<1", []any{}, true},
		{"one element array", ">=0", []any{5.0}, true},
		{"two element array", ">=0", []any{5.0, 6.0}, false},
		{"array of null", "<=0", []any{nil}, true},
		{"array of string", ">4", []any{" 5 "}, true},
		{"nested array", ">4", []any{[]any{5.0}}, true},
		{"array of bool", ">=0", []any{true}, false},
		{"object is NaN", ">=0", map[string]any{}, false},
		{"blank string is zero", "<1", " ", true},
		{"hex string", ">15", "0x10", true},
		{"signed hex string", ">-100", "-0x10", false},
		{"infinity string", ">1e308", "Infinity", true},
		{"number or string number", "32", 32.0, true},
		{"number or string int", "32", 32, true},
		{"number or string text", "32", "x32y", true},
		{"number or string nested", "32", []any{map[string]any{"a": "32"}}, true},
		{"number or string nested number", "32", []any{map[string]any{"a": 32.0}}, true},
		{"number or string other number", "32", 320.0, false},
		{"quoted number vs number", `"32"`, 32.0, false},
		{"quoted number vs string", `"32"`, "32", true},
		{"exponent vs number", "1e3", 1000.0, true},
		{"exponent vs text", "1e3", "1E3", true},
		{"glob in object", "b*r", map[string]any{"foo": "bar"}, true},
		{"glob across lines", "a*b", "a\nb", false},
		{"glob within a line", "a*b", "x\naxxb", true},
		{"glob star matches empty string", "*", "", true},
		{"glob against number", "1*", 12.0, false},
		{"string vs number", "foo", 1.0, false},
		{"string vs bool", "true", true, false},
		{"empty quoted vs string", `""`, "", true},
		{"empty quoted vs empty array", `""`, []any{}, false},
		{"truthy empty array", "a?", map[string]any{"a": []any{}}, true},
		{"truthy empty object", "a?", map[string]any{"a": map[string]any{}}, true},
		{"truthy zero", "a?", map[string]any{"a": 0.0}, false},
		{"truthy string 0", "a?", map[string]any{"a": "0"}, true},
		{"truthy empty string", "a?", map[string]any{"a": ""}, false},
		{"truthy NaN", "a?", map[string]any{"a": math.NaN()}, false},
		{"property of null", "!a:x", nil, true},
		{"property of null is false", "a:x", nil, false},
		{"not missing property", "!a:x", map[string]any{}, true},
		{"missing property compares NaN", "a:<1", map[string]any{}, false},
		{"null property compares 0", "a:<1", map[string]any{"a": nil}, true},
		{"array index", "a:1:y", map[string]any{"a": []any{"x", "y"}}, true},
		{"array bad index", "a:01:y", map[string]any{"a": []any{"x", "y"}}, false},
		{"string length", "a:length:>2", map[string]any{"a": "abc"}, true},
		{"string length UTF-16", "a:length:2", map[string]any{"a": "😀"}, true},
		{"string index", "a:1:b", map[string]any{"a": "abc"}, true},
		{"array-like object", "x", map[string]any{"length": 1.0, "0": "a", "1": "x"}, false},
		{"array-like object index", "a", map[string]any{"length": 1.0, "0": "a", "1": "x"}, true},
		{"object with text length", "x", map[string]any{"length": "1", "1": "x"}, true},
		{"typed string slice", "b", []string{"a", "b"}, true},
		{"typed string map", "v", map[string]string{"k": "v"}, true},
		{"non-plain value", "a", struct{ A string }{"a"}, false},
		{"kelvin sign lowers to k", "k", "\u212a", true},
		{"dotted capital I", "i", "İ", true},
		{"dotted capital I needle", "İ", "i", false},
		{"final sigma", "σ", "ΟΔΟΣ", false},
		{"medial sigma", "σ", "ΟΣΟ", true},
		{"regexp dot excludes CR", "/a.b/", "a\rb", false},
		{"regexp space is JS space", `/a\sb/`, "a\u00a0b", true},
		{"regexp identity escape", `/\a/`, "a", true},
		{"regexp empty class", `/[]/`, "a", false},
		{"regexp negated empty class", `/a[^]b/`, "a\nb", true},
		{"regexp octal", `/\101/`, "A", true},
		{"regexp control", `/\cJ/`, "\n", true},
		{"regexp i kelvin", `/k/i`, "\u212a", false},
		{"regexp i sigma", `/σ/i`, "ς", true},
		{"regexp dollar is end", `/a$/`, "a\n", false},
		{"regexp literal brace", `/a{,2}/`, "a{,2}", true},
		{"glob i sharp s", "ß*", "ẞ", false},
		{"glob non-ASCII", "é*t", "ÉTÉ", true},
		{"ASCII needle in accented text", "ete", "ÉtÉ etE", true},
		{"ASCII needle across accents", "tt", "tét", false},
		{"ASCII glob in accented text", "r*sum", "RÉSUMÉ", true},
		{"ASCII glob stops at line separator", "a*b", "a\u2028b", false},
		{"ASCII regexp literal in accented text", "/^caf/i", "CAFÉ", true},
		{"ASCII regexp literal suffix after accent", "/e$/i", "caféE", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Match(tt.value); got != tt.want {
				t.Errorf("%q.Match(%#v) = %v, want %v", tt.filter, tt.value, got, tt.want)
			}
		})
	}
}

func TestNumberFormatting(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"zero", 0, "0"},
		{"negative zero", math.Copysign(0, -1), "0"},
		{"integer", 42, "42"},
		{"fraction", 0.5, "0.5"},
		{"small", 1e-7, "1e-7"},
		{"small decimal", 0.000001, "0.000001"},
		{"large integer", 1e20, "100000000000000000000"},
		{"exponent", 1e21, "1e+21"},
		{"mantissa exponent", 1.5e300, "1.5e+300"},
		{"negative", -2.25, "-2.25"},
		{"infinity", math.Inf(1), "Infinity"},
		{"minus infinity", math.Inf(-1), "-Infinity"},
		{"shortest", 0.30000000000000004, "0.30000000000000004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsNumberToString(tt.in); got != tt.want {
				t.Errorf("jsNumberToString(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStringToNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64 // NaN written as math.NaN()
	}{
		{"", 0}, {"  ", 0}, {"12", 12}, {" 12\n", 12}, {"-1.5", -1.5}, {"+3", 3}, {".5", 0.5},
		{"5.", 5}, {"1e3", 1000}, {"1E-2", 0.01}, {"0x1F", 31}, {"0b101", 5}, {"0o17", 15},
		{"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}, {"1e400", math.Inf(1)},
		{"abc", math.NaN()}, {"1_000", math.NaN()}, {"-0x10", math.NaN()}, {"1e", math.NaN()},
		{"infinity", math.NaN()}, {"0x", math.NaN()}, {"Inf", math.NaN()}, {"0x1p3", math.NaN()},
		{"1,2", math.NaN()}, {"$", math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := jsStringToNumber(tt.in)
			if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("Number(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	vm := decodeJSON(t, sampleVM)
	accented := map[string]any{"name_label": "Café crème MRA", "power_state": "Arrêté", "tags": []any{"prêt"}}
	for _, f := range []string{"xoa", "power_state:running", "mra*xoa", "name_label:/^mra/i", "tags:/^pr.d$/",
		"snapshots:length:>2", "CPUs:number:2", "auto_poweron? startTime:>-1", `|(!tags:"xo:no-bak" nonexistent:1)`} {
		n, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		n.Match(vm) // warm the regexp machine pool
		if allocs := testing.AllocsPerRun(100, func() { n.Match(vm); n.Match(accented) }); allocs != 0 {
			t.Errorf("%q: %v allocations per Match", f, allocs)
		}
	}
}
