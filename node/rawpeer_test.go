package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// rawPeer is a WAMP client written out message by message over a real transport
// (client.Dial: WebSocket or RawSocket), for conformance tests that check the router's
// exact answers: which message, which ids, which details, which payload. It is not safe
// for concurrent use; use one goroutine per peer.
type rawPeer struct {
	t       *testing.T
	name    string
	tr      *client.Transport
	ser     codec.Serializer
	id      uint64
	welcome map[string]any
	req     uint64
	// in carries what the reader goroutine received. A read deadline on the transport
	// itself would be sticky (client.Transport keeps its first read error), so recv
	// waits on in instead and a peer stays usable after expectNothing.
	in chan received
}

// received is one message (or the decode error) from the reader goroutine.
type received struct {
	w   wire
	err error
}

// wire is one received message with its dicts and payload decoded to Go values.
type wire struct {
	codec.Message                // ids, type, URI (copied); raw parts are not kept
	URI           string         // the message's URI
	Details       map[string]any // Details / Options / Extra
	Args          []any
	Kwargs        map[string]any
}

// allFeatures is HELLO.Details.roles announcing every client feature the router reacts
// to (call canceling, progressive call invocations, revocation, ...).
func allFeatures() map[string]any {
	on := func(names ...string) map[string]any {
		f := map[string]any{}
		for _, n := range names {
			f[n] = true
		}
		return map[string]any{"features": f}
	}
	return map[string]any{
		"publisher":  on("publisher_exclusion", "publisher_identification", "subscriber_blackwhite_listing", "payload_passthru_mode"),
		"subscriber": on("pattern_based_subscription", "publisher_identification", "subscription_revocation", "payload_passthru_mode"),
		"caller":     on("call_canceling", "caller_identification", "progressive_call_results", "call_timeout", "progressive_call_invocations", "payload_passthru_mode"),
		"callee": on("call_canceling", "caller_identification", "progressive_call_results", "pattern_based_registration",
			"shared_registration", "registration_revocation", "progressive_call_invocations", "payload_passthru_mode"),
	}
}

// joinRaw dials url with ser and joins realm1 anonymously with every feature announced;
// extra is merged into HELLO.Details (e.g. authid). The peer is closed with the test.
func joinRaw(t *testing.T, name, url string, ser codec.Serializer, extra map[string]any) *rawPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr, err := client.Dial(ctx, url, ser)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	p := &rawPeer{t: t, name: name, tr: tr, ser: ser}
	t.Cleanup(func() { tr.Close() })
	details := map[string]any{"roles": allFeatures()}
	for k, v := range extra {
		details[k] = v
	}
	p.send(&codec.Message{Type: codec.HELLO, URI: []byte("realm1"), DictAny: details}, nil, nil)
	w := p.expect(codec.WELCOME)
	p.id, p.welcome = w.Session, w.Details
	return p
}

// next returns a fresh request id.
func (p *rawPeer) next() uint64 { p.req++; return p.req }

// send encodes m with options/details opts (DictAny), and args/kwargs as payload.
func (p *rawPeer) send(m *codec.Message, args []any, kwargs map[string]any) {
	p.t.Helper()
	var err error
	if args != nil {
		if m.Args, err = codec.AppendValue(nil, p.ser, args); err != nil {
			p.t.Fatal(err)
		}
	}
	if kwargs != nil {
		if m.Kwargs, err = codec.AppendValue(nil, p.ser, kwargs); err != nil {
			p.t.Fatal(err)
		}
	}
	if m.DictAny == nil && m.Type != codec.HELLO {
		m.DictAny = map[string]any{}
	}
	if err := p.tr.Send(m); err != nil {
		p.t.Fatalf("%s: send %v: %v", p.name, m.Type, err)
	}
}

// recv waits up to d for the next message; ok is false on timeout or once the
// transport has closed.
func (p *rawPeer) recv(d time.Duration) (w wire, ok bool) {
	p.t.Helper()
	p.start()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r, open := <-p.in:
		if !open {
			return wire{}, false
		}
		if r.err != nil {
			p.t.Fatalf("%s: %v", p.name, r.err)
		}
		return r.w, true
	case <-timer.C:
		return wire{}, false
	}
}

// start starts the reader goroutine once.
func (p *rawPeer) start() {
	if p.in == nil {
		p.in = make(chan received, 64)
		go p.read()
	}
}

// read decodes every message of p's transport onto p.in until the transport fails.
// It does not touch p.t: test failures belong to the test goroutine.
func (p *rawPeer) read() {
	defer close(p.in)
	for {
		var m codec.Message
		if _, err := p.tr.Recv(&m); err != nil {
			return
		}
		w, err := decodeWire(p.ser, &m)
		p.in <- received{w, err}
	}
}

