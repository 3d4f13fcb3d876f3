// Package testpki generates throwaway X.509 material for tests: an ECDSA P-256 CA, a
// server certificate for 127.0.0.1, ::1 and localhost, and client certificates with a
// given common name. Everything is made in memory (nothing is ever committed); WriteFiles
// writes PEM files to a directory for code that loads files (node, interop clients).
//
// Not for production: keys are short-lived and certificates valid for one day.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a test certificate authority. Its methods are safe for concurrent use.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is the CA certificate in PEM.
	CertPEM []byte
}

// Cert is a certificate with its key. Plain data: safe for concurrent reads.
type Cert struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte // the certificate in PEM (the leaf only)
	KeyPEM  []byte // the private key in PEM (PKCS#8)
	// TLS is the certificate ready for tls.Config.Certificates.
	TLS tls.Certificate
}

// NewCA makes a new CA with the given common name. Safe for concurrent use.
func NewCA(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA cert: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA cert: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Pool returns a new pool holding only the CA certificate (for RootCAs or ClientCAs).
// Safe for concurrent use.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost, plus any extra
// DNS names or IP addresses in hosts. Safe for concurrent use.
func (ca *CA) Server(hosts ...string) (*Cert, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// Client issues a client certificate with common name cn. Safe for concurrent use.
func (ca *CA) Client(cn string) (*Cert, error) {
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(tmpl *x509.Certificate) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: key: %w", err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: cert %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: cert %s: %w", tmpl.Subject.CommonName, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testpki: key: %w", err)
	}
	c := &Cert{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	c.TLS = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	return c, nil
}

// Fingerprint returns the SHA-256 fingerprint of the certificate, 64 lowercase hex
// digits (the form the tls auth method's config uses). Safe for concurrent use.
func (c *Cert) Fingerprint() string {
	sum := sha256.Sum256(c.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// WriteFiles writes c as dir/NAME.crt and dir/NAME.key (mode 0600) and returns both
// paths. Safe for concurrent use with distinct names.
func (c *Cert) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("testpki: %w", err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("testpki: %w", err)
	}
	return certFile, keyFile, nil
}

// WriteFile writes the CA certificate as dir/NAME.crt and returns its path. Safe for
// concurrent use with distinct names.
func (ca *CA) WriteFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name+".crt")
	if err := os.WriteFile(p, ca.CertPEM, 0o600); err != nil {
		return "", fmt.Errorf("testpki: %w", err)
	}
	return p, nil
}

// ServerConfig returns a server tls.Config serving c; with clientCAs non-nil it asks
// for a client certificate and verifies it if given (tls.VerifyClientCertIfGiven).
// Safe for concurrent use.
func (c *Cert) ServerConfig(clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg
}

// ClientConfig returns a client tls.Config trusting only ca, presenting the client
// certificates given (none: no client certificate). Safe for concurrent use.
func (ca *CA) ClientConfig(certs ...*Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	for _, c := range certs {
		cfg.Certificates = append(cfg.Certificates, c.TLS)
	}
	return cfg
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// MustCA is NewCA that panics on error, for tests. Safe for concurrent use.
func MustCA(cn string) *CA {
	ca, err := NewCA(cn)
	if err != nil {
		panic(err)
	}
	return ca
}

// MustServer is Server that panics on error. Safe for concurrent use.
func (ca *CA) MustServer(hosts ...string) *Cert {
	c, err := ca.Server(hosts...)
	if err != nil {
		panic(err)
	}
	return c
}

// MustClient is Client that panics on error. Safe for concurrent use.
func (ca *CA) MustClient(cn string) *Cert {
	c, err := ca.Client(cn)
	if err != nil {
		panic(err)
	}
	return c
}

// ServerFiles writes a new server certificate of ca (for 127.0.0.1, ::1, localhost) as
// dir/server.crt and dir/server.key and ca's certificate as dir/ca.crt: the three files
// a TLS listener that verifies client certificates needs. Safe for concurrent use with
// distinct dirs.
func (ca *CA) ServerFiles(dir string) (certFile, keyFile, caFile string, err error) {
	srv, err := ca.Server()
	if err != nil {
		return "", "", "", err
	}
	if certFile, keyFile, err = srv.WriteFiles(dir, "server"); err != nil {
		return "", "", "", err
	}
	if caFile, err = ca.WriteFile(dir, "ca"); err != nil {
		return "", "", "", err
	}
	return certFile, keyFile, caFile, nil
}
