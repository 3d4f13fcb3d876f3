package engine

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

func cancelMsg(req uint64, mode string) *codec.Message {
	m := &codec.Message{Type: codec.CANCEL, Request: req}
	if mode != "" {
		m.Details.Has, m.Details.Mode = codec.KeyMode, []byte(mode)
	}
	return m
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		canceling bool // callee announced call_canceling
		mode      string
		interrupt string // INTERRUPT mode the callee must get; "" for none
		waits     bool   // caller waits for the callee's answer
	}{
		{"skip", true, "skip", "", false},
		{"default-is-skip", true, "", "", false},
		{"killnowait", true, "killnowait", "killnowait", false},
		{"kill", true, "kill", "kill", true},
		{"kill-without-call_canceling", false, "kill", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := NewRouter(nil).AddRealm("realm1")
			caller, cp := join(t, rl, codec.JSON)
			ep := &memPeer{ser: codec.MsgPack}
			callee := rl.JoinWith(ep, AuthInfo{AuthRole: "anonymous"}, Features{CallCanceling: tc.canceling})
			callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("slow")})
			ep.one(t, codec.REGISTERED)
			caller.Receive(&codec.Message{Type: codec.CALL, Request: 42, URI: []byte("slow")})
			inv := ep.one(t, codec.INVOCATION)
			caller.Receive(cancelMsg(42, tc.mode))
			if tc.interrupt != "" {
				in := ep.one(t, codec.INTERRUPT)
				if in.Request != inv.Request || string(in.Details.Mode) != tc.interrupt || string(in.Details.Reason) != ErrCanceled {
					t.Fatalf("INTERRUPT %+v", in)
				}
			} else if ms := ep.take(t); len(ms) != 0 {
				t.Fatalf("callee got %+v", ms)
			}
			if tc.waits {
				if ms := cp.take(t); len(ms) != 0 {
					t.Fatalf("kill answered the caller before the callee: %+v", ms)
				}
				callee.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request, URI: []byte(ErrCanceled)})
			}
			if e := cp.one(t, codec.ERROR); e.Request != 42 || string(e.URI) != ErrCanceled {
				t.Fatalf("caller got %+v", e)
			}
			// A late answer from the callee is dropped.
			callee.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
			if ms := cp.take(t); len(ms) != 0 {
				t.Fatalf("late YIELD reached the caller: %+v", ms)
			}
			// CANCEL of an answered or unknown call is ignored.
			caller.Receive(cancelMsg(42, "kill"))
			if ms := append(cp.take(t), ep.take(t)...); len(ms) != 0 {
				t.Fatalf("stale CANCEL produced %+v", ms)
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	caller, cp := join(t, rl, codec.JSON)
	ep := &memPeer{ser: codec.CBOR}
	callee := rl.JoinWith(ep, AuthInfo{AuthRole: "anonymous"}, Features{CallCanceling: true})
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("slow")})
	ep.one(t, codec.REGISTERED)
	call := func(req uint64, ms int64) codec.Message {
		m := codec.Message{Type: codec.CALL, Request: req, URI: []byte("slow")}
		m.Details.Has, m.Details.Timeout = codec.KeyTimeout, ms
		caller.Receive(&m)
		return ep.one(t, codec.INVOCATION)
	}
	// Answered in time: no timeout error afterwards.
	inv := call(1, 200)
	callee.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
	cp.one(t, codec.RESULT)
	// Never answered: the router ends it.
	inv = call(2, 30)
	deadline := time.Now().Add(3 * time.Second)
	for {
		cp.mu.Lock()
		n := len(cp.msgs)
		cp.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e := cp.one(t, codec.ERROR); e.Request != 2 || string(e.URI) != ErrTimeout {
		t.Fatalf("caller got %+v", e)
	}
	if in := ep.one(t, codec.INTERRUPT); in.Request != inv.Request || string(in.Details.Reason) != ErrTimeout {
		t.Fatalf("callee got %+v", in)
	}
	time.Sleep(250 * time.Millisecond) // the first call's timer fires into nothing
	if ms := cp.take(t); len(ms) != 0 {
		t.Fatalf("answered call timed out later: %+v", ms)
	}
}

