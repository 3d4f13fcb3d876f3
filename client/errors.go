package client

import (
	"errors"
	"fmt"
)

// Error is a WAMP error: the URI and payload of an ERROR or ABORT message, or the reason
// of a GOODBYE the router sent first. A handler may return an *Error to have its URI and
// payload sent back to the caller.
//
// An Error is a plain value: safe for concurrent reads, not for concurrent writes.
type Error struct {
	URI     string
	Args    []any
	Kwargs  map[string]any
	Details map[string]any
}

// Error returns the URI, followed by the first argument (or Details.message) when it is a
// string. Safe for concurrent use.
func (e *Error) Error() string {
	if len(e.Args) > 0 {
		if s, ok := e.Args[0].(string); ok {
			return e.URI + ": " + s
		}
	}
	if s, ok := e.Details["message"].(string); ok && s != "" {
		return e.URI + ": " + s
	}
	return e.URI
}

// Is reports whether target is an *Error with the same URI, so that
// errors.Is(err, &client.Error{URI: "wamp.error.no_such_procedure"}) works. Safe for
// concurrent use.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.URI == e.URI
}

// ErrSessionClosed is the session's Err after Leave or Close, and is wrapped by the error of
// the requests pending or made after that. A sentinel value: safe for concurrent use.
var ErrSessionClosed = errors.New("client: session closed")

// CloseError is returned by Transport.Recv when the peer closed the WebSocket with a close
// frame. It is a plain value, safe for concurrent reads.
type CloseError struct {
	Code   uint16
	Reason string
}

// Error returns "websocket: closed by peer: <code> <reason>". Safe for concurrent use.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket: closed by peer: %d", e.Code)
	}
	return fmt.Sprintf("websocket: closed by peer: %d %s", e.Code, e.Reason)
}

// RawSocketError is returned by Dial when the router refused the RawSocket handshake.
// It is a plain value, safe for concurrent reads.
type RawSocketError struct {
	Code uint8 // the error code of the router's reply (1..4, see the WAMP spec)
}

var rawSocketErrors = [...]string{
	0: "illegal error code",
	1: "serializer unsupported",
	2: "maximum message length unacceptable",
	3: "use of reserved bits (unsupported feature)",
	4: "maximum connection count reached",
}

// Error returns "rawsocket: router refused: <reason>". Safe for concurrent use.
func (e *RawSocketError) Error() string {
	if int(e.Code) < len(rawSocketErrors) {
		return "rawsocket: router refused: " + rawSocketErrors[e.Code]
	}
	return fmt.Sprintf("rawsocket: router refused: error code %d", e.Code)
}

// ErrMessageTooLarge is returned by Send when the encoded message exceeds the peer's
// announced maximum length (RawSocket); nothing is sent and the transport stays usable.
// A sentinel value: safe for concurrent use.
var ErrMessageTooLarge = errors.New("client: message too large for the peer")

// errProtocol builds a protocol error on the transport or session level.
func errProtocol(format string, args ...any) error {
	return fmt.Errorf("client: protocol error: "+format, args...)
}
