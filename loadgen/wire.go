package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// The load paths (publishers, subscribers, callers, callees) do not use client.Session:
// it costs a write syscall per message and a goroutine hop per reply. A wconn is a
// client.Transport driven by hand:
//
//   - the session is opened by hand (HELLO, CHALLENGE/AUTHENTICATE for ticket auth,
//     WELCOME), like the protocol tests do;
//   - senders build each message from a pre-encoded template (request id and payload
//     patched in), frame it (RawSocket header, or masked WebSocket frame) and append it to
//     the connection's pending batch; one writer goroutine per connection writes the whole
//     batch with one write syscall (Transport.WriteRawBytes). While a write is in the
//     kernel, the next batch fills: under load, many messages go in one syscall; when the
//     load is light a message goes out at once;
//   - one reader goroutine per connection receives with Transport.Recv (buffered reads,
//     pings answered, zero-allocation codec decode) and hands each message to the
//     scenario's handler on the same goroutine.

// maxPending bounds a connection's unwritten batch: a sender appending beyond it waits
// for the writer (the router reads slower than loadgen writes).
const maxPending = 256 << 10

// authConfig is the session-opening part of Options.
type authConfig struct {
	realm  string
	authID string
	ticket string
	tls    *tls.Config
	// transportOnly: the transport handshake and no WAMP session (the echo scenario).
	transportOnly bool
}

func (o *Options) auth() authConfig {
	return authConfig{realm: o.Realm, authID: o.AuthID, ticket: o.Ticket, tls: o.TLS, transportOnly: o.transportOnly}
}

// helloDetails is the HELLO details dict for a.
func (a authConfig) helloDetails() map[string]any {
	d := map[string]any{
		"roles": map[string]any{
			"publisher": map[string]any{}, "subscriber": map[string]any{},
			"caller": map[string]any{}, "callee": map[string]any{},
		},
		"agent": "switchyard-loadgen",
	}
	if a.authID != "" {
		d["authid"] = a.authID
	}
	if a.ticket != "" {
		d["authmethods"] = []any{"ticket"}
	}
	return d
}

// onChallenge answers a ticket CHALLENGE.
func (a authConfig) onChallenge(method string, _ map[string]any) (string, error) {
	if method != "ticket" || a.ticket == "" {
		return "", fmt.Errorf("loadgen: router asked for %q authentication (only ticket is supported, with --ticket)", method)
	}
	return a.ticket, nil
}

// wconn is one joined session on a raw transport.
type wconn struct {
	t   *client.Transport
	ser codec.Serializer
	ws  bool
	id  uint64 // session id (WELCOME)

	mu      sync.Mutex
	space   sync.Cond // senders waiting for the batch to drain
	waiters int
	buf     []byte // frames not yet handed to the writer
	werr    error  // the write error that stopped the writer
	closed  bool
	kick    chan struct{} // cap 1: the batch went from empty to non-empty
	mask    uint64        // xorshift state for WebSocket masks

	frames, writes atomic.Int64 // messages queued, write syscalls made
	done           chan struct{}
}

// isWebSocket reports whether rawURL is a WebSocket URL (else RawSocket).
func isWebSocket(rawURL string) (bool, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false, fmt.Errorf("loadgen: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
		return true, nil
	case "rs", "rss", "tcp", "tcps", "rs+unix":
		return false, nil
	}
	return false, fmt.Errorf("loadgen: unsupported URL scheme %q (ws, wss, rs, rss, tcp, tcps, rs+unix)", u.Scheme)
}

// dialSession connects to rawURL and joins the realm by hand (a.transportOnly: does not
// join). ctx bounds the handshake.
func dialSession(ctx context.Context, rawURL string, ser codec.Serializer, a authConfig) (*wconn, error) {
	isWS, err := isWebSocket(rawURL)
	if err != nil {
		return nil, err
	}
	t, err := client.Dial(ctx, rawURL, ser, client.WithTLS(a.tls))
	if err != nil {
		return nil, err
	}
	c := &wconn{t: t, ser: ser, ws: isWS, kick: make(chan struct{}, 1), done: make(chan struct{}),
		mask: rand.Uint64() | 1}
	c.space.L = &c.mu
	if a.transportOnly {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = t.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = t.SetReadDeadline(time.Unix(1, 0)) })
	err = c.join(a)
	stop()
	if err != nil {
		t.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("loadgen: joining realm %q: %w", a.realm, cerr)
		}
		return nil, err
	}
	_ = t.SetReadDeadline(time.Time{})
	return c, nil
}

