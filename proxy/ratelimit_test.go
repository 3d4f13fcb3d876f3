package proxy

import (
	"net"
	"testing"
	"time"
)

func TestFailLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 4000}
	b := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3), Port: 4000}
	for i := 0; i < 3; i++ {
		if l.blocked(a) {
			t.Fatalf("blocked after %d failures", i)
		}
		l.failed(&net.TCPAddr{IP: a.IP, Port: 5000 + i}) // any port of the same host counts
	}
	if !l.blocked(a) {
		t.Fatal("not blocked after 3 failures")
	}
	if l.blocked(b) {
		t.Fatal("another address is blocked")
	}
	now = now.Add(61 * time.Second)
	if l.blocked(a) {
		t.Fatal("still blocked after the window")
	}
}
