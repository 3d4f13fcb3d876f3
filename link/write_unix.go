//go:build unix

package link

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// writeThrough says whether a link on a plain socket writes through (see batch.go).
const writeThrough = true

// writeNonBlocking is writeFn: one write(2) of wtBuf on the non-blocking socket. It
// always returns true, so that raw.Write never parks the caller waiting for room (a
// full socket reports 0 bytes written).
func (l *Link) writeNonBlocking(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), l.wtBuf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			n, err = 0, nil
		}
		l.wtN, l.wtErr = max(n, 0), err
		return true
	}
}

// writeFd is one write(2) of buf on the non-blocking socket fd: a full socket reports 0
// bytes written and no error.
func writeFd(fd int, buf []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		case nil:
			return n, nil
		}
		return 0, fmt.Errorf("link: write: %w", err)
	}
}

// waitWritable waits at most d for room in socket fd's send buffer.
func waitWritable(fd int, d time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	_, err := unix.Poll(pfd, int(d/time.Millisecond))
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("link: poll: %w", err)
	}
	return nil
}
