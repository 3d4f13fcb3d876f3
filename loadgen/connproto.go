package loadgen

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// The transport handshakes and the frame reader of the connect event loops
// (connloop_linux.go), without any I/O: the loops feed them what a read returned. They
// speak the client side of RFC 6455 (masked frames out, unmasked frames in, no
// extensions) and of WAMP RawSocket, for the opening of a session and for keepalive.

// maxJoinFrame bounds a frame the loops accept (a WELCOME with a large authextra, say);
// a longer one fails the session rather than growing a buffer without bound.
const maxJoinFrame = 1 << 20

// maxUpgradeReply bounds the HTTP head of the router's reply to a WebSocket upgrade.
const maxUpgradeReply = 16 << 10

// wsKeyLen is the length of a Sec-WebSocket-Key: 16 random bytes in base64.
const wsKeyLen = 24

// wsGUID is appended to the key to compute Sec-WebSocket-Accept (RFC 6455 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeRequest is the WebSocket upgrade request for rawURL asking for subprotocol
// proto, with a placeholder key at keyAt (wsKeyLen bytes) that each connection patches.
func upgradeRequest(rawURL, proto string) (req []byte, keyAt int, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, 0, fmt.Errorf("loadgen: bad URL: %w", err)
	}
	path := u.RequestURI()
	if path == "" {
		path = "/"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, u.Host)
	b.WriteString("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + proto + "\r\nSec-WebSocket-Key: ")
	keyAt = b.Len()
	b.WriteString("AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n")
	return b.Bytes(), keyAt, nil
}

// newWSKey writes a fresh Sec-WebSocket-Key (16 bytes from the xorshift state s) to key.
func newWSKey(key *[wsKeyLen]byte, s *uint64) {
	var raw [16]byte
	a, b := xorshift(s), xorshift(s)
	for i := range 8 {
		raw[i], raw[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	base64.StdEncoding.Encode(key[:], raw[:])
}

// wsAccept is the Sec-WebSocket-Accept a router must answer key with.
func wsAccept(key *[wsKeyLen]byte) (acc [28]byte) {
	var in [wsKeyLen + len(wsGUID)]byte
	copy(in[:], key[:])
	copy(in[wsKeyLen:], wsGUID)
	sum := sha1.Sum(in[:])
	base64.StdEncoding.Encode(acc[:], sum[:])
	return acc
}

// checkUpgrade reads the router's reply to an upgrade request sent with key asking for
// subprotocol proto from the start of b: n is the length of the HTTP head (the frames
// follow it), 0 while it is incomplete. A reply other than 101 with the right accept
// value and the subprotocol is an error.
func checkUpgrade(b []byte, key *[wsKeyLen]byte, proto string) (n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxUpgradeReply {
			return 0, errors.New("websocket: upgrade reply head too long")
		}
		return 0, nil
	}
	head := b[:end]
	status, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) && !bytes.Equal(status, []byte("HTTP/1.1 101")) {
		return 0, fmt.Errorf("websocket: upgrade refused: %q", status)
	}
	var upgrade, accepted, protoOK bool
	acc := wsAccept(key)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			accepted = bytes.Equal(value, acc[:])
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Protocol")):
			protoOK = string(value) == proto
		}
	}
	switch {
	case !upgrade:
		return 0, errors.New("websocket: upgrade reply without Upgrade: websocket")
	case !accepted:
		return 0, errors.New("websocket: upgrade reply with a wrong Sec-WebSocket-Accept")
	case !protoOK:
		return 0, fmt.Errorf("websocket: router did not accept subprotocol %q", proto)
	}
	return end + 4, nil
}

// rsHello is the client's RawSocket handshake for ser: the largest message it accepts
// is 16 MiB (length exponent 15).
func rsHello(ser codec.Serializer) []byte { return []byte{0x7F, 0xF0 | byte(ser), 0, 0} }

