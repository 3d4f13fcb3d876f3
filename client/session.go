package client

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Config describes a session to open with Connect. Connect does not modify it and only
// reads it during the call: one Config may be shared by concurrent Connects.
type Config struct {
	URL        string           // ws://, wss://, rs://, rss://, tcp:// or tcps://
	Realm      string           // realm to join
	Serializer codec.Serializer // zero means codec.JSON
	Batched    bool             // batched WebSocket subprotocol

	AuthID      string
	AuthMethods []string
	AuthExtra   map[string]any
	// OnChallenge answers a CHALLENGE with the signature for AUTHENTICATE. When nil, a
	// CHALLENGE fails Connect. It is called on the goroutine running Connect.
	OnChallenge func(method string, extra map[string]any) (signature string, err error)

	TLSConfig *tls.Config // for wss:// rss:// tcps://
	// Header is added to the WebSocket upgrade request (e.g. a Cookie); OnResponseHeader
	// sees each header of the upgrade response (e.g. Set-Cookie). WebSocket only.
	Header           http.Header
	OnResponseHeader func(key, value string)
	Logger           *slog.Logger // nil: discard
}

// Session is a joined WAMP session. One reader goroutine per session receives messages,
// completes requests, and runs event handlers (inline, in order) and invocation handlers
// (each in its own goroutine unless registered with InlineInvocations).
//
// All methods are safe for concurrent use. Handlers that run on the reader goroutine
// (event handlers, inline invocation handlers) must not wait for a reply from the router
// on the same session (Call, Subscribe, Publish with Acknowledge, ...): that reply is read
// by the goroutine they block. Start a goroutine for that.
type Session struct {
	t        *Transport
	ser      codec.Serializer
	log      *slog.Logger
	id       uint64
	realm    string
	authID   string
	authRole string
	welcome  map[string]any

	reqID   atomic.Uint64 // last request id used
	leaving atomic.Bool   // our GOODBYE was sent

	mu      sync.Mutex
	pending map[uint64]*pending
	ended   bool
	err     error
	done    chan struct{}

	hmu  sync.RWMutex
	subs map[uint64][]*Subscription // copy-on-write slices
	regs map[uint64]*Registration

	hctx    context.Context // context of invocation handlers, ends with the session
	hcancel context.CancelFunc

	rawEv Event // reused for raw events (reader goroutine only)
}

// pending is a request waiting for its reply.
type pending struct {
	want codec.MessageType // reply type on success (PUBLISHED, RESULT, ...)
	req  codec.MessageType // request type (ERROR.ErrType on failure)
	sub  *Subscription     // SUBSCRIBE: installed by the reader on SUBSCRIBED
	reg  *Registration     // REGISTER: installed by the reader on REGISTERED
	ch   chan reply        // buffered (1): the reader never blocks on it
}

// reply is what the reader hands to a waiting request. Raw parts are copies.
type reply struct {
	id      uint64 // Publication, Subscription or Registration
	err     error
	details codec.Raw
	args    codec.Raw
	kwargs  codec.Raw
}

var msgPool = sync.Pool{New: func() any { return new(codec.Message) }}

func getMsg() *codec.Message { return msgPool.Get().(*codec.Message) }

func putMsg(m *codec.Message) {
	m.Reset()
	msgPool.Put(m)
}

// bytesOf returns the bytes of s without copying; the codec only reads them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Connect dials cfg.URL, sends HELLO, answers CHALLENGEs with cfg.OnChallenge and returns
// the session on WELCOME. An ABORT is returned as *Error. ctx bounds the connection and
// the opening handshake only. Safe for concurrent use.
func Connect(ctx context.Context, cfg Config) (*Session, error) {
	ser := cfg.Serializer
	if ser == 0 {
		ser = codec.JSON
	}
	opts := []DialOption{WithTLS(cfg.TLSConfig), WithHeader(cfg.Header), WithResponseHeader(cfg.OnResponseHeader)}
	if cfg.Batched {
		opts = append(opts, WithBatched())
	}
	t, err := Dial(ctx, cfg.URL, ser, opts...)
	if err != nil {
		return nil, err
	}
	s, err := join(ctx, t, &cfg)
	if err != nil {
		t.Close()
		return nil, err
	}
	go s.readLoop()
	return s, nil
}

