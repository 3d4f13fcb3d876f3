package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// startNode runs a node on loopback port 0 for one test.
func startNode(t *testing.T, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{Listeners: []Listener{{Address: "127.0.0.1:0"}, {Address: "127.0.0.1:0", Kind: KindRawSocket}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		cfg.Logger = slog.Default()
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n
}

type endpoint struct {
	name    string
	url     string
	batched bool
}

func endpoints(n *Node) []endpoint {
	return []endpoint{
		{"websocket", n.WebSocketURL(), false},
		{"websocket-batched", n.WebSocketURL(), true},
		{"rawsocket-universal", n.RawSocketURL(), false},
		{"rawsocket-only", "rs://" + n.Server.RawSocketAddr().String(), false},
	}
}

var sers = []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}

// allSers is every serializer the build speaks (UBJSON and Flatbuffers too): the
// transport matrix runs them all; the conformance tests keep sers (one callee each).
var allSers = codec.Serializers()

func connect(t *testing.T, ep endpoint, ser codec.Serializer) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: ep.url, Realm: "realm1", Serializer: ser, Batched: ep.batched})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", ep.name, ser, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTransportSerializerMatrix runs pub/sub and RPC for every transport x serializer,
// with the peer on the next serializer so that every pair transcodes.
func TestTransportSerializerMatrix(t *testing.T) {
	n := startNode(t, nil)
	for _, ep := range endpoints(n) {
		for i, ser := range allSers {
			other := allSers[(i+1)%len(allSers)]
			if ep.batched && ser == codec.Flatbuffers {
				continue // Flatbuffers has no batched subprotocol
			}
			t.Run(ep.name+"/"+ser.String(), func(t *testing.T) {
				ctx := ctxT(t)
				a := connect(t, ep, ser)
				b := connect(t, endpoints(n)[0], other)
				if a.ID() == b.ID() || a.AuthRole() != "anonymous" {
					t.Fatalf("ids %d %d role %q", a.ID(), b.ID(), a.AuthRole())
				}
				topic := fmt.Sprintf("com.example.%s.%s", ep.name, ser)
				got := make(chan *client.Event, 4)
				if _, err := b.Subscribe(ctx, topic, func(e *client.Event) { got <- e }, nil); err != nil {
					t.Fatal(err)
				}
				args := []any{"héllo", int64(-5), uint64(1) << 50, 2.5, []byte{0, 255, 7}, true, nil,
					map[string]any{"nested": []any{uint64(1), "x"}}}
				if err := a.Publish(ctx, topic, args, map[string]any{"k": "v"}, client.Acknowledge()); err != nil {
					t.Fatal(err)
				}
				select {
				case e := <-got:
					checkArgs(t, e.Args, args)
					if e.Kwargs["k"] != "v" {
						t.Fatalf("kwargs %#v", e.Kwargs)
					}
				case <-ctx.Done():
					t.Fatal("no EVENT")
				}

				proc := topic + ".echo"
				if _, err := a.Register(ctx, proc, func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
					return &client.Result{Args: inv.Args, Kwargs: inv.Kwargs}, nil
				}, nil); err != nil {
					t.Fatal(err)
				}
				res, err := b.Call(ctx, proc, args, map[string]any{"n": uint64(3)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkArgs(t, res.Args, args)
				if res.Kwargs["n"] != uint64(3) {
					t.Fatalf("kwargs %#v", res.Kwargs)
				}
			})
		}
	}
}

func checkArgs(t *testing.T, got, want []any) {
	t.Helper()
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Fatalf("args changed in transit:\n got %#v\nwant %#v", got, want)
	}
}

func wampErr(t *testing.T, err error, uri string) {
	t.Helper()
	var we *client.Error
	if !errors.As(err, &we) || we.URI != uri {
		t.Fatalf("want %s, got %v", uri, err)
	}
}

