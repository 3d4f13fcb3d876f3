#!/usr/bin/python3
"""AutobahnPython WAMP-Cookie scenario for switchyard. Run by interop/cookie_test.go.

    /usr/bin/python3 cookie.py --url ws://HOST:PORT/ws [--serializer json|msgpack|cbor]
                               [--framework auto|asyncio|twisted] [--timeout 20]

The router must run the listener and realm of cookie_test.go (startCookieNode): a
WebSocket listener that hands out the cookie cbtid on each upgrade, and realm1 with ticket
joe/s3cret (role user) and WAMP-Cookie.

Checks, one connection each:

  - first connection, no cookie sent: the upgrade response has Set-Cookie cbtid=TOKEN with
    HttpOnly and SameSite=Strict (no Secure: plain TCP); the session offers
    ["cookie", "ticket"] as joe, gets one ticket CHALLENGE, joins with authmethod ticket;
  - second connection sending Cookie: cbtid=TOKEN, offering only ["cookie"] and no authid:
    no CHALLENGE, WELCOME authid joe, authrole user, authmethod cookie, authprovider
    static; the session works (a call to wamp.session.count);
  - a bogus cookie (cbtid=AAAA...), offering only ["cookie"]: ABORT
    wamp.error.no_auth_method, no CHALLENGE;
  - no cookie at all, offering only ["cookie"]: likewise.

The request header goes in with WampWebSocketClientFactory(headers={"Cookie": ...})
(asyncio and Twisted alike); the response headers come from the ConnectionResponse the
protocol's onConnect(response) receives (response.headers, names lower-cased).

Option parsing, checks, the hard timeout and the transport helpers come from scenario.py
(imported; its --role, --realm and --prefix are ignored).
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, short, timeout

import re  # noqa: E402

opts = S.opts
S.TAG = S.script_tag("cookie")
REALM = "realm1"
COOKIE = "cbtid"


async def join(authmethods, authid=None, ticket=None, cookie=None):
    """scenario.join in REALM over WebSocket, sending Cookie: cbtid=cookie when given and
    answering a ticket CHALLENGE with ticket (when given; no other CHALLENGE)."""
    headers = {"Cookie": "%s=%s" % (COOKIE, cookie)} if cookie is not None else None
    respond = S.ticket(ticket) if ticket is not None else S.no_challenge
    return await S.join(REALM, authmethods, authid, respond=respond, headers=headers)


def set_cookie(headers):
    """The cbtid value and attributes of the Set-Cookie header in headers, or (None, '')."""
    raw = (headers or {}).get("set-cookie", "")
    m = re.search(r"(?:^|,\s*)%s=([^;,\s]+)((?:;[^,]*)*)" % COOKIE, raw)
    if not m:
        return None, raw
    return m.group(1), m.group(2)


async def main():
    # 1. No cookie yet: the router sets one; ticket authenticates and the cookie is
    # remembered for joe.
    r = await join(["cookie", "ticket"], "joe", ticket="s3cret")
    token, attrs = set_cookie(r.headers)
    check("first connection: upgrade response sets cookie %s" % COOKIE, token is not None,
          "response headers %s" % short(r.headers))
    if token is not None:
        low = attrs.lower()
        check("first connection: Set-Cookie has HttpOnly and SameSite=Strict, no Secure on plain TCP",
              "httponly" in low and "samesite=strict" in low and "secure" not in low.replace("samesite", ""),
              "attributes %s" % short(attrs))
    if r.details is None:
        fail("first connection: ticket joe", "not joined: %s %s" % (r.reason, r.message))
        return
    d = r.details
    check("first connection: one ticket CHALLENGE (cookie offered, none sent)",
          [c.method for c in r.challenges] == ["ticket"], "challenges %s" % short([c.method for c in r.challenges]))
    check("first connection: WELCOME authid joe, authrole user, authmethod ticket",
          (d.authid, d.authrole, d.authmethod) == ("joe", "user", "ticket"),
          "authid %s authrole %s authmethod %s" % (d.authid, d.authrole, d.authmethod))
    await S.close(r.session)
    if token is None:
        return

    # 2. The cookie alone: joe again, without a CHALLENGE.
    r = await join(["cookie"], cookie=token)
    if r.details is None:
        fail("cookie rejoin", "not joined: %s %s (challenges %s)" % (r.reason, r.message, [c.method for c in r.challenges]))
    else:
        d = r.details
        check("cookie rejoin: no CHALLENGE", not r.challenges, "challenges %s" % short([c.method for c in r.challenges]))
        check("cookie rejoin: WELCOME authid joe", d.authid == "joe", "authid %s" % short(d.authid))
        check("cookie rejoin: WELCOME authrole user", d.authrole == "user", "authrole %s" % short(d.authrole))
        check("cookie rejoin: WELCOME authmethod cookie", d.authmethod == "cookie", "authmethod %s" % short(d.authmethod))
        check("cookie rejoin: WELCOME authprovider static", d.authprovider == "static",
              "authprovider %s" % short(d.authprovider))
        try:
            n = await timeout(r.session.call("wamp.session.count"), 3, "wamp.session.count")
            check("cookie rejoin: session usable (wamp.session.count)", isinstance(n, int), "result %s" % short(n))
        except Exception as e:
            fail("cookie rejoin: session usable (wamp.session.count)", fmt_err(e))
        await S.close(r.session)

    # 3. A cookie the router never issued, and no cookie: no method left.
    for name, cookie in (("bogus cookie", "A" * 32), ("no cookie", None)):
        r = await join(["cookie"], cookie=cookie)
        if r.details is not None:
            fail(name, "joined as %s/%s (authmethod %s)" % (r.details.authid, r.details.authrole, r.details.authmethod))
            await S.close(r.session)
            continue
        check("%s, offering only cookie: ABORT wamp.error.no_auth_method" % name, r.reason == "wamp.error.no_auth_method",
              "reason %s message %s" % (short(r.reason), short(r.message)))
        check("%s: no CHALLENGE" % name, not r.challenges, "challenges %s" % short([c.method for c in r.challenges]))


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
