package master

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// raftNode is a replica's Raft machinery: the bolt log and stable store, the snapshot
// store and the TCP transport under Config.DataDir and Config.Raft.
type raftNode struct {
	r     *raft.Raft
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	logw  *io.PipeWriter
}

// startRaft opens (or creates) the replica's data directory and starts Raft on it. A
// directory without Raft state is bootstrapped with the configured replicas (every
// replica bootstraps with the same list, which Raft accepts); one with state recovers
// it and ignores the list.
func startRaft(cfg *Config, f *fsm, notify chan bool) (*raftNode, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("master: data dir: %w", err)
	}
	rn := &raftNode{}
	logw := slogWriter(cfg.Logger)
	rn.logw = logw
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: logw, DisableTime: true})
	fail := func(err error) (*raftNode, error) {
		rn.close()
		return nil, err
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return fail(fmt.Errorf("master: open %s (is another master using this data_dir?): %w",
			filepath.Join(cfg.DataDir, "raft.db"), err))
	}
	rn.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 3, hl)
	if err != nil {
		return fail(fmt.Errorf("master: snapshot store: %w", err))
	}
	trans, err := newTransport(cfg, hl)
	if err != nil {
		return fail(err)
	}
	rn.trans = trans

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	rc.Logger = hl
	rc.NotifyCh = notify
	if cfg.RaftTimeout > 0 {
		rc.HeartbeatTimeout = cfg.RaftTimeout
		rc.ElectionTimeout = cfg.RaftTimeout
		rc.LeaderLeaseTimeout = cfg.RaftTimeout / 2
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}

	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fail(fmt.Errorf("master: read raft state: %w", err))
	}
	if !has {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Raft)})
		}
		if len(servers) == 0 {
			servers = []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}
		}
		if err := raft.BootstrapCluster(rc, store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			return fail(fmt.Errorf("master: bootstrap: %w", err))
		}
		cfg.Logger.Info("master: bootstrapped a new cluster state", "replicas", len(servers), "data_dir", cfg.DataDir)
	} else {
		cfg.Logger.Info("master: recovering state from the data directory", "data_dir", cfg.DataDir)
	}
	r, err := raft.NewRaft(rc, f, store, store, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("master: start raft: %w", err))
	}
	rn.r = r
	return rn, nil
}

// close shuts Raft down and closes its stores.
func (rn *raftNode) close() error {
	var errs []error
	if rn.r != nil {
		errs = append(errs, rn.r.Shutdown().Error())
	}
	if rn.trans != nil {
		errs = append(errs, rn.trans.Close())
	}
	if rn.store != nil {
		errs = append(errs, rn.store.Close())
	}
	if rn.logw != nil {
		rn.logw.Close()
	}
	return errors.Join(errs...)
}

// slogWriter turns hclog's text lines into slog records (at Info; hclog already
// filtered by level and names it in the line).
func slogWriter(log *slog.Logger) *io.PipeWriter {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			lvl := slog.LevelInfo
			if tag, rest, ok := strings.Cut(line, "]"); ok && strings.HasPrefix(tag, "[") {
				switch tag[1:] {
				case "ERROR":
					lvl = slog.LevelError
				case "WARN":
					lvl = slog.LevelWarn
				case "DEBUG", "TRACE":
					lvl = slog.LevelDebug
				}
				line = strings.TrimSpace(rest)
			}
			if !strings.HasPrefix(line, "raft:") {
				line = "raft: " + line
			}
			log.Log(context.Background(), lvl, line)
		}
		pr.Close()
	}()
	return pw
}

// newTransport listens for Raft on cfg.Raft and advertises the address the other
// replicas dial: this replica's peers entry, else cfg.Raft itself, else (port 0 or a
// wildcard host, one replica) the bound address. A host name (e.g. a Kubernetes pod's
// stable DNS name) is bound as every interface on its port, so the replica starts
// before its name resolves.
func newTransport(cfg *Config, hl hclog.Logger) (*raft.NetworkTransport, error) {
	host, port, err := net.SplitHostPort(cfg.Raft)
	if err != nil {
		return nil, fmt.Errorf("master: raft address %q: %w", cfg.Raft, err)
	}
	bind := cfg.Raft
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		bind = net.JoinHostPort("", port)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("master: raft transport on %s: %w", bind, err)
	}
	st := &tcpStream{Listener: ln, advertise: ln.Addr()}
	switch {
	case peerRaft(cfg) != "":
		st.advertise = namedAddr(peerRaft(cfg))
	case port != "0" && host != "" && (ip == nil || !ip.IsUnspecified()):
		st.advertise = namedAddr(cfg.Raft)
	}
	return raft.NewNetworkTransportWithLogger(st, 3, 5*time.Second, hl), nil
}

// peerRaft is the Raft address of this replica's peers entry ("" without peers).
func peerRaft(cfg *Config) string {
	for _, p := range cfg.Peers {
		if p.Name == cfg.Name {
			return p.Raft
		}
	}
	return ""
}

// tcpStream is Raft's stream layer on TCP: a listener, dials to the peers' addresses
// as written (host names resolve at each dial), and the advertised address.
type tcpStream struct {
	net.Listener
	advertise net.Addr
}

// Dial opens a connection to a peer. Part of raft.StreamLayer.
func (t *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

// Addr is the advertised address. Part of net.Listener.
func (t *tcpStream) Addr() net.Addr { return t.advertise }

// namedAddr is a TCP address as written (host name or IP, and port).
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }
