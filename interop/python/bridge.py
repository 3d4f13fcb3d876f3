#!/usr/bin/python3
"""AutobahnPython peer of the HTTP bridge test (interop/bridge_test.go).

    /usr/bin/python3 bridge.py URL [TIMEOUT]

Joins realm1 over WebSocket (asyncio; started with asyncio.run() and the WebSocket
client factory, as examples/python/hello.py explains), registers
  com.ok.add(a, b)  -> a + b, with kwargs {"caller": <caller_authid or None>}
  com.ok.fail()     -> raises ApplicationError("com.app.oops", "broken", why="test")
subscribes to com.ok.news, then prints "READY". Each event it gets is printed as
"EVENT <json of {args, kwargs, publisher_authid}>". It stops when stdin closes or after
TIMEOUT seconds (default 20), exit status 0 (1 when it could not join).
"""

import asyncio
import json
import sys

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig, EventDetails, RegisterOptions, SubscribeOptions
from autobahn.websocket.util import parse_url

URL = sys.argv[1]
TIMEOUT = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0


class Peer(ApplicationSession):
    async def onJoin(self, details):
        ready = self.config.extra["ready"]
        try:
            def add(a, b, details=None):
                return {"sum": a + b, "caller": getattr(details, "caller_authid", None)}

            def fail():
                raise ApplicationError("com.app.oops", "broken", why="test")

            def on_event(*args, **kwargs):
                d = kwargs.pop("details", None)
                print("EVENT " + json.dumps({"args": list(args), "kwargs": kwargs,
                                              "publisher_authid": getattr(d, "publisher_authid", None)}),
                      flush=True)

            await self.register(add, "com.ok.add", options=RegisterOptions(details_arg="details"))
            await self.register(fail, "com.ok.fail")
            await self.subscribe(on_event, "com.ok.news", options=SubscribeOptions(details_arg="details"))
            ready.done() or ready.set_result(True)
        except Exception as e:
            ready.done() or ready.set_exception(e)

    def onDisconnect(self):
        ready = self.config.extra["ready"]
        ready.done() or ready.set_exception(ConnectionError("disconnected"))


async def main():
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    factory = WampWebSocketClientFactory(lambda: Peer(ComponentConfig("realm1", extra={"ready": ready})), url=URL)
    secure, host, port = parse_url(URL)[:3]
    await loop.create_connection(factory, host, port, ssl=secure or None)
    await asyncio.wait_for(ready, 10)
    print("READY", flush=True)
    # Run until stdin closes (the test is done) or the hard timeout.
    eof = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait([eof], timeout=TIMEOUT)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:
        print("error: " + repr(e), file=sys.stderr, flush=True)
        sys.exit(1)
    # The stdin reader thread may still block: leave at once.
    import os
    os._exit(0)