// join runs the opening handshake on t.
func join(ctx context.Context, t *Transport, cfg *Config) (*Session, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		t: t, ser: t.Serializer(), log: log, realm: cfg.Realm,
		pending: make(map[uint64]*pending), done: make(chan struct{}),
		subs: make(map[uint64][]*Subscription), regs: make(map[uint64]*Registration),
	}
	undo := ctxDeadline(ctx, t.conn)
	err := s.handshake(cfg)
	if uerr := undo(); err == nil && uerr != nil {
		err = uerr
	}
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, fmt.Errorf("client: joining realm %q: %w", cfg.Realm, cerr)
		}
		return nil, err
	}
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	return s, nil
}

func (s *Session) handshake(cfg *Config) error {
	details := map[string]any{
		"roles": map[string]any{
			"publisher": map[string]any{}, "subscriber": map[string]any{},
			"caller": map[string]any{},
			"callee": map[string]any{"features": map[string]any{"registration_revocation": true}},
		},
		"agent": "switchyard-client",
	}
	if cfg.AuthID != "" {
		details["authid"] = cfg.AuthID
	}
	if len(cfg.AuthMethods) > 0 {
		ms := make([]any, len(cfg.AuthMethods))
		for i, m := range cfg.AuthMethods {
			ms[i] = m
		}
		details["authmethods"] = ms
	}
	if cfg.AuthExtra != nil {
		details["authextra"] = cfg.AuthExtra
	}
	if err := s.t.Send(&codec.Message{Type: codec.HELLO, URI: []byte(cfg.Realm), DictAny: details}); err != nil {
		return fmt.Errorf("client: send HELLO: %w", err)
	}
	var m codec.Message
	for {
		if _, err := s.t.Recv(&m); err != nil {
			return fmt.Errorf("client: joining realm %q: %w", cfg.Realm, err)
		}
		switch m.Type {
		case codec.WELCOME:
			d, err := decodeDict(s.ser, m.Dict)
			if err != nil {
				return fmt.Errorf("client: WELCOME details: %w", err)
			}
			s.id, s.welcome = m.Session, d
			s.authID, _ = d["authid"].(string)
			s.authRole, _ = d["authrole"].(string)
			if r, ok := d["realm"].(string); ok && r != "" {
				s.realm = r
			}
			return nil
		case codec.ABORT:
			return s.wampError(&m)
		case codec.CHALLENGE:
			method := string(m.URI)
			extra, err := decodeDict(s.ser, m.Dict)
			if err != nil {
				return fmt.Errorf("client: CHALLENGE extra: %w", err)
			}
			if cfg.OnChallenge == nil {
				s.abort("wamp.error.authentication_failed", "no challenge handler")
				return fmt.Errorf("client: router sent a %q CHALLENGE and Config.OnChallenge is nil", method)
			}
			if kind, _ := extra["channel_binding"].(string); kind != "" {
				// WAMP-Cryptosign channel binding: hand the handler the channel id to
				// XOR into the challenge (hex, 32 bytes).
				id, err := s.t.channelID(kind)
				if err != nil {
					s.abort("wamp.error.authentication_failed", err.Error())
					return fmt.Errorf("client: %s challenge: %w", method, err)
				}
				extra["channel_id"] = hex.EncodeToString(id)
			}
			sig, err := cfg.OnChallenge(method, extra)
			if err != nil {
				s.abort("wamp.error.authentication_failed", err.Error())
				return fmt.Errorf("client: %s challenge: %w", method, err)
			}
			if err := s.t.Send(&codec.Message{Type: codec.AUTHENTICATE, URI: []byte(sig)}); err != nil {
				return fmt.Errorf("client: send AUTHENTICATE: %w", err)
			}
		default:
			s.abort("wamp.error.protocol_violation", "unexpected "+m.Type.String()+" before WELCOME")
			return errProtocol("router sent %v before WELCOME", m.Type)
		}
	}
}

// abort sends ABORT (best effort).
func (s *Session) abort(reason, message string) {
	m := codec.Message{Type: codec.ABORT, URI: []byte(reason)}
	m.Details.Has, m.Details.Message = codec.KeyMessage, []byte(message)
	_ = s.t.Send(&m)
}

// ID returns the session id the router assigned. Safe for concurrent use.
func (s *Session) ID() uint64 { return s.id }

// Realm returns the realm joined (WELCOME.Details.realm, else Config.Realm). Safe for
// concurrent use.
func (s *Session) Realm() string { return s.realm }

// AuthID returns WELCOME.Details.authid. Safe for concurrent use.
func (s *Session) AuthID() string { return s.authID }

// AuthRole returns WELCOME.Details.authrole. Safe for concurrent use.
func (s *Session) AuthRole() string { return s.authRole }

