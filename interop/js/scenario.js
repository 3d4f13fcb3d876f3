#!/usr/bin/env node
// AutobahnJS interop scenario for switchyard. Run by interop/interop_test.go.
//
//   node scenario.js --role solo|serve|drive --url URL [--realm realm1]
//                    [--serializer json|msgpack|cbor] [--prefix interop.x.] [--timeout 20]
//
// URL is ws://host:port/path (WebSocket) or rs://host:port (RawSocket; AutobahnJS 22.11.1
// speaks RawSocket in Node with the JSON serializer only). wss:// connects over TLS,
// trusting the CA in env INTEROP_TLS_CA (see transportFor); rss:// is impossible with
// AutobahnJS (no TLS in its RawSocket transport).
//
// Roles (the same in scenario.py, so that the two clients can be paired either way):
//   serve  registers PREFIX.echo / PREFIX.fail / PREFIX.report, subscribes PREFIX.topic,
//          prints "READY", checks every payload it receives against the fixture, echoes
//          events to PREFIX.echo_topic, and exits when the driver calls PREFIX.report.
//   drive  calls, publishes and checks the answers against the fixture, runs the error
//          cases, then calls PREFIX.report to collect the server side's failures.
//   solo   serve and drive in one process, on two connections.
//
// Prints "ok   <check>" or "FAIL <check>: <detail>" per check and exits non-zero on any
// failure, on an unexpected close, or after the hard timeout.
'use strict';

const autobahn = require('autobahn');

// ---------------------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    role: process.env.INTEROP_ROLE || 'solo',
    url: process.env.INTEROP_URL || '',
    realm: process.env.INTEROP_REALM || 'realm1',
    serializer: process.env.INTEROP_SERIALIZER || 'json',
    prefix: process.env.INTEROP_PREFIX || 'interop.js.',
    timeout: Number(process.env.INTEROP_TIMEOUT || 20),
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) usage('bad argument ' + k);
    i++;
    switch (k) {
      case '--role': o.role = v; break;
      case '--url': o.url = v; break;
      case '--realm': o.realm = v; break;
      case '--serializer': o.serializer = v; break;
      case '--prefix': o.prefix = v; break;
      case '--timeout': o.timeout = Number(v); break;
      default: usage('unknown flag ' + k);
    }
  }
  if (!o.url) usage('--url is required');
  if (!['solo', 'serve', 'drive'].includes(o.role)) usage('bad --role ' + o.role);
  if (!['json', 'msgpack', 'cbor'].includes(o.serializer)) usage('bad --serializer ' + o.serializer);
  if (!o.prefix.endsWith('.')) o.prefix += '.';
  return o;
}

function usage(msg) {
  console.error('scenario.js: ' + msg);
  console.error('usage: node scenario.js --role solo|serve|drive --url URL [--realm R] [--serializer json|msgpack|cbor] [--prefix P] [--timeout S]');
  process.exit(2);
}

const opts = parseArgs(process.argv);
// tag prefixes this run's output lines: [js NAME SCHEME SERIALIZER], NAME the role or,
// through setTag, the script.
const scriptTag = (name) => `[js ${name} ${opts.url.split(':')[0]} ${opts.serializer}]`;
let tag = scriptTag(opts.role);

// ---------------------------------------------------------------------------- checks

let failures = 0;

const t0 = Date.now();
function elapsed() { return ((Date.now() - t0) / 1000).toFixed(3).padStart(6) + 's'; }

function ok(name) {
  console.log(`ok   ${elapsed()} ${tag} ${name}`);
}

function fail(name, detail) {
  failures++;
  console.log(`FAIL ${elapsed()} ${tag} ${name}: ${detail}`);
}

function check(name, cond, detail) {
  if (cond) ok(name); else fail(name, detail || 'condition false');
  return cond;
}

function finish(code) {
  if (code === undefined) code = failures > 0 ? 1 : 0;
  console.log(code === 0 ? `PASS ${tag}` : `FAILED ${tag} (${failures} failed checks)`);
  // Give stdout a moment to drain before exiting.
  setTimeout(() => process.exit(code), 50);
}

