package client

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Result is the outcome of a call: RESULT for Call, YIELD for an invocation handler.
// A plain value: safe for concurrent reads.
type Result struct {
	Args    []any
	Kwargs  map[string]any
	Details map[string]any // RESULT.Details (Call only; ignored on YIELD)
}

// Invocation is one INVOCATION handed to a registered handler; it may be kept.
// A plain value: safe for concurrent reads.
type Invocation struct {
	Request      uint64
	Registration uint64
	Details      map[string]any
	Args         []any
	Kwargs       map[string]any
}

// InvocationHandler answers an invocation. Its result is sent as YIELD; an error as ERROR
// with the *Error's URI and payload, or as wamp.error.runtime_error with the error's text
// as Args[0] for any other error. ctx ends when the session ends. Each invocation runs in
// its own goroutine, so a handler must be safe for concurrent use, unless registered with
// InlineInvocations.
type InvocationHandler func(ctx context.Context, inv *Invocation) (*Result, error)

// RegisterOption configures one Register on the client side. Options are pure functions:
// safe for concurrent use.
type RegisterOption func(*Registration)

// InlineInvocations runs the handler on the session's reader goroutine, one invocation at
// a time, instead of one goroutine per invocation: see Session about blocking in it.
// Safe for concurrent use.
func InlineInvocations() RegisterOption { return func(r *Registration) { r.inline = true } }

// Registration is one procedure registered by a session. Safe for concurrent use.
type Registration struct {
	s         *Session
	id        uint64
	procedure string
	h         InvocationHandler
	inline    bool
	active    atomic.Bool
	revoked   chan struct{} // closed when the router revokes the registration
	reason    string        // why, written before revoked is closed
}

// Revoked is closed when the router revokes the registration on its own: an UNREGISTERED
// it sends without a request (wamp.registration.remove_callee, or a cluster settling a
// conflict over the procedure after a partition; the session announces
// registration_revocation). No invocation reaches the handler after it; a callee that
// still wants the procedure registers it again. Safe for concurrent use.
func (r *Registration) Revoked() <-chan struct{} { return r.revoked }

// RevokedReason is the reason the router gave for revoking the registration (a URI such
// as wamp.error.procedure_already_exists, or ""); "" while it is not revoked. Safe for
// concurrent use.
func (r *Registration) RevokedReason() string {
	select {
	case <-r.revoked:
		return r.reason
	default:
		return ""
	}
}

// ID returns the router's registration id. Safe for concurrent use.
func (r *Registration) ID() uint64 { return r.id }

// Procedure returns the procedure URI (or pattern) registered. Safe for concurrent use.
func (r *Registration) Procedure() string { return r.procedure }

// Register registers h for procedure with the REGISTER options opts (nil for none) and
// returns once the router confirmed; invocations that follow REGISTERED all reach h.
// An ERROR (e.g. wamp.error.procedure_already_exists) is returned as *Error.
// Safe for concurrent use.
func (s *Session) Register(ctx context.Context, procedure string, h InvocationHandler, opts map[string]any, ro ...RegisterOption) (*Registration, error) {
	reg := &Registration{s: s, procedure: procedure, h: h, revoked: make(chan struct{})}
	for _, f := range ro {
		f(reg)
	}
	reg.active.Store(true)
	m := getMsg()
	defer putMsg(m)
	m.Type, m.URI, m.DictAny = codec.REGISTER, bytesOf(procedure), opts
	if _, err := s.request(ctx, m, &pending{want: codec.REGISTERED, req: codec.REGISTER, reg: reg}, nil, nil); err != nil {
		return nil, err
	}
	return reg, nil
}

// Unregister sends UNREGISTER and waits for UNREGISTERED. Invocations that arrive before
// UNREGISTERED are still handled. Later calls return nil. Safe for concurrent use.
func (r *Registration) Unregister(ctx context.Context) error {
	if !r.active.CompareAndSwap(true, false) {
		return nil
	}
	s := r.s
	m := getMsg()
	defer putMsg(m)
	m.Type, m.Registration = codec.UNREGISTER, r.id
	_, err := s.request(ctx, m, &pending{want: codec.UNREGISTERED, req: codec.UNREGISTER}, nil, nil)
	s.hmu.Lock()
	if s.regs[r.id] == r {
		delete(s.regs, r.id)
	}
	s.hmu.Unlock()
	return err
}

