package node

import (
	"io"
	"net"
	"sync"
	"testing"
)

// relay forwards the TCP connections it accepts to a target address, until it is cut:
// then it closes those it carries and every new one at once (the peer's link sees the
// connection fail, as across a network partition), until it is mended.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// startRelay starts a relay to target on a loopback port; it stops at the end of t.
func startRelay(t testing.TB, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Go(r.accept)
	t.Cleanup(r.stop)
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// track records c unless the relay is cut (then c is closed); false when closed.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) forget(cs ...net.Conn) {
	r.mu.Lock()
	for _, c := range cs {
		c.Close()
		delete(r.conns, c)
	}
	r.mu.Unlock()
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.track(c) {
			r.wg.Go(func() { r.pipe(c) })
		}
	}
}

// pipe carries c to the target both ways until either side ends or the relay is cut.
func (r *relay) pipe(c net.Conn) {
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		r.forget(c)
		return
	}
	if !r.track(up) {
		r.forget(c)
		return
	}
	done := make(chan struct{}, 2)
	copyTo := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	r.wg.Go(func() { copyTo(up, c) })
	r.wg.Go(func() { copyTo(c, up) })
	<-done
	r.forget(c, up)
	<-done
}

// setCut cuts the relay (closing what it carries) or mends it.
func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	r.cut = cut
	if cut {
		for c := range r.conns {
			c.Close()
			delete(r.conns, c)
		}
	}
	r.mu.Unlock()
}

func (r *relay) stop() {
	r.ln.Close()
	r.setCut(true)
	r.wg.Wait()
}
