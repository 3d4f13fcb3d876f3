// wampy.js example for switchyard (Node.js): one program that registers a procedure,
// subscribes to a topic, calls the procedure and publishes an event, then exits.
//
//   npm install wampy           (or reuse interop/js: NODE_PATH=interop/js/node_modules)
//   node examples/js/wampy.js [URL] [json|msgpack|cbor]
//
// URL: the first argument, else $SWITCHYARD_URL, else ws://127.0.0.1:8080/ws.
// The second argument picks the serializer (default json). Exit status 0 on success.
'use strict';
const path = require('path');
const { Wampy } = require('wampy');
const { JsonSerializer } = require('wampy/JsonSerializer.js');
const { MsgpackSerializer } = require('wampy/MsgpackSerializer.js');
const { CborSerializer } = require('wampy/CborSerializer.js');
// In Node, wampy needs a WebSocket class: the ws package it depends on.
const WebSocket = require(require.resolve('ws', { paths: [path.dirname(require.resolve('wampy'))] }));

const url = process.argv[2] || process.env.SWITCHYARD_URL || 'ws://127.0.0.1:8080/ws';
const which = process.argv[3] || 'json';
const serializers = { json: JsonSerializer, msgpack: MsgpackSerializer, cbor: CborSerializer };
if (!serializers[which]) {
  console.error('serializer must be json, msgpack or cbor');
  process.exit(2);
}

// join opens one wampy session on realm1.
async function join() {
  const wampy = new Wampy(url, {
    ws: WebSocket,
    realm: 'realm1',
    serializer: new serializers[which](),
    autoReconnect: false, // an example should fail, not retry forever
  });
  const details = await wampy.connect();
  console.log('joined', details.realm, 'as session', wampy.getSessionId(), 'with', which);
  return wampy;
}

async function main() {
  // Two sessions, as two programs would have. (A publisher does not get its own events
  // by default, and wampy 8.0.2 drops the option exclude_me: false.)
  const callee = await join();
  const caller = await join();

  // Callee: com.example.add2 returns the sum of its arguments.
  await callee.register('com.example.add2', ({ argsList }) => ({ argsList: [argsList[0] + argsList[1]] }));

  // Subscriber.
  let onHello;
  const got = new Promise((resolve) => { onHello = resolve; });
  await callee.subscribe('com.example.hello', ({ argsList }) => onHello(argsList[0]));

  // Caller.
  const res = await caller.call('com.example.add2', [2, 3]);
  console.log('add2(2, 3) =', res.argsList[0]);
  if (res.argsList[0] !== 5) throw new Error('add2 returned ' + res.argsList[0]);

  // Publisher: wampy always waits for the router's acknowledgement.
  await caller.publish('com.example.hello', ['hello from wampy.js']);
  console.log('event:', await got);
  await caller.disconnect();
  await callee.disconnect();
}

// Give up after 10 seconds.
const timer = setTimeout(() => { console.error('error: timed out'); process.exit(1); }, 10000);
main().then(() => {
  clearTimeout(timer);
  console.log('ok');
  process.exit(0);
}, (e) => {
  console.error('error:', e.errorUri || e.message || e);
  process.exit(1);
});
