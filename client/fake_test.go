package client

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

// A fake router side for the tests: one connection, scripted by hand or by route().

type kind string

const (
	kindWS      kind = "ws"
	kindWSBatch kind = "ws-batched"
	kindRS      kind = "rs"
)

var (
	allKinds = []kind{kindWS, kindWSBatch, kindRS}
	allSers  = []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}
)

type peer struct {
	t       *testing.T
	conn    net.Conn
	br      *bufio.Reader
	ser     codec.Serializer
	kind    kind
	batch   [][]byte // messages of a received batched frame not yet returned
	wmu     sync.Mutex
	rsPongs chan []byte // RawSocket PONG payloads received
	wsPongs chan []byte // WebSocket pong payloads received
}

// serve listens on loopback, accepts one connection, runs the transport handshake of k
// and then script in a goroutine. It returns the URL to dial and a channel closed when
// script returned.
func serve(t *testing.T, k kind, ser codec.Serializer, script func(p *peer)) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer conn.Close()
		p := &peer{t: t, conn: conn, br: bufio.NewReader(conn), ser: ser, kind: k,
			rsPongs: make(chan []byte, 4), wsPongs: make(chan []byte, 4)}
		switch k {
		case kindRS:
			var hs [4]byte
			if _, err := io.ReadFull(p.br, hs[:]); err != nil {
				t.Errorf("rawsocket handshake: %v", err)
				return
			}
			if hs[0] != 0x7F || hs[1]&0x0F != byte(ser) || hs[2] != 0 || hs[3] != 0 {
				t.Errorf("rawsocket handshake % x", hs)
				return
			}
			conn.Write([]byte{0x7F, 0xF0 | byte(ser), 0, 0})
		default:
			want := Subprotocol(ser, k == kindWSBatch)
			var offered []string
			u := ws.Upgrader{Protocol: func(b []byte) bool {
				offered = append(offered, string(b))
				return string(b) == want
			}}
			_, err := u.Upgrade(struct {
				io.Reader
				io.Writer
			}{p.br, conn})
			if err != nil {
				t.Errorf("websocket upgrade: %v", err)
				return
			}
			if len(offered) != 1 || offered[0] != want {
				t.Errorf("client offered subprotocols %q, want [%q]", offered, want)
			}
		}
		script(p)
	}()
	scheme := "ws"
	path := "/ws"
	if k == kindRS {
		scheme, path = "rs", ""
	}
	return fmt.Sprintf("%s://%s%s", scheme, ln.Addr(), path), done
}

// fail reports a test error from the peer goroutine and ends that goroutine.
func (p *peer) fail(format string, args ...any) {
	p.t.Helper()
	p.t.Errorf("fake router: "+format, args...)
	p.conn.Close()
	runtime.Goexit()
}

// readPayload reads one message payload from the client, checking its framing.
func (p *peer) readPayload() ([]byte, error) {
	if p.kind == kindRS {
		for {
			var h [4]byte
			if _, err := io.ReadFull(p.br, h[:]); err != nil {
				return nil, err
			}
			n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
			b := make([]byte, n)
			if _, err := io.ReadFull(p.br, b); err != nil {
				return nil, err
			}
			switch h[0] {
			case 0:
				return b, nil
			case 2:
				p.rsPongs <- b
			default:
				p.fail("client sent RawSocket frame type %d", h[0])
			}
		}
	}
	for {
		h, err := ws.ReadHeader(p.br)
		if err != nil {
			return nil, err
		}
		if !h.Masked {
			p.fail("client frame not masked")
		}
		b := make([]byte, h.Length)
		if _, err := io.ReadFull(p.br, b); err != nil {
			return nil, err
		}
		ws.Cipher(b, h.Mask, 0)
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			wantOp := ws.OpBinary
			if p.ser == codec.JSON {
				wantOp = ws.OpText
			}
			if h.OpCode != wantOp || !h.Fin {
				p.fail("client data frame opcode %v fin %v, want %v", h.OpCode, h.Fin, wantOp)
			}
			return b, nil
		case ws.OpPong:
			p.wsPongs <- b
		case ws.OpClose:
			code := -1
			if len(b) >= 2 {
				code = int(binary.BigEndian.Uint16(b))
			}
			return nil, fmt.Errorf("close frame %d", code)
		default:
			p.fail("client sent opcode %v", h.OpCode)
		}
	}
}

// recv reads and decodes the next message; its slices alias a private buffer.
func (p *peer) recv() (*codec.Message, error) {
	var b []byte
	if len(p.batch) > 0 {
		b, p.batch = p.batch[0], p.batch[1:]
	} else {
		var err error
		if b, err = p.readPayload(); err != nil {
			return nil, err
		}
		if p.kind == kindWSBatch {
			if p.ser == codec.JSON {
				if len(b) == 0 || b[len(b)-1] != 0x1E {
					p.fail("batched JSON frame without final 0x1E: %q", b)
				}
				b = b[:len(b)-1]
			} else {
				if len(b) < 4 || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
					p.fail("batched binary frame with a bad length prefix: % x", b)
				}
				b = b[4:]
			}
		}
	}
	m := new(codec.Message)
	if err := codec.For(p.ser).Decode(b, m); err != nil {
		p.fail("client sent an undecodable message %q: %v", b, err)
	}
	return m, nil
}

// expect receives the next message and checks its type.
func (p *peer) expect(typ codec.MessageType) *codec.Message {
	p.t.Helper()
	m, err := p.recv()
	if err != nil {
		p.fail("waiting for %v: %v", typ, err)
	}
	if m.Type != typ {
		p.fail("got %v, want %v", m.Type, typ)
	}
	return m
}

// encode encodes m for this peer, with the batched wrapping if any.
func (p *peer) encode(m *codec.Message) []byte {
	b, err := codec.For(p.ser).Append(nil, m)
	if err != nil {
		p.fail("encode %v: %v", m.Type, err)
	}
	if p.kind == kindWSBatch {
		if p.ser == codec.JSON {
			return append(b, 0x1E)
		}
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
	}
	return b
}

// send sends messages; on a batched WebSocket all of them go in one frame.
func (p *peer) send(ms ...*codec.Message) {
	if p.kind == kindWSBatch {
		var frame []byte
		for _, m := range ms {
			frame = append(frame, p.encode(m)...)
		}
		p.writeFrame(p.dataOp(), frame)
		return
	}
	for _, m := range ms {
		p.writePayload(p.encode(m))
	}
}

func (p *peer) dataOp() ws.OpCode {
	if p.ser == codec.JSON {
		return ws.OpText
	}
	return ws.OpBinary
}

// writePayload writes b as one message frame.
func (p *peer) writePayload(b []byte) {
	if p.kind == kindRS {
		p.writeRS(0, b)
		return
	}
	p.writeFrame(p.dataOp(), b)
}

func (p *peer) writeRS(typ byte, b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	h := []byte{typ, byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}
	p.conn.Write(append(h, b...))
}

func (p *peer) writeFrame(op ws.OpCode, b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := ws.WriteFrame(p.conn, ws.NewFrame(op, true, b)); err != nil {
		p.t.Logf("fake router write: %v", err)
	}
}

// enc encodes a Go value in the peer's serializer.
func (p *peer) enc(v any) codec.Raw {
	b, err := codec.AppendValue(nil, p.ser, v)
	if err != nil {
		p.fail("encode %v: %v", v, err)
	}
	return b
}

func (p *peer) welcome() {
	p.expect(codec.HELLO)
	p.send(&codec.Message{Type: codec.WELCOME, Session: 42, DictAny: map[string]any{
		"authid": "joe", "authrole": "user", "roles": map[string]any{"broker": map[string]any{}},
	}})
}

