package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-wamp/switchyard/node"
)

// Launcher starts a fresh switchyard router for one scenario.
type Launcher interface {
	// Launch starts a router and returns once it accepts connections. logPath, when not
	// empty, is where the router's log may go.
	Launch(ctx context.Context, logPath string) (Router, error)
}

// Router is a running router: one node, or a cluster of several.
type Router interface {
	// URLs are the WebSocket URLs clients join at: one for a node, one per proxy for a
	// cluster (loadgen spreads its sessions over them).
	URLs() []string
	// PIDs are the processes whose CPU and RSS are the router's alone, summed by
	// loadgen (none: not measured).
	PIDs() []int
	Stop() error
}

// NodeProc is one process of a router: its node name (router1, proxy2, ...) and pid.
type NodeProc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// namedRouter is a Router that says which node each of its PIDs is (a cluster).
type namedRouter interface {
	Nodes() []NodeProc
}

// Subprocess runs `Bin start` as a separate process on a free loopback port, so that
// the CPU and RSS loadgen reads from /proc/<pid> are the router's alone.
type Subprocess struct {
	Bin   string   // the switchyard binary
	Args  []string // extra `start` flags
	Ports *Ports   // where to listen (nil: a port the kernel picks)
}

func (s *Subprocess) Launch(ctx context.Context, logPath string) (Router, error) {
	addr, err := s.Ports.Next()
	if err != nil {
		return nil, err
	}
	args := append([]string{"start", "--listen", addr, "--rawsocket", "", "--log-level", "warn"}, s.Args...)
	p, err := serveProc(ctx, s.Bin, args, addr, logPath)
	if err != nil && logPath != "" {
		err = fmt.Errorf("%w (router log: %s)", err, logPath)
	}
	return p, err
}

// serveProc starts bin with args (a server listening on addr, WebSocket at /ws) and
// returns it once addr accepts connections; on failure the process is stopped and the
// returned Router is nil.
func serveProc(ctx context.Context, bin string, args []string, addr, logPath string) (Router, error) {
	p, err := startProc(bin, args, logPath)
	if err != nil {
		return nil, err
	}
	p.url = "ws://" + addr + "/ws"
	if err := waitPort(ctx, addr, p.done, 10*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// startProc starts bin with args, its stdout and stderr to logPath (none when empty).
func startProc(bin string, args []string, logPath string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	var logf *os.File
	if logPath != "" {
		var err error
		if logf, err = os.Create(logPath); err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		closeFile(logf)
		return nil, fmt.Errorf("bench: starting %s %s: %w", bin, args[0], err)
	}
	p := &proc{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	return p, nil
}

type proc struct {
	cmd     *exec.Cmd
	log     *os.File
	url     string
	done    chan struct{}
	waitErr error
}

func (p *proc) URLs() []string { return []string{p.url} }
func (p *proc) PIDs() []int    { return []int{p.PID()} }
func (p *proc) PID() int       { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the router to exit (SIGKILL after 10 s).
func (p *proc) Stop() error {
	defer closeFile(p.log)
	select {
	case <-p.done:
		return fmt.Errorf("bench: router pid %d had exited: %v", p.PID(), p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("bench: router pid %d ignored SIGTERM for 10 s, killed", p.PID())
	}
}

// closeFile closes a router log, removing it when the router wrote nothing.
func closeFile(f *os.File) {
	if f == nil {
		return
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		os.Remove(f.Name())
	}
	f.Close()
}

// waitPort dials addr until it accepts, the process ends (exited) or timeout passes.
func waitPort(ctx context.Context, addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("bench: router exited before listening on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: router not listening on %s after %v: %w", addr, timeout, err)
		}
	}
}

// InProcess starts the router in this process with node.Start (tests, and runs where a
// separate binary is not at hand). Its CPU and RSS would include the load generator's,
// so PID is 0 and the router's cost is not measured.
type InProcess struct {
	Ports  *Ports       // nil: a port the kernel picks
	Logger *slog.Logger // nil: discard
}

func (l *InProcess) Launch(ctx context.Context, _ string) (Router, error) {
	addr := "127.0.0.1:0"
	if l.Ports != nil {
		var err error
		if addr, err = l.Ports.Next(); err != nil {
			return nil, err
		}
	}
	log := l.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n, err := node.Start(node.Config{Listeners: []node.Listener{{Address: addr}}, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return inproc{n}, nil
}

type inproc struct{ n *node.Node }

func (r inproc) URLs() []string { return []string{r.n.WebSocketURL()} }
func (r inproc) PIDs() []int    { return nil }
func (r inproc) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.n.Stop(ctx)
}

// external is a router someone else started (--target).
type external struct {
	url string
	pid int
}

func (r external) URLs() []string { return []string{r.url} }
func (r external) PIDs() []int {
	if r.pid <= 0 {
		return nil
	}
	return []int{r.pid}
}
func (r external) Stop() error { return nil }

// Ports hands out loopback listen addresses from a port range, skipping ports in use;
// a nil *Ports asks the kernel for a free port each time.
type Ports struct {
	Lo, Hi int // inclusive
	next   int
}

// ParsePorts parses "LO-HI" (or one port); "" gives nil (kernel-chosen ports).
func ParsePorts(s string) (*Ports, error) {
	if s == "" {
		return nil, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || l <= 0 || h > 65535 || l > h {
		return nil, fmt.Errorf("bench: bad port range %q (want LO-HI)", s)
	}
	return &Ports{Lo: l, Hi: h}, nil
}

// Next returns "127.0.0.1:PORT" for a port that is free now, cycling through the range
// so that consecutive routers do not reuse a port.
func (p *Ports) Next() (string, error) {
	if p == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("bench: no free loopback port: %w", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	n := p.Hi - p.Lo + 1
	var lastErr error
	for range n {
		port := p.Lo + p.next%n
		p.next++
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			lastErr = err
			continue
		}
		ln.Close()
		return addr, nil
	}
	return "", errors.Join(fmt.Errorf("bench: no free port in %d-%d", p.Lo, p.Hi), lastErr)
}
