package loadgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Sink is a no-op WAMP "router" for measuring loadgen itself: on one TCP port it accepts
// WebSocket (any path; wamp.2.json, wamp.2.msgpack, wamp.2.cbor, wamp.2.ubjson, wamp.2.flatbuffers) and RawSocket, answers
// HELLO with WELCOME (after a ticket CHALLENGE when it has a ticket) and then reads and
// discards everything without parsing it. A publish-only pubsub run against it
// (`--subscribers 0`) measures how fast loadgen can push publications, and its CPU.
type Sink struct {
	*tcpServer
	ticket string
	bytes  atomic.Int64
	joined atomic.Int64
}

// StartSink listens on addr (e.g. "127.0.0.1:0"). With a non-empty ticket, sessions must
// authenticate with it (authmethods ["ticket"]).
func StartSink(addr, ticket string) (*Sink, error) {
	s := &Sink{ticket: ticket}
	var err error
	if s.tcpServer, err = startTCPServer(addr, s.serve); err != nil {
		return nil, err
	}
	return s, nil
}

// Bytes is the number of bytes discarded after the sessions joined. Safe for concurrent use.
func (s *Sink) Bytes() int64 { return s.bytes.Load() }

// Joined is the number of sessions welcomed. Safe for concurrent use.
func (s *Sink) Joined() int64 { return s.joined.Load() }

