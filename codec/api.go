package codec

import "errors"

// ErrInvalid is wrapped by every decode error caused by malformed input: the session that
// sent it gets ABORT wamp.error.protocol_violation.
var ErrInvalid = errors.New("invalid WAMP message")

// The package-level API next to the Codec interface (see each function's comment):
//
//	For(s Serializer) Codec                                          shape.go
//	Transcode(dst []byte, to Serializer, src Raw, from Serializer) ([]byte, error)
//	                                                                 transcode.go
//	DecodeValue(s Serializer, raw Raw) (any, error)                  value.go
//	DecodeDict(s Serializer, raw Raw) (map[string]any, error)        value.go
//	AppendValue(dst []byte, s Serializer, v any) ([]byte, error)     value.go
//	FirstElement(s Serializer, list Raw) (Raw, bool)                 first.go
//
// Files: shape.go holds the one per-type shape table all codecs walk; json.go/jsonscan.go,
// msgpack.go, cbor.go, ubjson.go and flatbuf.go (with flatbuffers/, the schema and its
// generated code) the serializers; enc.go the token writers shared by
// Append, Transcode and AppendValue.
