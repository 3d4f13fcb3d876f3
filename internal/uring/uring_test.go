//go:build linux

package uring

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPairs returns n connected loopback TCP pairs: the raw non-blocking descriptors of
// the writing ends (dups, closed with the test) and the reading ends.
func tcpPairs(t testing.TB, n int) ([]int, []net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fds := make([]int, n)
	readers := make([]net.Conn, n)
	for i := range n {
		w, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		f, err := w.(*net.TCPConn).File() // a blocking dup: make it non-blocking again
		if err != nil {
			t.Fatal(err)
		}
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		w.Close()
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		fds[i], readers[i] = fd, r
	}
	t.Cleanup(func() {
		for i := range n {
			syscall.Close(fds[i])
			readers[i].Close()
		}
	})
	return fds, readers
}

func newRing(t testing.TB, entries uint32) *Ring {
	r, err := New(entries)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestSendDeliversEachBuffer: every socket gets its own bytes, also when the batch is
// larger than the ring (several io_uring_enter calls).
func TestSendDeliversEachBuffer(t *testing.T) {
	r := newRing(t, 4)
	fds, readers := tcpPairs(t, 10)
	bufs := make([][]byte, len(fds))
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte('a' + i)}, 100+i)
	}
	res := make([]int, len(fds))
	if err := r.Send(fds, bufs, res); err != nil {
		t.Fatal(err)
	}
	for i := range fds {
		if res[i] != len(bufs[i]) {
			t.Fatalf("socket %d: wrote %d, want %d", i, res[i], len(bufs[i]))
		}
		got := make([]byte, len(bufs[i]))
		if _, err := io.ReadFull(readers[i], got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bufs[i]) {
			t.Fatalf("socket %d: got %q", i, got[:8])
		}
	}
}

// TestSendFullSocketIsZero: a socket whose buffers are full takes nothing and the send
// reports 0 at once (EAGAIN), as write(2) on a non-blocking socket does; a broken one
// reports -1.
func TestSendFullSocketIsZero(t *testing.T) {
	r := newRing(t, 8)
	fds, readers := tcpPairs(t, 2)
	big := make([]byte, 1<<20)
	res := make([]int, 1)
	total := 0
	for i := 0; ; i++ {
		if err := r.Send(fds[:1], [][]byte{big}, res); err != nil {
			t.Fatal(err)
		}
		if res[0] == 0 {
			break
		}
		if res[0] < 0 || i > 1000 {
			t.Fatalf("send %d: %d", i, res[0])
		}
		total += res[0]
	}
	if total == 0 {
		t.Fatal("nothing written before the socket was full")
	}
	readers[1].Close()
	res = []int{0}
	for i := 0; i < 10 && res[0] >= 0; i++ { // the peer's RST arrives after the first send
		if err := r.Send(fds[1:], [][]byte{[]byte("x")}, res); err != nil {
			t.Fatal(err)
		}
	}
	if res[0] != -1 {
		t.Fatalf("send to a closed peer: %d, want -1", res[0])
	}
}

// TestSendEnterFails: when io_uring_enter itself fails (here: the descriptor is not a
// ring), Send says so, every send reports -1 and wrote nothing, and the withdrawn
// entries do not go out with the next batch: the ring still works and each socket gets
// the next batch's bytes only.
func TestSendEnterFails(t *testing.T) {
	r := newRing(t, 8)
	fds, readers := tcpPairs(t, 3)
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	bufs := [][]byte{[]byte("one"), []byte("two"), []byte("six")}
	res := []int{7, 7, 7}
	ringFd := r.fd
	r.fd = p[0]
	err := r.Send(fds, bufs, res)
	r.fd = ringFd
	if err == nil {
		t.Fatal("io_uring_enter on a pipe: no error")
	}
	for i, v := range res {
		if v != -1 {
			t.Fatalf("send %d after a failed enter: %d, want -1", i, v)
		}
	}
	next := [][]byte{[]byte("ONE"), []byte("TWO"), []byte("SIX")}
	if err := r.Send(fds, next, res); err != nil {
		t.Fatal(err)
	}
	for i := range fds {
		if res[i] != len(next[i]) {
			t.Fatalf("socket %d: wrote %d", i, res[i])
		}
		_ = readers[i].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		got, _ := io.ReadAll(readers[i])
		if string(got) != string(next[i]) {
			t.Fatalf("socket %d got %q, want only %q", i, got, next[i])
		}
	}
}
