//go:build unix

package loadgen

import "syscall"

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft
// limit: a connect run holds one socket per session.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return uint64(l.Cur), nil // int64 on some BSDs
}
