package netpoll

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Fuzz targets of the byte-level parsers: the HTTP request head (and the WebSocket
// upgrade it leads to), WebSocket frames, RawSocket frames and batched WebSocket messages.
// They drive the conn's real read path (readFrames, the code OnTraffic runs) over memIO,
// an in-memory socket, because a fuzzer needs millions of inputs per minute; the socket
// tests elsewhere in this package run the same code over real sockets.

// memIO is an in-memory connIO: the test appends inbound bytes, the conn peeks and
// discards them as it would gnet's buffer, and writes accumulate in out.
type memIO struct {
	in     []byte
	out    []byte
	closed bool
}

func (m *memIO) InboundBuffered() int { return len(m.in) }

func (m *memIO) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(m.in) {
		n = len(m.in)
	}
	// A copy: what the conn keeps past a Discard would then differ from gnet's reuse.
	return slices.Clone(m.in[:n]), nil
}

func (m *memIO) Discard(n int) (int, error) {
	if n < 0 || n > len(m.in) {
		n = len(m.in)
	}
	m.in = m.in[n:]
	return n, nil
}

func (m *memIO) Write(b []byte) (int, error)   { m.out = append(m.out, b...); return len(b), nil }
func (m *memIO) OutboundBuffered() int         { return 0 }
func (m *memIO) Wake(gnet.AsyncCallback) error { return nil }
func (m *memIO) Close() error                  { m.closed = true; return nil }

// recHandler records the messages delivered (copies) and whether OnOpen ran.
type recHandler struct {
	msgs   [][]byte
	opened bool
}

func (h *recHandler) OnOpen(c *Conn)                { h.opened = true }
func (h *recHandler) OnMessage(c *Conn, msg []byte) { h.msgs = append(h.msgs, slices.Clone(msg)) }
func (h *recHandler) OnClose(c *Conn, err error)    {}

