package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
)

// testament is an event the router publishes for a session when it goes away
// (wamp.session.add_testament): the whole PUBLISH, with its publish_options, kept
// encoded in the session's serializer (decoding it again restores every option exactly
// as a client PUBLISH carries it).
type testament struct {
	publish []byte
}

// Testament scopes. Without session resumption both fire when the session ends,
// detached first, as the spec requires.
const (
	scopeDetached  = "detached"
	scopeDestroyed = "destroyed"
)

// testamentCall answers wamp.session.add_testament and flush_testaments.
func (s *Session) testamentCall(m *codec.Message, args []any, kwargs map[string]any, sc *scratch) {
	scope, _ := kwargs["scope"].(string)
	if scope == "" {
		scope = scopeDestroyed
	}
	if scope != scopeDetached && scope != scopeDestroyed {
		s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, "scope must be detached or destroyed", sc)
		return
	}
	if string(m.URI) == "wamp.session.flush_testaments" {
		s.mu.Lock()
		s.testaments[scope] = nil
		s.mu.Unlock()
		s.testamentsChanged()
		s.sendResultValues(m.Request, nil, sc)
		return
	}
	topic, _ := argAt(args, 0).(string)
	if !validURI([]byte(topic), false) {
		s.sendError(codec.CALL, m.Request, ErrInvalidURI, sc)
		return
	}
	pub := codec.Message{Type: codec.PUBLISH, URI: []byte(topic), DictAny: map[string]any{}}
	if opts, ok := kwargs["publish_options"].(map[string]any); ok {
		for k, v := range opts {
			if k != "acknowledge" { // nobody is left to acknowledge
				pub.DictAny[k] = v
			}
		}
	}
	var err error
	if a, ok := argAt(args, 1).([]any); ok {
		if pub.Args, err = codec.AppendValue(nil, s.ser, a); err != nil {
			s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, err.Error(), sc)
			return
		}
	}
	if kw, ok := argAt(args, 2).(map[string]any); ok {
		if pub.Kwargs, err = codec.AppendValue(nil, s.ser, kw); err != nil {
			s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, err.Error(), sc)
			return
		}
	}
	var t testament
	if t.publish, err = s.codec.Append(nil, &pub); err == nil {
		var check codec.Message
		err = s.codec.Decode(t.publish, &check) // publish_options as a PUBLISH would carry them
	}
	if err != nil {
		s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, "publish_options: "+err.Error(), sc)
		return
	}
	s.mu.Lock()
	if s.testaments == nil {
		s.testaments = map[string][]testament{}
	}
	s.testaments[scope] = append(s.testaments[scope], t)
	s.mu.Unlock()
	s.testamentsChanged()
	s.sendResultValues(m.Request, nil, sc)
}

// testamentsChanged tells the federation, so that the other routers can publish the
// testaments if this router dies with the session.
func (s *Session) testamentsChanged() {
	if f := s.realm.router.federation(); f != nil {
		f.TestamentsChanged(s.realm, s)
	}
}

// Testaments returns the session's testaments in the order they fire (detached, then
// destroyed), each a PUBLISH encoded in the session's serializer. Safe for concurrent
// use; the caller owns the slice (the encoded messages are never modified).
func (s *Session) Testaments() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, scope := range []string{scopeDetached, scopeDestroyed} {
		for _, t := range s.testaments[scope] {
			out = append(out, t.publish)
		}
	}
	return out
}

func argAt(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// publishTestaments publishes s's testaments (detached, then destroyed) as if s had
// published them, and forgets them. Called once when s leaves its realm.
func (s *Session) publishTestaments() {
	s.mu.Lock()
	ts := append(s.testaments[scopeDetached], s.testaments[scopeDestroyed]...)
	s.testaments = nil
	s.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	var m codec.Message
	for _, t := range ts {
		if err := s.codec.Decode(t.publish, &m); err == nil {
			s.publish(&m, sc)
		}
	}
}