func TestErrors(t *testing.T) {
	n := startNode(t, nil)
	ep := endpoints(n)[0]
	ctx := ctxT(t)
	_, err := client.Connect(ctx, client.Config{URL: ep.url, Realm: "no.such.realm"})
	wampErr(t, err, "wamp.error.no_such_realm")

	a := connect(t, ep, codec.JSON)
	b := connect(t, ep, codec.MsgPack)
	_, err = a.Call(ctx, "com.nothing", nil, nil, nil)
	wampErr(t, err, "wamp.error.no_such_procedure")
	h := func(context.Context, *client.Invocation) (*client.Result, error) {
		return nil, &client.Error{URI: "com.example.error.custom", Args: []any{"bad", uint64(7)}}
	}
	reg, err := a.Register(ctx, "com.p", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Register(ctx, "com.p", h, nil)
	wampErr(t, err, "wamp.error.procedure_already_exists")
	_, err = b.Call(ctx, "com.p", nil, nil, nil)
	wampErr(t, err, "com.example.error.custom")
	var we *client.Error
	errors.As(err, &we)
	if len(we.Args) != 2 || we.Args[0] != "bad" || we.Args[1] != uint64(7) {
		t.Fatalf("error args %#v", we.Args)
	}
	_, err = a.Subscribe(ctx, "bad..uri", func(*client.Event) {}, nil)
	wampErr(t, err, "wamp.error.invalid_uri")
	err = a.Publish(ctx, "bad uri", nil, nil, client.Acknowledge())
	wampErr(t, err, "wamp.error.invalid_uri")
	if err := reg.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	// The client makes a second Unregister a no-op, so ask the router by hand.
	tr := rawSession(t, ep.url, codec.JSON)
	for _, m := range []codec.Message{{Type: codec.UNREGISTER, Request: 5, Registration: 12345},
		{Type: codec.UNSUBSCRIBE, Request: 6, Subscription: 12345}} {
		if err := tr.Send(&m); err != nil {
			t.Fatal(err)
		}
		var e codec.Message
		if _, err := tr.Recv(&e); err != nil || e.Type != codec.ERROR || e.Request != m.Request {
			t.Fatalf("want ERROR for %v, got %v %v", m.Type, e.Type, err)
		}
		want := map[codec.MessageType]string{codec.UNREGISTER: "wamp.error.no_such_registration",
			codec.UNSUBSCRIBE: "wamp.error.no_such_subscription"}[m.Type]
		if e.ErrType != m.Type || string(e.URI) != want {
			t.Fatalf("ERROR %v %q, want %v %s", e.ErrType, e.URI, m.Type, want)
		}
	}
	_, err = b.Call(ctx, "com.p", nil, nil, nil)
	wampErr(t, err, "wamp.error.no_such_procedure")

	// A callee that leaves mid-call fails the call; it does not hang.
	started := make(chan struct{})
	c := connect(t, ep, codec.CBOR)
	hold := make(chan struct{})
	defer close(hold)
	if _, err := c.Register(ctx, "com.slow", func(context.Context, *client.Invocation) (*client.Result, error) {
		close(started)
		// Not on ctx: a handler that answers when its session closes would race the
		// close and could reach the caller first.
		<-hold
		return nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	go func() { <-started; c.Close() }()
	_, err = b.Call(ctx, "com.slow", nil, nil, nil)
	wampErr(t, err, "wamp.error.canceled")
}

// rawSession opens a transport and joins realm1 by hand, for protocol-level tests.
func rawSession(t *testing.T, url string, ser codec.Serializer) *client.Transport {
	t.Helper()
	tr, err := client.Dial(ctxT(t), url, ser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	hello := codec.Message{Type: codec.HELLO, URI: []byte("realm1"),
		DictAny: map[string]any{"roles": map[string]any{"subscriber": map[string]any{}}}}
	if err := tr.Send(&hello); err != nil {
		t.Fatal(err)
	}
	var m codec.Message
	_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tr.Recv(&m); err != nil || m.Type != codec.WELCOME {
		t.Fatalf("want WELCOME, got %v %v", m.Type, err)
	}
	return tr
}

// expectAbort reads until ABORT with reason, then expects the connection to close.
func expectAbort(t *testing.T, tr *client.Transport, reason string) {
	t.Helper()
	var m codec.Message
	_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tr.Recv(&m); err != nil || m.Type != codec.ABORT || string(m.URI) != reason {
		t.Fatalf("want ABORT %s, got %v %q %v", reason, m.Type, m.URI, err)
	}
	if _, err := tr.Recv(&m); !closedByPeer(err) {
		t.Fatalf("connection still open after ABORT: got %v %v", m.Type, err)
	}
}

// closedByPeer reports whether err says the router closed the connection: EOF, a
// reset, or a WebSocket close frame. A passed read deadline (the connection is still
// open) or a decode error (the transport is still usable) is not a close.
func closedByPeer(err error) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

func TestBadInput(t *testing.T) {
	n := startNode(t, func(c *Config) {
		for i := range c.Listeners {
			c.Listeners[i].MaxMessageSize = 4096
		}
	})
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	// A healthy session that must keep working through everything below.
	ctx := ctxT(t)
	good := connect(t, endpoints(n)[0], codec.JSON)
	if _, err := good.Register(ctx, "com.ping", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"pong"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url string
		ser       codec.Serializer
		payload   []byte
	}{
		{"undecodable-json", ws, codec.JSON, []byte(`[16, 1, {`)},
		{"undecodable-msgpack", rs, codec.MsgPack, []byte{0xc1, 0xc1}},
		{"undecodable-cbor", ws, codec.CBOR, []byte{0xff, 0x00}},
		{"unknown-type", rs, codec.JSON, []byte(`[99, 1, {}]`)},
		{"wrong-shape", ws, codec.JSON, []byte(`[32, "x", {}, "topic"]`)},
		{"hello-twice", ws, codec.JSON, []byte(`[1, "realm1", {"roles": {"caller": {}}}]`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := rawSession(t, c.url, c.ser)
			if err := tr.SendRaw(c.payload); err != nil {
				t.Fatal(err)
			}
			expectAbort(t, tr, "wamp.error.protocol_violation")
		})
	}
	t.Run("before-hello", func(t *testing.T) {
		tr, err := client.Dial(ctx, ws, codec.JSON)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		_ = tr.SendRaw([]byte(`[32, 1, {}, "topic"]`))
		expectAbort(t, tr, "wamp.error.protocol_violation")
	})
	for _, url := range []string{ws, rs} {
		t.Run("oversize-"+url[:2], func(t *testing.T) {
			tr := rawSession(t, url, codec.JSON)
			big := fmt.Sprintf(`[16, 1, {}, "t", ["%s"]]`, make([]byte, 8192))
			_ = tr.SendRaw([]byte(big))
			var m codec.Message
			_ = tr.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, err := tr.Recv(&m); err != nil {
					if !closedByPeer(err) {
						t.Fatalf("oversize message: connection not closed: %v", err)
					}
					return // closed, as it must be
				}
				if m.Type != codec.ABORT {
					t.Fatalf("oversize message answered with %v", m.Type)
				}
			}
		})
	}
	t.Run("rawsocket-bad-magic", func(t *testing.T) {
		c, err := net.Dial("tcp", n.Server.RawSocketAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x42, 0xF1, 0, 0})
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 4)); !closedByPeer(err) {
			t.Fatalf("bad magic: want a close, got %d bytes, %v", n, err)
		}
	})
	t.Run("rawsocket-unknown-serializer", func(t *testing.T) {
		c, err := net.Dial("tcp", n.Server.RawSocketAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x7F, 0xF9, 0, 0})
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [4]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 0x7F || b[1] != 0x10 {
			t.Fatalf("want error reply 7f 10 00 00, got % x %v", b, err)
		}
	})
	res, err := good.Call(ctx, "com.ping", nil, nil, nil)
	if err != nil || res.Args[0] != "pong" {
		t.Fatalf("healthy session broken by bad peers: %v %v", res, err)
	}
}