// fuzzConn is a conn on a listener of kind k (max message 4 KiB, so that the size checks
// are reached) fed from a memIO.
func fuzzConn(t testing.TB, k Kind) (*Conn, *memIO, *recHandler) {
	h := &recHandler{}
	s, err := NewServer(Config{Listeners: []Listener{{Address: "127.0.0.1:0", Kind: k, MaxMessageSize: 4096}},
		Logger: discardLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	io := &memIO{}
	c := s.newConn(s.lns[0], io, &loopState{}, &net.TCPAddr{}, 0, nil)
	return c, io, h
}

// feed hands the chunks to the conn one at a time, as successive OnTraffic calls would,
// and returns what was delivered and whether the conn ended up closing.
func feed(t testing.TB, k Kind, setup func(*Conn), chunks ...[]byte) (msgs [][]byte, out []byte, closing bool) {
	c, io, h := fuzzConn(t, k)
	if setup != nil {
		setup(c)
	}
	for _, ch := range chunks {
		io.in = append(io.in, ch...)
		before := len(io.in)
		n := c.readFrames()
		if n < 0 || n > before {
			t.Fatalf("readFrames consumed %d of %d bytes", n, before)
		}
		io.out = append(io.out, c.loop.wbuf...)
		c.loop.wbuf = c.loop.wbuf[:0]
		if c.phase == phaseDone {
			break
		}
	}
	for _, m := range h.msgs {
		if len(m) > c.ln.MaxMessageSize {
			t.Fatalf("delivered a %d-byte message over MaxMessageSize %d", len(m), c.ln.MaxMessageSize)
		}
	}
	return h.msgs, io.out, c.phase == phaseDone
}

// splitAt cuts b in two at split (mod len+1).
func splitAt(b []byte, split uint16) ([]byte, []byte) {
	i := int(split) % (len(b) + 1)
	return b[:i], b[i:]
}

// checkChunking: feeding b whole and in two pieces cut anywhere delivers the same
// messages and the same verdict (a partial frame must wait in the buffer, never be taken
// for a whole one or refused).
func checkChunking(t *testing.T, k Kind, setup func(*Conn), split uint16, b []byte) [][]byte {
	whole, outW, closeW := feed(t, k, setup, b)
	p1, p2 := splitAt(b, split)
	parts, outP, closeP := feed(t, k, setup, p1, p2)
	if closeW != closeP || len(whole) != len(parts) {
		t.Fatalf("%q: whole: %d messages, closing %v; cut at %d: %d messages, closing %v",
			b, len(whole), closeW, len(p1), len(parts), closeP)
	}
	for i := range whole {
		if !bytes.Equal(whole[i], parts[i]) {
			t.Fatalf("%q: message %d differs when cut at %d: %q / %q", b, i, len(p1), whole[i], parts[i])
		}
	}
	if !closeW && !bytes.Equal(outW, outP) {
		t.Fatalf("%q: replies differ when cut at %d: %q / %q", b, len(p1), outW, outP)
	}
	return whole
}

// wsOpen puts a conn straight into the WebSocket phase with the serializer and batching
// picked by opts.
func wsOpen(opts byte) func(*Conn) {
	return func(c *Conn) {
		p := wsProtos[int(opts)%len(wsProtos)]
		c.transport, c.ser, c.batched, c.phase = transportWebSocket, p.ser, p.batched, phaseWS
		c.wsOpcode = opBinary
		c.markOpen()
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	f := ws.NewFrame(op, fin, slices.Clone(payload)) // masking works in place
	f = ws.MaskFrameInPlace(f)
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func FuzzWebSocketFrames(f *testing.F) {
	hello := []byte(`[1,"realm1",{}]`)
	f.Add(byte(0), uint16(3), clientFrame(ws.OpText, true, hello))
	f.Add(byte(1), uint16(9), append(clientFrame(ws.OpBinary, false, []byte("ab")), clientFrame(ws.OpContinuation, true, []byte("cd"))...))
	f.Add(byte(0), uint16(2), append(clientFrame(ws.OpPing, true, []byte("p")), clientFrame(ws.OpText, true, hello)...))
	f.Add(byte(0), uint16(5), clientFrame(ws.OpClose, true, []byte{3, 232, 'x'}))
	f.Add(byte(0), uint16(1), clientFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 5000)))
	f.Add(byte(0), uint16(1), clientFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 300)))
	f.Add(byte(0), uint16(0), maskedFrame(0xC1, hello))                    // RSV1
	f.Add(byte(0), uint16(0), []byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}) // unmasked
	f.Add(byte(0), uint16(4), []byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, opts byte, split uint16, b []byte) {
		checkChunking(t, KindUniversal, wsOpen(opts), split, b)
	})
}

func rsFrame(typ byte, payload []byte) []byte {
	out := []byte{typ, byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload))}
	return append(out, payload...)
}

func FuzzRawSocketFrames(f *testing.F) {
	hs := []byte{rsMagic, 0xF2, 0, 0}
	f.Add(uint16(2), append(slices.Clone(hs), rsFrame(rsRegular, []byte{0x93, 1, 0xa1, 'r', 0x80})...))
	f.Add(uint16(5), append(slices.Clone(hs), append(rsFrame(rsPing, []byte("pp")), rsFrame(rsPong, nil)...)...))
	f.Add(uint16(1), []byte{rsMagic, 0xF9, 0, 0})
	f.Add(uint16(1), []byte{rsMagic, 0xF1, 0, 1})
	f.Add(uint16(0), []byte{0x16, 0x03, 0x01})
	f.Add(uint16(6), append(slices.Clone(hs), rsFrame(rsRegular, bytes.Repeat([]byte("x"), 5000))...))
	f.Add(uint16(7), append(slices.Clone(hs), 7, 0, 0, 0))
	f.Fuzz(func(t *testing.T, split uint16, b []byte) {
		msgs := checkChunking(t, KindRawSocket, nil, split, b)
		// Every delivered message is a regular frame's payload, in order: re-framing them
		// gives back a subsequence of the input after the handshake.
		var re []byte
		for _, m := range msgs {
			re = append(re, rsFrame(rsRegular, m)...)
		}
		if len(msgs) > 0 && !containsInOrder(b[4:], msgs) {
			t.Fatalf("%q: delivered %q, not the payloads of its frames", b, msgs)
		}
	})
}

