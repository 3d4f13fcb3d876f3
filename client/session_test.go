package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, k kind, ser codec.Serializer, script func(p *peer)) (*Session, <-chan struct{}) {
	t.Helper()
	url, done := serve(t, k, ser, script)
	s, err := Connect(testCtx(t), Config{URL: url, Realm: "realm1", Serializer: ser, Batched: k == kindWSBatch})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, done
}

func wantURI(t *testing.T, err error, uri string) *Error {
	t.Helper()
	var we *Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	if we.URI != uri {
		t.Fatalf("error URI %q, want %q", we.URI, uri)
	}
	return we
}

// TestSession runs the whole client API against the fake broker/dealer on every transport
// and serializer.
func TestSession(t *testing.T) {
	for _, k := range allKinds {
		for _, ser := range allSers {
			t.Run(fmt.Sprintf("%s/%v", k, ser), func(t *testing.T) { testSession(t, k, ser) })
		}
	}
}

func testSession(t *testing.T, k kind, ser codec.Serializer) {
	ctx := testCtx(t)
	s, done := connect(t, k, ser, (*peer).route)
	if s.ID() != 42 || s.AuthID() != "joe" || s.AuthRole() != "user" || s.Realm() != "realm1" {
		t.Fatalf("session id %d authid %q authrole %q realm %q", s.ID(), s.AuthID(), s.AuthRole(), s.Realm())
	}
	if s.WelcomeDetails()["authrole"] != "user" {
		t.Fatalf("WelcomeDetails %v", s.WelcomeDetails())
	}

	// Call: the fake router echoes the payload.
	args := []any{"hello", uint64(7), int64(-3), 1.5, true, nil, []byte{1, 2}, []any{"x"}}
	kwargs := map[string]any{"k": "v", "m": map[string]any{"n": uint64(1)}}
	res, err := s.Call(ctx, "echo", args, kwargs, nil)
	if err != nil {
		t.Fatalf("Call echo: %v", err)
	}
	if !reflect.DeepEqual(res.Args, args) || !reflect.DeepEqual(res.Kwargs, kwargs) {
		t.Fatalf("echo returned %#v %#v, want %#v %#v", res.Args, res.Kwargs, args, kwargs)
	}
	res, err = s.Call(ctx, "echo", nil, map[string]any{"only": "kw"}, map[string]any{"timeout": 1000})
	if err != nil || len(res.Args) != 0 || res.Kwargs["only"] != "kw" {
		t.Fatalf("echo kwargs only: %v %v", res, err)
	}
	_, err = s.Call(ctx, "nope", nil, nil, nil)
	if we := wantURI(t, err, "wamp.error.no_such_procedure"); we.Error() != "wamp.error.no_such_procedure: no callee for nope" {
		t.Fatalf("Error() = %q", we.Error())
	}

	// Register and call through the router.
	reg, err := s.Register(ctx, "add", func(ctx context.Context, inv *Invocation) (*Result, error) {
		return &Result{Args: []any{inv.Args[0].(uint64) + inv.Args[1].(uint64)}, Kwargs: inv.Kwargs}, nil
	}, nil)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	res, err = s.Call(ctx, "add", []any{2, 3}, map[string]any{"z": "y"}, nil)
	if err != nil || !reflect.DeepEqual(res.Args, []any{uint64(5)}) || res.Kwargs["z"] != "y" {
		t.Fatalf("Call add: %v %v", res, err)
	}
	_, err = s.Register(ctx, "add", func(context.Context, *Invocation) (*Result, error) { return nil, nil }, nil)
	wantURI(t, err, "wamp.error.procedure_already_exists")
	if _, err := s.Register(ctx, "boom", func(context.Context, *Invocation) (*Result, error) {
		return nil, errors.New("kaput")
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Call(ctx, "boom", nil, nil, nil)
	if we := wantURI(t, err, "wamp.error.runtime_error"); len(we.Args) != 1 || we.Args[0] != "kaput" {
		t.Fatalf("runtime_error args %v", we.Args)
	}
	if _, err := s.Register(ctx, "custom", func(context.Context, *Invocation) (*Result, error) {
		return nil, fmt.Errorf("wrapped: %w", &Error{URI: "app.error.custom", Args: []any{"a"}, Kwargs: map[string]any{"b": "c"}})
	}, nil, InlineInvocations()); err != nil {
		t.Fatal(err)
	}
	_, err = s.Call(ctx, "custom", nil, nil, nil)
	if we := wantURI(t, err, "app.error.custom"); !reflect.DeepEqual(we.Args, []any{"a"}) || we.Kwargs["b"] != "c" {
		t.Fatalf("custom error payload %v %v", we.Args, we.Kwargs)
	}
	if err := reg.Unregister(ctx); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	_, err = s.Call(ctx, "add", []any{1, 1}, nil, nil)
	wantURI(t, err, "wamp.error.no_such_procedure")

	// Subscribe and publish to ourselves (exclude_me false); a second, raw subscription to
	// the same topic shares the subscription id.
	evs := make(chan *Event, 8)
	sub, err := s.Subscribe(ctx, "t1", func(e *Event) { evs <- e }, nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	raws := make(chan []byte, 8)
	rawSub, err := s.Subscribe(ctx, "t1", func(e *Event) {
		if e.Args != nil || e.Details != nil {
			t.Errorf("raw event decoded: %v %v", e.Args, e.Details)
		}
		raws <- bytes.Clone(e.RawArgs)
	}, map[string]any{"match": "exact"}, RawEvents())
	if err != nil {
		t.Fatalf("Subscribe raw: %v", err)
	}
	if rawSub.ID() != sub.ID() || sub.Topic() != "t1" {
		t.Fatalf("subscription ids %d %d", sub.ID(), rawSub.ID())
	}
	if err := s.Publish(ctx, "t1", []any{"x"}, map[string]any{"n": 1}, ExcludeMe(false), Acknowledge()); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// The router sends EVENT before PUBLISHED and handlers run on the reader in order:
	// both handlers have run by now.
	if len(evs) != 1 || len(raws) != 1 {
		t.Fatalf("got %d events and %d raw events, want 1 and 1", len(evs), len(raws))
	}
	e := <-evs
	if e.Subscription != sub.ID() || e.Publication == 0 || !reflect.DeepEqual(e.Args, []any{"x"}) ||
		!reflect.DeepEqual(e.Kwargs, map[string]any{"n": uint64(1)}) || e.Details["publisher"] != uint64(42) {
		t.Fatalf("event %+v", e)
	}
	if r, want := <-raws, mustEnc(t, ser, []any{"x"}); !bytes.Equal(r, want) {
		t.Fatalf("raw args %q, want %q", r, want)
	}
	// exclude_me defaults to true at the router: no event.
	if err := s.Publish(ctx, "t1", []any{"y"}, nil, Acknowledge()); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 || len(raws) != 0 {
		t.Fatal("event delivered to the publisher without exclude_me false")
	}
	// Raw options: the fake router reads exclude_me from the dict Option writes.
	if err := s.Publish(ctx, "t1", nil, nil, Option("exclude_me", false), Acknowledge()); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || len(raws) != 1 {
		t.Fatalf("Option(exclude_me): got %d/%d events", len(evs), len(raws))
	}
	<-evs
	<-raws
	wantURI(t, s.Publish(ctx, "forbidden", nil, nil, Acknowledge()), "wamp.error.not_authorized")

	// Unsubscribing one of two handlers keeps the router subscription.
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "t1", []any{"z"}, nil, ExcludeMe(false), Acknowledge()); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 || len(raws) != 1 {
		t.Fatalf("after one Unsubscribe: %d/%d events, want 0/1", len(evs), len(raws))
	}
	<-raws
	if err := rawSub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "t1", []any{"z"}, nil, ExcludeMe(false), Acknowledge()); err != nil {
		t.Fatal(err)
	}
	if len(raws) != 0 {
		t.Fatal("event after the last Unsubscribe")
	}

	if err := s.Leave(ctx, ""); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Leave")
	}
	if !errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("Err after Leave = %v", s.Err())
	}
	if _, err := s.Call(ctx, "echo", nil, nil, nil); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Call after Leave: %v", err)
	}
	if err := s.Publish(ctx, "t1", nil, nil); err == nil {
		t.Fatal("Publish after Leave succeeded")
	}
	waitDone(t, done)
}