// WelcomeDetails returns the WELCOME details; the map is shared and must not be modified.
// Safe for concurrent use.
func (s *Session) WelcomeDetails() map[string]any { return s.welcome }

// Done returns a channel closed when the session has ended. Safe for concurrent use.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session runs, then why it ended: ErrSessionClosed after Leave
// or Close, an *Error for a router GOODBYE or ABORT (URI = reason), or the transport
// error. Safe for concurrent use.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Leave sends GOODBYE with reason (default wamp.close.close_realm), waits for the
// router's GOODBYE and closes the transport. If ctx ends first, the transport is closed
// and ctx.Err() returned. Safe for concurrent use.
func (s *Session) Leave(ctx context.Context, reason string) error {
	if reason == "" {
		reason = "wamp.close.close_realm"
	}
	if err := s.Err(); err != nil {
		return err
	}
	if s.leaving.Swap(true) {
		return s.waitEnd(ctx) // another Leave is in progress
	}
	m := getMsg()
	m.Type, m.URI = codec.GOODBYE, bytesOf(reason)
	err := s.t.Send(m)
	putMsg(m)
	if err != nil {
		s.end(ErrSessionClosed)
		return err
	}
	return s.waitEnd(ctx)
}

func (s *Session) waitEnd(ctx context.Context) error {
	select {
	case <-s.done:
		if err := s.Err(); err != ErrSessionClosed {
			return err
		}
		return nil
	case <-ctx.Done():
		s.end(ErrSessionClosed)
		return ctx.Err()
	}
}

// Close ends the session without GOODBYE and closes the transport; pending requests
// fail. Safe for concurrent use; later calls do nothing.
func (s *Session) Close() error {
	s.end(ErrSessionClosed)
	return nil
}

// end finishes the session once: records err, closes the transport, fails every pending
// request, then closes Done.
func (s *Session) end(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.err = true, err
	ps := s.pending
	s.pending = nil
	s.mu.Unlock()
	s.hcancel()
	s.t.Close()
	perr := fmt.Errorf("client: session ended: %w", err)
	for _, p := range ps {
		p.ch <- reply{err: perr}
	}
	close(s.done)
}

// readLoop is the session's reader goroutine.
func (s *Session) readLoop() {
	var m codec.Message
	for {
		_, err := s.t.Recv(&m)
		if err != nil {
			if errors.Is(err, codec.ErrInvalid) {
				s.abort("wamp.error.protocol_violation", err.Error())
				s.end(fmt.Errorf("client: bad message from router: %w", err))
			} else {
				s.end(fmt.Errorf("client: transport: %w", err))
			}
			return
		}
		if !s.dispatch(&m) {
			return
		}
	}
}

// dispatch handles one message; false when the session has ended.
func (s *Session) dispatch(m *codec.Message) bool {
	switch m.Type {
	case codec.EVENT:
		s.onEvent(m)
	case codec.INVOCATION:
		s.onInvocation(m)
	case codec.UNREGISTERED:
		if m.Request == 0 { // the router revoked a registration
			s.onRevoked(m)
			return true
		}
		s.complete(m)
	case codec.RESULT, codec.PUBLISHED, codec.SUBSCRIBED, codec.REGISTERED, codec.ERROR:
		s.complete(m)
	case codec.UNSUBSCRIBED:
		if m.Request == 0 { // the router revoked a subscription
			s.log.Debug("wamp: subscription revoked by the router", "subscription", m.Subscription)
			return true
		}
		s.complete(m)
	case codec.INTERRUPT:
		s.log.Debug("wamp: INTERRUPT ignored (call canceling not supported)", "request", m.Request)
	case codec.GOODBYE:
		if s.leaving.Load() {
			s.end(ErrSessionClosed)
			return false
		}
		err := s.wampError(m)
		g := codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.goodbye_and_out")}
		_ = s.t.Send(&g)
		s.end(err)
		return false
	case codec.ABORT:
		s.end(s.wampError(m))
		return false
	default:
		s.abort("wamp.error.protocol_violation", "unexpected "+m.Type.String())
		s.end(errProtocol("router sent %v in an established session", m.Type))
		return false
	}
	return true
}

