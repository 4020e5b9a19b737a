package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/nkms/nkms/internal/atomicfile"
	"github.com/nkms/nkms/internal/crypto"
)

// Files and lifetime of the --dev certificate, kept in the data dir so that
// its fingerprint stays the same across restarts.
const (
	DevCertFile     = "dev-tls-cert.pem"
	DevKeyFile      = "dev-tls-key.pem"
	devCertValidity = 90 * 24 * time.Hour
)

// serverTLS returns the TLS configuration of the API listener: TLS 1.2 or
// 1.3 (Go prefers 1.3), and for 1.2 only ECDHE key exchange with AEAD
// ciphers. It is nil when TLS is off.
func serverTLS(cfg Config, stderr io.Writer) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case cfg.TLSCert != "":
		if cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	case cfg.Dev:
		if cert, err = devCertificate(cfg, stderr); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{ // TLS 1.2 only; TLS 1.3's suites are all modern
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}, nil
}

// devCertificate loads the --dev certificate of the data dir, or makes a new
// one when there is none, it expires within a day, or it does not name the
// listen host; it prints where it is and its fingerprint.
func devCertificate(cfg Config, stderr io.Writer) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(cfg.DataDir, DevCertFile), filepath.Join(cfg.DataDir, DevKeyFile)
	hosts := devHosts(cfg.Listen)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil && !devCertFits(cert.Leaf, hosts) {
		err = errors.New("expiring or for other hosts")
	}
	if err != nil {
		ss, err := crypto.NewSelfSigned(hosts, time.Now(), devCertValidity)
		if err != nil {
			return tls.Certificate{}, err
		}
		for _, f := range []struct {
			path string
			pem  []byte
		}{{keyPath, ss.KeyPEM}, {certPath, ss.CertPEM}} {
			if err := atomicfile.WriteFile(f.path, f.pem); err != nil {
				return tls.Certificate{}, fmt.Errorf("write --dev certificate: %w", err)
			}
		}
		if cert, err = tls.X509KeyPair(ss.CertPEM, ss.KeyPEM); err != nil {
			return tls.Certificate{}, err
		}
	}
	fmt.Fprintf(stderr, "nkms: --dev: self-signed TLS certificate %s (SHA-256 %s); clients trust it with --ca-cert %s or NKMS_CA_CERT\n",
		certPath, crypto.Fingerprint(cert.Leaf.Raw), certPath)
	return cert, nil
}

// devHosts are the names the --dev certificate covers: localhost, the
// loopback addresses and the listen host, if it names one.
func devHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) && !slices.Contains(hosts, host) {
		hosts = append(hosts, host)
	}
	return hosts
}

// devCertFits reports whether c is valid for at least another day and names
// every host.
func devCertFits(c *x509.Certificate, hosts []string) bool {
	if c == nil || time.Until(c.NotAfter) < 24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}
