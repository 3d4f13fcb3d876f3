package node

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestBindErrorNamesTheAddress: a listener whose port is taken fails Start with an
// error that names that listener's address (and not the free one's).
func TestBindErrorNamesTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, kind := range []string{KindUniversal, KindRawSocket} {
		cfg := Config{Listeners: []Listener{{Address: "127.0.0.1:0"}, {Address: addr, Kind: kind}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		n, err := Start(cfg)
		if err == nil {
			n.Stop(t.Context())
			t.Fatalf("%s on a busy port started", kind)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "in use") {
			t.Errorf("%s: error %q does not name %s", kind, err, addr)
		}
	}
}
