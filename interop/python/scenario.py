#!/usr/bin/python3
"""AutobahnPython interop scenario for switchyard. Run by interop/interop_test.go.

    /usr/bin/python3 scenario.py --role solo|serve|drive --url URL [--realm realm1]
                                 [--serializer json|msgpack|cbor] [--prefix interop.x.]
                                 [--framework auto|asyncio|twisted] [--timeout 20]

URL is ws://host:port/path (WebSocket) or rs://host:port (RawSocket); wss:// and rss://
connect over TLS, trusting the CA in env INTEROP_TLS_CA (see open_transport). Exactly
one serializer is offered, so the router cannot fall back to another one.

--framework auto uses asyncio for WebSocket and Twisted for RawSocket: the asyncio
RawSocket client of autobahn 22.7.1 (the Debian package) crashes on WELCOME with
"'WampRawSocketClientProtocol' object has no attribute 'transport_details'"
(crossbario/autobahn-python#1592, fixed after 22.7.1 by #1593), a client bug.
The scenario itself is written once, on txaio, and runs on either framework.

Roles are the same as in ../js/scenario.js (so the two clients pair either way):
  serve  registers PREFIX.echo / PREFIX.fail / PREFIX.report, subscribes PREFIX.topic,
         prints "READY", checks every payload it receives against the fixture, echoes
         events to PREFIX.echo_topic, and exits when the driver calls PREFIX.report.
  drive  calls, publishes and checks the answers against the fixture, runs the error
         cases, then calls PREFIX.report to collect the server side's failures.
  solo   serve and drive in one process, on two connections.

Prints "ok   <check>" or "FAIL <check>: <detail>" per check; exits non-zero on any
failure, an unexpected close, or after the hard timeout.
"""

import argparse
import os
import signal
import sys
import time

# Autobahn's ujson mode cannot carry binary; make sure the stdlib JSON path is used.
os.environ.pop("AUTOBAHN_USE_UJSON", None)

# ---------------------------------------------------------------------------- options

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--role", default=os.environ.get("INTEROP_ROLE", "solo"), choices=["solo", "serve", "drive"])
ap.add_argument("--url", default=os.environ.get("INTEROP_URL"))
ap.add_argument("--realm", default=os.environ.get("INTEROP_REALM", "realm1"))
ap.add_argument("--serializer", default=os.environ.get("INTEROP_SERIALIZER", "json"), choices=["json", "msgpack", "cbor"])
ap.add_argument("--prefix", default=os.environ.get("INTEROP_PREFIX", "interop.py."))
ap.add_argument("--framework", default=os.environ.get("INTEROP_FRAMEWORK", "auto"), choices=["auto", "asyncio", "twisted"])
ap.add_argument("--timeout", type=float, default=float(os.environ.get("INTEROP_TIMEOUT", "20")))
opts = ap.parse_args()
if not opts.url:
    ap.error("--url is required")
if not opts.prefix.endswith("."):
    opts.prefix += "."
RAWSOCKET = opts.url.startswith(("rs:", "rss:", "tcp:"))
if opts.framework == "auto":
    opts.framework = "twisted" if RAWSOCKET else "asyncio"

import txaio  # noqa: E402

if opts.framework == "twisted":
    txaio.use_twisted()
    from twisted.internet import defer, reactor, task  # noqa: E402
    from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402
    from autobahn.twisted.rawsocket import WampRawSocketClientFactory  # noqa: E402
    from autobahn.twisted.wamp import ApplicationSession  # noqa: E402
    from autobahn.twisted.websocket import WampWebSocketClientFactory  # noqa: E402
else:
    txaio.use_asyncio()
    import asyncio  # noqa: E402
    from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
    from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
    from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402

from autobahn.rawsocket.util import parse_url as parse_rs_url  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import CallResult, ComponentConfig, PublishOptions  # noqa: E402
from autobahn.websocket.util import parse_url as parse_ws_url  # noqa: E402



def script_tag(name):
    """The prefix of this run's output lines: [py NAME SCHEME SERIALIZER FRAMEWORK]."""
    return "[py %s %s %s %s]" % (name, opts.url.split(":")[0], opts.serializer, opts.framework)


TAG = script_tag(opts.role)

# ---------------------------------------------------------------------------- framework
# The few things asyncio and Twisted do differently, on top of txaio.


class Timeout(Exception):
    pass


def to_future(x):
    """A Future/Deferred for a coroutine, Future or Deferred."""
    if opts.framework == "twisted":
        return x if isinstance(x, defer.Deferred) else defer.ensureDeferred(x)
    return asyncio.ensure_future(x)