// decodeWire copies m into a wire with its dicts and payload decoded.
func decodeWire(ser codec.Serializer, m *codec.Message) (w wire, err error) {
	w.Message = *m
	w.URI = string(m.URI)
	w.Message.URI, w.Message.Dict, w.Message.Args, w.Message.Kwargs = nil, nil, nil, nil
	w.Message.Details = codec.Details{} // aliases the transport's buffer
	if m.Dict != nil {
		if w.Details, err = codec.DecodeDict(ser, m.Dict); err != nil {
			return w, fmt.Errorf("details of %v: %w", m.Type, err)
		}
	}
	if m.Args != nil {
		v, err := codec.DecodeValue(ser, m.Args)
		if err != nil {
			return w, fmt.Errorf("args of %v: %w", m.Type, err)
		}
		w.Args, _ = v.([]any)
	}
	if m.Kwargs != nil {
		if w.Kwargs, err = codec.DecodeDict(ser, m.Kwargs); err != nil {
			return w, fmt.Errorf("kwargs of %v: %w", m.Type, err)
		}
	}
	return w, nil
}

// on makes p report to t (a subtest) until t ends, then to the test it reported to before.
func (p *rawPeer) on(t *testing.T) *rawPeer {
	old := p.t
	p.t = t
	t.Cleanup(func() { p.t = old })
	return p
}

// expect returns the next message, failing the test unless it is of type typ (within 3s).
func (p *rawPeer) expect(typ codec.MessageType) wire {
	p.t.Helper()
	w, ok := p.recv(3 * time.Second)
	if !ok {
		p.t.Fatalf("%s: want %v, got nothing", p.name, typ)
	}
	if w.Type != typ {
		p.t.Fatalf("%s: want %v, got %v %s %v %v", p.name, typ, w.Type, w.URI, w.Details, w.Args)
	}
	return w
}

// expectNothing fails the test if a message arrives within d.
func (p *rawPeer) expectNothing(d time.Duration) {
	p.t.Helper()
	if w, ok := p.recv(d); ok {
		p.t.Fatalf("%s: want nothing, got %v %s %v %v", p.name, w.Type, w.URI, w.Details, w.Args)
	}
}

// subscribe subscribes to topic with options and returns the subscription id.
func (p *rawPeer) subscribe(topic string, opts map[string]any) uint64 {
	p.t.Helper()
	req := p.next()
	p.send(&codec.Message{Type: codec.SUBSCRIBE, Request: req, URI: []byte(topic), DictAny: opts}, nil, nil)
	w := p.expect(codec.SUBSCRIBED)
	if w.Request != req {
		p.t.Fatalf("%s: SUBSCRIBED for request %d, want %d", p.name, w.Request, req)
	}
	return w.Subscription
}

// register registers procedure with options and returns the registration id.
func (p *rawPeer) register(procedure string, opts map[string]any) uint64 {
	p.t.Helper()
	req := p.next()
	p.send(&codec.Message{Type: codec.REGISTER, Request: req, URI: []byte(procedure), DictAny: opts}, nil, nil)
	w := p.expect(codec.REGISTERED)
	if w.Request != req {
		p.t.Fatalf("%s: REGISTERED for request %d, want %d", p.name, w.Request, req)
	}
	return w.Registration
}

// call sends CALL and returns its request id (the caller reads the answer).
func (p *rawPeer) call(procedure string, opts map[string]any, args []any, kwargs map[string]any) uint64 {
	p.t.Helper()
	req := p.next()
	p.send(&codec.Message{Type: codec.CALL, Request: req, URI: []byte(procedure), DictAny: opts}, args, kwargs)
	return req
}

// publish sends PUBLISH and returns its request id.
func (p *rawPeer) publish(topic string, opts map[string]any, args []any, kwargs map[string]any) uint64 {
	p.t.Helper()
	req := p.next()
	p.send(&codec.Message{Type: codec.PUBLISH, Request: req, URI: []byte(topic), DictAny: opts}, args, kwargs)
	return req
}

// TestRawPeer checks the helper itself against the router: a round trip of each kind.
func TestRawPeer(t *testing.T) {
	n := startNode(t, nil)
	a := joinRaw(t, "a", n.WebSocketURL(), codec.JSON, nil)
	b := joinRaw(t, "b", n.RawSocketURL(), codec.MsgPack, nil)
	sub := b.subscribe("com.t", nil)
	a.publish("com.t", nil, []any{"x"}, map[string]any{"k": 1})
	ev := b.expect(codec.EVENT)
	if ev.Subscription != sub || len(ev.Args) != 1 || ev.Args[0] != "x" || ev.Kwargs["k"] == nil {
		t.Fatalf("event %+v", ev)
	}
	b.register("com.p", nil)
	req := a.call("com.p", nil, []any{1}, nil)
	inv := b.expect(codec.INVOCATION)
	b.send(&codec.Message{Type: codec.YIELD, Request: inv.Request}, []any{"done"}, nil)
	if r := a.expect(codec.RESULT); r.Request != req || r.Args[0] != "done" {
		t.Fatalf("result %+v", r)
	}
	a.expectNothing(50 * time.Millisecond)
}
