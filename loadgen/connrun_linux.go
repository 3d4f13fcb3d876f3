//go:build linux

package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// The run around the connect event loops (connloop_linux.go): the targets as the loops
// dial them, the state the loops share, and the joiner the scenario drives.

// joinTarget is one --url as the loops dial it.
type joinTarget struct {
	url    string
	ws     bool
	family int
	sa     unix.Sockaddr // each loop has its own copy (Connect writes into it)
	req    []byte        // upgrade request (key at keyAt), or the RawSocket handshake
	keyAt  int
	proto  string
	// srcs: for an IPv4 loopback target, the source addresses the sessions are spread
	// over (see loopbackSources); nil: the kernel picks.
	srcs []unix.SockaddrInet4
}

// loopbackSources is how many 127.0.0.x source addresses the sessions to an IPv4
// loopback URL are spread over. With one source address, the kernel's choice of an
// ephemeral port for each connect walks the ports already connected to the same
// ip:port (__inet_hash_connect, __inet_check_established), and once the ~14k even ports
// connect tries first are taken, every connect walks all of them: at 15,000 sessions
// that was a third of loadgen's CPU per join. Many clients have many addresses; 16
// addresses keep each one's connections far below that.
const loopbackSources = 16

func newJoinTarget(rawURL string, ser codec.Serializer) (*joinTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: bad URL: %w", err)
	}
	t := &joinTarget{url: rawURL}
	switch u.Scheme {
	case "ws":
		t.ws = true
		t.proto = client.Subprotocol(ser, false)
		if t.req, t.keyAt, err = upgradeRequest(rawURL, t.proto); err != nil {
			return nil, err
		}
	case "rs", "tcp", "rs+unix":
		t.req = rsHello(ser)
	default:
		return nil, fmt.Errorf("loadgen: the connect event loops do not speak %q", u.Scheme)
	}
	if u.Scheme == "rs+unix" {
		if u.Path == "" {
			return nil, fmt.Errorf("loadgen: URL %q needs a socket path", rawURL)
		}
		t.family, t.sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: u.Path}
		return t, nil
	}
	host := u.Host
	if u.Port() == "" {
		if !t.ws {
			return nil, fmt.Errorf("loadgen: URL %q needs a port", rawURL)
		}
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	a, err := net.ResolveTCPAddr("tcp", host)
	if err != nil {
		return nil, fmt.Errorf("loadgen: resolving %s: %w", rawURL, err)
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		t.family, t.sa = unix.AF_INET, sa
		if ip4.IsLoopback() {
			for k := range loopbackSources {
				t.srcs = append(t.srcs, unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, byte(1 + k)}})
			}
		}
	} else {
		sa := &unix.SockaddrInet6{Port: a.Port}
		copy(sa.Addr[:], a.IP.To16())
		t.family, t.sa = unix.AF_INET6, sa
	}
	return t, nil
}

// sockaddr returns a copy of t's address for one loop.
func (t *joinTarget) sockaddr() unix.Sockaddr {
	switch sa := t.sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		return &c
	case *unix.SockaddrInet6:
		c := *sa
		return &c
	case *unix.SockaddrUnix:
		c := *sa
		return &c
	}
	return t.sa
}

// loopRun is the state the loops of one connect run share.
type loopRun struct {
	o       *Options
	targets []*joinTarget
	base    int
	ser     codec.Serializer
	cdc     codec.Codec
	auth    authConfig
	hello   []byte // encoded HELLO
	authMsg []byte // encoded AUTHENTICATE with the ticket; nil without --ticket
	epoch   time.Time
	conns   []jconn

	next             atomic.Int64 // next session index to start
	stop             atomic.Bool  // the run's context ended: stop, count no more errors
	closing          atomic.Bool  // the hold is over: close everything
	attempts, joined *atomic.Int64
	errs             *errorLog

	loops      []*connLoop
	wakeMu     sync.Mutex // wake against close closing the eventfds
	wakeClosed bool
	joinWG     sync.WaitGroup // one per loop: its joins all ended
	doneWG     sync.WaitGroup // one per loop: it closed its sessions and exited
}

// loopJoiner joins on event loops.
type loopJoiner struct{ r *loopRun }

// newLoopJoiner prepares a run on event loops (resolving the URLs, encoding HELLO); no
// socket is opened yet.
func newLoopJoiner(o *Options, base int, attempts, joined *atomic.Int64, errs *errorLog) (joiner, error) {
	r := &loopRun{o: o, base: base, ser: o.Serializer, cdc: codec.For(o.Serializer), auth: o.auth(),
		conns: make([]jconn, o.Sessions), attempts: attempts, joined: joined, errs: errs}
	for _, u := range o.URLs {
		t, err := newJoinTarget(u, o.Serializer)
		if err != nil {
			return nil, err
		}
		r.targets = append(r.targets, t)
	}
	var err error
	r.hello, err = r.cdc.Append(nil, &codec.Message{Type: codec.HELLO, URI: []byte(r.auth.realm), DictAny: r.auth.helloDetails()})
	if err != nil {
		return nil, fmt.Errorf("loadgen: encoding HELLO: %w", err)
	}
	if r.auth.ticket != "" {
		r.authMsg, err = r.cdc.Append(nil, &codec.Message{Type: codec.AUTHENTICATE, URI: []byte(r.auth.ticket), DictAny: map[string]any{}})
		if err != nil {
			return nil, fmt.Errorf("loadgen: encoding AUTHENTICATE: %w", err)
		}
	}
	n := max(1, min(runtime.GOMAXPROCS(0), o.Concurrency, o.Sessions))
	for k := range n {
		l, err := newConnLoop(r, k, n)
		if err != nil {
			for _, l := range r.loops {
				l.closeFDs()
				unix.Close(l.wakeFD)
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	return loopJoiner{r}, nil
}

// join starts the loops at start and waits until every join ended (or the run stopped).
func (j loopJoiner) join(start time.Time) *histogram {
	r := j.r
	r.epoch = start
	r.joinWG.Add(len(r.loops))
	r.doneWG.Add(len(r.loops))
	for _, l := range r.loops {
		l.pace = newPacer(r.o.Rate, len(r.loops), l.id, start)
		go l.run()
	}
	r.joinWG.Wait()
	h := newHistogram()
	for _, l := range r.loops {
		h.Merge(l.hist)
	}
	return h
}

// wake interrupts every loop's wait (stop or closing changed). Safe for concurrent use
// (stopped runs on the context's AfterFunc goroutine): the eventfds are closed under
// wakeMu, after the loops exited, so a late wake never writes to a reused fd number.
func (r *loopRun) wake() {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.wakeClosed {
		return
	}
	for _, l := range r.loops {
		_, _ = unix.Write(l.wakeFD, one)
	}
}

// close ends the hold: the loops close every session and exit. The sessions that ended
// during the hold were counted in errs as they ended.
func (j loopJoiner) close() {
	r := j.r
	r.closing.Store(true)
	r.wake()
	r.doneWG.Wait()
	r.wakeMu.Lock()
	r.wakeClosed = true
	for _, l := range r.loops {
		unix.Close(l.wakeFD)
	}
	r.wakeMu.Unlock()
}

// stopped is called when the run's context ended.
func (j loopJoiner) stopped() {
	j.r.stop.Store(true)
	j.r.wake()
}
