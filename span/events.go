package span

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// A plain publication (engine.Publication neither ToAll nor Filtered) crosses to another
// router as the EVENTs of the subscriptions it holds that match the topic, encoded once by
// the publishing router, which has just encoded the same EVENT for its own subscribers
// (engine/remoteevent.go). The receiving router queues those bytes to its subscribers as
// they are: no decode of the PUBLISH, no topic match and no encode there.

// fwdScratch is the working memory of forwarding one publication as EVENTs.
type fwdScratch struct {
	hits  []interestHit
	evs   []byte // the hits' EVENTs, back to back
	ends  []int  // where each hit's EVENT ends in evs
	frame []byte
}

var fwdPool = sync.Pool{New: func() any { return new(fwdScratch) }}

// maxKeepFwd bounds the buffers a pooled fwdScratch keeps.
const maxKeepFwd = 64 << 10

// forwardEvents sends each live router (others) holding a subscription that matches p's
// topic one KindEvents message with the EVENTs of the subscriptions it holds. Each EVENT
// is encoded once; when every router holds the same subscriptions (the usual case), the
// message too. Lock-free; no allocation in steady state.
func (s *Span) forwardEvents(rl *engine.Realm, p *engine.Publication, others uint64) {
	fs := fwdPool.Get().(*fwdScratch)
	defer func() {
		if cap(fs.evs) > maxKeepFwd || cap(fs.frame) > maxKeepFwd {
			fs.evs, fs.frame = nil, nil
		}
		fs.hits, fs.ends = fs.hits[:0], fs.ends[:0]
		fwdPool.Put(fs)
	}()
	fs.hits = fs.hits[:0]
	mask := s.fedState(rl).matchInterest(p.Message.URI, &fs.hits) & others
	if mask == 0 {
		return
	}
	evs, ends, same := fs.evs[:0], fs.ends[:0], true
	for i := range fs.hits {
		h := &fs.hits[i]
		if h.mask &= others; h.mask != 0 {
			same = same && h.mask == mask
			var err error
			if evs, err = p.AppendEvent(evs, h.id, h.pattern); err != nil {
				s.log.Warn("span: event encode failed", "realm", rl.Name(), "publisher", p.Publisher, "err", err)
				fs.evs = evs
				return
			}
		}
		ends = append(ends, len(evs))
	}
	fs.evs, fs.ends = evs, ends
	if same {
		fs.frame = fs.eventsFrame(fs.frame[:0], rl.Name(), p, mask)
	}
	for m := mask; m != 0; {
		i := bits.TrailingZeros64(m)
		m &^= 1 << i
		n := s.names[i].Load()
		if n == nil {
			continue
		}
		if !same {
			fs.frame = fs.eventsFrame(fs.frame[:0], rl.Name(), p, 1<<i)
		}
		s.send(*n, p.Publisher, KindEvents, fs.frame)
	}
}

// eventsFrame appends the KindEvents payload with the EVENTs of the hits held by a router
// in sel.
func (fs *fwdScratch) eventsFrame(b []byte, realm string, p *engine.Publication, sel uint64) []byte {
	b = appendString(b, realm)
	b = appendUvarint(b, p.Publisher)
	b = append(b, byte(p.Serializer))
	start := 0
	for i := range fs.hits {
		end := fs.ends[i]
		if fs.hits[i].mask&sel != 0 {
			b = appendUvarint(b, fs.hits[i].id)
			b = appendBytes(b, fs.evs[start:end])
		}
		start = end
	}
	return b
}

// onEvents delivers the EVENTs of a KindEvents message to this router's subscribers.
func (s *Span) onEvents(r *reader) error {
	realm := r.bytes()
	publisher := r.uvarint()
	ser := codec.Serializer(r.byte1())
	if r.err != nil {
		return r.err
	}
	if _, err := codecOf(ser); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	st := s.stateBytes(realm)
	rl := s.realmOf(st)
	if rl == nil {
		return fmt.Errorf("events for realm %s, unknown here", st.name)
	}
	for len(r.b) > 0 {
		id := r.uvarint()
		ev := r.bytes()
		if r.err != nil {
			return r.err
		}
		if err := rl.DeliverEvent(id, ser, ev); err != nil {
			return fmt.Errorf("events of publisher %d: %w", publisher, err)
		}
	}
	return nil
}
