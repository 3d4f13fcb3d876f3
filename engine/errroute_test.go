package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// untranscodable is a MessagePack Arguments list holding a dict with an integer key
// ([{1: 2}]): valid MessagePack that JSON cannot carry, so Transcode to JSON fails.
var untranscodable = codec.Raw{0x91, 0x81, 0x01, 0x02}

// lockedLog is a log sink tests read while the router writes.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func errorOf(t *testing.T, p *memPeer, typ codec.MessageType, req uint64, uri string) codec.Message {
	t.Helper()
	e := p.one(t, codec.ERROR)
	if e.ErrType != typ || e.Request != req || string(e.URI) != uri {
		t.Fatalf("ERROR %s request %d %q, want %s request %d %q (%+v)", e.ErrType, e.Request, e.URI, typ, req, uri, e)
	}
	return e
}

// TestCallErrorRouting: what a caller gets back when its CALL or the callee's answer
// cannot be routed, and that the callee hears nothing of a CALL that never reached it.
func TestCallErrorRouting(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	caller, cp := join(t, rl, codec.JSON)
	callee, ep := join(t, rl, codec.MsgPack)
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.p")})
	ep.one(t, codec.REGISTERED)
	invoke := func(req uint64) codec.Message {
		t.Helper()
		caller.Receive(&codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.p")})
		return ep.one(t, codec.INVOCATION)
	}

	t.Run("invalid procedure URI", func(t *testing.T) {
		for i, uri := range []string{"com..p", "com.p.", "com p", ""} {
			req := uint64(100 + i)
			caller.Receive(&codec.Message{Type: codec.CALL, Request: req, URI: []byte(uri)})
			errorOf(t, cp, codec.CALL, req, ErrInvalidURI)
		}
		if ms := ep.take(t); len(ms) != 0 {
			t.Fatalf("the callee got %+v", ms)
		}
	})

	t.Run("invalid error URI from the callee", func(t *testing.T) {
		inv := invoke(200)
		callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request, URI: []byte("not a uri")})
		errorOf(t, cp, codec.CALL, 200, ErrInvalidURI)
		// The call is answered: a second answer for it is dropped.
		callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request, URI: []byte("com.err")})
		callee.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
		if ms := cp.take(t); len(ms) != 0 {
			t.Fatalf("a second answer reached the caller: %+v", ms)
		}
	})

	t.Run("valid error URI from the callee", func(t *testing.T) {
		inv := invoke(250)
		callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request, URI: []byte("com.app.failed")})
		errorOf(t, cp, codec.CALL, 250, "com.app.failed")
	})

	t.Run("result that cannot be transcoded", func(t *testing.T) {
		inv := invoke(300)
		callee.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request, Args: untranscodable})
		e := errorOf(t, cp, codec.CALL, 300, ErrInvalidArgument)
		if !strings.Contains(string(value(t, codec.JSON, e.Args).([]any)[0].(string)), "result cannot be transcoded") {
			t.Fatalf("ERROR args %s", e.Args)
		}
	})

	t.Run("error payload that cannot be transcoded", func(t *testing.T) {
		inv := invoke(400)
		callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request,
			URI: []byte("com.app.failed"), Args: untranscodable})
		errorOf(t, cp, codec.CALL, 400, ErrInvalidArgument)
	})

	t.Run("answer for an unknown invocation", func(t *testing.T) {
		callee.Receive(&codec.Message{Type: codec.YIELD, Request: 999})
		callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: 998, URI: []byte("com.err")})
		if ms := cp.take(t); len(ms) != 0 {
			t.Fatalf("the caller got %+v", ms)
		}
	})

	t.Run("callee gone", func(t *testing.T) {
		invoke(500)
		callee.Leave()
		errorOf(t, cp, codec.CALL, 500, ErrCanceled)
		caller.Receive(&codec.Message{Type: codec.CALL, Request: 501, URI: []byte("com.p")})
		errorOf(t, cp, codec.CALL, 501, ErrNoSuchProcedure)
	})
}

