#!/usr/bin/python3
"""AutobahnPython authentication scenario for switchyard. Run by interop/auth_test.go.

    /usr/bin/python3 auth.py --url URL [--realm realm1] [--serializer json|msgpack|cbor]
                             [--framework auto|asyncio|twisted] [--timeout 20]

The router must run REALM with the principals of auth_test.go: ticket joe/s3cret (role
user), WAMP-CRA ann/plain-secret (role admin) and salty/salted-secret salted with NaCl,
100 iterations, keylen 32 (role user). Checks, one session each, like ../js/auth.js:
ticket ok, ticket wrong, wampcra ok, wampcra salted ok, wampcra wrong secret, and a HELLO
offering only an authmethod the realm does not offer.

Option parsing, checks, the hard timeout and the transport helpers come from scenario.py
(imported; its --role and --prefix are ignored).
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, short, timeout

import txaio  # noqa: E402
from autobahn.wamp import auth  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

opts = S.opts
S.TAG = "[py auth %s %s %s]" % (opts.url.split(":")[0], opts.serializer, opts.framework)
FAILED = "wamp.error.authentication_failed"


class Result:
    def __init__(self):
        self.session = None
        self.details = None  # SessionDetails on WELCOME
        self.reason = None  # ABORT reason
        self.message = None
        self.challenges = []


async def join(authmethods, authid, respond):
    """Opens one session that joins with authmethods/authid and answers challenges with
    respond(challenge); resolves with a Result once joined or aborted."""
    res = Result()
    done = txaio.create_future()

    def settle():
        if not txaio.is_called(done):
            txaio.resolve(done, res)

    class Session(S.ApplicationSession):
        closing = False

        def onConnect(self):
            self.join(self.config.realm, authmethods=authmethods, authid=authid)

        def onChallenge(self, challenge):
            res.challenges.append(challenge)
            return respond(challenge)

        def onJoin(self, details):
            res.session, res.details = self, details
            settle()

        def onLeave(self, details):
            if res.details is None:
                res.reason, res.message = details.reason, details.message
            elif not self.closing:
                fail("%s connection" % authid, "left: %s %s" % (details.reason, details.message))
            settle()
            return S.ApplicationSession.onLeave(self, details)

        def onDisconnect(self):
            if res.details is None and res.reason is None:
                res.reason = "(transport closed before WELCOME or ABORT)"
            settle()

    ser = S.make_serializer()
    if S.RAWSOCKET:
        _, host, port = S.parse_rs_url(opts.url)
        factory = S.WampRawSocketClientFactory(lambda: Session(ComponentConfig(realm=opts.realm)), serializer=ser)
    else:
        _, host, port, _, _, _ = S.parse_ws_url(opts.url)
        factory = S.WampWebSocketClientFactory(lambda: Session(ComponentConfig(realm=opts.realm)), url=opts.url, serializers=[ser])
        factory.setProtocolOptions(openHandshakeTimeout=5.0, closeHandshakeTimeout=1.0)
    await timeout(S.open_transport(factory, host, port), 5, "TCP connect")
    return await timeout(done, 5, "WELCOME or ABORT")


def ticket(t):
    def respond(challenge):
        if challenge.method != "ticket":
            raise Exception("unexpected challenge method %s" % challenge.method)
        return t

    return respond


def cra(secret):
    def respond(challenge):
        if challenge.method != "wampcra":
            raise Exception("unexpected challenge method %s" % challenge.method)
        key = secret.encode("utf8")
        if "salt" in challenge.extra:
            key = auth.derive_key(secret, challenge.extra["salt"], challenge.extra.get("iterations", 1000), challenge.extra.get("keylen", 32))
        return auth.compute_wcs(key, challenge.extra["challenge"].encode("utf8")).decode("ascii")

    return respond


def no_challenge(challenge):
    raise Exception("no challenge expected, got %s" % challenge.method)


async def expect_welcome(name, authmethods, authid, respond, authrole, authmethod):
    r = await join(authmethods, authid, respond)
    if r.details is None:
        fail(name, "not joined: %s %s" % (r.reason, r.message))
        return r
    d = r.details
    check("%s: one %s challenge" % (name, authmethod), [c.method for c in r.challenges] == [authmethod],
          "challenges %s" % short([(c.method, c.extra) for c in r.challenges]))
    check("%s: WELCOME authid %s" % (name, authid), d.authid == authid, "authid %s" % short(d.authid))
    check("%s: WELCOME authrole %s" % (name, authrole), d.authrole == authrole, "authrole %s" % short(d.authrole))
    check("%s: WELCOME authmethod %s" % (name, authmethod), d.authmethod == authmethod, "authmethod %s" % short(d.authmethod))
    try:
        n = await timeout(r.session.call("wamp.session.count"), 3, "wamp.session.count")
        check("%s: session usable (wamp.session.count)" % name, isinstance(n, int), "result %s" % short(n))
    except Exception as e:
        fail("%s: session usable (wamp.session.count)" % name, fmt_err(e))
    await S.close(r.session)
    return r


async def expect_abort(name, authmethods, authid, respond, want_reason, want_challenges):
    r = await join(authmethods, authid, respond)
    if r.details is not None:
        fail(name, "joined, want ABORT %s: authid %s authrole %s" % (want_reason, r.details.authid, r.details.authrole))
        await S.close(r.session)
        return r
    check("%s: ABORT %s" % (name, want_reason), r.reason == want_reason, "reason %s message %s" % (short(r.reason), short(r.message)))
    check("%s: %d challenge(s)" % (name, want_challenges), len(r.challenges) == want_challenges,
          "challenges %s" % short([(c.method, c.extra) for c in r.challenges]))
    return r


async def main():
    # The realm also admits anonymous sessions: a HELLO without authmethods still joins.
    r = await join(None, None, no_challenge)
    if r.details is None:
        fail("anonymous ok", "not joined: %s %s" % (r.reason, r.message))
    else:
        d = r.details
        check("anonymous ok: no challenge, WELCOME authrole anonymous, authmethod anonymous",
              not r.challenges and d.authrole == "anonymous" and d.authmethod == "anonymous",
              "challenges %d, authrole %s, authmethod %s" % (len(r.challenges), short(d.authrole), short(d.authmethod)))
        await S.close(r.session)

    await expect_welcome("ticket ok", ["ticket"], "joe", ticket("s3cret"), "user", "ticket")
    await expect_abort("ticket wrong", ["ticket"], "joe", ticket("not-the-ticket"), FAILED, 1)
    await expect_abort("ticket unknown authid", ["ticket"], "nobody", ticket("s3cret"), FAILED, 1)

    r = await expect_welcome("wampcra ok", ["wampcra"], "ann", cra("plain-secret"), "admin", "wampcra")
    if len(r.challenges) == 1:
        ex = r.challenges[0].extra
        check("wampcra ok: unsalted challenge has no salt", "salt" not in ex, "extra %s" % short(ex))
    r = await expect_welcome("wampcra salted ok", ["wampcra"], "salty", cra("salted-secret"), "user", "wampcra")
    if len(r.challenges) == 1:
        ex = r.challenges[0].extra
        check("wampcra salted ok: challenge carries salt NaCl, iterations 100, keylen 32",
              ex.get("salt") == "NaCl" and ex.get("iterations") == 100 and ex.get("keylen") == 32, "extra %s" % short(ex))
    await expect_abort("wampcra wrong secret", ["wampcra"], "ann", cra("wrong-secret"), FAILED, 1)
    await expect_abort("wampcra salted wrong secret", ["wampcra"], "salty", cra("wrong-secret"), FAILED, 1)

    # AutobahnPython sends any authmethods list as is; the router must ABORT at once.
    await expect_abort("unknown authmethod only (cryptosign)", ["cryptosign"], "joe", no_challenge, "wamp.error.no_auth_method", 0)


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
