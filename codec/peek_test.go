package codec

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPeekType encodes every message kind with every serializer and checks that
// PeekType reads its code back from the bytes, and that non-messages give 0.
func TestPeekType(t *testing.T) {
	if numTypeSlot != NumTypeSlots {
		t.Fatalf("NumTypeSlots = %d, the type table has %d slots", NumTypeSlots, numTypeSlot)
	}
	for _, s := range allSerializers {
		for _, m := range sampleMessages(t, s) {
			b, err := For(s).Append(nil, &m)
			if err != nil {
				t.Fatalf("%s %s: %v", s, m.Type, err)
			}
			if got := PeekType(s, b); got != m.Type {
				t.Errorf("%s: PeekType(%s) = %s", s, m.Type, got)
			}
			if SlotType(TypeSlot(m.Type)) != m.Type || TypeSlot(m.Type) == 0 {
				t.Errorf("slot of %s does not round-trip", m.Type)
			}
		}
		for _, junk := range [][]byte{nil, {}, []byte("{}"), {0xc0}, {0x91}, []byte(" [ x")} {
			if got := PeekType(s, junk); got != 0 {
				t.Errorf("%s: PeekType(%q) = %d, want 0", s, junk, got)
			}
		}
	}
	if got := PeekType(JSON, []byte(" [ 36 ,1,2]")); got != EVENT {
		t.Errorf("JSON with spaces: %s", got)
	}
}

func BenchmarkPeekType(b *testing.B) {
	for _, s := range append(slices.Clone(allSerializers), Flatbuffers) {
		m := Message{Type: EVENT, Subscription: 1, Publication: 2}
		msg, err := For(s).Append(nil, &m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if PeekType(s, msg) != EVENT {
					b.Fatal("bad type")
				}
			}
		})
	}
}

// TestPeekTypeFlatbuffers checks PeekType on every sample message the Flatbuffers codec
// can carry (its payloads are CBOR), and that short or garbage buffers do not panic.
func TestPeekTypeFlatbuffers(t *testing.T) {
	n := 0
	for _, m := range sampleMessages(t, CBOR) {
		b, err := For(Flatbuffers).Append(nil, &m)
		if err != nil {
			continue // a message kind or option the schema cannot carry
		}
		n++
		if got := PeekType(Flatbuffers, b); got != m.Type {
			t.Errorf("flatbuffers: PeekType(%s) = %s", m.Type, got)
		}
	}
	if n < 10 {
		t.Fatalf("only %d sample messages encoded with Flatbuffers", n)
	}
	for _, junk := range [][]byte{nil, {1, 2, 3}, {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 9}} {
		_ = PeekType(Flatbuffers, junk) // must not panic
	}
	// Every offset comes from the buffer: mutated and truncated messages must not panic
	// (PeekType runs on every message and has no recover).
	ev, err := For(Flatbuffers).Append(nil, &Message{Type: EVENT, Subscription: 1, Publication: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := slices.Clone(ev[:rng.IntN(len(ev)+1)])
		for range 1 + rng.IntN(4) {
			if len(b) > 0 {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
		}
		_ = PeekType(Flatbuffers, b)
	}
}
