package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are the PEM files of a cluster started by StartTLS, made for
// that cluster alone (ECDSA P-256, valid for a day).
type TLSFiles struct {
	// CA signed the members' certificate and the client certificate; the
	// members trust only it, for clients and for each other.
	CA string
	// ClientCert and ClientKey are a client certificate the members accept.
	ClientCert, ClientKey string
	// MemberCert and MemberKey are the members' certificate, for
	// 127.0.0.1 and localhost, served to clients and to peers.
	MemberCert, MemberKey string
	// OtherCA is a CA that signed nothing of the cluster's: a client that
	// trusts only it refuses the members' certificate.
	OtherCA string
}

// StartTLS is Start for a cluster that speaks TLS only: its client URLs
// (https://) require a client certificate signed by the cluster's CA
// (--client-cert-auth), and its members authenticate each other with the
// same CA (--peer-client-cert-auth). TLS returns the files; Client and
// NewClient connect with the client certificate.
func StartTLS(t testing.TB, members int) *Cluster {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	files, err := writeTLSFiles(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	return startFor(t, bin, dir, members, files)
}

// TLS returns the PEM files of a cluster of StartTLS; nil for a cluster
// of plain HTTP.
func (c *Cluster) TLS() *TLSFiles {
	if c.tls == nil {
		return nil
	}
	files := *c.tls
	return &files
}

// memberTLSArgs are the flags that make a member serve clients and peers
// with files, and require their certificates.
func memberTLSArgs(files *TLSFiles) []string {
	return []string{
		"--cert-file=" + files.MemberCert,
		"--key-file=" + files.MemberKey,
		"--trusted-ca-file=" + files.CA,
		"--client-cert-auth",
		"--peer-cert-file=" + files.MemberCert,
		"--peer-key-file=" + files.MemberKey,
		"--peer-trusted-ca-file=" + files.CA,
		"--peer-client-cert-auth",
	}
}

// clientTLS is the TLS configuration of a client of a cluster with files:
// it trusts the cluster's CA and presents the client certificate.
func clientTLS(files *TLSFiles) (*tls.Config, error) {
	if files == nil {
		return nil, nil
	}
	pemCA, err := os.ReadFile(files.CA)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("etcd: no certificate in %s", files.CA)
	}
	cert, err := tls.LoadX509KeyPair(files.ClientCert, files.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("etcd: client certificate: %w", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// writeTLSFiles makes a CA, a member certificate and a client certificate
// signed by it, and a CA of nothing, and writes them to dir.
func writeTLSFiles(dir string) (*TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	files := &TLSFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
		MemberCert: filepath.Join(dir, "member.pem"),
		MemberKey:  filepath.Join(dir, "member-key.pem"),
		OtherCA:    filepath.Join(dir, "other-ca.pem"),
	}
	now := time.Now()
	ca, caKey, err := newCert(caTemplate("nkms test etcd CA", now), nil, nil)
	if err != nil {
		return nil, err
	}
	member, memberKey, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "nkms test etcd member"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	client, clientKey, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "nkms test etcd client"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	other, _, err := newCert(caTemplate("nkms test CA of nothing", now), nil, nil)
	if err != nil {
		return nil, err
	}
	memberDER, err := x509.MarshalPKCS8PrivateKey(memberKey)
	if err != nil {
		return nil, err
	}
	clientDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		der  []byte
		typ  string
	}{
		{files.CA, ca.Raw, "CERTIFICATE"},
		{files.MemberCert, member.Raw, "CERTIFICATE"},
		{files.MemberKey, memberDER, "PRIVATE KEY"},
		{files.ClientCert, client.Raw, "CERTIFICATE"},
		{files.ClientKey, clientDER, "PRIVATE KEY"},
		{files.OtherCA, other.Raw, "CERTIFICATE"},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	return files, nil
}

// caTemplate is a self-signed CA certificate named name, valid around now.
func caTemplate(name string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// newCert makes a P-256 key and a certificate of it from tmpl, signed by
// parent and its key (self-signed when parent is nil).
func newCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd TLS: certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}
