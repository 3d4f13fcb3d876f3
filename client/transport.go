// Package client is the Go WAMP client of switchyard: the tests, the load generator and
// the cluster control plane use it.
//
// It has two layers. A Transport (Dial) carries encoded WAMP messages over WebSocket
// (ws://, wss://, optionally batched) or RawSocket (rs://, rss://, tcp://, tcps://, and
// rs+unix:///path/to.sock on a Unix domain socket) on a plain net.Conn. A Session (Connect) runs the WAMP session on a Transport: HELLO,
// authentication, WELCOME, then publish/subscribe and call/register, with one reader
// goroutine per session.
package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// DefaultMaxMessageSize is the largest message a Transport accepts unless
// WithMaxMessageSize says otherwise (16 MiB, the RawSocket maximum). A constant: safe for
// concurrent use.
const DefaultMaxMessageSize = 1 << 24

// DialOption configures Dial. Options are pure functions: safe for concurrent use.
type DialOption func(*dialOptions)

type dialOptions struct {
	tls      *tls.Config
	batched  bool
	maxMsg   int
	header   http.Header
	onHeader func(key, value string)
}

// WithTLS sets the TLS configuration for wss:// rss:// and tcps:// URLs. When its
// ServerName is empty, the URL host is used. c is not modified. Safe for concurrent use.
func WithTLS(c *tls.Config) DialOption { return func(o *dialOptions) { o.tls = c } }

// WithHeader adds HTTP headers (e.g. Cookie) to the WebSocket upgrade request; other
// transports ignore it. h is not modified. Safe for concurrent use.
func WithHeader(h http.Header) DialOption { return func(o *dialOptions) { o.header = h } }

// WithResponseHeader calls f with every header of the router's WebSocket upgrade
// response (e.g. Set-Cookie), during Dial. Safe for concurrent use.
func WithResponseHeader(f func(key, value string)) DialOption {
	return func(o *dialOptions) { o.onHeader = f }
}

// WithBatched selects the batched WebSocket subprotocols (wamp.2.json.batched, ...).
// Sent messages still go one per frame; received frames may hold several messages.
// RawSocket has no batched mode: Dial fails with it. Safe for concurrent use.
func WithBatched() DialOption { return func(o *dialOptions) { o.batched = true } }

// WithMaxMessageSize sets the largest message the transport accepts (and, for RawSocket,
// announces to the router, rounded up to a power of two between 512 bytes and 16 MiB).
// Safe for concurrent use.
func WithMaxMessageSize(n int) DialOption { return func(o *dialOptions) { o.maxMsg = n } }

// Transport is one connection to a router carrying encoded WAMP messages.
//
// Send, SendRaw, WriteRawBytes, Serializer and Close are safe for concurrent use. Recv is
// meant for one reader goroutine: it must not be called concurrently with itself, but it
// may run concurrently with the writing methods.
type Transport struct {
	conn    net.Conn
	r       io.Reader // buffered reader on conn
	ser     codec.Serializer
	cdc     codec.Codec
	ws      bool
	batched bool
	maxIn   int // largest message (or frame payload) accepted
	maxOut  int // largest message the peer accepts (RawSocket); 0 = no limit announced

	wmu     sync.Mutex
	wbuf    []byte
	werr    error // sticky write error: the stream may be cut mid-frame
	wclosed bool  // WebSocket close frame sent

	// Reader state, owned by the goroutine calling Recv.
	rbuf  []byte
	batch []byte // rest of a batched frame not yet returned
	hbuf  [14]byte
	rerr  error // sticky read error

	closeOnce sync.Once
	closeErr  error
}

// Dial connects to a WAMP router at rawURL with serializer ser and performs the transport
// handshake (WebSocket upgrade with subprotocol negotiation, or RawSocket handshake).
// ctx bounds the dial and handshake only. Safe for concurrent use.
func Dial(ctx context.Context, rawURL string, ser codec.Serializer, opts ...DialOption) (*Transport, error) {
	o := dialOptions{maxMsg: DefaultMaxMessageSize}
	for _, f := range opts {
		f(&o)
	}
	if o.maxMsg <= 0 {
		o.maxMsg = DefaultMaxMessageSize
	}
	if !ser.Valid() {
		return nil, fmt.Errorf("client: unsupported serializer %v", ser)
	}
	if o.batched && ser == codec.Flatbuffers {
		return nil, fmt.Errorf("client: %v has no batched WebSocket subprotocol", ser)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
		return dialWebSocket(ctx, rawURL, ser, &o)
	case "rs", "tcp", "rs+unix":
		return dialRawSocket(ctx, u, false, ser, &o)
	case "rss", "tcps":
		return dialRawSocket(ctx, u, true, ser, &o)
	}
	return nil, fmt.Errorf("client: unsupported URL scheme %q (want ws, wss, rs, rss, tcp, tcps or rs+unix)", u.Scheme)
}

