package engine

import (
	"sync"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// memPeer is an in-memory Peer: it keeps copies of what the engine sends.
type memPeer struct {
	ser    codec.Serializer
	mu     sync.Mutex
	msgs   [][]byte
	closed bool
}

func (p *memPeer) Serializer() codec.Serializer { return p.ser }
func (p *memPeer) Send(b []byte) error {
	p.mu.Lock()
	p.msgs = append(p.msgs, append([]byte(nil), b...))
	p.mu.Unlock()
	return nil
}
func (p *memPeer) Close() { p.mu.Lock(); p.closed = true; p.mu.Unlock() }

// take decodes and removes every message received so far.
func (p *memPeer) take(t *testing.T) []codec.Message {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]codec.Message, len(p.msgs))
	for i, b := range p.msgs {
		if err := codec.For(p.ser).Decode(b, &out[i]); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
	}
	p.msgs = nil
	return out
}

func (p *memPeer) one(t *testing.T, typ codec.MessageType) codec.Message {
	t.Helper()
	ms := p.take(t)
	if len(ms) != 1 || ms[0].Type != typ {
		t.Fatalf("want one %s, got %d messages: %+v", typ, len(ms), ms)
	}
	return ms[0]
}

func join(t testing.TB, rl *Realm, ser codec.Serializer) (*Session, *memPeer) {
	p := &memPeer{ser: ser}
	return rl.Join(p, AuthInfo{AuthID: "a", AuthRole: "anonymous", AuthMethod: "anonymous", AuthProvider: "static"}), p
}

func raw(t testing.TB, ser codec.Serializer, v any) codec.Raw {
	b, err := codec.AppendValue(nil, ser, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func value(t testing.TB, ser codec.Serializer, r codec.Raw) any {
	v, err := codec.DecodeValue(ser, r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var serializers = []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}

func TestPubSubAcrossSerializers(t *testing.T) {
	for _, from := range serializers {
		for _, to := range serializers {
			t.Run(from.String()+"-"+to.String(), func(t *testing.T) {
				rl := NewRouter(nil).AddRealm("realm1")
				pub, pp := join(t, rl, from)
				sub, sp := join(t, rl, to)
				sub.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 7, URI: []byte("com.example.topic")})
				subd := sp.one(t, codec.SUBSCRIBED)
				if subd.Request != 7 || subd.Subscription == 0 {
					t.Fatalf("bad SUBSCRIBED %+v", subd)
				}
				m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("com.example.topic"),
					Args:   raw(t, from, []any{"hello", int64(-3), uint64(1) << 40, 1.5, []byte{0, 1, 2}}),
					Kwargs: raw(t, from, map[string]any{"k": "v"})}
				m.Details.Has, m.Details.Acknowledge = codec.KeyAcknowledge, true
				pub.Receive(&m)
				ack := pp.one(t, codec.PUBLISHED)
				ev := sp.one(t, codec.EVENT)
				if ev.Subscription != subd.Subscription || ev.Publication != ack.Publication || ack.Request != 1 {
					t.Fatalf("EVENT %+v does not match SUBSCRIBED %+v / PUBLISHED %+v", ev, subd, ack)
				}
				args := value(t, to, ev.Args).([]any)
				if args[0] != "hello" || args[1] != int64(-3) || args[2] != uint64(1)<<40 || args[3] != 1.5 || string(args[4].([]byte)) != "\x00\x01\x02" {
					t.Fatalf("args did not survive %s->%s: %#v", from, to, args)
				}
				if kw := value(t, to, ev.Kwargs).(map[string]any); kw["k"] != "v" {
					t.Fatalf("kwargs %#v", kw)
				}
			})
		}
	}
}

func TestPublisherExclusion(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	s, p := join(t, rl, codec.JSON)
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	p.one(t, codec.SUBSCRIBED)
	s.Receive(&codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("t")})
	if ms := p.take(t); len(ms) != 0 {
		t.Fatalf("publisher got its own event by default: %+v", ms)
	}
	m := codec.Message{Type: codec.PUBLISH, Request: 3, URI: []byte("t")}
	m.Details.Has, m.Details.ExcludeMe = codec.KeyExcludeMe, false
	s.Receive(&m)
	p.one(t, codec.EVENT)
}

