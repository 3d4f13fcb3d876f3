package loadgen

import (
	"bufio"
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
// blocking on net.Conn (Go's netpoller), the gobwas/ws upgrade, a 64 KiB bufio.Reader,
// frames parsed in place (gobwas's ws.ReadHeader allocates per frame; this does not) and
// unmasked with ws.Cipher. A reply goes into a 64 KiB bufio.Writer that is flushed
// whenever the next read would block: one write syscall per read batch, so that with
// several messages in flight the echo server is not the bottleneck, and with one in
// flight every message costs one read and one write. It shares the sink's listener: on
// one TCP port it takes WebSocket (any path; it accepts the wamp.2.* subprotocol that the
// load client offers) and RawSocket (the handshake answered, then message frames echoed
// and pings answered with pongs).
type EchoServer struct {
	*tcpServer
	msgs  atomic.Int64
	bytes atomic.Int64
	conns atomic.Int64
}

// maxEchoFrame bounds one echoed frame's payload (loadgen's --size is at most 16 MiB).
const maxEchoFrame = 64 << 20

// StartEchoServer listens on addr (e.g. "127.0.0.1:0") and echoes until Close.
func StartEchoServer(addr string) (*EchoServer, error) {
	s := &EchoServer{}
	var err error
	if s.tcpServer, err = startTCPServer(addr, s.serve); err != nil {
		return nil, fmt.Errorf("loadgen: echo server: %w", err)
	}
	return s, nil
}

// Messages is the number of data messages echoed so far (counted when their batch is
// flushed). Safe for concurrent use.
func (s *EchoServer) Messages() int64 { return s.msgs.Load() }

// Bytes is the payload bytes of the data messages echoed so far (frame headers not
// counted). Safe for concurrent use.
func (s *EchoServer) Bytes() int64 { return s.bytes.Load() }

// Conns is the number of connections that completed the transport handshake. Safe for
// concurrent use.
func (s *EchoServer) Conns() int64 { return s.conns.Load() }

// echoConn is one connection's reader and batched writer.
type echoConn struct {
	s            *EchoServer
	br           *bufio.Reader
	bw           *bufio.Writer
	payload      []byte
	pending      int64 // messages written to bw since the last flush
	pendingBytes int64 // and their payload bytes
}

func (s *EchoServer) serve(c net.Conn) error {
	sc, err := acceptTransport(c)
	if err != nil {
		return err
	}
	s.conns.Add(1)
	e := &echoConn{s: s, br: sc.br, bw: bufio.NewWriterSize(c, 64<<10)}
	defer e.flush()
	if sc.ws {
		return e.echoWebSocket()
	}
	return e.echoRawSocket()
}

// need makes sure n bytes are buffered, flushing the replies first when reading them
// would block: the replies of a read batch go out in one write, before the next wait.
func (e *echoConn) need(n int) ([]byte, error) {
	if e.br.Buffered() < n {
		if err := e.flush(); err != nil {
			return nil, err
		}
	}
	return e.br.Peek(n)
}

// flush writes the batch and counts its messages (some may have gone out already when
// bufio flushed a full buffer on its own).
func (e *echoConn) flush() error {
	if e.pending > 0 || e.pendingBytes > 0 {
		e.s.msgs.Add(e.pending)
		e.s.bytes.Add(e.pendingBytes)
		e.pending, e.pendingBytes = 0, 0
	}
	if e.bw.Buffered() == 0 {
		return nil
	}
	return e.bw.Flush()
}

// readPayload reads n payload bytes into e.payload.
func (e *echoConn) readPayload(n int) ([]byte, error) {
	if n > maxEchoFrame {
		return nil, fmt.Errorf("loadgen: echo: frame of %d bytes (at most %d)", n, maxEchoFrame)
	}
	if e.br.Buffered() < n {
		if err := e.flush(); err != nil {
			return nil, err
		}
	}
	e.payload = slices.Grow(e.payload[:0], n)[:n]
	if _, err := io.ReadFull(e.br, e.payload); err != nil {
		return nil, err
	}
	return e.payload, nil
}

// echoWebSocket echoes data frames (text, binary, continuation: opcode and FIN kept) as
// unmasked server frames, answers pings and echoes the close frame before returning.
func (e *echoConn) echoWebSocket() error {
	for {
		h, err := e.need(2)
		if err != nil {
			return err
		}
		b0, b1 := h[0], h[1]
		if b0&0x70 != 0 {
			return errors.New("loadgen: echo: WebSocket frame with RSV bits (no extension was negotiated)")
		}
		size := 2
		switch b1 & 0x7F {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		masked := b1&0x80 != 0
		if masked {
			size += 4
		}
		if h, err = e.need(size); err != nil {
			return err
		}
		var n uint64
		switch b1 & 0x7F {
		case 126:
			n = uint64(h[2])<<8 | uint64(h[3])
		case 127:
			for _, x := range h[2:10] {
				n = n<<8 | uint64(x)
			}
		default:
			n = uint64(b1 & 0x7F)
		}
		var mask [4]byte
		if masked {
			copy(mask[:], h[size-4:size])
		}
		if _, err := e.br.Discard(size); err != nil {
			return err
		}
		if n > maxEchoFrame {
			return fmt.Errorf("loadgen: echo: frame of %d bytes (at most %d)", n, maxEchoFrame)
		}
		p, err := e.readPayload(int(n))
		if err != nil {
			return err
		}
		if masked {
			ws.Cipher(p, mask, 0)
		}
		op := ws.OpCode(b0 & 0x0F)
		switch op {
		case ws.OpPong:
			continue
		case ws.OpPing:
			op = ws.OpPong
		case ws.OpText, ws.OpBinary, ws.OpContinuation:
			if b0&0x80 != 0 { // FIN: a fragmented message counts once
				e.pending++
			}
			e.pendingBytes += int64(len(p))
		}
		if err := e.writeWSFrame(b0&0x80 != 0, op, p); err != nil {
			return err
		}
		if op == ws.OpClose {
			return e.flush()
		}
	}
}

// writeWSFrame appends one unmasked server frame to the batch (the header byte by byte:
// a header array passed to Write would escape, an allocation per frame).
func (e *echoConn) writeWSFrame(fin bool, op ws.OpCode, p []byte) error {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	_ = e.bw.WriteByte(b0)
	n := len(p)
	switch {
	case n < 126:
		_ = e.bw.WriteByte(byte(n))
	case n <= 0xFFFF:
		_ = e.bw.WriteByte(126)
		_ = e.bw.WriteByte(byte(n >> 8))
		_ = e.bw.WriteByte(byte(n))
	default:
		_ = e.bw.WriteByte(127)
		for i := range 8 {
			_ = e.bw.WriteByte(byte(uint64(n) >> (56 - 8*i)))
		}
	}
	_, err := e.bw.Write(p) // a failed flush inside WriteByte is sticky: Write returns it
	return err
}

// RawSocket frame types (WAMP spec, RawSocket transport).
const (
	rsMessage = 0
	rsPing    = 1
	rsPong    = 2
)

// echoRawSocket echoes message frames unchanged and answers pings with pongs.
func (e *echoConn) echoRawSocket() error {
	for {
		h, err := e.need(4)
		if err != nil {
			return err
		}
		typ, n := h[0]&0x07, int(h[1])<<16|int(h[2])<<8|int(h[3])
		if _, err := e.br.Discard(4); err != nil {
			return err
		}
		p, err := e.readPayload(n)
		if err != nil {
			return err
		}
		switch typ {
		case rsPong:
			continue
		case rsPing:
			typ = rsPong
		case rsMessage:
			e.pending++
			e.pendingBytes += int64(len(p))
		default:
			return fmt.Errorf("loadgen: echo: RawSocket frame type %d", typ)
		}
		_ = e.bw.WriteByte(typ) // byte by byte: no header array escaping per frame
		_ = e.bw.WriteByte(byte(n >> 16))
		_ = e.bw.WriteByte(byte(n >> 8))
		_ = e.bw.WriteByte(byte(n))
		if _, err := e.bw.Write(p); err != nil { // a failed flush in WriteByte is sticky
			return err
		}
	}
}