// checkRSReply checks the router's 4-byte RawSocket handshake reply for ser.
func checkRSReply(r []byte, ser codec.Serializer) error {
	switch {
	case r[0] != 0x7F:
		return fmt.Errorf("rawsocket: bad handshake reply % x (not a RawSocket router?)", r[:4])
	case r[1]&0x0F == 0:
		return &client.RawSocketError{Code: r[1] >> 4}
	case r[1]&0x0F != byte(ser):
		return fmt.Errorf("rawsocket: router replied with serializer %d, asked for %d", r[1]&0x0F, ser)
	case r[2] != 0 || r[3] != 0:
		return fmt.Errorf("rawsocket: handshake reply has reserved bytes set: % x", r[:4])
	}
	return nil
}

// frameKind is what a frame from the router carries.
type frameKind uint8

const (
	frameMessage frameKind = iota // a WAMP message
	framePing
	framePong
	frameClose // WebSocket close
)

// inFrame is one frame parsed from the router's stream.
type inFrame struct {
	kind    frameKind
	payload []byte // aliases the parsed buffer
	n       int    // bytes the frame takes in the buffer; 0: incomplete
}

// parseFrame parses the frame at the start of b (a WebSocket server frame when isWS,
// else a RawSocket frame); n == 0 when b does not hold all of it yet. Fragmented
// messages, masked server frames, reserved bits and frames over maxJoinFrame are errors.
func parseFrame(b []byte, isWS bool) (f inFrame, err error) {
	if !isWS {
		if len(b) < 4 {
			return f, nil
		}
		typ := b[0]
		if typ&0xF8 != 0 || typ > rsFramePong {
			return f, fmt.Errorf("rawsocket: bad frame type %#x", typ)
		}
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n > maxJoinFrame {
			return f, fmt.Errorf("rawsocket: frame of %d bytes (at most %d)", n, maxJoinFrame)
		}
		if len(b) < 4+n {
			return f, nil
		}
		f.kind = [...]frameKind{frameMessage, framePing, framePong}[typ]
		f.payload, f.n = b[4:4+n], 4+n
		return f, nil
	}
	if len(b) < 2 {
		return f, nil
	}
	fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, ws.OpCode(b[0]&0x0F)
	if b[1]&0x80 != 0 {
		return f, errors.New("websocket: masked frame from the router")
	}
	if rsv != 0 {
		return f, errors.New("websocket: reserved bits set (no extension was negotiated)")
	}
	h, n := 2, int(b[1]&0x7F)
	switch n {
	case 126:
		if len(b) < 4 {
			return f, nil
		}
		h, n = 4, int(b[2])<<8|int(b[3])
	case 127:
		if len(b) < 10 {
			return f, nil
		}
		var v uint64
		for _, x := range b[2:10] {
			v = v<<8 | uint64(x)
		}
		if v > maxJoinFrame {
			return f, fmt.Errorf("websocket: frame of %d bytes (at most %d)", v, maxJoinFrame)
		}
		h, n = 10, int(v)
	}
	if n > maxJoinFrame {
		return f, fmt.Errorf("websocket: frame of %d bytes (at most %d)", n, maxJoinFrame)
	}
	switch op {
	case ws.OpText, ws.OpBinary:
		f.kind = frameMessage
		if !fin {
			return f, errors.New("websocket: fragmented message (not supported by loadgen's connect)")
		}
	case ws.OpPing:
		f.kind = framePing
	case ws.OpPong:
		f.kind = framePong
	case ws.OpClose:
		f.kind = frameClose
	case ws.OpContinuation:
		return f, errors.New("websocket: continuation frame without a fragmented message")
	default:
		return f, fmt.Errorf("websocket: unknown opcode %d", op)
	}
	if op.IsControl() && (!fin || n > 125) {
		return f, errors.New("websocket: bad control frame")
	}
	if len(b) < h+n {
		return f, nil
	}
	f.payload, f.n = b[h:h+n], h+n
	return f, nil
}

// closeText describes the payload of a WebSocket close frame: code and reason.
func closeText(p []byte) string {
	if len(p) < 2 {
		return "no status"
	}
	return fmt.Sprintf("status %d %q", int(p[0])<<8|int(p[1]), p[2:])
}
