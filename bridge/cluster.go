package bridge

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// clusterJoinTimeout bounds the wait for a router to accept the bridge's session.
const clusterJoinTimeout = 10 * time.Second

// ClusterSession is a Session on a cluster proxy: the bridge's session lives on the
// router the placement of (realm, authrole) picks, opened through proxy.Cluster like a
// client's session (authmethod "http", authprovider "bridge"), so the role's permissions
// apply on the router as for any client, and a call or an event crosses the cluster as
// a client's would. It opens on first use and again after its router closed it (router
// lost, shutdown). Safe for concurrent use.
type ClusterSession struct {
	session
	cl  proxy.Cluster
	req wire.OpenReq

	mu  sync.Mutex // guards cur; held while opening
	cur *clusterPeer
}

// NewClusterSession returns the bridge session of realm through cl; it opens on first
// use. Safe for concurrent use.
func NewClusterSession(cl proxy.Cluster, realm, authid, authrole string) *ClusterSession {
	s := &ClusterSession{cl: cl, req: wire.OpenReq{Realm: realm, AuthID: authid, AuthRole: authrole,
		AuthMethod: "http", AuthProvider: "bridge", Serializer: uint8(codec.JSON),
		Features: engine.Features{CallCanceling: true}, Transport: "http", Peer: "http-bridge"}}
	s.session = newSession(s)
	return s
}

// clusterPeer is one opening of the bridge's session: what its router sends arrives
// here; once it ended, the next request opens a new one.
type clusterPeer struct {
	s     *ClusterSession
	rs    *proxy.RemoteSession
	ended atomic.Bool
}

func (p *clusterPeer) Serializer() codec.Serializer { return codec.JSON }

// Send hands an answer to its request; a GOODBYE or ABORT ends this opening. Runs on a
// link's reader goroutine and never blocks.
func (p *clusterPeer) Send(b []byte) error {
	ended, err := p.s.answer(b)
	if ended {
		p.ended.Store(true)
	}
	return err
}

// Close: the router side is gone (router lost, session closed).
func (p *clusterPeer) Close() { p.ended.Store(true) }

// deliver forwards one message to the session's router, opening the session first when
// needed.
func (s *ClusterSession) deliver(msg []byte) error {
	s.mu.Lock()
	p := s.cur
	if p == nil || p.ended.Load() {
		if p != nil {
			p.rs.Leave()
		}
		var err error
		if p, err = s.open(); err != nil {
			s.mu.Unlock()
			return err
		}
		s.cur = p
	}
	s.mu.Unlock()
	if err := p.rs.Forward(msg); err != nil {
		p.ended.Store(true)
		return fmt.Errorf("bridge: forward to router %s: %w", p.rs.Router, err)
	}
	return nil
}

// open asks the cluster to join the bridge's session and waits for the answer (mu held).
func (s *ClusterSession) open() (*clusterPeer, error) {
	p := &clusterPeer{s: s}
	type opened struct {
		rs       *proxy.RemoteSession
		uri, why string
	}
	ch := make(chan opened, 1)
	s.cl.Open(p, s.req, func(rs *proxy.RemoteSession, uri, why string) { ch <- opened{rs, uri, why} })
	select {
	case o := <-ch:
		if o.rs == nil {
			return nil, &Error{URI: o.uri, Args: mustJSON([]any{o.why})}
		}
		p.rs = o.rs
		return p, nil
	case <-time.After(clusterJoinTimeout):
		go func() { // the answer may still come: leave that session
			if o := <-ch; o.rs != nil {
				o.rs.Leave()
			}
		}()
		return nil, &Error{URI: "wamp.error.timeout", Args: mustJSON([]any{"no router accepted the bridge's session in time"})}
	}
}
