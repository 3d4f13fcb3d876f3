package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
)

// servedCert returns the leaf certificate a new TLS handshake with addr gets.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func TestTLSJoinAndReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.MustCA("node test CA")
	certFile, keyFile, caFile, err := ca.ServerFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := &TLSFiles{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
	n := startNode(t, func(c *Config) {
		c.Listeners = []Listener{
			{Address: "127.0.0.1:0", TLS: files},
			{Address: "127.0.0.1:0", Kind: KindRawSocket, TLS: files},
			{Address: "127.0.0.1:0"},
		}
	})
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	if ws[:6] != "wss://" || rs[:6] != "rss://" || n.URLs(1)[0][:6] != "rss://" || n.URLs(2)[0][:5] != "ws://" {
		t.Fatalf("URLs %s %s %v %v", ws, rs, n.URLs(1), n.URLs(2))
	}
	join := func(url string, ser codec.Serializer, cfg *tls.Config) (*client.Session, error) {
		return client.Connect(ctxT(t), client.Config{URL: url, Realm: "realm1", Serializer: ser, TLSConfig: cfg})
	}
	alice := ca.MustClient("alice")
	var sessions []*client.Session
	for _, url := range []string{ws, rs, n.URLs(1)[0]} {
		for _, ser := range sers {
			s, err := join(url, ser, ca.ClientConfig(alice))
			if err != nil {
				t.Fatalf("%s %v: %v", url, ser, err)
			}
			sessions = append(sessions, s)
		}
	}
	if _, err := join(ws, codec.JSON, &tls.Config{}); err == nil {
		t.Fatal("joined without trusting the server's CA")
	}
	callee := sessions[0]
	if _, err := callee.Register(ctxT(t), "com.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	callAll := func() {
		t.Helper()
		for i, s := range sessions {
			res, err := s.Call(ctxT(t), "com.echo", []any{"hi"}, nil, nil)
			if err != nil || len(res.Args) != 1 || res.Args[0] != "hi" {
				t.Fatalf("session %d: call %v %v", i, res, err)
			}
		}
	}
	callAll()

	// A new certificate from another CA: new handshakes get it, sessions stay up.
	ca2 := testpki.MustCA("node test CA 2")
	if _, _, err := ca2.MustServer().WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}
	addr := n.ListenerAddr(0).String()
	before := servedCert(t, addr)
	if err := n.Reload(Config{Realms: []string{"realm1"}}); err != nil {
		t.Fatal(err)
	}
	after := servedCert(t, addr)
	if after.Issuer.CommonName != "node test CA 2" || before.Issuer.CommonName != "node test CA" {
		t.Fatalf("served %s then %s", before.Issuer.CommonName, after.Issuer.CommonName)
	}
	if got := servedCert(t, n.ListenerAddr(1).String()); got.Issuer.CommonName != "node test CA 2" {
		t.Fatalf("rawsocket listener serves %s", got.Issuer.CommonName)
	}
	callAll()
	s, err := join(ws, codec.CBOR, ca2.ClientConfig(alice))
	if err != nil {
		t.Fatalf("join after reload: %v", err)
	}
	s.Close()

	// A bad file is refused: the reloaded certificate stays in force.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(Config{Realms: []string{"realm1"}}); err == nil {
		t.Fatal("Reload accepted a bad certificate file")
	}
	if got := servedCert(t, addr); !got.Equal(after) {
		t.Fatal("a refused reload changed the served certificate")
	}
	bad := &TLSFiles{CertFile: certFile + ".missing", KeyFile: keyFile}
	if err := n.Reload(Config{Listeners: []Listener{{TLS: bad}}}); err == nil {
		t.Fatal("Reload accepted a missing certificate file")
	}
	callAll()
	for _, s := range sessions {
		s.Close()
	}
}

func TestTLSStartRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.MustCA("ca")
	certFile, keyFile, err := ca.MustServer().WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]TLSFiles{
		"missing key":   {CertFile: certFile, KeyFile: keyFile + ".x"},
		"key as CA":     {CertFile: certFile, KeyFile: keyFile, ClientCAFile: keyFile},
		"bad version":   {CertFile: certFile, KeyFile: keyFile, MinVersion: "1.1"},
		"cert for key":  {CertFile: keyFile, KeyFile: keyFile},
		"no file names": {},
	} {
		_, err := Start(Config{Listeners: []Listener{{Address: "127.0.0.1:0", TLS: &f}}})
		if err == nil {
			t.Fatalf("%s: started", name)
		}
	}
}

func TestUnixListenerJoin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "switchyard.sock")
	n := startNode(t, func(c *Config) {
		c.Listeners = []Listener{{Network: "unix", Address: sock}, {Address: "127.0.0.1:0"}}
	})
	if u := n.URLs(0); len(u) != 1 || !strings.HasPrefix(u[0], "unix:"+sock) {
		t.Fatalf("URLs %v", u)
	}
	if !strings.HasPrefix(n.WebSocketURL(), "ws://127.0.0.1:") {
		t.Fatalf("WebSocketURL %s: want the first TCP universal listener", n.WebSocketURL())
	}
	for _, ser := range sers {
		s, err := client.Connect(ctxT(t), client.Config{URL: "rs+unix://" + sock, Realm: "realm1", Serializer: ser})
		if err != nil {
			t.Fatalf("%v: %v", ser, err)
		}
		s.Close()
	}
}
