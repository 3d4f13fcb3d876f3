#!/usr/bin/env node
// wampy.js interop scenario for switchyard. Run by interop/wampy_test.go.
//
//   node wampy.js --url ws://host:port/path [--serializer json|msgpack|cbor]
//                 [--realm realm1] [--prefix interop.w.] [--timeout 20] [--role solo]
//
// wampy.js 8.0.2 (npm wampy, pinned in package.json) with its own serializers: JSON,
// MsgpackSerializer (msgpackr) and CborSerializer (cbor-x). Three sessions in one process:
// S (callee, subscriber) and C (caller, publisher) speak --serializer; P (a second caller
// and subscriber) speaks another serializer (cbor for a json run, json otherwise), so the
// router transcodes payloads between them. --role is accepted and ignored (the Go side
// passes it to every script).
//
// Checks: join; ids are Numbers (typeof 'number', see checkID for MessagePack); call with
// args/kwargs (integer boundaries, strings, nesting) both ways; a call to a missing
// procedure (wamp.error.no_such_procedure); a callee error with args/kwargs; publish with
// acknowledgement and args/kwargs, events at S and P with the publisher disclosed;
// publish with eligible: [S's session id]; unsubscribe and unregister.
//
// Prints "ok   <check>" or "FAIL <check>: <detail>" per check, then PASS or FAILED, and
// exits non-zero on any failure or after the hard timeout.
'use strict';

const path = require('path');
const { Wampy } = require('wampy');
const { MsgpackSerializer } = require('wampy/MsgpackSerializer.js');
const { CborSerializer } = require('wampy/CborSerializer.js');
const { JsonSerializer } = require('wampy/JsonSerializer.js');
// The ws package wampy itself depends on (wampy needs a WebSocket class in Node).
const WebSocket = require(require.resolve('ws', { paths: [path.dirname(require.resolve('wampy'))] }));
const { Unpackr, pack } = require(require.resolve('msgpackr', { paths: [path.dirname(require.resolve('wampy'))] }));

// ---------------------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { url: '', realm: 'realm1', serializer: 'json', prefix: 'interop.w.', timeout: 20 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) usage('bad argument ' + k);
    switch (k) {
      case '--url': o.url = v; break;
      case '--realm': o.realm = v; break;
      case '--serializer': o.serializer = v; break;
      case '--prefix': o.prefix = v; break;
      case '--timeout': o.timeout = Number(v); break;
      case '--role': break;
      default: usage('unknown flag ' + k);
    }
  }
  if (!o.url) usage('--url is required');
  if (!['json', 'msgpack', 'cbor'].includes(o.serializer)) usage('bad --serializer ' + o.serializer);
  if (!o.prefix.endsWith('.')) o.prefix += '.';
  return o;
}

function usage(msg) {
  console.error('wampy.js: ' + msg);
  console.error('usage: node wampy.js --url URL [--serializer json|msgpack|cbor] [--realm R] [--prefix P] [--timeout S]');
  process.exit(2);
}

const opts = parseArgs(process.argv);
const peerSerializer = opts.serializer === 'json' ? 'cbor' : 'json';
const tag = `[wampy ${opts.url.split(':')[0]} ${opts.serializer}+${peerSerializer}]`;
const P = opts.prefix;

// ---------------------------------------------------------------------------- checks

let failures = 0;
const t0 = Date.now();
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(6) + 's';
const show = (v) => JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() + 'n' : x));

function ok(name) { console.log(`ok   ${elapsed()} ${tag} ${name}`); }
function fail(name, detail) { failures++; console.log(`FAIL ${elapsed()} ${tag} ${name}: ${detail}`); }
function check(name, cond, detail) {
  if (cond) ok(name); else fail(name, detail || 'condition false');
  return cond;
}

function finish() {
  const code = failures > 0 ? 1 : 0;
  console.log(code === 0 ? `PASS ${tag}` : `FAILED ${tag} (${failures} failed checks)`);
  setTimeout(() => process.exit(code), 50);
}

const hardTimer = setTimeout(() => {
  fail('hard timeout', `scenario did not finish within ${opts.timeout}s`);
  failures++;
  finish();
}, opts.timeout * 1000);
hardTimer.unref();

process.on('unhandledRejection', (e) => { fail('unhandled rejection', fmtErr(e)); finish(); });

function fmtErr(e) {
  if (!e) return String(e);
  const parts = [e.name || 'Error', e.message];
  if (e.errorUri) parts.push('uri=' + e.errorUri);
  if (e.argsList) parts.push('args=' + show(e.argsList));
  if (e.details && Object.keys(e.details).length) parts.push('details=' + show(e.details));
  return parts.join(' ');
}