func newTransport(conn net.Conn, r io.Reader, ser codec.Serializer) *Transport {
	return &Transport{conn: conn, r: r, ser: ser, cdc: codec.For(ser)}
}

// Serializer returns the serializer the transport speaks. Safe for concurrent use.
func (t *Transport) Serializer() codec.Serializer { return t.ser }

// Send encodes m with the transport's serializer and writes it as one message.
// It returns ErrMessageTooLarge, sending nothing, if the router announced a smaller
// maximum length. Safe for concurrent use.
func (t *Transport) Send(m *codec.Message) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.werr != nil {
		return t.werr
	}
	start := t.headroom()
	off := start
	if t.ws && t.batched && t.ser != codec.JSON {
		off += 4 // length prefix of a batched binary message
	}
	buf, err := t.cdc.Append(slices.Grow(t.wbuf[:0], off+256)[:off], m)
	if err != nil {
		return fmt.Errorf("client: encode %v: %w", m.Type, err)
	}
	if t.ws && t.batched {
		if t.ser == codec.JSON {
			buf = append(buf, 0x1E)
		} else {
			n := len(buf) - off
			buf[start], buf[start+1], buf[start+2], buf[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		}
	}
	t.wbuf = buf
	return t.writeFrameLocked(buf, start, false)
}

// SendRaw writes b unchanged as the payload of one message frame (one WebSocket data
// frame, or one RawSocket message frame), without checking it and without the router's
// announced length limit: tests use it to send malformed or oversized messages.
// b is not modified. Safe for concurrent use.
func (t *Transport) SendRaw(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.werr != nil {
		return t.werr
	}
	start := t.headroom()
	buf := append(slices.Grow(t.wbuf[:0], start+len(b))[:start], b...)
	t.wbuf = buf
	return t.writeFrameLocked(buf, start, true)
}

// WriteRawBytes writes b straight to the connection, with no framing at all: for tests of
// the transport level. Safe for concurrent use.
func (t *Transport) WriteRawBytes(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.werr != nil {
		return t.werr
	}
	_, err := t.conn.Write(b)
	if err != nil {
		t.werr = err
	}
	return err
}

// headroom is the room left before the payload in wbuf for the frame header.
func (t *Transport) headroom() int {
	if t.ws {
		return maxWSHeader
	}
	return 4
}

// writeFrameLocked frames buf[start:] (the header goes into buf[:start]) and writes it.
// raw skips the peer's length limit. t.wmu must be held.
func (t *Transport) writeFrameLocked(buf []byte, start int, raw bool) error {
	var err error
	if t.ws {
		err = t.writeWSLocked(buf, start, t.dataOpCode())
	} else {
		err = t.writeRSLocked(buf, start, rsMessage, raw)
	}
	if cap(t.wbuf) > 1<<20 {
		t.wbuf = nil // do not keep a huge buffer after one big message
	}
	return err
}

// noteWriteErr records a failed write; a write cut short leaves the stream unusable.
func (t *Transport) noteWriteErr(err error) error {
	if err != nil && !errors.Is(err, ErrMessageTooLarge) {
		t.werr = err
	}
	return err
}

// Recv reads the next message and decodes it into m. It returns the message's raw
// bytes, which m aliases; both are valid until the next call of Recv. A decode error
// (wrapping codec.ErrInvalid) comes with the raw bytes and the transport stays usable;
// a transport error (including *CloseError) is returned by every later call too.
// Not safe for concurrent use with itself.
func (t *Transport) Recv(m *codec.Message) ([]byte, error) {
	b, err := t.next()
	if err != nil {
		return nil, err
	}
	if err := t.cdc.Decode(b, m); err != nil {
		return b, err
	}
	return b, nil
}

