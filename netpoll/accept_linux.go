//go:build linux

package netpoll

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig is how listeners are bound on Linux. Go sets TCP keepalive (SO_KEEPALIVE
// and its idle, interval and count: four setsockopt calls) on every connection it
// accepts; Linux copies these settings from the listening socket to each socket it
// accepts, so they are set once on the listener instead, with Go's defaults, and
// accepted conns skip them (KeepAlive -1 only turns off the per-conn calls).
func listenConfig() net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(network, _ string, rc syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return nil
			}
			var serr error
			err := rc.Control(func(fd uintptr) { serr = setListenerKeepAlive(int(fd)) })
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// setListenerKeepAlive gives listening socket fd the keepalive settings its accepted
// sockets inherit.
func setListenerKeepAlive(fd int) error {
	for _, o := range [...]struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdle},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveInterval},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return err
		}
	}
	return nil
}