// request sends m (with payload args/kwargs) as a new request and waits for its reply.
// When ctx ends first the request is forgotten and ctx.Err() returned.
func (s *Session) request(ctx context.Context, m *codec.Message, p *pending, args []any, kwargs map[string]any) (reply, error) {
	id := s.reqID.Add(1)
	m.Request = id
	p.ch = make(chan reply, 1)
	s.mu.Lock()
	if s.ended {
		err := s.err
		s.mu.Unlock()
		return reply{}, fmt.Errorf("client: session ended: %w", err)
	}
	s.pending[id] = p
	s.mu.Unlock()
	if err := s.send(m, args, kwargs); err != nil {
		if s.forget(id) {
			return reply{}, s.sendErr(err)
		}
		r := <-p.ch // the session ended meanwhile
		return r, r.err
	}
	select {
	case r := <-p.ch:
		return r, r.err
	case <-ctx.Done():
		if s.forget(id) {
			return reply{}, ctx.Err()
		}
		r := <-p.ch // the reply was being delivered: use it
		return r, r.err
	}
}

// forget removes a pending request; false if it was already taken by the reader (or by
// end), which then sends (or has sent) its reply.
func (s *Session) forget(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok {
		return false
	}
	delete(s.pending, id)
	return true
}

// complete hands a reply (or ERROR) to its pending request.
func (s *Session) complete(m *codec.Message) {
	s.mu.Lock()
	p := s.pending[m.Request]
	ok := p != nil && ((m.Type == codec.ERROR && m.ErrType == p.req) || m.Type == p.want)
	if ok {
		delete(s.pending, m.Request)
	}
	s.mu.Unlock()
	if !ok {
		s.log.Debug("wamp: reply to no pending request", "type", m.Type, "request", m.Request)
		return
	}
	var r reply
	switch m.Type {
	case codec.ERROR:
		r.err = s.wampError(m)
	case codec.PUBLISHED:
		r.id = m.Publication
	case codec.SUBSCRIBED:
		r.id = m.Subscription
		p.sub.id = m.Subscription
		s.addSub(p.sub)
	case codec.REGISTERED:
		r.id = m.Registration
		p.reg.id = m.Registration
		s.hmu.Lock()
		s.regs[r.id] = p.reg
		s.hmu.Unlock()
	case codec.RESULT:
		r.details, r.args, r.kwargs = copyRaw(m.Dict, m.Args, m.Kwargs)
	}
	p.ch <- r
}

// copyRaw copies three raw values into one allocation.
func copyRaw(a, b, c codec.Raw) (codec.Raw, codec.Raw, codec.Raw) {
	n := len(a) + len(b) + len(c)
	if n == 0 {
		return nil, nil, nil
	}
	buf := make([]byte, 0, n)
	cp := func(r codec.Raw) codec.Raw {
		if r == nil {
			return nil
		}
		buf = append(buf, r...)
		return buf[len(buf)-len(r) : len(buf) : len(buf)]
	}
	return cp(a), cp(b), cp(c)
}

// wampError builds an *Error from an ERROR, ABORT or GOODBYE message. Payload values
// that fail to decode are left out.
func (s *Session) wampError(m *codec.Message) *Error {
	e := &Error{URI: string(m.URI)}
	e.Details, _ = decodeDict(s.ser, m.Dict)
	e.Args, _ = decodeList(s.ser, m.Args)
	e.Kwargs, _ = decodeDict(s.ser, m.Kwargs)
	return e
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// send encodes args and kwargs into m's payload and sends m.
func (s *Session) send(m *codec.Message, args []any, kwargs map[string]any) error {
	if args == nil && kwargs == nil {
		return s.t.Send(m)
	}
	bp := scratchPool.Get().(*[]byte)
	b := (*bp)[:0]
	var err error
	if args != nil {
		if b, err = codec.AppendValue(b, s.ser, args); err != nil {
			return fmt.Errorf("client: encode args: %w", err)
		}
	}
	n := len(b)
	if kwargs != nil {
		if b, err = codec.AppendValue(b, s.ser, kwargs); err != nil {
			return fmt.Errorf("client: encode kwargs: %w", err)
		}
		m.Kwargs = b[n:]
	}
	if args != nil {
		m.Args = b[:n]
	}
	err = s.t.Send(m)
	m.Args, m.Kwargs = nil, nil
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		scratchPool.Put(bp)
	}
	return err
}

// decodeDict decodes a raw dict; nil raw (absent) gives a nil map.
func decodeDict(ser codec.Serializer, raw codec.Raw) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	return codec.DecodeDict(ser, raw)
}

// decodeList decodes a raw list; nil raw gives a nil slice.
func decodeList(ser codec.Serializer, raw codec.Raw) ([]any, error) {
	if raw == nil {
		return nil, nil
	}
	v, err := codec.DecodeValue(ser, raw)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("client: expected a list, got %T", v)
	}
	return l, nil
}