def _cancel(handle):
    try:
        if opts.framework != "twisted" or handle.active():
            handle.cancel()
    except Exception:
        pass


async def timeout(x, secs, what):
    """Awaits x, raising Timeout after secs seconds."""
    inner = to_future(x)
    out = txaio.create_future()

    def good(v):
        if not txaio.is_called(out):
            txaio.resolve(out, v)

    def bad(f):
        if not txaio.is_called(out):
            txaio.reject(out, f)

    txaio.add_callbacks(inner, good, bad)

    def expire():
        if not txaio.is_called(out):
            txaio.reject(out, Timeout("timed out after %gs waiting for %s" % (secs, what)))

    h = txaio.call_later(secs, expire)
    try:
        return await out
    finally:
        _cancel(h)


async def sleep(secs):
    await txaio.sleep(secs)


def later(secs, fn):
    txaio.call_later(secs, fn)


# wss:// and rss:// URLs connect over TLS (see open_transport).
SECURE = opts.url.startswith(("wss:", "rss:"))


class TLSFiles:
    """The PEM files of a TLS connection: ca, the CA certificate to trust (None: the
    system's trust store); cert and key, the client certificate to present (None: none)."""

    def __init__(self, ca=None, cert=None, key=None):
        self.ca, self.cert, self.key = ca, cert, key

    @staticmethod
    def from_env():
        """INTEROP_TLS_CA, INTEROP_TLS_CERT and INTEROP_TLS_KEY (interop/tls_test.go)."""
        e = os.environ.get
        return TLSFiles(e("INTEROP_TLS_CA") or None, e("INTEROP_TLS_CERT") or None, e("INTEROP_TLS_KEY") or None)


def ssl_context(files):
    """An asyncio ssl.SSLContext verifying the server against files.ca (and its host
    name) and presenting files.cert when given."""
    import ssl

    ctx = ssl.create_default_context(cafile=files.ca)
    if files.cert:
        ctx.load_cert_chain(files.cert, files.key)
    return ctx


def twisted_tls_options(host, files):
    """Twisted's client TLS options (pyOpenSSL, service_identity) for the same."""
    from twisted.internet import ssl

    kw = {}
    if files.ca:
        with open(files.ca) as f:
            kw["trustRoot"] = ssl.Certificate.loadPEM(f.read())
    if files.cert:
        with open(files.cert) as c, open(files.key) as k:
            kw["clientCertificate"] = ssl.PrivateCertificate.loadPEM(c.read() + k.read())
    return ssl.optionsForClientTLS(host, **kw)


async def open_transport(factory, host, port, tls=None):
    """Connects factory to host:port; over TLS for a wss:// or rss:// URL, with tls: a
    TLSFiles (default TLSFiles.from_env()), or a function of the host name that returns
    the framework's own client TLS options (Twisted: an IOpenSSLClientConnectionCreator;
    asyncio: an ssl.SSLContext). A failed TLS handshake raises on asyncio; on Twisted the
    connection opens and then closes before the WAMP handshake."""
    if SECURE and tls is None:
        tls = TLSFiles.from_env()
    if opts.framework == "twisted":
        if tls is not None:
            from twisted.internet.endpoints import SSL4ClientEndpoint

            options = tls(host) if callable(tls) else twisted_tls_options(host, tls)
            ep = SSL4ClientEndpoint(reactor, host, port, options, timeout=5)
        else:
            ep = TCP4ClientEndpoint(reactor, host, port, timeout=5)
        await ep.connect(factory)
    else:
        ctx = None
        if tls is not None:
            ctx = tls(host) if callable(tls) else ssl_context(tls)
        await asyncio.get_running_loop().create_connection(factory, host, port, ssl=ctx)


# ---------------------------------------------------------------------------- checks

failures = 0


def say(line):
    print(line, flush=True)


T0 = time.monotonic()


def elapsed():
    return "%6.3fs" % (time.monotonic() - T0)


def ok(name):
    say("ok   %s %s %s" % (elapsed(), TAG, name))


def fail(name, detail):
    global failures
    failures += 1
    say("FAIL %s %s %s: %s" % (elapsed(), TAG, name, detail))


def check(name, cond, detail="condition false"):
    if cond:
        ok(name)
    else:
        fail(name, detail)
    return cond


