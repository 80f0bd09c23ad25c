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
