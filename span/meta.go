package span

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// The meta API realm-wide. A realm-wide meta procedure (engine.Federation.MetaQuery) is
// a query: the asking router sends it to every other live router (KindQuery), each
// computes its own part (engine.Realm.MetaPart: its sessions, its subscriptions; it
// executes kills and revocations of its own sessions) and replies (KindReply); the
// engine merges the parts. A dead router ends its wait (RouterDown), and a router that
// does not reply within the query timeout is left out, so a call never hangs. Queries
// and replies of one caller share a key, so one caller's queries are answered in order.
//
// Every router also announces its sessions' joins and leaves and their subscriptions
// (KindSession, KindSubscriber): when a router dies, the others publish, to their own
// subscribers, wamp.subscription.on_unsubscribe / on_delete and wamp.session.on_leave
// for its sessions, as it would have done had they left.

// DefaultQueryTimeout is how long a realm-wide meta query waits for a router's reply.
const DefaultQueryTimeout = 3 * time.Second

// SetQueryTimeout sets how long a realm-wide meta query waits for each router (d <= 0:
// DefaultQueryTimeout). Safe for concurrent use.
func (s *Span) SetQueryTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultQueryTimeout
	}
	s.queryTimeout.Store(int64(d))
}

// query is a realm-wide meta query waiting for the routers in wait.
type query struct {
	mu    sync.Mutex
	wait  []string
	parts []any
	done  func(parts []any)
	timer *time.Timer
	ended bool
}

// MetaQuery implements engine.Federation: ask every other live router for its part.
func (s *Span) MetaQuery(rl *engine.Realm, caller *engine.Session, procedure string, args []any, kwargs map[string]any, done func(parts []any)) {
	id := s.querySeq.Add(1)
	q := &query{done: done}
	s.others(func(n string) { q.wait = append(q.wait, n) })
	if len(q.wait) == 0 {
		go done(nil)
		return
	}
	b := appendUvarint(nil, id)
	b = appendString(b, rl.Name())
	b = appendUvarint(b, caller.ID())
	b = appendString(b, procedure)
	var err error
	if b, err = appendJSON(b, args); err == nil {
		b, err = appendJSON(b, kwargs)
	}
	if err != nil {
		s.log.Warn("span: meta query not encodable", "procedure", procedure, "err", err)
		go done(nil)
		return
	}
	to := slices.Clone(q.wait) // q.wait belongs to q.mu once q is stored
	s.queries.Store(id, q)
	q.mu.Lock()
	q.timer = time.AfterFunc(time.Duration(s.queryTimeout.Load()), func() { s.queryTimedOut(id) })
	q.mu.Unlock()
	for _, n := range to {
		if !s.send(n, caller.ID(), KindQuery, b) {
			s.replied(id, n, nil)
		}
	}
}

// appendJSON appends v encoded as JSON, length-prefixed.
func appendJSON(b []byte, v any) ([]byte, error) {
	enc, err := codec.AppendValue(nil, codec.JSON, v)
	if err != nil {
		return b, fmt.Errorf("encode: %w", err)
	}
	return appendBytes(b, enc), nil
}

func decodeJSON(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return codec.DecodeValue(codec.JSON, b)
}

func (s *Span) onQuery(from string, r *reader) error {
	id := r.uvarint()
	realm := r.bytes()
	caller := r.uvarint()
	procedure := r.string()
	rawArgs, rawKw := r.bytes(), r.bytes()
	if r.err != nil {
		return r.err
	}
	var part any
	if rl := s.realmOf(s.stateBytes(realm)); rl != nil {
		a, err := decodeJSON(rawArgs)
		if err != nil {
			return fmt.Errorf("query arguments: %w", err)
		}
		kw, err := decodeJSON(rawKw)
		if err != nil {
			return fmt.Errorf("query keyword arguments: %w", err)
		}
		args, _ := a.([]any)
		kwargs, _ := kw.(map[string]any)
		part = rl.MetaPart(caller, procedure, args, kwargs)
	}
	b := appendUvarint(nil, id)
	b, err := appendJSON(b, part)
	if err != nil {
		b, _ = appendJSON(appendUvarint(nil, id), nil)
		s.log.Warn("span: meta reply not encodable", "procedure", procedure, "err", err)
	}
	s.send(from, caller, KindReply, b)
	return nil
}

