package master

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// Node states in the registry (NodeInfo.State).
const (
	StateLive    = "live"    // registered, lease held
	StateExpired = "expired" // its lease ran out
	StateLeft    = "left"    // it called ProcLeave
)

// MaxTag is the largest router tag (span uses tags 1..63 as interest bits).
const MaxTag = 63

// nodeRec is one node of the replicated registry.
type nodeRec struct {
	Node    string `json:"node"`
	Role    string `json:"role"`
	Link    string `json:"link,omitempty"`
	Admin   string `json:"admin,omitempty"`
	Version string `json:"version,omitempty"`
	Tag     int    `json:"tag,omitempty"` // routers: 1..MaxTag, kept while known
	State   string `json:"state"`
	Since   int64  `json:"since"` // leader's clock (unix ms) at the last state change
	Epoch   uint64 `json:"epoch"` // raft index of the registration that made it live
}

// state is everything the replicas agree on: it is the FSM's content and its snapshot.
type state struct {
	MapVersion    int64               `json:"map_version"`
	ConfigVersion int64               `json:"config_version"`
	Config        map[string]any      `json:"config,omitempty"`
	Nodes         map[string]*nodeRec `json:"nodes"`
}

// Command kinds of the replicated log.
const (
	cmdRegister = "register"
	cmdLeave    = "leave"
	cmdExpire   = "expire"
	cmdApply    = "apply"
	cmdForget   = "forget"
)

// command is one entry of the replicated log (JSON). Times come from the leader's
// clock inside the command, so every replica applies the same thing.
type command struct {
	Kind   string          `json:"kind"`
	At     int64           `json:"at"`
	Reg    *RegisterReq    `json:"reg,omitempty"`
	Node   string          `json:"node,omitempty"`
	Expire []expireEntry   `json:"expire,omitempty"`
	Config json.RawMessage `json:"config,omitempty"`
}

// expireEntry names a node whose lease ran out and the registration (epoch) that
// lease belonged to: a node that registered again meanwhile is not expired.
type expireEntry struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
}

// applyResult is what FSM.Apply returns to the leader's future.
type applyResult struct {
	err     error
	version int64 // the config version made (cmdApply)
}

// fsm is the replicated state machine. Its methods are safe for concurrent use: raft
// calls Apply, Snapshot and Restore from its own goroutines while the WAMP handlers
// read.
type fsm struct {
	slots int
	// changed is called (outside the lock, on raft's FSM goroutine) after a command or
	// restore changed the map or config version; it must not block.
	changed func(mapChanged, cfgChanged bool)

	mu  sync.RWMutex
	st  state
	cur Map // the map of st, rebuilt on membership changes
}

func newFSM(slots int, changed func(mapChanged, cfgChanged bool)) *fsm {
	f := &fsm{slots: slots, changed: changed}
	f.st.Nodes = map[string]*nodeRec{}
	f.cur = Map{Slots: slots, Routers: []MapRouter{}}
	return f
}

// Apply applies one log entry. Part of raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return applyResult{err: fmt.Errorf("master: bad log entry %d: %w", l.Index, err)}
	}
	f.mu.Lock()
	res, cfgChanged := f.apply(&c, l.Index)
	mapChanged := f.rebuildMap()
	f.mu.Unlock()
	if (mapChanged || cfgChanged) && f.changed != nil {
		f.changed(mapChanged, cfgChanged)
	}
	return res
}

// apply runs c on f.st; f.mu is held.
func (f *fsm) apply(c *command, index uint64) (applyResult, bool) {
	switch c.Kind {
	case cmdRegister:
		return applyResult{err: f.register(c.Reg, c.At, index)}, false
	case cmdLeave:
		if n := f.st.Nodes[c.Node]; n != nil && n.State == StateLive {
			n.State, n.Since = StateLeft, c.At
		}
	case cmdExpire:
		for _, e := range c.Expire {
			if n := f.st.Nodes[e.Node]; n != nil && n.State == StateLive && n.Epoch == e.Epoch {
				n.State, n.Since = StateExpired, c.At
			}
		}
	case cmdForget:
		if n := f.st.Nodes[c.Node]; n != nil && n.State != StateLive {
			delete(f.st.Nodes, c.Node)
		}
	case cmdApply:
		var cfg map[string]any
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			return applyResult{err: fmt.Errorf("master: config of entry %d: %w", index, err)}, false
		}
		f.st.ConfigVersion++
		f.st.Config = cfg
		return applyResult{version: f.st.ConfigVersion}, true
	default:
		return applyResult{err: fmt.Errorf("master: unknown command %q in entry %d", c.Kind, index)}, false
	}
	return applyResult{}, false
}