// next returns the bytes of the next message.
func (t *Transport) next() ([]byte, error) {
	if t.rerr != nil {
		return nil, t.rerr
	}
	for {
		if t.batched && len(t.batch) > 0 {
			b, err := t.splitBatch()
			if err != nil {
				t.rerr = err
				return nil, err
			}
			if len(b) > 0 {
				return b, nil
			}
			continue
		}
		if cap(t.rbuf) > 4<<20 {
			t.rbuf = nil // the previous message was huge: do not keep its buffer
		}
		var b []byte
		var err error
		if t.ws {
			b, err = t.readWSMessage()
		} else {
			b, err = t.readRSMessage()
		}
		if err != nil {
			t.rerr = err
			return nil, err
		}
		if !t.batched {
			return b, nil
		}
		t.batch = b
	}
}

// splitBatch cuts the next message off t.batch.
func (t *Transport) splitBatch() ([]byte, error) {
	b := t.batch
	if t.ser == codec.JSON {
		for i, c := range b {
			if c == 0x1E {
				t.batch = b[i+1:]
				return b[:i], nil
			}
		}
		t.batch = nil // tolerate a missing final separator
		return b, nil
	}
	if len(b) < 4 {
		return nil, errProtocol("batched frame: %d trailing bytes", len(b))
	}
	n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n > len(b)-4 {
		return nil, errProtocol("batched frame: message length %d exceeds frame (%d bytes left)", n, len(b)-4)
	}
	t.batch = b[4+n:]
	return b[4 : 4+n], nil
}

// readFull appends n bytes read from t.r to buf, growing buf as bytes arrive rather than
// trusting the peer-declared n for allocation.
func (t *Transport) readFull(buf []byte, n int) ([]byte, error) {
	const chunk = 64 << 10
	for n > 0 {
		c := min(n, chunk)
		start := len(buf)
		buf = slices.Grow(buf, c)[:start+c]
		if _, err := io.ReadFull(t.r, buf[start:]); err != nil {
			return buf[:start], unexpectedEOF(err)
		}
		n -= c
	}
	return buf, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// SetReadDeadline sets the deadline of the pending and future Recv calls (zero: none).
// Safe for concurrent use.
func (t *Transport) SetReadDeadline(d time.Time) error { return t.conn.SetReadDeadline(d) }

// Close closes the connection; a WebSocket gets a close frame (1000) first unless a
// write is in progress. Later calls return the first result. Safe for concurrent use.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		if t.ws && t.wmu.TryLock() {
			if t.werr == nil && !t.wclosed {
				_ = t.conn.SetWriteDeadline(time.Now().Add(time.Second))
				_ = t.writeCloseLocked(1000)
			}
			t.werr = net.ErrClosed
			t.wmu.Unlock()
		}
		t.closeErr = t.conn.Close()
	})
	return t.closeErr
}

// ctxErr returns ctx's error, counting a deadline that has passed as expired even
// before ctx's timer fired (a connection deadline set from it may fire first).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// ctxDeadline applies ctx to conn for the duration of a handshake: its deadline, and an
// immediate deadline when ctx is cancelled. The returned function undoes both and reports
// ctx.Err() if ctx ended meanwhile.
func ctxDeadline(ctx context.Context, conn net.Conn) func() error {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !stop() {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return conn.SetDeadline(time.Time{})
	}
}

// channelID returns the TLS channel id of kind ("tls-unique": SHA-256 of the TLS
// Finished message, TLS 1.2 only; "tls-exporter": the RFC 9266 exporter value) for
// WAMP-Cryptosign channel binding.
func (t *Transport) channelID(kind string) ([]byte, error) {
	tc, ok := t.conn.(*tls.Conn)
	if !ok {
		return nil, fmt.Errorf("channel binding %q asked on a connection without TLS", kind)
	}
	st := tc.ConnectionState()
	switch kind {
	case "tls-unique":
		if len(st.TLSUnique) == 0 {
			return nil, errors.New("tls-unique is not available on this TLS connection (TLS 1.3?)")
		}
		sum := sha256.Sum256(st.TLSUnique)
		return sum[:], nil
	case "tls-exporter":
		return st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	}
	return nil, fmt.Errorf("unknown channel binding %q", kind)
}
