package codec

import (
	"testing"
)

// typicalPayload is the ~64-byte payload of the benchmarks: ["hello", 123, {"k": 1.5}].
var typicalPayload = []any{"hello", uint64(123), map[string]any{"k": 1.5}}

func typical(t testing.TB, s Serializer, typ MessageType) []byte {
	t.Helper()
	args := mustValue(t, s, typicalPayload)
	kwargs := mustValue(t, s, map[string]any{"x": "y"})
	var m Message
	switch typ {
	case PUBLISH:
		m = Message{Type: PUBLISH, Request: 239714735, URI: []byte("com.myapp.mytopic1"),
			Details: Details{Has: KeyAcknowledge | KeyExcludeMe, ExcludeMe: true}, Args: args, Kwargs: kwargs}
	case EVENT:
		m = Message{Type: EVENT, Subscription: 5512315355, Publication: 4429313566,
			Details: Details{Has: KeyTopic | KeyPublisher, Topic: []byte("com.myapp.mytopic1"), Publisher: 1234}, Args: args}
	case CALL:
		m = Message{Type: CALL, Request: 7814135, URI: []byte("com.myapp.myprocedure1"),
			Details: Details{Has: KeyReceiveProgress | KeyTimeout, ReceiveProgress: true, Timeout: 5000}, Args: args, Kwargs: kwargs}
	}
	b, err := For(s).Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counts are checked in the full run")
	}
	for _, s := range allSerializers {
		c := For(s)
		for _, typ := range []MessageType{PUBLISH, EVENT, CALL} {
			b := typical(t, s, typ)
			var m Message
			if n := testing.AllocsPerRun(100, func() {
				if err := c.Decode(b, &m); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Decode %s %s: %v allocs", s, typ, n)
			}
			dst := make([]byte, 0, 1024)
			if n := testing.AllocsPerRun(100, func() {
				if _, err := c.Append(dst[:0], &m); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Append %s %s: %v allocs", s, typ, n)
			}
			m.Dict = nil // Details path
			if n := testing.AllocsPerRun(100, func() {
				if _, err := c.Append(dst[:0], &m); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Append(Details) %s %s: %v allocs", s, typ, n)
			}
		}
	}
	for _, from := range allSerializers {
		// Nested payload with binary, escapes and floats.
		src := mustValue(t, from, transcodeValues[len(transcodeValues)-1])
		for _, to := range allSerializers {
			dst := make([]byte, 0, 4096)
			if n := testing.AllocsPerRun(100, func() {
				if _, err := Transcode(dst[:0], to, src, from); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Transcode %s->%s: %v allocs", from, to, n)
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range allSerializers {
		for _, typ := range []MessageType{PUBLISH, CALL} {
			in := typical(b, s, typ)
			b.Run(s.String()+"/"+map[MessageType]string{PUBLISH: "publish", CALL: "call"}[typ], func(b *testing.B) {
				c := For(s)
				var m Message
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if err := c.Decode(in, &m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range allSerializers {
		in := typical(b, s, EVENT)
		c := For(s)
		var m Message
		if err := c.Decode(in, &m); err != nil {
			b.Fatal(err)
		}
		m.Dict = nil // encode the Details keys, as the broker does for EVENT
		b.Run(s.String()+"/event", func(b *testing.B) {
			dst := make([]byte, 0, 512)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var err error
				if dst, err = c.Append(dst[:0], &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTranscode(b *testing.B) {
	for _, from := range allSerializers {
		src := mustValue(b, from, typicalPayload)
		for _, to := range allSerializers {
			if to == from {
				continue
			}
			b.Run(from.String()+"-"+to.String(), func(b *testing.B) {
				dst := make([]byte, 0, 512)
				b.ReportAllocs()
				b.SetBytes(int64(len(src)))
				for b.Loop() {
					var err error
					if dst, err = Transcode(dst[:0], to, src, from); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
