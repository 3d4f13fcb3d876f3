#!/usr/bin/python3
"""AutobahnPython example for switchyard (asyncio): one program that registers a
procedure, subscribes to a topic, calls the procedure and publishes an event, then exits.

    python3 examples/python/hello.py [URL]

URL: the first argument, else $SWITCHYARD_URL, else ws://127.0.0.1:8080/ws.
Exit status 0 on success, 1 on failure.

Written for Debian's python3-autobahn 22.7.1 on Python 3.11+: ApplicationRunner.run()
calls asyncio.get_event_loop(), which warns (3.12) or fails without a current loop; we
start the loop ourselves with asyncio.run() and connect with the WebSocket client factory.
(For RawSocket, rs://, use autobahn.twisted: the asyncio RawSocket client of 22.7.1 fails
on WELCOME, crossbario/autobahn-python#1592; see interop/python/scenario.py.)
"""

import asyncio
import os
import sys

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig, PublishOptions
from autobahn.websocket.util import parse_url

URL = (sys.argv[1:] or [os.environ.get("SWITCHYARD_URL") or "ws://127.0.0.1:8080/ws"])[0]
REALM = "realm1"


class Hello(ApplicationSession):
    """Callee, subscriber, caller and publisher in one session."""

    async def onJoin(self, details):
        # Report the outcome (or the first error) to main() through the "done" future.
        done = self.config.extra["done"]
        try:
            await self.work(details)
            done.done() or done.set_result(True)
        except Exception as e:
            done.done() or done.set_exception(e)
        self.leave()

    async def work(self, details):
        print("joined", details.realm, "as session", details.session)

        # Callee: com.example.add2 returns the sum of its arguments.
        await self.register(lambda a, b: a + b, "com.example.add2")

        # Subscriber. By default the router does not send a publisher its own events,
        # so we publish with exclude_me=False to see it here.
        got = asyncio.get_running_loop().create_future()
        await self.subscribe(lambda msg: got.done() or got.set_result(msg), "com.example.hello")

        # Caller.
        result = await self.call("com.example.add2", 2, 3)
        print("add2(2, 3) =", result)
        assert result == 5, result

        # Publisher: acknowledge=True waits until the router accepted the event.
        await self.publish("com.example.hello", "hello from Python",
                           options=PublishOptions(acknowledge=True, exclude_me=False))
        print("event:", await asyncio.wait_for(got, 5))

    def onDisconnect(self):
        done = self.config.extra["done"]
        done.done() or done.set_exception(ConnectionError("disconnected before the example finished"))


async def main():
    done = asyncio.get_running_loop().create_future()
    factory = WampWebSocketClientFactory(
        lambda: Hello(ComponentConfig(REALM, extra={"done": done})), url=URL)
    secure, host, port = parse_url(URL)[:3]
    await asyncio.get_running_loop().create_connection(factory, host, port, ssl=secure or None)
    await asyncio.wait_for(done, 10)
    print("ok")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 15))
    except Exception as e:
        print("error:", repr(e), file=sys.stderr)
        sys.exit(1)
