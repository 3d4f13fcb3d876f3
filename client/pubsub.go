package client

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/codec"
)

// PublishOption configures one Publish. Options are pure functions: safe for concurrent
// use.
type PublishOption func(*publishOptions)

type publishOptions struct {
	ack       bool
	excludeMe int8 // 0 unset, 1 false, 2 true
	extra     map[string]any
}

// Acknowledge asks the router for PUBLISHED: Publish then waits for it (or ERROR).
// Safe for concurrent use.
func Acknowledge() PublishOption { return func(o *publishOptions) { o.ack = true } }

// ExcludeMe sets the exclude_me option (the router's default is true). Safe for
// concurrent use.
func ExcludeMe(v bool) PublishOption {
	return func(o *publishOptions) {
		o.excludeMe = 1
		if v {
			o.excludeMe = 2
		}
	}
}

// Option sets a PUBLISH option by name, as is (value in the codec.AppendValue model).
// Safe for concurrent use; value must not be modified while a Publish uses it.
func Option(key string, value any) PublishOption {
	return func(o *publishOptions) {
		if o.extra == nil {
			o.extra = make(map[string]any)
		}
		o.extra[key] = value
	}
}

// Publish publishes an event to topic. Without Acknowledge it returns once the message is
// written; with it, it waits for PUBLISHED (nil) or ERROR (*Error). Safe for concurrent
// use.
func (s *Session) Publish(ctx context.Context, topic string, args []any, kwargs map[string]any, opts ...PublishOption) error {
	var o publishOptions
	for _, f := range opts {
		f(&o)
	}
	m := getMsg()
	defer putMsg(m)
	m.Type, m.URI = codec.PUBLISH, bytesOf(topic)
	if o.extra != nil {
		d := maps.Clone(o.extra)
		if o.ack {
			d["acknowledge"] = true
		}
		if o.excludeMe != 0 {
			d["exclude_me"] = o.excludeMe == 2
		}
		m.DictAny = d
	} else {
		if o.ack {
			m.Details.Has |= codec.KeyAcknowledge
			m.Details.Acknowledge = true
		}
		if o.excludeMe != 0 {
			m.Details.Has |= codec.KeyExcludeMe
			m.Details.ExcludeMe = o.excludeMe == 2
		}
	}
	if !o.ack {
		m.Request = s.reqID.Add(1)
		return s.sendErr(s.send(m, args, kwargs))
	}
	_, err := s.request(ctx, m, &pending{want: codec.PUBLISHED, req: codec.PUBLISH}, args, kwargs)
	return err
}

// PublishRaw publishes without acknowledgement an event whose arguments are already
// encoded in the session's serializer (nil for none): nothing is decoded or re-encoded.
// Safe for concurrent use.
func (s *Session) PublishRaw(topic string, args codec.Raw, kwargs codec.Raw) error {
	m := getMsg()
	m.Type, m.Request, m.URI = codec.PUBLISH, s.reqID.Add(1), bytesOf(topic)
	m.Args, m.Kwargs = args, kwargs
	err := s.t.Send(m)
	putMsg(m)
	return s.sendErr(err)
}

// sendErr reports a send failure on an ended session as the session's end.
func (s *Session) sendErr(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-s.done:
		return &endedError{s.Err()}
	default:
		return err
	}
}

type endedError struct{ cause error }

func (e *endedError) Error() string { return "client: session ended: " + e.cause.Error() }
func (e *endedError) Unwrap() error { return e.cause }

// Event is one EVENT delivered to a subscription handler. With RawEvents only
// Subscription, Publication, RawArgs and RawKwargs are set, and the Event and its raw
// bytes are valid only during the handler call. Otherwise all but the Raw fields are set
// and may be kept (the maps and slices are shared between the handlers of one
// subscription and must not be modified). Safe for concurrent reads.
type Event struct {
	Subscription uint64
	Publication  uint64
	Details      map[string]any
	Args         []any
	Kwargs       map[string]any
	RawArgs      codec.Raw // in the session's serializer; nil when absent
	RawKwargs    codec.Raw
}

// EventHandler receives events. It runs on the session's reader goroutine, one event at
// a time, in arrival order, so it needs no locking against itself; it must not wait for
// a router reply on its session (see Session): to Unsubscribe or Call from a handler, do
// it in a new goroutine.
type EventHandler func(*Event)

// SubscribeOption configures one Subscribe on the client side. Options are pure
// functions: safe for concurrent use.
type SubscribeOption func(*Subscription)

// RawEvents makes the subscription deliver events without decoding them: only RawArgs and
// RawKwargs, aliasing the read buffer (for load generators). Safe for concurrent use.
func RawEvents() SubscribeOption { return func(sub *Subscription) { sub.raw = true } }

