//go:build !linux

package loadgen

import "errors"

// EpollEchoServer is the echo server on epoll event loops, the floor a router's CPU per
// message is read against; it runs on Linux only (see echo_epoll_linux.go).
type EpollEchoServer struct {
	*tcpServer
	echoCounters
}

// StartEpollEchoServer fails on this platform: epoll is Linux's. Use StartEchoServer.
func StartEpollEchoServer(addr string, loops int) (*EpollEchoServer, error) {
	return nil, errors.New("loadgen: the epoll echo server runs on Linux only (use the goroutine echo server)")
}
