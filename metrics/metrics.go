// Package metrics exposes a node's counters in the Prometheus text format at /metrics
// of the admin listener. Nothing here runs per message: the Collector reads the
// counters the node keeps anyway (netpoll's per-loop atomics, the frontend's and the
// links' counters, the engine's session tables) when Prometheus scrapes, so the hot
// path has no Prometheus call, no lock and no allocation.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Source is what a node exposes; a nil field is left out of the metrics (a cluster
// router without client listeners has no Server, a standalone node no Links).
type Source struct {
	// Role is "standalone", "router", "proxy" or "master" (the switchyard_up label).
	Role string
	// Router holds the realms whose sessions and calls in flight are counted here.
	Router *engine.Router
	// Server is the client listeners' network layer.
	Server *netpoll.Server
	// Frontend returns the client handshake counters (joins, leaves, auth failures).
	Frontend func() proxy.Stats
	// Links returns the state of the cluster links by peer.
	Links func() []node.PeerLink
	// Ready and Draining are what /readyz answers and whether a drain runs.
	Ready, Draining func() bool
}

var (
	dUp          = desc("up", "1 while the node runs; the role label says which role.", "role")
	dReady       = desc("ready", "1 while /readyz answers 200 (listeners up, cluster links up, not draining).")
	dDraining    = desc("draining", "1 during a lame-duck drain (SIGUSR2).")
	dSessions    = desc("sessions", "Sessions joined to the realm on this node.", "realm")
	dInFlight    = desc("calls_in_flight", "CALLs of the realm's sessions on this node waiting for a result.", "realm")
	dJoins       = desc("session_joins_total", "Sessions welcomed by this node's client listeners.")
	dLeaves      = desc("session_leaves_total", "Welcomed sessions whose client connection closed.")
	dAuthFail    = desc("auth_failures_total", "Failed authentications by method.", "method")
	dMessages    = desc("messages_total", "WAMP messages read from (in) and written to (out) client connections, by serializer and type.", "direction", "serializer", "type")
	dBytes       = desc("bytes_total", "Bytes read from (in) and written to (out) client connections.", "direction")
	dQueued      = desc("queued_bytes", "Bytes queued for client connections, not yet handed to a socket.")
	dOpen        = desc("connections_open", "Client connections open (transport handshake done).")
	dAccepted    = desc("connections_accepted_total", "Client connections accepted.")
	dRefused     = desc("connections_refused_total", "Client connections closed at accept because max_connections were held.")
	dProtoErr    = desc("protocol_errors_total", "Client connections closed for a bad handshake or frame.")
	dSlowClosed  = desc("slow_consumer_closed_total", "Client connections closed by the slow-consumer policy, by the limit they broke: hard_limit (at once) or write_deadline (over outbound_limit for too long).", "reason")
	dOverLimit   = desc("slow_consumer_over_limit", "Client connections whose backlog is over the outbound limit now.")
	dLinkUp      = desc("link_up", "1 while at least one link to the peer is up.", "peer")
	dLinks       = desc("links", "Links up to the peer.", "peer")
	dLinkBytes   = desc("link_bytes_total", "Bytes on the links to the peer (links up now; a reconnect restarts them).", "peer", "direction")
	dLinkFrames  = desc("link_frames_total", "Frames on the links to the peer (links up now; a reconnect restarts them).", "peer", "direction")
	dLinkQueued  = desc("link_queued_bytes", "Bytes queued on the links to the peer, not yet written.", "peer")
	dLinkCoalesc = desc("link_coalesced_total", "Sessions added to a queued multi-target frame instead of a new frame.", "peer")
	dLinkResync  = desc("link_resyncs_total", "Resets of the realm-spanning state with the peer router after one of the links between them failed while others stayed up.", "peer")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("switchyard_"+name, help, labels, nil)
}

var serializers = []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}

// Collector is a prometheus.Collector over a Source. Safe for concurrent use.
type Collector struct{ src Source }

// NewCollector returns a Collector reading src at every scrape.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dUp, dReady, dDraining, dSessions, dInFlight, dJoins, dLeaves, dAuthFail,
		dMessages, dBytes, dQueued, dOpen, dAccepted, dRefused, dProtoErr, dSlowClosed, dOverLimit,
		dLinkUp, dLinks, dLinkBytes, dLinkFrames, dLinkQueued, dLinkCoalesc, dLinkResync} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the counters of the Source.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(dUp, 1, s.Role)
	if s.Ready != nil {
		gauge(dReady, b2f(s.Ready()))
	}
	if s.Draining != nil {
		gauge(dDraining, b2f(s.Draining()))
	}
	if s.Router != nil {
		for _, name := range s.Router.RealmNames() {
			if rl, ok := s.Router.Realm(name); ok {
				gauge(dSessions, float64(rl.SessionCount()), name)
				gauge(dInFlight, float64(rl.CallsInFlight()), name)
			}
		}
	}
	if s.Frontend != nil {
		fs := s.Frontend()
		counter(dJoins, fs.Joins)
		counter(dLeaves, fs.Leaves)
		for _, m := range proxy.AuthMethods {
			counter(dAuthFail, fs.AuthFailures[m], m)
		}
	}
	if s.Server != nil {
		st := s.Server.Stats()
		counter(dBytes, st.BytesIn, "in")
		counter(dBytes, st.BytesOut, "out")
		gauge(dOpen, float64(st.Open))
		counter(dAccepted, st.Accepted)
		counter(dRefused, st.RefusedAtCap)
		counter(dProtoErr, st.ProtocolErrors)
		counter(dSlowClosed, st.SlowConsumerHard, "hard_limit")
		counter(dSlowClosed, st.SlowConsumerClosed-st.SlowConsumerHard, "write_deadline")
		gauge(dOverLimit, float64(st.OverOutboundLimit))
		gauge(dQueued, float64(s.Server.QueuedBytes()))
		mc := s.Server.MessageCounts()
		for _, ser := range serializers {
			for slot := range codec.NumTypeSlots {
				in, out := mc.In[ser][slot], mc.Out[ser][slot]
				typ := "unknown"
				if slot > 0 {
					typ = codec.SlotType(slot).String()
				} else if in == 0 && out == 0 {
					continue // unknown codes only once seen
				}
				counter(dMessages, in, "in", ser.String(), typ)
				counter(dMessages, out, "out", ser.String(), typ)
			}
		}
	}
	if s.Links != nil {
		for _, pl := range s.Links() {
			gauge(dLinkUp, b2f(pl.Up), pl.Peer)
			gauge(dLinks, float64(pl.Links), pl.Peer)
			counter(dLinkBytes, pl.Stats.BytesIn, pl.Peer, "in")
			counter(dLinkBytes, pl.Stats.BytesOut, pl.Peer, "out")
			counter(dLinkFrames, pl.Stats.FramesIn, pl.Peer, "in")
			counter(dLinkFrames, pl.Stats.FramesOut, pl.Peer, "out")
			gauge(dLinkQueued, float64(pl.Stats.Queued), pl.Peer)
			counter(dLinkCoalesc, pl.Stats.Coalesced, pl.Peer)
			if s.Role == "router" && pl.Peer != "inbound" {
				counter(dLinkResync, pl.Resyncs, pl.Peer)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves /metrics for src: its Collector plus the Go runtime and process
// collectors, in a registry of its own. Safe for concurrent use.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