func (s *Span) onReply(from string, r *reader) error {
	id := r.uvarint()
	raw := r.bytes()
	if r.err != nil {
		return r.err
	}
	part, err := decodeJSON(raw)
	if err != nil {
		s.replied(id, from, nil)
		return fmt.Errorf("reply: %w", err)
	}
	s.replied(id, from, part)
	return nil
}

// replied records router from's part of query id (nil: nothing, or no answer) and ends
// the query when it was the last one awaited.
func (s *Span) replied(id uint64, from string, part any) {
	q, ok := s.queries.Load(id)
	if !ok {
		return
	}
	q.mu.Lock()
	i := slices.Index(q.wait, from)
	if i < 0 || q.ended {
		q.mu.Unlock()
		return
	}
	q.wait = slices.Delete(q.wait, i, i+1)
	if part != nil {
		q.parts = append(q.parts, part)
	}
	last := len(q.wait) == 0
	q.mu.Unlock()
	if last {
		s.endQuery(id, q)
	}
}

func (s *Span) queryTimedOut(id uint64) {
	q, ok := s.queries.Load(id)
	if !ok {
		return
	}
	q.mu.Lock()
	waited := slices.Clone(q.wait)
	q.mu.Unlock()
	s.log.Warn("span: meta query timed out", "routers", waited)
	s.endQuery(id, q)
}

// endQuery gives the query's parts to the engine (once).
func (s *Span) endQuery(id uint64, q *query) {
	s.queries.Delete(id)
	q.mu.Lock()
	if q.ended {
		q.mu.Unlock()
		return
	}
	q.ended = true
	parts := q.parts
	if q.timer != nil {
		q.timer.Stop()
	}
	q.mu.Unlock()
	go q.done(parts) // never from inside MetaQuery
}

// routerDownMeta stops waiting for a dead router's replies and interrupts the
// invocations its callers had in flight to our callees (and, when it is alive after
// all, a reset, ends their calls there: interruptFrom).
func (s *Span) routerDownMeta(name string, alive bool) {
	var ids []uint64
	s.queries.Range(func(id uint64, q *query) bool {
		q.mu.Lock()
		if slices.Contains(q.wait, name) {
			ids = append(ids, id)
		}
		q.mu.Unlock()
		return true
	})
	for _, id := range ids {
		s.replied(id, name, nil)
	}
	s.interruptFrom(name, alive)
}

// remoteSession is a session of another router, as it announced it.
type remoteSession struct {
	router           string
	authID, authRole string
	subs             []uint64
	// testaments are the session's (KindTestaments), PUBLISHes in serializer ser.
	ser        codec.Serializer
	testaments [][]byte
	// stale: announced before a reset of its router, not again since (guarded by
	// sessMu; see dropRouterSessions).
	stale bool
}

// dropStaleSessions forgets, without meta events, the sessions of router name that its
// resync did not announce again: they left while their announcements were being lost.
func (s *Span) dropStaleSessions(name string) {
	for _, st := range *s.realms.Load() {
		st.sessMu.Lock()
		for id, rs := range st.sessions {
			if rs.router == name && rs.stale {
				delete(st.sessions, id)
			}
		}
		st.sessMu.Unlock()
	}
}

