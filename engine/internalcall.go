package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
)

// The router itself calls WAMP procedures for the dynamic authenticator and the dynamic
// authorizer: procedures that a trusted client registers in a realm. Such calls go
// through the ordinary dealer (so shared registrations, patterns and callee failures
// behave as for any caller) from a per-realm caller session that never joins: it is not
// listed by the session meta API and publishes nothing. None of this is on the routing
// hot path.

// CallResult is the outcome of Realm.CallProcedure: the RESULT's positional and keyword
// arguments decoded, or the ERROR's URI (ErrorURI != "") with its arguments, or a local
// failure (Err != nil, e.g. the timeout or no callee).
type CallResult struct {
	Args     []any
	Kwargs   map[string]any
	ErrorURI string
	Err      error
}

// internalCaller is a realm's router-side caller session and its calls in flight.
type internalCaller struct {
	mu      sync.Mutex // serialises Receive on sess (it is not safe for concurrent use)
	sess    *Session
	nextReq atomic.Uint64
	waiting *xsync.MapOf[uint64, func(CallResult)]
}

// internalPeer receives the dealer's answers to the internal caller's CALLs.
type internalPeer struct{ ic *internalCaller }

func (p internalPeer) Serializer() codec.Serializer { return codec.JSON }
func (p internalPeer) Close()                       {}

// Send decodes a RESULT or ERROR and completes the matching call on a new goroutine
// (Send runs on the callee's event loop and must not block).
func (p internalPeer) Send(b []byte) error {
	var m codec.Message
	if err := codec.For(codec.JSON).Decode(b, &m); err != nil {
		return fmt.Errorf("internal caller: %w", err)
	}
	if m.Type != codec.RESULT && m.Type != codec.ERROR {
		return nil
	}
	if m.Type == codec.RESULT && m.Details.Progress {
		return nil // progressive results are not asked for; ignore stray ones
	}
	done, ok := p.ic.waiting.LoadAndDelete(m.Request)
	if !ok {
		return nil // timed out already
	}
	var r CallResult
	if m.Args != nil {
		v, err := codec.DecodeValue(codec.JSON, m.Args)
		if list, ok := v.([]any); err == nil && ok {
			r.Args = list
		}
	}
	if m.Kwargs != nil {
		r.Kwargs, _ = codec.DecodeDict(codec.JSON, m.Kwargs)
	}
	if m.Type == codec.ERROR {
		r.ErrorURI = string(m.URI)
	}
	go done(r)
	return nil
}

func (rl *Realm) caller() *internalCaller {
	rl.callerOnce.Do(func() {
		ic := &internalCaller{waiting: xsync.NewMapOf[uint64, func(CallResult)]()}
		ic.sess = &Session{realm: rl, peer: internalPeer{ic}, ser: codec.JSON, codec: codec.For(codec.JSON),
			auth:   AuthInfo{AuthID: "router", AuthRole: "trusted", AuthMethod: "internal", AuthProvider: "router"},
			authID: []byte("router"), authRole: []byte("trusted")}
		ic.sess.id = globalID()
		rl.internal = ic
	})
	return rl.internal
}

// CallProcedure calls procedure in the realm as the router (authid "router", authrole
// "trusted", never subject to authorization) with args and kwargs (values the codec can
// encode: strings, numbers, bools, nil, []any, map[string]any). done is called exactly
// once, on a goroutine of its own, with the result, the callee's error, or Err set when
// no callee is registered in time or timeout passes first. Safe for concurrent use.
func (rl *Realm) CallProcedure(procedure string, args []any, kwargs map[string]any, timeout time.Duration, done func(CallResult)) {
	ic := rl.caller()
	m := &codec.Message{Type: codec.CALL, URI: []byte(procedure)}
	var err error
	if m.Args, err = codec.AppendValue(nil, codec.JSON, args); err != nil {
		go done(CallResult{Err: fmt.Errorf("call %s: arguments: %w", procedure, err)})
		return
	}
	if kwargs != nil {
		if m.Kwargs, err = codec.AppendValue(nil, codec.JSON, kwargs); err != nil {
			go done(CallResult{Err: fmt.Errorf("call %s: keyword arguments: %w", procedure, err)})
			return
		}
	}
	m.Request = ic.nextReq.Add(1)
	ic.waiting.Store(m.Request, done)
	time.AfterFunc(timeout, func() {
		if d, ok := ic.waiting.LoadAndDelete(m.Request); ok {
			d(CallResult{Err: fmt.Errorf("call %s: no answer within %s", procedure, timeout)})
		}
	})
	ic.mu.Lock()
	ic.sess.Receive(m)
	ic.mu.Unlock()
}
