package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

// WebSocket opcodes.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// WebSocket close codes used here.
const (
	closeNormal      uint16 = 1000
	closeProtocol    uint16 = 1002
	closeInvalidData uint16 = 1007
	closeTooBig      uint16 = 1009
)

// jsonBatchSep terminates each message of a wamp.2.json.batched frame.
const jsonBatchSep = 0x1E

type wsProto struct {
	name    string
	ser     codec.Serializer
	batched bool
}

// wsProtos are the WAMP subprotocols we speak. The client's order of preference picks.
var wsProtos = [...]wsProto{
	{"wamp.2.json", codec.JSON, false},
	{"wamp.2.msgpack", codec.MsgPack, false},
	{"wamp.2.cbor", codec.CBOR, false},
	{"wamp.2.json.batched", codec.JSON, true},
	{"wamp.2.msgpack.batched", codec.MsgPack, true},
	{"wamp.2.cbor.batched", codec.CBOR, true},
}

var errNoSubprotocol = errors.New("no supported WAMP subprotocol")

// upgradeWS runs the gobwas/ws Upgrader over the buffered request (req is the complete
// header block) and appends the response to the loop's write buffer. Runs on the loop;
// a handshake allocates (closures, reader), the steady state does not.
func (c *Conn) upgradeWS(req []byte) {
	var chosen *wsProto
	l := c.ln
	var cookie, origin []byte
	var deflate bool
	u := ws.Upgrader{
		ReadBufferSize:  maxHTTPHeader + 512,
		WriteBufferSize: 1024,
		Protocol: func(p []byte) bool {
			for i := range wsProtos {
				if string(p) == wsProtos[i].name && l.allows(wsProtos[i].ser) {
					chosen = &wsProtos[i]
					return true
				}
			}
			return false
		},
		OnHeader: func(key, value []byte) error {
			if l.Cookie != nil && cookie == nil && bytes.EqualFold(key, []byte("Cookie")) {
				cookie = findCookie(value, l.Cookie.Name)
			}
			if !l.origins.any && bytes.EqualFold(key, []byte("Origin")) {
				origin = append(origin[:0], bytes.TrimSpace(value)...)
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if !l.origins.allowed(origin) {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(403),
					ws.RejectionReason("origin not allowed"))
			}
			if chosen == nil {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(400),
					ws.RejectionReason(l.protoErr))
			}
			if l.Cookie == nil {
				return nil, nil
			}
			if validCookieToken(cookie) {
				c.cookieID = string(cookie)
				return nil, nil
			}
			c.cookieID, c.cookieNew = newCookieToken(), true
			return ws.HandshakeHeaderString(setCookieHeader(l, c.cookieID)), nil
		},
	}
	if l.Compression != nil {
		u.Negotiate = negotiateDeflate(l, &deflate, &c.inCtx)
	}
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(req), &out}
	_, err := u.Upgrade(rw)
	c.loop.wbuf = append(c.loop.wbuf, out.Bytes()...)
	if err != nil {
		if !l.origins.allowed(origin) {
			c.protocolClose(0, "websocket origin refused", fmt.Errorf("%w: %v", errOriginRefused, err),
				"listener", l.Name, "origin", string(origin[:min(len(origin), 200)]))
			return
		}
		if chosen == nil {
			err = fmt.Errorf("%w: %v", errNoSubprotocol, err)
		}
		c.protocolClose(0, "websocket handshake refused", err)
		return
	}
	c.transport = transportWebSocket
	c.ser = chosen.ser
	c.batched = chosen.batched
	c.wsOpcode = opBinary
	if chosen.ser == codec.JSON {
		c.wsOpcode = opText
	}
	c.deflate = deflate
	c.inCtx = deflate && c.inCtx
	c.phase = phaseWS
	c.markOpen()
}