func mustEnc(t *testing.T, ser codec.Serializer, v any) []byte {
	t.Helper()
	b, err := codec.AppendValue(nil, ser, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConnectAbort(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			url, done := serve(t, k, codec.CBOR, func(p *peer) {
				if h := p.expect(codec.HELLO); string(h.URI) != "nope" {
					p.fail("HELLO realm %q", h.URI)
				}
				m := &codec.Message{Type: codec.ABORT, URI: []byte("wamp.error.no_such_realm")}
				m.Details.Has, m.Details.Message = codec.KeyMessage, []byte("no realm nope")
				p.send(m)
			})
			_, err := Connect(testCtx(t), Config{URL: url, Realm: "nope", Serializer: codec.CBOR, Batched: k == kindWSBatch})
			we := wantURI(t, err, "wamp.error.no_such_realm")
			if we.Details["message"] != "no realm nope" || we.Error() != "wamp.error.no_such_realm: no realm nope" {
				t.Fatalf("abort details %v, Error() %q", we.Details, we.Error())
			}
			waitDone(t, done)
		})
	}
}

func TestConnectChallenge(t *testing.T) {
	url, done := serve(t, kindRS, codec.MsgPack, func(p *peer) {
		h := p.expect(codec.HELLO)
		d, err := codec.DecodeDict(p.ser, h.Dict)
		if err != nil {
			p.fail("HELLO details: %v", err)
		}
		roles, _ := d["roles"].(map[string]any)
		for _, r := range []string{"publisher", "subscriber", "caller", "callee"} {
			if _, ok := roles[r]; !ok {
				p.fail("HELLO roles %v lack %s", roles, r)
			}
		}
		if d["authid"] != "alice" || !reflect.DeepEqual(d["authmethods"], []any{"ticket"}) ||
			!reflect.DeepEqual(d["authextra"], map[string]any{"x": "y"}) {
			p.fail("HELLO details %v", d)
		}
		p.send(&codec.Message{Type: codec.CHALLENGE, URI: []byte("ticket"), DictAny: map[string]any{"nonce": "n1"}})
		if a := p.expect(codec.AUTHENTICATE); string(a.URI) != "secret-n1" {
			p.fail("signature %q", a.URI)
		}
		p.send(&codec.Message{Type: codec.WELCOME, Session: 7, DictAny: map[string]any{"authid": "alice", "authrole": "admin"}})
		p.expect(codec.GOODBYE)
		p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.goodbye_and_out")})
	})
	s, err := Connect(testCtx(t), Config{
		URL: url, Realm: "r", Serializer: codec.MsgPack,
		AuthID: "alice", AuthMethods: []string{"ticket"}, AuthExtra: map[string]any{"x": "y"},
		OnChallenge: func(method string, extra map[string]any) (string, error) {
			if method != "ticket" {
				return "", fmt.Errorf("method %q", method)
			}
			return "secret-" + extra["nonce"].(string), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 7 || s.AuthRole() != "admin" || s.Realm() != "r" {
		t.Fatalf("session %d %q %q", s.ID(), s.AuthRole(), s.Realm())
	}
	if err := s.Leave(testCtx(t), "wamp.close.normal"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
}

func TestConnectChallengeWithoutHandler(t *testing.T) {
	url, done := serve(t, kindWS, codec.JSON, func(p *peer) {
		p.expect(codec.HELLO)
		p.send(&codec.Message{Type: codec.CHALLENGE, URI: []byte("wampcra")})
		if a := p.expect(codec.ABORT); string(a.URI) != "wamp.error.authentication_failed" {
			p.fail("ABORT %q", a.URI)
		}
	})
	_, err := Connect(testCtx(t), Config{URL: url, Realm: "r"})
	if err == nil {
		t.Fatal("Connect succeeded without a challenge handler")
	}
	waitDone(t, done)
}

func TestConnectTimeout(t *testing.T) {
	url, done := serve(t, kindRS, codec.JSON, func(p *peer) {
		p.expect(codec.HELLO)
		p.recv() // never answer; returns when the client gives up
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, Config{URL: url, Realm: "r"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want DeadlineExceeded", err)
	}
	waitDone(t, done)
}

func TestRouterGoodbyeFailsPending(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			s, done := connect(t, k, codec.JSON, func(p *peer) {
				p.welcome()
				p.expect(codec.CALL)
				p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.system_shutdown")})
				if g := p.expect(codec.GOODBYE); string(g.URI) != "wamp.close.goodbye_and_out" {
					p.fail("GOODBYE reply %q", g.URI)
				}
			})
			_, err := s.Call(testCtx(t), "slow", nil, nil, nil)
			wantURI(t, err, "wamp.close.system_shutdown")
			<-s.Done()
			wantURI(t, s.Err(), "wamp.close.system_shutdown")
			waitDone(t, done)
		})
	}
}

func TestConnectionLossFailsPending(t *testing.T) {
	s, done := connect(t, kindRS, codec.CBOR, func(p *peer) {
		p.welcome()
		got := map[codec.MessageType]bool{}
		for range 2 {
			m, err := p.recv()
			if err != nil {
				p.fail("recv: %v", err)
			}
			got[m.Type] = true
		}
		if !got[codec.CALL] || !got[codec.SUBSCRIBE] {
			p.fail("got %v, want CALL and SUBSCRIBE", got)
		}
	})
	errs := make(chan error, 2)
	go func() {
		_, err := s.Call(context.Background(), "slow", nil, nil, nil)
		errs <- err
	}()
	go func() {
		_, err := s.Subscribe(context.Background(), "t", func(*Event) {}, nil)
		errs <- err
	}()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("request succeeded after connection loss")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pending request hangs after connection loss")
		}
	}
	<-s.Done()
	if s.Err() == nil || errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("Err = %v, want a transport error", s.Err())
	}
	waitDone(t, done)
}