const hardTimer = setTimeout(() => {
  fail('hard timeout', `scenario did not finish within ${opts.timeout}s`);
  finish(1);
}, opts.timeout * 1000);
hardTimer.unref();

process.on('unhandledRejection', (e) => {
  fail('unhandled rejection', fmtErr(e));
  finish(1);
});

// ---------------------------------------------------------------------------- fixture
//
// The same values as FIXTURE in scenario.py. Binary is a Buffer with the binary
// serializers; AutobahnJS's JSON serializer has no binary support, so with JSON we put
// the WAMP wire form on the wire ourselves ("\0" + base64) and expect it back as that
// string: the router transcodes it to/from real binary for msgpack/cbor peers.

const jsonBinary = opts.serializer === 'json';

function bin(bytes) {
  const b = Buffer.from(bytes);
  return jsonBinary ? '\u0000' + b.toString('base64') : b;
}

function range(n) { return Array.from({ length: n }, (_, i) => i); }

function fixtureArgs() {
  return [
    'hello',
    'unicode: h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \ud83c\udf89',
    'escapes: "quoted" back\\slash tab\t newline\n nul\u0000mid \u001f',
    '',
    0, -1, -42, 255, 65536, 4294967296, -4294967297,
    9007199254740991, -9007199254740991,
    3.14159, -0.5, 2.5, 1.5e300, -2.2250738585072014e-308,
    true, false, null,
    [1, [2, [3, 'deep', [true, null]]], { k: 'v' }, []],
    { a: 1, b: [true, null], c: { d: 'e', f: {} } },
    bin(range(256)),
  ];
}

function fixtureKwargs() {
  return {
    str: 'x',
    uni: '\u00fcn\u00efc\u00f8d\u00e9 \u2713',
    int: -123456789012,
    big: 9007199254740991,
    float: -273.15,
    yes: true,
    no: false,
    none: null,
    list: [1, 'two', 3.5, [bin([0, 1, 254, 255])]],
    dict: { nested: { bin: bin([0, 1, 254, 255]), n: -1 } },
    bin: bin([222, 173, 190, 239]),
    bin_empty: bin([]),
    empty_list: [],
    empty_dict: {},
  };
}

const ERROR_URI = 'com.example.interop.custom_error';

function errorArgs() { return ['bad thing', 42, bin([7, 0, 7])]; }
function errorKwargs() { return { reason: 'because', code: -7, nested: { ok: false } }; }

// deepDiff returns "" when got equals want, else a description of the first difference.
function deepDiff(got, want, path) {
  path = path || '$';
  if (Buffer.isBuffer(want)) {
    if (!(got instanceof Uint8Array)) return `${path}: want binary ${want.toString('hex')}, got ${describe(got)}`;
    const g = Buffer.from(got.buffer, got.byteOffset, got.byteLength);
    if (!g.equals(want)) return `${path}: want binary ${want.toString('hex')}, got binary ${g.toString('hex')}`;
    return '';
  }
  if (want === null) return got === null ? '' : `${path}: want null, got ${describe(got)}`;
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return `${path}: want list, got ${describe(got)}`;
    if (got.length !== want.length) return `${path}: want list of ${want.length}, got ${got.length}: ${describe(got)}`;
    for (let i = 0; i < want.length; i++) {
      const d = deepDiff(got[i], want[i], `${path}[${i}]`);
      if (d) return d;
    }
    return '';
  }
  if (typeof want === 'object') {
    if (got === null || typeof got !== 'object' || Array.isArray(got) || got instanceof Uint8Array) {
      return `${path}: want dict, got ${describe(got)}`;
    }
    const gk = Object.keys(got).sort();
    const wk = Object.keys(want).sort();
    if (gk.join('\u0001') !== wk.join('\u0001')) return `${path}: want keys ${JSON.stringify(wk)}, got ${JSON.stringify(gk)}`;
    for (const k of wk) {
      const d = deepDiff(got[k], want[k], `${path}.${k}`);
      if (d) return d;
    }
    return '';
  }
  if (typeof got !== typeof want) return `${path}: want ${typeof want} ${describe(want)}, got ${typeof got} ${describe(got)}`;
  if (typeof want === 'number') {
    if (Object.is(got, want)) return '';
    return `${path}: want ${want}, got ${got}`;
  }
  if (got !== want) return `${path}: want ${describe(want)}, got ${describe(got)}`;
  return '';
}

