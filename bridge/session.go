package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"

	"github.com/switchyard-wamp/switchyard/codec"
)

// conduit hands one WAMP message from the bridge (JSON text) to its realm, joining the
// bridge's session first when it has none (or its old one ended).
type conduit interface {
	deliver(msg []byte) error
}

// session is the request/answer core of EngineSession and ClusterSession: it numbers
// requests, sends them through the conduit and matches the PUBLISHED, RESULT or ERROR
// that answers each. Safe for concurrent use.
type session struct {
	c      conduit
	nextID atomic.Uint64
	wait   *xsync.MapOf[uint64, chan reply]
}

func newSession(c conduit) session {
	return session{c: c, wait: xsync.NewMapOf[uint64, chan reply]()}
}

// reply is one PUBLISHED, RESULT or ERROR, copied out of the sender's buffer.
type reply struct {
	typ         codec.MessageType
	publication uint64
	uri         string
	args        json.RawMessage
	kwargs      json.RawMessage
}

// answer hands a message the realm sent the bridge's session to the request waiting
// for it. It runs on whichever goroutine delivers it (an event loop, a link reader) and
// never blocks: each waiter has room for one reply. It reports whether msg ends the
// session (GOODBYE, ABORT).
func (s *session) answer(b []byte) (ended bool, err error) {
	var m codec.Message
	if err := codec.For(codec.JSON).Decode(b, &m); err != nil {
		return false, fmt.Errorf("bridge session: %w", err)
	}
	switch m.Type {
	case codec.PUBLISHED, codec.ERROR:
	case codec.RESULT:
		if m.Details.Progress {
			return false, nil // not asked for
		}
	case codec.GOODBYE, codec.ABORT:
		return true, nil
	default:
		return false, nil // EVENT, INVOCATION, ...: the bridge neither subscribes nor registers
	}
	ch, ok := s.wait.LoadAndDelete(m.Request)
	if !ok {
		return false, nil // the HTTP request gave up
	}
	r := reply{typ: m.Type, publication: m.Publication, uri: string(m.URI)}
	if m.Args != nil {
		r.args = json.RawMessage(append([]byte(nil), m.Args...))
	}
	if m.Kwargs != nil {
		r.kwargs = json.RawMessage(append([]byte(nil), m.Kwargs...))
	}
	ch <- r
	return false, nil
}

// request sends the message build(requestID) makes and waits for its answer; on ctx
// done a cancelable request (a CALL) is canceled.
func (s *session) request(ctx context.Context, build func(id uint64) ([]byte, error), cancelable bool) (reply, error) {
	id := s.nextID.Add(1)
	msg, err := build(id)
	if err != nil {
		return reply{}, &Error{URI: "wamp.error.invalid_argument", Args: mustJSON([]any{err.Error()})}
	}
	ch := make(chan reply, 1)
	s.wait.Store(id, ch)
	if err := s.c.deliver(msg); err != nil {
		s.wait.Delete(id)
		return reply{}, err
	}
	select {
	case r := <-ch:
		if r.typ == codec.ERROR {
			return r, &Error{URI: r.uri, Args: r.args, Kwargs: r.kwargs}
		}
		return r, nil
	case <-ctx.Done():
		if _, waiting := s.wait.LoadAndDelete(id); waiting && cancelable {
			_ = s.c.deliver(fmt.Appendf(nil, `[49,%d,{"mode":"killnowait"}]`, id))
		}
		return reply{}, ctx.Err()
	}
}

// Publish implements Session. Safe for concurrent use.
func (s *session) Publish(ctx context.Context, topic string, args []any, kwargs, options map[string]any) (uint64, error) {
	r, err := s.request(ctx, func(id uint64) ([]byte, error) {
		opts := map[string]any{}
		for k, v := range options {
			opts[k] = v
		}
		opts["acknowledge"] = true
		return json.Marshal(wampMsg(16, id, opts, topic, args, kwargs))
	}, false)
	return r.publication, err
}

// Call implements Session. Safe for concurrent use.
func (s *session) Call(ctx context.Context, procedure string, args []any, kwargs, options map[string]any) (Result, error) {
	r, err := s.request(ctx, func(id uint64) ([]byte, error) {
		opts := map[string]any{}
		for k, v := range options {
			if k != "receive_progress" { // one HTTP answer: no progressive results
				opts[k] = v
			}
		}
		return json.Marshal(wampMsg(48, id, opts, procedure, args, kwargs))
	}, true)
	return Result{Args: r.args, Kwargs: r.kwargs}, err
}

// wampMsg is [type, id, options, uri, args?, kwargs?] with the optional tail trimmed.
func wampMsg(typ int, id uint64, opts map[string]any, uri string, args []any, kwargs map[string]any) []any {
	m := []any{typ, id, opts, uri}
	if args != nil || kwargs != nil {
		if args == nil {
			args = []any{}
		}
		m = append(m, args)
	}
	if kwargs != nil {
		m = append(m, kwargs)
	}
	return m
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