func TestSubscribeTwiceSameID(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	s, p := join(t, rl, codec.JSON)
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	a := p.one(t, codec.SUBSCRIBED)
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 2, URI: []byte("t")})
	b := p.one(t, codec.SUBSCRIBED)
	if a.Subscription != b.Subscription {
		t.Fatalf("second SUBSCRIBE got a new id %d != %d", b.Subscription, a.Subscription)
	}
	s.Receive(&codec.Message{Type: codec.UNSUBSCRIBE, Request: 3, Subscription: a.Subscription})
	p.one(t, codec.UNSUBSCRIBED)
	s.Receive(&codec.Message{Type: codec.UNSUBSCRIBE, Request: 4, Subscription: a.Subscription})
	if e := p.one(t, codec.ERROR); string(e.URI) != ErrNoSuchSubscription || e.ErrType != codec.UNSUBSCRIBE || e.Request != 4 {
		t.Fatalf("bad ERROR %+v", e)
	}
	if rl.broker.subs.Len() != 0 {
		t.Fatalf("subscription not deleted")
	}
}

func TestRPCAcrossSerializers(t *testing.T) {
	for _, from := range serializers {
		for _, to := range serializers {
			t.Run(from.String()+"-"+to.String(), func(t *testing.T) {
				rl := NewRouter(nil).AddRealm("realm1")
				caller, cp := join(t, rl, from)
				callee, ep := join(t, rl, to)
				callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.add")})
				reg := ep.one(t, codec.REGISTERED)
				caller.Receive(&codec.Message{Type: codec.CALL, Request: 9, URI: []byte("com.add"), Args: raw(t, from, []any{2, 3})})
				inv := ep.one(t, codec.INVOCATION)
				if inv.Registration != reg.Registration {
					t.Fatalf("INVOCATION %+v for registration %d", inv, reg.Registration)
				}
				args := value(t, to, inv.Args).([]any)
				if args[0] != uint64(2) || args[1] != uint64(3) {
					t.Fatalf("invocation args %#v", args)
				}
				callee.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request, Args: raw(t, to, []any{5})})
				res := cp.one(t, codec.RESULT)
				if res.Request != 9 || value(t, from, res.Args).([]any)[0] != uint64(5) {
					t.Fatalf("RESULT %+v", res)
				}
				// An application error travels back with its URI and payload.
				caller.Receive(&codec.Message{Type: codec.CALL, Request: 10, URI: []byte("com.add")})
				inv = ep.one(t, codec.INVOCATION)
				callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request,
					URI: []byte("com.error.bad"), Args: raw(t, to, []any{"nope"})})
				e := cp.one(t, codec.ERROR)
				if e.ErrType != codec.CALL || e.Request != 10 || string(e.URI) != "com.error.bad" || value(t, from, e.Args).([]any)[0] != "nope" {
					t.Fatalf("ERROR %+v", e)
				}
			})
		}
	}
}

