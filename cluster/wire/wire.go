// Package wire is the session protocol that proxies and routers speak over links: the
// frame kinds a client session's traffic uses and the payloads of the few frames that are
// not raw WAMP bytes. The link layer (package link) carries the frames; this package only
// names them, so that proxy and router agree without importing each other.
//
// A session's life over a link: the proxy authenticates the client, picks the router by
// placement and sends Open (session id chosen by the proxy, realm, identity, serializer,
// client features) on the link that Pick(session id) selects; the router joins the
// session and answers Opened, or Refused with a WAMP error URI and a reason. After that,
// Msg frames carry the client's WAMP messages to the router and the router's messages to
// the client as raw encoded bytes in the client's serializer: the proxy never decodes
// them. Either side ends the session with Close. A session's frames always use the same
// link, so they stay in order.
package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// Frame kinds of session traffic: link frame kinds from 16 (link.FirstUserKind) on; a
// link test checks that they agree. Kinds from SpanBase on belong to the routers'
// realm-spanning protocol (package span).
const (
	// Open (proxy -> router): join a session; payload is an OpenReq in JSON.
	Open uint8 = 16 + iota
	// Opened (router -> proxy): the session joined; empty payload.
	Opened
	// Refused (router -> proxy): the session could not join; payload is a Refusal in JSON.
	Refused
	// Msg (both ways): one WAMP message of the session, encoded in its serializer. A
	// router -> proxy Msg may carry several target sessions (one EVENT for many).
	Msg
	// Close (both ways): the session is over; the payload is empty. Proxy -> router: the
	// client went away, the session leaves its realm. Router -> proxy: the router ended
	// the session, the proxy flushes what it queued and closes the connection.
	Close
	// Call (proxy -> router): the proxy calls a procedure (the dynamic authenticator);
	// the Session field is the call's id; payload is a Call in JSON.
	Call
	// CallResult (router -> proxy): the answer to Call; payload is a Result in JSON.
	CallResult
	// CookieSet (proxy -> every router -> every other proxy): a WAMP-Cookie now
	// authenticates a principal; payload is a Cookie in JSON. Routers keep the cookies
	// and replay them to a proxy whose link comes up, so a cookie handed out by one
	// proxy is honoured by all.
	CookieSet
)

// Cookie is the payload of a CookieSet frame: what a cookie authenticates as in a realm.
type Cookie struct {
	Cookie       string    `json:"cookie"`
	Realm        string    `json:"realm"`
	AuthID       string    `json:"authid"`
	AuthRole     string    `json:"authrole"`
	AuthMethod   string    `json:"authmethod"`
	AuthProvider string    `json:"authprovider"`
	Expires      time.Time `json:"expires"`
}

// SpanBase is the first link kind of the router-to-router protocol: span kind k travels
// as link kind SpanBase+k.
const SpanBase uint8 = 64

// OpenReq is the payload of an Open frame: who the client is, as the proxy established.
type OpenReq struct {
	Realm        string          `json:"realm"`
	AuthID       string          `json:"authid"`
	AuthRole     string          `json:"authrole"`
	AuthMethod   string          `json:"authmethod"`
	AuthProvider string          `json:"authprovider"`
	AuthExtra    map[string]any  `json:"authextra,omitempty"`
	Serializer   uint8           `json:"serializer"`
	Features     engine.Features `json:"features"`
	// Transport describes the client's connection for logs and meta data.
	Transport string `json:"transport,omitempty"`
	Peer      string `json:"peer,omitempty"`
}

// Refusal is the payload of a Refused frame: the ABORT the client gets.
type Refusal struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// CallReq is the payload of a Call frame.
type CallReq struct {
	Realm     string         `json:"realm"`
	Procedure string         `json:"procedure"`
	Args      []any          `json:"args,omitempty"`
	Kwargs    map[string]any `json:"kwargs,omitempty"`
	TimeoutMS int64          `json:"timeout_ms"`
}

// CallRes is the payload of a CallResult frame (engine.CallResult with Err as text).
type CallRes struct {
	Args     []any          `json:"args,omitempty"`
	Kwargs   map[string]any `json:"kwargs,omitempty"`
	ErrorURI string         `json:"error,omitempty"`
	Failure  string         `json:"failure,omitempty"`
}

// Encode marshals a control payload. Safe for concurrent use.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("wire: %T does not marshal: %v", v, err)) // plain structs: cannot happen
	}
	return b
}

// Decode unmarshals a control payload into v. Safe for concurrent use.
func Decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("wire: %T: %w", v, err)
	}
	return nil
}

// ValidSerializer reports whether s names a serializer this build speaks.
func ValidSerializer(s uint8) bool { return s > 0 && int(s) < codec.NumSerializers }
