#!/usr/bin/python3
"""AutobahnPython TLS scenario for switchyard: TLS client-certificate auth and TLS
failures. Run by interop/tls_test.go.

    /usr/bin/python3 tls.py --url wss://HOST:PORT/ws|rss://HOST:PORT [--serializer json|msgpack|cbor]
                            [--framework auto|asyncio|twisted] [--timeout 20]

The router must run a TLS listener and the realms of tls_test.go (startTLSNode): its
certificate is issued by the CA in env INTEROP_TLS_CA, it asks for client certificates of
that CA, realm1 is anonymous and realm tlsauth has the tls principals alice (authid from
the certificate's CN, role device) and bob (authid robert, role user). Env
INTEROP_TLS_DIR holds the client certificates NAME.crt / NAME.key for alice, bob, eve (same
CA, no principal) and outsider (CN alice, issued by a CA the router does not trust).

Checks, one connection each, trusting the CA of INTEROP_TLS_CA:

  - alice joins tlsauth offering only authmethod tls: no CHALLENGE, WELCOME authid alice,
    authrole device, authmethod tls, authprovider static; then a call and an event round
    trip on that session;
  - bob likewise: WELCOME authid robert, authrole user;
  - eve: ABORT wamp.error.authentication_failed (valid certificate, no principal);
  - no client certificate, authmethods [tls]: ABORT wamp.error.no_auth_method;
  - not trusting the test CA (system trust store): the TLS handshake fails, the library
    reports a connection failure (certificate verify failed), no WELCOME and no ABORT;
  - presenting outsider's certificate: the router rejects it in the TLS handshake (alert
    unknown ca), so the connection fails likewise.

asyncio takes an ssl.SSLContext (create_default_context(cafile=...), load_cert_chain);
Twisted takes optionsForClientTLS(trustRoot=..., clientCertificate=...) (scenario.py,
open_transport). RawSocket runs on Twisted only (see scenario.py).

Option parsing, checks, the hard timeout and the transport helpers come from scenario.py
(imported; its --role, --realm and --prefix are ignored).
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, short, timeout

import os  # noqa: E402
import re  # noqa: E402

import txaio  # noqa: E402
from autobahn.wamp.types import PublishOptions  # noqa: E402

opts = S.opts
S.TAG = S.script_tag("tls")
REALM_TLS = "tlsauth"
CA = os.environ.get("INTEROP_TLS_CA", "")
DIR = os.environ.get("INTEROP_TLS_DIR", "")


def files(cert=None, trust=True):
    """The TLSFiles of a connection: trusting the test CA (else the system's trust store)
    and presenting the client certificate cert of INTEROP_TLS_DIR (None: none)."""
    if cert is None:
        return S.TLSFiles(ca=CA if trust else None)
    return S.TLSFiles(ca=CA if trust else None, cert=os.path.join(DIR, cert + ".crt"), key=os.path.join(DIR, cert + ".key"))


async def join(tls, authmethods, realm=REALM_TLS):
    """scenario.join of realm offering authmethods over a connection with tls (TLSFiles),
    expecting no CHALLENGE; a failure to connect lands in Result.error."""
    return await S.join(realm, authmethods, tls=tls, connect_errors=True)


def error_text(e):
    return "%s: %s" % (type(e).__name__, e) if e is not None else "none"


async def round_trip(name, s, key):
    """A call and an event round trip on session s (URIs tls.KEY.*)."""
    proc, topic = "tls.%s.echo" % key, "tls.%s.topic" % key
    event = txaio.create_future()

    def on_event(*args):
        txaio.is_called(event) or txaio.resolve(event, list(args))

    try:
        await timeout(s.register(lambda *a: list(a), proc), 3, "register")
        res = await timeout(s.call(proc, "hello", 42), 3, "call")
        check("%s: call round trip" % name, res == ["hello", 42], "result %s" % short(res))
        await timeout(s.subscribe(on_event, topic), 3, "subscribe")
        await timeout(s.publish(topic, "event", 7, options=PublishOptions(acknowledge=True, exclude_me=False)), 3, "publish")
        args = await timeout(event, 3, "event")
        check("%s: event round trip" % name, args == ["event", 7], "args %s" % short(args))
    except Exception as e:
        fail("%s: call and event round trip" % name, fmt_err(e))


async def expect_welcome(name, cert, authid, authrole):
    r = await join(files(cert), ["tls"])
    if r.details is None:
        fail(name, "not joined: ABORT %s %s, connection error %s" % (r.reason, r.message, error_text(r.error)))
        return
    d = r.details
    check("%s: no CHALLENGE" % name, not r.challenges, "challenges %s" % short([c.method for c in r.challenges]))
    check("%s: WELCOME authid %s" % (name, authid), d.authid == authid, "authid %s" % short(d.authid))
    check("%s: WELCOME authrole %s" % (name, authrole), d.authrole == authrole, "authrole %s" % short(d.authrole))
    check("%s: WELCOME authmethod tls" % name, d.authmethod == "tls", "authmethod %s" % short(d.authmethod))
    check("%s: WELCOME authprovider static" % name, d.authprovider == "static", "authprovider %s" % short(d.authprovider))
    await round_trip(name, r.session, cert)
    await S.close(r.session)


async def expect_abort(name, cert, want):
    r = await join(files(cert), ["tls"])
    if r.details is not None:
        fail(name, "joined, want ABORT %s: authid %s authrole %s" % (want, r.details.authid, r.details.authrole))
        await S.close(r.session)
        return
    check("%s: ABORT %s" % (name, want), r.reason == want,
          "reason %s message %s, connection error %s" % (short(r.reason), short(r.message), error_text(r.error)))


async def expect_connect_failure(name, tls, realm, pattern):
    """The TLS handshake fails: no WELCOME, no ABORT, and the library reports a TLS error
    matching pattern."""
    r = await join(tls, None, realm=realm)
    if r.details is not None:
        fail(name, "joined %s as %s/%s" % (realm, r.details.authid, r.details.authrole))
        await S.close(r.session)
        return
    check("%s: connection fails (%s)" % (name, error_text(r.error)),
          r.reason is None and r.error is not None and re.search(pattern, error_text(r.error), re.I) is not None,
          "ABORT %s %s, connection error %s" % (short(r.reason), short(r.message), error_text(r.error)))


async def main():
    if not CA or not DIR:
        fail("environment", "INTEROP_TLS_CA and INTEROP_TLS_DIR must be set")
        return
    await expect_welcome("tls alice (static principal, authid from CN)", "alice", "alice", "device")
    await expect_welcome("tls bob (static principal with authid)", "bob", "robert", "user")
    await expect_abort("tls eve (valid certificate, no principal)", "eve", "wamp.error.authentication_failed")
    await expect_abort("tls without client certificate", None, "wamp.error.no_auth_method")
    await expect_connect_failure("not trusting the test CA", files(trust=False), "realm1", "certificate verify failed")
    await expect_connect_failure("client certificate of another CA", files("outsider"), "realm1",
                                 "unknown ca|bad certificate")


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
