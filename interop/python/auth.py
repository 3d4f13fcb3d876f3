#!/usr/bin/python3
"""AutobahnPython authentication and authorization scenario for switchyard. Run by
interop/auth_test.go.

    /usr/bin/python3 auth.py --url URL [--realm realm1] [--serializer json|msgpack|cbor]
                             [--framework auto|asyncio|twisted] [--timeout 20]

The router must run the realms and principals of auth_test.go (startAuthNode), the same
as ../js/auth.js describes: REALM (realm1) with anonymous, ticket joe/s3cret (role user),
WAMP-CRA ann/plain-secret (role admin) and salty/salted-secret salted with NaCl, 100
iterations, keylen 32 (role user); realm cryptosign with WAMP-Cryptosign device-1 (role
device) whose authorized Ed25519 key has the hex seed in env INTEROP_CRYPTOSIGN_SEED
(INTEROP_CRYPTOSIGN_OTHER_SEED is a key the router does not know; both generated per
run); realm dynamic, whose dynamic authenticator knows ticket dyn-joe/dyn-ticket (authid
becomes joe@dynamic, role dyn-user, authextra {source: interop}), WAMP-CRA
dyn-ann/dyn-cra-secret (role dyn-cra) and cryptosign dyn-dev (role dyn-device), and denies
everyone else; realm authz with ticket limited/limited-pw (everything on prefix
authz.open. except the exact URI authz.open.closed) and dynuser/dynuser-pw (the dynamic
authorizer allows subscribing to authz.dyn.allowed only).

Checks, one session each, like ../js/auth.js: anonymous ok; ticket ok, wrong, unknown
authid; wampcra ok, salted ok, wrong secret (both); a HELLO offering only an authmethod
the realm does not offer; cryptosign ok, wrong private key, unauthorized public key
(CryptosignKey, needs PyNaCl: Debian python3-nacl); dynamic ticket ok, wrong, denied,
dynamic wampcra ok, dynamic cryptosign ok; then in realm authz one allowed and one
forbidden URI for publish (acknowledged), subscribe, call and register, and one allowed
and one denied subscribe decided by the dynamic authorizer.

Option parsing, checks, the hard timeout and the transport helpers come from scenario.py
(imported; its --role and --prefix are ignored).
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, no_challenge, short, ticket, timeout
from scenario import ok as ok_

import os  # noqa: E402
import re  # noqa: E402

import txaio  # noqa: E402
from autobahn.wamp import auth  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import PublishOptions  # noqa: E402

opts = S.opts
S.TAG = S.script_tag("auth")
FAILED = "wamp.error.authentication_failed"
DENIED = "wamp.error.not_authorized"

# The realms of auth_test.go besides REALM (--realm).
REALM_CRYPTOSIGN = "cryptosign"
REALM_DYNAMIC = "dynamic"
REALM_AUTHZ = "authz"


def cra(secret):
    def respond(challenge, session=None):
        if challenge.method != "wampcra":
            raise Exception("unexpected challenge method %s" % challenge.method)
        key = secret.encode("utf8")
        if "salt" in challenge.extra:
            key = auth.derive_key(secret, challenge.extra["salt"], challenge.extra.get("iterations", 1000), challenge.extra.get("keylen", 32))
        return auth.compute_wcs(key, challenge.extra["challenge"].encode("utf8")).decode("ascii")

    return respond


def cryptosign_key(name):
    """The CryptosignKey of the hex Ed25519 seed in env var name."""
    from autobahn.wamp.cryptosign import CryptosignKey

    seed = os.environ.get(name, "")
    if not re.fullmatch("[0-9a-f]{64}", seed):
        raise Exception("env %s must hold a 32-byte hex Ed25519 seed" % name)
    return CryptosignKey.from_bytes(bytes.fromhex(seed))


def cryptosign(key):
    """Signs the cryptosign challenge as AutobahnPython does (signature || challenge)."""

    def respond(challenge, session=None):
        if challenge.method != "cryptosign":
            raise Exception("unexpected challenge method %s" % challenge.method)
        return key.sign_challenge(challenge)

    return respond


async def expect_welcome(name, authmethods, authid, respond, authrole, authmethod, authprovider=None,
                         welcome_authid=None, welcome_extra=None, realm=None, authextra=None, keep=False):
    """Joins and checks WELCOME: authid (welcome_authid when the router replaces it),
    authrole, authmethod, and when given authprovider and authextra (welcome_extra). With
    keep, returns the session open and unchecked (roles without meta API permissions);
    else checks it with a meta call and closes it."""
    r = await S.join(realm or opts.realm, authmethods, authid, authextra, respond)
    if r.details is None:
        fail(name, "not joined: %s %s" % (r.reason, r.message))
        return r
    d = r.details
    want_authid = welcome_authid or authid
    check("%s: one %s challenge" % (name, authmethod), [c.method for c in r.challenges] == [authmethod],
          "challenges %s" % short([(c.method, c.extra) for c in r.challenges]))
    check("%s: WELCOME authid %s" % (name, want_authid), d.authid == want_authid, "authid %s" % short(d.authid))
    check("%s: WELCOME authrole %s" % (name, authrole), d.authrole == authrole, "authrole %s" % short(d.authrole))
    check("%s: WELCOME authmethod %s" % (name, authmethod), d.authmethod == authmethod, "authmethod %s" % short(d.authmethod))
    if authprovider is not None:
        check("%s: WELCOME authprovider %s" % (name, authprovider), d.authprovider == authprovider,
              "authprovider %s" % short(d.authprovider))
    if welcome_extra is not None:
        check("%s: WELCOME authextra %s" % (name, short(welcome_extra)), d.authextra == welcome_extra,
              "authextra %s" % short(d.authextra))
    if keep:
        return r
    try:
        n = await timeout(r.session.call("wamp.session.count"), 3, "wamp.session.count")
        check("%s: session usable (wamp.session.count)" % name, isinstance(n, int), "result %s" % short(n))
    except Exception as e:
        fail("%s: session usable (wamp.session.count)" % name, fmt_err(e))
    await S.close(r.session)
    return r


async def expect_abort(name, authmethods, authid, respond, want_reason, want_challenges, realm=None, authextra=None):
    r = await S.join(realm or opts.realm, authmethods, authid, authextra, respond)
    if r.details is not None:
        fail(name, "joined, want ABORT %s: authid %s authrole %s" % (want_reason, r.details.authid, r.details.authrole))
        await S.close(r.session)
        return r
    check("%s: ABORT %s" % (name, want_reason), r.reason == want_reason, "reason %s message %s" % (short(r.reason), short(r.message)))
    check("%s: %d challenge(s)" % (name, want_challenges), len(r.challenges) == want_challenges,
          "challenges %s" % short([(c.method, c.extra) for c in r.challenges]))
    return r


async def attempt(name, action, want):
    """Runs one action of an authorization check (action() returns an awaitable): want ""
    means it must succeed, else it must fail with the WAMP error URI want. Returns the
    action's value."""
    try:
        v = await timeout(action(), 3, name)
    except Exception as e:
        if want:
            check("%s: %s" % (name, want), isinstance(e, ApplicationError) and e.error == want, fmt_err(e))
        else:
            fail("%s: allowed" % name, fmt_err(e))
        return None
    if want:
        fail("%s: %s" % (name, want), "succeeded (%s)" % short(v))
    else:
        ok_("%s: allowed" % name)
    return v


