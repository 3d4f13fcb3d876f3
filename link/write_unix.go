//go:build unix

package link

import "syscall"

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
