// Package span makes the realms of several routers behave as one realm: every client
// sees single-node WAMP semantics whichever router its session lives on. It is
// transport-agnostic: a Transport carries its messages (package link in a cluster, a
// loopback in tests), and it works on the engine through engine.Federation (which it
// implements) and the engine's entry points for remote work (PublishRemote, ghosts,
// SendRaw).
//
// # Pub/sub
//
// Subscription ids are hashes of (realm, match policy, topic), so every router gives the
// same id. When a router's first local subscriber of (topic, policy) arrives, or its last
// leaves, the router tells every other live router (KindInterest, keyed by the
// subscription id so that the changes of one subscription arrive in order; sent under the
// broker's lock so that they leave in the order they happened). Each router keeps the
// other routers' interest per realm: exact topics in a hash map of router bitmasks,
// patterns in an engine/match tree whose values are bitmasks, so a PUBLISH finds the
// interested routers in O(URI depth) without a lock. After its local fan-out, the
// publishing router forwards a plain publication once to each interested router as the
// EVENTs of the subscriptions that router holds (KindEvents, keyed by the publisher's
// session id, so one publisher's events stay in order), encoded once in the publisher's
// serializer; the receiving router looks each subscription up by id and queues the bytes
// to its subscribers (transcoded for other serializers), with no decode, match or encode
// of its own (events.go). A publication with black- or whitelists crosses as the PUBLISH
// (KindPublish: publication id, the publisher's id, authid, authrole and serializer, and
// the PUBLISH re-encoded), and the receiving router fans it out to its own subscribers,
// deciding eligibility there. Neither sends PUBLISHED nor forwards anything. A PUBLISH
// with retain=true, or to a topic with an event history rule, goes to every live
// router so each keeps it. Meta events take the same path (a router publishes the events
// of its own sessions, subscriptions and registrations, and they reach every router).
//
// # RPC
//
// Registration ids are hashes of (realm, match policy, procedure). Each registration has
// one decision point, its owner: the live router with the highest rendezvous weight for
// the registration id. On REGISTER the engine holds the session's messages (the same
// backlog as for the dynamic authorizer) and asks the Span; the claim goes to the owner
// (KindClaim), which checks its table (free, or same shared policy: accept; else
// procedure_already_exists or procedure_exists_with_different_invocation_policy),
// records the callee, broadcasts it to every live router (KindRegAdd) and answers
// (KindClaimAnswer) once all have acked, so that a CALL anywhere finds the callee as soon
// as REGISTERED is sent. The owner decides one claim per registration at a time (later
// claims queue while a broadcast waits for acks), so every router holds the callees of a
// shared registration in the same order (first/last agree). Every router keeps the table
// from the broadcasts, so a new owner has it when the old one dies. Removals (UNREGISTER,
// leaving) go to the owner (KindUnclaim), which broadcasts them (KindRegDel). A claim
// that conflicts with callees of other routers is not refused at once: their Unclaims
// may still be on the way while the caller has already seen the call end (or the
// callee its UNREGISTERED) and a client registers again, which must succeed as on one
// node. The owner first probes those routers (KindBarrier on the registration's key,
// answered on it, so after any Unclaim sent before) and decides again.
//
// A callee on another router is a ghost session here (engine.Realm.Ghost) registered in
// this router's dealer: the caller's router runs the whole call (pending table,
// progressive results and invocations, cancel, timeout, disclosure, shared policies); the
// ghost's Peer sends the INVOCATION and INTERRUPT bytes to the callee's router
// (KindInvoke), which queues them unchanged to the session. A ghost's INVOCATION ids
// carry this router's tag above bit 45 (engine.InvocationTagShift; the callee's router's
// own ids stay below), so the callee's router sends a YIELD or ERROR with such an id back
// to the tagged router (KindAnswer, learned from KindInvoke), where the ghost processes
// it. A callee that leaves makes every router drop its ghost (KindGone), which fails its
// calls in flight with wamp.error.canceled. The tag is given from outside with SetTag
// (the master's map gives every router a stable, unique tag, so routers that join later
// never collide); in a static cluster it is 1 + this router's position in the sorted
// names of the full router list (FixTag) or of the first SetRouters call.
//
// # Meta API
//
// The realm-wide meta procedures (engine.Federation.MetaQuery) are queries (KindQuery)
// that every live router answers with its own part (KindReply, engine.Realm.MetaPart),
// merged by the engine; RouterDown or the query timeout ends the wait for a router.
// Routers announce their sessions (KindSession) and subscribers (KindSubscriber) so
// that RouterDown can publish the session and subscription meta events of the dead
// router's sessions to the local subscribers.
//
// # Faults and membership
//
// RouterDown drops the dead router's interest and its callees' ghosts (calls in flight to
// them end with an ERROR at once; wamp.registration.on_unregister/on_delete go to the
// local subscribers, since the dead router cannot publish them), stops waiting for its
// acks, and sends the claims that waited for it as owner to the new owner. SetRouters
// sends a router seen for the first time (or again after RouterDown) our subscriptions'
// interest, our sessions and our callees' registrations. Interest bits go to router
// names as they are seen; once all 64 are given, the bit of a router that is not live
// is reused (its leftover interest dropped first), so routers may come and go under new
// names for as long as at most 64 count at once. RouterDown also publishes
// on_unsubscribe/on_delete/on_leave for the dead router's sessions, ends the meta
// queries waiting for it, and interrupts the INVOCATIONs its callers had in flight to
// our callees (their late answers are dropped).
package span
