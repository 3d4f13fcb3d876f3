package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestSIGHUPReloadsCertificates: a real SIGHUP re-reads a TLS listener's files; a bad file is
// refused with a log line and the old certificate stays in force.
func TestSIGHUPReloadsCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.MustCA("first CA")
	certFile, keyFile, err := ca.MustServer().WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "switchyard.yaml")
	yaml := fmt.Sprintf("listeners:\n  - address: \"127.0.0.1:0\"\n    tls: {cert_file: %q, key_file: %q, min_version: \"1.3\"}\n", certFile, keyFile)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, fs, nc := startConfigOf(t, file)
	logs := &syncBuffer{}
	nc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(t.Context())
	hup := serveHUP(t, n, fs, f, nc.Logger, logs)
	if !strings.HasPrefix(n.WebSocketURL(), "wss://") {
		t.Fatalf("URL %s", n.WebSocketURL())
	}
	issuer := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", n.ListenerAddr(0).String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Fatalf("TLS version %x", v)
		}
		return conn.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	if got := issuer(); got != "first CA" {
		t.Fatalf("issuer %q", got)
	}
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("SIGHUP: config reload refused", 1)
	if got := issuer(); got != "first CA" {
		t.Fatalf("bad key file: issuer %q, log %s", got, logs.String())
	}
	if _, _, err := testpki.MustCA("second CA").MustServer().WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}
	hup("SIGHUP: config reloaded", 1)
	if got := issuer(); got != "second CA" {
		t.Fatalf("after reload: issuer %q\n%s", got, logs.String())
	}
}
