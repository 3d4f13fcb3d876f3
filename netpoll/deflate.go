package netpoll

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

// WebSocket compression: permessage-deflate (RFC 7692), negotiated per connection on
// listeners with Listener.Compression set.
//
// The server never takes over its compression context (every response carries
// server_no_context_takeover), so a compressed message depends only on its bytes: the
// fan-out of one EVENT to many sessions compresses it once per framing (serializer and
// batching) and shares the result, and an idle compressed session holds no compressor.
// Compressors are pooled per P (sync.Pool) and each remembers the last message it
// compressed, so the run of Sends a fan-out makes on one goroutine hits that memo.
// Inbound, the client keeps no context either unless Compression.ClientContextTakeover
// allows it; then the session keeps the last 32 KiB of what it received as the next
// message's dictionary (the only per-session memory compression costs).

// Compression configures permessage-deflate on a WebSocket (or universal) listener.
// Plain data, read when the server starts.
type Compression struct {
	// ClientContextTakeover lets a client compress each message with the context of the
	// previous ones (better ratios on similar messages) at the cost of a 32 KiB window
	// the session keeps; false (the default) answers client_no_context_takeover, so
	// every inbound message is inflated on its own with a pooled inflater.
	ClientContextTakeover bool
	// ClientMaxWindowBits caps the client's LZ77 window (8 to 15) when its offer has
	// client_max_window_bits; 0 means 15 (no cap).
	ClientMaxWindowBits int
	// Level is the deflate level of outbound messages, 1 (fastest, default) to 9.
	Level int
	// MinSize: outbound messages shorter than this many bytes are sent uncompressed
	// (RFC 7692 lets each message choose); default 128.
	MinSize int
}

// Stats of compression, added to Server.Stats.
type deflateStats struct {
	compressed atomic.Uint64 // messages compressed (a compressor ran)
	shared     atomic.Uint64 // compressed messages served from a compressor's memo
	inflated   atomic.Uint64 // inbound compressed messages inflated
}

var errInflate = errors.New("netpoll: bad permessage-deflate data")

// deflateTail is what a sender strips from the end of each compressed message (the
// empty stored block of a sync flush) and the receiver appends back.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// Framing modes of a compressed payload (the memo's key with the message bytes).
const (
	modePlain       byte = iota // the message itself
	modeJSONBatch               // message + 0x1E
	modeBinaryBatch             // 4-byte length + message
)

// negotiateDeflate returns the gobwas Upgrader.Negotiate callback of listener l: it
// accepts the first valid permessage-deflate offer it can honour and writes the
// response parameters; *accepted reports a deal, *clientCtx whether the client may
// take over its context. Offers that ask us to cap our own window below
// 15 bits are declined (Go's compressor always uses a 32 KiB window).
func negotiateDeflate(l *listener, accepted, clientCtx *bool) func(httphead.Option) (httphead.Option, error) {
	return func(opt httphead.Option) (httphead.Option, error) {
		var none httphead.Option
		if *accepted || !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
			return none, nil
		}
		var offer wsflate.Parameters
		if err := offer.Parse(opt); err != nil {
			return none, nil // an invalid offer is declined, not an error (RFC 7692 5)
		}
		if offer.ServerMaxWindowBits.Defined() && offer.ServerMaxWindowBits < 15 {
			return none, nil
		}
		c := l.Compression
		resp := wsflate.Parameters{
			ServerNoContextTakeover: true,
			ClientNoContextTakeover: !c.ClientContextTakeover || offer.ClientNoContextTakeover,
			ServerMaxWindowBits:     offer.ServerMaxWindowBits,
		}
		if offer.ClientMaxWindowBits.Defined() {
			bits := wsflate.WindowBits(c.ClientMaxWindowBits)
			if bits == 0 {
				bits = 15
			}
			if offer.ClientMaxWindowBits > 1 && offer.ClientMaxWindowBits < bits {
				bits = offer.ClientMaxWindowBits
			}
			resp.ClientMaxWindowBits = bits
		}
		*accepted, *clientCtx = true, !resp.ClientNoContextTakeover
		return resp.Option(), nil
	}
}

// deflater is a pooled compressor with a memo of the last payload it compressed.
type deflater struct {
	w     *flate.Writer
	level int
	out   bytes.Buffer
	mode  byte
	in    []byte // the last message compressed (a copy)
	valid bool   // in/out hold a result
}

