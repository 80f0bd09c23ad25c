package handlers

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// quoteByBytes is appendString one byte at a time (its definition),
// against which the word-at-a-time scan is checked.
func quoteByBytes(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(`\ufffd`)
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xF])
		default:
			b.WriteByte(c)
		}
		i++
	}
	b.WriteByte('"')
	return b.String()
}

func TestAppendString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", `""`},
		{"short", "vm1", `"vm1"`},
		{"uuid", "8f5a3b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b", `"8f5a3b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b"`},
		{"quote in the first word", `ab"cdefghij`, `"ab\"cdefghij"`},
		{"backslash in the second word", `abcdefgh\ijklmnop`, `"abcdefgh\\ijklmnop"`},
		{"control in the last byte of a word", "abcdefg\x01ijk", `"abcdefg\u0001ijk"`},
		{"newline and tab", "line one\nline\ttwo", `"line one\nline\ttwo"`},
		{"space and tilde and DEL are plain", " ~\x7f !#$%&'()*+,-./", "\" ~\x7f !#$%&'()*+,-./\""},
		{"unit separator", "abcdefgh\x1fabcdefgh", `"abcdefgh\u001fabcdefgh"`},
		{"UTF-8", "été à Montréal — ok", `"été à Montréal — ok"`},
		{"invalid UTF-8", "abcdefgh\xffabc", `"abcdefgh\ufffdabc"`},
		{"line separator stays", "a\u2028b", "\"a\u2028b\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendString(nil, tt.in)); got != tt.want {
				t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if got := quoteByBytes(tt.in); got != tt.want {
				t.Errorf("quoteByBytes(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestPlainWord checks plainWord against the byte test for every byte
// value at every position of a word of plain bytes.
func TestPlainWord(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' }
	for pos := range 8 {
		for c := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			if got, want := plainWord(string(w)), plain(byte(c)); got != want {
				t.Errorf("plainWord(%q) = %v, want %v", w, got, want)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "vm1", `quote " and \ backslash`, "ctl\x00\x1f\x7f", "\xff\xfeabcdefgh", "日本語のテキスト"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), quoteByBytes(s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
