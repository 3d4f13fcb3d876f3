#!/usr/bin/python3
"""AutobahnPython example for switchyard over RawSocket (Twisted): the same steps as
hello.py (register, subscribe, call, publish), then exits.

    python3 examples/python/hello_rawsocket.py [URL]

URL: the first argument, else $SWITCHYARD_URL, else rs://127.0.0.1:8080 (switchyard
serves RawSocket on its WebSocket port too). Exit status 0 on success, 1 on failure.

Twisted, not asyncio: the asyncio RawSocket client of Debian's python3-autobahn 22.7.1
fails on WELCOME (crossbario/autobahn-python#1592); the Twisted one works.
"""

import os
import sys

import txaio
txaio.use_twisted()

from autobahn.rawsocket.util import parse_url  # noqa: E402
from autobahn.twisted.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.twisted.wamp import ApplicationSession  # noqa: E402
from autobahn.wamp.serializer import MsgPackSerializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig, PublishOptions  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402

URL = (sys.argv[1:] or [os.environ.get("SWITCHYARD_URL") or "rs://127.0.0.1:8080"])[0]
REALM = "realm1"
outcome = {"ok": False}


class Hello(ApplicationSession):
    """Callee, subscriber, caller and publisher in one session."""

    @defer.inlineCallbacks
    def onJoin(self, details):
        try:
            print("joined", details.realm, "as session", details.session)
            yield self.register(lambda a, b: a + b, "com.example.add2")
            got = defer.Deferred()
            yield self.subscribe(lambda msg: got.called or got.callback(msg), "com.example.hello")
            result = yield self.call("com.example.add2", 2, 3)
            print("add2(2, 3) =", result)
            assert result == 5, result
            # exclude_me=False: the router sends the publisher its own event too.
            yield self.publish("com.example.hello", "hello over RawSocket",
                               options=PublishOptions(acknowledge=True, exclude_me=False))
            print("event:", (yield got))
            outcome["ok"] = True
        except Exception as e:
            print("error:", repr(e), file=sys.stderr)
        self.leave()

    def onDisconnect(self):
        if reactor.running:
            reactor.stop()


def main():
    _, host, port = parse_url(URL)[:3]
    factory = WampRawSocketClientFactory(lambda: Hello(ComponentConfig(REALM)), serializer=MsgPackSerializer())
    d = TCP4ClientEndpoint(reactor, host, port).connect(factory)
    d.addErrback(lambda f: (print("error:", f.getErrorMessage(), file=sys.stderr), reactor.stop()))
    reactor.callLater(10, reactor.stop)  # never hang
    reactor.run()
    if not outcome["ok"]:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