def finish(code=None):
    if code is None:
        code = 1 if failures else 0
    say("PASS %s" % TAG if code == 0 else "FAILED %s (%d failed checks)" % (TAG, failures))
    sys.stdout.flush()
    os._exit(code)


# ---------------------------------------------------------------------------- fixture
# The same values as fixtureArgs()/fixtureKwargs() in ../js/scenario.js.

FIXTURE_ARGS = [
    "hello",
    "unicode: h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001f389",
    'escapes: "quoted" back\\slash tab\t newline\n nul\x00mid \x1f',
    "",
    0, -1, -42, 255, 65536, 4294967296, -4294967297,
    9007199254740991, -9007199254740991,
    3.14159, -0.5, 2.5, 1.5e300, -2.2250738585072014e-308,
    True, False, None,
    [1, [2, [3, "deep", [True, None]]], {"k": "v"}, []],
    {"a": 1, "b": [True, None], "c": {"d": "e", "f": {}}},
    bytes(range(256)),
]

FIXTURE_KWARGS = {
    "str": "x",
    "uni": "\u00fcn\u00efc\u00f8d\u00e9 \u2713",
    "int": -123456789012,
    "big": 9007199254740991,
    "float": -273.15,
    "yes": True,
    "no": False,
    "none": None,
    "list": [1, "two", 3.5, [bytes([0, 1, 254, 255])]],
    "dict": {"nested": {"bin": bytes([0, 1, 254, 255]), "n": -1}},
    "bin": bytes([222, 173, 190, 239]),
    "bin_empty": b"",
    "empty_list": [],
    "empty_dict": {},
}

ERROR_URI = "com.example.interop.custom_error"
ERROR_ARGS = ["bad thing", 42, bytes([7, 0, 7])]
ERROR_KWARGS = {"reason": "because", "code": -7, "nested": {"ok": False}}


def short(v):
    s = repr(v)
    return s if len(s) <= 300 else s[:300] + "..."


def diff(got, want, path="$"):
    """Returns '' when got equals want with the same types (bool is not int, int is not
    float, bytes is not str), else the first difference."""
    if type(got) is not type(want):
        return "%s: want %s %s, got %s %s" % (path, type(want).__name__, short(want), type(got).__name__, short(got))
    if isinstance(want, list):
        if len(got) != len(want):
            return "%s: want list of %d, got %d: %s" % (path, len(want), len(got), short(got))
        for i, (g, w) in enumerate(zip(got, want)):
            d = diff(g, w, "%s[%d]" % (path, i))
            if d:
                return d
        return ""
    if isinstance(want, dict):
        if sorted(got.keys()) != sorted(want.keys()):
            return "%s: want keys %s, got %s" % (path, sorted(want.keys()), sorted(got.keys()))
        for k in sorted(want.keys()):
            d = diff(got[k], want[k], "%s.%s" % (path, k))
            if d:
                return d
        return ""
    if got != want:
        return "%s: want %s, got %s" % (path, short(want), short(got))
    return ""


def payload_diff(args, kwargs, want_args, want_kwargs):
    return diff(list(args or []), want_args, "args") or diff(dict(kwargs or {}), want_kwargs, "kwargs")


def fmt_err(e):
    if isinstance(e, ApplicationError):
        return "%s %s %s" % (e.error, short(list(e.args)), short(e.kwargs))
    return "%s: %s" % (type(e).__name__, e)


# ---------------------------------------------------------------------------- connect


def make_serializer():
    from autobahn.wamp import serializer as s

    if opts.serializer == "json":
        return s.JsonSerializer()
    if opts.serializer == "msgpack":
        return s.MsgPackSerializer()
    return s.CBORSerializer()


class JoinFailed(Exception):
    def __init__(self, reason, message):
        Exception.__init__(self, "%s %s" % (reason, message))
        self.reason = reason
        self.message = message


def client_factory(make, headers=None, compress=False):
    """The WAMP client factory for opts.url (WebSocket or RawSocket) offering exactly
    opts.serializer, with make the session factory and headers (dict) extra HTTP request
    headers of a WebSocket upgrade; compress offers permessage-deflate (RFC 7692) on a
    WebSocket; returns (factory, host, port)."""
    ser = make_serializer()
    if RAWSOCKET:
        url = "rs:" + opts.url.split(":", 1)[1] if opts.url.startswith("tcp:") else opts.url
        _, host, port = parse_rs_url(url)
        return WampRawSocketClientFactory(make, serializer=ser), host, port
    _, host, port, _, _, _ = parse_ws_url(opts.url)
    factory = WampWebSocketClientFactory(make, url=opts.url, serializers=[ser], headers=headers)
    factory.setProtocolOptions(openHandshakeTimeout=5.0, closeHandshakeTimeout=1.0)
    if compress:
        from autobahn.websocket.compress import (PerMessageDeflateOffer, PerMessageDeflateResponse,
                                                 PerMessageDeflateResponseAccept)

        def accept(response):
            if isinstance(response, PerMessageDeflateResponse):
                return PerMessageDeflateResponseAccept(response)

        factory.setProtocolOptions(perMessageCompressionOffers=[PerMessageDeflateOffer(accept_max_window_bits=True)],
                                   perMessageCompressionAccept=accept)
    return factory, host, port


