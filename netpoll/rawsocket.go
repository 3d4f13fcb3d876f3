package netpoll

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/codec"
)

// RawSocket (WAMP basic profile, "RawSocket transport") constants.
const (
	rsMagic = 0x7F

	// Frame types (low 3 bits of the first header byte; the other 5 bits are reserved).
	rsRegular = 0
	rsPing    = 1
	rsPong    = 2

	// Handshake error codes (high nibble of the second byte of an error reply).
	rsErrSerializer = 1 // serializer unsupported
	rsErrMaxLen     = 2 // maximum message length unacceptable
	rsErrReserved   = 3 // use of reserved bits (unsupported feature)
	rsErrMaxConns   = 4 // maximum connection count reached
)

var (
	errRSBadMagic    = fmt.Errorf("netpoll: rawsocket: bad magic byte")
	errRSSerializer  = fmt.Errorf("netpoll: rawsocket: serializer unsupported")
	errRSReserved    = fmt.Errorf("netpoll: rawsocket: reserved bits used")
	errRSFrameType   = fmt.Errorf("netpoll: rawsocket: bad frame type")
	errRSMsgTooLarge = fmt.Errorf("netpoll: rawsocket: message over the announced max length")
)

// readRSHandshake handles the 4-byte client handshake: 0x7F, (length<<4 | serializer),
// 0, 0. It replies with our max-length exponent and the serializer, or with an error
// reply (0x7F, code<<4, 0, 0) and closes.
func (c *Conn) readRSHandshake() int {
	gc := c.gc
	if gc.InboundBuffered() < 4 {
		if gc.InboundBuffered() > 0 {
			if b, _ := gc.Peek(1); b[0] != rsMagic {
				c.protocolClose(0, "rawsocket bad magic", errRSBadMagic, "byte", b[0])
			}
		}
		return 0
	}
	hb, _ := gc.Peek(4)
	if hb[0] != rsMagic {
		c.protocolClose(0, "rawsocket bad magic", errRSBadMagic, "byte", hb[0])
		return 0
	}
	lenExp, ser := hb[1]>>4, hb[1]&0x0F
	ls := c.loop
	switch {
	case hb[2] != 0 || hb[3] != 0:
		ls.wbuf = append(ls.wbuf, rsMagic, rsErrReserved<<4, 0, 0)
		c.protocolClose(0, "rawsocket handshake refused", errRSReserved)
	case !codec.Serializer(ser).Valid() || !c.ln.allows(codec.Serializer(ser)):
		ls.wbuf = append(ls.wbuf, rsMagic, rsErrSerializer<<4, 0, 0)
		c.protocolClose(0, "rawsocket handshake refused", errRSSerializer, "serializer", ser)
	default:
		ls.wbuf = append(ls.wbuf, rsMagic, c.ln.rsNibble<<4|ser, 0, 0)
		c.transport = transportRawSocket
		c.ser = codec.Serializer(ser)
		c.peerMax = min(1<<(9+int(lenExp)), 1<<24-1)
		gc.Discard(4)
		c.phase = phaseRS
		c.markOpen()
		return 4
	}
	gc.Discard(4)
	return 4
}

// readRS handles one RawSocket frame if it is complete and returns the bytes consumed.
// Regular messages are handed to the Handler straight from gnet's buffer (valid during
// the call, as OnMessage documents): RawSocket payloads need no unmasking.
func (c *Conn) readRS() int {
	gc := c.gc
	avail := gc.InboundBuffered()
	if avail < 4 {
		return 0
	}
	hb, _ := gc.Peek(4)
	typ := hb[0]
	plen := int(hb[1])<<16 | int(hb[2])<<8 | int(hb[3])
	if typ&0xF8 != 0 || typ&0x07 > rsPong {
		c.protocolClose(0, "rawsocket bad frame", errRSFrameType, "type", typ)
		return 0
	}
	if plen > c.ln.rsMax {
		c.protocolClose(0, "rawsocket message over max length", errRSMsgTooLarge,
			"size", plen, "max", c.ln.rsMax)
		return 0
	}
	total := 4 + plen
	if avail < total {
		return 0
	}
	fr, _ := gc.Peek(total)
	payload := fr[4:]
	switch typ {
	case rsRegular:
		c.deliver(payload)
	case rsPing:
		ls := c.loop
		ls.wbuf = append(ls.wbuf, rsPong, fr[1], fr[2], fr[3])
		ls.wbuf = append(ls.wbuf, payload...)
	case rsPong:
		// Liveness is tracked for any inbound traffic.
	}
	gc.Discard(total)
	return total
}
