#!/usr/bin/python3
"""AutobahnPython permessage-deflate scenario for switchyard. Run by interop/compression_test.go.

    /usr/bin/python3 compression.py --url ws://HOST:PORT/ws [--serializer json|msgpack|cbor]
                                    [--framework auto|asyncio|twisted] [--prefix P.] [--timeout 20]

The router's WebSocket listener has compression on. One connection offers
permessage-deflate (PerMessageDeflateOffer with client_max_window_bits, context takeover
allowed) and checks:

  - the upgrade response accepts permessage-deflate: the protocol's
    websocket_extensions_in_use holds it, with server_no_context_takeover;
  - a subscriber and a callee on the same session: a 6 KiB event published with
    exclude_me=False comes back intact, and a call with a 6 KiB argument to an echo
    procedure returns it intact (compressed both ways: the Go side checks the router's
    deflate counters);
  - a small call (below the router's min_size, sent uncompressed by the router) works.

Option parsing, checks, the hard timeout and the transport helpers come from scenario.py.
"""

import scenario as S  # (parses the same command line)
from scenario import check, fail, fmt_err, short, timeout

import txaio  # noqa: E402
from autobahn.wamp.types import PublishOptions, SubscribeOptions  # noqa: E402

opts = S.opts
S.TAG = S.script_tag("compression")

BIG = ("switchyard compresses this line; " * 200)[:6144]


async def main():
    r = await S.join(opts.realm, compress=True, on_lost=lambda why: fail("connection", why))
    if r.details is None:
        fail("join with permessage-deflate offered", "not joined: %s %s (%s)" % (r.reason, r.message, r.error))
        return
    session = r.session
    exts = list(getattr(r.protocol, "websocket_extensions_in_use", []) or [])
    check("permessage-deflate negotiated", len(exts) == 1 and exts[0].EXTENSION_NAME == "permessage-deflate",
          "extensions in use %s" % short([str(e) for e in exts]))
    if exts:
        e = exts[0]
        check("router answers server_no_context_takeover", getattr(e, "server_no_context_takeover", False),
              "extension %s" % short(e.__json__() if hasattr(e, "__json__") else str(e)))

    got = txaio.create_future()

    def on_event(payload):
        if not txaio.is_called(got):
            txaio.resolve(got, payload)

    topic, proc = opts.prefix + "big", opts.prefix + "echo"
    await timeout(session.subscribe(on_event, topic, options=SubscribeOptions()), 3, "SUBSCRIBED")
    await timeout(session.register(lambda x: x, proc), 3, "REGISTERED")
    try:
        await timeout(session.publish(topic, BIG, options=PublishOptions(acknowledge=True, exclude_me=False)), 3,
                      "PUBLISHED")
        ev = await timeout(got, 3, "EVENT")
        check("6 KiB event arrives intact", ev == BIG, "got %d chars" % len(ev or ""))
    except Exception as e:
        fail("6 KiB event arrives intact", fmt_err(e))
    try:
        res = await timeout(session.call(proc, BIG), 3, "RESULT")
        check("6 KiB call result intact", res == BIG, "got %d chars" % len(res or ""))
    except Exception as e:
        fail("6 KiB call result intact", fmt_err(e))
    try:
        res = await timeout(session.call(proc, "tiny"), 3, "RESULT")
        check("small call result intact", res == "tiny", "got %s" % short(res))
    except Exception as e:
        fail("small call result intact", fmt_err(e))
    await S.close(session)


S.main = main  # scenario.guarded() runs S.main under the hard timeout

if __name__ == "__main__":
    S.run()
