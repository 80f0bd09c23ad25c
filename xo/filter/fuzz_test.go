package filter

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SyntaxError, and that String() of a parsed filter parses back to the same
// tree (and formats identically), except for the documented cases.
func FuzzParse(f *testing.F) {
	for _, s := range handFilters {
		f.Add(s)
	}
	for _, s := range []string{fixturePattern, `a:"b\`, `/a\/`, "((((a))))", "|(|(a b) !c)", `"\"":"\\"`, ">1e21"} {
		f.Add(s)
	}
	vm := decodeJSON(f, sampleVM)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %T is not a *SyntaxError", s, err)
			}
			if se.Err == nil && !strings.HasPrefix(se.Msg, "parse error: expected end of input at position ") {
				t.Fatalf("Parse(%q): unexpected grammar error %q", s, se.Msg)
			}
			return
		}
		n.Match(vm) // must not panic
		str := n.String()
		again, err := Parse(str)
		if err != nil {
			if roundTripException(n) {
				return
			}
			t.Fatalf("Parse(%q).String() = %q, which does not parse: %v", s, str, err)
		}
		if got, want := astJSON(t, again), astJSON(t, n); got != want {
			t.Fatalf("Parse(%q).String() = %q parses to\n%s\nwant\n%s", s, str, got, want)
		}
		if again.String() != str {
			t.Fatalf("String() is not stable: %q then %q", str, again.String())
		}
	})
}

// roundTripException reports the trees whose String() complex-matcher
// itself cannot parse back (see the package documentation): comparisons
// formatted with an exponent "e+", and strings of non-BMP letters that
// formatString writes unquoted.
func roundTripException(n Node) bool {
	switch n := n.(type) {
	case *Comparison:
		return strings.Contains(n.String(), "e+")
	case *StringNode:
		return unquotedNonBMP(n.Value())
	case *Property:
		return unquotedNonBMP(n.Name) || roundTripException(n.Child)
	case *TruthyProperty:
		return unquotedNonBMP(n.Name)
	case *Not:
		return roundTripException(n.Child)
	case *And:
		for _, c := range n.Children {
			if roundTripException(c) {
				return true
			}
		}
	case *Or:
		for _, c := range n.Children {
			if roundTripException(c) {
				return true
			}
		}
	}
	return false
}

// unquotedNonBMP reports whether formatString writes s raw although it holds
// a character outside the BMP, which the parser does not take raw.
func unquotedNonBMP(s string) bool {
	if !isRawString(s) {
		return false
	}
	for _, r := range s {
		if r >= 0x10000 {
			return true
		}
	}
	return false
}