class Result:
    """What one join() saw."""

    def __init__(self):
        self.session = None
        self.details = None  # SessionDetails on WELCOME
        self.reason = None  # ABORT reason
        self.message = None
        self.challenges = []  # every CHALLENGE, in order
        self.headers = None  # the WebSocket upgrade response's headers (dict, lower-case names)
        self.error = None  # the connection failure the library raised or reported
        self.protocol = None  # the WebSocket protocol instance (its negotiated extensions)


def ticket(t):
    """A join() respond answering a ticket CHALLENGE with t."""

    def respond(challenge, session=None):
        if challenge.method != "ticket":
            raise Exception("unexpected challenge method %s" % challenge.method)
        return t

    return respond


def no_challenge(challenge, session=None):
    """The join() respond that expects no CHALLENGE."""
    raise Exception("no challenge expected, got %s" % challenge.method)


async def join(realm, authmethods=None, authid=None, authextra=None, respond=no_challenge, tls=None, headers=None,
               connect_errors=False, on_lost=None, compress=False):
    """Opens one connection to opts.url and joins realm offering authmethods as authid with
    authextra, answering each CHALLENGE with respond(challenge, session); resolves with a
    Result once joined, aborted or disconnected. A joined session that later leaves or
    loses its transport, unless closed with close(), calls on_lost(why) (default: a leave
    fails "AUTHID connection"). tls is open_transport's; headers are
    extra HTTP request headers of a WebSocket upgrade, whose response headers the Result
    keeps. Why the connection was lost lands in Result.error; with connect_errors a
    failure to connect does too (asyncio raises a failed TLS handshake there), else it
    raises."""
    res = Result()
    done = txaio.create_future()
    if on_lost is None:
        label = "%s connection" % authid if authid else "connection"

        def on_leave_lost(why):
            fail(label, why)
    else:
        on_leave_lost = on_lost

    def settle():
        if not txaio.is_called(done):
            txaio.resolve(done, res)

    class Session(ApplicationSession):
        closing = False

        def onConnect(self):
            self.join(self.config.realm, authmethods=authmethods, authid=authid, authextra=authextra)

        def onChallenge(self, challenge):
            res.challenges.append(challenge)
            return respond(challenge, self)

        def onJoin(self, details):
            res.session, res.details = self, details
            settle()

        def onLeave(self, details):
            if res.details is None:
                res.reason, res.message = details.reason, details.message
            elif not self.closing:
                on_leave_lost("left: %s %s" % (details.reason, details.message))
            settle()
            return ApplicationSession.onLeave(self, details)

        def onDisconnect(self):
            if res.details is None:
                if res.reason is None and res.error is None:
                    res.reason = "(transport closed before WELCOME or ABORT)"
            elif on_lost is not None and not self.closing:
                on_lost("transport lost")
            settle()

    factory, host, port = client_factory(lambda: Session(ComponentConfig(realm=realm)), headers, compress)
    base = factory.protocol

    # Record the upgrade response's headers, and why the connection was lost: a TLS
    # handshake failure that happens after the TCP connect (Twisted; asyncio when the
    # router rejects our certificate) shows up only there.
    def connection_lost_twisted(self, reason):
        res.error = res.error or reason.value
        settle()
        return base.connectionLost(self, reason)

    def connection_lost_asyncio(self, exc):
        res.error = res.error or exc
        settle()
        return base.connection_lost(self, exc)

    def on_upgrade(self, response):
        res.headers = dict(response.headers)
        res.protocol = self
        return base.onConnect(self, response)

    recording = {"connectionLost": connection_lost_twisted, "connection_lost": connection_lost_asyncio}
    if not RAWSOCKET:
        recording["onConnect"] = on_upgrade
    factory.protocol = type("Recording", (base,), recording)
    try:
        await timeout(open_transport(factory, host, port, tls=tls), 5, "TLS connect" if SECURE or tls else "TCP connect")
    except Timeout:
        raise
    except Exception as e:
        if not connect_errors:
            raise
        res.error = e
        return res
    return await timeout(done, 5, "WELCOME or ABORT")


