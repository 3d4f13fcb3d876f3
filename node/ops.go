package node

import (
	"sort"

	"github.com/switchyard-wamp/switchyard/link"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// FrontendStats returns the counters of the node's client handshakes: joins, leaves and
// failed authentications by method. Safe for concurrent use.
func (n *Node) FrontendStats() proxy.Stats { return n.front.Stats() }

// PeerLink is the state of this node's links to one peer, for /metrics and the status
// page.
type PeerLink struct {
	// Peer is the peer router's name; "inbound" sums the links peers opened to this
	// router (proxies and routers), which are not told apart by name here.
	Peer string
	// Up: at least one link to the peer is up (inbound: always true).
	Up bool
	// Links is the number of links up.
	Links int
	// Stats sums the counters of the links that are up (they restart at a reconnect).
	Stats link.LinkStats
	// Resyncs counts the resets of the realm-spanning state with this peer router after
	// one of the links between them failed while others stayed up (a router's peers
	// only; since start).
	Resyncs uint64
}

// PeerLinks returns the state of the links to the other routers, sorted by name, then
// the inbound links. Safe for concurrent use.
func (r *RouterNode) PeerLinks() []PeerLink {
	out := poolLinks(*r.pools.Load())
	for i := range out {
		out[i].Resyncs = r.pairResets(out[i].Peer)
	}
	in := r.Links.LinkStats()
	return append(out, PeerLink{Peer: "inbound", Up: true, Stats: in})
}

// PeerLinks returns the state of the links to every router, sorted by name. Safe for
// concurrent use.
func (p *ProxyNode) PeerLinks() []PeerLink {
	routers := p.Links.Routers()
	pools := make(map[string]*link.Pool, len(routers))
	for _, name := range routers {
		if pl := p.Links.Pool(name); pl != nil {
			pools[name] = pl
		}
	}
	return poolLinks(pools)
}

// Ready reports whether the proxy can place sessions: a link to at least one router is
// up. Safe for concurrent use.
func (p *ProxyNode) Ready() bool { return p.Links.Ready() }

func poolLinks(pools map[string]*link.Pool) []PeerLink {
	out := make([]PeerLink, 0, len(pools)+1)
	for name, pl := range pools {
		st := pl.Stats()
		out = append(out, PeerLink{Peer: name, Up: st.Links > 0, Links: st.Links, Stats: pl.LinkStats()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}
