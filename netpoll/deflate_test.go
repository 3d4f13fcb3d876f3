package netpoll

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
)

// dialDeflate dials the universal listener with a Sec-WebSocket-Extensions offer and
// returns the client and the extensions header of the response ("" when none).
func dialDeflate(t testing.TB, s *Server, offer string, protos ...string) (*wsClient, string) {
	t.Helper()
	var got string
	d := ws.Dialer{Protocols: protos, Timeout: 5 * time.Second,
		OnHeader: func(key, value []byte) error {
			if strings.EqualFold(string(key), "Sec-WebSocket-Extensions") {
				got = string(value)
			}
			return nil
		}}
	if offer != "" {
		opts, ok := httphead.ParseOptions([]byte(offer), nil)
		if !ok {
			// An offer httphead cannot parse goes out as a raw header.
			d.Header = ws.HandshakeHeaderHTTP(http.Header{"Sec-WebSocket-Extensions": {offer}})
		}
		d.Extensions = opts
	}
	conn, br, hs, err := d.Dial(context.Background(), "ws://"+s.UniversalAddr().String()+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	for _, o := range hs.Extensions {
		if got != "" {
			got += ", "
		}
		got += string(o.Name)
		o.Parameters.ForEach(func(k, v []byte) bool {
			got += "; " + string(k)
			if len(v) > 0 {
				got += "=" + string(v)
			}
			return true
		})
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &wsClient{conn: conn, r: r, hs: hs}, got
}

// clientDeflate compresses msg as a client without context takeover would.
func clientDeflate(t testing.TB, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(msg)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail)
}

// clientInflate decompresses a server's compressed payload.
func clientInflate(t testing.TB, payload []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader(deflateTail))))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("inflate server frame: %v", err)
	}
	return out
}

// writeCompressed sends payload (already deflated) as one masked frame with RSV1.
func (c *wsClient) writeCompressed(t testing.TB, op ws.OpCode, fin bool, rsv1 bool, payload []byte) {
	t.Helper()
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	if rsv1 {
		f.Header.Rsv = ws.Rsv(true, false, false)
	}
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(f)); err != nil {
		t.Fatal(err)
	}
}

func deflateServer(t testing.TB, c *Compression, h Handler) *Server {
	t.Helper()
	return startServer(t, Config{Listeners: twoListeners(Listener{Compression: c, MaxMessageSize: 64 << 10})}, h)
}

func TestDeflateNegotiation(t *testing.T) {
	s := deflateServer(t, &Compression{ClientMaxWindowBits: 12}, newEchoHandler())
	plain := startServer(t, Config{}, newEchoHandler())
	for _, tc := range []struct {
		name, offer string
		srv         *Server
		want        []string // parameters the response must carry; nil: no extension
	}{
		{"no offer", "", s, nil},
		{"listener without compression", "permessage-deflate", plain, nil},
		{"bare offer", "permessage-deflate", s, []string{"permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"}},
		{"browser offer", "permessage-deflate; client_max_window_bits", s,
			[]string{"server_no_context_takeover", "client_no_context_takeover", "client_max_window_bits=12"}},
		{"client asks a smaller window", "permessage-deflate; client_max_window_bits=9", s, []string{"client_max_window_bits=9"}},
		{"server window 15 is fine", "permessage-deflate; server_max_window_bits=15", s, []string{"server_max_window_bits=15"}},
		{"server window we cannot cap", "permessage-deflate; server_max_window_bits=10", s, nil},
		{"invalid then valid offer", "permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover", s,
			[]string{"permessage-deflate", "client_no_context_takeover"}},
		{"other extension only", "x-webkit-deflate-frame", s, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := dialDeflate(t, tc.srv, tc.offer, "wamp.2.json")
			if tc.want == nil {
				if got != "" {
					t.Fatalf("extensions %q, want none", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Fatalf("extensions %q lack %q", got, w)
				}
			}
			if strings.Count(got, "permessage-deflate") != 1 {
				t.Fatalf("extensions %q: want exactly one accepted offer", got)
			}
		})
	}
}

