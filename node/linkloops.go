package node

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/link"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// linkLoops puts a cluster node's plain TCP links on the node's own event loops
// (link.Loops over netpoll.Server.Adopt): a proxy then waits for client and link traffic
// in one epoll_wait per loop, and a router, which has no client listeners, runs its links
// on loops of their own instead of a reader goroutine each. The links may come up before
// the node's server has started (a proxy dials its routers first): Adopt waits for it a
// while, then declines and the link keeps its reader goroutine.
type linkLoops struct {
	srv   atomic.Pointer[netpoll.Server]
	ready chan struct{}
	once  sync.Once
}

// linkLoopsWait bounds how long a link waits for the node's event loops.
const linkLoopsWait = 5 * time.Second

func newLinkLoops() *linkLoops { return &linkLoops{ready: make(chan struct{})} }

// started hands over the node's server (nil: it has none; every link declines). Safe
// for concurrent use; the first call counts.
func (ll *linkLoops) started(s *netpoll.Server) {
	ll.once.Do(func() {
		ll.srv.Store(s)
		close(ll.ready)
	})
}

// Adopt implements link.Loops. Safe for concurrent use.
func (ll *linkLoops) Adopt(c net.Conn, r link.LoopReader) (link.LoopConn, error) {
	t := time.NewTimer(linkLoopsWait)
	defer t.Stop()
	select {
	case <-ll.ready:
	case <-t.C:
		return nil, nil
	}
	s := ll.srv.Load()
	if s == nil {
		return nil, nil
	}
	a, err := s.Adopt(c, r)
	if err != nil {
		return nil, err
	}
	return a, nil
}
