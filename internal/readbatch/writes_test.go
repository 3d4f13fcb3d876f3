//go:build linux

package readbatch

import (
	"fmt"
	"syscall"
	"testing"
)

// sockTarget writes its queued bytes to one end of a socket pair, through the Flush's
// Writes when it gets one.
type sockTarget struct {
	m        Mark
	fd, peer int
	queued   []byte
	batched  int // writes handed to a Writes
	wrote    int // bytes the socket took
}

func (s *sockTarget) flush(w *Writes) {
	buf := s.queued
	s.queued = nil
	if w == nil {
		s.wrote += WriteNonBlocking(s.fd, buf)
		return
	}
	s.batched++
	w.Add(s.fd, buf, func(n int) { s.wrote += n })
}

// TestFlushBatchesWrites: with io_uring on, one Flush makes the writes of every target
// (more than one ring's worth) and runs their done callbacks before it returns; with it
// off, each target writes itself.
func TestFlushBatchesWrites(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("uring=%v", on), func(t *testing.T) {
			if got, err := SetURing(on); got != on {
				t.Skipf("io_uring unavailable here: %v", err)
			}
			t.Cleanup(func() { _, _ = SetURing(false) })
			ts := make([]*sockTarget, writesChunk+10)
			for i := range ts {
				p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
				if err != nil {
					t.Fatal(err)
				}
				ts[i] = &sockTarget{fd: p[0], peer: p[1]}
				defer syscall.Close(p[0])
				defer syscall.Close(p[1])
				ts[i].m.InitWrites(ts[i].flush)
			}
			before := URingWrites()
			Begin()
			for i, s := range ts {
				s.queued = fmt.Appendf(nil, "target %d", i)
				Defer(&s.m)
			}
			End()
			for i, s := range ts {
				want := fmt.Sprintf("target %d", i)
				if s.wrote != len(want) {
					t.Fatalf("target %d: wrote %d bytes, want %d", i, s.wrote, len(want))
				}
				buf := make([]byte, 64)
				n, err := syscall.Read(s.peer, buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("target %d: peer read %q, %v", i, buf[:max(n, 0)], err)
				}
				if on != (s.batched == 1) {
					t.Fatalf("target %d: %d batched writes with io_uring %v", i, s.batched, on)
				}
			}
			if on && URingWrites()-before != uint64(len(ts)) {
				t.Fatalf("%d writes through io_uring, want %d", URingWrites()-before, len(ts))
			}
		})
	}
}
