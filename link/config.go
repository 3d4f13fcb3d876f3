package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config configures both ends of a link: Listen and Dial take the same struct.
type Config struct {
	// Node and Role are this node's name and role, sent in the handshake (at most 255
	// bytes each); the peer sees them as Link.Peer().
	Node, Role string
	// Secret is the cluster secret: both ends prove they know it by HMAC-SHA256
	// challenge-response. Required unless TLS authenticates the peer by certificate.
	Secret []byte
	// TLS, when set, runs links over TLS. On the listener, ClientAuth
	// RequireAndVerifyClientCert (or VerifyClientCertIfGiven plus a Secret) makes it
	// mutual TLS; on the dialer, Certificates are the client certificate.
	TLS *tls.Config
	// Heartbeat is how long a link may send nothing before it sends a ping (default 1s).
	Heartbeat time.Duration
	// DeadAfter is how long a link may receive nothing before it is closed as dead
	// (default 3s). Must exceed Heartbeat.
	DeadAfter time.Duration
	// OutboundLimit is the number of queued, unwritten bytes at which a link is closed as
	// overloaded (default 64 MiB). Send never blocks and never drops a frame silently.
	OutboundLimit int
	// MaxConns caps the links (and handshakes in progress) a Listener holds (default
	// 1024); a connection over the cap is closed at once, counted and logged (rate-limited).
	MaxConns int
	// NoCoalesce turns off tail coalescing in Send (see Link.Send).
	NoCoalesce bool
	// NoWriteThrough makes every write go through the link's writer goroutine, as TLS
	// links always do; by default the end of a link reader's read batch writes what the
	// batch queued on a plain TCP link itself, without blocking (see batch.go). For A/B
	// measurements and tests.
	NoWriteThrough bool
	// Loops, when set, reads plain TCP links on these event loops instead of a reader
	// goroutine per link (loop.go; node passes its netpoll.Server). TLS links keep
	// their goroutine.
	Loops Loops
	// Logger receives state changes and refusals (default slog.Default()).
	Logger *slog.Logger
}

// Defaults, see Config.
const (
	DefaultHeartbeat     = time.Second
	DefaultDeadAfter     = 3 * time.Second
	DefaultOutboundLimit = 64 << 20
	DefaultMaxConns      = 1024
	// HandshakeTimeout bounds the TLS handshake plus the hello/auth exchange.
	HandshakeTimeout = 5 * time.Second
)

// Errors a link reports (through Send, Close and OnLinkDown); test them with errors.Is.
var (
	// ErrClosed: the link is closed; Send after Close returns an error wrapping it.
	ErrClosed = errors.New("link: closed")
	// ErrOverloaded: the outbound queue passed Config.OutboundLimit.
	ErrOverloaded = errors.New("link: outbound queue over limit")
	// ErrDead: no frame arrived for Config.DeadAfter.
	ErrDead = errors.New("link: peer silent (dead)")
	// ErrAuth: the handshake failed (wrong secret, bad certificate, bad hello).
	ErrAuth = errors.New("link: authentication failed")
	// ErrPeerClosed: the peer closed the link (with a reason) or the connection ended.
	ErrPeerClosed = errors.New("link: closed by peer")
	// ErrReservedKind: Send was given a kind below FirstUserKind.
	ErrReservedKind = errors.New("link: kind reserved for the link protocol")
	// ErrTooLarge: the payload is over MaxPayload.
	ErrTooLarge = errors.New("link: payload too large")
)

// withDefaults returns cfg with zero fields defaulted, or an error for an unusable
// config. listener says which side checks it.
func (cfg Config) withDefaults(listener bool) (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.DeadAfter <= cfg.Heartbeat {
		return cfg, fmt.Errorf("link: dead_after %v must exceed heartbeat %v", cfg.DeadAfter, cfg.Heartbeat)
	}
	if cfg.OutboundLimit <= 0 {
		cfg.OutboundLimit = DefaultOutboundLimit
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if len(cfg.Node) > 255 || len(cfg.Role) > 255 {
		return cfg, fmt.Errorf("link: node name and role must be at most 255 bytes")
	}
	if cfg.Node == "" {
		return cfg, fmt.Errorf("link: node name is required")
	}
	if len(cfg.Secret) == 0 {
		switch {
		case cfg.TLS == nil:
			return cfg, fmt.Errorf("link: a cluster secret is required without TLS client certificates")
		case listener && cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
			return cfg, fmt.Errorf("link: without a cluster secret the listener's TLS must require and verify client certificates")
		case !listener && cfg.TLS.InsecureSkipVerify:
			return cfg, fmt.Errorf("link: without a cluster secret the dialer must verify the server certificate")
		case !listener && len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetClientCertificate == nil:
			return cfg, fmt.Errorf("link: without a cluster secret the dialer needs a client certificate")
		}
	}
	return cfg, nil
}

// rateLog logs at most one line per interval, counting the lines it held back. Safe
// for concurrent use.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
	interval   time.Duration
}

// log writes msg with args unless a line went out less than interval ago.
func (r *rateLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.suppressed = 0
	r.last = now
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.Log(context.Background(), level, msg, args...)
}
