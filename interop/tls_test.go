package interop

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestTLS: AutobahnJS and AutobahnPython join over wss:// (and Python over rss://) a
// node whose certificate comes from a test CA they are told to trust through
// NODE_EXTRA_CA_CERTS and SSL_CERT_FILE.
func TestTLS(t *testing.T) {
	js, py := clients()
	dir := t.TempDir()
	ca := testpki.MustCA("interop test CA")
	certFile, keyFile, err := ca.MustServer().WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteFile(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", caFile)
	t.Setenv("NODE_EXTRA_CA_CERTS", caFile)
	logs := &syncBuffer{}
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0",
			TLS: &node.TLSFiles{CertFile: certFile, KeyFile: keyFile}}},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
		if t.Failed() {
			_, _ = io.Copy(tbLog{t}, strings.NewReader(logs.String()))
		}
	})
	// The certificate names localhost; the listener is on 127.0.0.1 (also in the
	// certificate, but not every client checks IP addresses).
	host := func(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }
	rn := &routerNode{Node: n, log: logs, urls: map[string]string{
		"wss": host(n.WebSocketURL()),
		"rss": host(n.RawSocketURL()),
	}}
	t.Run("js", func(t *testing.T) {
		require(t, js)
		for _, ser := range []string{"json", "msgpack"} {
			t.Run("wss/"+ser, func(t *testing.T) { runSolo(t, rn, endpoint{c: js, transport: "wss", serializer: ser}) })
		}
	})
	t.Run("py", func(t *testing.T) {
		require(t, py)
		for _, e := range []endpoint{
			{c: py, transport: "wss", serializer: "cbor"},
			{c: py, transport: "wss", serializer: "json", framework: "twisted"},
			{c: py, transport: "rss", serializer: "msgpack"},
		} {
			t.Run(e.transport+"/"+e.serializer, func(t *testing.T) { runSolo(t, rn, e) })
		}
	})
}

type tbLog struct{ t *testing.T }

func (w tbLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