async def cryptosign_checks(key, other):
    pub = key.public_key(binary=False)
    r = await expect_welcome("cryptosign ok", ["cryptosign"], "device-1", cryptosign(key), "device", "cryptosign",
                             authprovider="static", realm=REALM_CRYPTOSIGN, authextra={"pubkey": pub})
    if len(r.challenges) == 1:
        ex = r.challenges[0].extra
        check("cryptosign ok: challenge is 32 bytes hex", bool(re.fullmatch("[0-9a-f]{64}", str(ex.get("challenge")))),
              "extra %s" % short(ex))
    await expect_abort("cryptosign wrong private key", ["cryptosign"], "device-1", cryptosign(other), FAILED, 1,
                       realm=REALM_CRYPTOSIGN, authextra={"pubkey": pub})
    await expect_abort("cryptosign unauthorized public key", ["cryptosign"], "device-1", cryptosign(other), FAILED, 1,
                       realm=REALM_CRYPTOSIGN, authextra={"pubkey": other.public_key(binary=False)})


async def dynamic_checks(key):
    await expect_welcome("dynamic ticket ok", ["ticket"], "dyn-joe", ticket("dyn-ticket"), "dyn-user", "ticket",
                         authprovider="dynamic", welcome_authid="joe@dynamic", welcome_extra={"source": "interop"},
                         realm=REALM_DYNAMIC)
    await expect_abort("dynamic ticket wrong", ["ticket"], "dyn-joe", ticket("not-the-ticket"), FAILED, 1, realm=REALM_DYNAMIC)
    await expect_abort("dynamic ticket denied authid", ["ticket"], "dyn-eve", ticket("dyn-ticket"), DENIED, 1, realm=REALM_DYNAMIC)
    await expect_welcome("dynamic wampcra ok", ["wampcra"], "dyn-ann", cra("dyn-cra-secret"), "dyn-cra", "wampcra",
                         authprovider="dynamic", realm=REALM_DYNAMIC)
    await expect_welcome("dynamic cryptosign ok", ["cryptosign"], "dyn-dev", cryptosign(key), "dyn-device", "cryptosign",
                         authprovider="dynamic", realm=REALM_DYNAMIC, authextra={"pubkey": key.public_key(binary=False)})


