package master

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// applyCmd runs c on f as raft would, at log index idx.
func applyCmd(t *testing.T, f *fsm, idx uint64, c command) applyResult {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := f.Apply(&raft.Log{Index: idx, Data: b}).(applyResult)
	return res
}

func routerNames(m Map) string {
	var s []string
	for _, r := range m.Routers {
		s = append(s, fmt.Sprintf("%s/%d", r.Name, r.Tag))
	}
	return strings.Join(s, " ")
}

func TestFSMTagsAndVersions(t *testing.T) {
	var mapEvents, cfgEvents int
	f := newFSM(64, func(m, c bool) {
		if m {
			mapEvents++
		}
		if c {
			cfgEvents++
		}
	})
	idx := uint64(0)
	reg := func(name, role string) applyResult {
		idx++
		return applyCmd(t, f, idx, command{Kind: cmdRegister, At: int64(idx), Reg: &RegisterReq{Node: name, Role: role, Link: name + ":1"}})
	}
	reg("b", NodeRouter)
	reg("a", NodeRouter)
	reg("p", NodeProxy)
	if got := routerNames(f.Map()); got != "a/2 b/1" || f.Map().Version != 2 || mapEvents != 2 {
		t.Fatalf("map %q version %d events %d", got, f.Map().Version, mapEvents)
	}
	// Re-registering a live router with the same link changes nothing.
	reg("a", NodeRouter)
	if f.Map().Version != 2 || mapEvents != 2 {
		t.Fatalf("re-register raised the map to %d", f.Map().Version)
	}
	// An expiry for an older registration is ignored; the current one expires.
	n, _ := f.node("a")
	idx++
	applyCmd(t, f, idx, command{Kind: cmdExpire, At: int64(idx), Expire: []expireEntry{{Node: "a", Epoch: n.Epoch - 1}}})
	if got := routerNames(f.Map()); got != "a/2 b/1" {
		t.Fatalf("stale expiry applied: %q", got)
	}
	idx++
	applyCmd(t, f, idx, command{Kind: cmdExpire, At: int64(idx), Expire: []expireEntry{{Node: "a", Epoch: n.Epoch}}})
	if got := routerNames(f.Map()); got != "b/1" || f.Map().Version != 3 {
		t.Fatalf("after expiry: %q v%d", got, f.Map().Version)
	}
	// A new router takes the smallest free tag; a's tag 2 stays reserved while it is known.
	reg("c", NodeRouter)
	if got := routerNames(f.Map()); got != "b/1 c/3" {
		t.Fatalf("c's tag: %q", got)
	}
	reg("a", NodeRouter)
	if got := routerNames(f.Map()); got != "a/2 b/1 c/3" {
		t.Fatalf("a's tag after return: %q", got)
	}
	// Fill every tag; the next new router takes the tag of the router gone longest.
	for i := 4; i <= MaxTag; i++ {
		reg(fmt.Sprintf("r%02d", i), NodeRouter)
	}
	idx++
	applyCmd(t, f, idx, command{Kind: cmdLeave, At: int64(idx), Node: "r10"})
	idx++
	applyCmd(t, f, idx, command{Kind: cmdLeave, At: int64(idx), Node: "r05"})
	reg("z", NodeRouter)
	if n, _ := f.node("z"); n.Tag != 10 {
		t.Fatalf("z got tag %d, want r10's 10", n.Tag)
	}
	if n, _ := f.node("r10"); n.Tag != 0 {
		t.Fatalf("r10 kept tag %d", n.Tag)
	}
	reg("y", NodeRouter)
	if res := reg("x", NodeRouter); res.err == nil || !strings.Contains(res.err.Error(), "tags") {
		t.Fatalf("64th live router: %v", res.err)
	}
	// r10 comes back: no free tag left.
	if res := reg("r10", NodeRouter); res.err == nil {
		t.Fatal("r10 registered without a tag")
	}

	// Config versions.
	idx++
	res := applyCmd(t, f, idx, command{Kind: cmdApply, At: int64(idx), Config: json.RawMessage(`{"realms":[]}`)})
	if res.err != nil || res.version != 1 || cfgEvents != 1 {
		t.Fatalf("apply: %+v events %d", res, cfgEvents)
	}

	// Snapshot and restore into a fresh FSM give the same state.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(64, nil)
	if err := g.Restore(io.NopCloser(strings.NewReader(sink.String()))); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Map()) != fmt.Sprint(f.Map()) || fmt.Sprint(g.Config()) != fmt.Sprint(f.Config()) ||
		fmt.Sprint(g.nodes()) != fmt.Sprint(f.nodes()) {
		t.Fatalf("restored state differs:\n%+v\n%+v", g.Map(), f.Map())
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ strings.Builder }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }
