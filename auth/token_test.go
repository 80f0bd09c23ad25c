package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	now := time.UnixMilli(1760346600297)
	secret, tok, err := New(NewParams{User: "root", Description: "cli", ClientID: "my-client", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 43 || strings.ContainsAny(secret, "+/=") {
		t.Errorf("secret %q: want 43 base64url characters", secret)
	}
	if tok.Hash != Hash(secret) || strings.Contains(tok.Hash, secret) {
		t.Errorf("Hash = %q, want SHA-256 of the secret", tok.Hash)
	}
	if tok.ID == "" || strings.Contains(secret, tok.ID) {
		t.Errorf("ID = %q: want a non-empty id unrelated to the secret", tok.ID)
	}
	want := Token{ID: tok.ID, Hash: tok.Hash, User: "root", Description: "cli", ClientID: "my-client",
		Created: 1760346600297, Expires: 1760346600297 + (30 * 24 * time.Hour).Milliseconds()}
	if tok != want {
		t.Errorf("token = %+v, want %+v", tok, want)
	}
	other, _, err := New(NewParams{User: "root", Now: now})
	if err != nil || other == secret {
		t.Errorf("second secret %q equals the first (err %v)", other, err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		p    NewParams
		want error
	}{
		{"too short", NewParams{User: "u", Validity: 59 * time.Second}, ErrInvalidValidity},
		{"too long", NewParams{User: "u", Validity: MaxValidity + time.Millisecond}, ErrInvalidValidity},
		{"negative", NewParams{User: "u", Validity: -time.Hour}, ErrInvalidValidity},
		{"no user", NewParams{Validity: time.Hour}, nil},
		{"short random", NewParams{User: "u", Rand: bytes.NewReader(make([]byte, 10))}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := New(tt.p)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewBounds(t *testing.T) {
	for _, d := range []time.Duration{MinValidity, MaxValidity} {
		if _, _, err := New(NewParams{User: "u", Validity: d}); err != nil {
			t.Errorf("New(validity %v): %v", d, err)
		}
	}
	if want := 15778800000 * time.Millisecond; MaxValidity != want {
		t.Errorf("MaxValidity = %v, want %v (0.5 year of 365.25 days)", MaxValidity, want)
	}
}

func TestHash(t *testing.T) {
	// sha256("abc"), the FIPS 180-2 test vector.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := Hash("abc"); got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
	if !HashEqual(want, Hash("abc")) || HashEqual(want, Hash("abd")) || HashEqual(want, want[:10]) {
		t.Error("HashEqual gives wrong answers")
	}
}

func TestParseExpiresIn(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want time.Duration
	}{
		{"json number", float64(3600000), time.Hour},
		{"int", 60000, time.Minute},
		{"int64", int64(1500), 1500 * time.Millisecond},
		{"numeric string", "3600000", time.Hour},
		{"1 hour", "1 hour", time.Hour},
		{"30 days", "30 days", 30 * 24 * time.Hour},
		{"half year", "0.5 year", MaxValidity},
		{"short unit", "2w", 14 * 24 * time.Hour},
		{"case", "10 MINUTES", 10 * time.Minute},
		{"no space", "90s", 90 * time.Second},
		{"fraction", ".5h", 30 * time.Minute},
		{"ms unit", "100ms", 100 * time.Millisecond},
		{"negative", "-1d", -24 * time.Hour},
		{"yrs", "1 yrs", time.Duration(365.25 * 24 * float64(time.Hour))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExpiresIn(tt.in)
			if err != nil {
				t.Fatalf("ParseExpiresIn(%#v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseExpiresIn(%#v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExpiresInErrors(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"empty", ""},
		{"unit only", "days"},
		{"unknown unit", "3 fortnights"},
		{"two numbers", "1 2"},
		{"bool", true},
		{"null", nil},
		{"object", map[string]any{}},
		{"huge", 1e300},
		{"too long", strings.Repeat("1", 101)},
		{"trailing space", "1 hour "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := ParseExpiresIn(tt.in); !errors.Is(err, ErrInvalidValidity) {
				t.Errorf("ParseExpiresIn(%#v) = %v, %v; want ErrInvalidValidity", tt.in, d, err)
			}
		})
	}
}

func FuzzParseExpiresIn(f *testing.F) {
	for _, s := range []string{"1 hour", "30 days", "0.5 year", "3600000", "-.5ms", "", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseExpiresIn(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidValidity) {
				t.Fatalf("error %v does not match ErrInvalidValidity", err)
			}
			return
		}
		if !durationRE.MatchString(s) {
			t.Fatalf("accepted %q (%v) outside the grammar", s, d)
		}
	})
}

// TestIDsAreHex guards the command line: a token ID must never start with
// "-", or `xorest token revoke ID` would read it as a flag.
func TestIDsAreHex(t *testing.T) {
	for range 500 {
		_, tok, err := New(NewParams{User: "root", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if len(tok.ID) != 24 || strings.Trim(tok.ID, "0123456789abcdef") != "" {
			t.Fatalf("ID %q: want 24 lowercase hex digits", tok.ID)
		}
	}
}