func TestWelcomeAnnouncesWhatWorks(t *testing.T) {
	n := startNode(t, nil)
	s := connect(t, endpoints(n)[0], codec.JSON)
	d := s.WelcomeDetails()
	roles := d["roles"].(map[string]any)
	if len(roles) != 2 || roles["broker"] == nil || roles["dealer"] == nil {
		t.Fatalf("roles %#v", roles)
	}
	if d["authrole"] != "anonymous" || d["authmethod"] != "anonymous" {
		t.Fatalf("details %#v", d)
	}
}

func TestShutdownSaysGoodbye(t *testing.T) {
	n := startNode(t, nil)
	s := connect(t, endpoints(n)[2], codec.MsgPack)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("session still open after shutdown")
	}
	wampErr(t, s.Err(), "wamp.close.system_shutdown")
}

func TestLeave(t *testing.T) {
	n := startNode(t, nil)
	s := connect(t, endpoints(n)[0], codec.CBOR)
	if err := s.Leave(ctxT(t), ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for n.Router.SessionCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := n.Router.SessionCount(); c != 0 {
		t.Fatalf("%d sessions after GOODBYE", c)
	}
}

// TestPatternBasedRouting: prefix and wildcard subscriptions and registrations over real
// sockets, with the concrete URI in EVENT/INVOCATION details.
func TestPatternBasedRouting(t *testing.T) {
	n := startNode(t, nil)
	ctx := ctxT(t)
	a := connect(t, endpoints(n)[0], codec.JSON)
	b := connect(t, endpoints(n)[2], codec.MsgPack)
	got := make(chan *client.Event, 2)
	if _, err := b.Subscribe(ctx, "com.sensors.", func(e *client.Event) { got <- e }, map[string]any{"match": "prefix"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "com.sensors.kitchen.temp", []any{21.5}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Details["topic"] != "com.sensors.kitchen.temp" || e.Args[0] != 21.5 {
			t.Fatalf("event %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("no EVENT for the prefix subscription")
	}
	if _, err := b.Register(ctx, "com.rooms..light", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{inv.Details["procedure"]}}, nil
	}, map[string]any{"match": "wildcard"}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Call(ctx, "com.rooms.kitchen.light", nil, nil, nil)
	if err != nil || res.Args[0] != "com.rooms.kitchen.light" {
		t.Fatalf("wildcard call: %v %v", res, err)
	}
	_, err = a.Call(ctx, "com.rooms.kitchen.main.light", nil, nil, nil)
	wampErr(t, err, "wamp.error.no_such_procedure")
}

// TestCallTimeoutOverSockets: CALL.Options.timeout is enforced by the router.
func TestCallTimeoutOverSockets(t *testing.T) {
	n := startNode(t, nil)
	ctx := ctxT(t)
	a := connect(t, endpoints(n)[0], codec.JSON)
	b := connect(t, endpoints(n)[3], codec.CBOR)
	release := make(chan struct{})
	defer close(release)
	if _, err := b.Register(ctx, "com.slow", func(context.Context, *client.Invocation) (*client.Result, error) {
		<-release
		return &client.Result{}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := a.Call(ctx, "com.slow", nil, nil, map[string]any{"timeout": 100})
	wampErr(t, err, "wamp.error.timeout")
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("timed out after %v, before the 100 ms asked", d)
	}
}
