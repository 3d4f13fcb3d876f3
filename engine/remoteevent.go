package engine

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/codec"
)

// A plain publication (no retention, no history, no black- or whitelists) crosses to the
// other routers of a realm as the EVENTs themselves: the publishing router encodes the
// EVENT of each subscription another router holds (AppendEvent), and that router queues
// the bytes as they are to its subscribers of the subscription (DeliverEvent). The
// subscription id is the same on every router (SubscriptionID), the publication id is
// global and disclosure was decided by the publisher's router, so the bytes are what the
// receiving router would have encoded itself; it neither decodes the PUBLISH nor matches
// the topic again. Subscribers of another serializer get the EVENT transcoded.

// AppendEvent appends to dst the EVENT that the subscribers of subscription subID
// (pattern: a prefix or wildcard subscription, whose EVENT names the topic) get for p,
// encoded in p.Serializer: a copy of the local fan-out's when it encoded that EVENT. Valid
// only during Federation.Published, on its goroutine; no allocation beyond dst's growth.
func (p *Publication) AppendEvent(dst []byte, subID uint64, pattern bool) ([]byte, error) {
	if p.sc == nil {
		return dst, fmt.Errorf("append event: publication %d is not a local one", p.ID)
	}
	if p.sc.frameSub[p.Serializer] == subID {
		// The local fan-out encoded it for a subscriber of the publisher's serializer.
		return append(dst, p.sc.frame[p.Serializer]...), nil
	}
	pb := publisher{id: p.Publisher, ser: p.Serializer, authID: p.AuthID, authRole: p.AuthRole}
	m := p.Message
	pb.event(&p.sc.m, subID, pattern, p.ID, m, m.Args, m.Kwargs)
	dst, err := codec.For(p.Serializer).Append(dst, &p.sc.m)
	if err != nil {
		return dst, fmt.Errorf("append event for subscription %d: %w", subID, err)
	}
	return dst, nil
}

// DeliverEvent queues event, an EVENT that another router encoded with AppendEvent in
// serializer ser for subscription subID, to this router's subscribers of subID: the same
// bytes to those of serializer ser, transcoded once per other serializer for the rest. A
// subscription unknown here (its last subscriber left meanwhile) or still pending gets
// nothing, as a local PUBLISH would give it. Safe for concurrent use; event is not
// retained. No allocation in steady state.
func (rl *Realm) DeliverEvent(subID uint64, ser codec.Serializer, event []byte) error {
	sub, ok := rl.broker.byID.Load(subID)
	if !ok || sub.pending.Load() {
		return nil
	}
	var sc *scratch
	var built [codec.NumSerializers]bool
	var err error
	for _, r := range *sub.subscribers.Load() {
		if r.ser == ser {
			_ = r.peer.Send(event)
			continue
		}
		if sc == nil {
			sc = getScratch()
			defer putScratch(sc)
			if err = codec.For(ser).Decode(event, &sc.m); err != nil {
				return fmt.Errorf("deliver event for subscription %d: %w", subID, err)
			}
			if sc.m.Type != codec.EVENT {
				return fmt.Errorf("deliver event for subscription %d: got %s", subID, sc.m.Type)
			}
			sc.m.Dict = nil // in ser; the decoded keys are encoded instead
		}
		to := r.ser
		if !built[to] {
			if err = sc.transcodeEvent(to, ser); err != nil {
				rl.router.log.Warn("publish: payload transcode failed", "subscription", subID,
					"topic", sub.topic, "to", to.String(), "err", err)
				continue
			}
			built[to] = true
		}
		_ = r.peer.Send(sc.frame[to])
	}
	return nil
}

// transcodeEvent encodes the decoded EVENT in sc.m (payload in serializer from) into
// sc.frame[to], its payload transcoded; sc.m is left as it was.
func (sc *scratch) transcodeEvent(to, from codec.Serializer) error {
	args, kw := sc.m.Args, sc.m.Kwargs
	defer func() { sc.m.Args, sc.m.Kwargs = args, kw }()
	a, k, _, err := sc.payloadFor(to, from, args, kw, nil)
	if err != nil {
		return err
	}
	sc.m.Args, sc.m.Kwargs = a, k
	sc.frame[to], err = codec.For(to).Append(sc.frame[to][:0], &sc.m)
	return err
}
