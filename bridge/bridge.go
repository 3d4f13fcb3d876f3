// Package bridge is switchyard's HTTP bridge from REST to WAMP: a publisher (POST a JSON
// {topic, args, kwargs, options} -> PUBLISH), a caller (POST {procedure, args, kwargs,
// options} -> CALL, the result or the WAMP error as JSON with a fitting HTTP status) and
// a webhook (any POST body and its headers published to a fixed topic).
//
// Each bridge acts through a Session: a WAMP session in one realm with a configured
// authrole, whose permissions apply as to any client. Each handler is guarded (Guard):
// body size bound (413), request rate bound (429), and optionally an HMAC signature over
// the request (key, timestamp and nonce headers, replay window) or a bearer ticket (401).
// The handlers run on net/http's goroutines (mounted in a web.Tree), never on the WAMP
// event loops. docs/web.md has the wire format and the HTTP status mapping.
package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Session is how a bridge acts in its realm. Implementations are safe for concurrent
// use.
type Session interface {
	// Publish publishes with acknowledgement and returns the publication id, or an
	// *Error (e.g. wamp.error.not_authorized) or another error.
	Publish(ctx context.Context, topic string, args []any, kwargs, options map[string]any) (uint64, error)
	// Call calls procedure and returns its result, or an *Error with the callee's or the
	// router's error, or another error (ctx done: the call is canceled).
	Call(ctx context.Context, procedure string, args []any, kwargs, options map[string]any) (Result, error)
}

// Result is a CALL's RESULT: positional and keyword arguments as raw JSON (nil when
// absent).
type Result struct {
	Args   json.RawMessage
	Kwargs json.RawMessage
}

// Error is a WAMP ERROR answer: its URI and arguments (raw JSON, nil when absent).
type Error struct {
	URI    string
	Args   json.RawMessage
	Kwargs json.RawMessage
}

// Error returns "wamp error " and the URI. Safe for concurrent use.
func (e *Error) Error() string { return "wamp error " + e.URI }

// Status maps a WAMP error URI onto the HTTP status the bridge answers with:
//
//	wamp.error.no_such_procedure, no_such_realm, no_such_registration -> 404
//	wamp.error.not_authorized, authorization_failed                    -> 403
//	wamp.error.invalid_argument, invalid_uri, invalid_payload          -> 400
//	wamp.error.no_available_callee, switchyard.error.router_unavailable -> 503
//	wamp.error.timeout, wamp.error.canceled                            -> 504
//	any other wamp.error.* (the router failed)                         -> 500
//	any other URI (an application error raised by the callee)          -> 502
//
// Safe for concurrent use.
func Status(uri string) int {
	switch uri {
	case "wamp.error.no_such_procedure", "wamp.error.no_such_realm", "wamp.error.no_such_registration":
		return http.StatusNotFound
	case "wamp.error.not_authorized", "wamp.error.authorization_failed":
		return http.StatusForbidden
	case "wamp.error.invalid_argument", "wamp.error.invalid_uri", "wamp.error.invalid_payload":
		return http.StatusBadRequest
	case "wamp.error.no_available_callee", "switchyard.error.router_unavailable":
		return http.StatusServiceUnavailable
	case "wamp.error.timeout", "wamp.error.canceled":
		return http.StatusGatewayTimeout
	}
	if strings.HasPrefix(uri, "wamp.error.") {
		return http.StatusInternalServerError
	}
	return http.StatusBadGateway
}

// Publisher returns the publisher bridge: POST {"topic": uri, "args": [...], "kwargs":
// {...}, "options": {...}} publishes (acknowledged) and answers 200 {"id":
// publication}. Safe for concurrent use.
func Publisher(s Session, g *Guard, log *slog.Logger) http.Handler {
	return g.wrap(log, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Topic   string         `json:"topic"`
			Args    []any          `json:"args"`
			Kwargs  map[string]any `json:"kwargs"`
			Options map[string]any `json:"options"`
		}
		if err := decodeJSON(body, &req); err != nil || req.Topic == "" {
			writeError(w, http.StatusBadRequest, "wamp.error.invalid_argument", badRequest(err, "topic"))
			return
		}
		id, err := s.Publish(r.Context(), req.Topic, req.Args, req.Kwargs, req.Options)
		if err != nil {
			writeWAMPError(w, log, "publish", req.Topic, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id})
	})
}