func TestCallContextAndRequestIDs(t *testing.T) {
	release := make(chan struct{})
	s, done := connect(t, kindWS, codec.MsgPack, func(p *peer) {
		p.welcome()
		c1 := p.expect(codec.CALL)
		<-release
		// A late RESULT for the abandoned call must be ignored.
		p.send(&codec.Message{Type: codec.RESULT, Request: c1.Request, Args: p.enc([]any{"late"})})
		c2 := p.expect(codec.CALL)
		if c1.Request != 1 || c2.Request != 2 {
			p.fail("request ids %d %d, want 1 2", c1.Request, c2.Request)
		}
		p.send(&codec.Message{Type: codec.RESULT, Request: c2.Request, Args: p.enc([]any{"ok"})})
		p.route()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Call(ctx, "slow", nil, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want DeadlineExceeded", err)
	}
	close(release)
	res, err := s.Call(testCtx(t), "slow", nil, nil, nil)
	if err != nil || !reflect.DeepEqual(res.Args, []any{"ok"}) {
		t.Fatalf("second Call: %v %v", res, err)
	}
	if err := s.Leave(testCtx(t), ""); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
}

func TestPublishRaw(t *testing.T) {
	for _, ser := range allSers {
		t.Run(ser.String(), func(t *testing.T) {
			args := mustEnc(t, ser, []any{"a", uint64(1)})
			kwargs := mustEnc(t, ser, map[string]any{"k": "v"})
			s, done := connect(t, kindRS, ser, func(p *peer) {
				p.welcome()
				m := p.expect(codec.PUBLISH)
				if string(m.URI) != "topic.raw" || !bytes.Equal(m.Args, args) || !bytes.Equal(m.Kwargs, kwargs) ||
					m.Details.Has != 0 || m.Request != 1 {
					p.fail("PUBLISH %q %q %q has %x req %d", m.URI, m.Args, m.Kwargs, m.Details.Has, m.Request)
				}
				m = p.expect(codec.PUBLISH)
				if m.Args != nil || m.Kwargs != nil || m.Request != 2 {
					p.fail("PUBLISH without payload: %q %q", m.Args, m.Kwargs)
				}
			})
			if err := s.PublishRaw("topic.raw", args, kwargs); err != nil {
				t.Fatal(err)
			}
			if err := s.PublishRaw("topic.raw", nil, nil); err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
		})
	}
}

func TestInvocationForUnknownRegistration(t *testing.T) {
	s, done := connect(t, kindWSBatch, codec.CBOR, func(p *peer) {
		p.welcome()
		p.send(&codec.Message{Type: codec.INVOCATION, Request: 9, Registration: 12345})
		e := p.expect(codec.ERROR)
		if e.ErrType != codec.INVOCATION || e.Request != 9 || string(e.URI) != "wamp.error.no_such_registration" {
			p.fail("ERROR %v %d %q", e.ErrType, e.Request, e.URI)
		}
	})
	waitDone(t, done)
	_ = s
}

func TestProtocolViolation(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			s, done := connect(t, k, codec.JSON, func(p *peer) {
				p.welcome()
				p.writePayload([]byte(`{"not": "wamp"}`))
				if a := p.expect(codec.ABORT); string(a.URI) != "wamp.error.protocol_violation" {
					p.fail("ABORT %q", a.URI)
				}
			})
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("session survived a malformed message")
			}
			if !errors.Is(s.Err(), codec.ErrInvalid) {
				t.Fatalf("Err = %v, want codec.ErrInvalid", s.Err())
			}
			waitDone(t, done)
		})
	}
}