func TestDeflateEchoEachFraming(t *testing.T) {
	h := newEchoHandler()
	var got []byte
	h.onMsg = func(c *Conn, msg []byte) bool {
		h.mu.Lock()
		got = append(got[:0], msg...)
		h.mu.Unlock()
		return false
	}
	s := deflateServer(t, &Compression{MinSize: 64}, h)
	big := []byte(`[36,1,2,{},["` + strings.Repeat("hello switchyard ", 40) + `"]]`)
	for _, proto := range []string{"wamp.2.json", "wamp.2.msgpack", "wamp.2.json.batched", "wamp.2.msgpack.batched"} {
		t.Run(proto, func(t *testing.T) {
			c, ext := dialDeflate(t, s, "permessage-deflate; client_max_window_bits", proto)
			if ext == "" {
				t.Fatal("permessage-deflate not negotiated")
			}
			in := big
			switch proto {
			case "wamp.2.json.batched":
				in = append(append([]byte(nil), big...), jsonBatchSep)
			case "wamp.2.msgpack.batched":
				in = append(be32(len(big)), big...)
			}
			c.writeCompressed(t, ws.OpBinary, true, true, clientDeflate(t, in))
			f := c.read(t)
			if f.Header.Rsv != ws.Rsv(true, false, false) {
				t.Fatalf("echo of a %d-byte message: rsv %03b, want RSV1 (compressed)", len(big), f.Header.Rsv)
			}
			if len(f.Payload) >= len(in) {
				t.Fatalf("compressed frame %d bytes, message %d", len(f.Payload), len(in))
			}
			if out := clientInflate(t, f.Payload); !bytes.Equal(out, in) {
				t.Fatalf("echo inflates to %q, want %q", out, in)
			}
			h.mu.Lock()
			ok := bytes.Equal(got, big)
			h.mu.Unlock()
			if !ok {
				t.Fatalf("handler got %q, want the inflated message", got)
			}
			// Below MinSize: sent as is, RSV1 clear; an uncompressed client frame is fine too.
			small := []byte(`[1,"realm1",{}]`)
			if proto == "wamp.2.msgpack.batched" {
				small = append(be32(len(small)), small...)
			}
			c.write(t, ws.OpText, true, small)
			if f := c.read(t); f.Header.Rsv != 0 || !bytes.Contains(f.Payload, small) {
				t.Fatalf("small echo: rsv %03b payload %q", f.Header.Rsv, f.Payload)
			}
		})
	}
}

func TestDeflateFragmentedCompressedMessage(t *testing.T) {
	s := deflateServer(t, &Compression{}, newEchoHandler())
	c, _ := dialDeflate(t, s, "permessage-deflate", "wamp.2.json")
	msg := []byte(`["` + strings.Repeat("fragmented and compressed ", 30) + `"]`)
	z := clientDeflate(t, msg)
	c.writeCompressed(t, ws.OpText, false, true, z[:len(z)/2])
	c.writeCompressed(t, ws.OpContinuation, true, false, z[len(z)/2:])
	if out := clientInflate(t, c.read(t).Payload); !bytes.Equal(out, msg) {
		t.Fatalf("echo %q", out)
	}
}

func TestDeflateClientContextTakeover(t *testing.T) {
	s := deflateServer(t, &Compression{ClientContextTakeover: true}, newEchoHandler())
	c, ext := dialDeflate(t, s, "permessage-deflate; client_max_window_bits", "wamp.2.json")
	if strings.Contains(ext, "client_no_context_takeover") {
		t.Fatalf("extensions %q: context takeover allowed by config, yet refused", ext)
	}
	// One compressor across messages: the second refers back into the first.
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	msg := []byte(`["` + strings.Repeat("the same words again and again ", 20) + `"]`)
	for i := range 3 {
		b.Reset()
		w.Write(msg)
		w.Flush()
		z := bytes.TrimSuffix(b.Bytes(), deflateTail)
		if i > 0 && len(z) > 40 {
			t.Logf("message %d compressed to %d bytes (expected back-references)", i, len(z))
		}
		c.writeCompressed(t, ws.OpText, true, true, z)
		if out := clientInflate(t, c.read(t).Payload); !bytes.Equal(out, msg) {
			t.Fatalf("message %d echoed as %q", i, out)
		}
	}
}