func TestProgressiveCallResults(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	caller, cp := join(t, rl, codec.JSON)
	callee, ep := join(t, rl, codec.MsgPack) // no call_canceling: still offered progress (AutobahnJS)
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("stream")})
	ep.one(t, codec.REGISTERED)
	yield := func(req uint64, progress bool, v int) {
		m := codec.Message{Type: codec.YIELD, Request: req, Args: raw(t, codec.MsgPack, []any{v})}
		if progress {
			m.Details.Has, m.Details.Progress = codec.KeyProgress, true
		}
		callee.Receive(&m)
	}
	c := codec.Message{Type: codec.CALL, Request: 5, URI: []byte("stream")}
	c.Details.Has, c.Details.ReceiveProgress = codec.KeyReceiveProgress, true
	caller.Receive(&c)
	inv := ep.one(t, codec.INVOCATION)
	if !inv.Details.ReceiveProgress {
		t.Fatalf("INVOCATION without receive_progress: %+v", inv.Details)
	}
	for i := 1; i <= 3; i++ {
		yield(inv.Request, true, i)
		r := cp.one(t, codec.RESULT)
		if !r.Details.Progress || r.Request != 5 || value(t, codec.JSON, r.Args).([]any)[0] != uint64(i) {
			t.Fatalf("progressive RESULT %d: %+v", i, r)
		}
	}
	yield(inv.Request, false, 4)
	if r := cp.one(t, codec.RESULT); r.Details.Progress || value(t, codec.JSON, r.Args).([]any)[0] != uint64(4) {
		t.Fatalf("final RESULT %+v", r)
	}
	// A caller that did not ask gets no progressive results, only the final one.
	caller.Receive(&codec.Message{Type: codec.CALL, Request: 6, URI: []byte("stream")})
	inv = ep.one(t, codec.INVOCATION)
	yield(inv.Request, true, 1)
	if ms := cp.take(t); len(ms) != 0 {
		t.Fatalf("unasked progressive result delivered: %+v", ms)
	}
	yield(inv.Request, false, 2)
	cp.one(t, codec.RESULT)
}

func TestPayloadPassthru(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	a, ap := join(t, rl, codec.JSON)
	b, bp := join(t, rl, codec.CBOR)
	b.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	b.Receive(&codec.Message{Type: codec.REGISTER, Request: 2, URI: []byte("p")})
	bp.take(t)
	ppt := func(m *codec.Message) *codec.Message {
		m.Details.Has |= pptKeys
		m.Details.PptScheme, m.Details.PptSerializer = []byte("x_e2ee"), []byte("cbor")
		m.Details.PptCipher, m.Details.PptKeyID = []byte("xsalsa20poly1305"), []byte("k1")
		// The payload is one opaque binary blob.
		m.Args = raw(t, codec.JSON, []any{[]byte{1, 2, 3, 255}})
		return m
	}
	check := func(d codec.Details, args codec.Raw, ser codec.Serializer) {
		t.Helper()
		if string(d.PptScheme) != "x_e2ee" || string(d.PptSerializer) != "cbor" || string(d.PptCipher) != "xsalsa20poly1305" || string(d.PptKeyID) != "k1" {
			t.Fatalf("ppt options lost: %+v", d)
		}
		if blob := value(t, ser, args).([]any)[0].([]byte); string(blob) != "\x01\x02\x03\xff" {
			t.Fatalf("payload changed: %x", blob)
		}
	}
	a.Receive(ppt(&codec.Message{Type: codec.PUBLISH, Request: 3, URI: []byte("t")}))
	ev := bp.one(t, codec.EVENT)
	check(ev.Details, ev.Args, codec.CBOR)
	a.Receive(ppt(&codec.Message{Type: codec.CALL, Request: 4, URI: []byte("p")}))
	inv := bp.one(t, codec.INVOCATION)
	check(inv.Details, inv.Args, codec.CBOR)
	y := ppt(&codec.Message{Type: codec.YIELD, Request: inv.Request})
	y.Args = raw(t, codec.CBOR, []any{[]byte{1, 2, 3, 255}})
	b.Receive(y)
	res := ap.one(t, codec.RESULT)
	check(res.Details, res.Args, codec.JSON)
}
