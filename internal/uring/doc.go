// Package uring submits a batch of socket writes to the kernel in one io_uring_enter
// call instead of one write(2) each (issue #15's lever for a loop that writes many
// sockets at the end of a read: a wide fan-out, a callee's results to many callers).
// The sends are non-blocking (MSG_DONTWAIT): a full socket completes with EAGAIN at once,
// exactly like write(2) on a non-blocking socket, so a caller can swap one for the other.
// Raw syscalls, no dependency; Linux only (New returns ErrUnsupported elsewhere).
package uring
