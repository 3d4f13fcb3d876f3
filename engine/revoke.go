package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
)

// Subscription and registration revocation: wamp.subscription.remove_subscriber and
// wamp.registration.remove_callee take a session off a subscription or registration.
// The session is told with UNSUBSCRIBED / UNREGISTERED [type, 0, {id, reason}] only if
// it announced subscription_revocation / registration_revocation; otherwise it is
// removed silently, as the spec allows, and only the meta events tell. They are
// realm-wide procedures (metafed.go): the router of the target session executes them.

// revokePart executes remove_subscriber (isSub) or remove_callee for a target session
// joined here: args are [subscription or registration id, session id]. It returns "" when
// done, else the error URI (no_such_session when the session is not here).
func (rl *Realm) revokePart(isSub bool, args []any, reason string) string {
	id := idArg(args)
	target := rl.sessionArg(args[min(1, len(args)):])
	if target == nil {
		return ErrNoSuchSession
	}
	var notice codec.Message
	if isSub {
		sub := untrack(target, &target.subs, func(x *subscription) bool { return x.id == id })
		if sub == nil {
			return ErrNoSuchSubscription
		}
		rl.unsubscribed(target, sub)
		notice = codec.Message{Type: codec.UNSUBSCRIBED, DictAny: map[string]any{"subscription": id}}
		if !target.features.SubscriptionRevocation {
			notice.Type = 0
		}
	} else {
		reg := untrack(target, &target.regs, func(x *registration) bool { return x.id == id })
		if reg == nil {
			return ErrNoSuchRegistration
		}
		rl.unregistered(target, reg)
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
	return ""
}
