package link

import (
	"encoding/binary"
	"sync"
	"time"
)

// A fence is a ping whose pong says that the peer has handled every frame sent on the
// link before it: the peer's reader answers a ping in line, after delivering the frames
// that came before it. A Pool uses fences to keep a key's frames in order when the key
// moves back to its own link after borrowing another (Pool.Send).
//
// The ping's payload is 16 bytes: the send time (as a heartbeat's, for the round-trip
// time) and a token. Peers echo any ping payload, so older ones answer fences too.

// fenceTimeout bounds how long a Pool waits for the fences of a returning link; past
// it the link takes its keys anyway (a peer that does not answer is about to be
// declared dead). A variable for tests.
var fenceTimeout = time.Second

// fences are a link's fences awaiting their pong, by token.
type fences struct {
	mu    sync.Mutex
	next  uint64
	waits map[uint64]chan struct{}
}

// Fence sends a fence and returns a channel closed when its answer arrives, i.e. once
// the peer has handled every frame sent on l before the call. If the link fails first,
// the channel is never closed. Safe for concurrent use.
func (l *Link) Fence() <-chan struct{} {
	ch := make(chan struct{})
	l.fences.mu.Lock()
	if l.fences.waits == nil {
		l.fences.waits = map[uint64]chan struct{}{}
	}
	l.fences.next++
	tok := l.fences.next
	l.fences.waits[tok] = ch
	l.fences.mu.Unlock()
	var p [16]byte
	binary.BigEndian.PutUint64(p[:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(p[8:], tok)
	l.sendCtl(kindPing, p[:])
	return ch
}

// fenceAnswered ends the wait of fence tok (a pong with a 16-byte payload). Called on
// the reader goroutine.
func (l *Link) fenceAnswered(tok uint64) {
	l.fences.mu.Lock()
	ch, ok := l.fences.waits[tok]
	delete(l.fences.waits, tok)
	l.fences.mu.Unlock()
	if ok {
		close(ch)
	}
}
