package loadgen

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestTLS runs each load path over wss:// and rss:// with the --tls-* options.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.MustCA("loadgen test CA")
	certFile, keyFile, caFile, err := ca.ServerFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	ccert, ckey, err := ca.MustClient("loadgen").WriteFiles(dir, "client")
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0",
			TLS: &node.TLSFiles{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	cfg, err := TLSConfig(caFile, false, ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig("", false, ccert, ""); err == nil {
		t.Fatal("--tls-cert without --tls-key accepted")
	}
	for _, tc := range []struct{ scenario, url string }{
		{"pubsub", n.WebSocketURL()}, {"rpc", n.RawSocketURL()}, {"connect", n.WebSocketURL()},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := Run(ctx, tc.scenario, Options{URLs: []string{tc.url}, TLS: cfg, Sessions: 20,
				Duration: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 || r.Delivered <= 0 {
				t.Fatalf("errors %d %q, delivered %d", r.Errors, r.ErrorSamples, r.Delivered)
			}
		})
	}
}
