//go:build unix

package readbatch

import "syscall"

// writeOne is write(2) on a non-blocking socket with the same results as a ring send.
func writeOne(fd int, b []byte) int {
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
