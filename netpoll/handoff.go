package netpoll

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Web requests. A listener with a Web handler keeps WebSocket upgrades at its Path (and
// RawSocket) on the event loops, and hands every other HTTP request to Go's net/http:
// once the protocol code has read a complete request head that is not an upgrade at
// Path, the connection leaves netpoll.
//
//   - plain conn: on its event loop, the descriptor is duplicated (gnet.Conn.Dup), the
//     duplicate becomes a net.Conn of Go's runtime poller (net.FileConn), and the gnet
//     conn is closed without a byte written (closing one of two descriptors of a socket
//     sends nothing to the peer). The cost on the loop is the head scan that every HTTP
//     request already paid, a copy of the bytes read so far, and two dup syscalls.
//   - TLS conn: its reader goroutine stops and gives its *tls.Conn away.
//
// Either way the bytes already read (the head and whatever followed it) are replayed as
// the first reads of the net.Conn (webConn), which is queued on a net.Listener
// (webListener) that one http.Server per netpoll.Server serves. From there the request,
// and any later request on the same keep-alive conn, runs on net/http's goroutines:
// nothing of it runs on an event loop again. A handed-off conn keeps its slot of
// Config.MaxConnections until net/http closes it.
//
// A later request on such a keep-alive conn that asks for the WebSocket upgrade at Path
// (browsers open a fresh conn for WebSocket, but other clients may not) is hijacked and
// served by the same protocol code on goroutines, as a TLS conn is (servePlainGoroutine).

const (
	// webReadHeaderTimeout bounds the time net/http waits for the head of a further
	// request on a keep-alive conn.
	webReadHeaderTimeout = 10 * time.Second
	// webIdleTimeout closes keep-alive conns idle for this long.
	webIdleTimeout = 60 * time.Second
	// webQueue is the number of handed-off conns waiting for net/http's accept.
	webQueue = 64
)

// webConn is a conn that left netpoll for net/http: Read returns the bytes netpoll had
// already read first. Close releases the conn's slot once.
type webConn struct {
	net.Conn
	s      *Server
	l      *listener
	pre    []byte // read before the hand-off; only net/http's single reader touches it
	closed atomic.Bool
}

func (w *webConn) Read(b []byte) (int, error) {
	if len(w.pre) > 0 {
		n := copy(b, w.pre)
		w.pre = w.pre[n:]
		return n, nil
	}
	return w.Conn.Read(b)
}

// ReadFrom lets net/http send files with sendfile(2) on plain conns (it looks for an
// io.ReaderFrom on the conn it serves, which the embedded interface hides).
func (w *webConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.Conn, r)
}

func (w *webConn) Close() error {
	err := w.Conn.Close()
	if w.closed.CompareAndSwap(false, true) {
		w.s.webConns.Delete(w)
		w.s.live.Add(-1)
	}
	return err
}

// webListener is the net.Listener net/http accepts handed-off conns from. Safe for
// concurrent use.
type webListener struct {
	ch   chan *webConn
	done chan struct{}
	once sync.Once
}

func (wl *webListener) Accept() (net.Conn, error) {
	select {
	case c := <-wl.ch:
		return c, nil
	case <-wl.done:
		return nil, net.ErrClosed
	}
}

func (wl *webListener) Close() error {
	wl.once.Do(func() { close(wl.done) })
	return nil
}

func (wl *webListener) Addr() net.Addr { return &net.UnixAddr{Name: "netpoll-web", Net: "handoff"} }

// webCtxKey keys the listener of a web request in its context.
type webCtxKey struct{}

// startWeb starts the http.Server of the listeners with a Web handler (none: nothing).
func (s *Server) startWeb() {
	any := false
	for _, l := range s.lns {
		any = any || l.Web != nil
	}
	if !any {
		return
	}
	s.webLn = &webListener{ch: make(chan *webConn, webQueue), done: make(chan struct{})}
	s.webSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveWeb),
		ReadHeaderTimeout: webReadHeaderTimeout,
		IdleTimeout:       webIdleTimeout,
		MaxHeaderBytes:    maxHTTPHeader,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if wc, ok := c.(*webConn); ok {
				return context.WithValue(ctx, webCtxKey{}, wc)
			}
			return ctx
		},
	}
	go func() { _ = s.webSrv.Serve(s.webLn) }()
}

