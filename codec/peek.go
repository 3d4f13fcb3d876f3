package codec

import "encoding/binary"

// PeekType returns the WAMP message code of msg (the first element of the message list)
// by reading its first few bytes, without decoding the message; 0 when msg does not
// start like a WAMP message of serializer s. Counters use it on the hot path: it does
// not allocate and is safe for concurrent use.
func PeekType(s Serializer, msg []byte) MessageType {
	switch s {
	case JSON:
		i := jws(msg, 0)
		if i >= len(msg) || msg[i] != '[' {
			return 0
		}
		i = jws(msg, i+1)
		v := 0
		start := i
		for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9' && i-start < 3; i++ {
			v = v*10 + int(msg[i]-'0')
		}
		if i == start || v > 255 {
			return 0
		}
		return MessageType(v)
	case MsgPack:
		i := 0
		switch {
		case len(msg) > 0 && msg[0]&0xf0 == 0x90: // fixarray
			i = 1
		case len(msg) > 0 && msg[0] == 0xdc: // array 16
			i = 3
		case len(msg) > 0 && msg[0] == 0xdd: // array 32
			i = 5
		default:
			return 0
		}
		switch {
		case i >= len(msg):
			return 0
		case msg[i] < 0x80: // positive fixint
			return MessageType(msg[i])
		case msg[i] == 0xcc && i+1 < len(msg): // uint 8
			return MessageType(msg[i+1])
		}
		return 0
	case CBOR:
		i := 0
		switch {
		case len(msg) == 0:
			return 0
		case msg[0] >= 0x80 && msg[0] <= 0x97, msg[0] == 0x9f: // array of 0..23, indefinite
			i = 1
		case msg[0] == 0x98:
			i = 2
		case msg[0] == 0x99:
			i = 3
		case msg[0] == 0x9a:
			i = 5
		default:
			return 0
		}
		switch {
		case i >= len(msg):
			return 0
		case msg[i] <= 0x17: // unsigned 0..23
			return MessageType(msg[i])
		case msg[i] == 0x18 && i+1 < len(msg): // unsigned, one byte follows
			return MessageType(msg[i+1])
		}
		return 0
	case UBJSON:
		return peekUBJSON(msg)
	case Flatbuffers:
		return peekFlatbuffers(msg)
	}
	return 0
}

// peekUBJSON reads the first element of a UBJSON message list (a marked container, as
// Decode requires), skipping no-ops; 0 when it is not a small integer.
func peekUBJSON(b []byte) MessageType {
	if len(b) == 0 || b[0] != ubjArray {
		return 0
	}
	c, i, err := ubjOpen(b, 1, false)
	if err != nil || c.typ != 0 {
		return 0
	}
	if more, _ := c.more(b, &i, 0); !more || i >= len(b) {
		return 0
	}
	tm := b[i]
	if tm == ubjFloat32 || tm == ubjFloat64 {
		return 0
	}
	t, _, ok := ubjIDAt(b, i+1, tm, 255)
	if !ok {
		return 0
	}
	return MessageType(t)
}

// peekFlatbuffers reads the union type of a Flatbuffers message (the WAMP message code,
// the root table's first field); 0 when the buffer cannot hold one. Every offset is
// checked against len(b), so it needs no recover on the per-message path.
func peekFlatbuffers(b []byte) MessageType {
	if len(b) < 8 {
		return 0
	}
	pos := int(binary.LittleEndian.Uint32(b)) // the root table
	if pos > len(b)-4 {
		return 0
	}
	vt := pos - int(int32(binary.LittleEndian.Uint32(b[pos:]))) // its vtable
	if vt < 0 || vt > len(b)-6 || binary.LittleEndian.Uint16(b[vt:]) < 6 {
		return 0 // no vtable, or one too short to hold field 0
	}
	off := int(binary.LittleEndian.Uint16(b[vt+4:])) // field 0: the union type
	if off == 0 || pos+off >= len(b) {
		return 0
	}
	return MessageType(b[pos+off])
}

// typeSlots numbers the message types densely (0: unknown), so that per-type counters
// fit a small array.
var (
	typeSlots   [256]uint8
	slotTypes   []MessageType
	numTypeSlot int
)

func init() {
	slotTypes = append(slotTypes, 0)
	for t, name := range typeNames {
		if name != "" {
			typeSlots[t] = uint8(len(slotTypes))
			slotTypes = append(slotTypes, MessageType(t))
		}
	}
	numTypeSlot = len(slotTypes)
}

// NumTypeSlots is the number of slots TypeSlot returns: one per known message type,
// and slot 0 for unknown codes. Arrays of per-type counters use it as their length.
const NumTypeSlots = 25

// TypeSlot returns t's dense slot in [0, NumTypeSlots): 0 for an unknown code. It does
// not allocate and is safe for concurrent use.
func TypeSlot(t MessageType) int { return int(typeSlots[t]) }

// SlotType is the inverse of TypeSlot: the message type of slot i (0 for slot 0 or out
// of range). Safe for concurrent use.
func SlotType(i int) MessageType {
	if i <= 0 || i >= len(slotTypes) {
		return 0
	}
	return slotTypes[i]
}
