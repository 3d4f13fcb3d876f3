package engine

import (
	"sync"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// scratch is the working memory for routing one message: encode and transcode buffers
// that are reused so that steady-state routing does not allocate. It comes from a
// sync.Pool (per-P caches, no lock) rather than from the session, so that idle sessions
// cost no buffer memory.
type scratch struct {
	m     codec.Message
	out   []byte
	uri   []byte
	text  []byte
	frame [codec.NumSerializers][]byte // one encoded message per target serializer
	// frameSub is the subscription whose EVENT frame[ser] holds for the publication being
	// routed (0: none), so that the federation reuses it (Publication.AppendEvent).
	frameSub [codec.NumSerializers]uint64
	args     [codec.NumSerializers][]byte // Args transcoded per target serializer
	kw       [codec.NumSerializers][]byte // Kwargs transcoded per target serializer
	dict     [codec.NumSerializers][]byte // Details transcoded per target serializer
	// pub is the publication handed to the federation (cleared after the call).
	pub Publication
	// matches holds the pattern subscriptions matching one PUBLISH.
	matches []match.Match[*subscription]
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// maxKeep bounds the buffers a pooled scratch keeps, so that one huge message does not
// pin memory forever.
const maxKeep = 64 << 10

func putScratch(sc *scratch) {
	sc.m.Init(0) // not a full zeroing: see codec.Message.Init
	if cap(sc.out) > maxKeep {
		sc.out = nil
	}
	for i := range sc.frame {
		if cap(sc.frame[i]) > maxKeep {
			sc.frame[i] = nil
		}
		if cap(sc.args[i]) > maxKeep {
			sc.args[i] = nil
		}
		if cap(sc.kw[i]) > maxKeep {
			sc.kw[i] = nil
		}
		if cap(sc.dict[i]) > maxKeep {
			sc.dict[i] = nil
		}
	}
	scratchPool.Put(sc)
}

// payloadFor returns m's Args, Kwargs and Dict in serializer to, transcoding from `from`
// into the scratch buffers when they differ. keepDict says whether Dict is forwarded.
func (sc *scratch) payloadFor(to, from codec.Serializer, args, kw, dict codec.Raw) (codec.Raw, codec.Raw, codec.Raw, error) {
	if to == from {
		return args, kw, dict, nil
	}
	var err error
	var a, k, d codec.Raw
	if args != nil {
		if sc.args[to], err = codec.Transcode(sc.args[to][:0], to, args, from); err != nil {
			return nil, nil, nil, err
		}
		a = sc.args[to]
	}
	if kw != nil {
		if sc.kw[to], err = codec.Transcode(sc.kw[to][:0], to, kw, from); err != nil {
			return nil, nil, nil, err
		}
		k = sc.kw[to]
	}
	if dict != nil {
		if sc.dict[to], err = codec.Transcode(sc.dict[to][:0], to, dict, from); err != nil {
			return nil, nil, nil, err
		}
		d = sc.dict[to]
	}
	return a, k, d, nil
}
