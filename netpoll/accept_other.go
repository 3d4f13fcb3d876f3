//go:build !linux

package netpoll

import "net"

// listenConfig is how listeners are bound: elsewhere accepted sockets do not reliably
// inherit the listener's keepalive settings, so Go sets its defaults on each conn.
func listenConfig() net.ListenConfig { return net.ListenConfig{} }