// stopWeb shuts the http.Server down (in-flight requests get until ctx is done) and
// closes every conn it still holds, hijacked ones (reverse-proxied WebSockets) too.
func (s *Server) stopWeb(ctx context.Context) {
	if s.webSrv == nil {
		return
	}
	_ = s.webSrv.Shutdown(ctx)
	_ = s.webLn.Close()
	s.webConns.Range(func(c *webConn, _ struct{}) bool {
		_ = c.Close()
		return true
	})
}

// serveWeb runs on net/http's goroutine: the WebSocket upgrade at Path goes back to the
// protocol code, everything else to the listener's Web handler.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) {
	wc, _ := r.Context().Value(webCtxKey{}).(*webConn)
	if wc == nil {
		http.Error(w, "no listener", http.StatusInternalServerError)
		return
	}
	if r.URL.Path == wc.l.Path && r.Header.Get("Upgrade") != "" {
		s.rejoin(w, r, wc)
		return
	}
	if tc, ok := wc.Conn.(*tls.Conn); ok && r.TLS == nil {
		// net/http sees our wrapper, not the *tls.Conn: give handlers the state.
		st := tc.ConnectionState()
		r.TLS = &st
	}
	wc.l.Web.ServeHTTP(w, r)
}

// handOff gives the conn to net/http (see the comment at the top of this file); runs on
// the conn's loop with the whole inbound buffer unconsumed. The conn is closed on the
// netpoll side without a byte written.
func (c *Conn) handOff() {
	s := c.srv
	in, _ := c.gc.Peek(c.gc.InboundBuffered())
	pre := bytes.Clone(in)
	_, _ = c.gc.Discard(len(in))
	c.closeWith(0, nil)
	if t, ok := c.gc.(*tlsConn); ok {
		// The reader goroutine hands t.tc over once this onTraffic returns; the slot
		// goes with it.
		t.handoff = &webConn{Conn: t.tc, s: s, l: c.ln, pre: pre}
		return
	}
	g, ok := c.gc.(gnet.Conn)
	if !ok {
		return
	}
	nc, err := dupConn(g)
	if err != nil {
		if s.warnOK("web hand-off failed", c.remote) {
			s.log.Warn("netpoll: could not hand an HTTP request to net/http, closed it",
				"listener", c.ln.Name, "remote", c.remote.String(), "error", err)
		}
		return
	}
	s.live.Add(1) // gnet's OnClose releases the slot of the conn it closes
	s.pushWeb(&webConn{Conn: nc, s: s, l: c.ln, pre: pre})
}

// dupConn returns a net.Conn on a duplicate of g's descriptor.
func dupConn(g gnet.Conn) (net.Conn, error) {
	fd, err := g.Dup()
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	f := os.NewFile(uintptr(fd), "web")
	nc, err := net.FileConn(f) // dups again
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("file conn: %w", err)
	}
	return nc, nil
}

// pushWeb queues wc for net/http's accept without blocking the caller (an event loop).
func (s *Server) pushWeb(wc *webConn) {
	s.webHanded.Add(1)
	s.webConns.Store(wc, struct{}{})
	if s.stopping.Load() {
		_ = wc.Close()
		return
	}
	select {
	case s.webLn.ch <- wc:
	default:
		go func() {
			select {
			case s.webLn.ch <- wc:
			case <-s.webLn.done:
				_ = wc.Close()
			}
		}()
	}
}

// errNotHijackable is logged when net/http cannot give a conn back for an upgrade.
var errNotHijackable = errors.New("netpoll: response writer cannot hijack")

// rejoin takes a keep-alive web conn back for a WebSocket upgrade at Path: the request
// head is written out again and fed, with whatever net/http had buffered after it, to
// the protocol code, which then runs on goroutines (as for a TLS conn).
func (s *Server) rejoin(w http.ResponseWriter, r *http.Request, wc *webConn) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.log.Warn("netpoll: websocket upgrade on a web conn", "error", errNotHijackable)
		http.Error(w, "upgrade not possible on this connection", http.StatusInternalServerError)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, r.Host)
	_ = r.Header.Write(&head)
	head.WriteString("\r\n")
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		head.Write(b)
	}
	raw, ok := nc.(*webConn)
	if !ok {
		_ = nc.Close()
		return
	}
	// The slot stays held: the goroutine conn releases it when it ends.
	if !raw.closed.CompareAndSwap(false, true) {
		return
	}
	s.webConns.Delete(raw)
	if len(raw.pre) > 0 { // cannot happen once net/http has read a whole head; be safe
		head.Write(raw.pre)
	}
	s.serveGoroutineConn(raw.l, raw.Conn, head.Bytes())
}
