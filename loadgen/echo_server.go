package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"

	"github.com/gobwas/ws"
)

// EchoServer is the baseline of the echo scenario (issue #15: "RPC with 1 caller: round
// trip p50 within 3x of a plain WebSocket echo measured with the same client"): a server
// that writes every message it receives back unchanged, with no WAMP at all, so that a
// call round trip through a router can be read against what one WebSocket round trip
// costs on the same machine with the same client.
//
// It is the plain design most Go WebSocket servers use: a goroutine per connection
// blocking on net.Conn (Go's netpoller), the gobwas/ws upgrade, a 64 KiB read buffer
// (grown for a bigger frame), frames parsed in place and unmasked with ws.Cipher. The
// replies to the frames that one read completed are appended to one buffer and written
// with one write before the next read: one write syscall per read batch, so that with
// several messages in flight the echo server is not the bottleneck, and with one in
// flight every message costs one write and up to two reads (a second read that finds the
// socket empty parks the goroutine in the netpoller until the next message). It shares the sink's listener: on
// one TCP port it takes WebSocket (any path; it accepts the wamp.2.* subprotocol that the
// load client offers) and RawSocket (the handshake answered, then message frames echoed
// and pings answered with pongs). EpollEchoServer parses with the same code on an epoll
// event loop instead, without Go's scheduler and netpoller in the path.
type EchoServer struct {
	*tcpServer
	echoCounters
}

// echoCounters are the counters both echo servers report.
type echoCounters struct {
	echoMsgs  atomic.Int64
	echoBytes atomic.Int64
	echoConns atomic.Int64
}

// Messages is the number of data messages echoed so far (counted once their replies
// were written). Safe for concurrent use.
func (s *echoCounters) Messages() int64 { return s.echoMsgs.Load() }

// Bytes is the payload bytes of the data messages echoed so far (frame headers not
// counted). Safe for concurrent use.
func (s *echoCounters) Bytes() int64 { return s.echoBytes.Load() }

// Conns is the number of connections that completed the transport handshake. Safe for
// concurrent use.
func (s *echoCounters) Conns() int64 { return s.echoConns.Load() }

// maxEchoFrame bounds one echoed frame's payload (loadgen's --size is at most 16 MiB).
const maxEchoFrame = 64 << 20

// echoReadSize is the read buffer of a connection (the goroutine server) or of an event
// loop (the epoll server).
const echoReadSize = 64 << 10

// StartEchoServer listens on addr (e.g. "127.0.0.1:0") and echoes until Close.
func StartEchoServer(addr string) (*EchoServer, error) {
	s := &EchoServer{}
	var err error
	if s.tcpServer, err = startTCPServer(addr, s.serve); err != nil {
		return nil, fmt.Errorf("loadgen: echo server: %w", err)
	}
	return s, nil
}

// echoConn is one connection of the goroutine server: what it reads, what it writes.
type echoConn struct {
	c   *echoCounters
	r   io.Reader
	w   io.Writer
	ws  bool
	in  []byte // read, not parsed yet (an incomplete frame)
	out []byte // the replies of one read
}

func (s *EchoServer) serve(c net.Conn) error {
	sc, err := acceptTransport(c)
	if err != nil {
		return err
	}
	s.echoConns.Add(1)
	e := &echoConn{c: &s.echoCounters, r: c, w: c, ws: sc.ws, in: make([]byte, 0, echoReadSize)}
	// The bytes the handshake's reader took beyond the handshake come first.
	e.in = append(e.in, handshakeLeftover(sc)...)
	if len(e.in) > 0 {
		if done, err := e.echo(); done || err != nil {
			return err
		}
	}
	return e.run()
}

// handshakeLeftover returns (and takes from sc's reader) the bytes that reader buffered
// beyond the transport handshake: the first frames, when the client sent them at once.
func handshakeLeftover(sc *sinkConn) []byte {
	n := sc.br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := sc.br.Peek(n)
	b = slices.Clone(b)
	_, _ = sc.br.Discard(n)
	return b
}

