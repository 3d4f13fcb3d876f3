//go:build !unix

package netpoll

// DefaultMaxConnections is the connection cap used when Config.MaxConnections is 0:
// where there is no RLIMIT_NOFILE, 1<<16. Safe for concurrent use.
func DefaultMaxConnections() int { return 1 << 16 }