func TestDeflateNoContextTakeoverByDefault(t *testing.T) {
	h := newEchoHandler()
	s := deflateServer(t, &Compression{}, h)
	c, ext := dialDeflate(t, s, "permessage-deflate; client_max_window_bits", "wamp.2.json")
	if !strings.Contains(ext, "client_no_context_takeover") {
		t.Fatalf("extensions %q: want client_no_context_takeover", ext)
	}
	// A client that takes over its context anyway sends back-references the server
	// cannot resolve: the conn is closed (1007), not crashed.
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	msg := []byte(`["` + strings.Repeat("abcdefgh", 100) + `"]`)
	w.Write(msg)
	w.Flush()
	c.writeCompressed(t, ws.OpText, true, true, bytes.TrimSuffix(b.Bytes(), deflateTail))
	c.read(t)
	b.Reset()
	w.Write(msg)
	w.Flush()
	c.writeCompressed(t, ws.OpText, true, true, bytes.TrimSuffix(b.Bytes(), deflateTail))
	f := c.read(t)
	if f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || int(f.Payload[0])<<8|int(f.Payload[1]) != int(closeInvalidData) {
		t.Fatalf("got %v %q, want close 1007", f.Header.OpCode, f.Payload)
	}
}

func TestDeflateBombStopsAtMaxMessageSize(t *testing.T) {
	h := newEchoHandler()
	s := deflateServer(t, &Compression{}, h) // MaxMessageSize 64 KiB
	c, _ := dialDeflate(t, s, "permessage-deflate", "wamp.2.json")
	bomb := clientDeflate(t, bytes.Repeat([]byte{'a'}, 8<<20)) // 8 MiB of 'a' in a few KiB
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	c.writeCompressed(t, ws.OpText, true, true, bomb)
	f := c.read(t)
	if f.Header.OpCode != ws.OpClose || int(f.Payload[0])<<8|int(f.Payload[1]) != int(closeTooBig) {
		t.Fatalf("got %v %q, want close 1009", f.Header.OpCode, f.Payload)
	}
	if err := h.waitClose(t); err == nil {
		t.Fatal("OnClose without an error")
	}
}

func TestDeflateRSV1WithoutNegotiationRefused(t *testing.T) {
	s := deflateServer(t, &Compression{}, newEchoHandler())
	c, _ := dialDeflate(t, s, "", "wamp.2.json") // no offer: no compression
	c.writeCompressed(t, ws.OpText, true, true, clientDeflate(t, []byte(`[1]`)))
	f := c.read(t)
	if f.Header.OpCode != ws.OpClose || int(f.Payload[0])<<8|int(f.Payload[1]) != int(closeProtocol) {
		t.Fatalf("got %v %q, want close 1002", f.Header.OpCode, f.Payload)
	}
}