// Call calls procedure with the CALL options opts (nil for none) and waits for RESULT
// (a *Result) or ERROR (an *Error). When ctx ends first it returns ctx.Err() and the
// result is dropped when it comes. Progressive results are not supported.
// Safe for concurrent use.
func (s *Session) Call(ctx context.Context, procedure string, args []any, kwargs map[string]any, opts map[string]any) (*Result, error) {
	m := getMsg()
	defer putMsg(m)
	m.Type, m.URI, m.DictAny = codec.CALL, bytesOf(procedure), opts
	r, err := s.request(ctx, m, &pending{want: codec.RESULT, req: codec.CALL}, args, kwargs)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if res.Details, err = decodeDict(s.ser, r.details); err != nil {
		return nil, err
	}
	if res.Args, err = decodeList(s.ser, r.args); err != nil {
		return nil, err
	}
	if res.Kwargs, err = decodeDict(s.ser, r.kwargs); err != nil {
		return nil, err
	}
	return res, nil
}

// onInvocation runs the handler of an INVOCATION (reader goroutine).
func (s *Session) onInvocation(m *codec.Message) {
	s.hmu.RLock()
	reg := s.regs[m.Registration]
	s.hmu.RUnlock()
	req := m.Request
	if reg == nil {
		s.sendError(req, &Error{URI: "wamp.error.no_such_registration"})
		return
	}
	d, a, k := copyRaw(m.Dict, m.Args, m.Kwargs)
	inv := &Invocation{Request: req, Registration: m.Registration}
	run := func() {
		var err error
		if inv.Details, err = decodeDict(s.ser, d); err == nil {
			if inv.Args, err = decodeList(s.ser, a); err == nil {
				inv.Kwargs, err = decodeDict(s.ser, k)
			}
		}
		if err != nil {
			s.sendError(req, &Error{URI: "wamp.error.invalid_argument", Args: []any{err.Error()}})
			return
		}
		res, err := reg.h(s.hctx, inv)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				we = &Error{URI: "wamp.error.runtime_error", Args: []any{err.Error()}}
			}
			s.sendError(req, we)
			return
		}
		m := getMsg()
		m.Type, m.Request = codec.YIELD, req
		var args []any
		var kwargs map[string]any
		if res != nil {
			args, kwargs = res.Args, res.Kwargs
		}
		if err := s.send(m, args, kwargs); err != nil {
			s.log.Debug("wamp: YIELD not sent", "request", req, "err", err)
		}
		putMsg(m)
	}
	if reg.inline {
		run()
	} else {
		go run()
	}
}

// sendError answers INVOCATION req with ERROR e.
func (s *Session) sendError(req uint64, e *Error) {
	m := getMsg()
	defer putMsg(m)
	m.Type, m.ErrType, m.Request, m.URI = codec.ERROR, codec.INVOCATION, req, bytesOf(e.URI)
	if e.Details != nil {
		m.DictAny = e.Details
	}
	if err := s.send(m, e.Args, e.Kwargs); err != nil {
		s.log.Debug("wamp: ERROR not sent", "request", req, "err", err)
	}
}

// onRevoked handles an UNREGISTERED the router sent on its own: [UNREGISTERED, 0,
// {registration, reason}] (registration revocation).
func (s *Session) onRevoked(m *codec.Message) {
	d, err := decodeDict(s.ser, m.Dict)
	if err != nil {
		s.log.Debug("wamp: revocation with undecodable details", "err", err)
		return
	}
	id, _ := codec.IDOf(d["registration"])
	s.hmu.Lock()
	r := s.regs[id]
	if r != nil {
		delete(s.regs, id)
	}
	s.hmu.Unlock()
	if r == nil || !r.active.CompareAndSwap(true, false) {
		return
	}
	r.reason, _ = d["reason"].(string)
	close(r.revoked)
	s.log.Debug("wamp: registration revoked by the router", "registration", id, "reason", r.reason)
}
