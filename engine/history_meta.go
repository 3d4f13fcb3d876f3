package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// wamp.subscription.get_events (Event History). Off the routing path: it decodes the
// stored payloads and builds the result with the slow-path value codec.

// historyQuery is get_events' ArgumentsKw (the spec's filters, ANDed) plus the limit,
// which may also come as the second positional argument (Crossbar's signature).
type historyQuery struct {
	limit                                  int // 0: no limit
	reverse                                bool
	fromTime, afterTime, beforeTime, until *time.Time
	topic                                  *string
	fromPub, afterPub, beforePub, untilPub *uint64
}

var errBadQuery = errors.New("get_events")

func parseHistoryQuery(args []any, kwargs map[string]any) (historyQuery, error) {
	var q historyQuery
	limit := argAt(args, 1)
	if v, ok := kwargs["limit"]; ok {
		limit = v
	}
	if limit != nil {
		n, ok := limit.(uint64)
		if !ok || n == 0 || n > 1<<31 {
			return q, fmt.Errorf("%w: limit must be a positive integer, got %v", errBadQuery, limit)
		}
		q.limit = int(n)
	}
	if v, ok := kwargs["reverse"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return q, fmt.Errorf("%w: reverse must be a boolean, got %v", errBadQuery, v)
		}
		q.reverse = b
	}
	for name, dst := range map[string]**time.Time{"from_time": &q.fromTime, "after_time": &q.afterTime,
		"before_time": &q.beforeTime, "until_time": &q.until} {
		v, ok := kwargs[name]
		if !ok {
			continue
		}
		str, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return q, fmt.Errorf("%w: %s must be an RFC 3339 timestamp, got %v", errBadQuery, name, v)
		}
		*dst = &t
	}
	for name, dst := range map[string]**uint64{"from_publication": &q.fromPub, "after_publication": &q.afterPub,
		"before_publication": &q.beforePub, "until_publication": &q.untilPub} {
		v, ok := kwargs[name]
		if !ok {
			continue
		}
		id, isID := v.(uint64)
		if !isID {
			return q, fmt.Errorf("%w: %s must be a publication id, got %v", errBadQuery, name, v)
		}
		*dst = &id
	}
	if v, ok := kwargs["topic"]; ok {
		str, isStr := v.(string)
		if !isStr {
			return q, fmt.Errorf("%w: topic must be a URI, got %v", errBadQuery, v)
		}
		q.topic = &str
	}
	return q, nil
}

// apply filters evs (oldest first) for requester s and returns them in the requested
// order, at most limit. A *_publication filter naming an event that is not (or no
// longer) stored matches nothing.
func (q *historyQuery) apply(evs []*storedEvent, s *Session) []*storedEvent {
	pubIndex := func(p *uint64) int {
		for i, ev := range evs {
			if ev.publication == *p {
				return i
			}
		}
		return -1
	}
	lo, hi := 0, len(evs) // index window from the publication filters
	bound := func(p *uint64, f func(i int)) {
		if p == nil {
			return
		}
		if i := pubIndex(p); i >= 0 {
			f(i)
		} else {
			lo, hi = 0, 0
		}
	}
	bound(q.fromPub, func(i int) { lo = max(lo, i) })
	bound(q.afterPub, func(i int) { lo = max(lo, i+1) })
	bound(q.beforePub, func(i int) { hi = min(hi, i) })
	bound(q.untilPub, func(i int) { hi = min(hi, i+1) })
	var out []*storedEvent
	for i := lo; i < hi; i++ {
		ev := evs[i]
		switch {
		case q.fromTime != nil && ev.at.Before(*q.fromTime),
			q.afterTime != nil && !ev.at.After(*q.afterTime),
			q.beforeTime != nil && !ev.at.Before(*q.beforeTime),
			q.until != nil && ev.at.After(*q.until),
			q.topic != nil && ev.topic != *q.topic,
			ev.elig != nil && !ev.elig.allows(s):
			continue
		}
		out = append(out, ev)
	}
	if q.reverse {
		slices.Reverse(out)
	}
	if q.limit > 0 && len(out) > q.limit {
		out = out[:q.limit]
	}
	return out
}

