package codec

import "errors"

// ErrInvalid is wrapped by every decode error caused by malformed input: the session that
// sent it gets ABORT wamp.error.protocol_violation.
var ErrInvalid = errors.New("invalid WAMP message")

// The functions below are implemented per serializer in this package:
//
//	For(s Serializer) Codec
//	    the codec for s; panics on an unknown serializer. Safe for concurrent use.
//	Transcode(dst []byte, to Serializer, src Raw, from Serializer) ([]byte, error)
//	    appends src (one value encoded with from) re-encoded with to. Streams tokens from
//	    reader to writer without building Go values; zero allocations beyond dst growth.
//	    JSON strings starting with "\x00" are binary (base64 of the rest) and become byte
//	    strings in MessagePack/CBOR, and vice versa. Integers stay integers, floats floats.
//	DecodeValue(s Serializer, raw Raw) (any, error)
//	    slow path: nil, bool, int64 (negative) / uint64 (non-negative), float64, string,
//	    []byte, []any, map[string]any.
//	AppendValue(dst []byte, s Serializer, v any) ([]byte, error)
//	    slow path: encodes the same value model (plus int, int32, uint32, float32, ...).
