package filter

import "testing"

// TestGlobWithLineTerminator covers globs built by NewGlob whose text holds
// a line terminator (the parser never makes them): they run as the
// translated JavaScript expression.
func TestGlobWithLineTerminator(t *testing.T) {
	tests := []struct {
		name, glob, s string
		want          bool
	}{
		{"literal line break", "a\nb*c", "xA\nBzc", true},
		{"star does not cross lines", "a\nb*c", "a\nb\nc", false},
		{"special characters are literal", "(a.\n)*[", "(A.\n)x[", true},
		{"dot is literal", "a.\n*", "ab\n", false},
		{"kelvin sign is not k", "k\n*", "\u212a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewGlob(tt.glob).Match(tt.s); got != tt.want {
				t.Errorf("NewGlob(%q).Match(%q) = %v, want %v", tt.glob, tt.s, got, tt.want)
			}
		})
	}
}