// checkID checks a WAMP id: an integer in [1, 2^53] of type 'number'. One exception:
// wampy's MsgpackSerializer calls msgpackr's unpack with its defaults, which read every
// MessagePack uint64 (0xcf), the smallest form of any integer >= 2^32, as a BigInt. An
// id below 2^32 must still be a number (the router writes it in 1 to 5 bytes); an id at
// or above 2^32 may be a BigInt on that serializer only. strictNumbers turns that
// exception off (for the session that decodes with int64AsType 'auto').
function checkID(name, v, ser, strictNumbers) {
  const inRange = (x) => x >= 1 && x <= 2 ** 53;
  if (typeof v === 'number') {
    return check(name + ' is a Number id', Number.isInteger(v) && inRange(v), `got ${v}`);
  }
  if (typeof v === 'bigint' && ser === 'msgpack' && !strictNumbers && v >= 2n ** 32n && v <= 2n ** 53n) {
    ok(`${name} is ${v}n: msgpackr reads MessagePack uint64 as BigInt (client limit, see README)`);
    return true;
  }
  return check(name + ' is a Number id', false, `got ${typeof v} ${show(v)}`);
}

// ---------------------------------------------------------------------------- fixture

// Integers at every MessagePack/CBOR encoding boundary that JavaScript encoders write as
// integers ([-2^31, 2^32-1]); they must come back as the same Numbers.
const INTS = [0, 1, 23, 24, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1,
  -1, -24, -25, -32, -33, -128, -129, -256, -257, -32768, -32769, -65536, -65537, -(2 ** 31)];
const ARGS = [...INTS, 'héllo ☃', true, null, 1.5, ['nested', { k: [1, -1] }]];
const KWARGS = { ints: INTS, s: 'x', obj: { a: 1, b: [true, false] }, neg: -129, big16: 65535 };

// sameValue compares like deepEqual and also requires the same typeof for every leaf.
function sameValue(a, b) {
  if (typeof a !== typeof b) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a && typeof a === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b || {}).sort();
    return b !== null && sameValue(ka, kb) && ka.every((k) => sameValue(a[k], b[k]));
  }
  return a === b;
}

// ---------------------------------------------------------------------------- sessions

function serializerFor(name) {
  switch (name) {
    case 'msgpack': return new MsgpackSerializer();
    case 'cbor': return new CborSerializer();
    case 'msgpack-auto': {
      // wampy's documented custom-serializer interface; msgpackr told to return Numbers
      // for uint64 values up to 2^53.
      const unpackr = new Unpackr({ int64AsType: 'auto', mapsAsObjects: true, useRecords: false });
      return { protocol: 'msgpack', isBinary: true, encode: (d) => pack(d), decode: (d) => unpackr.unpack(new Uint8Array(d)) };
    }
  }
  return new JsonSerializer();
}

async function join(name, ser) {
  let closedEarly = null;
  const w = new Wampy(opts.url, {
    ws: WebSocket,
    realm: opts.realm,
    autoReconnect: false,
    serializer: serializerFor(ser),
    onError: (e) => { closedEarly = e; fail(`${name} connection error`, fmtErr(e)); },
  });
  try {
    const details = await w.connect();
    check(`${name} (${ser}) joins ${opts.realm}`, details && details.realm === opts.realm, show(details));
    checkID(`${name} session id`, w.getSessionId(), ser === 'msgpack-auto' ? 'msgpack' : ser, ser === 'msgpack-auto');
  } catch (e) {
    fail(`${name} (${ser}) joins`, fmtErr(closedEarly || e));
    throw e;
  }
  return w;
}

async function step(name, f) {
  try {
    return await f();
  } catch (e) {
    fail(name, fmtErr(e));
    return undefined;
  }
}

function waitFor(pred, ms) {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve(true);
      if (Date.now() - start > ms) return resolve(false);
      setTimeout(tick, 10);
    };
    tick();
  });
}

// ---------------------------------------------------------------------------- scenario

