package netpoll

import (
	"errors"
	"testing"
	"time"
)

// TestAwaitSession pins the netpoll side of the handshake timeout: without
// Config.AwaitSession an open conn is never closed for it (the Handler may have no session
// to wait for); with it, a conn the Handler does not mark Established within
// HandshakeTimeout is closed and reported with errHandshakeTimeout, and one it marks stays.
func TestAwaitSession(t *testing.T) {
	const timeout = 200 * time.Millisecond
	lns := twoListeners(Listener{HandshakeTimeout: timeout, PingInterval: time.Minute, PingTimeout: time.Minute})
	for _, await := range []bool{false, true} {
		h := newEchoHandler()
		s := startServer(t, Config{Listeners: lns, AwaitSession: await}, h)
		start := time.Now()
		idle := dialWS(t, s, "wamp.2.json")
		idleConn := h.waitOpen(t)
		marked := dialWS(t, s, "wamp.2.json")
		h.waitOpen(t).Established()
		if !await {
			time.Sleep(3 * timeout)
			if st := s.Stats(); st.Open != 2 || st.HandshakeTimeouts != 0 {
				t.Fatalf("without AwaitSession: %+v", st)
			}
			continue
		}
		expectEOF(t, idle.r)
		took := time.Since(start)
		if took < timeout || took > timeout+2*time.Second {
			t.Errorf("not established: closed after %v (timeout %v)", took, timeout)
		}
		if err := h.waitClose(t); !errors.Is(err, errHandshakeTimeout) {
			t.Errorf("OnClose(%p) err = %v, want %v", idleConn, err, errHandshakeTimeout)
		}
		// The established conn still echoes.
		marked.write(t, 1, true, []byte("still here"))
		if f := marked.read(t); string(f.Payload) != "still here" {
			t.Fatalf("established conn: %q", f.Payload)
		}
		if st := s.Stats(); st.Open != 1 || st.HandshakeTimeouts != 1 {
			t.Fatalf("with AwaitSession: %+v", st)
		}
	}
}
