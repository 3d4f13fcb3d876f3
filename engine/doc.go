// Package engine routes WAMP inside realms: sessions, the broker (pub/sub) and the dealer
// (RPC), on lock-free tables.
//
// Readers never lock: subscriber and callee lists are immutable snapshots swapped
// atomically, and the URI tables are xsync maps keyed by the xxhash of the URI. Writers
// (SUBSCRIBE, REGISTER, leave) serialize on a per-table mutex; they are rare next to
// PUBLISH and CALL. An EVENT is encoded once per serializer and the same bytes are queued
// to every subscriber; payloads stay raw and are transcoded only for receivers with another
// serializer.
//
// The engine never sees sockets: a session talks to its client through a Peer, which a
// local connection or a remote (linked) session can satisfy alike.
package engine
