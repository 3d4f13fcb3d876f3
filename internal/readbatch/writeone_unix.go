//go:build unix

package readbatch

import "syscall"

// WriteNonBlocking writes b to the non-blocking socket fd once (retrying EINTR) and
// returns what a ring send reports: the bytes written, 0 when the socket is full, -1
// when it failed. Safe for concurrent use (one writer per socket).
func WriteNonBlocking(fd int, b []byte) int {
	for {
		n, err := syscall.Write(fd, b)
		switch err {
		case nil:
			return n
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0
		}
		return -1
	}
}
