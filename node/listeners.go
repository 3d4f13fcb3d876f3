package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// Listener kinds (Listener.Kind).
const (
	KindUniversal = "universal" // WebSocket at Path, RawSocket and the status page
	KindWebSocket = "websocket" // WebSocket only
	KindRawSocket = "rawsocket" // RawSocket only
)

// Listener is one listening socket of a node. Plain data.
type Listener struct {
	Name           string // for logs; default "KIND@ADDRESS"
	Kind           string // KindUniversal (default), KindWebSocket or KindRawSocket
	Network        string // "tcp" (default) or "unix"
	Address        string // host:port (port 0: any free port, see Node.ListenerAddr) or socket path
	Path           string // WebSocket path; default "/ws"
	TLS            *TLSFiles
	Serializers    []codec.Serializer // allowed; empty: JSON, MessagePack, CBOR
	MaxMessageSize int                // largest inbound message, bytes; default 1 MiB
	PingInterval   time.Duration      // ping after this much idle time; default 10s
	PingTimeout    time.Duration      // close when a ping is not answered within this; default 5s
	// HandshakeTimeout bounds the time from accept to WELCOME (TLS, HTTP upgrade or
	// RawSocket handshake, HELLO, authentication); default netpoll.DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	Cookie           *netpoll.Cookie // hand out a cookie on WebSocket upgrades
	// AuthMethods are the auth methods offered on this listener; nil offers every
	// method the realm configures. Needs a Name.
	AuthMethods []string
	// StatusPage is what "/" of a universal listener serves: "minimal" (default: a
	// WAMP router runs here, the WebSocket path), "full" (Config.StatusPage: realm
	// names and session counts, to anyone) or "off" (404).
	StatusPage string
	// AllowedOrigins are the Origin patterns a WebSocket upgrade may carry
	// (netpoll.Listener.AllowedOrigins); empty: any origin.
	AllowedOrigins []string
	// Compression offers permessage-deflate to WebSocket clients (netpoll.Compression);
	// nil: off.
	Compression *netpoll.Compression
}

// statusModes maps Listener.StatusPage onto netpoll's modes.
var statusModes = map[string]netpoll.StatusMode{
	"": netpoll.StatusMinimal, "minimal": netpoll.StatusMinimal,
	"full": netpoll.StatusFull, "off": netpoll.StatusOff,
}

// TLSFiles are the files of a TLS listener. Plain data.
type TLSFiles struct {
	CertFile string // PEM certificate chain
	KeyFile  string // PEM private key
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string
	// ClientCAFile, when set, holds PEM CA certificates: clients are asked for a
	// certificate, and one that is sent must verify against these
	// (tls.VerifyClientCertIfGiven); Conn.TLS shows it to the auth layer.
	ClientCAFile string
}

// certSource serves a TLS listener's current config (certificate, client CAs) to new
// handshakes; Reload swaps it. Safe for concurrent use.
type certSource struct {
	files atomic.Pointer[TLSFiles]
	cur   atomic.Pointer[tls.Config]
}

func (c *certSource) getConfig(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load(), nil }

// loadTLS reads the files of f into a server tls.Config.
func loadTLS(f *TLSFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are required")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s / %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch f.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls: min_version %q (want 1.2 or 1.3)", f.MinVersion)
	}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s: no PEM certificate in it", f.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// netpollListeners maps the node's listeners, loading TLS files.
func (n *Node) netpollListeners() ([]netpoll.Listener, error) {
	var out []netpoll.Listener
	n.certs = make([]*certSource, len(n.cfg.Listeners))
	for i, l := range n.cfg.Listeners {
		nl := netpoll.Listener{Name: l.Name, Network: l.Network, Address: l.Address, Path: l.Path,
			Serializers: l.Serializers, MaxMessageSize: l.MaxMessageSize,
			PingInterval: l.PingInterval, PingTimeout: l.PingTimeout, HandshakeTimeout: l.HandshakeTimeout, Cookie: l.Cookie,
			AllowedOrigins: l.AllowedOrigins, Compression: l.Compression}
		mode, ok := statusModes[l.StatusPage]
		if !ok {
			return nil, fmt.Errorf("node: listener %d: status page %q (want minimal, full or off)", i, l.StatusPage)
		}
		nl.StatusPage = mode
		switch l.Kind {
		case KindUniversal, "":
			nl.Kind = netpoll.KindUniversal
		case KindWebSocket:
			nl.Kind = netpoll.KindWebSocket
		case KindRawSocket:
			nl.Kind = netpoll.KindRawSocket
		default:
			return nil, fmt.Errorf("node: listener %d: unknown kind %q", i, l.Kind)
		}
		if l.TLS != nil {
			cfg, err := loadTLS(l.TLS)
			if err != nil {
				return nil, fmt.Errorf("node: listener %d: %w", i, err)
			}
			cs := &certSource{}
			files := *l.TLS
			cs.files.Store(&files)
			cs.cur.Store(cfg)
			n.certs[i] = cs
			// The listener's own config only points at the current one, so that a
			// reload reaches every new handshake.
			nl.TLS = &tls.Config{GetConfigForClient: cs.getConfig, MinVersion: tls.VersionTLS12}
		}
		out = append(out, nl)
	}
	return out, nil
}

// reloadCerts re-reads every TLS listener's files (paths from lns[i] when it has TLS,
// else the running ones) and swaps them in only if all load.
func (n *Node) reloadCerts(lns []Listener) error {
	type swap struct {
		cs    *certSource
		files TLSFiles
		cfg   *tls.Config
	}
	var swaps []swap
	for i, cs := range n.certs {
		if cs == nil {
			continue
		}
		files := *cs.files.Load()
		if i < len(lns) && lns[i].TLS != nil {
			files = *lns[i].TLS
		}
		cfg, err := loadTLS(&files)
		if err != nil {
			return fmt.Errorf("node: reload listener %d (%s): %w", i, n.cfg.Listeners[i].Address, err)
		}
		swaps = append(swaps, swap{cs, files, cfg})
	}
	for _, s := range swaps {
		s.cs.files.Store(&s.files)
		s.cs.cur.Store(s.cfg)
	}
	return nil
}
