#!/usr/bin/python3
"""What AutobahnPython (Debian 22.7.1) can do over WAMP-Flatbuffers, for
interop/flatbuffers_test.go (named so as not to shadow the flatbuffers module). Prints one JSON object per line on stdout:

    {"step": NAME, "ok": BOOL, ...facts...}

Steps:
  event_in   unserialize the EVENT (hex in argv[1]) that switchyard's codec wrote
  publish    serialize a PUBLISH: its hex, for switchyard's codec to read
  hello      serialize a HELLO (what joining needs)
  join       join realm1 over WebSocket at argv[2] offering only wamp.2.flatbuffers
"""
import asyncio
import binascii
import json
import sys

import txaio

txaio.use_asyncio()

from autobahn.wamp import message, role  # noqa: E402
from autobahn.wamp import serializer as s  # noqa: E402


def out(step, ok, **facts):
    facts.update(step=step, ok=ok)
    print(json.dumps(facts), flush=True)


ser = s.FlatBuffersSerializer()

try:
    [ev] = ser.unserialize(binascii.unhexlify(sys.argv[1]), isBinary=True)
    out("event_in", True, type=type(ev).__name__, subscription=ev.subscription, publication=ev.publication,
        args=ev.args, kwargs=ev.kwargs, publisher=ev.publisher, topic=ev.topic)
except Exception as e:  # noqa: BLE001 - the facts are the point
    out("event_in", False, error="%s: %s" % (type(e).__name__, e))

try:
    pub = message.Publish(7, "com.example.fb", args=["hello", 42], kwargs={"k": "v"}, acknowledge=True)
    data, _ = ser.serialize(pub)
    out("publish", True, hex=binascii.hexlify(data).decode())
except Exception as e:  # noqa: BLE001
    out("publish", False, error="%s: %s" % (type(e).__name__, e))

try:
    ser.serialize(message.Hello("realm1", {"subscriber": role.RoleSubscriberFeatures()}))
    out("hello", True)
except Exception as e:  # noqa: BLE001
    out("hello", False, error="%s: %r" % (type(e).__name__, e))


async def join(url):
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.websocket.util import parse_url

    done = asyncio.get_running_loop().create_future()

    class Session(ApplicationSession):
        def onConnect(self):
            try:
                self.join("realm1")
            except Exception as e:  # noqa: BLE001
                if not done.done():
                    done.set_result(("join", "%s: %r" % (type(e).__name__, e)))

        def onJoin(self, details):
            if not done.done():
                done.set_result(("joined", details.session))

        def onDisconnect(self):
            if not done.done():
                done.set_result(("disconnected", None))

    _, host, port, _, _, _ = parse_url(url)
    factory = WampWebSocketClientFactory(lambda: Session(), url=url, serializers=[s.FlatBuffersSerializer()])
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(factory, host, port)
    try:
        return await asyncio.wait_for(done, 5)
    except asyncio.TimeoutError:
        return ("timeout", None)
    finally:
        transport.close()


try:
    what, detail = asyncio.run(join(sys.argv[2]))
    out("join", what == "joined", outcome=what, detail=detail)
except Exception as e:  # noqa: BLE001
    out("join", False, outcome="exception", detail="%s: %r" % (type(e).__name__, e))