function describe(v) {
  if (v === undefined) return 'undefined';
  if (Buffer.isBuffer(v)) return `Buffer(${v.toString('hex')})`;
  if (v instanceof Uint8Array) return `Uint8Array(${Buffer.from(v).toString('hex')})`;
  if (typeof v === 'bigint') return `${v}n`;
  try {
    const s = JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x));
    return s.length > 300 ? s.slice(0, 300) + '...' : s;
  } catch (e) {
    return String(v);
  }
}

function fmtErr(e) {
  if (e instanceof autobahn.Error) return `${e.error} ${describe(e.args)} ${describe(e.kwargs)}`;
  if (e && e.stack) return e.stack;
  return describe(e);
}

function checkPayload(name, args, kwargs, wantArgs, wantKwargs) {
  const d = deepDiff(args, wantArgs, 'args') || deepDiff(kwargs, wantKwargs, 'kwargs');
  return check(name, !d, d);
}

// ---------------------------------------------------------------------------- connect

function makeSerializer() {
  switch (opts.serializer) {
    case 'json': return new autobahn.serializer.JSONSerializer();
    case 'msgpack':
      if (!autobahn.serializer.MsgpackSerializer) throw new Error('autobahn has no MsgpackSerializer (msgpack5 missing?)');
      return new autobahn.serializer.MsgpackSerializer();
    case 'cbor':
      if (!autobahn.serializer.CBORSerializer) throw new Error('autobahn has no CBORSerializer (cbor missing?)');
      return new autobahn.serializer.CBORSerializer();
  }
  throw new Error('unknown serializer ' + opts.serializer);
}

// tlsAgent returns an https.Agent for wss:// connections: it trusts only the CA in the
// PEM file ca (none: Node's default trust store) and presents the client certificate
// cert/key when given. AutobahnJS passes the transport option `agent` on to the `ws`
// library, which makes the TLS connection through it. (Its own option
// `tlsConfiguration: {ca, cert, key}` also sets rejectUnauthorized: false, that is, it
// does not verify the router's certificate at all; see tls.js.)
function tlsAgent(files) {
  const fs = require('fs');
  const https = require('https');
  const o = { keepAlive: false };
  if (files.ca) o.ca = fs.readFileSync(files.ca);
  if (files.cert) { o.cert = fs.readFileSync(files.cert); o.key = fs.readFileSync(files.key); }
  return new https.Agent(o);
}

// envTLS: the TLS files of env INTEROP_TLS_CA, INTEROP_TLS_CERT, INTEROP_TLS_KEY
// (interop/tls_test.go).
function envTLS() {
  const e = process.env;
  return { ca: e.INTEROP_TLS_CA || '', cert: e.INTEROP_TLS_CERT || '', key: e.INTEROP_TLS_KEY || '' };
}

// transportFor returns the AutobahnJS transport config for url; for wss://, tls
// (default envTLS()) says which CA to trust and which client certificate to present.
function transportFor(url, tls) {
  const u = new URL(url);
  if (u.protocol === 'rss:') {
    // lib/transport/rawsocket.js of autobahn 22.11.1 always opens the socket with
    // net.connect (plain TCP) and takes no TLS option, so RawSocket over TLS is
    // impossible with AutobahnJS.
    throw new Error('AutobahnJS RawSocket has no TLS (rawsocket.js uses net.connect only): rss:// is not supported');
  }
  if (u.protocol === 'rs:' || u.protocol === 'tcp:') {
    if (opts.serializer !== 'json') {
      throw new Error(`AutobahnJS RawSocket supports only json, not ${opts.serializer}`);
    }
    return { type: 'rawsocket', host: u.hostname, port: Number(u.port) };
  }
  const t = { type: 'websocket', url, serializers: [makeSerializer()] };
  if (u.protocol === 'wss:') t.agent = tlsAgent(tls || envTLS());
  return t;
}