func TestDealerErrors(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	a, ap := join(t, rl, codec.JSON)
	b, bp := join(t, rl, codec.JSON)
	a.Receive(&codec.Message{Type: codec.CALL, Request: 1, URI: []byte("nothing.here")})
	if e := ap.one(t, codec.ERROR); string(e.URI) != ErrNoSuchProcedure {
		t.Fatalf("%+v", e)
	}
	a.Receive(&codec.Message{Type: codec.REGISTER, Request: 2, URI: []byte("p")})
	reg := ap.one(t, codec.REGISTERED)
	b.Receive(&codec.Message{Type: codec.REGISTER, Request: 3, URI: []byte("p")})
	if e := bp.one(t, codec.ERROR); string(e.URI) != ErrProcedureAlreadyExists {
		t.Fatalf("%+v", e)
	}
	b.Receive(&codec.Message{Type: codec.UNREGISTER, Request: 4, Registration: reg.Registration})
	if e := bp.one(t, codec.ERROR); string(e.URI) != ErrNoSuchRegistration {
		t.Fatalf("unregister of another session's registration: %+v", e)
	}
	a.Receive(&codec.Message{Type: codec.REGISTER, Request: 5, URI: []byte("bad..uri")})
	if e := ap.one(t, codec.ERROR); string(e.URI) != ErrInvalidURI {
		t.Fatalf("%+v", e)
	}
	// Callee disappears mid-call: the caller gets wamp.error.canceled, never a hang.
	b.Receive(&codec.Message{Type: codec.CALL, Request: 6, URI: []byte("p")})
	ap.one(t, codec.INVOCATION)
	a.Leave()
	if e := bp.one(t, codec.ERROR); string(e.URI) != ErrCanceled || e.Request != 6 {
		t.Fatalf("%+v", e)
	}
	b.Receive(&codec.Message{Type: codec.CALL, Request: 7, URI: []byte("p")})
	if e := bp.one(t, codec.ERROR); string(e.URI) != ErrNoSuchProcedure {
		t.Fatalf("registration survived its callee: %+v", e)
	}
}

func TestGoodbyeAndProtocolViolation(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	s, p := join(t, rl, codec.JSON)
	if s.Receive(&codec.Message{Type: codec.GOODBYE, URI: []byte(CloseRealm)}) {
		t.Fatal("session still open after GOODBYE")
	}
	if g := p.one(t, codec.GOODBYE); string(g.URI) != CloseGoodbyeAndOut || !p.closed {
		t.Fatalf("%+v closed=%v", g, p.closed)
	}
	s2, p2 := join(t, rl, codec.JSON)
	if s2.Receive(&codec.Message{Type: codec.WELCOME, Session: 1}) {
		t.Fatal("WELCOME from a client accepted")
	}
	if a := p2.one(t, codec.ABORT); string(a.URI) != ErrProtocolViolation || !p2.closed {
		t.Fatalf("%+v", a)
	}
	if rl.SessionCount() != 0 {
		t.Fatalf("%d sessions left", rl.SessionCount())
	}
}

func TestShutdownSaysGoodbye(t *testing.T) {
	r := NewRouter(nil)
	rl := r.AddRealm("realm1")
	s, p := join(t, rl, codec.MsgPack)
	r.Shutdown(CloseSystemShutdown)
	if g := p.one(t, codec.GOODBYE); string(g.URI) != CloseSystemShutdown {
		t.Fatalf("%+v", g)
	}
	if s.Receive(&codec.Message{Type: codec.GOODBYE, URI: []byte(CloseGoodbyeAndOut)}) || !p.closed {
		t.Fatal("client's GOODBYE reply did not close the session")
	}
}

func TestConcurrentSubscribePublishLeave(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	pub, _ := join(t, rl, codec.JSON)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				s, _ := join(t, rl, codec.CBOR)
				s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
				s.Receive(&codec.Message{Type: codec.REGISTER, Request: 2, URI: []byte("p")})
				s.Leave()
			}
		}()
	}
	for j := 0; j < 2000; j++ {
		pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: uint64(j + 1), URI: []byte("t")})
		pub.Receive(&codec.Message{Type: codec.CALL, Request: uint64(j + 1), URI: []byte("p")})
	}
	wg.Wait()
	if rl.broker.subs.Len() != 0 || rl.dealer.regs.Len() != 0 || rl.SessionCount() != 1 {
		t.Fatalf("leftovers: subs=%d regs=%d sessions=%d", rl.broker.subs.Len(), rl.dealer.regs.Len(), rl.SessionCount())
	}
}

func TestValidURI(t *testing.T) {
	for u, want := range map[string]bool{"a": true, "com.example.x": true, "": false, "a..b": false,
		".a": false, "a.": false, "a b": false, "a#b": false} {
		if validURI([]byte(u), false) != want {
			t.Errorf("validURI(%q) != %v", u, want)
		}
	}
	if !validURI([]byte("a..b"), true) {
		t.Error("wildcard pattern rejected")
	}
}