// tcpServer is the listener of the sink and the echo server: one goroutine per
// connection running serve, every connection closed by Close.
type tcpServer struct {
	ln     net.Listener
	serve  func(net.Conn) error
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startTCPServer(addr string, serve func(net.Conn) error) (*tcpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: listen %s: %w", addr, err)
	}
	s := &tcpServer{ln: ln, serve: serve, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the listening address. Safe for concurrent use.
func (s *tcpServer) Addr() string { return s.ln.Addr().String() }

// WebSocketURL and RawSocketURL are the URLs to give loadgen. Safe for concurrent use.
func (s *tcpServer) WebSocketURL() string { return "ws://" + s.Addr() + "/ws" }
func (s *tcpServer) RawSocketURL() string { return "rs://" + s.Addr() }

// Close stops listening, closes every connection and waits for their goroutines. Safe
// for concurrent use.
func (s *tcpServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *tcpServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			_ = s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// sinkConn reads and writes whole messages during the opening handshake.
type sinkConn struct {
	c   net.Conn
	br  *bufio.Reader
	ws  bool
	ser codec.Serializer
	buf []byte
}

// acceptTransport reads the first bytes of c: a RawSocket handshake (0x7F) is answered
// with the serializer the client asked for; anything else is taken for a WebSocket
// upgrade (any path) that must offer a WAMP subprotocol (wamp.2.json, ...).
func acceptTransport(c net.Conn) (*sinkConn, error) {
	sc := &sinkConn{c: c, br: bufio.NewReaderSize(c, 64<<10)}
	first, err := sc.br.Peek(1)
	if err != nil {
		return nil, err
	}
	if first[0] == 0x7F { // RawSocket
		var hs [4]byte
		if _, err := io.ReadFull(sc.br, hs[:]); err != nil {
			return nil, err
		}
		sc.ser = codec.Serializer(hs[1] & 0x0F)
		if !sc.ser.Valid() {
			_, _ = c.Write([]byte{0x7F, 0x10, 0, 0}) // serializer unsupported
			return nil, errors.New("loadgen: unsupported RawSocket serializer")
		}
		if _, err := c.Write([]byte{0x7F, 0xF0 | byte(sc.ser), 0, 0}); err != nil {
			return nil, err
		}
		return sc, nil
	}
	sc.ws = true
	u := ws.Upgrader{Protocol: func(p []byte) bool {
		for _, ser := range codec.Serializers() {
			if string(p) == "wamp.2."+ser.String() {
				sc.ser = ser
				return true
			}
		}
		return false
	}}
	if _, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{&lineReader{br: sc.br}, c}); err != nil {
		return nil, err
	}
	if sc.ser == 0 {
		return nil, errors.New("loadgen: no WAMP subprotocol offered")
	}
	return sc, nil
}

// lineReader gives the WebSocket upgrader the request one line at a time. The upgrader
// reads through a bufio.Reader of its own that it drops on return: handed sc.br whole, it
// would take (and lose) frames the client sent right behind the request. Line by line,
// its last read ends with the blank line that ends the headers, and what follows stays
// in sc.br.
type lineReader struct {
	br   *bufio.Reader
	rest []byte // of the line last read from br, not given out yet
}

func (r *lineReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		line, err := r.br.ReadSlice('\n')
		if len(line) == 0 {
			return 0, err
		}
		r.rest = line // valid until br is read again: only once it is all given out
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

func (s *Sink) serve(c net.Conn) error {
	sc, err := acceptTransport(c)
	if err != nil {
		return err
	}
	if err := s.handshake(sc); err != nil {
		return err
	}
	s.joined.Add(1)
	buf := make([]byte, 256<<10)
	for {
		n, err := sc.br.Read(buf)
		s.bytes.Add(int64(n))
		if err != nil {
			return err
		}
	}
}

func (s *Sink) handshake(sc *sinkConn) error {
	cdc := codec.For(sc.ser)
	var m codec.Message
	if err := sc.read(cdc, &m); err != nil {
		return err
	}
	if m.Type != codec.HELLO {
		return fmt.Errorf("sink: %v before HELLO", m.Type)
	}
	details, _ := codec.DecodeDict(sc.ser, m.Dict)
	authid, _ := details["authid"].(string)
	authrole := "anonymous"
	if s.ticket != "" {
		methods, _ := details["authmethods"].([]any)
		if !slices.Contains(methods, any("ticket")) {
			return sc.write(cdc, &codec.Message{Type: codec.ABORT, URI: []byte("wamp.error.no_auth_method"), DictAny: map[string]any{}})
		}
		if err := sc.write(cdc, &codec.Message{Type: codec.CHALLENGE, URI: []byte("ticket"), DictAny: map[string]any{}}); err != nil {
			return err
		}
		if err := sc.read(cdc, &m); err != nil {
			return err
		}
		if m.Type != codec.AUTHENTICATE || string(m.URI) != s.ticket {
			_ = sc.write(cdc, &codec.Message{Type: codec.ABORT, URI: []byte("wamp.error.not_authorized"), DictAny: map[string]any{}})
			return errors.New("sink: bad ticket")
		}
		authrole = "user"
	}
	return sc.write(cdc, &codec.Message{Type: codec.WELCOME, Session: uint64(s.joined.Load() + 1),
		DictAny: map[string]any{"roles": map[string]any{"broker": map[string]any{}, "dealer": map[string]any{}},
			"authid": authid, "authrole": authrole, "authmethod": "ticket"}})
}

// read reads one message (one RawSocket message frame, or one unfragmented WebSocket
// data frame) and decodes it.
func (sc *sinkConn) read(cdc codec.Codec, m *codec.Message) error {
	var n int
	if sc.ws {
		h, err := ws.ReadHeader(sc.br)
		if err != nil {
			return err
		}
		if !h.Fin || h.Length > 1<<20 {
			return errors.New("sink: fragmented or huge handshake frame")
		}
		n = int(h.Length)
		sc.buf = slices.Grow(sc.buf[:0], n)[:n]
		if _, err := io.ReadFull(sc.br, sc.buf); err != nil {
			return err
		}
		if h.Masked {
			ws.Cipher(sc.buf, h.Mask, 0)
		}
	} else {
		var h [4]byte
		if _, err := io.ReadFull(sc.br, h[:]); err != nil {
			return err
		}
		n = int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		sc.buf = slices.Grow(sc.buf[:0], n)[:n]
		if _, err := io.ReadFull(sc.br, sc.buf); err != nil {
			return err
		}
	}
	return cdc.Decode(sc.buf, m)
}

func (sc *sinkConn) write(cdc codec.Codec, m *codec.Message) error {
	b, err := cdc.Append(nil, m)
	if err != nil {
		return err
	}
	if sc.ws {
		op := ws.OpBinary
		if sc.ser == codec.JSON {
			op = ws.OpText
		}
		return ws.WriteFrame(sc.c, ws.NewFrame(op, true, b))
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(b)))
	h[0] = 0
	_, err = sc.c.Write(append(h[:], b...))
	return err
}
