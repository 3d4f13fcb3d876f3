package engine

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// WELCOME.Details for a serializer carries the roles pre-encoded: the encoded WELCOME
// must be the very bytes the map would give, and decode to the same roles.
func TestWelcomeDetailsForEncodesLikeTheMap(t *testing.T) {
	auth := AuthInfo{AuthID: "joe", AuthRole: "user", AuthMethod: "ticket", AuthProvider: "static",
		Extra: map[string]any{"k": "v"}}
	for _, ser := range codec.Serializers() {
		t.Run(ser.String(), func(t *testing.T) {
			c := codec.For(ser)
			want, err := c.Append(nil, &codec.Message{Type: codec.WELCOME, Session: 7,
				DictAny: WelcomeDetails("realm1", auth)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Append(nil, &codec.Message{Type: codec.WELCOME, Session: 7,
				DictAny: WelcomeDetailsFor(ser, "realm1", auth)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("WELCOME with pre-encoded roles\n got %q\nwant %q", got, want)
			}
			if ser == codec.Flatbuffers {
				return
			}
			var m codec.Message
			if err := c.Decode(got, &m); err != nil {
				t.Fatal(err)
			}
			d, err := codec.DecodeDict(ser, m.Dict)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d["roles"], RouterRoles()) || d["authid"] != "joe" {
				t.Fatalf("decoded details %v", d)
			}
		})
	}
}

// on_join and on_leave reach a pattern subscription too (the join path checks for
// interest before it builds the event), and cost nothing when nobody listens.
func TestJoinLeaveMetaInterest(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	watcher, wp := join(t, rl, codec.JSON)
	sub := codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("wamp.session.on_")}
	sub.Details.Has, sub.Details.Match = codec.KeyMatch, []byte("prefix")
	watcher.Receive(&sub)
	wp.one(t, codec.SUBSCRIBED)
	other, _ := join(t, rl, codec.MsgPack)
	ev := wp.one(t, codec.EVENT)
	if string(ev.Details.Topic) != metaOnJoin {
		t.Fatalf("event %+v", ev)
	}
	other.Leave()
	ev = wp.one(t, codec.EVENT)
	if string(ev.Details.Topic) != metaOnLeave || value(t, codec.JSON, ev.Args).([]any)[0] != other.ID() {
		t.Fatalf("event %+v", ev)
	}

	quiet := NewRouter(nil).AddRealm("quiet")
	p := &memPeer{ser: codec.JSON}
	auth := AuthInfo{AuthID: "a", AuthRole: "anonymous"}
	s := quiet.Join(p, auth)
	s.Leave()
	// Join allocates the session itself; the meta events must add nothing to it.
	allocs := testing.AllocsPerRun(200, func() {
		quiet.joined(s)
		quiet.publishMeta(metaOnLeave, nil)
		if quiet.metaWanted(quiet.metaPublisher, metaOnLeave) {
			t.Fatal("nobody subscribed, yet on_leave is wanted")
		}
	})
	if allocs != 0 {
		t.Fatalf("join/leave meta events without subscribers allocate %.1f times", allocs)
	}
}
