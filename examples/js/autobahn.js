// AutobahnJS example for switchyard (Node.js): one program that registers a procedure,
// subscribes to a topic, calls the procedure and publishes an event, then exits.
//
//   npm install autobahn        (or reuse interop/js: NODE_PATH=interop/js/node_modules)
//   node examples/js/autobahn.js [URL] [json|msgpack|cbor]
//
// URL: the first argument, else $SWITCHYARD_URL, else ws://127.0.0.1:8080/ws.
// The second argument picks the serializer (default json). Exit status 0 on success.
'use strict';
const autobahn = require('autobahn');

const url = process.argv[2] || process.env.SWITCHYARD_URL || 'ws://127.0.0.1:8080/ws';
const which = process.argv[3] || 'json';

// How to pick a serializer: AutobahnJS offers the router the ones listed here, in order.
// MsgPack and CBOR are built in (they need the optional msgpack5 and cbor packages,
// which `npm install autobahn` brings).
const serializers = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};
if (!serializers[which]) {
  console.error('serializer must be json, msgpack or cbor');
  process.exit(2);
}

const connection = new autobahn.Connection({
  realm: 'realm1',
  transports: [{ type: 'websocket', url, serializers: [serializers[which]()] }],
  max_retries: 0, // an example should fail, not retry forever
});

// Give up after 10 seconds.
const timer = setTimeout(() => { console.error('error: timed out'); process.exit(1); }, 10000);

connection.onopen = async (session) => {
  try {
    console.log('joined', session.realm, 'as session', session.id, 'with', which);

    // Callee: com.example.add2 returns the sum of its arguments.
    await session.register('com.example.add2', (args) => args[0] + args[1]);

    // Subscriber. The router does not send a publisher its own events unless it
    // publishes with exclude_me: false, as below.
    let onHello;
    const got = new Promise((resolve) => { onHello = resolve; });
    await session.subscribe('com.example.hello', (args) => onHello(args[0]));

    // Caller.
    const sum = await session.call('com.example.add2', [2, 3]);
    console.log('add2(2, 3) =', sum);
    if (sum !== 5) throw new Error('add2 returned ' + sum);

    // Publisher: acknowledge waits until the router accepted the event.
    await session.publish('com.example.hello', ['hello from AutobahnJS'], {}, { acknowledge: true, exclude_me: false });
    console.log('event:', await got);
    console.log('ok');
    clearTimeout(timer);
    connection.close();
  } catch (e) {
    console.error('error:', e.error || e.message || e, e.args || '');
    process.exit(1);
  }
};

// Called when the connection could not open or was lost; 'closed' is our own close().
connection.onclose = (reason, details) => {
  if (reason !== 'closed') {
    console.error('error: connection', reason, details && details.reason);
    process.exit(1);
  }
  return true; // do not reconnect
};

connection.open();
