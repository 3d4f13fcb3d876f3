package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
)

// Subscription and registration revocation: wamp.subscription.remove_subscriber and
// wamp.registration.remove_callee take a session off a subscription or registration.
// The session is told with UNSUBSCRIBED / UNREGISTERED [type, 0, {id, reason}] only if
// it announced subscription_revocation / registration_revocation; otherwise it is
// removed silently, as the spec allows, and only the meta events tell.

// revoke answers remove_subscriber / remove_callee; false for other procedures.
func (s *Session) revoke(m *codec.Message, args []any, kwargs map[string]any, sc *scratch) bool {
	isSub := string(m.URI) == "wamp.subscription.remove_subscriber"
	if !isSub && string(m.URI) != "wamp.registration.remove_callee" {
		return false
	}
	id := idArg(args)
	target := s.realm.sessionArg(args[min(1, len(args)):])
	reason, _ := kwargs["reason"].(string)
	if target == nil {
		s.sendError(codec.CALL, m.Request, ErrNoSuchSession, sc)
		return true
	}
	var notice codec.Message
	if isSub {
		sub := untrack(target, &target.subs, func(x *subscription) bool { return x.id == id })
		if sub == nil {
			s.sendError(codec.CALL, m.Request, ErrNoSuchSubscription, sc)
			return true
		}
		s.realm.unsubscribed(target, sub)
		notice = codec.Message{Type: codec.UNSUBSCRIBED, DictAny: map[string]any{"subscription": id}}
		if !target.features.SubscriptionRevocation {
			notice.Type = 0
		}
	} else {
		reg := untrack(target, &target.regs, func(x *registration) bool { return x.id == id })
		if reg == nil {
			s.sendError(codec.CALL, m.Request, ErrNoSuchRegistration, sc)
			return true
		}
		s.realm.unregistered(target, reg)
		notice = codec.Message{Type: codec.UNREGISTERED, DictAny: map[string]any{"registration": id}}
		if !target.features.RegistrationRevocation {
			notice.Type = 0
		}
	}
	if notice.Type != 0 {
		if reason != "" {
			notice.DictAny["reason"] = reason
		}
		if b, err := target.codec.Append(nil, &notice); err == nil {
			_ = target.peer.Send(b)
		}
	}
	s.sendResultValues(m.Request, nil, sc)
	return true
}
