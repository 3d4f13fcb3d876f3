//go:build linux

package loadgen

import "golang.org/x/sys/unix"

// writeFD writes b to the non-blocking socket fd with one write(2), retried on EINTR, and
// returns the bytes written: 0 with a nil error when the socket is full (EAGAIN). A short
// write means the socket is full too: the caller keeps the rest for the next writable
// event. Shared by the epoll loops of the connect scenario and of the echo floor.
func writeFD(fd int32, b []byte) (int, error) {
	for {
		n, err := unix.Write(int(fd), b)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, err
		}
	}
}
