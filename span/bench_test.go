package span

import (
	"sync/atomic"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// countPeer counts what it gets and signals every message on ch.
type countPeer struct {
	ser codec.Serializer
	n   atomic.Int64
	ch  chan struct{}
}

func (p *countPeer) Serializer() codec.Serializer { return p.ser }
func (p *countPeer) Close()                       {}
func (p *countPeer) Send([]byte) error {
	p.n.Add(1)
	if p.ch != nil {
		p.ch <- struct{}{}
	}
	return nil
}

// BenchmarkCrossRouterPublish publishes on router a to one subscriber on router b
// through the loopback (one goroutine hop per message, a copy per Send), and waits for
// the last event.
func BenchmarkCrossRouterPublish(b *testing.B) {
	c := newCluster(b, "a", "b", "c")
	sub := &countPeer{ser: codec.JSON}
	s := c.realms["b"].Join(sub, engine.AuthInfo{AuthRole: "anonymous"})
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.example.topic")})
	c.lb.settle(b)
	sub.n.Store(0)
	pub := c.realms["a"].Join(&countPeer{ser: codec.JSON}, engine.AuthInfo{AuthRole: "anonymous"})
	m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("com.example.topic"),
		Args: raw(b, codec.JSON, []any{"0123456789abcdef0123456789abcdef", int64(-42), 3.25, "ts"})}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pub.Receive(&m)
	}
	c.lb.settle(b)
	b.StopTimer()
	if got := sub.n.Load(); got != int64(b.N) {
		b.Fatalf("%d events for %d publications", got, b.N)
	}
}

// yieldPeer is a callee connection that answers every INVOCATION at once with YIELD.
type yieldPeer struct {
	s *engine.Session
	m codec.Message
}

func (p *yieldPeer) Serializer() codec.Serializer { return codec.JSON }
func (p *yieldPeer) Close()                       {}
func (p *yieldPeer) Send(b []byte) error {
	if err := codec.For(codec.JSON).Decode(b, &p.m); err != nil || p.m.Type != codec.INVOCATION {
		return err
	}
	p.s.Receive(&codec.Message{Type: codec.YIELD, Request: p.m.Request, Args: p.m.Args})
	return nil
}

// BenchmarkCrossRouterCall calls, from router a, a callee on router b through the
// loopback, one call at a time (round trip: CALL, INVOCATION across, YIELD across,
// RESULT).
func BenchmarkCrossRouterCall(b *testing.B) {
	c := newCluster(b, "a", "b", "c")
	yp := &yieldPeer{}
	yp.s = c.realms["b"].Join(yp, engine.AuthInfo{AuthRole: "anonymous"})
	got := make(chan struct{}, 1)
	caller := &countPeer{ser: codec.JSON}
	cs := c.realms["a"].Join(caller, engine.AuthInfo{AuthRole: "anonymous"})
	reg := &codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.example.echo")}
	yp.s.Receive(reg)
	c.lb.settle(b)
	caller.ch = got
	m := codec.Message{Type: codec.CALL, URI: []byte("com.example.echo"),
		Args: raw(b, codec.JSON, []any{"0123456789abcdef0123456789abcdef", int64(-42), 3.25, "ts"})}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Request = uint64(i + 1)
		cs.Receive(&m)
		<-got
	}
}