async def authz_checks():
    r = await expect_welcome("authz limited", ["ticket"], "limited", ticket("limited-pw"), "limited", "ticket",
                             realm=REALM_AUTHZ, keep=True)
    if r.details is not None:
        s = r.session
        event = txaio.create_future()

        def on_event(*args):
            txaio.is_called(event) or txaio.resolve(event, list(args))

        await attempt("authz limited register authz.open.proc", lambda: s.register(lambda: "pong", "authz.open.proc"), "")
        await attempt("authz limited subscribe authz.open.topic", lambda: s.subscribe(on_event, "authz.open.topic"), "")
        await attempt("authz limited publish (acknowledged) authz.open.topic",
                      lambda: s.publish("authz.open.topic", "hi", options=PublishOptions(acknowledge=True, exclude_me=False)), "")
        try:
            args = await timeout(event, 3, "event on authz.open.topic")
            check("authz limited: event received on authz.open.topic", args == ["hi"], "args %s" % short(args))
        except Exception as e:
            fail("authz limited: event received on authz.open.topic", fmt_err(e))
        res = await attempt("authz limited call authz.open.proc", lambda: s.call("authz.open.proc"), "")
        check("authz limited call authz.open.proc: result pong", res == "pong", "result %s" % short(res))
        await attempt("authz limited publish (acknowledged) authz.closed.topic",
                      lambda: s.publish("authz.closed.topic", "no", options=PublishOptions(acknowledge=True)), DENIED)
        await attempt("authz limited subscribe authz.open.closed (exact rule beats prefix)",
                      lambda: s.subscribe(lambda *a: None, "authz.open.closed"), DENIED)
        await attempt("authz limited call authz.open.closed (exact rule beats prefix)", lambda: s.call("authz.open.closed"), DENIED)
        await attempt("authz limited register authz.closed.proc", lambda: s.register(lambda: "x", "authz.closed.proc"), DENIED)
        await S.close(s)

    r = await expect_welcome("authz dynuser", ["ticket"], "dynuser", ticket("dynuser-pw"), "dynuser", "ticket",
                             realm=REALM_AUTHZ, keep=True)
    if r.details is not None:
        s = r.session
        await attempt("authz dynamic authorizer subscribe authz.dyn.allowed",
                      lambda: s.subscribe(lambda *a: None, "authz.dyn.allowed"), "")
        await attempt("authz dynamic authorizer subscribe authz.dyn.denied",
                      lambda: s.subscribe(lambda *a: None, "authz.dyn.denied"), DENIED)
        await S.close(s)


async def main():
    try:
        key = cryptosign_key("INTEROP_CRYPTOSIGN_SEED")
        other = cryptosign_key("INTEROP_CRYPTOSIGN_OTHER_SEED")
    except Exception as e:
        fail("cryptosign keys", fmt_err(e))
        return

    # The realm also admits anonymous sessions: a HELLO without authmethods still joins.
    r = await S.join(opts.realm)
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

    # AutobahnPython sends any authmethods list as is; realm1 does not offer cryptosign, so
    # the router must ABORT at once.
    await expect_abort("unknown authmethod only (cryptosign)", ["cryptosign"], "joe", no_challenge, "wamp.error.no_auth_method", 0)

    # Fewer than 10 failed logins in all: the router then blocks the address for a minute.
    await cryptosign_checks(key, other)
    await dynamic_checks(key)
    await authz_checks()


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