// TestConcurrentUse runs calls, publishes and invocations from many goroutines at once
// (run with -race).
func TestConcurrentUse(t *testing.T) {
	ctx := testCtx(t)
	s, done := connect(t, kindWS, codec.MsgPack, (*peer).route)
	if _, err := s.Register(ctx, "inc", func(_ context.Context, inv *Invocation) (*Result, error) {
		return &Result{Args: []any{inv.Args[0].(uint64) + 1}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 50
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			res, err := s.Call(ctx, "inc", []any{i}, nil, nil)
			if err == nil && res.Args[0] != uint64(i+1) {
				err = fmt.Errorf("inc(%d) = %v", i, res.Args)
			}
			errs <- err
		}()
		go func() { errs <- s.Publish(ctx, "t", []any{i}, nil) }()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
}

// TestEventRightAfterSubscribed checks that an EVENT following SUBSCRIBED at once (same
// frame on a batched WebSocket) reaches the new handler.
func TestEventRightAfterSubscribed(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			s, done := connect(t, k, codec.JSON, func(p *peer) {
				p.welcome()
				m := p.expect(codec.SUBSCRIBE)
				p.send(&codec.Message{Type: codec.SUBSCRIBED, Request: m.Request, Subscription: 5},
					&codec.Message{Type: codec.EVENT, Subscription: 5, Publication: 6, Args: p.enc([]any{"first"})})
				p.recv() // until the client closes
			})
			got := make(chan *Event, 1)
			sub, err := s.Subscribe(testCtx(t), "t", func(e *Event) { got <- e }, nil)
			if err != nil || sub.ID() != 5 {
				t.Fatalf("Subscribe: %v", err)
			}
			select {
			case e := <-got:
				if e.Publication != 6 || e.Args[0] != "first" {
					t.Fatalf("event %+v", e)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("event right after SUBSCRIBED lost")
			}
			s.Close()
			waitDone(t, done)
		})
	}
}