// run reads and echoes until the connection ends (io.EOF is returned as nil) or a close
// frame was echoed.
func (e *echoConn) run() error {
	for {
		if len(e.in) == cap(e.in) { // one frame bigger than the buffer
			e.in = slices.Grow(e.in, cap(e.in))
		}
		n, err := e.r.Read(e.in[len(e.in):cap(e.in)])
		if n > 0 {
			e.in = e.in[:len(e.in)+n]
			if done, err := e.echo(); done || err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// echo answers the complete frames in e.in with one write, keeps an incomplete one, and
// reports done when a close frame was echoed.
func (e *echoConn) echo() (done bool, err error) {
	used, out, msgs, n, closed, perr := echoFrames(e.in, e.out[:0], e.ws)
	e.out = out
	e.in = e.in[:copy(e.in, e.in[used:])]
	if len(out) > 0 {
		if _, err := e.w.Write(out); err != nil {
			return true, err
		}
	}
	e.c.echoMsgs.Add(msgs)
	e.c.echoBytes.Add(n)
	return closed, perr
}

// RawSocket frame types (WAMP spec, RawSocket transport).
const (
	rsMessage = 0
	rsPing    = 1
	rsPong    = 2
)

// echoFrames is the echo servers' one frame parser. It answers the complete frames at
// the start of in (WebSocket frames from a client when isWS, else RawSocket frames),
// appending the replies to out: WebSocket data frames (text, binary, continuation:
// opcode and FIN kept) come back unchanged as unmasked server frames, a ping as a pong,
// a close frame is echoed and ends the parse (closed); RawSocket message frames come
// back unchanged, a ping as a pong. Pongs are dropped. It unmasks in place, so in is
// changed. consumed is the bytes of in parsed (an incomplete frame is left: the caller
// keeps it and reads more); msgs and payload count the data messages answered (a
// fragmented WebSocket message once) and their payload bytes. On a protocol error the
// replies before it are in out. It allocates only when out must grow. Safe for
// concurrent use on distinct buffers.
func echoFrames(in, out []byte, isWS bool) (consumed int, _ []byte, msgs, payload int64, closed bool, err error) {
	for {
		var size int
		var msg int64
		var p int
		if isWS {
			size, out, msg, p, closed, err = echoWSFrame(in[consumed:], out)
		} else {
			size, out, msg, p, err = echoRSFrame(in[consumed:], out)
		}
		if err != nil || size == 0 {
			return consumed, out, msgs, payload, false, err
		}
		consumed += size
		msgs += msg
		payload += int64(p)
		if closed {
			return consumed, out, msgs, payload, true, nil
		}
	}
}

// echoWSFrame answers the first WebSocket frame of in, if complete (size 0: not yet).
// msg is 1 for a data frame with FIN, p its payload bytes (any data frame).
func echoWSFrame(in, out []byte) (size int, _ []byte, msg int64, p int, closed bool, err error) {
	if len(in) < 2 {
		return 0, out, 0, 0, false, nil
	}
	b0, b1 := in[0], in[1]
	if b0&0x70 != 0 {
		return 0, out, 0, 0, false, errors.New("loadgen: echo: WebSocket frame with RSV bits (no extension was negotiated)")
	}
	hl := 2
	switch b1 & 0x7F {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	masked := b1&0x80 != 0
	if masked {
		hl += 4
	}
	if len(in) < hl {
		return 0, out, 0, 0, false, nil
	}
	var n uint64
	switch b1 & 0x7F {
	case 126:
		n = uint64(in[2])<<8 | uint64(in[3])
	case 127:
		for _, x := range in[2:10] {
			n = n<<8 | uint64(x)
		}
	default:
		n = uint64(b1 & 0x7F)
	}
	if n > maxEchoFrame {
		return 0, out, 0, 0, false, fmt.Errorf("loadgen: echo: frame of %d bytes (at most %d)", n, maxEchoFrame)
	}
	if uint64(len(in)-hl) < n {
		return 0, out, 0, 0, false, nil
	}
	size = hl + int(n)
	pl := in[hl:size]
	if masked {
		ws.Cipher(pl, [4]byte(in[hl-4:hl]), 0)
	}
	fin := b0&0x80 != 0
	op := ws.OpCode(b0 & 0x0F)
	switch op {
	case ws.OpPong:
		return size, out, 0, 0, false, nil
	case ws.OpPing:
		op = ws.OpPong
	case ws.OpText, ws.OpBinary, ws.OpContinuation:
		if fin { // a fragmented message counts once
			msg = 1
		}
		p = len(pl)
	}
	out = appendWSHeader(out, fin, op, len(pl))
	out = append(out, pl...)
	return size, out, msg, p, op == ws.OpClose, nil
}

// appendWSHeader appends an unmasked server frame header.
func appendWSHeader(out []byte, fin bool, op ws.OpCode, n int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	return appendWSHead(out, b0, 0, n)
}

// appendWSHead appends a WebSocket frame header: first byte b0 (FIN, opcode), the mask
// bit maskBit (0 or 0x80) and payload length n in the shortest form. The mask key, if
// any, is the caller's. Shared by the load client's frames and the echo servers'.
func appendWSHead(out []byte, b0, maskBit byte, n int) []byte {
	switch {
	case n < 126:
		return append(out, b0, maskBit|byte(n))
	case n <= 0xFFFF:
		return append(out, b0, maskBit|126, byte(n>>8), byte(n))
	default:
		u := uint64(n)
		return append(out, b0, maskBit|127, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
			byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
}

// echoRSFrame answers the first RawSocket frame of in, if complete (size 0: not yet).
// msg is 1 for a message frame, p its payload bytes.
func echoRSFrame(in, out []byte) (size int, _ []byte, msg int64, p int, err error) {
	if len(in) < 4 {
		return 0, out, 0, 0, nil
	}
	typ, n := in[0]&0x07, int(in[1])<<16|int(in[2])<<8|int(in[3])
	if typ > rsPong {
		return 0, out, 0, 0, fmt.Errorf("loadgen: echo: RawSocket frame type %d", typ)
	}
	if len(in)-4 < n {
		return 0, out, 0, 0, nil
	}
	size = 4 + n
	switch typ {
	case rsPong:
		return size, out, 0, 0, nil
	case rsPing:
		typ = rsPong
	case rsMessage:
		msg, p = 1, n
	}
	out = append(out, typ, in[1], in[2], in[3])
	out = append(out, in[4:size]...)
	return size, out, msg, p, nil
}
