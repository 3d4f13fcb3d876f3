//go:build linux

package netpoll

import (
	"testing"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// The accepted socket a loop serves must carry what Go would have set on it one conn at
// a time: TCP_NODELAY and TCP keepalive with Go's defaults (accept.go sets keepalive
// once on the listener, and Linux copies it to the accepted sockets).
func TestAcceptedSocketOptions(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	sc := h.waitOpen(t)
	g, ok := sc.gc.(gnet.Conn)
	if !ok {
		t.Fatalf("conn io is %T", sc.gc)
	}
	fd := g.Fd()
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdle},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveInterval},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
	} {
		v, err := unix.GetsockoptInt(fd, o.level, o.opt)
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if (v != 0) != (o.want != 0) || o.want > 1 && v != o.want {
			t.Errorf("%s = %d, want %d", o.name, v, o.want)
		}
	}
}
