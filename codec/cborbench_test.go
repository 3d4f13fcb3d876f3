package codec

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Ours against fxamacker/cbor on the CBOR paths that matter: decoding an EVENT (what every
// subscriber's router-side path re-reads) and a CALL, and encoding them. fxamacker is given
// its fastest fair form: a toarray struct whose payload fields are cbor.RawMessage (zero-
// copy like ours: the payload is not built into Go values) and whose dict is a struct of the
// keys our decoder parses; and, for reference, a decode into any.

type fxEventDetails struct {
	Topic     string `cbor:"topic,omitempty"`
	Publisher uint64 `cbor:"publisher,omitempty"`
}

type fxEvent struct {
	_            struct{} `cbor:",toarray"`
	Type         uint64
	Subscription uint64
	Publication  uint64
	Details      fxEventDetails
	Args         cbor.RawMessage
}

type fxCallOptions struct {
	ReceiveProgress bool   `cbor:"receive_progress,omitempty"`
	Timeout         uint64 `cbor:"timeout,omitempty"`
}

type fxCall struct {
	_         struct{} `cbor:",toarray"`
	Type      uint64
	Request   uint64
	Options   fxCallOptions
	Procedure string
	Args      cbor.RawMessage
	Kwargs    cbor.RawMessage
}

func fxTarget(typ MessageType) any {
	if typ == EVENT {
		return &fxEvent{}
	}
	return &fxCall{}
}

func BenchmarkCBORDecodeVsFxamacker(b *testing.B) {
	for _, typ := range []MessageType{EVENT, CALL} {
		in := typical(b, CBOR, typ)
		b.Run(typ.String()+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			var m Message
			for b.Loop() {
				if err := For(CBOR).Decode(in, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ.String()+"/fxamacker-struct", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			v := fxTarget(typ)
			for b.Loop() {
				if err := cbor.Unmarshal(in, v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ.String()+"/fxamacker-any", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var v any
				if err := cbor.Unmarshal(in, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCBOREncodeVsFxamacker(b *testing.B) {
	em, err := cbor.EncOptions{}.UserBufferEncMode()
	if err != nil {
		b.Fatal(err)
	}
	for _, typ := range []MessageType{EVENT, CALL} {
		in := typical(b, CBOR, typ)
		var m Message
		if err := For(CBOR).Decode(in, &m); err != nil {
			b.Fatal(err)
		}
		m.Dict = nil // written from Details, as the router writes EVENTs it builds
		b.Run(typ.String()+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 512)
			for b.Loop() {
				if _, err := For(CBOR).Append(dst[:0], &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		v := fxTarget(typ)
		if err := cbor.Unmarshal(in, v); err != nil {
			b.Fatal(err)
		}
		out, err := em.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			// Same value, maybe another key order: the sizes must match for a fair run.
			if len(out) != len(in) {
				b.Fatalf("fxamacker writes %d bytes, ours %d", len(out), len(in))
			}
		}
		b.Run(typ.String()+"/fxamacker-struct", func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			buf.Grow(512)
			for b.Loop() {
				buf.Reset()
				if err := em.MarshalToBuffer(v, &buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