func appendSession(b []byte, realm string, joined bool, id uint64, a engine.AuthInfo, subs []uint64) []byte {
	b = appendString(b, realm)
	if joined {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendUvarint(b, id)
	b = appendString(b, a.AuthID)
	b = appendString(b, a.AuthRole)
	b = appendUvarint(b, uint64(len(subs)))
	for _, sub := range subs {
		b = appendUvarint(b, sub)
	}
	return b
}

// SessionChanged implements engine.Federation: tell every other live router.
func (s *Span) SessionChanged(rl *engine.Realm, cs *engine.Session, joined bool) {
	var a engine.AuthInfo
	if joined {
		a = cs.Auth()
	}
	b := appendSession(nil, rl.Name(), joined, cs.ID(), a, nil)
	s.others(func(to string) { s.send(to, cs.ID(), KindSession, b) })
}

// SubscriberChanged implements engine.Federation: tell every other live router.
func (s *Span) SubscriberChanged(rl *engine.Realm, cs *engine.Session, sub uint64, added bool) {
	if added && !cs.Open() {
		return // it is leaving: its leave announcement may be out already
	}
	b := appendString(nil, rl.Name())
	if added {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendUvarint(b, cs.ID())
	b = appendUvarint(b, sub)
	s.others(func(to string) { s.send(to, cs.ID(), KindSubscriber, b) })
}

// resyncSessions sends router `to` the sessions of rl and their subscriptions.
func (s *Span) resyncSessions(to string, rl *engine.Realm) {
	rl.LocalSessions(func(cs *engine.Session, subs []uint64) bool {
		s.send(to, cs.ID(), KindSession, appendSession(nil, rl.Name(), true, cs.ID(), cs.Auth(), subs))
		s.resyncTestaments(to, rl, cs)
		if !cs.Open() {
			// It started leaving meanwhile: its leave may have gone before the join.
			s.send(to, cs.ID(), KindSession, appendSession(nil, rl.Name(), false, cs.ID(), engine.AuthInfo{}, nil))
		}
		return true
	})
}

func (s *Span) onSession(from string, r *reader) error {
	realm := r.bytes()
	joined := r.byte1() == 1
	id := r.uvarint()
	authID, authRole := r.string(), r.string()
	n := r.uvarint()
	if r.err != nil {
		return r.err
	}
	if n > uint64(len(r.b)) {
		return errShort
	}
	var subs []uint64
	for i := uint64(0); i < n; i++ {
		subs = append(subs, r.uvarint())
	}
	if r.err != nil {
		return r.err
	}
	st := s.stateBytes(realm)
	st.sessMu.Lock()
	defer st.sessMu.Unlock()
	if !joined {
		if rs := st.sessions[id]; rs != nil && rs.router == from {
			delete(st.sessions, id)
		}
		return nil
	}
	st.sessions[id] = &remoteSession{router: from, authID: authID, authRole: authRole, subs: subs}
	return nil
}

func (s *Span) onSubscriber(from string, r *reader) error {
	realm := r.bytes()
	added := r.byte1() == 1
	id := r.uvarint()
	sub := r.uvarint()
	if r.err != nil {
		return r.err
	}
	st := s.stateBytes(realm)
	st.sessMu.Lock()
	defer st.sessMu.Unlock()
	rs := st.sessions[id]
	if rs == nil || rs.router != from {
		return nil // left already (or not announced: a resync is under way)
	}
	i := slices.Index(rs.subs, sub)
	switch {
	case added && i < 0:
		rs.subs = append(rs.subs, sub)
	case !added && i >= 0:
		rs.subs = slices.Delete(rs.subs, i, i+1)
	}
	return nil
}

// RemoteSessions returns how many sessions of realm the other routers announced. Safe
// for concurrent use.
func (s *Span) RemoteSessions(realm string) int {
	st := s.state(realm)
	st.sessMu.Lock()
	defer st.sessMu.Unlock()
	return len(st.sessions)
}

// dropRouterSessions forgets the sessions of a dead router and publishes, to our own
// subscribers, the meta events of their leaving: for each session (in id order) and
// each of its subscriptions wamp.subscription.on_unsubscribe (and on_delete after the
// router's last subscriber of it), its testaments, then wamp.session.on_leave.
//
// A reset (meta false: the router is alive, its state is being sent again) only marks
// them stale: the resync announces again those that are still there, the end of the
// resync drops the others (dropStaleSessions), and should the router die before that,
// they all get their meta events here after all. A dying router's links often fail one
// by one, so a reset often comes just before its death.
func (s *Span) dropRouterSessions(st *realmState, name string, meta bool) {
	st.sessMu.Lock()
	if !meta {
		for _, rs := range st.sessions {
			if rs.router == name {
				rs.stale = true
			}
		}
		st.sessMu.Unlock()
		return
	}
	var gone []uint64
	left := map[uint64]int{} // subscription id -> the dead router's subscribers
	for id, rs := range st.sessions {
		if rs.router == name {
			gone = append(gone, id)
			for _, sub := range rs.subs {
				left[sub]++
			}
		}
	}
	slices.Sort(gone)
	dead := make([]*remoteSession, len(gone))
	for i, id := range gone {
		dead[i] = st.sessions[id]
		delete(st.sessions, id)
	}
	st.sessMu.Unlock()
	rl := s.realmOf(st)
	if rl == nil || !meta {
		return
	}
	for i, id := range gone {
		rs := dead[i]
		for _, sub := range rs.subs {
			rl.PublishMetaLocal("wamp.subscription.on_unsubscribe", []any{id, sub})
			if left[sub]--; left[sub] == 0 {
				rl.PublishMetaLocal("wamp.subscription.on_delete", []any{id, sub})
			}
		}
		s.publishTestaments(rl, id, rs)
		rl.PublishMetaLocal("wamp.session.on_leave", []any{id, rs.authID, rs.authRole})
	}
}