async def connect(realm, on_lost=None):
    """Joins realm over opts.url with exactly opts.serializer (join, anonymous); returns
    the session or raises JoinFailed with the ABORT/close reason. on_lost(why) is called
    when the session leaves or loses its transport unless closed with close()."""
    r = await join(realm, on_lost=on_lost or (lambda why: None))
    if r.details is None:
        if r.reason is None:
            raise JoinFailed(None, "transport closed before join (%s)" % r.error)
        raise JoinFailed(r.reason, r.message)
    return r.session


async def join_role(role):
    """connect for role serve or drive: a lost connection fails the run at once."""

    def lost(why):
        fail("%s connection" % role, why)
        finish(1)

    session = await connect(opts.realm, lost)
    ok("%s joined %s (session %s)" % (role, opts.realm, session.session_id))
    check_serializer(session)
    return session


async def close(session):
    session.closing = True
    try:
        if session.is_attached():
            await timeout(session.leave(), 2, "GOODBYE")
    except Exception:
        pass
    if session.is_connected():
        session.disconnect()


def check_serializer(session):
    """The session runs on the serializer we asked for. (Autobahn's WebSocket client
    silently falls back to JSON when the router answers without a subprotocol.)"""
    ser = getattr(session._transport, "_serializer", None)
    got = getattr(ser, "SERIALIZER_ID", None)
    check("serializer in use is %s" % opts.serializer, got == opts.serializer, "in use: %r" % got)


# ---------------------------------------------------------------------------- serve


async def serve(announce):
    P = opts.prefix
    server_failures = []
    events = [0]
    done = txaio.create_future()

    def note(name, d):
        if d:
            server_failures.append("%s %s: %s" % (TAG, name, d))
        check(name, not d, d)

    session = await join_role("serve")

    def echo(*args, **kwargs):
        note("callee received fixture args/kwargs", payload_diff(args, kwargs, FIXTURE_ARGS, FIXTURE_KWARGS))
        return CallResult(*args, **kwargs)

    def failing(*args, **kwargs):
        raise ApplicationError(ERROR_URI, *ERROR_ARGS, **ERROR_KWARGS)

    def report(*args, **kwargs):
        note("subscriber received exactly one event", "" if events[0] == 1 else "got %d" % events[0])
        later(0.1, lambda: txaio.is_called(done) or txaio.resolve(done, None))
        return list(server_failures)

    async def on_event(*args, **kwargs):
        events[0] += 1
        note("subscriber received fixture event", payload_diff(args, kwargs, FIXTURE_ARGS, FIXTURE_KWARGS))
        try:
            await session.publish(P + "echo_topic", *args, options=PublishOptions(acknowledge=True), **kwargs)
            ok("re-published event to echo_topic")
        except Exception as e:
            note("re-publish event to echo_topic", fmt_err(e))

    await session.register(echo, P + "echo")
    await session.register(failing, P + "fail")
    await session.register(report, P + "report")
    await session.subscribe(on_event, P + "topic")
    ok("registered echo/fail/report, subscribed topic")
    announce()
    await done
    await close(session)


# ---------------------------------------------------------------------------- drive


