//go:build !linux

package netpoll

// socketUnsent: only Linux tells the unsent bytes of a socket (SIOCOUTQNSD); elsewhere
// the policy sees the Send queue and gnet's backlog only (see slowconsumer.go).
func socketUnsent(connIO) (int64, bool) { return 0, false }
