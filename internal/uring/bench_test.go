//go:build linux

package uring

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// drain reads r until it fails, as a client's reader does (parked in the netpoller
// between reads, so every write wakes it).
func drain(r net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkWriteRound: one 64-byte message to each of n loopback TCP sockets (whose
// readers are parked and woken by it), with one write(2) per socket or one io_uring
// batch. ns/op is per socket written.
func BenchmarkWriteRound(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		fds, readers := tcpPairs(b, n)
		for _, r := range readers {
			go drain(r)
		}
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = make([]byte, 64)
		}
		res := make([]int, n)
		b.Run(fmt.Sprintf("write/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			defer threadCPU(b, n)()
			for b.Loop() {
				for i, fd := range fds {
					if w, _ := syscall.Write(fd, bufs[i]); w != len(bufs[i]) {
						b.Fatalf("wrote %d", w)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/socket")
		})
		r := newRing(b, 1024)
		b.Run(fmt.Sprintf("uring/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			defer threadCPU(b, n)()
			for b.Loop() {
				if err := r.Send(fds, bufs, res); err != nil {
					b.Fatal(err)
				}
				for i, w := range res {
					if w != len(bufs[i]) {
						b.Fatalf("wrote %d", w)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/socket")
		})
	}
}

// threadCPU locks the benchmark to its thread and returns a func that reports the
// thread's own CPU time (user + system) per socket written: the writer's cost without
// the readers woken on other threads; and the process's (readers and any io_uring
// worker threads included).
func threadCPU(b *testing.B, n int) func() {
	runtime.LockOSThread()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	proc := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, pstart := cpu(), proc()
	return func() {
		b.ReportMetric(float64((cpu()-start).Nanoseconds())/float64(b.N*n), "cpu-ns/socket")
		b.ReportMetric(float64((proc()-pstart).Nanoseconds())/float64(b.N*n), "proc-cpu-ns/socket")
		runtime.UnlockOSThread()
	}
}
