package uring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The kernel's ABI (include/uapi/linux/io_uring.h); the syscall numbers are the same on
// every Linux architecture.
const (
	sysSetup = 425
	sysEnter = 426

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	featSingleMmap = 1 << 0
	enterGetEvents = 1 << 0

	opSend = 26

	msgDontWait = 0x40
	msgNoSignal = 0x4000
)

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad         uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Ring is one io_uring instance used synchronously: Send submits a batch of sends and
// waits for all of them. Not safe for concurrent use: one goroutine at a time (package
// readbatch keeps a free list of them).
type Ring struct {
	fd      int
	sqRing  []byte
	cqRing  []byte
	sqes    []sqe
	entries uint32

	sqHead, sqTail, sqMask, sqArray unsafe.Pointer
	cqHead, cqTail, cqMask          unsafe.Pointer
	cqes                            unsafe.Pointer
}

// ErrUnsupported: the kernel has no io_uring (too old, or disabled by
// kernel.io_uring_disabled or a seccomp filter).
var ErrUnsupported = errors.New("uring: io_uring unavailable")

// New sets up a ring of entries submission slots (a power of two, at most 4096).
// Safe for concurrent use.
func New(entries uint32) (*Ring, error) {
	var p params
	fd, _, errno := syscall.Syscall(sysSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		if errno == syscall.ENOSYS || errno == syscall.EPERM {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, errno)
		}
		return nil, fmt.Errorf("uring: io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(fd), entries: p.sqEntries}
	if err := r.mmap(&p); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap(p *params) error {
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	if r.sqRing, err = syscall.Mmap(r.fd, offSQRing, sqSize, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		return fmt.Errorf("uring: mmap sq ring: %w", err)
	}
	if single {
		r.cqRing = r.sqRing
	} else if r.cqRing, err = syscall.Mmap(r.fd, offCQRing, cqSize, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		return fmt.Errorf("uring: mmap cq ring: %w", err)
	}
	sqeBytes, err := syscall.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap sqes: %w", err)
	}
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeBytes[0])), p.sqEntries)
	sq, cq := unsafe.Pointer(&r.sqRing[0]), unsafe.Pointer(&r.cqRing[0])
	r.sqHead, r.sqTail = unsafe.Add(sq, p.sqOff.head), unsafe.Add(sq, p.sqOff.tail)
	r.sqMask, r.sqArray = unsafe.Add(sq, p.sqOff.ringMask), unsafe.Add(sq, p.sqOff.array)
	r.cqHead, r.cqTail = unsafe.Add(cq, p.cqOff.head), unsafe.Add(cq, p.cqOff.tail)
	r.cqMask, r.cqes = unsafe.Add(cq, p.cqOff.ringMask), unsafe.Add(cq, p.cqOff.cqes)
	return nil
}

// Close releases the ring. Not safe for concurrent use with Send.
func (r *Ring) Close() error {
	if r.sqes != nil {
		_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(&r.sqes[0])), len(r.sqes)*int(unsafe.Sizeof(sqe{}))))
		r.sqes = nil
	}
	if r.cqRing != nil && &r.cqRing[0] != &r.sqRing[0] {
		_ = syscall.Munmap(r.cqRing)
	}
	r.cqRing = nil
	if r.sqRing != nil {
		_ = syscall.Munmap(r.sqRing)
		r.sqRing = nil
	}
	return syscall.Close(r.fd)
}

// Send writes bufs[i] to the non-blocking socket fds[i] for every i, in as few
// io_uring_enter calls as the ring's size allows (one for up to its entries), and
// stores in res[i] what write(2) would have returned: the bytes the socket took, 0
// when it was full (EAGAIN), -1 on any other error, and also -1 for a send the kernel
// never took (when io_uring_enter itself failed, which Send then returns: every res[i]
// of -1 is a send that wrote nothing). It returns only when every send the kernel took
// has completed, so the buffers may be reused at once. The buffers must be heap memory
// (the kernel holds their addresses; a goroutine stack may move). Not safe for
// concurrent use.
func (r *Ring) Send(fds []int, bufs [][]byte, res []int) error {
	for i := range fds {
		res[i] = -1
	}
	for start := 0; start < len(fds); {
		n := min(len(fds)-start, int(r.entries))
		if err := r.sendChunk(fds[start:start+n], bufs[start:start+n], res[start:start+n]); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// sendChunk submits one ring's worth of sends and waits for those the kernel took.
func (r *Ring) sendChunk(fds []int, bufs [][]byte, res []int) error {
	mask := atomic.LoadUint32((*uint32)(r.sqMask))
	tail := atomic.LoadUint32((*uint32)(r.sqTail))
	for i, fd := range fds {
		idx := (tail + uint32(i)) & mask
		e := &r.sqes[idx]
		*e = sqe{opcode: opSend, fd: int32(fd), len: uint32(len(bufs[i])),
			msgFlags: msgDontWait | msgNoSignal, userData: uint64(i)}
		if len(bufs[i]) > 0 {
			e.addr = uint64(uintptr(unsafe.Pointer(&bufs[i][0])))
		}
		*(*uint32)(unsafe.Add(r.sqArray, 4*idx)) = idx
	}
	atomic.StoreUint32((*uint32)(r.sqTail), tail+uint32(len(fds)))
	want := len(fds) // completions still to come
	submit := want   // entries the kernel has not taken yet
	var failed error
	for want > 0 {
		got, _, errno := syscall.Syscall6(sysEnter, uintptr(r.fd), uintptr(submit), uintptr(want), enterGetEvents, 0, 0)
		switch {
		case errno == 0:
			submit -= int(got)
		case errno == syscall.EINTR:
		case submit > 0:
			// The kernel took none of the rest: withdraw them (they stay -1, unsent)
			// and wait only for those it took, whose buffers it may still read.
			atomic.StoreUint32((*uint32)(r.sqTail), atomic.LoadUint32((*uint32)(r.sqHead)))
			want -= submit
			submit = 0
			failed = fmt.Errorf("uring: io_uring_enter: %w", errno)
		}
		want -= r.reap(res)
	}
	runtime.KeepAlive(bufs) // the kernel is done with every buffer only now
	return failed
}

// reap takes the completions in the CQ ring and returns how many there were.
func (r *Ring) reap(res []int) int {
	mask := atomic.LoadUint32((*uint32)(r.cqMask))
	head := atomic.LoadUint32((*uint32)(r.cqHead))
	tail := atomic.LoadUint32((*uint32)(r.cqTail))
	n := 0
	for ; head != tail; head++ {
		c := (*cqe)(unsafe.Add(r.cqes, uintptr(head&mask)*unsafe.Sizeof(cqe{})))
		v := int(c.res)
		switch {
		case v >= 0:
		case v == -int(syscall.EAGAIN):
			v = 0
		default:
			v = -1
		}
		if c.userData < uint64(len(res)) {
			res[c.userData] = v
		}
		n++
	}
	atomic.StoreUint32((*uint32)(r.cqHead), head)
	return n
}
