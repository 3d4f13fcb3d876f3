package loadgen

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime is this process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKernelFloor measures what the kernel charges for the pieces of a join on this
// machine, both ends in this process, as CPU us per operation (cpu-us/op): a bare
// syscall, socket+close, and a loopback TCP connect + accept + close (the floor under a
// connect-scenario join, before any byte of WebSocket or WAMP). The figures are for
// reading loadgen's CPU per join (README: "What bounds it"); nothing is asserted.
//
//	go test -run '^$' -bench KernelFloor ./loadgen
func BenchmarkKernelFloor(b *testing.B) {
	run := func(b *testing.B, op func()) {
		b.ReportAllocs()
		c0 := cpuTime(b)
		for b.Loop() {
			op()
		}
		b.ReportMetric(float64(cpuTime(b)-c0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
	}
	b.Run("getppid", func(b *testing.B) { run(b, func() { unix.Getppid() }) })
	b.Run("socket-close", func(b *testing.B) {
		run(b, func() {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		})
	})
	b.Run("tcp-connect-accept-close", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		dst := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
		k := 0
		run(b, func() {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			// Spread over source addresses as the loops do (no port search in the way).
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			k++
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(1 + k%loopbackSources)}}); err != nil {
				b.Fatal(err)
			}
			if err := unix.Connect(fd, dst); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		})
	})
}
