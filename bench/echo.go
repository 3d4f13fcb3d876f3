package bench

import (
	"context"
	"fmt"
	"time"

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
}

// Launch starts the echo server and returns once it accepts connections. Not safe for
// concurrent use (Ports).
func (s *EchoSubprocess) Launch(ctx context.Context, logPath string) (Router, error) {
	addr, err := s.Ports.Next()
	if err != nil {
		return nil, err
	}
	p, err := startProc(s.Bin, []string{"loadgen", "sink", "--echo", "--listen", addr}, logPath)
	if err != nil {
		return nil, err
	}
	p.url = "ws://" + addr + "/ws"
	if err := waitPort(ctx, addr, p.done, 10*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("bench: echo server: %w", err)
	}
	return p, nil
}

// InProcessEcho runs the echo server in this process (tests; runs without a binary):
// its CPU would include loadgen's, so it has no PID and its cost is not measured.
type InProcessEcho struct {
	Ports *Ports // nil: a port the kernel picks
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
	s, err := loadgen.StartEchoServer(addr)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return inprocEcho{s}, nil
}

type inprocEcho struct{ s *loadgen.EchoServer }

func (r inprocEcho) URLs() []string { return []string{r.s.WebSocketURL()} }
func (r inprocEcho) PIDs() []int    { return nil }
func (r inprocEcho) Stop() error    { return r.s.Close() }