// connect joins realm (join, anonymous) and resolves with {conn, session, details}, or
// rejects with {closeReason, details} when the connection closes before the session
// joins. onLost is called if the connection closes unexpectedly after the join.
async function connect(realm, onLost) {
  const r = await join({ realm, onLost: onLost || (() => {}) });
  if (!r.joined) throw { closeReason: r.closeReason, details: r.details };
  return { conn: r.conn, session: r.session, details: r.details };
}

// joinRole is connect for role serve or drive: a lost connection fails the run at once.
async function joinRole(role) {
  const r = await connect(opts.realm, (reason, details) => {
    fail(`${role} connection`, `lost: ${reason} ${describe(details)}`);
    finish(1);
  });
  ok(`${role} joined ${opts.realm} (session ${r.session.id})`);
  checkProtocol(r.details);
  return r;
}

// join opens one connection and joins o.realm (default opts.realm) offering
// o.authmethods as o.authid with o.authextra, answering each CHALLENGE with
// o.respond(method, extra) (default: none expected). o.transport is the AutobahnJS
// transport config (default transportFor(opts.url)); o.headers are extra HTTP request
// headers of a WebSocket upgrade; with o.upgrade the upgrade response's headers are kept
// (Node's IncomingMessage.headers: lower-case names, set-cookie an array), through an
// http.Agent made for the purpose when the transport has none (AutobahnJS does not
// expose the `ws` WebSocket or its 'upgrade' event). The errors of the sockets the
// transport's agent makes are kept too: AutobahnJS reports a failed connection only as
// "unreachable", without the cause. Resolves with {joined: true, conn, session, details,
// challenges, headers, socketErrors} or {joined: false, closeReason, reason, details,
// challenges, headers, socketErrors} (reason: the ABORT reason the router sent, as
// AutobahnJS reports it). When the connection of a joined session closes unless closed
// with closeConn, o.onLost(reason, details) is called (default: fails "AUTHID connection").
function join(o = {}) {
  const realm = o.realm || opts.realm;
  const transport = o.transport || transportFor(opts.url);
  const challenges = [];
  const socketErrors = [];
  let headers = null;
  if (o.headers) transport.headers = o.headers;
  if (o.upgrade && !transport.agent && transport.type === 'websocket') {
    transport.agent = new (require('http').Agent)({ keepAlive: false });
  }
  const agent = transport.agent;
  if (agent) {
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (co, cb) => {
      const sock = create(co, cb);
      if (sock && sock.on) sock.on('error', (e) => socketErrors.push(e));
      return sock;
    };
    if (o.upgrade) {
      const add = agent.addRequest.bind(agent);
      agent.addRequest = (req, ro) => {
        req.on('upgrade', (res) => { headers = res.headers; });
        return add(req, ro);
      };
    }
  }
  const respond = o.respond || ((method) => { throw new Error('no challenge expected, got ' + method); });
  return new Promise((resolve) => {
    const conn = new autobahn.Connection({
      realm,
      transports: [transport],
      max_retries: 0,
      retry_if_unreachable: false,
      authmethods: o.authmethods,
      authid: o.authid,
      authextra: o.authextra,
      onchallenge: (session, method, extra) => {
        challenges.push({ method, extra });
        return respond(method, extra);
      },
    });
    let joined = false;
    conn.closing = false;
    conn.onopen = (session, details) => {
      joined = true;
      resolve({ joined: true, conn, session, details, challenges, headers, socketErrors });
    };
    conn.onclose = (reason, details) => {
      if (!joined) {
        resolve({ joined: false, closeReason: reason, reason: details && details.reason, details, challenges, headers, socketErrors });
      } else if (!conn.closing) {
        if (o.onLost) o.onLost(reason, details);
        else fail(`${o.authid || realm} connection`, `lost: ${reason} ${describe(details)}`);
      }
      return true; // never retry
    };
    conn.open();
  });
}

