package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// sinkPeer is an in-memory connection for benchmarks: Send copies the message into a
// reused buffer, as a real connection copies into its outbound queue.
type sinkPeer struct {
	ser  codec.Serializer
	last []byte
	n    int
}

func (p *sinkPeer) Serializer() codec.Serializer { return p.ser }
func (p *sinkPeer) Send(b []byte) error          { p.last = append(p.last[:0], b...); p.n++; return nil }
func (p *sinkPeer) Close()                       {}

func joinSink(rl *Realm, ser codec.Serializer) (*Session, *sinkPeer) {
	p := &sinkPeer{ser: ser}
	return rl.Join(p, AuthInfo{AuthRole: "anonymous"}), p
}

// payload64 is a PUBLISH/CALL payload of about 64 bytes in ser.
func payload64(b *testing.B, ser codec.Serializer) codec.Raw {
	return raw(b, ser, []any{"0123456789abcdef0123456789abcdef", int64(-42), 3.25, "ts"})
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("json/subs=%d", n), func(b *testing.B) {
			benchPublish(b, n, func(int) codec.Serializer { return codec.JSON })
		})
	}
	b.Run("mixed/subs=100", func(b *testing.B) {
		benchPublish(b, 100, func(i int) codec.Serializer { return serializers[i%3] })
	})
}

func benchPublish(b *testing.B, n int, serOf func(int) codec.Serializer) {
	rl := NewRouter(nil).AddRealm("realm1")
	var sinks []*sinkPeer
	for i := 0; i < n; i++ {
		s, p := joinSink(rl, serOf(i))
		s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.example.topic")})
		sinks = append(sinks, p)
	}
	pub, _ := joinSink(rl, codec.JSON)
	m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("com.example.topic"), Args: payload64(b, codec.JSON)}
	pub.Receive(&m) // warm the scratch pool
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pub.Receive(&m)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
	if sinks[0].n < b.N {
		b.Fatalf("subscriber got %d events for %d publishes", sinks[0].n, b.N)
	}
}

func BenchmarkTableLookup(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("exact/subs=%d", n), func(b *testing.B) {
			rl := NewRouter(nil).AddRealm("realm1")
			s, _ := joinSink(rl, codec.JSON)
			topics := make([][]byte, n)
			for i := range topics {
				topics[i] = []byte(fmt.Sprintf("com.example.sensor.%d.value", i))
				s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: uint64(i + 1), URI: topics[i]})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok := rl.broker.subs.Get(topics[i%n]); !ok {
					b.Fatal("missing")
				}
			}
		})
	}
}

// BenchmarkCall is one CALL -> INVOCATION -> YIELD -> RESULT round trip through the dealer.
func BenchmarkCall(b *testing.B) {
	for _, pair := range [][2]codec.Serializer{{codec.JSON, codec.JSON}, {codec.JSON, codec.MsgPack}} {
		b.Run(pair[0].String()+"-"+pair[1].String(), func(b *testing.B) {
			rl := NewRouter(nil).AddRealm("realm1")
			callee, ep := joinSink(rl, pair[1])
			callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.example.add")})
			caller, cp := joinSink(rl, pair[0])
			call := codec.Message{Type: codec.CALL, Request: 1, URI: []byte("com.example.add"), Args: payload64(b, pair[0])}
			yield := codec.Message{Type: codec.YIELD, Args: payload64(b, pair[1])}
			var inv codec.Message
			dec := codec.For(pair[1])
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				caller.Receive(&call)
				if err := dec.Decode(ep.last, &inv); err != nil {
					b.Fatal(err)
				}
				yield.Request = inv.Request
				callee.Receive(&yield)
			}
			b.StopTimer()
			if cp.n != b.N {
				b.Fatalf("%d results for %d calls", cp.n, b.N)
			}
		})
	}
}

// BenchmarkProgressiveResult is one progressive YIELD -> progressive RESULT of an open call.
func BenchmarkProgressiveResult(b *testing.B) {
	rl := NewRouter(nil).AddRealm("realm1")
	callee, ep := joinSink(rl, codec.JSON)
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.example.stream")})
	caller, cp := joinSink(rl, codec.JSON)
	call := codec.Message{Type: codec.CALL, Request: 1, URI: []byte("com.example.stream")}
	call.Details.Has, call.Details.ReceiveProgress = codec.KeyReceiveProgress, true
	caller.Receive(&call)
	var inv codec.Message
	if err := codec.For(codec.JSON).Decode(ep.last, &inv); err != nil {
		b.Fatal(err)
	}
	y := codec.Message{Type: codec.YIELD, Request: inv.Request, Args: payload64(b, codec.JSON)}
	y.Details.Has, y.Details.Progress = codec.KeyProgress, true
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		callee.Receive(&y)
	}
	b.StopTimer()
	if cp.n != b.N {
		b.Fatalf("%d progressive results for %d yields", cp.n, b.N)
	}
}

// BenchmarkSharedRegistrationPick is the callee choice of a shared registration with 16
// callees (per invocation policy): the part of CALL that shared registrations add. hash
// is keyed by the first positional argument; hash-rkey by CALL.Options.rkey.
func BenchmarkSharedRegistrationPick(b *testing.B) {
	for _, policy := range []string{"roundrobin", "random", "first", "last", "hash", "hash-rkey"} {
		b.Run(policy, func(b *testing.B) {
			rl := NewRouter(nil).AddRealm("realm1")
			for i := 0; i < 16; i++ {
				s, _ := joinSink(rl, codec.JSON)
				m := codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.example.svc")}
				m.Details.Has, m.Details.Invoke = codec.KeyInvoke, []byte(strings.TrimSuffix(policy, "-rkey"))
				s.Receive(&m)
			}
			call := codec.Message{Type: codec.CALL, Request: 1, URI: []byte("com.example.svc"),
				Args: payload64(b, codec.JSON)}
			if policy == "hash-rkey" {
				call.Details.Has, call.Details.RKey = codec.KeyRKey, []byte("user-1234")
			}
			reg, ok := rl.dealer.lookup([]byte("com.example.svc"))
			if !ok || len(*reg.callees.Load()) != 16 {
				b.Fatal("shared registration not set up")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if reg.pick(&call, codec.JSON) == nil {
					b.Fatal("no callee")
				}
			}
		})
	}
}

// BenchmarkHistoryPublish is PUBLISH to one subscriber in a realm with event history
// rules (an exact and a prefix rule): other-topic publishes to a topic no rule names
// (the cost every publish pays once a realm has rules; 0 allocs), history-topic to a
// topic with a 100-event history (one copy of the event per publish).
func BenchmarkHistoryPublish(b *testing.B) {
	for _, tc := range []struct{ name, topic string }{
		{"other-topic", "com.example.topic"},
		{"history-topic", "com.log.auth"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rl := NewRouter(nil).AddRealm("realm1")
			if err := rl.SetStore(StoreConfig{History: []HistoryRule{
				{URI: "com.log.auth", Limit: 100}, {URI: "com.audit.", Match: "prefix", Limit: 100}}}); err != nil {
				b.Fatal(err)
			}
			s, sink := joinSink(rl, codec.JSON)
			s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte(tc.topic)})
			pub, _ := joinSink(rl, codec.JSON)
			m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte(tc.topic), Args: payload64(b, codec.JSON)}
			pub.Receive(&m)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pub.Receive(&m)
			}
			b.StopTimer()
			if sink.n < b.N {
				b.Fatalf("subscriber got %d events for %d publishes", sink.n, b.N)
			}
		})
	}
}