var deflaters sync.Pool

// compressed returns the permessage-deflate payload of msg framed by mode (without the
// sync-flush tail): from the pool's memo when the same bytes were just compressed (a
// fan-out), else freshly. The result is valid until put is called on d.
func compressed(level int, mode byte, msg []byte, st *deflateStats) (d *deflater, payload []byte) {
	d, _ = deflaters.Get().(*deflater)
	if d == nil || d.level != level {
		w, _ := flate.NewWriter(nil, level) // level is validated in newListener
		d = &deflater{w: w, level: level}
	}
	if d.valid && d.mode == mode && bytes.Equal(d.in, msg) {
		st.shared.Add(1)
		return d, d.out.Bytes()
	}
	d.out.Reset()
	d.w.Reset(&d.out)
	switch mode {
	case modeJSONBatch:
		_, _ = d.w.Write(msg)
		_, _ = d.w.Write([]byte{jsonBatchSep})
	case modeBinaryBatch:
		n := len(msg)
		_, _ = d.w.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		_, _ = d.w.Write(msg)
	default:
		_, _ = d.w.Write(msg)
	}
	_ = d.w.Flush() // writes to a bytes.Buffer cannot fail
	out := d.out.Bytes()
	if bytes.HasSuffix(out, deflateTail) {
		d.out.Truncate(len(out) - len(deflateTail))
	}
	d.mode, d.in, d.valid = mode, append(d.in[:0], msg...), true
	if cap(d.in) > maxKeptBuf {
		d.in, d.valid = nil, false
	}
	st.compressed.Add(1)
	return d, d.out.Bytes()
}

// put returns d to the pool (dropping its buffers when one message grew them past
// maxKeptBuf).
func (d *deflater) put() {
	if d.out.Cap() > maxKeptBuf {
		d.out = bytes.Buffer{}
		d.valid = false
	}
	deflaters.Put(d)
}

// inflater is a pooled decompressor.
type inflater struct {
	r   io.ReadCloser
	src tailReader
}

// tailReader reads a compressed message and then deflateTail, as an io.ByteReader so
// that flate reads it without a bufio wrapper (no allocation per message).
type tailReader struct {
	p    []byte
	tail int
}

func (t *tailReader) reset(p []byte) { t.p, t.tail = p, 0 }

func (t *tailReader) Read(b []byte) (int, error) {
	if len(t.p) > 0 {
		n := copy(b, t.p)
		t.p = t.p[n:]
		return n, nil
	}
	if t.tail == len(deflateTail) {
		return 0, io.EOF
	}
	n := copy(b, deflateTail[t.tail:])
	t.tail += n
	return n, nil
}

func (t *tailReader) ReadByte() (byte, error) {
	if len(t.p) > 0 {
		c := t.p[0]
		t.p = t.p[1:]
		return c, nil
	}
	if t.tail == len(deflateTail) {
		return 0, io.EOF
	}
	t.tail++
	return deflateTail[t.tail-1], nil
}

var inflaters = sync.Pool{New: func() any {
	f := &inflater{}
	f.r = flate.NewReader(&f.src)
	return f
}}

// inflate decompresses one inbound message (payload: its bytes with the tail not yet
// appended; dict: the session's window when the client takes over its context) into
// dst[:0] and returns it. It fails with errTooBig past limit bytes (a deflate bomb is
// stopped there) and with errInflate on bad data.
func inflate(dst, payload, dict []byte, limit int) ([]byte, error) {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	f.src.reset(payload)
	if err := f.r.(flate.Resetter).Reset(&f.src, dict); err != nil {
		return dst, errInflate
	}
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, errTooBig
		}
		switch {
		case err == nil:
			continue
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return dst, nil
		default:
			return dst, errInflate
		}
	}
}

var errTooBig = errors.New("netpoll: inflated websocket message over MaxMessageSize")

// keepWindow returns the last 32 KiB of win+msg: the dictionary of the next message of
// a client that takes over its context.
func keepWindow(win, msg []byte) []byte {
	const size = 32 << 10
	if len(msg) >= size {
		return append(win[:0], msg[len(msg)-size:]...)
	}
	if over := len(win) + len(msg) - size; over > 0 {
		win = append(win[:0], win[over:]...)
	}
	return append(win, msg...)
}