// containsInOrder reports whether every message occurs in b, each after the previous one.
func containsInOrder(b []byte, msgs [][]byte) bool {
	for _, m := range msgs {
		i := bytes.Index(b, m)
		if i < 0 {
			return false
		}
		b = b[i+len(m):]
	}
	return true
}

func FuzzBatchedWebSocket(f *testing.F) {
	bin := func(msgs ...string) []byte {
		var out []byte
		for _, m := range msgs {
			out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
			out = append(out, m...)
		}
		return out
	}
	f.Add(false, bin("\x93\x01\xa1r\x80", "\x91\x06"))
	f.Add(false, bin("", "x"))
	f.Add(false, []byte{0, 0, 0, 9, 'x'})
	f.Add(true, []byte("[1,\"r\",{}]\x1e[6,{},\"x\"]\x1e"))
	f.Add(true, []byte("\x1e\x1e[1]"))
	f.Fuzz(func(t *testing.T, isJSON bool, b []byte) {
		name := "wamp.2.msgpack.batched"
		if isJSON {
			name = "wamp.2.json.batched"
		}
		opts := byte(slices.IndexFunc(wsProtos[:], func(p wsProto) bool { return p.name == name }))
		if p := wsProtos[opts]; !p.batched || (p.ser == codec.JSON) != isJSON {
			t.Fatalf("%s: found %+v", name, p)
		}
		msgs, _, closing := feed(t, KindUniversal, wsOpen(opts), clientFrame(ws.OpBinary, true, b))
		if isJSON {
			// The messages are the non-empty pieces between separators.
			var want [][]byte
			for p := range bytes.SplitSeq(b, []byte{jsonBatchSep}) {
				if len(p) > 0 {
					want = append(want, p)
				}
			}
			if closing || !slices.EqualFunc(msgs, want, bytes.Equal) {
				t.Fatalf("%q: delivered %q (closing %v), want %q", b, msgs, closing, want)
			}
			return
		}
		// Binary: the delivered messages, batched again, are the input (all of it when
		// the batch is well-formed, a prefix before a truncated entry).
		var re []byte
		for _, m := range msgs {
			re = binary.BigEndian.AppendUint32(re, uint32(len(m)))
			re = append(re, m...)
		}
		if !bytes.HasPrefix(b, re) || (len(re) != len(b)) != closing {
			t.Fatalf("%q: delivered %q (closing %v)", b, msgs, closing)
		}
	})
}

// FuzzHTTPRequestHead drives the universal port's HTTP path (sniff, head, upgrade or a
// page) and checks parseRequestLine against net/http: a request head net/http reads has
// the same method and path for us.
func FuzzHTTPRequestHead(f *testing.F) {
	up := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
	f.Add(uint16(10), []byte(up))
	f.Add(uint16(30), []byte(up+string(clientFrame(ws.OpText, true, []byte(`[1,"realm1",{}]`)))))
	f.Add(uint16(3), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(uint16(3), []byte("HEAD /ws?x=1#f HTTP/1.0\r\n\r\n"))
	f.Add(uint16(3), []byte("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add(uint16(3), []byte("GET /ws HTTP/1.1\r\nUpgrade: h2c, WebSocket\r\n\r\n"))
	f.Add(uint16(3), []byte("GET\r\n\r\n"))
	f.Add(uint16(0), bytes.Repeat([]byte("A"), 9000))
	f.Fuzz(func(t *testing.T, split uint16, b []byte) {
		checkChunking(t, KindUniversal, nil, split, b)
		end := bytes.Index(b, crlfcrlf)
		if end < 0 {
			return
		}
		head := b[:end+4]
		method, path, ok := parseRequestLine(head)
		_ = hasUpgradeWebSocket(head)
		if ok && (strings.Contains(method, " ") || strings.ContainsAny(path, " ?#")) {
			t.Fatalf("%q: method %q path %q", head, method, path)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil || bytes.ContainsAny(head[:bytes.IndexByte(head, '\n')+1], "\x00") {
			return
		}
		want := req.RequestURI
		if i := strings.IndexAny(want, "?#"); i >= 0 {
			want = want[:i]
		}
		if !ok || method != req.Method || path != want {
			t.Fatalf("%q: ours (%q, %q, %v), net/http (%q, %q)", head, method, path, ok, req.Method, want)
		}
	})
}
