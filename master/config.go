package master

import (
	"fmt"
	"log/slog"
	"time"
)

// Config is one master replica's setup (the Go form of the config file's `master`
// section, which cmd/switchyard converts). Plain data: Start copies it.
type Config struct {
	Name    string // replica name: its Raft server id, unique among the replicas
	Listen  string // host:port of the management endpoint (WebSocket at /ws and RawSocket); port 0: any
	Raft    string // host:port of the Raft transport (bound and advertised); port 0: any (one replica only)
	DataDir string // Raft log, stable store and snapshots
	// URL is this replica's management URL as nodes dial it, named in ErrNotLeader
	// redirects and status; empty: the ws:// URL of Listen (its bound address).
	URL string
	// Peers are all replicas, this one included; empty: a single replica.
	Peers []Peer
	Lease time.Duration // a node's lease; 0: DefaultLease
	// ForgetAfter is how long an expired or departed node stays in the registry (a
	// router keeps its tag meanwhile); 0: DefaultForgetAfter.
	ForgetAfter time.Duration
	Slots       int // hash slots of the map; 0: DefaultSlots
	// Secret is the cluster secret: any node name may authenticate with it (WAMP-CRA),
	// except the names in NodeKeys, which must use their own key. Empty: only NodeKeys.
	Secret      string
	NodeKeys    map[string]string // per-node keys by node name
	OperatorKey string            // the operator's key; empty: the cluster secret
	Logger      *slog.Logger      // nil: slog.Default()
	// RaftTimeout is Raft's heartbeat and election timeout (leader lease half of it);
	// 0: hashicorp/raft's defaults (1 s). Failover takes about one to two of these.
	RaftTimeout time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot make Raft take
	// a new one (checked every 2 minutes or so); 0: hashicorp/raft's default (8192).
	SnapshotThreshold uint64
}

// Peer is one master replica as the others know it.
type Peer struct {
	Name string // replica name (Config.Name)
	Raft string // its Raft address
	URL  string // its management URL (ws://host:port/ws or rs://host:port)
}

// Defaults of Config.
const (
	DefaultLease       = 4 * time.Second
	DefaultForgetAfter = 24 * time.Hour
	DefaultSlots       = 4096
)

// InternalAuthID is the authid of the replica's own session on its management realm
// (it registers the procedures and publishes the topics); a node name cannot take it.
const InternalAuthID = "master:internal"

// OperatorAuthID is the authid of `switchyard cluster status/apply`.
const OperatorAuthID = "operator"

func (c *Config) defaults() error {
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.ForgetAfter <= 0 {
		c.ForgetAfter = DefaultForgetAfter
	}
	if c.Slots <= 0 {
		c.Slots = DefaultSlots
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Name == "":
		return fmt.Errorf("master: replica name required")
	case c.DataDir == "":
		return fmt.Errorf("master: data_dir required")
	case c.Secret == "" && len(c.NodeKeys) == 0:
		return fmt.Errorf("master: a cluster secret or node keys required: nodes must authenticate")
	case c.Secret == "" && c.OperatorKey == "":
		return fmt.Errorf("master: an operator key or cluster secret required")
	}
	if len(c.Peers) > 0 {
		found := false
		for _, p := range c.Peers {
			found = found || p.Name == c.Name
		}
		if !found {
			return fmt.Errorf("master: replica %q is not in its own peers list", c.Name)
		}
	}
	return nil
}