// route is a tiny broker and dealer for one session (the client talks to itself):
// WELCOME on HELLO, "echo" answers calls itself, other calls go to the registered callee.
// It returns when the client leaves or the connection ends.
func (p *peer) route() {
	subs := map[string]uint64{}
	regs := map[string]uint64{}
	calls := map[uint64]uint64{} // invocation request -> call request
	next := uint64(100)
	id := func() uint64 { next++; return next }
	for {
		m, err := p.recv()
		if err != nil {
			return
		}
		switch m.Type {
		case codec.HELLO:
			p.send(&codec.Message{Type: codec.WELCOME, Session: 42, DictAny: map[string]any{
				"authid": "joe", "authrole": "user", "realm": string(m.URI),
			}})
		case codec.SUBSCRIBE:
			sid, ok := subs[string(m.URI)]
			if !ok {
				sid = id()
				subs[string(m.URI)] = sid
			}
			p.send(&codec.Message{Type: codec.SUBSCRIBED, Request: m.Request, Subscription: sid})
		case codec.UNSUBSCRIBE:
			for topic, sid := range subs {
				if sid == m.Subscription {
					delete(subs, topic)
				}
			}
			p.send(&codec.Message{Type: codec.UNSUBSCRIBED, Request: m.Request})
		case codec.PUBLISH:
			pub := id()
			if sid, ok := subs[string(m.URI)]; ok && m.Details.Has&codec.KeyExcludeMe != 0 && !m.Details.ExcludeMe {
				ev := &codec.Message{Type: codec.EVENT, Subscription: sid, Publication: pub, Args: m.Args, Kwargs: m.Kwargs}
				ev.Details.Has, ev.Details.Publisher = codec.KeyPublisher, 42
				p.send(ev)
			}
			if m.Details.Acknowledge {
				if string(m.URI) == "forbidden" {
					p.send(&codec.Message{Type: codec.ERROR, ErrType: codec.PUBLISH, Request: m.Request, URI: []byte("wamp.error.not_authorized")})
				} else {
					p.send(&codec.Message{Type: codec.PUBLISHED, Request: m.Request, Publication: pub})
				}
			}
		case codec.REGISTER:
			if _, ok := regs[string(m.URI)]; ok {
				p.send(&codec.Message{Type: codec.ERROR, ErrType: codec.REGISTER, Request: m.Request, URI: []byte("wamp.error.procedure_already_exists")})
				continue
			}
			rid := id()
			regs[string(m.URI)] = rid
			p.send(&codec.Message{Type: codec.REGISTERED, Request: m.Request, Registration: rid})
		case codec.UNREGISTER:
			for proc, rid := range regs {
				if rid == m.Registration {
					delete(regs, proc)
				}
			}
			p.send(&codec.Message{Type: codec.UNREGISTERED, Request: m.Request})
		case codec.CALL:
			if string(m.URI) == "echo" {
				p.send(&codec.Message{Type: codec.RESULT, Request: m.Request, Args: m.Args, Kwargs: m.Kwargs})
				continue
			}
			rid, ok := regs[string(m.URI)]
			if !ok {
				p.send(&codec.Message{Type: codec.ERROR, ErrType: codec.CALL, Request: m.Request,
					URI: []byte("wamp.error.no_such_procedure"), Args: p.enc([]any{"no callee for " + string(m.URI)})})
				continue
			}
			inv := id()
			calls[inv] = m.Request
			p.send(&codec.Message{Type: codec.INVOCATION, Request: inv, Registration: rid, Args: m.Args, Kwargs: m.Kwargs})
		case codec.YIELD:
			p.send(&codec.Message{Type: codec.RESULT, Request: calls[m.Request], Args: m.Args, Kwargs: m.Kwargs})
			delete(calls, m.Request)
		case codec.ERROR:
			if m.ErrType != codec.INVOCATION {
				p.fail("client sent ERROR for %v", m.ErrType)
			}
			p.send(&codec.Message{Type: codec.ERROR, ErrType: codec.CALL, Request: calls[m.Request], URI: m.URI, Args: m.Args, Kwargs: m.Kwargs})
			delete(calls, m.Request)
		case codec.GOODBYE:
			p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.goodbye_and_out")})
			return
		default:
			p.fail("unexpected %v", m.Type)
		}
	}
}

// waitDone waits for a fake router script to finish.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("fake router did not finish")
	}
}