async def drive():
    P = opts.prefix

    session = await join_role("drive")

    # RPC: args and kwargs survive a round trip through the callee.
    try:
        res = await timeout(session.call(P + "echo", *FIXTURE_ARGS, **FIXTURE_KWARGS), 5, "echo result")
        if check("call echo returns a CallResult", isinstance(res, CallResult), short(res)):
            d = payload_diff(res.results, res.kwresults, FIXTURE_ARGS, FIXTURE_KWARGS)
            check("call echo: args/kwargs survive", not d, d)
    except Exception as e:
        fail("call echo", fmt_err(e))

    # RPC: application error with a custom URI, args and kwargs.
    try:
        res = await timeout(session.call(P + "fail"), 5, "fail error")
        fail("call fail raises", "expected %s, got result %s" % (ERROR_URI, short(res)))
    except ApplicationError as e:
        check("call fail: error URI", e.error == ERROR_URI, "got %s" % e.error)
        d = payload_diff(e.args, e.kwargs, ERROR_ARGS, ERROR_KWARGS)
        check("call fail: error args/kwargs", not d, d)
    except Exception as e:
        fail("call fail raises ApplicationError", fmt_err(e))

    # RPC: unknown procedure.
    try:
        res = await timeout(session.call(P + "no_such_procedure", 1), 5, "no_such_procedure error")
        fail("call unknown procedure", "expected error, got %s" % short(res))
    except Exception as e:
        check("call unknown procedure: wamp.error.no_such_procedure",
              isinstance(e, ApplicationError) and e.error == "wamp.error.no_such_procedure", fmt_err(e))

    # PubSub: publish with acknowledge; the subscriber echoes on echo_topic; the publisher
    # is itself subscribed to topic and must not get its own event (exclude_me default).
    own = [0]
    echoed = txaio.create_future()
    self_events = []

    def on_own(*a, **kw):
        own[0] += 1

    def on_echo(*a, **kw):
        if not txaio.is_called(echoed):
            txaio.resolve(echoed, (a, kw))

    def on_self(*a, **kw):
        self_events.append((list(a), dict(kw)))

    try:
        await session.subscribe(on_own, P + "topic")
        await session.subscribe(on_echo, P + "echo_topic")
        await session.subscribe(on_self, P + "self_topic")
        ok("subscribed topic, echo_topic, self_topic")
        pub = await timeout(session.publish(
            P + "topic", *FIXTURE_ARGS, options=PublishOptions(acknowledge=True), **FIXTURE_KWARGS), 5, "publish ack")
        check("publish acknowledged with a publication id",
              pub is not None and type(pub.id) is int and pub.id > 0, short(pub))
        a, kw = await timeout(echoed, 5, "event echoed by the subscriber")
        d = payload_diff(a, kw, FIXTURE_ARGS, FIXTURE_KWARGS)
        check("event round trip: args/kwargs survive", not d, d)
        pub2 = await timeout(session.publish(
            P + "self_topic", "me", options=PublishOptions(acknowledge=True, exclude_me=False), n=1), 5, "publish ack")
        check("publish exclude_me=false acknowledged", pub2 is not None and type(pub2.id) is int, short(pub2))
        await sleep(0.3)
        check("publisher exclusion (default): own event not received", own[0] == 0, "received %d own events" % own[0])
        check("exclude_me=false: own event received once", self_events == [(["me"], {"n": 1})], short(self_events))
    except Exception as e:
        fail("pubsub", fmt_err(e))

    # Join a realm that does not exist.
    try:
        s2 = await connect("interop.no_such_realm.%d" % int(time.time() * 1000))
        fail("join unknown realm", "joined a realm that should not exist")
        await close(s2)
    except JoinFailed as e:
        check("join unknown realm: wamp.error.no_such_realm", e.reason == "wamp.error.no_such_realm",
              "got %s %s" % (e.reason, e.message))
    except Exception as e:
        fail("join unknown realm", fmt_err(e))

    # Collect the server side's verdict.
    try:
        res = await timeout(session.call(P + "report"), 5, "report")
        check("server side reported no failures", res == [], short(res))
    except Exception as e:
        fail("call report", fmt_err(e))

    await close(session)


# ---------------------------------------------------------------------------- main


async def main():
    if opts.role == "serve":
        await serve(lambda: say("READY"))
    elif opts.role == "drive":
        await drive()
    else:
        ready = txaio.create_future()

        def announce():
            txaio.is_called(ready) or txaio.resolve(ready, None)

        def serve_failed(f):
            txaio.is_called(ready) or txaio.reject(ready, f)
            return f

        s = to_future(serve(announce))
        txaio.add_callbacks(s, None, serve_failed)
        await timeout(ready, 10, "serve session")
        await drive()
        await s


async def guarded():
    try:
        await timeout(main(), opts.timeout, "the scenario")
    except Timeout as e:
        fail("hard timeout", str(e))
        finish(1)
    except JoinFailed as e:
        fail("join", "could not join %s: %s %s" % (opts.realm, e.reason, e.message))
        finish(1)
    except Exception as e:
        fail("scenario", fmt_err(e))
        finish(1)
    finish()


def run():
    # Backstop for a wedged event loop: SIGALRM kills us even if the loop cannot time out.
    def alarm(signum, frame):
        fail("hard timeout", "process still running after %gs (SIGALRM)" % (opts.timeout + 5))
        finish(1)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(opts.timeout) + 5)
    if opts.framework == "twisted":
        task.react(lambda _reactor: defer.ensureDeferred(guarded()))
    else:
        asyncio.run(guarded())


if __name__ == "__main__":
    run()
