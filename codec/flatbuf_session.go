package codec

import (
	"slices"

	fb "github.com/google/flatbuffers/go"
)

// Session-level messages over Flatbuffers (HELLO, WELCOME, ABORT, GOODBYE, CHALLENGE,
// AUTHENTICATE): their Details/Extra dict is a set of typed fields. Decode builds Dict, a
// CBOR dict (the payload serializer) of what the fields carry, so that DecodeDict reads
// it like any other serializer's; Append writes the fields from DictAny or Dict. These
// messages are few per session, so this path allocates.
//
// What the schema can hold: roles with boolean features of the names the feature
// tables list (others are dropped), authmethods among anonymous, ticket, wampcra,
// wamp-scram and cryptosign (others are dropped), authid, authrole, authmethod,
// authprovider, WELCOME's realm, and HELLO/WELCOME's authextra and CHALLENGE/
// AUTHENTICATE's Extra dict as one string key/value pair (the schema's Map table: the
// first key in sorted order whose value is a string; the rest is dropped).

// fbRole is one role table: its field id in ClientRoles/RouterRoles and its features in
// field order.
type fbRole struct {
	name     string
	features []string
}

var fbClientRoles = []fbRole{
	{"publisher", []string{"publisher_identification", "publisher_exclusion", "subscriber_blackwhite_listing",
		"acknowledge_event_received", "payload_transparency", "payload_encryption_cryptobox"}},
	{"subscriber", []string{"publisher_identification", "pattern_based_subscription", "publication_trustlevels",
		"subscription_revocation", "event_history", "acknowledge_subscriber_received", "payload_transparency",
		"payload_encryption_cryptobox"}},
	{"caller", []string{"caller_identification", "call_timeout", "call_canceling", "progressive_call_results",
		"payload_transparency", "payload_encryption_cryptobox"}},
	{"callee", []string{"caller_identification", "call_trustlevels", "call_timeout", "call_canceling",
		"progressive_call_results", "registration_revocation", "pattern_based_registration", "shared_registration",
		"payload_transparency", "payload_encryption_cryptobox"}},
}

var fbRouterRoles = []fbRole{
	{"broker", []string{"publisher_identification", "publisher_exclusion", "subscriber_blackwhite_listing",
		"pattern_based_subscription", "publication_trustlevels", "subscription_revocation", "session_meta_api",
		"subscription_meta_api", "event_retention", "event_history", "acknowledge_event_received",
		"acknowledge_subscriber_received", "payload_transparency", "payload_encryption_cryptobox"}},
	{"dealer", []string{"caller_identification", "call_trustlevels", "call_timeout", "call_canceling",
		"progressive_call_results", "registration_revocation", "pattern_based_registration", "shared_registration",
		"session_meta_api", "registration_meta_api", "testament_meta_api", "payload_transparency",
		"payload_encryption_cryptobox"}},
}

// fbSessionFields are the dict fields of each session-level table: field id -> key.
// "roles", "authmethods", "authmethod" and the Map keys get their own encodings.
var fbSessionFields = map[MessageType][]struct {
	slot uint16
	key  string
}{
	HELLO:        {{1, "roles"}, {3, "authmethods"}, {4, "authid"}, {5, "authrole"}, {6, "authextra"}},
	WELCOME:      {{1, "roles"}, {2, "realm"}, {3, "authid"}, {4, "authrole"}, {5, "authmethod"}, {6, "authprovider"}, {7, "authextra"}},
	ABORT:        {{2, "message"}},
	GOODBYE:      {{2, "message"}},
	CHALLENGE:    {{2, "extra"}},
	AUTHENTICATE: {{2, "extra"}},
}

func fbRolesOf(t MessageType) []fbRole {
	if t == WELCOME {
		return fbRouterRoles
	}
	return fbClientRoles
}

// fbSessionDict builds the CBOR dict of a session-level table (Decode).
func fbSessionDict(tab *fb.Table, t MessageType) (Raw, error) {
	d := map[string]any{}
	for _, f := range fbSessionFields[t] {
		o := tab.Offset(fbSlot(f.slot))
		if o == 0 {
			continue
		}
		p := tab.Pos + fb.UOffsetT(o)
		switch f.key {
		case "roles":
			var rt fb.Table
			rt.Bytes, rt.Pos = tab.Bytes, tab.Indirect(p)
			roles := map[string]any{}
			for i, r := range fbRolesOf(t) {
				ro := rt.Offset(fbSlot(uint16(i)))
				if ro == 0 {
					continue
				}
				var ft fb.Table
				ft.Bytes, ft.Pos = rt.Bytes, rt.Indirect(rt.Pos+fb.UOffsetT(ro))
				feats := map[string]any{}
				for j, name := range r.features {
					if fo := ft.Offset(fbSlot(uint16(j))); fo != 0 {
						feats[name] = ft.GetBool(ft.Pos + fb.UOffsetT(fo))
					}
				}
				roles[r.name] = map[string]any{"features": feats}
			}
			d["roles"] = roles
		case "authmethods":
			vec := tab.Bytes[tab.Vector(fb.UOffsetT(o)):]
			n := tab.VectorLen(fb.UOffsetT(o))
			list := []any{}
			for _, v := range vec[:n] {
				if int(v) >= len(fbMethods) {
					return nil, invalid(Flatbuffers, "%s: auth method %d", t, v)
				}
				list = append(list, fbMethods[v])
			}
			d["authmethods"] = list
		case "authmethod":
			v := tab.GetUint8(p)
			if int(v) >= len(fbMethods) {
				return nil, invalid(Flatbuffers, "%s: auth method %d", t, v)
			}
			d["authmethod"] = fbMethods[v]
		case "authextra", "extra":
			var mt fb.Table
			mt.Bytes, mt.Pos = tab.Bytes, tab.Indirect(p)
			extra := map[string]any{}
			if ko := mt.Offset(fbSlot(0)); ko != 0 {
				var val any
				if vo := mt.Offset(fbSlot(1)); vo != 0 {
					val = string(fbBytes(&mt, mt.Pos+fb.UOffsetT(vo)))
				}
				extra[string(fbBytes(&mt, mt.Pos+fb.UOffsetT(ko)))] = val
			}
			switch {
			case f.key == "extra": // CHALLENGE/AUTHENTICATE: Extra is the message's dict
				d = extra
			case len(extra) > 0: // a Map without its key carries nothing
				d[f.key] = extra
			}
		default:
			d[f.key] = string(fbBytes(tab, p))
		}
	}
	return AppendValue(nil, CBOR, d)
}

