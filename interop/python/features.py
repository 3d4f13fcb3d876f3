#!/usr/bin/python3
"""AutobahnPython advanced-profile scenario for switchyard. Run by interop/features_test.go.

    /usr/bin/python3 features.py --url URL [--realm realm1] [--serializer json|msgpack|cbor]
                                 [--prefix interop.x.] [--framework auto|asyncio|twisted]
                                 [--timeout 20]

Opens several sessions in one process and checks the advanced-profile features the router
announces (docs/features.md), like ../js/features.js. Option parsing, checks, the hard
timeout and the connection helpers come from scenario.py (imported; its --role is ignored).

Client limits (not router limits), worked around or skipped with a printed line:
- AutobahnPython 22.7.1 has no disclose_me option (PublishOptions/CallOptions lost it).
  The script adds "disclose_me": true to the PUBLISH/CALL options of the two URIs that
  test identification, by wrapping the messages' marshal_options().
- Cancelling the call's Future/Deferred sends CANCEL without a mode and fails the Future
  locally (CancelledError) at once; the router's ERROR for the CALL is then read from the
  session's incoming messages.
- On asyncio, when the router's INTERRUPT cancels the callee's coroutine, txaio logs an
  "Exception in callback ... CancelledError" traceback. It is noise from the client.
- RegisterOptions and message.Register assert that invoke is one of the spec's five
  policies; the script registers with roundrobin and rewrites invoke to "hash" in the
  REGISTER options of one URI (wrapping marshal_options, as for disclose_me). CallOptions
  has no rkey, so the consistent-hash check keys by the first positional argument.
- CallOptions(timeout=...) is documented in seconds but sent as is; the WAMP option is in
  milliseconds, so the script passes 100.
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, ok, say, short, sleep, timeout, to_future

import txaio  # noqa: E402
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import CallOptions, CallResult, PublishOptions, RegisterOptions, SubscribeOptions  # noqa: E402

opts = S.opts
S.TAG = S.script_tag("features")
P = opts.prefix

# ---------------------------------------------------------------------------- disclose_me
DISCLOSE = set()


def _with_disclose(cls, attr):
    orig = cls.marshal_options

    def marshal_options(self):
        o = orig(self)
        if getattr(self, attr, None) in DISCLOSE:
            o["disclose_me"] = True
        return o

    cls.marshal_options = marshal_options


_with_disclose(message.Publish, "topic")
_with_disclose(message.Call, "procedure")

# ---------------------------------------------------------------------------- invoke=hash
HASHED = set()


def _marshal_register_options(orig):
    def marshal_options(self):
        o = orig(self)
        if self.procedure in HASHED:
            o["invoke"] = "hash"
        return o

    return marshal_options


message.Register.marshal_options = _marshal_register_options(message.Register.marshal_options)


def skip(name, reason):
    say("skip %s: %s" % (name, reason))


def waiter():
    return txaio.create_future()


def settle(f, v):
    if not txaio.is_called(f):
        txaio.resolve(f, v)


async def section(name, coro):
    try:
        await coro
    except Exception as e:
        fail(name, fmt_err(e))


async def open_session(name):
    def lost(why):
        fail("%s connection" % name, why)

    s = await S.connect(opts.realm, lost)
    s.name = name
    s.sid = s.session_id
    s.incoming = []
    orig = s.onMessage

    def tap(msg):
        s.incoming.append(msg)
        return orig(msg)

    s.onMessage = tap
    ok("%s joined %s (session %s, authid %r)" % (name, opts.realm, s.sid, s.authid))
    return s


def D(**kw):
    """Subscribe/register options that pass the details as _details."""
    return dict(details_arg="_details", **kw)


# ---------------------------------------------------------------------------- sections


async def identification(a, d):
    got = waiter()
    await a.subscribe(lambda *args, _details=None, **kw: settle(got, _details), P + "disclose", options=SubscribeOptions(**D()))
    DISCLOSE.add(P + "disclose")
    await d.publish(P + "disclose", "hi", options=PublishOptions(acknowledge=True))
    ev = await timeout(got, 3, "disclosed event")
    check("publisher identification: details.publisher is the publisher session", ev.publisher == d.sid,
          "publisher %r, want %r" % (ev.publisher, d.sid))
    check("publisher identification: details.publisher_authid", ev.publisher_authid == d.authid and isinstance(ev.publisher_authid, str),
          "publisher_authid %r, want %r" % (ev.publisher_authid, d.authid))
    check("publisher identification: details.publisher_authrole is anonymous", ev.publisher_authrole == "anonymous",
          "publisher_authrole %r" % ev.publisher_authrole)

    def whoami(*args, _details=None, **kw):
        return CallResult(caller=_details.caller, caller_authid=_details.caller_authid, caller_authrole=_details.caller_authrole)

    await a.register(whoami, P + "whoami", options=RegisterOptions(**D()))
    DISCLOSE.add(P + "whoami")
    res = await timeout(d.call(P + "whoami"), 3, "whoami result")
    kw = res.kwresults if isinstance(res, CallResult) else {}
    check("caller identification: details.caller is the caller session", kw.get("caller") == d.sid,
          "caller %r, want %r" % (kw.get("caller"), d.sid))
    check("caller identification: details.caller_authid", kw.get("caller_authid") == d.authid and isinstance(kw.get("caller_authid"), str),
          "caller_authid %r, want %r" % (kw.get("caller_authid"), d.authid))
    check("caller identification: details.caller_authrole is anonymous", kw.get("caller_authrole") == "anonymous",
          "caller_authrole %r" % kw.get("caller_authrole"))


async def patterns(a, d):
    pfx, wild = waiter(), waiter()
    await a.subscribe(lambda *args, _details=None, **kw: settle(pfx, (list(args), _details)), P + "ev.",
                      options=SubscribeOptions(match="prefix", **D()))
    await a.subscribe(lambda *args, _details=None, **kw: settle(wild, (list(args), _details)), P + "evw..temp",
                      options=SubscribeOptions(match="wildcard", **D()))
    await d.publish(P + "ev.room1.light", "p", options=PublishOptions(acknowledge=True))
    await d.publish(P + "evw.room2.temp", "w", options=PublishOptions(acknowledge=True))
    args, ev = await timeout(pfx, 3, "prefix event")
    check("prefix subscription: event received", args == ["p"], short(args))
    check("prefix subscription: details.topic is the concrete topic", ev.topic == P + "ev.room1.light", "topic %r" % ev.topic)
    args, ev = await timeout(wild, 3, "wildcard event")
    check("wildcard subscription: event received", args == ["w"], short(args))
    check("wildcard subscription: details.topic is the concrete topic", ev.topic == P + "evw.room2.temp", "topic %r" % ev.topic)

    def who(name):
        return lambda *args, _details=None, **kw: [name, _details.procedure]

    await a.register(who("prefix"), P + "rpc.", options=RegisterOptions(match="prefix", **D()))
    await a.register(who("exact"), P + "rpc.exact", options=RegisterOptions(**D()))
    await a.register(who("wildcard"), P + "rpcw..op", options=RegisterOptions(match="wildcard", **D()))
    r = await timeout(d.call(P + "rpc.any.thing"), 3, "prefix call")
    check("prefix registration: reached with details.procedure", r == ["prefix", P + "rpc.any.thing"], short(r))
    r = await timeout(d.call(P + "rpcw.x.op"), 3, "wildcard call")
    check("wildcard registration: reached with details.procedure", r == ["wildcard", P + "rpcw.x.op"], short(r))
    r = await timeout(d.call(P + "rpc.exact"), 3, "exact call")
    check("exact registration beats prefix", isinstance(r, list) and r[:1] == ["exact"], short(r))


async def shared(a, b, d):
    await a.register(lambda: "a", P + "shared", options=RegisterOptions(invoke="roundrobin"))
    await b.register(lambda: "b", P + "shared", options=RegisterOptions(invoke="roundrobin"))
    got = []
    for _ in range(4):
        got.append(await timeout(d.call(P + "shared"), 3, "shared call"))
    alt = (len(got) == 4 and got[0] != got[1] and got[0] == got[2] and got[1] == got[3]
           and set(got) == {"a", "b"})
    check("shared registration roundrobin: 4 calls alternate between the two callees", alt, short(got))


async def hashed(a, b, d):
    # RegisterOptions and message.Register accept only the spec's five policies: register
    # with roundrobin and let the REGISTER marshaller send "hash" (HASHED, above).
    HASHED.add(P + "hashed")
    for s, name in ((a, "a"), (b, "b")):
        await s.register(lambda *args, name=name: name, P + "hashed", options=RegisterOptions(invoke="roundrobin"))
    seen, moved = set(), []
    for k in range(12):
        # No rkey in CallOptions: the key is the first positional argument.
        first = await timeout(d.call(P + "hashed", "key-%d" % k), 3, "hash call")
        again = await timeout(d.call(P + "hashed", "key-%d" % k), 3, "hash call")
        if first != again:
            moved.append("key-%d: %s then %s" % (k, first, again))
        seen.add(first)
    check("consistent hash: the same first argument reaches the same callee", not moved, ", ".join(moved))
    check("consistent hash: 12 keys spread over both callees", seen == {"a", "b"}, short(sorted(seen)))


async def history(b, d):
    # The interop node keeps history for interop.*.*.history (interop/features_test.go).
    sub = await b.subscribe(lambda *args, **kw: None, P + "history")
    for i in range(1, 4):
        await d.publish(P + "history", i, options=PublishOptions(acknowledge=True))
    res = await timeout(b.call("wamp.subscription.get_events", sub.id, limit=2, reverse=True), 3, "get_events")
    # Arguments are the events and ArgumentsKw {subscription, count}: a CallResult.
    evs = list(getattr(res, "results", []) or [])
    kw = getattr(res, "kwresults", {}) or {}
    check("event history: get_events returns the last 2 events, newest first",
          len(evs) == 2 and evs[0].get("args") == [3] and evs[1].get("args") == [2], short(res))
    e = evs[0] if evs else {}
    check("event history: events carry subscription, publication and timestamp",
          e.get("subscription") == sub.id and isinstance(e.get("publication"), int) and isinstance(e.get("timestamp"), str),
          short(e))
    check("event history: ArgumentsKw count", kw.get("count") == 2, short(kw))


async def progressive(a, d):
    async def stream(_details=None):
        if not _details.progress:
            return "no-progress"
        for i in range(3):
            _details.progress(i)
            await sleep(0.02)
        return "final"

    await a.register(stream, P + "progress", options=RegisterOptions(**D()))
    progress = []
    res = await timeout(d.call(P + "progress", options=CallOptions(on_progress=lambda *a, **kw: progress.append(a[0] if a else None))),
                        3, "progressive result")
    check("progressive results: callee saw receive_progress", res != "no-progress", short(res))
    check("progressive results: 3 progress results in order", progress == [0, 1, 2], short(progress))
    check("progressive results: final result after them", res == "final", short(res))


async def cancel_and_timeout(a, d):
    invoked = []
    interrupted = []

    async def slow(*args):
        invoked.append(args)
        try:
            await txaio.create_future()  # never answers
        except BaseException:
            interrupted.append(args)
            raise

    await a.register(slow, P + "slow")

    def call_errors(uri):
        return [m for m in d.incoming if isinstance(m, message.Error) and m.request_type == message.Call.MESSAGE_TYPE and m.error == uri]

    f = to_future(d.call(P + "slow", 1))
    await sleep(0.2)
    check("call canceling: callee was invoked", len(invoked) == 1, short(invoked))
    f.cancel()  # autobahn sends CANCEL (no mode) and fails f with CancelledError at once
    f.addErrback(lambda _f: None) if hasattr(f, "addErrback") else None
    await sleep(0)
    check("call canceling: local future cancelled", f.cancelled() if hasattr(f, "cancelled") else f.called, short(f))
    for _ in range(30):
        if call_errors("wamp.error.canceled"):
            break
        await sleep(0.1)
    errs = [m for m in d.incoming if isinstance(m, message.Error)]
    check("call canceling: router sent ERROR wamp.error.canceled for the CALL", call_errors("wamp.error.canceled"),
          "ERROR messages received: %s" % short([(m.request_type, m.error) for m in errs]))
    await sleep(0.1)
    # No mode in CANCEL: the router applies "skip" (engine/cancel.go), so no INTERRUPT.
    say("note: after CANCEL without mode the callee was %sinterrupted" % ("" if interrupted else "not "))
    before = len(interrupted)

    t0 = S.time.monotonic()
    try:
        r = await timeout(d.call(P + "slow", 2, options=CallOptions(timeout=100)), 3, "ERROR after call timeout")
        fail("call timeout: caller gets wamp.error.timeout", "got result %s" % short(r))
    except ApplicationError as e:
        ms = (S.time.monotonic() - t0) * 1000
        check("call timeout: caller gets wamp.error.timeout", e.error == "wamp.error.timeout", fmt_err(e))
        check("call timeout: error after about 100 ms", 90 <= ms < 2000, "after %d ms" % ms)
    except Exception as e:
        fail("call timeout: caller gets wamp.error.timeout", fmt_err(e))
    await sleep(0.1)
    check("call timeout: callee (call_canceling) got INTERRUPT", len(interrupted) == before + 1, short(interrupted))


async def meta(a, d):
    n = await timeout(d.call("wamp.session.count"), 3, "wamp.session.count")
    check("wamp.session.count: at least the 3 sessions of this script", type(n) is int and n >= 3, short(n))
    me = await timeout(d.call("wamp.session.get", d.sid), 3, "wamp.session.get")
    me = me if isinstance(me, dict) else {}
    check("wamp.session.get(own id): session", me.get("session") == d.sid, short(me))
    check("wamp.session.get(own id): authrole anonymous", me.get("authrole") == "anonymous", short(me))
    check("wamp.session.get(own id): authid", me.get("authid") == d.authid, short(me))

    sub = await a.subscribe(lambda *args, **kw: None, P + "meta.topic")
    sid = await timeout(d.call("wamp.subscription.lookup", P + "meta.topic"), 3, "wamp.subscription.lookup")
    check("wamp.subscription.lookup: the subscription id", sid == sub.id, "got %r, want %r" % (sid, sub.id))
    none = await timeout(d.call("wamp.subscription.lookup", P + "meta.unknown"), 3, "wamp.subscription.lookup")
    check("wamp.subscription.lookup of an unknown topic: null", none is None, short(none))
    reg = await a.register(lambda: 1, P + "meta.proc")
    rid = await timeout(d.call("wamp.registration.match", P + "meta.proc"), 3, "wamp.registration.match")
    check("wamp.registration.match: the registration id", rid == reg.id, "got %r, want %r" % (rid, reg.id))
    preg = await timeout(d.call("wamp.registration.match", P + "rpc.some.where"), 3, "wamp.registration.match")
    check("wamp.registration.match: a prefix registration matches", type(preg) is int, short(preg))

    joins = []
    await a.subscribe(lambda *args, **kw: joins.append(args), "wamp.session.on_join")
    e = await open_session("e")
    info = None
    for _ in range(30):
        info = next((j[0] for j in joins if j and isinstance(j[0], dict) and j[0].get("session") == e.sid), None)
        if info:
            break
        await sleep(0.1)
    check("wamp.session.on_join: event for the new session", info is not None, "got %s" % short(joins))
    check("wamp.session.on_join: authrole anonymous", (info or {}).get("authrole") == "anonymous", short(info))
    await S.close(e)


async def retention(b, d):
    await d.publish(P + "retained", "kept", options=PublishOptions(acknowledge=True, retain=True), v=1)
    got = waiter()
    await b.subscribe(lambda *args, _details=None, **kw: settle(got, (list(args), kw, _details)), P + "retained",
                      options=SubscribeOptions(get_retained=True, **D()))
    args, kw, ev = await timeout(got, 3, "retained event")
    check("retention: new subscriber gets the retained event", args == ["kept"] and kw == {"v": 1}, "%s %s" % (short(args), short(kw)))
    check("retention: details.retained is true", ev.retained is True, "retained %r" % ev.retained)


async def testament(a):
    got = waiter()
    await a.subscribe(lambda *args, **kw: settle(got, (list(args), kw)), P + "testament")
    c = await open_session("c")
    await timeout(c.call("wamp.session.add_testament", P + "testament", ["bye", c.sid], {"k": "v"}), 3, "add_testament")
    ok("wamp.session.add_testament accepted")
    await S.close(c)
    args, kw = await timeout(got, 3, "testament event")
    check("testament: published when the session closes", args == ["bye", c.sid] and kw == {"k": "v"}, "%s %s" % (short(args), short(kw)))


async def blackwhite(a, b, d):
    c = await open_session("c2")
    got = {"a": [], "b": [], "c": []}
    await a.subscribe(lambda x: got["a"].append(x), P + "bw")
    await b.subscribe(lambda x: got["b"].append(x), P + "bw")
    await c.subscribe(lambda x: got["c"].append(x), P + "bw")
    await d.publish(P + "bw", 1, options=PublishOptions(acknowledge=True, exclude=[b.sid], eligible_authrole=["anonymous"]))
    await d.publish(P + "bw", 2, options=PublishOptions(acknowledge=True, eligible_authrole=["nobody"]))
    await d.publish(P + "bw", 3, options=PublishOptions(acknowledge=True, eligible=[c.sid]))
    await sleep(0.3)
    check("exclude=[b] + eligible_authrole=[anonymous]: a gets it", 1 in got["a"], short(got))
    check("exclude=[b] + eligible_authrole=[anonymous]: c gets it", 1 in got["c"], short(got))
    check("exclude=[b] + eligible_authrole=[anonymous]: b does not", 1 not in got["b"], short(got))
    check("eligible_authrole=[nobody]: nobody gets it", all(2 not in v for v in got.values()), short(got))
    check("eligible=[c]: only c gets it", 3 in got["c"] and 3 not in got["a"] and 3 not in got["b"], short(got))
    await S.close(c)


async def main():
    a = await open_session("a")
    b = await open_session("b")
    d = await open_session("d")
    S.check_serializer(a)
    await section("identification", identification(a, d))
    await section("patterns", patterns(a, d))
    await section("shared registration", shared(a, b, d))
    await section("consistent-hash invocation", hashed(a, b, d))
    await section("progressive call results", progressive(a, d))
    await section("call canceling/timeout", cancel_and_timeout(a, d))
    await section("meta API", meta(a, d))
    await section("event retention", retention(b, d))
    await section("event history", history(b, d))
    await section("testament", testament(a))
    await section("subscriber black/whitelisting", blackwhite(a, b, d))
    for s in (a, b, d):
        await S.close(s)


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
