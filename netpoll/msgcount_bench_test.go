package netpoll

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// BenchmarkConnSendEvent: Send of a real MessagePack EVENT (the fan-out message) plus
// the loop's drain every 64 messages: what the per-type counters cost on the send path.
// Must be 0 allocs/op.
func BenchmarkConnSendEvent(b *testing.B) {
	c := benchConn(b, transportWebSocket, false)
	m := codec.Message{Type: codec.EVENT, Subscription: 7, Publication: 123456789}
	msg, err := codec.For(codec.MsgPack).Append(nil, &m)
	if err != nil {
		b.Fatal(err)
	}
	warmUp(b, c, msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; b.Loop(); i++ {
		if err := c.Send(msg); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			c.drain()
		}
	}
	c.drain()
}

// TestMessageCounts sends WAMP messages of two types over real RawSocket connections
// in two serializers; the echo handler sends each back. MessageCounts must count each
// message once in and once out, under its serializer and type.
func TestMessageCounts(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	sent := map[codec.Serializer]map[codec.MessageType]int{
		codec.JSON:    {codec.PUBLISH: 3, codec.CALL: 1},
		codec.MsgPack: {codec.PUBLISH: 2, codec.CALL: 4},
	}
	for ser, types := range sent {
		c := dialRS(t, s.RawSocketAddr())
		c.handshake(t, 15, byte(ser))
		h.waitOpen(t)
		for typ, n := range types {
			m := codec.Message{Type: typ, Request: 1, URI: []byte("com.example.x"), Dict: emptyDict(ser)}
			b, err := codec.For(ser).Append(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			for range n {
				c.writeFrame(t, 0, b)
				if _, p := c.readFrame(t); len(p) != len(b) {
					t.Fatalf("echo of %d bytes, sent %d", len(p), len(b))
				}
			}
		}
	}
	mc := s.MessageCounts()
	for ser, types := range sent {
		for typ, n := range types {
			slot := codec.TypeSlot(typ)
			if got := mc.In[ser][slot]; got != uint64(n) {
				t.Errorf("in %s %s = %d, want %d", ser, typ, got, n)
			}
			if got := mc.Out[ser][slot]; got != uint64(n) {
				t.Errorf("out %s %s = %d, want %d", ser, typ, got, n)
			}
		}
	}
	if mc.In[codec.CBOR][codec.TypeSlot(codec.PUBLISH)] != 0 {
		t.Error("CBOR counted without CBOR traffic")
	}
}

func emptyDict(ser codec.Serializer) codec.Raw {
	switch ser {
	case codec.JSON:
		return codec.Raw("{}")
	case codec.MsgPack:
		return codec.Raw{0x80}
	}
	return codec.Raw{0xa0}
}

// BenchmarkFanOutSend: one EVENT sent to each of 1000 conns, then each conn's queue
// drained, as a fan-out read batch does (without the write syscalls). The conns' and
// their buffers' memory no longer fits the core's caches, so this measures the cache
// lines a Send and a drain touch per conn (see the Conn struct's layout). ns/op is per
// conn. Must be 0 allocs/op.
func BenchmarkFanOutSend(b *testing.B) { benchFanOut(b, 1) }

// BenchmarkFanOutBacklog: 50 EVENTs sent to each of 1000 conns (publication by
// publication, as a read batch of 50 PUBLISHes does), then each conn's queue drained
// once. This is fan-out 1000's shape under load: a loop that reads a backlog sends
// about 50 events to every conn before its batch ends. ns/op is per event. Must be
// 0 allocs/op.
func BenchmarkFanOutBacklog(b *testing.B) { benchFanOut(b, 50) }

// benchFanOut sends depth EVENTs to each of 1000 conns, one round over the conns per
// event, then drains every conn; ns/op is per Send.
func benchFanOut(b *testing.B, depth int) {
	const n = 1000
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = benchConn(b, transportWebSocket, false)
	}
	m := codec.Message{Type: codec.EVENT, Subscription: 7, Publication: 123456789}
	msg, err := codec.For(codec.MsgPack).Append(nil, &m)
	if err != nil {
		b.Fatal(err)
	}
	cycle := func() {
		for range depth {
			for _, c := range conns {
				if err := c.Send(msg); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, c := range conns {
			c.drain()
		}
	}
	cycle() // fill the pools
	cycle()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	i, d := 0, 0
	for b.Loop() {
		if err := conns[i].Send(msg); err != nil {
			b.Fatal(err)
		}
		if i++; i == n {
			i = 0
			if d++; d == depth {
				d = 0
				for _, c := range conns {
					c.drain()
				}
			}
		}
	}
	for _, c := range conns {
		c.drain()
	}
}
