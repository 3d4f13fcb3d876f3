package bench

import (
	"context"
	"fmt"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// The echo scenarios (Kind "echo", echo-1) are the baseline of the rpc ones: loadgen's
// echo server instead of a router, started fresh for the scenario like a router is, so
// that `bench run rpc-1 echo-1` reads a call round trip against one WebSocket round trip
// of the same client on the same machine, minutes apart at most. The echo server is the
// bench binary's own (`switchyard loadgen sink --echo`), never --router-bin's: the base
// of an A/B may predate it, and the baseline must be the same for both sides.

// EchoSubprocess runs `Bin loadgen sink --echo` as a separate process on a free loopback
// port, so that the CPU read from /proc/<pid> is the echo server's alone.
type EchoSubprocess struct {
	Bin   string // a switchyard binary with `loadgen sink --echo`
	Ports *Ports // where to listen (nil: a port the kernel picks)
	Epoll bool   // the epoll echo server (`--epoll`, the floor scenarios)
}

// Launch starts the echo server and returns once it accepts connections. Not safe for
// concurrent use (Ports).
func (s *EchoSubprocess) Launch(ctx context.Context, logPath string) (Router, error) {
	addr, err := s.Ports.Next()
	if err != nil {
		return nil, err
	}
	args := []string{"loadgen", "sink", "--echo", "--listen", addr}
	if s.Epoll {
		args = append(args, "--epoll")
	}
	p, err := serveProc(ctx, s.Bin, args, addr, logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: echo server: %w", err)
	}
	return p, nil
}

// InProcessEcho runs the echo server in this process (tests; runs without a binary):
// its CPU would include loadgen's, so it has no PID and its cost is not measured.
type InProcessEcho struct {
	Ports *Ports // nil: a port the kernel picks
	Epoll bool   // the epoll echo server (the floor scenarios; Linux)
}

// Launch starts the echo server. Not safe for concurrent use (Ports).
func (l *InProcessEcho) Launch(context.Context, string) (Router, error) {
	addr := "127.0.0.1:0"
	if l.Ports != nil {
		var err error
		if addr, err = l.Ports.Next(); err != nil {
			return nil, err
		}
	}
	if l.Epoll {
		s, err := loadgen.StartEpollEchoServer(addr, 1)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		return inprocEcho{s.WebSocketURL(), s.Close}, nil
	}
	s, err := loadgen.StartEchoServer(addr)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return inprocEcho{s.WebSocketURL(), s.Close}, nil
}

type inprocEcho struct {
	url   string
	close func() error
}

func (r inprocEcho) URLs() []string { return []string{r.url} }
func (r inprocEcho) PIDs() []int    { return nil }
func (r inprocEcho) Stop() error    { return r.close() }

// floorLauncher returns l for a floor scenario: the same echo launcher with its epoll
// server; any other launcher is returned as it is.
func floorLauncher(l Launcher) Launcher {
	switch e := l.(type) {
	case *EchoSubprocess:
		c := *e
		c.Epoll = true
		return &c
	case *InProcessEcho:
		c := *e
		c.Epoll = true
		return &c
	}
	return l
}
