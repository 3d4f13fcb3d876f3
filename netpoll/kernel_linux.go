package netpoll

import (
	"net"

	"golang.org/x/sys/unix"
)

// socketUnsent returns the bytes in the socket's send buffer that the kernel has not
// sent yet (SIOCOUTQNSD: queued, not in flight; a peer that stopped reading closes its
// window and everything stays here). ok is false where the kernel cannot tell (Unix
// domain sockets). For gnet conns it runs on the conn's loop; for TLS conns it goes
// through the socket's SyscallConn, which is safe alongside a blocked Write.
func socketUnsent(io connIO) (n int64, ok bool) {
	var fd int
	switch t := io.(type) {
	case *tlsConn:
		tc, isTCP := t.raw.(*net.TCPConn)
		if !isTCP {
			return 0, false
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			return 0, false
		}
		var v int
		var ierr error
		if err := rc.Control(func(fd uintptr) { v, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil || ierr != nil {
			return 0, false
		}
		return int64(v), true
	case interface{ Fd() int }:
		fd = t.Fd()
	default:
		return 0, false
	}
	v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	if err != nil {
		return 0, false
	}
	return int64(v), true
}
