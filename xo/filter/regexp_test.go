package filter

import (
	"slices"
	"testing"
)

// TestCloseCaseComplete checks that closeCase, which only visits characters
// with case mappings for large sets, equals the brute-force closure.
func TestCloseCaseComplete(t *testing.T) {
	tests := []struct {
		name string
		set  rangeSet
	}{
		{"not word", wordSet().complement()},
		{"not space", spaceSet().complement()},
		{"non-ASCII", rangeSet{{0x80, 0xffff}}},
		{"not k", rangeSet{{'k', 'k'}}.complement()},
		{"Latin-1 and Greek", rangeSet{{0xc0, 0x3ff}}},
		{"Letterlike symbols", rangeSet{{0x2000, 0x2fff}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := tt.set.normalize()
			var brute rangeSet
			for r := rune(0); r <= 0xffff; r++ {
				for _, e := range canonicalEquivalents(r) {
					if set.contains(e) {
						brute = append(brute, [2]rune{r, r})
						break
					}
				}
			}
			if got, want := set.closeCase(), brute.normalize(); !slices.Equal(got, want) {
				t.Errorf("closeCase = %v,\nwant %v", got, want)
			}
		})
	}
}

func TestRegExpSource(t *testing.T) {
	tests := []struct{ name, pattern, want string }{
		{"empty", "", "(?:)"},
		{"slash", "a/b", `a\/b`},
		{"escaped slash", `a\/b`, `a\/b`},
		{"escaped backslash then slash", `a\\/b`, `a\\\/b`},
		{"slash in class", "[/]", "[/]"},
		{"newline", "a\nb", `a\nb`},
		{"escaped newline", "a\\\nb", `a\nb`},
		{"carriage return", "\r", `\r`},
		{"line separator", "\u2028", `\u2028`},
		{"trailing backslash", `a\`, `a\`},
		{"escaped bracket", `\[/`, `\[\/`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := regExpSource(tt.pattern); got != tt.want {
				t.Errorf("regExpSource(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestJSUnits(t *testing.T) {
	if s := "plain é text"; jsUnits(s) != s {
		t.Errorf("jsUnits changed a BMP string")
	}
	if got := []rune(jsUnits("a😀")); len(got) != 3 || got[1] != pseudo(0xd83d) || got[2] != pseudo(0xde00) {
		t.Errorf("jsUnits(a😀) = %U", got)
	}
}

// TestLiteralRegExp checks the fast path for plain-text expressions against
// the translated RE2 expression.
func TestLiteralRegExp(t *testing.T) {
	patterns := []string{"", "^", "$", "^$", "mra", "^MRA", "xoa$", "^MRA XOA$", `^foo\/bar\.`, `a\$`, `a\\$`,
		"é", "^É", "ß$", "k", "^ſ", "😀", "^😀$", "σ", "a\nb"}
	subjects := []string{"", "MRA XOA", "mra xoa", "foo/bar.baz", "FOO/BAR.", "a$", `a\`, "été", "ÉTÉ", "straße",
		"STRASSE", "\u212a", "k", "s", "S", "ſ", "😀", "x😀", "ΟΔΟΣ", "a\nb", "A\nB"}
	for _, flags := range []string{"", "i"} {
		for _, p := range patterns {
			lit, ok := parseLiteralRegExp(p, flags)
			if !ok {
				if p != `a\\$` {
					t.Errorf("/%s/%s not recognised as a literal", p, flags)
				}
				continue
			}
			re, err := translateRegExp(p, flags)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subjects {
				if got, want := lit.match(s), re.MatchString(jsUnits(s)); got != want {
					t.Errorf("/%s/%s on %q: literal %v, regexp %v", p, flags, s, got, want)
				}
			}
		}
	}
	for _, p := range []string{`\d`, "a.b", "a*", "(a)", "[a]", "a|b", "a{2}", `\x41`, `\b`, "a^"} {
		if _, ok := parseLiteralRegExp(p, ""); ok {
			t.Errorf("/%s/ taken for a literal", p)
		}
	}
}
