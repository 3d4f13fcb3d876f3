package engine

import (
	"slices"

	"github.com/switchyard-wamp/switchyard/codec"
)

// eligibility is a PUBLISH's subscriber black- and whitelisting (exclude, exclude_authid,
// exclude_authrole, eligible, eligible_authid, eligible_authrole). A receiver must be in
// every whitelist given and in no blacklist. Built only for publishes that carry one of
// the options, so plain publishes pay nothing.
type eligibility struct {
	exclude, eligible             []uint64
	excludeAuthID, eligibleAuthID []string
	excludeRole, eligibleRole     []string
	hasEligible, hasEligibleID    bool
	hasEligibleRole               bool
}

const listKeys = codec.KeyExclude | codec.KeyExcludeAuthID | codec.KeyExcludeAuthRole |
	codec.KeyEligible | codec.KeyEligibleAuthID | codec.KeyEligibleAuthRole

// newEligibility reads the lists of m (the codec has checked their item types); nil when
// m has none.
func newEligibility(ser codec.Serializer, d *codec.Details) *eligibility {
	if d.Has&listKeys == 0 {
		return nil
	}
	e := &eligibility{
		exclude:         ids(ser, d.Exclude),
		eligible:        ids(ser, d.Eligible),
		excludeAuthID:   strs(ser, d.ExcludeAuthID),
		eligibleAuthID:  strs(ser, d.EligibleAuthID),
		excludeRole:     strs(ser, d.ExcludeAuthRole),
		eligibleRole:    strs(ser, d.EligibleAuthRole),
		hasEligible:     d.Has&codec.KeyEligible != 0,
		hasEligibleID:   d.Has&codec.KeyEligibleAuthID != 0,
		hasEligibleRole: d.Has&codec.KeyEligibleAuthRole != 0,
	}
	return e
}

// allows reports whether r may receive the event.
func (e *eligibility) allows(r *Session) bool {
	if slices.Contains(e.exclude, r.id) || slices.Contains(e.excludeAuthID, r.auth.AuthID) ||
		slices.Contains(e.excludeRole, r.auth.AuthRole) {
		return false
	}
	return (!e.hasEligible || slices.Contains(e.eligible, r.id)) &&
		(!e.hasEligibleID || slices.Contains(e.eligibleAuthID, r.auth.AuthID)) &&
		(!e.hasEligibleRole || slices.Contains(e.eligibleRole, r.auth.AuthRole))
}

func list(ser codec.Serializer, raw codec.Raw) []any {
	if raw == nil {
		return nil
	}
	v, _ := codec.DecodeValue(ser, raw)
	l, _ := v.([]any)
	return l
}

func ids(ser codec.Serializer, raw codec.Raw) []uint64 {
	var out []uint64
	for _, it := range list(ser, raw) {
		if id, ok := codec.IDOf(it); ok {
			out = append(out, id)
		}
	}
	return out
}

func strs(ser codec.Serializer, raw codec.Raw) []string {
	var out []string
	for _, it := range list(ser, raw) {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
