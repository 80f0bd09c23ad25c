package xapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// parseFingerprint decodes a SHA-256 digest written as hex, with or without
// colons, in either case.
func parseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return fp, fmt.Errorf("%w: %q", ErrInvalidFingerprint, s)
	}
	copy(fp[:], b)
	return fp, nil
}

// Fingerprint returns the SHA-256 digest of a DER certificate in the form
// Options.Fingerprints accepts (lowercase hex, no colons).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// errPinMismatch is the handshake failure for a certificate that matches
// no pinned fingerprint.
var errPinMismatch = errors.New("xapi: server certificate matches no pinned fingerprint")

// tlsConfig builds the TLS configuration described by opts; see Options.
func tlsConfig(opts *Options) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.TLSServerName}
	if opts.Insecure {
		conf.InsecureSkipVerify = true
		return conf, nil
	}
	if opts.CAFile != "" || len(opts.CAPEM) > 0 {
		pem := opts.CAPEM
		if opts.CAFile != "" {
			b, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("xapi: CA file: %w", err)
			}
			pem = append(append([]byte{}, pem...), b...)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, ErrInvalidCA
		}
		conf.RootCAs = pool
	}
	if len(opts.Fingerprints) == 0 {
		return conf, nil
	}
	pins := make([][sha256.Size]byte, len(opts.Fingerprints))
	for i, f := range opts.Fingerprints {
		fp, err := parseFingerprint(f)
		if err != nil {
			return nil, err
		}
		pins[i] = fp
	}
	// Without a CA the chain cannot be verified (XAPI's certificate is
	// self-signed): the pin is the verification. With a CA, Go verifies
	// the chain first and the pin is checked on top.
	conf.InsecureSkipVerify = conf.RootCAs == nil
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errPinMismatch
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		for _, p := range pins {
			if subtle.ConstantTimeCompare(sum[:], p[:]) == 1 {
				return nil
			}
		}
		return fmt.Errorf("%w (got %s)", errPinMismatch, hex.EncodeToString(sum[:]))
	}
	return conf, nil
}
