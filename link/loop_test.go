package link

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/netpoll"
)

// testLoops, while TestOnEventLoops runs, puts the links of every cfg() on event loops.
var testLoops Loops

// loopsOf adapts a netpoll.Server to Loops, as node does.
type loopsOf struct{ s *netpoll.Server }

func (lo loopsOf) Adopt(c net.Conn, r LoopReader) (LoopConn, error) {
	a, err := lo.s.Adopt(c, r)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// noClients is the Handler of a server that only runs adopted links.
type noClients struct{}

func (noClients) OnOpen(*netpoll.Conn)            {}
func (noClients) OnMessage(*netpoll.Conn, []byte) {}
func (noClients) OnClose(*netpoll.Conn, error)    {}

// startLoops starts event loops without listeners (a cluster router's) for t.
func startLoops(t testing.TB, loops int) *netpoll.Server {
	t.Helper()
	s, err := netpoll.NewServer(netpoll.Config{Adopting: true, Loops: loops}, noClients{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// TestOnEventLoops runs the link tests again with both ends' links read on event loops
// (Config.Loops) instead of reader goroutines.
func TestOnEventLoops(t *testing.T) {
	// One loop: with two, the other loop's batch end may flush a link while this loop's
	// OnFrame still sends to it (the process-wide flush allows it), and
	// ReadBatchFlushesOnceAtItsEnd then counts two writes for one read (CI, once).
	testLoops = loopsOf{startLoops(t, 1)}
	defer func() { testLoops = nil }()
	t.Run("Adopted", func(t *testing.T) {
		tp := pair(t, 2, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
		for _, l := range tp.llinks {
			if l.Stats().OnLoops != 1 {
				t.Error("a listener's link is not on an event loop")
			}
		}
		for k := range uint64(2) {
			if l := tp.p.Pick(k); l == nil || l.Stats().OnLoops != 1 {
				t.Error("a dialed link is not on an event loop")
			}
		}
	})
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"HandshakeAndFramesBothWays", TestHandshakeAndFramesBothWays},
		{"SendTargets", TestSendTargets},
		{"OrderUnderLoadManySenders", TestOrderUnderLoadManySenders},
		{"TailCoalescing", TestTailCoalescing},
		{"BatchingManyFramesFewWrites", TestBatchingManyFramesFewWrites},
		{"CloseFlushesAndTellsThePeer", TestCloseFlushesAndTellsThePeer},
		{"FanOutOrderWithCoalescing", TestFanOutOrderWithCoalescing},
		{"LargeFramesBetweenSmallOnes", TestLargeFramesBetweenSmallOnes},
		{"ReadBatchFlushesOnceAtItsEnd", TestReadBatchFlushesOnceAtItsEnd},
		{"ReadBatchLargeEchoesKeepOrder", TestReadBatchLargeEchoesKeepOrder},
		{"SilentPeerIsDeadWithinDeadAfter", TestSilentPeerIsDeadWithinDeadAfter},
		{"DeadAfterCountsFromTheLastFrame", TestDeadAfterCountsFromTheLastFrame},
		{"HeartbeatKeepsIdleLinkUp", TestHeartbeatKeepsIdleLinkUp},
		{"PoolReconnectsAfterListenerRestart", TestPoolReconnectsAfterListenerRestart},
		{"OutboundLimitClosesTheLink", TestOutboundLimitClosesTheLink},
		{"WrongSecretRefusedBothSides", TestWrongSecretRefusedBothSides},
		{"PoolSendKeepsOrderWhenAKeyReturns", TestPoolSendKeepsOrderWhenAKeyReturns},
		{"PoolSendHoldsWhileAKeyReturns", TestPoolSendHoldsWhileAKeyReturns},
	} {
		t.Run(tc.name, tc.f)
	}
}

// BenchmarkOnEventLoops runs the link benchmarks with both ends read on event loops
// (2 loops, as on a 2-core node); set beside the plain ones for an A/B:
//
//	go test -run '^$' -bench 'PingPong|Throughput|OnEventLoops' -benchmem ./link
func BenchmarkOnEventLoops(b *testing.B) {
	testLoops = loopsOf{startLoops(b, 2)}
	defer func() { testLoops = nil }()
	b.Run("PingPong", BenchmarkPingPong)
	b.Run("PingPongParallel", BenchmarkPingPongParallel)
	b.Run("Throughput", BenchmarkThroughput)
}