async function main() {
  const ser = opts.serializer;
  const S = await join('S', ser);
  const C = await join('C', ser);
  const Pe = await join('P', peerSerializer);
  const sid = S.getSessionId();
  const cid = C.getSessionId();

  // RPC: echo and fail on S.
  let invocations = 0;
  const reg = await step('S register echo', () => S.register(P + 'echo', (inv) => {
    invocations++;
    check('echo invocation args/kwargs arrive unchanged', sameValue(inv.argsList, ARGS) && sameValue(inv.argsDict, KWARGS),
      `args=${show(inv.argsList)} kwargs=${show(inv.argsDict)}`);
    return { argsList: inv.argsList, argsDict: inv.argsDict };
  }));
  if (reg) checkID('registration id', reg.registrationId, ser);
  await step('S register fail', () => S.register(P + 'fail', () => {
    throw { error: P + 'error.custom', argsList: ['bad', -129], argsDict: { why: 'test', code: 65536 } };
  }));

  for (const [name, caller] of [['C', C], ['P', Pe]]) {
    const res = await step(`${name} call echo`, () => caller.call(P + 'echo', { argsList: ARGS, argsDict: KWARGS }));
    if (res) {
      check(`${name} call echo: result args/kwargs equal, same types`, sameValue(res.argsList, ARGS) && sameValue(res.argsDict, KWARGS),
        `args=${show(res.argsList)} kwargs=${show(res.argsDict)}`);
    }
    try {
      await caller.call(P + 'missing', [1]);
      fail(`${name} call missing procedure`, 'no error');
    } catch (e) {
      check(`${name} call missing procedure: wamp.error.no_such_procedure`, e.errorUri === 'wamp.error.no_such_procedure', fmtErr(e));
    }
    try {
      await caller.call(P + 'fail', [1]);
      fail(`${name} callee error`, 'no error');
    } catch (e) {
      check(`${name} callee error reaches the caller with args/kwargs`,
        e.errorUri === P + 'error.custom' && sameValue(e.argsList, ['bad', -129]) && sameValue(e.argsDict, { why: 'test', code: 65536 }),
        fmtErr(e) + ' kwargs=' + show(e.argsDict));
    }
  }

  // PubSub: S and P subscribe, C publishes (wampy always asks for acknowledgement).
  const events = { S: [], P: [] };
  const subS = await step('S subscribe', () => S.subscribe(P + 'topic', (e) => events.S.push(e)));
  if (subS) checkID('subscription id', subS.subscriptionId, ser);
  const subP = await step('P subscribe', () => Pe.subscribe(P + 'topic', (e) => events.P.push(e)));
  if (subP) checkID('P subscription id', subP.subscriptionId, peerSerializer);

  const pub = await step('C publish args/kwargs acknowledged', () =>
    C.publish(P + 'topic', { argsList: ARGS, argsDict: KWARGS }, { disclose_me: true }));
  if (pub) checkID('publication id', pub.publicationId, ser);
  for (const who of ['S', 'P']) {
    const got = await waitFor(() => events[who].length >= 1, 3000);
    if (!check(`${who} receives the event`, got, 'no event within 3s')) continue;
    const ev = events[who][0];
    check(`${who} event args/kwargs equal, same types`, sameValue(ev.argsList, ARGS) && sameValue(ev.argsDict, KWARGS),
      `args=${show(ev.argsList)} kwargs=${show(ev.argsDict)}`);
    const whoSer = who === 'S' ? ser : peerSerializer;
    if (checkID(`${who} event details.publisher`, ev.details && ev.details.publisher, whoSer)) {
      check(`${who} event publisher is C`, String(ev.details.publisher) === String(cid), `${show(ev.details)} C=${cid}`);
    }
  }

  // eligible: only S. JavaScript encoders write a session id above 2^32 as a float64.
  const before = { S: events.S.length, P: events.P.length };
  await step('C publish eligible [S]', () => C.publish(P + 'topic', ['only-S'], { eligible: [Number(sid)] }));
  check('S receives the eligible event', await waitFor(() => events.S.length > before.S, 3000), 'no event within 3s');
  await waitFor(() => false, 200);
  check('P does not receive the eligible event', events.P.length === before.P, show(events.P.slice(before.P)));

  if (ser === 'msgpack') {
    // The router's MessagePack ids are plain uint64 of integers <= 2^53: with msgpackr told
    // to read those as Numbers, every id is a Number.
    const M = await join('M', 'msgpack-auto');
    const p2 = await step('M publish acknowledged', () => M.publish(P + 'topic', ['m']));
    if (p2) checkID('M publication id', p2.publicationId, 'msgpack', true);
    const got = await waitFor(() => events.S.length > before.S + 1, 3000);
    if (check('S receives M\'s event', got, 'no event within 3s')) {
      check('S event from M has args', sameValue(events.S[events.S.length - 1].argsList, ['m']), show(events.S[events.S.length - 1]));
    }
    await step('M disconnect', () => M.disconnect());
  }

  // Unsubscribe and unregister, then check they took effect.
  if (subS) {
    const r = await step('S unsubscribe', () => S.unsubscribe(subS.subscriptionId));
    check('S unsubscribe acknowledged', r && r.topic === P + 'topic', show(r));
  }
  const n = events.S.length;
  await step('C publish after unsubscribe', () => C.publish(P + 'topic', ['after']));
  await waitFor(() => events.P.length >= 3, 2000);
  check('S gets no event after unsubscribe', events.S.length === n, show(events.S.slice(n)));
  if (subP) await step('P unsubscribe', () => Pe.unsubscribe(P + 'topic'));

  const u = await step('S unregister echo', () => S.unregister(P + 'echo'));
  check('S unregister acknowledged', u && u.topic === P + 'echo', show(u));
  try {
    await C.call(P + 'echo', [1]);
    fail('call after unregister', 'no error');
  } catch (e) {
    check('call after unregister: wamp.error.no_such_procedure', e.errorUri === 'wamp.error.no_such_procedure', fmtErr(e));
  }
  await step('S unregister fail', () => S.unregister(P + 'fail'));
  check('echo invoked once per call', invocations === 2, `invocations=${invocations}`);

  for (const [name, w] of [['S', S], ['C', C], ['P', Pe]]) {
    await step(`${name} disconnect`, () => w.disconnect());
  }
}

main().then(finish, (e) => { fail('scenario', fmtErr(e)); finish(); });
