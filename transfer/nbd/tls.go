package nbd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PinnedTLSConfig returns the TLS configuration for an XAPI NBD endpoint:
// certPEM is the cert field of VDI.get_nbd_info (the host's certificate,
// usually self-signed) and serverName its subject field.
//
// The server is accepted when the certificate it presents is exactly one of
// those in certPEM, or when its chain verifies with certPEM's certificates
// as the only roots for the name serverName. The first rule is certificate
// pinning: the pin comes from the authenticated XAPI session, so neither
// the address nor the validity period of a self-signed host certificate
// matter. Go's default verification is replaced by this one
// (InsecureSkipVerify plus VerifyConnection), never skipped: any other
// certificate fails the handshake.
func PinnedTLSConfig(certPEM []byte, serverName string) (*tls.Config, error) {
	var pins []*x509.Certificate
	roots := x509.NewCertPool()
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("nbd: parsing the pinned certificate: %w", err)
		}
		pins = append(pins, c)
		roots.AddCert(c)
	}
	if len(pins) == 0 {
		return nil, errors.New("nbd: no certificate in the PEM data to pin")
	}
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		for _, p := range pins {
			if bytes.Equal(leaf.Raw, p.Raw) {
				return nil
			}
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: serverName, Roots: roots, Intermediates: inter}); err != nil {
			return fmt.Errorf("the server certificate is not the pinned one: %w", err)
		}
		return nil
	}
	return &tls.Config{
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection, see above
		VerifyConnection:   verify,
	}, nil
}