// readWS handles one WebSocket frame if it is complete and returns the bytes consumed
// (0: need more data, or the conn is closing).
func (c *Conn) readWS() int {
	gc := c.gc
	avail := gc.InboundBuffered()
	if avail < 2 {
		return 0
	}
	hb, _ := gc.Peek(min(avail, 14))
	b0, b1 := hb[0], hb[1]
	fin, rsv, op := b0&0x80 != 0, b0&0x70, b0&0x0F
	masked, l7 := b1&0x80 != 0, b1&0x7F
	hlen := 2
	plen := uint64(l7)
	switch l7 {
	case 126:
		hlen = 4
		if len(hb) < 4 {
			return 0
		}
		plen = uint64(binary.BigEndian.Uint16(hb[2:4]))
	case 127:
		hlen = 10
		if len(hb) < 10 {
			return 0
		}
		plen = binary.BigEndian.Uint64(hb[2:10])
	}
	if masked {
		hlen += 4
	}
	if len(hb) < hlen {
		return 0
	}
	compressed := rsv == 0x40 && c.deflate && (op == opText || op == opBinary)
	switch {
	case rsv != 0 && !compressed:
		c.protocolClose(closeProtocol, "websocket reserved bits set", nil)
		return 0
	case !masked:
		c.protocolClose(closeProtocol, "unmasked websocket client frame", nil)
		return 0
	case op >= 0x8 && (!fin || plen > 125):
		c.protocolClose(closeProtocol, "bad websocket control frame", nil)
		return 0
	case op > opBinary && op != opClose && op != opPing && op != opPong:
		c.protocolClose(closeProtocol, "unknown websocket opcode", nil, "opcode", op)
		return 0
	case op == opCont && !c.fragActive:
		c.protocolClose(closeProtocol, "websocket continuation without a message", nil)
		return 0
	case (op == opText || op == opBinary) && c.fragActive:
		c.protocolClose(closeProtocol, "websocket data frame inside a fragmented message", nil)
		return 0
	}
	limit := uint64(c.ln.MaxMessageSize)
	if op < 0x8 && (plen > limit || plen+uint64(len(c.frag)) > limit) {
		c.protocolClose(closeTooBig, "websocket message over MaxMessageSize", nil,
			"size", plen+uint64(len(c.frag)), "max", limit)
		return 0
	}
	var mask [4]byte
	copy(mask[:], hb[hlen-4:hlen])
	total := hlen + int(plen)
	if avail < total {
		return 0 // partial frame stays in gnet's buffer
	}
	fr, _ := gc.Peek(total)
	payload := fr[hlen:]
	ls := c.loop
	switch op {
	case opText, opBinary:
		if fin {
			ls.scratch = append(ls.scratch[:0], payload...)
			ws.Cipher(ls.scratch, mask, 0)
			if compressed {
				c.deliverCompressed(ls.scratch)
			} else {
				c.deliverWS(ls.scratch)
			}
			if cap(ls.scratch) > maxKeptBuf {
				ls.scratch = nil
			}
		} else {
			c.fragActive, c.fragOp, c.fragComp = true, op, compressed
			c.frag = append(c.frag[:0], payload...)
			ws.Cipher(c.frag, mask, 0)
		}
	case opCont:
		start := len(c.frag)
		c.frag = append(c.frag, payload...)
		ws.Cipher(c.frag[start:], mask, 0)
		if fin {
			c.fragActive = false
			if c.fragComp {
				c.deliverCompressed(c.frag)
			} else {
				c.deliverWS(c.frag)
			}
			if cap(c.frag) > 64<<10 {
				c.frag = nil
			} else {
				c.frag = c.frag[:0]
			}
		}
	case opPing:
		ls.wbuf = appendWSHeader(ls.wbuf, opPong, len(payload))
		ls.wbuf = append(ls.wbuf, payload...)
		ws.Cipher(ls.wbuf[len(ls.wbuf)-len(payload):], mask, 0)
	case opPong:
		// Liveness is tracked for any inbound traffic.
	case opClose:
		var code uint16
		switch {
		case len(payload) == 1:
			code = closeProtocol
		case len(payload) >= 2:
			var cb [2]byte
			copy(cb[:], payload[:2])
			ws.Cipher(cb[:], mask, 0)
			code = binary.BigEndian.Uint16(cb[:])
			if !validCloseCode(code) {
				code = closeProtocol
			}
		}
		c.peerClosed = true
		c.closeWith(code, nil)
	}
	gc.Discard(total)
	return total
}

func validCloseCode(code uint16) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}

// deliverCompressed inflates one complete compressed WebSocket message (into the loop's
// inflate buffer, bounded by MaxMessageSize) and delivers it.
func (c *Conn) deliverCompressed(payload []byte) {
	ls := c.loop
	var dict []byte
	if c.inCtx {
		dict = c.inWin
	}
	out, err := inflate(ls.inflated, payload, dict, c.ln.MaxMessageSize)
	ls.inflated = out
	switch {
	case errors.Is(err, errTooBig):
		c.protocolClose(closeTooBig, "inflated websocket message over MaxMessageSize", err,
			"max", c.ln.MaxMessageSize)
		return
	case err != nil:
		c.protocolClose(closeInvalidData, "bad permessage-deflate data", err)
		return
	}
	c.srv.deflate.inflated.Add(1)
	if c.inCtx {
		c.inWin = keepWindow(c.inWin, out)
	}
	c.deliverWS(out)
	if cap(ls.inflated) > maxKeptBuf {
		ls.inflated = nil
	}
}

// deliverWS hands one complete WebSocket message to the Handler, splitting batches.
func (c *Conn) deliverWS(msg []byte) {
	if !c.batched {
		c.deliver(msg)
		return
	}
	if c.ser == codec.JSON {
		for len(msg) > 0 && c.phase == phaseWS {
			i := bytes.IndexByte(msg, jsonBatchSep)
			if i < 0 {
				c.deliver(msg) // tolerate a missing final separator
				return
			}
			if i > 0 {
				c.deliver(msg[:i])
			}
			msg = msg[i+1:]
		}
		return
	}
	for len(msg) > 0 && c.phase == phaseWS {
		if len(msg) < 4 {
			c.protocolClose(closeInvalidData, "truncated binary batch", nil)
			return
		}
		n := binary.BigEndian.Uint32(msg)
		if uint64(n) > uint64(len(msg)-4) {
			c.protocolClose(closeInvalidData, "truncated binary batch", nil)
			return
		}
		c.deliver(msg[4 : 4+n])
		msg = msg[4+n:]
	}
}

// deliver calls Handler.OnMessage for one WAMP message (on the loop).
func (c *Conn) deliver(msg []byte) {
	if c.state.Load() != stActive {
		return
	}
	c.loop.msgsIn.Add(1)
	c.srv.h.OnMessage(c, msg)
}
