//go:build unix

package netpoll

import "syscall"

// DefaultMaxConnections is the connection cap used when Config.MaxConnections is 0:
// the soft RLIMIT_NOFILE of the process minus a reserve of max(64, limit/16)
// descriptors (for a limit of 1024: 960). Go raises the soft limit to the hard limit
// at startup, so this follows `ulimit -Hn`. Safe for concurrent use.
func DefaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1 << 16
	}
	return maxConnsFor(uint64(rl.Cur)) // int64 on some BSDs
}
