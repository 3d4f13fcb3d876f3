// Package statuspage is the live status page of the admin listener: an HTML page at /
// that polls a JSON document (status.json) every second and redraws itself (sessions,
// realms, message rates, cluster peers), and the master's cluster page built the same
// way (nodes, slots, sessions, rates). The pages hold no state: the data comes from a
// func the caller gives, filled from the running node (cmd/switchyard) or the master,
// so this package depends on nothing else of switchyard.
//
// The public listeners' own page (listener.status_page) is a different, static page
// served by netpoll; this one is for operators, on the internal admin port only.
package statuspage

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"time"
)

// Node is a node's status, as status.json carries it.
type Node struct {
	Node     string `json:"node"`    // node name (cluster) or host name
	Role     string `json:"role"`    // standalone, router or proxy
	Version  string `json:"version"` // switchyard version string
	Started  int64  `json:"started"` // unix milliseconds
	Time     int64  `json:"time"`    // unix milliseconds of this snapshot (rates are per its delta)
	Ready    bool   `json:"ready"`   // what /readyz answers
	Draining bool   `json:"draining"`
	// Sessions are the sessions joined on this node (a cluster router: hosted here; a
	// proxy: held open through it).
	Sessions    int     `json:"sessions"`
	Connections int64   `json:"connections"`
	Realms      []Realm `json:"realms"`
	// Message and byte totals since start; the page shows rates from their deltas.
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	// Peers are the cluster links of this node, by peer (empty when standalone).
	Peers []Peer `json:"peers"`
}

// Realm is one realm's line on the page.
type Realm struct {
	Name          string `json:"name"`
	Sessions      int    `json:"sessions"`
	CallsInFlight int64  `json:"calls_in_flight"`
}

// Peer is the state of the links to one cluster peer.
type Peer struct {
	Name     string `json:"name"`
	Up       bool   `json:"up"`
	Links    int    `json:"links"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

// Cluster is the master's view of the cluster, as cluster.json carries it.
type Cluster struct {
	Master  string        `json:"master"`  // this master's name
	Leader  string        `json:"leader"`  // the raft leader's name ("" while there is none)
	Version uint64        `json:"version"` // version of the shard map in force
	Slots   int           `json:"slots"`   // number of hash slots
	Time    int64         `json:"time"`    // unix milliseconds of this snapshot
	Nodes   []ClusterNode `json:"nodes"`
}

// ClusterNode is one registered node on the cluster page.
type ClusterNode struct {
	Name        string `json:"name"`
	Role        string `json:"role"` // router or proxy
	Addr        string `json:"addr"`
	Up          bool   `json:"up"`    // heartbeating
	Slots       int    `json:"slots"` // hash slots it owns (routers)
	Sessions    int    `json:"sessions"`
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
}

//go:embed node.html
var nodePage []byte

//go:embed cluster.html
var clusterPage []byte

// NodePage serves the node page (it fetches status.json next to it). Safe for
// concurrent use.
func NodePage() http.Handler { return page(nodePage) }

// ClusterPage serves the cluster page (it fetches cluster.json next to it). Safe for
// concurrent use.
func ClusterPage() http.Handler { return page(clusterPage) }

// NodeJSON serves get() as status.json; get is called once per request and must be
// safe for concurrent use. Time is filled in when get leaves it 0.
func NodeJSON(get func() Node) http.Handler {
	return serveJSON(func() any {
		n := get()
		if n.Time == 0 {
			n.Time = time.Now().UnixMilli()
		}
		return n
	})
}

// ClusterJSON serves get() as cluster.json; get is called once per request and must be
// safe for concurrent use. Time is filled in when get leaves it 0.
func ClusterJSON(get func() Cluster) http.Handler {
	return serveJSON(func() any {
		c := get()
		if c.Time == 0 {
			c.Time = time.Now().UnixMilli()
		}
		return c
	})
}

func page(b []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(b)
	})
}

func serveJSON(get func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(get())
	})
}