// getEvents answers wamp.subscription.get_events(subscription, [limit], {filters}) with
// Arguments = the events, each {timestamp, subscription, publication, details, args,
// kwargs}, and ArgumentsKw = {subscription, count}.
func (s *Session) getEvents(m *codec.Message, args []any, kwargs map[string]any, sc *scratch) {
	id := idArg(args)
	var sub *subscription
	for _, x := range s.realm.broker.all() {
		if x.id == id {
			sub = x
		}
	}
	if sub == nil {
		s.sendError(codec.CALL, m.Request, ErrNoSuchSubscription, sc)
		return
	}
	if !s.maySubscribe(sub) {
		// The spec: history only for those who could receive the events.
		s.sendError(codec.CALL, m.Request, ErrNotAuthorized, sc)
		return
	}
	q, err := parseHistoryQuery(args, kwargs)
	if err != nil {
		s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, err.Error(), sc)
		return
	}
	evs := q.apply(s.realm.broker.history.eventsOf(sub), s)
	list := make([]any, 0, len(evs))
	for _, ev := range evs {
		e, err := ev.value(sub)
		if err != nil {
			s.logger().Warn("get_events: stored payload unreadable", "topic", ev.topic, "err", err)
			continue
		}
		list = append(list, e)
	}
	s.sendResult(m.Request, list, map[string]any{"subscription": sub.id, "count": uint64(len(list))}, sc)
}

// value is the event as get_events returns it to a subscriber of sub.
func (ev *storedEvent) value(sub *subscription) (map[string]any, error) {
	details := map[string]any{}
	if sub.pattern {
		details["topic"] = ev.topic
	}
	if ev.publisher != 0 {
		details["publisher"] = ev.publisher
		details["publisher_authid"] = ev.publisherAuthID
		details["publisher_authrole"] = ev.publisherAuthRole
	}
	for k, v := range ev.ppt {
		details[k] = v
	}
	e := map[string]any{
		"timestamp":    ev.at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"subscription": sub.id,
		"publication":  ev.publication,
		"details":      details,
	}
	if ev.args != nil {
		v, err := codec.DecodeValue(ev.ser, ev.args)
		if err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		e["args"] = v
	}
	if ev.kw != nil {
		v, err := codec.DecodeValue(ev.ser, ev.kw)
		if err != nil {
			return nil, fmt.Errorf("kwargs: %w", err)
		}
		e["kwargs"] = v
	}
	return e, nil
}

// sendResult answers a CALL with RESULT carrying args and kwargs (slow path).
func (s *Session) sendResult(request uint64, args []any, kwargs map[string]any, sc *scratch) {
	var err error
	sc.m = codec.Message{Type: codec.RESULT, Request: request}
	if sc.args[0], err = codec.AppendValue(sc.args[0][:0], s.ser, args); err == nil {
		sc.kw[0], err = codec.AppendValue(sc.kw[0][:0], s.ser, kwargs)
	}
	if err != nil {
		s.sendErrorMsg(codec.CALL, request, ErrInvalidArgument, "result cannot be encoded: "+err.Error(), sc)
		return
	}
	sc.m.Args, sc.m.Kwargs = sc.args[0], sc.kw[0]
	s.sendMsg(&sc.m, sc)
}

func sortBySeq(evs []*storedEvent) {
	slices.SortFunc(evs, func(a, b *storedEvent) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
}

// maySubscribe reports whether s may subscribe to sub's topic or pattern: its role's
// static rules, or (under a dynamic authorizer) a cached allow for that subscription.
func (s *Session) maySubscribe(sub *subscription) bool {
	switch {
	case s.perms != nil:
		perm, _ := s.perms.lookup([]byte(sub.topic))
		return perm.Subscribe
	case s.authz != nil:
		key := sub.topic
		if sub.pattern {
			key = sub.kind.String() + "\x00" + sub.topic
		}
		return s.authz.cache[1][key].allow
	}
	return true
}
