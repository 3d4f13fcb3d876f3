package link

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind is the kind of a frame. Kinds below FirstUserKind are the link's own (handshake,
// heartbeat, close); the kinds from FirstUserKind up belong to the code using the link.
type Kind uint8

// FirstUserKind is the lowest kind Send and SendTargets accept; lower kinds are reserved
// for the link protocol itself.
const FirstUserKind Kind = 16

// The link's own frame kinds (see docs/cluster.md, "Link frames").
const (
	kindHello Kind = 1 // handshake: version, name, role, nonce
	kindAuth  Kind = 2 // handshake: HMAC proof
	kindPing  Kind = 3 // heartbeat; payload: 8 bytes the pong echoes
	kindPong  Kind = 4 // heartbeat answer
	kindClose Kind = 5 // orderly close; payload: reason text
)

// Wire layout of a frame, big-endian (see docs/cluster.md):
//
//	u32 length   bytes after this field: 6 + payload length + 8 * number of ids
//	u8  kind
//	u8  flags    bit 0: multi-target; other bits must be 0
//	u32 plen     payload length
//	plen bytes   payload
//	n * u64      session ids: exactly one for a single frame (its Session), n >= 1 targets
//	             for a multi-target frame
//
// The ids come after the payload so that Send can add a target to the tail frame by
// appending 8 bytes, without moving the payload.
const (
	hdrLen     = 10 // length + kind + flags + plen
	idLen      = 8
	flagMulti  = 1
	lenOff     = 0
	kindOff    = 4
	flagsOff   = 5
	plenOff    = 6
	payloadOff = hdrLen
)

// MaxPayload is the largest payload a frame may carry (16 MiB, the largest WAMP message a
// RawSocket transport can carry).
const MaxPayload = 16 << 20

// MaxTargets is the largest number of target sessions in one frame. Send starts a new
// frame rather than grow a coalesced frame beyond it.
const MaxTargets = 1 << 16

// maxFrameLen bounds the length field a reader accepts.
const maxFrameLen = hdrLen - 4 + MaxPayload + idLen*MaxTargets

// Frame is one frame received on a link, handed to Handler.OnFrame.
type Frame struct {
	Kind Kind
	// Session is the session the frame is about (0: the link or the node itself). It is 0
	// for a multi-target frame.
	Session uint64
	// Targets is non-nil only for a multi-target frame: the sessions the payload goes to,
	// in the order they were sent; an id may appear more than once (once per Send).
	// Valid only during Handler.OnFrame.
	Targets []uint64
	// Payload is valid only during Handler.OnFrame: the reader reuses its buffer. Copy it
	// to keep it.
	Payload []byte
}

// errProtocol marks a malformed frame from the peer.
var errProtocol = errors.New("link: protocol error")

// appendFrame appends one single-session frame to b. Safe for concurrent use (pure).
func appendFrame(b []byte, kind Kind, session uint64, payload []byte) []byte {
	n := hdrLen + len(payload) + idLen
	b = binary.BigEndian.AppendUint32(b, uint32(n-4))
	b = append(b, byte(kind), 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return binary.BigEndian.AppendUint64(b, session)
}

// appendMulti appends one multi-target frame to b. Safe for concurrent use (pure).
func appendMulti(b []byte, kind Kind, targets []uint64, payload []byte) []byte {
	n := hdrLen + len(payload) + idLen*len(targets)
	b = binary.BigEndian.AppendUint32(b, uint32(n-4))
	b = append(b, byte(kind), flagMulti)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	for _, t := range targets {
		b = binary.BigEndian.AppendUint64(b, t)
	}
	return b
}

// parseFrame decodes body (a frame without its length field) into f, reusing
// f.Targets' storage (tbuf). Payload and Targets alias body and tbuf.
func parseFrame(body []byte, f *Frame, tbuf []uint64) ([]uint64, error) {
	if len(body) < hdrLen-4+idLen {
		return tbuf, fmt.Errorf("%w: frame of %d bytes is too short", errProtocol, len(body))
	}
	kind, flags := Kind(body[0]), body[1]
	plen := int(binary.BigEndian.Uint32(body[2:6]))
	if plen > len(body)-6 {
		return tbuf, fmt.Errorf("%w: payload length %d beyond frame of %d bytes", errProtocol, plen, len(body))
	}
	ids := body[6+plen:]
	if len(ids) == 0 || len(ids)%idLen != 0 {
		return tbuf, fmt.Errorf("%w: %d id bytes", errProtocol, len(ids))
	}
	f.Kind = kind
	f.Payload = body[6 : 6+plen]
	switch flags {
	case 0:
		if len(ids) != idLen {
			return tbuf, fmt.Errorf("%w: single frame with %d ids", errProtocol, len(ids)/idLen)
		}
		f.Session = binary.BigEndian.Uint64(ids)
		f.Targets = nil
	case flagMulti:
		tbuf = tbuf[:0]
		for i := 0; i < len(ids); i += idLen {
			tbuf = append(tbuf, binary.BigEndian.Uint64(ids[i:]))
		}
		f.Session = 0
		f.Targets = tbuf
	default:
		return tbuf, fmt.Errorf("%w: unknown flags %#x", errProtocol, flags)
	}
	return tbuf, nil
}

// Each calls fn once per delivery f stands for: once with f itself for a single frame,
// once per target for a multi-target frame (with a copy of f whose Session is the target
// and Targets nil), in order. fn gets the frame only during the call.
func (f *Frame) Each(fn func(*Frame)) {
	if f.Targets == nil {
		fn(f)
		return
	}
	one := *f
	one.Targets = nil
	for _, id := range f.Targets {
		one.Session = id
		fn(&one)
	}
}