function closeConn(conn) {
  return new Promise((resolve) => {
    conn.closing = true;
    const prev = conn.onclose;
    const t = setTimeout(resolve, 2000);
    conn.onclose = (reason, details) => {
      clearTimeout(t);
      if (prev) prev(reason, details);
      resolve();
      return true;
    };
    try { conn.close(); } catch (e) { clearTimeout(t); resolve(); }
  });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// checkProtocol checks the session runs on the serializer we asked for (the WebSocket
// subprotocol the router picked).
function checkProtocol(details) {
  const got = details && details.transport && details.transport.protocol;
  const want = 'wamp.2.' + opts.serializer;
  check(`serializer in use is ${want}`, got === want, `transport protocol ${describe(got)}`);
}

// ---------------------------------------------------------------------------- serve

async function serve(announce) {
  const P = opts.prefix;
  const serverFailures = [];
  const note = (name, d) => { if (d) serverFailures.push(`${tag} ${name}: ${d}`); check(name, !d, d); };
  let events = 0;
  let reportCalled;
  const done = new Promise((r) => { reportCalled = r; });

  const { conn, session } = await joinRole('serve');

  await session.register(P + 'echo', (args, kwargs) => {
    const d = deepDiff(args, fixtureArgs(), 'args') || deepDiff(kwargs, fixtureKwargs(), 'kwargs');
    note('callee received fixture args/kwargs', d);
    return new autobahn.Result(args, kwargs);
  });
  await session.register(P + 'fail', () => {
    throw new autobahn.Error(ERROR_URI, errorArgs(), errorKwargs());
  });
  await session.register(P + 'report', () => {
    note('subscriber received exactly one event', events === 1 ? '' : `got ${events}`);
    setTimeout(() => reportCalled(), 100);
    return new autobahn.Result([serverFailures]);
  });
  await session.subscribe(P + 'topic', (args, kwargs) => {
    events++;
    const d = deepDiff(args, fixtureArgs(), 'args') || deepDiff(kwargs, fixtureKwargs(), 'kwargs');
    note('subscriber received fixture event', d);
    session.publish(P + 'echo_topic', args, kwargs, { acknowledge: true }).then(
      () => ok('re-published event to echo_topic'),
      (e) => note('re-publish event to echo_topic', fmtErr(e)),
    );
  });
  ok('registered echo/fail/report, subscribed topic');
  announce();
  await done;
  await closeConn(conn);
}

// ---------------------------------------------------------------------------- drive

async function drive() {
  const P = opts.prefix;
  const { conn, session } = await joinRole('drive');

  // RPC: args and kwargs survive a round trip through the callee.
  try {
    const res = await withTimeout(session.call(P + 'echo', fixtureArgs(), fixtureKwargs()), 5000, 'echo result');
    if (check('call echo returns a Result', res instanceof autobahn.Result, describe(res))) {
      checkPayload('call echo: args/kwargs survive', res.args, res.kwargs, fixtureArgs(), fixtureKwargs());
    }
  } catch (e) {
    fail('call echo', fmtErr(e));
  }

  // RPC: application error with a custom URI, args and kwargs.
  try {
    const res = await withTimeout(session.call(P + 'fail', [], {}), 5000, 'fail error');
    fail('call fail raises', `expected error ${ERROR_URI}, got result ${describe(res)}`);
  } catch (e) {
    if (check('call fail raises autobahn.Error', e instanceof autobahn.Error, fmtErr(e))) {
      check('call fail: error URI', e.error === ERROR_URI, `got ${e.error}`);
      checkPayload('call fail: error args/kwargs', e.args, e.kwargs, errorArgs(), errorKwargs());
    }
  }

  // RPC: unknown procedure.
  try {
    const res = await withTimeout(session.call(P + 'no_such_procedure', [1]), 5000, 'no_such_procedure error');
    fail('call unknown procedure', `expected error, got ${describe(res)}`);
  } catch (e) {
    check('call unknown procedure: wamp.error.no_such_procedure', e instanceof autobahn.Error && e.error === 'wamp.error.no_such_procedure', fmtErr(e));
  }

  // PubSub: publish with acknowledge; the subscriber echoes on echo_topic; the publisher
  // is itself subscribed to topic and must not get its own event (exclude_me default).
  let ownEvents = 0;
  let gotEcho;
  const echo = new Promise((r) => { gotEcho = r; });
  let selfEvents = [];
  try {
    await session.subscribe(P + 'topic', () => { ownEvents++; });
    await session.subscribe(P + 'echo_topic', (args, kwargs) => gotEcho({ args, kwargs }));
    await session.subscribe(P + 'self_topic', (args, kwargs) => { selfEvents.push({ args, kwargs }); });
    ok('subscribed topic, echo_topic, self_topic');
    const pub = await withTimeout(session.publish(P + 'topic', fixtureArgs(), fixtureKwargs(), { acknowledge: true }), 5000, 'publish ack');
    check('publish acknowledged with a publication id', pub && Number.isInteger(pub.id) && pub.id > 0, describe(pub && pub.id));
    const ev = await withTimeout(echo, 5000, 'event echoed by the subscriber');
    checkPayload('event round trip: args/kwargs survive', ev.args, ev.kwargs, fixtureArgs(), fixtureKwargs());
    const pub2 = await withTimeout(session.publish(P + 'self_topic', ['me'], { n: 1 }, { acknowledge: true, exclude_me: false }), 5000, 'publish ack');
    check('publish exclude_me=false acknowledged', pub2 && Number.isInteger(pub2.id), describe(pub2));
    await sleep(300);
    check('publisher exclusion (default): own event not received', ownEvents === 0, `received ${ownEvents} own events`);
    check('exclude_me=false: own event received once', selfEvents.length === 1 && !deepDiff(selfEvents[0].args, ['me']) && !deepDiff(selfEvents[0].kwargs, { n: 1 }), describe(selfEvents));
  } catch (e) {
    fail('pubsub', fmtErr(e));
  }

  // Join a realm that does not exist.
  try {
    const r = await withTimeout(connect('interop.no_such_realm.' + Date.now()), 5000, 'ABORT');
    fail('join unknown realm', 'joined a realm that should not exist');
    await closeConn(r.conn);
  } catch (e) {
    const reason = e && e.details && e.details.reason;
    check('join unknown realm: wamp.error.no_such_realm', reason === 'wamp.error.no_such_realm', `close ${describe(e && e.closeReason)} details ${describe(e && e.details)}${e instanceof Error ? ' ' + e.message : ''}`);
  }

  // Collect the server side's verdict (it cannot fail our process otherwise).
  try {
    const res = await withTimeout(session.call(P + 'report'), 5000, 'report');
    check('server side reported no failures', Array.isArray(res) && res.length === 0, describe(res));
  } catch (e) {
    fail('call report', fmtErr(e));
  }

  await closeConn(conn);
}

// ---------------------------------------------------------------------------- main

async function main() {
  try {
    transportFor(opts.url); // validate early: a clear message for unsupported combinations
  } catch (e) {
    fail('transport', e.message);
    return finish(1);
  }
  if (opts.role === 'serve') {
    await serve(() => console.log('READY'));
  } else if (opts.role === 'drive') {
    await drive();
  } else {
    let ready;
    const isReady = new Promise((r) => { ready = r; });
    const s = serve(ready);
    s.catch(() => ready());
    await withTimeout(isReady, 10000, 'serve session');
    await drive();
    await s;
  }
  finish();
}

if (require.main === module) {
  main().catch((e) => {
    if (e && e.closeReason !== undefined) fail('join', `connection closed before join: ${e.closeReason} ${describe(e.details)}`);
    else fail('scenario', fmtErr(e));
    finish(1);
  });
}

// features.js reuses the option parsing, checks, hard timeout and connection helpers.
module.exports = {
  opts, ok, fail, check, finish, deepDiff, describe, fmtErr, connect, join, closeConn, sleep, withTimeout,
  checkProtocol, transportFor, tlsAgent,
  setTag(name) { tag = scriptTag(name); },
};
