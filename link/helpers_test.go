package link

import (
	"bytes"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Handler that records what a side saw.
type recorder struct {
	ups     chan *Link
	downs   chan error
	onFrame atomic.Pointer[func(l *Link, f *Frame)] // setOnFrame

	mu     sync.Mutex
	frames []Frame // copies
}

func newRecorder() *recorder {
	return &recorder{ups: make(chan *Link, 64), downs: make(chan error, 64)}
}

func (r *recorder) OnLinkUp(l *Link) { r.ups <- l }

func (r *recorder) OnFrame(l *Link, f *Frame) {
	if h := r.onFrame.Load(); h != nil {
		(*h)(l, f)
		return
	}
	c := Frame{Kind: f.Kind, Session: f.Session, Payload: append([]byte(nil), f.Payload...)}
	if f.Targets != nil {
		c.Targets = append([]uint64{}, f.Targets...)
	}
	r.mu.Lock()
	r.frames = append(r.frames, c)
	r.mu.Unlock()
}

// setOnFrame makes h handle r's frames from now on (links may be up already: on an
// event loop, the loop's reads do not order a plain store before the handler's load).
func (r *recorder) setOnFrame(h func(l *Link, f *Frame)) { r.onFrame.Store(&h) }

func (r *recorder) OnLinkDown(l *Link, err error) { r.downs <- err }

func (r *recorder) got() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Frame(nil), r.frames...)
}

// logBuf is a concurrency-safe log sink the tests search.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var testSecret = []byte("correct horse battery staple")

// cfg is a secret-authenticated config for node/role, logging into lb (nil: discard).
func cfg(node, role string, lb *logBuf) Config {
	if lb == nil {
		lb = &logBuf{}
	}
	return Config{Node: node, Role: role, Secret: testSecret, Logger: lb.logger(), Loops: testLoops}
}

// waitUp waits for one OnLinkUp on r.
func waitUp(t *testing.T, r *recorder) *Link {
	t.Helper()
	select {
	case l := <-r.ups:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no link came up")
		return nil
	}
}

// waitDown waits for one OnLinkDown on r and returns its error.
func waitDown(t *testing.T, r *recorder, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.downs:
		return err
	case <-time.After(d):
		t.Fatal("no OnLinkDown")
		return nil
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testPair is a listener and a pool of links to it, all up.
type testPair struct {
	ln     *Listener
	lr, dr *recorder // the listener's and the dialer's handlers
	p      *Pool
	llinks []*Link // the listener's side of each link
}

// pair starts a listener (lc) and a pool of n links to it (dc) and waits for all links
// to come up on both sides.
func pair(t *testing.T, n int, lc, dc Config) *testPair {
	t.Helper()
	tp := &testPair{lr: newRecorder(), dr: newRecorder()}
	var err error
	tp.ln, err = Listen("127.0.0.1:0", lc, tp.lr)
	if err != nil {
		t.Fatal(err)
	}
	tp.p = Dial(tp.ln.Addr().String(), n, dc, tp.dr)
	t.Cleanup(func() { tp.p.Close(); tp.ln.Close() })
	for range n {
		tp.llinks = append(tp.llinks, waitUp(t, tp.lr))
		waitUp(t, tp.dr)
	}
	eventually(t, "pool links published", func() bool { return tp.p.Stats().Links == n })
	return tp
}

// holdWriter makes the writer of lk wait, before it takes the queue, until release
// is called. Tests using it must not run in parallel.
func holdWriter(t *testing.T) (hold func(*Link), release func()) {
	var mu sync.Mutex
	var held *Link
	gate := make(chan struct{})
	testBeforeSwap = func(l *Link) {
		mu.Lock()
		h := held
		mu.Unlock()
		if l == h {
			<-gate
		}
	}
	testHeld = func(l *Link) bool {
		mu.Lock()
		defer mu.Unlock()
		return l == held
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			mu.Lock()
			held = nil
			mu.Unlock()
			close(gate)
		})
	}
	t.Cleanup(release)
	return func(l *Link) { mu.Lock(); held = l; mu.Unlock() }, release
}
