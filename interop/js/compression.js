#!/usr/bin/env node
// AutobahnJS permessage-deflate scenario for switchyard, over WebSocket. Run by
// interop/compression_test.go.
//
//   node compression.js --url ws://HOST:PORT/ws [--serializer json|msgpack|cbor] [--prefix P.] [--timeout 20]
//
// The router's WebSocket listener has compression on. AutobahnJS 22.11.1 in Node opens
// its WebSocket with the `ws` library, which offers permessage-deflate (with
// client_max_window_bits) by default and compresses messages over 1 KiB; AutobahnJS has
// no option of its own for it. Checks (the same as ../python/compression.py):
//   - the upgrade response's Sec-WebSocket-Extensions accepts permessage-deflate with
//     server_no_context_takeover (read through the transport option `agent`, as in
//     cookie.js: AutobahnJS does not expose the response);
//   - one session subscribes and registers an echo: a 6 KiB event published with
//     exclude_me=false and a 6 KiB call come back intact (the Go side checks the
//     router's deflate counters);
//   - a small call works.
'use strict';

const S = require('./scenario.js');

const { opts, fail, check, finish, describe, fmtErr, closeConn, withTimeout } = S;
S.setTag('compression');

const BIG = 'switchyard compresses this line; '.repeat(200).slice(0, 6144);

async function main() {
  const transport = S.transportFor(opts.url);
  const r = await withTimeout(S.join({ realm: opts.realm, transport, upgrade: true }), 5000, 'join');
  if (!r.joined) {
    fail('join', `not joined: closed ${r.closeReason}, reason ${describe(r.reason)}`);
    return finish();
  }
  const ext = (r.headers && r.headers['sec-websocket-extensions']) || '';
  check('permessage-deflate negotiated', ext.includes('permessage-deflate'), `Sec-WebSocket-Extensions ${describe(ext)}`);
  check('router answers server_no_context_takeover', ext.includes('server_no_context_takeover'), `Sec-WebSocket-Extensions ${describe(ext)}`);
  const session = r.session;
  const topic = opts.prefix + 'big';
  const proc = opts.prefix + 'echo';
  let gotEvent;
  const event = new Promise((resolve) => { gotEvent = resolve; });
  try {
    await withTimeout(session.subscribe(topic, (args) => gotEvent(args[0])), 3000, 'SUBSCRIBED');
    await withTimeout(session.register(proc, (args) => args[0]), 3000, 'REGISTERED');
    await withTimeout(session.publish(topic, [BIG], {}, { acknowledge: true, exclude_me: false }), 3000, 'PUBLISHED');
    const ev = await withTimeout(event, 3000, 'EVENT');
    check('6 KiB event arrives intact', ev === BIG, `got ${(ev || '').length} chars`);
    const res = await withTimeout(session.call(proc, [BIG]), 3000, 'RESULT');
    check('6 KiB call result intact', res === BIG, `got ${(res || '').length} chars`);
    const small = await withTimeout(session.call(proc, ['tiny']), 3000, 'RESULT');
    check('small call result intact', small === 'tiny', `got ${describe(small)}`);
  } catch (e) {
    fail('compressed traffic', fmtErr(e));
  }
  await closeConn(r.conn);
  finish();
}

main().catch((e) => {
  fail('compression scenario', fmtErr(e));
  finish(1);
});
