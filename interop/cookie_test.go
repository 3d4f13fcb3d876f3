package interop

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// cookieTimeout is the hard timeout of cookie.js / cookie.py (and of channelbind.py).
const cookieTimeout = 15 * time.Second

// startCookieNode starts a node whose only listener is a universal listener handing out
// the cookie cbtid (max age one hour) on each WebSocket upgrade, with realm1 offering
// ticket (joe/s3cret, role user) and WAMP-Cookie (an in-memory cookie store): a
// connection whose session authenticated with ticket makes its cookie remembered, and
// a later connection bringing that cookie and offering cookie joins as joe.
func startCookieNode(t *testing.T) *routerNode {
	t.Helper()
	store, err := proxy.NewCookieStore("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startNodeConfig(t, func(c *node.Config) {
		c.Listeners = []node.Listener{{Name: "web", Address: "127.0.0.1:0",
			Cookie: &netpoll.Cookie{Name: "cbtid", MaxAge: time.Hour}}}
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {
			Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
			Cookie:  &proxy.CookieAuth{MaxAge: time.Hour, Store: store},
		}}
	})
}

// TestCookie runs WAMP-Cookie with AutobahnJS (js/cookie.js) and AutobahnPython
// (python/cookie.py, asyncio and Twisted), each against its own node (startCookieNode),
// over WebSocket:
//
//   - the first connection's upgrade response carries Set-Cookie: cbtid=TOKEN (HttpOnly,
//     SameSite=Strict, no Secure on plain TCP); its session offers ["cookie", "ticket"]
//     and joins as joe with authmethod ticket after one CHALLENGE;
//   - a second connection sending Cookie: cbtid=TOKEN and offering only ["cookie"] joins
//     without a CHALLENGE, with authmethod cookie, authid joe, authrole user and
//     authprovider static, and the session works;
//   - a connection with a bogus cookie offering only ["cookie"] gets ABORT
//     wamp.error.no_auth_method without a CHALLENGE; so does one without a cookie.
//
// AutobahnPython sets the request header with WampWebSocketClientFactory(headers=...)
// and reads the response headers in the protocol's onConnect(response)
// (response.headers). AutobahnJS passes the transport option `headers` to the `ws`
// library, which sends them; it reads Set-Cookie from the upgrade response through the
// transport option `agent`: an http.Agent whose addRequest listens for the request's
// 'upgrade' event (AutobahnJS does not expose the `ws` WebSocket or its 'upgrade' event).
func TestCookie(t *testing.T) {
	js, py := clients()
	runScripts(t, []scriptCase{
		{"js/ws/json", "cookie.js", endpoint{c: js, transport: "ws", serializer: "json"}},
		{"py/ws/msgpack/asyncio", "cookie.py", endpoint{c: py, transport: "ws", serializer: "msgpack", framework: "asyncio"}},
		{"py/ws/cbor/twisted", "cookie.py", endpoint{c: py, transport: "ws", serializer: "cbor", framework: "twisted"}},
	}, startCookieNode, cookieTimeout, true)
}