// The fan-out of one message to many compressed sessions compresses it about once:
// the compression is shared (no context takeover makes it session-independent).
func TestDeflateFanOutCompressesOnce(t *testing.T) {
	const n = 50
	h := newEchoHandler()
	var conns []*Conn
	h.onMsg = func(c *Conn, msg []byte) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, o := range conns {
			_ = o.Send(msg)
		}
		return true
	}
	s := deflateServer(t, &Compression{}, h)
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i], _ = dialDeflate(t, s, "permessage-deflate", "wamp.2.json")
		c := h.waitOpen(t)
		h.mu.Lock()
		conns = append(conns, c)
		h.mu.Unlock()
	}
	before := s.Stats()
	msg := []byte(`[36,5,6,{},["` + strings.Repeat("event payload ", 50) + `"]]`)
	clients[0].write(t, ws.OpText, true, msg)
	for i, c := range clients {
		f := c.read(t)
		if out := clientInflate(t, f.Payload); !bytes.Equal(out, msg) {
			t.Fatalf("client %d got %q", i, out)
		}
	}
	st := s.Stats()
	comp, shared := st.DeflateCompressed-before.DeflateCompressed, st.DeflateShared-before.DeflateShared
	t.Logf("fan-out to %d: %d compressions, %d shared", n, comp, shared)
	if comp+shared != n || (comp > 3 && !raceEnabled) || comp > n/2 {
		t.Fatalf("fan-out to %d: %d compressions, %d shared; want about one compression", n, comp, shared)
	}
}

func BenchmarkDeflateFanOutSend(b *testing.B) {
	ln, err := newListener(0, Listener{Address: "x", Compression: &Compression{}})
	if err != nil {
		b.Fatal(err)
	}
	c := &Conn{srv: &Server{}, ln: ln, deflate: true, wsOpcode: opText}
	msg := []byte(`[36,5,6,{},["` + strings.Repeat("event payload ", 50) + `"]]`)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		buf = c.appendCompressed(buf[:0], msg)
	}
	b.ReportMetric(float64(c.srv.deflate.compressed.Load())/float64(b.N), "compressions/op")
}

func BenchmarkDeflateCompressEach(b *testing.B) {
	ln, err := newListener(0, Listener{Address: "x", Compression: &Compression{}})
	if err != nil {
		b.Fatal(err)
	}
	c := &Conn{srv: &Server{}, ln: ln, deflate: true, wsOpcode: opText}
	msg := []byte(`[36,5,6,{},["` + strings.Repeat("event payload ", 50) + `"]]`)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	i := 0
	for b.Loop() {
		i++
		msg[2] = byte('0' + i%10) // a new message each time: no sharing
		buf = c.appendCompressed(buf[:0], msg)
	}
}

func BenchmarkInflate(b *testing.B) {
	msg := []byte(`[16,5,{},"com.example.topic",["` + strings.Repeat("event payload ", 50) + `"]]`)
	z := clientDeflate(b, msg)
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		var err error
		if dst, err = inflate(dst, z, nil, 1<<20); err != nil || len(dst) != len(msg) {
			b.Fatal(err, len(dst))
		}
	}
}

// FuzzInflate feeds arbitrary bytes to the inbound inflater: it returns a message, or
// errInflate, or errTooBig past the limit; it never panics and never returns more than
// limit+one read's worth of bytes. Seeds: compressed WAMP messages and a bomb.
func FuzzInflate(f *testing.F) {
	for _, m := range []string{`[1,"realm1",{}]`, `[16,5,{},"com.example.topic",["` + strings.Repeat("x", 300) + `"]]`, ""} {
		f.Add(clientDeflate(f, []byte(m)))
	}
	f.Add(clientDeflate(f, bytes.Repeat([]byte{'a'}, 1<<16)))
	f.Add([]byte{0xff, 0xff, 0xff})
	const limit = 4096
	f.Fuzz(func(t *testing.T, z []byte) {
		out, err := inflate(nil, z, nil, limit)
		switch {
		case err == nil && len(out) > limit:
			t.Fatalf("%d bytes out past the limit without errTooBig", len(out))
		case err != nil && !errors.Is(err, errInflate) && !errors.Is(err, errTooBig):
			t.Fatalf("unexpected error %v", err)
		}
		// With a dictionary (client context takeover) the same holds.
		if _, err := inflate(nil, z, []byte("dictionary of a previous message"), limit); err != nil &&
			!errors.Is(err, errInflate) && !errors.Is(err, errTooBig) {
			t.Fatalf("unexpected error with a dictionary: %v", err)
		}
	})
}
