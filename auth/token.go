package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Validity bounds of a token, as Xen Orchestra's defaults
// (defaultTokenValidity "30 days", maxTokenValidity "0.5 year") and its
// 60-second minimum.
const (
	DefaultValidity = 30 * 24 * time.Hour
	MinValidity     = 60 * time.Second
	// MaxValidity is half a year of 365.25 days, as the ms library counts it.
	MaxValidity = time.Duration(0.5 * 365.25 * 24 * float64(time.Hour))
)

// secretBytes is the number of random bytes in a token, as in Xen Orchestra.
const secretBytes = 32

// ErrNotFound is returned by Store.Lookup and Store.Delete when no unexpired
// token matches.
var ErrNotFound = errors.New("token not found")

// ErrExists is returned by Store.Create when a token with the same ID or
// Hash is already stored.
var ErrExists = errors.New("token already exists")

// ErrInvalidValidity is returned (wrapped) for an expiresIn that cannot be
// parsed or lies outside [MinValidity, MaxValidity].
var ErrInvalidValidity = errors.New("invalid expiresIn duration")

// Token is a stored authentication token. It never holds the plaintext
// secret, only its hash. Timestamps are Unix milliseconds, as in Xen
// Orchestra.
type Token struct {
	// ID identifies the token in listings and revocations. It is random and
	// not secret: knowing it does not allow authenticating.
	ID string `json:"id"`
	// Hash is Hash(secret): the hex SHA-256 of the plaintext token.
	Hash string `json:"hash"`
	// User is the account the token acts for (the XAPI user name that
	// authenticated when it was minted).
	User string `json:"user_id"`
	// Description is free text given by the user.
	Description string `json:"description,omitempty"`
	// ClientID names the client the token was minted for; minting a new
	// token for the same user and client replaces the old one.
	ClientID string `json:"client_id,omitempty"`
	// Created is when the token was minted, in Unix milliseconds.
	Created int64 `json:"created_at"`
	// Expires is when the token stops being valid, in Unix milliseconds.
	Expires int64 `json:"expiration"`
}

// Expired reports whether the token is no longer valid at now.
func (t Token) Expired(now time.Time) bool {
	return now.UnixMilli() >= t.Expires
}

// NewParams are the inputs of New.
type NewParams struct {
	User        string
	Description string
	ClientID    string
	// Validity is how long the token lives; 0 means DefaultValidity.
	// Other values must lie within [MinValidity, MaxValidity].
	Validity time.Duration
	// Now is the creation time.
	Now time.Time
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
}

// New mints a token: it returns the plaintext secret, to be shown once, and
// the Token to store, which holds only the secret's hash.
func New(p NewParams) (secret string, t Token, err error) {
	validity := p.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	if err := CheckValidity(validity); err != nil {
		return "", Token{}, err
	}
	if p.User == "" {
		return "", Token{}, errors.New("auth: token needs a user")
	}
	r := p.Rand
	if r == nil {
		r = rand.Reader
	}
	buf := make([]byte, secretBytes+12)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", Token{}, fmt.Errorf("auth: reading random bytes: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(buf[:secretBytes])
	t = Token{
		// Hex, so that an ID never starts with "-" and reads as a flag on
		// the command line (xorest token revoke ID).
		ID:          hex.EncodeToString(buf[secretBytes:]),
		Hash:        Hash(secret),
		User:        p.User,
		Description: p.Description,
		ClientID:    p.ClientID,
		Created:     p.Now.UnixMilli(),
		Expires:     p.Now.Add(validity).UnixMilli(),
	}
	return secret, t, nil
}

// Hash returns the hex SHA-256 of a plaintext token: the key stores look
// tokens up by.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// HashEqual compares two hashes in constant time.
func HashEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// CheckValidity reports whether d is an acceptable token lifetime.
func CheckValidity(d time.Duration) error {
	if d < MinValidity {
		return fmt.Errorf("%w: %v is less than %v", ErrInvalidValidity, d, MinValidity)
	}
	if d > MaxValidity {
		return fmt.Errorf("%w: %v is more than %v", ErrInvalidValidity, d, MaxValidity)
	}
	return nil
}

// durationRE is the grammar of the ms npm package that Xen Orchestra's
// parseDuration uses: a number and an optional unit (default milliseconds).
var durationRE = regexp.MustCompile(`(?i)^(-?(?:\d+)?\.?\d+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)?$`)

// ParseExpiresIn converts the expiresIn of a token request to a duration.
// It accepts what Xen Orchestra accepts: a JSON number of milliseconds
// (float64 or int), or a string in the ms package's syntax ("3600000",
// "1 hour", "30 days", "0.5 year", "2w"; a year is 365.25 days). It does not
// check the bounds; see CheckValidity.
func ParseExpiresIn(v any) (time.Duration, error) {
	var ms float64
	switch v := v.(type) {
	case float64:
		ms = v
	case int:
		ms = float64(v)
	case int64:
		ms = float64(v)
	case string:
		var err error
		if ms, err = parseMS(v); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%w: want a number of milliseconds or a string like \"30 days\", got %T", ErrInvalidValidity, v)
	}
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, fmt.Errorf("%w: %v ms is out of range", ErrInvalidValidity, ms)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// parseMS parses a duration string as the ms package does, in milliseconds.
func parseMS(s string) (float64, error) {
	if len(s) > 100 {
		return 0, fmt.Errorf("%w: too long", ErrInvalidValidity)
	}
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalidValidity, s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalidValidity, s)
	}
	const (
		second = 1000.0
		minute = 60 * second
		hour   = 60 * minute
		day    = 24 * hour
		week   = 7 * day
		year   = 365.25 * day
	)
	unit := 1.0
	switch strings.ToLower(m[2]) {
	case "years", "year", "yrs", "yr", "y":
		unit = year
	case "weeks", "week", "w":
		unit = week
	case "days", "day", "d":
		unit = day
	case "hours", "hour", "hrs", "hr", "h":
		unit = hour
	case "minutes", "minute", "mins", "min", "m":
		unit = minute
	case "seconds", "second", "secs", "sec", "s":
		unit = second
	}
	return n * unit, nil
}
