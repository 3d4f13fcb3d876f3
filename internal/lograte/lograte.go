// Package lograte keeps log lines that remote peers can cause from flooding the log.
// A client that sends garbage, fails logins or opens connections it never uses can make
// the node write a line per attempt; a Limiter lets a few lines per (cause, remote
// address) through per interval, counts the rest, and writes one summary line
// "suppressed N similar lines" with the cause and the address when the interval ends or
// when the next line of that key is let through.
//
// Callers test before they build the line, so that a suppressed line costs a map lookup
// under a mutex and no allocation:
//
//	if lim.Allow(slog.LevelWarn, "undecodable message", lograte.Addr(c.RemoteAddr())) {
//		log.Warn("undecodable message", "remote", c.RemoteAddr().String(), ...)
//	}
package lograte

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of New's zero arguments: 5 lines per key every 10 s, 4096 tracked keys.
const (
	DefaultBurst    = 5
	DefaultInterval = 10 * time.Second
	DefaultMaxKeys  = 4096
)

// key is what lines are counted by. overflow marks the shared key of a cause once
// MaxKeys addresses are tracked, so that a spray of addresses stays bounded too.
type key struct {
	cause    string
	addr     netip.Addr
	overflow bool
}

type entry struct {
	start      time.Time // start of the current interval
	allowed    int       // lines let through in it
	suppressed uint64    // lines counted instead
	level      slog.Level
}

// summary is a suppressed-lines line to write once the mutex is released.
type summary struct {
	key   key
	n     uint64
	level slog.Level
}

// Limiter rate-limits log lines per (cause, remote address). All methods are safe for
// concurrent use.
type Limiter struct {
	log      *slog.Logger
	burst    int
	interval time.Duration
	maxKeys  int

	mu        sync.Mutex
	keys      map[key]*entry
	timer     *time.Timer // flushes summaries at the end of an interval
	armed     bool        // timer is pending
	lastSweep time.Time
}

// New returns a Limiter that writes its summary lines to log (nil: slog.Default()),
// lets burst lines per key through per interval and tracks at most maxKeys addresses
// (beyond that, the lines of further addresses share one key per cause, "other
// addresses"); zero or negative values take the defaults. Safe for concurrent use.
func New(log *slog.Logger, burst int, interval time.Duration, maxKeys int) *Limiter {
	if log == nil {
		log = slog.Default()
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Limiter{log: log, burst: burst, interval: interval, maxKeys: maxKeys, keys: map[key]*entry{}}
	l.timer = time.AfterFunc(time.Hour, l.flush)
	l.timer.Stop()
	return l
}

// Addr is the IP address of a remote net.Addr, without the port (one client opens many
// connections); the zero Addr for other kinds (unix sockets) and nil. It does not
// allocate for TCP and UDP addresses. Safe for concurrent use.
func Addr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		if a != nil {
			return a.AddrPort().Addr().Unmap()
		}
	case *net.UDPAddr:
		if a != nil {
			return a.AddrPort().Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// Allow reports whether a line of level for cause (a constant string, typically the
// log message) caused by addr may be written now. If it returns false the line is
// counted for the key's summary line; if it returns true after an interval with
// suppressed lines, the summary is written first. A nil Limiter allows everything.
// Safe for concurrent use; it allocates only when it starts tracking a new key.
func (l *Limiter) Allow(level slog.Level, cause string, addr netip.Addr) bool {
	if l == nil {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	k := key{cause: cause, addr: addr}
	e := l.keys[k]
	if e == nil {
		if len(l.keys) >= l.maxKeys {
			l.sweepLocked(now)
		}
		if len(l.keys) >= l.maxKeys {
			k = key{cause: cause, overflow: true}
			e = l.keys[k]
		}
		if e == nil {
			e = &entry{start: now}
			l.keys[k] = e
		}
	}
	var s summary
	if now.Sub(e.start) >= l.interval {
		if e.suppressed > 0 {
			s = summary{key: k, n: e.suppressed, level: e.level}
		}
		e.start, e.allowed, e.suppressed = now, 0, 0
	}
	ok := e.allowed < l.burst
	if ok {
		e.allowed++
	} else {
		e.suppressed++
		if e.suppressed == 1 || level > e.level {
			e.level = level
		}
		if !l.armed {
			l.armed = true
			l.timer.Reset(e.start.Add(l.interval).Sub(now))
		}
	}
	l.mu.Unlock()
	if s.n > 0 {
		l.write(s)
	}
	return ok
}

// sweepLocked makes room in a full table: it forgets the keys whose interval is over
// and that owe no summary (those are left to flush). It scans at most once per
// interval/8, so that a table full of fresh keys is not scanned for every line.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < l.interval/8 {
		return
	}
	l.lastSweep = now
	for k, e := range l.keys {
		if e.suppressed == 0 && now.Sub(e.start) >= l.interval {
			delete(l.keys, k)
		}
	}
}

// flush runs on the timer: it writes the summaries of the intervals that are over,
// forgets idle keys, and re-arms for the summaries still to come.
func (l *Limiter) flush() {
	now := time.Now()
	l.mu.Lock()
	l.armed = false
	var next time.Duration
	var out []summary
	for k, e := range l.keys {
		over := now.Sub(e.start) >= l.interval
		switch {
		case over && e.suppressed > 0:
			out = append(out, summary{key: k, n: e.suppressed, level: e.level})
			delete(l.keys, k) // its interval is over: nothing left to count
		case over:
			delete(l.keys, k)
		case e.suppressed > 0:
			if d := e.start.Add(l.interval).Sub(now); next == 0 || d < next {
				next = d
			}
		}
	}
	if next > 0 {
		l.armed = true
		l.timer.Reset(next)
	}
	l.mu.Unlock()
	for _, s := range out {
		l.write(s)
	}
}

func (l *Limiter) write(s summary) {
	remote := s.key.addr.String()
	switch {
	case s.key.overflow:
		remote = "other addresses"
	case !s.key.addr.IsValid():
		remote = "unknown"
	}
	l.log.Log(context.Background(), s.level, fmt.Sprintf("suppressed %d similar lines", s.n),
		"cause", s.key.cause, "remote", remote, "suppressed", s.n, "interval", l.interval)
}