// Caller returns the caller bridge: POST {"procedure": uri, "args": [...], "kwargs":
// {...}, "options": {...}} calls and answers 200 {"args": [...], "kwargs": {...}}, or
// the error (see Status) as {"error": uri, "args": [...], "kwargs": {...}}. A call not
// answered within timeout (0: 30s) is canceled and answered 504. Safe for concurrent
// use.
func Caller(s Session, g *Guard, timeout time.Duration, log *slog.Logger) http.Handler {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return g.wrap(log, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Procedure string         `json:"procedure"`
			Args      []any          `json:"args"`
			Kwargs    map[string]any `json:"kwargs"`
			Options   map[string]any `json:"options"`
		}
		if err := decodeJSON(body, &req); err != nil || req.Procedure == "" {
			writeError(w, http.StatusBadRequest, "wamp.error.invalid_argument", badRequest(err, "procedure"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res, err := s.Call(ctx, req.Procedure, req.Args, req.Kwargs, req.Options)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = &Error{URI: "wamp.error.timeout"}
			}
			writeWAMPError(w, log, "call", req.Procedure, err)
			return
		}
		out := map[string]any{}
		if res.Args != nil {
			out["args"] = res.Args
		} else {
			out["args"] = []any{}
		}
		if res.Kwargs != nil {
			out["kwargs"] = res.Kwargs
		} else {
			out["kwargs"] = map[string]any{}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// Webhook returns the webhook bridge: any POST publishes one event to topic whose only
// positional argument is {"body": the body as a string, "headers": {name: [values]},
// "method": ..., "path": ...} ("body_base64" instead of "body" when the body is not
// UTF-8); it answers 202 {"id": publication}. Safe for concurrent use.
func Webhook(s Session, topic string, g *Guard, log *slog.Logger) http.Handler {
	return g.wrap(log, func(w http.ResponseWriter, r *http.Request, body []byte) {
		hdr := map[string]any{}
		for k, v := range r.Header {
			hdr[k] = v
		}
		ev := map[string]any{"headers": hdr, "method": r.Method, "path": r.URL.Path}
		if utf8.Valid(body) {
			ev["body"] = string(body)
		} else {
			ev["body_base64"] = base64.StdEncoding.EncodeToString(body)
		}
		id, err := s.Publish(r.Context(), topic, []any{ev}, nil, nil)
		if err != nil {
			writeWAMPError(w, log, "webhook publish", topic, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"id": id})
	})
}

func badRequest(err error, field string) string {
	if err != nil {
		return "request body: " + err.Error()
	}
	return "request body: " + field + " is required"
}

// decodeJSON decodes one JSON object, keeping numbers exact (json.Number).
func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"wamp.error.invalid_payload"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers {"error": uri, "args": [message]}.
func writeError(w http.ResponseWriter, code int, uri, message string) {
	writeJSON(w, code, map[string]any{"error": uri, "args": []any{message}, "kwargs": map[string]any{}})
}

// writeWAMPError answers err: a WAMP error with its mapped status, anything else 500.
func writeWAMPError(w http.ResponseWriter, log *slog.Logger, what, uri string, err error) {
	var we *Error
	if !errors.As(err, &we) {
		log.Warn("bridge: "+what+" failed", "uri", uri, "error", err)
		writeError(w, http.StatusInternalServerError, "wamp.error.runtime_error", fmt.Sprintf("%s %s failed", what, uri))
		return
	}
	out := map[string]any{"error": we.URI, "args": []any{}, "kwargs": map[string]any{}}
	if we.Args != nil {
		out["args"] = we.Args
	}
	if we.Kwargs != nil {
		out["kwargs"] = we.Kwargs
	}
	writeJSON(w, Status(we.URI), out)
}
