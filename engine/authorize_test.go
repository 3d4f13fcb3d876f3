package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

func TestAuthorization(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	user, err := NewRolePermissions([]Rule{
		{URI: "com.app.", Match: "prefix", Allow: Permission{Call: true, Subscribe: true}},
		{URI: "com.app.admin.", Match: "prefix", Allow: Permission{}},
		{URI: "com.app.admin.status", Allow: Permission{Call: true}},
		{URI: "com..report", Match: "wildcard", Allow: Permission{Publish: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rl.SetRoles(map[string]*RolePermissions{"user": user})
	p := &memPeer{ser: codec.JSON}
	s := rl.Join(p, AuthInfo{AuthID: "joe", AuthRole: "user"})
	callee, cp := join(t, rl, codec.JSON) // authrole anonymous: no permissions at all
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.app.x")})
	if e := cp.one(t, codec.ERROR); string(e.URI) != ErrNotAuthorized {
		t.Fatalf("role without rules registered: %+v", e)
	}
	for _, tc := range []struct {
		typ  codec.MessageType
		uri  string
		want bool
	}{
		{codec.CALL, "com.app.x", true},             // prefix com.app.
		{codec.CALL, "com.app.admin.reboot", false}, // longer prefix denies
		{codec.CALL, "com.app.admin.status", true},  // exact beats prefix
		{codec.SUBSCRIBE, "com.other.topic", false}, // no rule: deny
		{codec.SUBSCRIBE, "com.app.topic", true},    // prefix com.app.
		{codec.PUBLISH, "com.other.report", true},   // wildcard
		{codec.PUBLISH, "com.app.report", false},    // prefix com.app. beats the wildcard
		{codec.REGISTER, "com.app.x", false},        // not granted anywhere
		{codec.CALL, "org.example", false},          // no rule: deny
	} {
		m := codec.Message{Type: tc.typ, Request: 9, URI: []byte(tc.uri)}
		m.Details.Acknowledge = true
		got := s.authorized(tc.typ, &m, getScratch())
		if got != tc.want {
			t.Errorf("%v %s: allowed=%v, want %v", tc.typ, tc.uri, got, tc.want)
		}
		ms := p.take(t)
		if !tc.want && (len(ms) != 1 || string(ms[0].URI) != ErrNotAuthorized || ms[0].ErrType != tc.typ) {
			t.Errorf("%v %s: denial answered with %+v", tc.typ, tc.uri, ms)
		}
	}
	// An unacknowledged PUBLISH is dropped silently, as the spec says.
	s.Receive(&codec.Message{Type: codec.PUBLISH, Request: 10, URI: []byte("com.app.report")})
	if ms := p.take(t); len(ms) != 0 {
		t.Fatalf("%+v", ms)
	}
}

// BenchmarkAuthorize is the authorization check of one CALL on the cached path.
func BenchmarkAuthorize(b *testing.B) {
	perms, _ := NewRolePermissions([]Rule{
		{URI: "com.app.", Match: "prefix", Allow: Permission{Call: true}},
		{URI: "com.app.admin.status", Allow: Permission{Call: true}},
		{URI: "com..report", Match: "wildcard", Allow: Permission{Publish: true}},
	})
	rl := NewRouter(nil).AddRealm("realm1")
	rl.SetRoles(map[string]*RolePermissions{"user": perms})
	s := rl.Join(&sinkPeer{ser: codec.JSON}, AuthInfo{AuthRole: "user"})
	for _, uri := range []string{"com.app.admin.status", "com.app.orders.list"} {
		b.Run(uri, func(b *testing.B) {
			m := codec.Message{Type: codec.CALL, Request: 1, URI: []byte(uri)}
			sc := getScratch()
			s.authorized(codec.CALL, &m, sc) // fills the pattern cache
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !s.authorized(codec.CALL, &m, sc) {
					b.Fatal("denied")
				}
			}
		})
	}
}

// TestNotAuthorizedSaysWhat: a denial carries a text naming the action, the URI and the
// authrole, and the router logs it at Info with the session, authid and authrole; an
// unacknowledged PUBLISH gets no ERROR but is logged too.
func TestNotAuthorizedSaysWhat(t *testing.T) {
	var logs bytes.Buffer
	rl := NewRouter(slog.New(slog.NewTextHandler(&logs, nil))).AddRealm("realm1")
	user, err := NewRolePermissions([]Rule{{URI: "com.app.", Match: "prefix", Allow: Permission{Call: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rl.SetRoles(map[string]*RolePermissions{"user": user})
	p := &memPeer{ser: codec.JSON}
	s := rl.Join(p, AuthInfo{AuthID: "joe", AuthRole: "user"})
	s.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.app.x")})
	e := p.one(t, codec.ERROR)
	if len(e.Args) == 0 {
		t.Fatalf("denial %s without a text", e.URI)
	}
	args, _ := value(t, codec.JSON, e.Args).([]any)
	if string(e.URI) != ErrNotAuthorized || len(args) != 1 || args[0] != `authrole "user" is not authorized to register "com.app.x"` {
		t.Fatalf("denial: %s %v", e.URI, args)
	}
	for _, want := range []string{"level=INFO", `msg="not authorized"`, "realm=realm1", fmt.Sprintf("session=%d", s.ID()),
		"authid=joe", "authrole=user", "action=register", "uri=com.app.x"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	logs.Reset()
	s.Receive(&codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("com.other")})
	if ms := p.take(t); len(ms) != 0 {
		t.Fatalf("unacknowledged PUBLISH answered: %+v", ms)
	}
	if !strings.Contains(logs.String(), `action="publish to" uri=com.other`) {
		t.Errorf("denied PUBLISH not logged:\n%s", logs.String())
	}
}