func (c *wconn) join(a authConfig) error {
	if err := c.t.Send(&codec.Message{Type: codec.HELLO, URI: []byte(a.realm), DictAny: a.helloDetails()}); err != nil {
		return fmt.Errorf("loadgen: send HELLO: %w", err)
	}
	var m codec.Message
	for {
		if _, err := c.t.Recv(&m); err != nil {
			return fmt.Errorf("loadgen: joining realm %q: %w", a.realm, err)
		}
		switch m.Type {
		case codec.WELCOME:
			c.id = m.Session
			return nil
		case codec.ABORT:
			return fmt.Errorf("loadgen: joining realm %q: ABORT %s %s", a.realm, m.URI, m.Details.Message)
		case codec.CHALLENGE:
			sig, err := a.onChallenge(string(m.URI), nil)
			if err != nil {
				return err
			}
			if err := c.t.Send(&codec.Message{Type: codec.AUTHENTICATE, URI: []byte(sig)}); err != nil {
				return fmt.Errorf("loadgen: send AUTHENTICATE: %w", err)
			}
		default:
			return fmt.Errorf("loadgen: router sent %v before WELCOME", m.Type)
		}
	}
}

// request sends m and waits for the reply of type want to m.Request (SUBSCRIBED,
// REGISTERED, ...), before the reader goroutine starts. ctx bounds the wait.
func (c *wconn) request(ctx context.Context, m *codec.Message, want codec.MessageType) (codec.Message, error) {
	if err := c.t.Send(m); err != nil {
		return codec.Message{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.t.SetReadDeadline(dl)
	}
	defer c.t.SetReadDeadline(time.Time{})
	var r codec.Message
	for {
		if _, err := c.t.Recv(&r); err != nil {
			return r, err
		}
		switch {
		case r.Type == want && r.Request == m.Request:
			return r, nil
		case r.Type == codec.ERROR && r.Request == m.Request:
			return r, fmt.Errorf("%v %s: ERROR %s", m.Type, m.URI, r.URI)
		case r.Type == codec.ABORT || r.Type == codec.GOODBYE:
			return r, fmt.Errorf("%v %s: session ended: %v %s", m.Type, m.URI, r.Type, r.URI)
		}
	}
}

// start runs the writer and the reader goroutines; handle gets every received message
// on the reader goroutine (m and raw valid until it returns). When the connection ends,
// lost is called with the reason (unless the run closed it) and Done closes.
func (c *wconn) start(handle func(m *codec.Message), lost func(error)) {
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	wg.Go(func() {
		var m codec.Message
		for {
			_, err := c.t.Recv(&m)
			if err != nil {
				if errors.Is(err, codec.ErrInvalid) {
					lost(fmt.Errorf("session %d: %w", c.id, err))
					continue
				}
				if !c.isClosed() {
					lost(fmt.Errorf("session %d: connection lost: %w", c.id, err))
				}
				c.shutdown()
				return
			}
			switch m.Type {
			case codec.GOODBYE, codec.ABORT:
				if !c.isClosed() {
					lost(fmt.Errorf("session %d: router sent %v %s", c.id, m.Type, m.URI))
				}
				c.shutdown()
				return
			}
			handle(&m)
		}
	})
	go func() { wg.Wait(); close(c.done) }()
}

func (c *wconn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// shutdown stops the writer and wakes blocked senders.
func (c *wconn) shutdown() {
	c.mu.Lock()
	c.closed = true
	c.space.Broadcast()
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Close ends the connection (no GOODBYE: a load generator does not wait).
func (c *wconn) Close() {
	c.shutdown()
	c.t.Close()
}

// Done is closed when both goroutines have ended (after start).
func (c *wconn) Done() <-chan struct{} { return c.done }

var errConnClosed = errors.New("loadgen: connection closed")

// send frames msg and appends it to the pending batch (msg is copied). It blocks while
// the batch is full. Safe for concurrent use.
func (c *wconn) send(msg []byte) error {
	c.mu.Lock()
	for len(c.buf) >= maxPending && !c.closed && c.werr == nil {
		c.waiters++
		c.space.Wait()
		c.waiters--
	}
	if c.werr != nil || c.closed {
		err := c.werr
		c.mu.Unlock()
		if err == nil {
			err = errConnClosed
		}
		return err
	}
	wasEmpty := len(c.buf) == 0
	c.buf = c.appendFrame(c.buf, msg)
	c.mu.Unlock()
	c.frames.Add(1)
	if wasEmpty {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// appendFrame appends msg as one RawSocket message frame or one masked WebSocket data
// frame (text for JSON, binary otherwise).
func (c *wconn) appendFrame(dst, msg []byte) []byte {
	if !c.ws {
		return appendRSFrame(dst, rsFrameMessage, msg)
	}
	return appendWSFrame(dst, wsDataOp(c.ser), msg, &c.mask)
}

// RawSocket frame types (the low 3 bits of a frame's first byte).
const (
	rsFrameMessage = 0
	rsFramePing    = 1
	rsFramePong    = 2
)

// appendRSFrame appends one RawSocket frame of type typ carrying p.
func appendRSFrame(dst []byte, typ byte, p []byte) []byte {
	n := len(p)
	dst = append(dst, typ, byte(n>>16), byte(n>>8), byte(n))
	return append(dst, p...)
}

// wsDataOp is the WebSocket opcode of WAMP messages: text for JSON, binary otherwise.
func wsDataOp(ser codec.Serializer) byte {
	if ser == codec.JSON {
		return byte(ws.OpText)
	}
	return byte(ws.OpBinary)
}

// appendWSFrame appends p as one masked client WebSocket frame (FIN set) of opcode op;
// mask is the xorshift state (non-zero) the frame's mask is drawn from.
func appendWSFrame(dst []byte, op byte, p []byte, mask *uint64) []byte {
	dst = appendWSHead(dst, 0x80|op, 0x80, len(p))
	// A fresh mask per frame (RFC 6455 5.3); xorshift is enough for a load generator.
	x := xorshift(mask)
	m := [4]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)}
	dst = append(dst, m[:]...)
	start := len(dst)
	dst = append(dst, p...)
	ws.Cipher(dst[start:], m, 0)
	return dst
}

// xorshift advances the xorshift64 state *s (non-zero) and returns the new value.
func xorshift(s *uint64) uint64 {
	x := *s
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*s = x
	return x
}

// writeLoop writes each batch with one syscall.
func (c *wconn) writeLoop() {
	var out []byte
	for range c.kick {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		out, c.buf = c.buf, out[:0]
		if c.waiters > 0 {
			c.space.Broadcast()
		}
		c.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		c.writes.Add(1)
		if err := c.t.WriteRawBytes(out); err != nil {
			c.mu.Lock()
			c.werr = err
			c.space.Broadcast()
			c.mu.Unlock()
			return
		}
		if cap(out) > 4*maxPending {
			out = nil
		}
	}
}

// template is a pre-encoded message of one type with the request id and the Arguments
// list left out: build writes head + id + mid + args + tail.
type template struct {
	ser             codec.Serializer
	head, mid, tail []byte
}

// newTemplate encodes m (Request and Args are ignored) and cuts it around the request id
// and the arguments. m must have Arguments and no ArgumentsKw.
func newTemplate(ser codec.Serializer, m codec.Message) (*template, error) {
	cdc := codec.For(ser)
	args, err := codec.AppendValue(nil, ser, []any{"loadgen-template"})
	if err != nil {
		return nil, err
	}
	m.Args, m.Kwargs = args, nil
	m.Request = 0
	enc0, err := cdc.Append(nil, &m)
	if err != nil {
		return nil, err
	}
	m.Request = 1
	enc1, err := cdc.Append(nil, &m)
	if err != nil {
		return nil, err
	}
	if len(enc0) != len(enc1) {
		return nil, fmt.Errorf("loadgen: %v template: unexpected encoding", m.Type)
	}
	k := 0 // the one byte that differs is the request id
	for k < len(enc0) && enc0[k] == enc1[k] {
		k++
	}
	tail := []byte(nil)
	if ser == codec.JSON || ser == codec.UBJSON {
		tail = []byte("]")
	}
	a := len(enc0) - len(tail) - len(args)
	if k >= a || !bytes.Equal(enc0[a:a+len(args)], args) || !bytes.Equal(enc0[a+len(args):], tail) {
		return nil, fmt.Errorf("loadgen: %v template: unexpected encoding", m.Type)
	}
	start := k
	if ser == codec.UBJSON {
		start-- // the id's integer marker (U for 0 and 1) goes with the id: appendUint writes it
	}
	return &template{ser: ser, head: slices.Clone(enc0[:start]), mid: slices.Clone(enc0[k+1 : a]), tail: tail}, nil
}

// build appends the message with request id and encoded Arguments args to dst.
func (t *template) build(dst []byte, id uint64, args []byte) []byte {
	dst = append(dst, t.head...)
	dst = appendUint(dst, t.ser, id)
	dst = append(dst, t.mid...)
	dst = append(dst, args...)
	return append(dst, t.tail...)
}

// appendUint appends v in its smallest encoding.
func appendUint(dst []byte, ser codec.Serializer, v uint64) []byte {
	switch ser {
	case codec.JSON:
		return strconv.AppendUint(dst, v, 10)
	case codec.UBJSON: // U, I, l, L (py-ubjson's smallest forms)
		switch {
		case v <= 0xFF:
			return append(dst, 'U', byte(v))
		case v <= 0x7FFF:
			return append(dst, 'I', byte(v>>8), byte(v))
		case v <= 0x7FFFFFFF:
			return append(dst, 'l', byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return append(dst, 'L', byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case codec.MsgPack:
		switch {
		case v < 0x80:
			return append(dst, byte(v))
		case v <= 0xFF:
			return append(dst, 0xcc, byte(v))
		case v <= 0xFFFF:
			return append(dst, 0xcd, byte(v>>8), byte(v))
		case v <= 0xFFFFFFFF:
			return append(dst, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return append(dst, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default: // CBOR major type 0
		switch {
		case v < 24:
			return append(dst, byte(v))
		case v <= 0xFF:
			return append(dst, 0x18, byte(v))
		case v <= 0xFFFF:
			return append(dst, 0x19, byte(v>>8), byte(v))
		case v <= 0xFFFFFFFF:
			return append(dst, 0x1a, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return append(dst, 0x1b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// dialAll joins n sessions with up to workers concurrent joins, spread round-robin over
// o.URLs (see Options.takeURLs); on error the joined ones are closed.
func dialAll(ctx context.Context, o *Options, n, workers int) ([]*wconn, error) {
	cs := make([]*wconn, n)
	base := o.takeURLs(n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	firstURL := strings.Join(o.URLs, ",")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				k := o.urlAt(base, i)
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := dialSession(cctx, o.URLs[k], o.Serializer, o.auth())
				ccancel()
				if err != nil {
					once.Do(func() { firstErr, firstURL = err, o.URLs[k]; cancel() })
					return
				}
				o.joinedAt(k)
				cs[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeConns(cs)
		return nil, fmt.Errorf("loadgen: joining %s realm %s: %w", firstURL, o.Realm, firstErr)
	}
	return cs, nil
}

func closeConns(cs []*wconn) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// ioStats sums the messages queued and the write syscalls of cs.
func ioStats(cs ...[]*wconn) (frames, writes int64) {
	for _, l := range cs {
		for _, c := range l {
			if c != nil {
				frames += c.frames.Load()
				writes += c.writes.Load()
			}
		}
	}
	return
}
