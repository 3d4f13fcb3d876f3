package proxy

import (
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/netpoll"
)

// AuthMethods are the authentication methods whose failures Stats counts one by one;
// any other method name is counted under "other".
var AuthMethods = []string{"anonymous", "ticket", "wampcra", "cryptosign", "cookie", "tls", "other"}

// frontendCounters are the Frontend's operator counters. They change once per
// handshake or session end, never per routed message.
type frontendCounters struct {
	joins, leaves atomic.Uint64
	authFailed    [7]atomic.Uint64 // by AuthMethods index
}

func (k *frontendCounters) failed(method string) {
	i := len(AuthMethods) - 1
	for j, m := range AuthMethods[:len(AuthMethods)-1] {
		if m == method {
			i = j
			break
		}
	}
	k.authFailed[i].Add(1)
}

// Stats are a Frontend's counters since it started.
type Stats struct {
	Joins  uint64 // sessions welcomed (WELCOME sent)
	Leaves uint64 // welcomed sessions whose transport closed
	// AuthFailures counts failed authentications by method (the AuthMethods names).
	AuthFailures map[string]uint64
}

// Stats returns the frontend's counters. Safe for concurrent use.
func (f *Frontend) Stats() Stats {
	st := Stats{Joins: f.counters.joins.Load(), Leaves: f.counters.leaves.Load(),
		AuthFailures: make(map[string]uint64, len(AuthMethods))}
	for i, m := range AuthMethods {
		st.AuthFailures[m] = f.counters.authFailed[i].Load()
	}
	return st
}

// countLeave counts the end of a welcomed session's transport.
func (f *Frontend) countLeave(_ *netpoll.Conn) { f.counters.leaves.Add(1) }
