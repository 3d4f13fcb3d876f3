package proxy

import (
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
