package proxy

import (
	"net"
	"sync"
	"time"
)

// failLimiter limits failed authentications per source address: after max failures
// within window, the address gets ABORT wamp.error.authentication_failed at HELLO
// without a CHALLENGE until the window has passed. It sits on the handshake path only,
// so a mutex is fine. Safe for concurrent use.
type failLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string]*failCount
}

type failCount struct {
	n     int
	since time.Time
}

func newFailLimiter(max int, window time.Duration) *failLimiter {
	return &failLimiter{max: max, window: window, now: time.Now, fails: map[string]*failCount{}}
}

// key is the host part of a remote address.
func limiterKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// blocked reports whether addr is over its failure budget.
func (l *failLimiter) blocked(addr net.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	fc := l.fails[limiterKey(addr)]
	if fc == nil {
		return false
	}
	if l.now().Sub(fc.since) > l.window {
		delete(l.fails, limiterKey(addr))
		return false
	}
	return fc.n >= l.max
}

// failed records one failed authentication from addr.
func (l *failLimiter) failed(addr net.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := limiterKey(addr)
	now := l.now()
	fc := l.fails[k]
	if fc == nil || now.Sub(fc.since) > l.window {
		fc = &failCount{since: now}
		l.fails[k] = fc
	}
	fc.n++
	if len(l.fails) > 100000 { // bound memory under a spray of addresses
		for key, c := range l.fails {
			if now.Sub(c.since) > l.window {
				delete(l.fails, key)
			}
		}
	}
}