// fbAppendSession builds the table of a session-level message (Append); it returns the
// table's offset.
func fbAppendSession(bld *fb.Builder, m *Message) (fb.UOffsetT, error) {
	var dict map[string]any
	switch {
	case m.DictAny != nil:
		dict = m.DictAny
	case m.Dict != nil:
		var err error
		if dict, err = DecodeDict(CBOR, m.Dict); err != nil {
			return 0, encErr(Flatbuffers, "%s dict: %v", m.Type, err)
		}
	default:
		dict = map[string]any{}
		if m.Details.Has&KeyMessage != 0 {
			dict["message"] = string(m.Details.Message)
		}
	}
	var offs [12]fb.UOffsetT
	var methods []byte
	var method = -1
	for _, f := range fbSessionFields[m.Type] {
		v, ok := dict[f.key]
		if f.key == "extra" {
			v, ok = dict, true
		}
		if !ok || v == nil {
			continue
		}
		switch f.key {
		case "roles":
			roles, _ := v.(map[string]any)
			offs[f.slot] = fbAppendRoles(bld, fbRolesOf(m.Type), roles)
		case "authmethods":
			list, _ := v.([]any)
			for _, e := range list {
				if s, ok := e.(string); ok {
					if i := slices.Index(fbMethods, s); i >= 0 {
						methods = append(methods, byte(i))
					}
				}
			}
			offs[f.slot] = bld.CreateByteVector(methods)
		case "authmethod":
			if s, ok := v.(string); ok {
				method = slices.Index(fbMethods, s)
			}
		case "authextra", "extra":
			extra, _ := v.(map[string]any)
			keys := make([]string, 0, len(extra))
			for k, e := range extra {
				if _, ok := e.(string); ok {
					keys = append(keys, k)
				}
			}
			if len(keys) == 0 {
				continue
			}
			slices.Sort(keys)
			k := bld.CreateString(keys[0])
			val := bld.CreateString(extra[keys[0]].(string))
			bld.StartObject(2)
			bld.PrependUOffsetTSlot(1, val, 0)
			bld.PrependUOffsetTSlot(0, k, 0)
			offs[f.slot] = bld.EndObject()
		default:
			if s, ok := v.(string); ok {
				offs[f.slot] = bld.CreateString(s)
			}
		}
	}
	var uri fb.UOffsetT
	switch m.Type {
	case HELLO, ABORT, GOODBYE, AUTHENTICATE:
		uri = bld.CreateByteString(m.URI)
	}
	bld.StartObject(fbTables[m.Type].n)
	switch m.Type {
	case WELCOME:
		bld.PrependUint64Slot(0, m.Session, 0)
	case HELLO:
		bld.PrependUOffsetTSlot(2, uri, 0)
	case ABORT, GOODBYE, AUTHENTICATE:
		bld.PrependUOffsetTSlot(1, uri, 0)
	case CHALLENGE:
		i := slices.Index(fbMethods, string(m.URI))
		if i < 0 {
			return 0, encErr(Flatbuffers, "auth method %q has no Flatbuffers value", m.URI)
		}
		bld.PrependUint8(uint8(i))
		bld.Slot(1)
	}
	for slot, off := range offs {
		if off != 0 {
			bld.PrependUOffsetTSlot(slot, off, 0)
		}
	}
	if method >= 0 {
		bld.PrependUint8(uint8(method))
		bld.Slot(5)
	}
	return bld.EndObject(), nil
}

// fbAppendRoles writes a ClientRoles or RouterRoles table from WAMP's roles dict.
func fbAppendRoles(bld *fb.Builder, table []fbRole, roles map[string]any) fb.UOffsetT {
	offs := make([]fb.UOffsetT, len(table))
	for i, r := range table {
		role, ok := roles[r.name].(map[string]any)
		if !ok {
			continue
		}
		feats, _ := role["features"].(map[string]any)
		bld.StartObject(len(r.features))
		for j, name := range r.features {
			if v, ok := feats[name].(bool); ok {
				bld.PrependBool(v)
				bld.Slot(j)
			}
		}
		offs[i] = bld.EndObject()
	}
	bld.StartObject(len(table))
	for i, off := range offs {
		if off != 0 {
			bld.PrependUOffsetTSlot(i, off, 0)
		}
	}
	return bld.EndObject()
}