// Subscription is one Subscribe of a session. The router gives every subscription of a
// session to the same topic (and match) the same id; the client sends UNSUBSCRIBE when
// the last of them is unsubscribed. Safe for concurrent use.
type Subscription struct {
	s      *Session
	id     uint64
	topic  string
	h      EventHandler
	raw    bool
	active atomic.Bool
}

// ID returns the router's subscription id. Safe for concurrent use.
func (sub *Subscription) ID() uint64 { return sub.id }

// Topic returns the topic (or pattern) subscribed to. Safe for concurrent use.
func (sub *Subscription) Topic() string { return sub.topic }

// Subscribe subscribes h to topic with the SUBSCRIBE options opts (e.g. "match":
// "prefix"; nil for none) and returns once the router confirmed. Events published after
// SUBSCRIBED are all delivered to h. An ERROR is returned as *Error. Safe for concurrent
// use.
func (s *Session) Subscribe(ctx context.Context, topic string, h EventHandler, opts map[string]any, so ...SubscribeOption) (*Subscription, error) {
	sub := &Subscription{s: s, topic: topic, h: h}
	for _, f := range so {
		f(sub)
	}
	sub.active.Store(true)
	m := getMsg()
	defer putMsg(m)
	m.Type, m.URI, m.DictAny = codec.SUBSCRIBE, bytesOf(topic), opts
	if _, err := s.request(ctx, m, &pending{want: codec.SUBSCRIBED, req: codec.SUBSCRIBE, sub: sub}, nil, nil); err != nil {
		return nil, err
	}
	return sub, nil
}

// addSub installs sub (reader goroutine, on SUBSCRIBED).
func (s *Session) addSub(sub *Subscription) {
	s.hmu.Lock()
	s.subs[sub.id] = append(slices.Clip(s.subs[sub.id]), sub)
	s.hmu.Unlock()
}

// Unsubscribe stops the delivery of events to the subscription's handler at once, and
// sends UNSUBSCRIBE when it was the session's last handler for that subscription id,
// waiting for UNSUBSCRIBED. Later calls return nil. Safe for concurrent use, but not from
// an event handler of the same session (see EventHandler).
func (sub *Subscription) Unsubscribe(ctx context.Context) error {
	if !sub.active.CompareAndSwap(true, false) {
		return nil
	}
	s := sub.s
	s.hmu.Lock()
	list := slices.DeleteFunc(slices.Clone(s.subs[sub.id]), func(x *Subscription) bool { return x == sub })
	if len(list) > 0 {
		s.subs[sub.id] = list
	} else {
		delete(s.subs, sub.id)
	}
	s.hmu.Unlock()
	if len(list) > 0 {
		return nil
	}
	m := getMsg()
	defer putMsg(m)
	m.Type, m.Subscription = codec.UNSUBSCRIBE, sub.id
	_, err := s.request(ctx, m, &pending{want: codec.UNSUBSCRIBED, req: codec.UNSUBSCRIBE}, nil, nil)
	return err
}

// onEvent delivers an EVENT to the subscription's handlers (reader goroutine).
func (s *Session) onEvent(m *codec.Message) {
	s.hmu.RLock()
	subs := s.subs[m.Subscription]
	s.hmu.RUnlock()
	if len(subs) == 0 {
		s.log.Debug("wamp: EVENT for no subscription", "subscription", m.Subscription)
		return
	}
	var ev *Event // decoded event, built for the first non-raw handler
	for _, sub := range subs {
		if !sub.active.Load() {
			continue
		}
		if sub.raw {
			s.rawEv = Event{Subscription: m.Subscription, Publication: m.Publication, RawArgs: m.Args, RawKwargs: m.Kwargs}
			sub.h(&s.rawEv)
			s.rawEv = Event{}
			continue
		}
		if ev == nil {
			var err error
			if ev, err = s.decodeEvent(m); err != nil {
				s.log.Warn("wamp: undecodable EVENT dropped", "subscription", m.Subscription, "err", err)
				return
			}
		}
		e := *ev
		sub.h(&e)
	}
}

func (s *Session) decodeEvent(m *codec.Message) (*Event, error) {
	ev := &Event{Subscription: m.Subscription, Publication: m.Publication}
	var err error
	if ev.Details, err = decodeDict(s.ser, m.Dict); err != nil {
		return nil, err
	}
	if ev.Args, err = decodeList(s.ser, m.Args); err != nil {
		return nil, err
	}
	if ev.Kwargs, err = decodeDict(s.ser, m.Kwargs); err != nil {
		return nil, err
	}
	return ev, nil
}
