package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

var errCloseSent = errors.New("websocket: close frame already sent")

// maxWSHeader is the largest client frame header: 2 + 8 (length) + 4 (mask).
const maxWSHeader = 14

// Subprotocol returns the WebSocket subprotocol name for ser, e.g. "wamp.2.json" or
// "wamp.2.msgpack.batched". Safe for concurrent use.
func Subprotocol(ser codec.Serializer, batched bool) string {
	p := "wamp.2." + ser.String()
	if batched {
		p += ".batched"
	}
	return p
}

func dialWebSocket(ctx context.Context, rawURL string, ser codec.Serializer, o *dialOptions) (*Transport, error) {
	proto := Subprotocol(ser, o.batched)
	d := ws.Dialer{Protocols: []string{proto}, TLSConfig: o.tls}
	if o.header != nil {
		d.Header = ws.HandshakeHeaderHTTP(o.header)
	}
	if o.onHeader != nil {
		d.OnHeader = func(key, value []byte) error { o.onHeader(string(key), string(value)); return nil }
	}
	conn, br, hs, err := d.Dial(ctx, rawURL)
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, fmt.Errorf("websocket: dial %s: %w", rawURL, cerr)
		}
		return nil, fmt.Errorf("websocket: dial %s: %w", rawURL, err)
	}
	if hs.Protocol != proto {
		conn.Close()
		return nil, fmt.Errorf("websocket: router did not accept subprotocol %q (got %q)", proto, hs.Protocol)
	}
	var r io.Reader = conn
	if br != nil {
		r = br // it holds frames the router sent right after the handshake
	} else {
		r = bufio.NewReaderSize(conn, 16<<10)
	}
	t := newTransport(conn, r, ser)
	t.ws = true
	t.batched = o.batched
	t.maxIn = o.maxMsg
	return t, nil
}

// dataOpCode is the frame type of messages: text for JSON, binary otherwise.
func (t *Transport) dataOpCode() ws.OpCode {
	if t.ser == codec.JSON {
		return ws.OpText
	}
	return ws.OpBinary
}

// writeWSLocked writes buf[start:] as one masked frame, the header going into the
// maxWSHeader bytes before start. The payload is masked in place. t.wmu must be held.
func (t *Transport) writeWSLocked(buf []byte, start int, op ws.OpCode) error {
	if t.wclosed {
		return errCloseSent
	}
	n := len(buf) - start
	mask := ws.NewMask()
	var hdr [maxWSHeader]byte
	hdr[0] = 0x80 | byte(op) // FIN
	h := 2
	switch {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n <= 0xFFFF:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h += 2
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h += 8
	}
	h += copy(hdr[h:], mask[:])
	copy(buf[start-h:], hdr[:h])
	ws.Cipher(buf[start:], mask, 0)
	_, err := t.conn.Write(buf[start-h:])
	return t.noteWriteErr(err)
}

// writeControlLocked writes one control frame with payload p (at most 125 bytes).
func (t *Transport) writeControlLocked(op ws.OpCode, p []byte) error {
	var b [maxWSHeader + 125]byte
	n := copy(b[maxWSHeader:], p)
	return t.writeWSLocked(b[:maxWSHeader+n], maxWSHeader, op)
}

// writeCloseLocked sends a close frame with code; no data frame may follow it.
func (t *Transport) writeCloseLocked(code uint16) error {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	err := t.writeControlLocked(ws.OpClose, p[:])
	t.wclosed = true
	return err
}

// readWSMessage reads frames until one complete data message, answering pings and
// reporting a close frame as *CloseError.
func (t *Transport) readWSMessage() ([]byte, error) {
	buf := t.rbuf[:0]
	var op ws.OpCode // opcode of the message being assembled; 0 = none yet
	for {
		h, err := ws.ReadHeaderBuffer(t.r, t.hbuf[:])
		if err != nil {
			return nil, unexpectedEOFIf(op != 0, err)
		}
		if h.Rsv != 0 {
			return nil, t.failWS(ws.StatusProtocolError, "websocket: reserved bits set (no extension negotiated)")
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return nil, t.failWS(ws.StatusProtocolError, "websocket: bad control frame")
			}
			var ctrl [125]byte
			p := ctrl[:h.Length]
			if _, err := io.ReadFull(t.r, p); err != nil {
				return nil, unexpectedEOF(err)
			}
			if h.Masked {
				ws.Cipher(p, h.Mask, 0)
			}
			switch h.OpCode {
			case ws.OpPing:
				t.wmu.Lock()
				if t.werr == nil && !t.wclosed {
					_ = t.writeControlLocked(ws.OpPong, p)
				}
				t.wmu.Unlock()
			case ws.OpClose:
				return nil, t.peerClosed(p)
			case ws.OpPong:
			default:
				return nil, t.failWS(ws.StatusProtocolError, fmt.Sprintf("websocket: reserved opcode %d", h.OpCode))
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && op == 0:
			return nil, t.failWS(ws.StatusProtocolError, "websocket: continuation frame without a message")
		case h.OpCode != ws.OpContinuation && op != 0:
			return nil, t.failWS(ws.StatusProtocolError, "websocket: new message inside a fragmented one")
		case h.OpCode == ws.OpText || h.OpCode == ws.OpBinary:
			op = h.OpCode
		case h.OpCode != ws.OpContinuation:
			return nil, t.failWS(ws.StatusProtocolError, fmt.Sprintf("websocket: reserved opcode %d", h.OpCode))
		}
		if h.Length > int64(t.maxIn-len(buf)) {
			return nil, t.failWS(ws.StatusMessageTooBig, fmt.Sprintf("websocket: message longer than %d bytes", t.maxIn))
		}
		start := len(buf)
		buf, err = t.readFull(buf, int(h.Length))
		t.rbuf = buf
		if err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(buf[start:], h.Mask, 0)
		}
		if h.Fin {
			return buf, nil
		}
	}
}

// peerClosed answers a close frame with payload p and returns the matching error.
func (t *Transport) peerClosed(p []byte) error {
	ce := &CloseError{Code: uint16(ws.StatusNoStatusRcvd)}
	if len(p) == 1 {
		return t.failWS(ws.StatusProtocolError, "websocket: close frame with a 1-byte payload")
	}
	if len(p) >= 2 {
		ce.Code = binary.BigEndian.Uint16(p)
		ce.Reason = string(p[2:])
	}
	t.wmu.Lock()
	if t.werr == nil && !t.wclosed {
		echo := ce.Code
		if len(p) < 2 {
			echo = uint16(ws.StatusNormalClosure)
		}
		_ = t.writeCloseLocked(echo)
	}
	t.wmu.Unlock()
	return ce
}

// failWS sends a close frame with code and returns a protocol error with msg.
func (t *Transport) failWS(code ws.StatusCode, msg string) error {
	t.wmu.Lock()
	if t.werr == nil && !t.wclosed {
		_ = t.writeCloseLocked(uint16(code))
	}
	t.wmu.Unlock()
	return errProtocol("%s", msg)
}

func unexpectedEOFIf(mid bool, err error) error {
	if mid {
		return unexpectedEOF(err)
	}
	return err
}