// register makes r's node live; a router keeps its tag or gets the smallest free one.
func (f *fsm) register(r *RegisterReq, at int64, index uint64) error {
	if r == nil {
		return fmt.Errorf("master: register entry without a node")
	}
	n := f.st.Nodes[r.Node]
	if n == nil {
		n = &nodeRec{Node: r.Node}
	}
	if r.Role == NodeRouter && n.Tag == 0 {
		tag, err := f.freeTag()
		if err != nil {
			return err
		}
		n.Tag = tag
	} else if r.Role != NodeRouter {
		n.Tag = 0
	}
	n.Role, n.Link, n.Admin, n.Version = r.Role, r.Link, r.Admin, r.Version
	n.State, n.Since, n.Epoch = StateLive, at, index
	f.st.Nodes[r.Node] = n
	return nil
}

// freeTag returns the smallest tag no known router holds. When all are held, the tag of
// the router gone longest (expired or left) is taken from it; when every holder is
// live, there is none.
func (f *fsm) freeTag() (int, error) {
	var used [MaxTag + 1]bool
	var oldest *nodeRec
	for _, n := range f.st.Nodes {
		if n.Tag == 0 {
			continue
		}
		used[n.Tag] = true
		if n.State != StateLive && (oldest == nil || n.Since < oldest.Since ||
			n.Since == oldest.Since && n.Node < oldest.Node) {
			oldest = n
		}
	}
	for t := 1; t <= MaxTag; t++ {
		if !used[t] {
			return t, nil
		}
	}
	if oldest == nil {
		return 0, fmt.Errorf("master: all %d router tags are held by live routers", MaxTag)
	}
	t := oldest.Tag
	oldest.Tag = 0
	return t, nil
}

// liveRouters returns the live routers of the registry sorted by name; f.mu is held.
func (f *fsm) liveRouters() []MapRouter {
	routers := []MapRouter{}
	for _, n := range f.st.Nodes {
		if n.Role == NodeRouter && n.State == StateLive {
			routers = append(routers, MapRouter{Name: n.Node, Link: n.Link, Tag: n.Tag})
		}
	}
	slices.SortFunc(routers, func(a, b MapRouter) int { return strings.Compare(a.Name, b.Name) })
	return routers
}

// rebuildMap recomputes f.cur from the registry and raises the map version when the
// live routers (names, links, tags) changed; f.mu is held.
func (f *fsm) rebuildMap() bool {
	routers := f.liveRouters()
	if slices.Equal(routers, f.cur.Routers) {
		return false
	}
	f.st.MapVersion++
	f.cur = Map{Version: f.st.MapVersion, Slots: f.slots, Routers: routers}
	return true
}

// Map returns the current map; the caller must not modify its Routers. Safe for
// concurrent use.
func (f *fsm) Map() Map {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cur
}

// Config returns the current config version; the caller must not modify it. Safe for
// concurrent use.
func (f *fsm) Config() ConfigVersion {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cfg := f.st.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	return ConfigVersion{Version: f.st.ConfigVersion, Config: cfg}
}

// Versions returns the map and config versions. Safe for concurrent use.
func (f *fsm) Versions() (mapV, cfgV int64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.MapVersion, f.st.ConfigVersion
}

// node returns a copy of the registry entry of name. Safe for concurrent use.
func (f *fsm) node(name string) (nodeRec, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := f.st.Nodes[name]
	if n == nil {
		return nodeRec{}, false
	}
	return *n, true
}

// nodes returns copies of every registry entry, sorted by name. Safe for concurrent use.
func (f *fsm) nodes() []nodeRec {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]nodeRec, 0, len(f.st.Nodes))
	for _, n := range f.st.Nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b nodeRec) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Snapshot captures the state for raft. Part of raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(&f.st)
	if err != nil {
		return nil, fmt.Errorf("master: snapshot: %w", err)
	}
	return snapshot(b), nil
}

// Restore replaces the state with a snapshot's. Part of raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st state
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("master: restore snapshot: %w", err)
	}
	if st.Nodes == nil {
		st.Nodes = map[string]*nodeRec{}
	}
	f.mu.Lock()
	oldCfg := f.st.ConfigVersion
	f.st = st
	f.cur = Map{Version: st.MapVersion, Slots: f.slots, Routers: f.liveRouters()}
	f.mu.Unlock()
	if f.changed != nil {
		f.changed(true, st.ConfigVersion != oldCfg)
	}
	return nil
}

// snapshot is a serialized state.
type snapshot []byte

// Persist writes the snapshot. Part of raft.FSMSnapshot.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("master: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op. Part of raft.FSMSnapshot.
func (s snapshot) Release() {}
