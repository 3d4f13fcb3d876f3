package proxy

import (
	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/codec"
	"log/slog"
	"testing"

	"github.com/switchyard-wamp/switchyard/link"
)

// BenchmarkRouterFor: placing a new session reads the router set with one atomic load
// and allocates nothing (the set is swapped whole by SetRouters).
func BenchmarkRouterFor(b *testing.B) {
	ls, err := NewLinks(LinksConfig{Link: link.Config{Node: "p", Role: "proxy", Secret: []byte("bench secret 0123456789")},
		Routers: []RouterAddr{{Name: "r1", Addr: "127.0.0.1:1"}, {Name: "r2", Addr: "127.0.0.1:2"}, {Name: "r3", Addr: "127.0.0.1:3"}},
		Slots:   4096, SpreadOf: func(string, string) int { return 1 }})
	if err != nil {
		b.Fatal(err)
	}
	defer ls.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		set := ls.set.Load()
		_ = ls.routerFor(set, "realm1", "anonymous", uint64(i))
	}
}

// countPeer is a client connection that counts what it is sent: the benchmark measures
// the proxy's dispatch of a router's frame, not a socket.
type countPeer struct{ n int }

func (p *countPeer) Serializer() codec.Serializer { return codec.JSON }
func (p *countPeer) Send([]byte) error            { p.n++; return nil }
func (p *countPeer) Close()                       {}

// BenchmarkOnFrameTargets: one EVENT frame from a router for ten sessions on this proxy
// (the multi-target frame of a fan-out): one session lookup and one Send per target, no
// allocation.
func BenchmarkOnFrameTargets(b *testing.B) {
	ls, err := NewLinks(LinksConfig{Link: link.Config{Node: "p", Role: "proxy", Secret: []byte("bench secret 0123456789")},
		Routers: []RouterAddr{{Name: "r1", Addr: "127.0.0.1:1"}}, Slots: 64,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer ls.Close()
	peer := &countPeer{}
	targets := make([]uint64, 10)
	for i := range targets {
		id := uint64(1000 + i)
		targets[i] = id
		ls.sessions.Store(id, &RemoteSession{ID: id, conn: peer})
	}
	f := &link.Frame{Kind: link.Kind(wire.Msg), Targets: targets, Payload: []byte(`[36,1,2,{},["x"]]`)}
	b.ReportAllocs()
	for b.Loop() {
		ls.OnFrame(nil, f)
	}
	if peer.n != b.N*len(targets) {
		b.Fatalf("%d sends, want %d", peer.n, b.N*len(targets))
	}
}