// TestCallArgumentsThatCannotReachTheCallee: a CALL whose arguments cannot be transcoded
// for the callee's serializer is answered (it does not hang) and the callee is not
// invoked, nor left with a pending entry.
func TestCallArgumentsThatCannotReachTheCallee(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	caller, cp := join(t, rl, codec.MsgPack)
	callee, ep := join(t, rl, codec.JSON)
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.p")})
	ep.one(t, codec.REGISTERED)
	caller.Receive(&codec.Message{Type: codec.CALL, Request: 7, URI: []byte("com.p"), Args: untranscodable})
	// The caller's arguments are at fault, not the callee's connection.
	e := errorOf(t, cp, codec.CALL, 7, ErrInvalidArgument)
	if msg := value(t, codec.MsgPack, e.Args).([]any)[0].(string); !strings.Contains(msg, "cannot be transcoded for the callee") {
		t.Fatalf("ERROR text %q", msg)
	}
	if ms := ep.take(t); len(ms) != 0 {
		t.Fatalf("the callee got %+v", ms)
	}
	if n := callee.pending.count(); n != 0 {
		t.Fatalf("%d calls pending at the callee", n)
	}
}

// TestPublishErrorRouting: an invalid topic is refused (with ERROR only when the
// publisher asked for an acknowledgement) and reaches no subscriber; a payload that
// cannot be transcoded for one subscriber's serializer skips that subscriber only, with
// a log line, and the others still get the event.
func TestPublishErrorRouting(t *testing.T) {
	logs := &lockedLog{}
	rl := NewRouter(slog.New(slog.NewTextHandler(logs, nil))).AddRealm("realm1")
	pub, pp := join(t, rl, codec.MsgPack)
	subJSON, jp := join(t, rl, codec.JSON)
	subMP, mp := join(t, rl, codec.MsgPack)
	subCBOR, cp := join(t, rl, codec.CBOR)
	for i, s := range []*Session{subJSON, subMP, subCBOR} {
		s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: uint64(i + 1), URI: []byte("com"),
			Details: codec.Details{Has: codec.KeyMatch, Match: []byte("prefix")}})
		// a prefix subscription: an invalid topic under it must still reach nobody
		s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: uint64(i + 10), URI: []byte("com.t")})
	}
	for _, p := range []*memPeer{jp, mp, cp} {
		if ms := p.take(t); len(ms) != 2 || ms[0].Type != codec.SUBSCRIBED || ms[1].Type != codec.SUBSCRIBED {
			t.Fatalf("SUBSCRIBE: %+v", ms)
		}
	}

	ack := func(req uint64, uri string, args codec.Raw) {
		d := codec.Details{Has: codec.KeyAcknowledge, Acknowledge: true}
		pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: req, URI: []byte(uri), Details: d, Args: args})
	}
	noEvents := func(t *testing.T, ps ...*memPeer) {
		t.Helper()
		for _, p := range ps {
			if ms := p.take(t); len(ms) != 0 {
				t.Fatalf("a subscriber got %+v", ms)
			}
		}
	}

	t.Run("invalid topic, acknowledged", func(t *testing.T) {
		ack(1, "com..t", nil)
		errorOf(t, pp, codec.PUBLISH, 1, ErrInvalidURI)
		noEvents(t, jp, mp, cp)
	})
	t.Run("invalid topic, not acknowledged", func(t *testing.T) {
		pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("com.t.")})
		if ms := pp.take(t); len(ms) != 0 {
			t.Fatalf("the publisher got %+v", ms)
		}
		noEvents(t, jp, mp, cp)
	})
	t.Run("invalid subscription topic", func(t *testing.T) {
		subJSON.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 50, URI: []byte("com..x")})
		errorOf(t, jp, codec.SUBSCRIBE, 50, ErrInvalidURI)
	})
	t.Run("payload a subscriber's serializer cannot carry", func(t *testing.T) {
		ack(3, "com.t", untranscodable)
		if m := pp.one(t, codec.PUBLISHED); m.Request != 3 {
			t.Fatalf("PUBLISHED %+v", m)
		}
		// The MessagePack subscriber gets the event of each of its two subscriptions.
		if ms := mp.take(t); len(ms) != 2 || ms[0].Type != codec.EVENT || ms[1].Type != codec.EVENT {
			t.Fatalf("msgpack subscriber: %+v", ms)
		}
		noEvents(t, jp, cp)
		l := logs.String()
		for _, want := range []string{"publish: payload transcode failed", "to=json", "to=cbor", "topic=com.t"} {
			if !strings.Contains(l, want) {
				t.Fatalf("log lacks %q:\n%s", want, l)
			}
		}
	})
}
