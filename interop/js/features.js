#!/usr/bin/env node
// AutobahnJS advanced-profile scenario for switchyard. Run by interop/features_test.go.
//
//   node features.js --url URL [--realm realm1] [--serializer json|msgpack|cbor]
//                    [--prefix interop.x.] [--timeout 20]
//
// Opens several sessions in one process and checks the advanced-profile features the
// router announces (docs/features.md): publisher/caller identification, pattern-based
// subscriptions and registrations, shared registrations, progressive call results, call
// canceling and call timeout, the session/subscription/registration meta API, event
// retention, event history, the consistent-hash invocation policy, testaments and
// subscriber black/whitelisting.
//
// Prints "ok   <check>" or "FAIL <check>: <detail>" per check ("skip <check>: <reason>"
// where AutobahnJS cannot express a feature) and exits non-zero on any failure or after
// the hard timeout. Option parsing, checks and connection helpers come from scenario.js.
'use strict';

const autobahn = require('autobahn');
const S = require('./scenario.js');

const { opts, ok, fail, check, finish, deepDiff, describe, fmtErr, closeConn, sleep, withTimeout } = S;
S.setTag('features');

function skip(name, reason) {
  console.log(`skip ${name}: ${reason}`);
}

// waiter returns {promise, resolve}: a one-shot event to await with a timeout.
function waiter() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

// section runs one feature's checks; an exception fails that feature only.
async function section(name, fn) {
  try {
    await fn();
  } catch (e) {
    fail(name, fmtErr(e));
  }
}

async function open(name) {
  const r = await S.connect(opts.realm, (reason, details) => {
    fail(`${name} connection`, `lost: ${reason} ${describe(details)}`);
  });
  r.name = name;
  r.authid = r.details && r.details.authid;
  ok(`${name} joined ${opts.realm} (session ${r.session.id}, authid ${describe(r.authid)})`);
  return r;
}

function errorURI(e) {
  return e instanceof autobahn.Error ? e.error : undefined;
}

async function main() {
  const P = opts.prefix;
  const a = await open('a');
  const b = await open('b');
  const d = await open('d');
  S.checkProtocol(a.details);

  // ------------------------------------------------------------------ identification
  await section('publisher identification', async () => {
    const got = waiter();
    await a.session.subscribe(P + 'disclose', (args, kwargs, ev) => got.resolve(ev));
    await d.session.publish(P + 'disclose', ['hi'], {}, { acknowledge: true, disclose_me: true });
    const ev = await withTimeout(got.promise, 3000, 'disclosed event');
    check('publisher identification: details.publisher is the publisher session', ev.publisher === d.session.id, `publisher ${describe(ev.publisher)}, want ${d.session.id}`);
    check('publisher identification: details.publisher_authid', ev.publisher_authid === d.authid && typeof ev.publisher_authid === 'string', `publisher_authid ${describe(ev.publisher_authid)}, want ${describe(d.authid)}`);
    check('publisher identification: details.publisher_authrole is anonymous', ev.publisher_authrole === 'anonymous', `publisher_authrole ${describe(ev.publisher_authrole)}`);
  });

  await section('caller identification', async () => {
    await a.session.register(P + 'whoami', (args, kwargs, inv) =>
      new autobahn.Result([], { caller: inv.caller, caller_authid: inv.caller_authid, caller_authrole: inv.caller_authrole }));
    const res = await withTimeout(d.session.call(P + 'whoami', [], {}, { disclose_me: true }), 3000, 'whoami result');
    const kw = (res && res.kwargs) || {};
    check('caller identification: details.caller is the caller session', kw.caller === d.session.id, `caller ${describe(kw.caller)}, want ${d.session.id}`);
    check('caller identification: details.caller_authid', kw.caller_authid === d.authid && typeof kw.caller_authid === 'string', `caller_authid ${describe(kw.caller_authid)}, want ${describe(d.authid)}`);
    check('caller identification: details.caller_authrole is anonymous', kw.caller_authrole === 'anonymous', `caller_authrole ${describe(kw.caller_authrole)}`);
  });

  // ------------------------------------------------------------------ patterns
  await section('pattern-based subscription', async () => {
    const pfx = waiter();
    const wild = waiter();
    await a.session.subscribe(P + 'ev.', (args, kwargs, ev) => pfx.resolve({ args, ev }), { match: 'prefix' });
    await a.session.subscribe(P + 'evw..temp', (args, kwargs, ev) => wild.resolve({ args, ev }), { match: 'wildcard' });
    await d.session.publish(P + 'ev.room1.light', ['p'], {}, { acknowledge: true });
    await d.session.publish(P + 'evw.room2.temp', ['w'], {}, { acknowledge: true });
    // AutobahnJS falls back to the subscription's pattern when details.topic is missing,
    // so a missing topic shows up as the pattern here.
    const p = await withTimeout(pfx.promise, 3000, 'prefix event');
    check('prefix subscription: event received', !deepDiff(p.args, ['p']), describe(p.args));
    check('prefix subscription: details.topic is the concrete topic', p.ev.topic === P + 'ev.room1.light', `topic ${describe(p.ev.topic)}`);
    const w = await withTimeout(wild.promise, 3000, 'wildcard event');
    check('wildcard subscription: event received', !deepDiff(w.args, ['w']), describe(w.args));
    check('wildcard subscription: details.topic is the concrete topic', w.ev.topic === P + 'evw.room2.temp', `topic ${describe(w.ev.topic)}`);
  });

  await section('pattern-based registration', async () => {
    const who = (name) => (args, kwargs, inv) => new autobahn.Result([name, inv.procedure]);
    await a.session.register(P + 'rpc.', who('prefix'), { match: 'prefix' });
    await a.session.register(P + 'rpc.exact', who('exact'));
    await a.session.register(P + 'rpcw..op', who('wildcard'), { match: 'wildcard' });
    const r1 = await withTimeout(d.session.call(P + 'rpc.any.thing'), 3000, 'prefix call');
    check('prefix registration: reached with details.procedure', !deepDiff(r1.args, ['prefix', P + 'rpc.any.thing']), describe(r1.args));
    const r2 = await withTimeout(d.session.call(P + 'rpcw.x.op'), 3000, 'wildcard call');
    check('wildcard registration: reached with details.procedure', !deepDiff(r2.args, ['wildcard', P + 'rpcw.x.op']), describe(r2.args));
    const r3 = await withTimeout(d.session.call(P + 'rpc.exact'), 3000, 'exact call');
    check('exact registration beats prefix', r3.args[0] === 'exact', describe(r3.args));
  });

  // ------------------------------------------------------------------ shared registration
  await section('shared registration', async () => {
    await a.session.register(P + 'shared', () => 'a', { invoke: 'roundrobin' });
    await b.session.register(P + 'shared', () => 'b', { invoke: 'roundrobin' });
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await withTimeout(d.session.call(P + 'shared'), 3000, 'shared call'));
    const alt = got.length === 4 && got[0] !== got[1] && got[0] === got[2] && got[1] === got[3] && ['a', 'b'].includes(got[0]) && ['a', 'b'].includes(got[1]);
    check('shared registration roundrobin: 4 calls alternate between the two callees', alt, describe(got));
  });

  await section('consistent-hash invocation', async () => {
    await a.session.register(P + 'hashed', () => 'a', { invoke: 'hash' });
    await b.session.register(P + 'hashed', () => 'b', { invoke: 'hash' });
    const seen = {};
    let moved = [];
    for (let k = 0; k < 12; k++) {
      const call = () => withTimeout(d.session.call(P + 'hashed', [], {}, { rkey: 'key-' + k }), 3000, 'hash call');
      const first = await call();
      const again = await call();
      if (first !== again) moved.push(`key-${k}: ${first} then ${again}`);
      seen[first] = true;
    }
    check('consistent hash: the same rkey reaches the same callee', moved.length === 0, moved.join(', '));
    check('consistent hash: 12 keys spread over both callees', seen.a && seen.b, describe(seen));
  });

  // ------------------------------------------------------------------ progressive results
  await section('progressive call results', async () => {
    await a.session.register(P + 'progress', async (args, kwargs, inv) => {
      if (!inv.progress) return 'no-progress';
      for (let i = 0; i < 3; i++) {
        inv.progress([i]);
        await sleep(20);
      }
      return 'final';
    });
    const progress = [];
    const res = await withTimeout(
      d.session.call(P + 'progress', [], {}, { receive_progress: true }).then((r) => r, (e) => { throw e; }, (p) => progress.push(p)),
      3000, 'progressive result');
    check('progressive results: callee saw receive_progress', res !== 'no-progress', describe(res));
    check('progressive results: 3 progress results in order', !deepDiff(progress, [0, 1, 2]), describe(progress));
    check('progressive results: final result after them', res === 'final', describe(res));
  });

  // ------------------------------------------------------------------ cancel and timeout
  await section('call canceling', async () => {
    let invoked = 0;
    await a.session.register(P + 'slow', () => { invoked++; return new Promise(() => {}); });
    const p = d.session.call(P + 'slow', [1]);
    if (typeof p.cancel !== 'function') {
      skip('call canceling', 'session.call() of AutobahnJS 22.11.1 returns no cancel()');
    } else {
      await sleep(200);
      check('call canceling: callee was invoked', invoked === 1, `invoked ${invoked}`);
      // mode "kill": AutobahnJS keeps the call pending and waits for the router's ERROR
      // (with "skip"/"killnowait" it rejects locally and treats the router's ERROR as a
      // protocol violation). The JS callee does not announce call_canceling, so the
      // router answers at once.
      p.cancel({ mode: 'kill' });
      try {
        const r = await withTimeout(p, 3000, 'ERROR after CANCEL');
        fail('call canceling: caller gets wamp.error.canceled', `got result ${describe(r)}`);
      } catch (e) {
        check('call canceling: caller gets wamp.error.canceled', errorURI(e) === 'wamp.error.canceled', fmtErr(e));
      }
    }
  });

  await section('call timeout', async () => {
    const t = Date.now();
    try {
      const r = await withTimeout(d.session.call(P + 'slow', [2], {}, { timeout: 100 }), 3000, 'ERROR after call timeout');
      fail('call timeout: caller gets wamp.error.timeout', `got result ${describe(r)}`);
    } catch (e) {
      const ms = Date.now() - t;
      check('call timeout: caller gets wamp.error.timeout', errorURI(e) === 'wamp.error.timeout', fmtErr(e));
      check('call timeout: error after about 100 ms', ms >= 90 && ms < 2000, `after ${ms} ms`);
    }
  });

  // ------------------------------------------------------------------ meta API
  await section('meta API', async () => {
    const n = await withTimeout(d.session.call('wamp.session.count'), 3000, 'wamp.session.count');
    check('wamp.session.count: at least the 3 sessions of this script', Number.isInteger(n) && n >= 3, describe(n));
    const me = await withTimeout(d.session.call('wamp.session.get', [d.session.id]), 3000, 'wamp.session.get');
    check('wamp.session.get(own id): session', me && me.session === d.session.id, describe(me));
    check('wamp.session.get(own id): authrole anonymous', me && me.authrole === 'anonymous', describe(me));
    check('wamp.session.get(own id): authid', me && me.authid === d.authid, describe(me));

    const sub = await a.session.subscribe(P + 'meta.topic', () => {});
    const sid = await withTimeout(d.session.call('wamp.subscription.lookup', [P + 'meta.topic']), 3000, 'wamp.subscription.lookup');
    check('wamp.subscription.lookup: the subscription id', sid === sub.id, `got ${describe(sid)}, want ${sub.id}`);
    const none = await withTimeout(d.session.call('wamp.subscription.lookup', [P + 'meta.unknown']), 3000, 'wamp.subscription.lookup');
    check('wamp.subscription.lookup of an unknown topic: null', none === null, describe(none));
    const reg = await a.session.register(P + 'meta.proc', () => 1);
    const rid = await withTimeout(d.session.call('wamp.registration.match', [P + 'meta.proc']), 3000, 'wamp.registration.match');
    check('wamp.registration.match: the registration id', rid === reg.id, `got ${describe(rid)}, want ${reg.id}`);
    const preg = await withTimeout(d.session.call('wamp.registration.match', [P + 'rpc.some.where']), 3000, 'wamp.registration.match');
    check('wamp.registration.match: a prefix registration matches', Number.isInteger(preg), describe(preg));

    const joins = [];
    let joinedId = null;
    const seen = waiter();
    await a.session.subscribe('wamp.session.on_join', (args) => {
      joins.push(args);
      if (joinedId !== null && args && args[0] && args[0].session === joinedId) seen.resolve(args[0]);
    });
    const e = await open('e');
    joinedId = e.session.id;
    for (const j of joins) if (j && j[0] && j[0].session === joinedId) seen.resolve(j[0]);
    try {
      const info = await withTimeout(seen.promise, 3000, 'wamp.session.on_join');
      check('wamp.session.on_join: event for the new session', info.session === joinedId, describe(info));
      check('wamp.session.on_join: authrole anonymous', info.authrole === 'anonymous', describe(info));
    } catch (err) {
      fail('wamp.session.on_join: event for the new session', `${err.message}; got ${describe(joins)}`);
    }
    await closeConn(e.conn);
  });

  // ------------------------------------------------------------------ retention
  await section('event retention', async () => {
    await d.session.publish(P + 'retained', ['kept'], { v: 1 }, { acknowledge: true, retain: true });
    const got = waiter();
    await b.session.subscribe(P + 'retained', (args, kwargs, ev) => got.resolve({ args, kwargs, ev }), { get_retained: true });
    const r = await withTimeout(got.promise, 3000, 'retained event');
    check('retention: new subscriber gets the retained event', !deepDiff(r.args, ['kept']) && !deepDiff(r.kwargs, { v: 1 }), `${describe(r.args)} ${describe(r.kwargs)}`);
    check('retention: details.retained is true', r.ev.retained === true, describe(r.ev));
  });

  // ------------------------------------------------------------------ history
  await section('event history', async () => {
    // The interop node keeps history for interop.*.*.history (interop/features_test.go).
    const sub = await b.session.subscribe(P + 'history', () => {});
    for (let i = 1; i <= 3; i++) await d.session.publish(P + 'history', [i], {}, { acknowledge: true });
    const res = await withTimeout(b.session.call('wamp.subscription.get_events', [sub.id], { limit: 2, reverse: true }), 3000, 'get_events');
    // Arguments are the events and ArgumentsKw {subscription, count}: AutobahnJS gives a Result.
    const evs = res && res.args;
    check('event history: get_events returns the last 2 events, newest first',
      Array.isArray(evs) && evs.length === 2 && !deepDiff(evs[0].args, [3]) && !deepDiff(evs[1].args, [2]), describe(res));
    const e = (evs && evs[0]) || {};
    check('event history: events carry subscription, publication and timestamp',
      e.subscription === sub.id && typeof e.publication === 'number' && typeof e.timestamp === 'string', describe(e));
    check('event history: ArgumentsKw count', res.kwargs && res.kwargs.count === 2, describe(res.kwargs));
  });

  // ------------------------------------------------------------------ testament
  await section('testament', async () => {
    const got = waiter();
    await a.session.subscribe(P + 'testament', (args, kwargs) => got.resolve({ args, kwargs }));
    const c = await open('c');
    const cid = c.session.id; // AutobahnJS clears session.id on close
    await withTimeout(c.session.call('wamp.session.add_testament', [P + 'testament', ['bye', cid], { k: 'v' }]), 3000, 'add_testament');
    ok('wamp.session.add_testament accepted');
    await closeConn(c.conn);
    const r = await withTimeout(got.promise, 3000, 'testament event');
    check('testament: published when the session closes', !deepDiff(r.args, ['bye', cid]) && !deepDiff(r.kwargs, { k: 'v' }), `${describe(r.args)} ${describe(r.kwargs)}`);
  });

  // ------------------------------------------------------------------ black/whitelisting
  await section('subscriber black/whitelisting', async () => {
    const c = await open('c2');
    const got = { a: [], b: [], c: [] };
    await a.session.subscribe(P + 'bw', (args) => got.a.push(args[0]));
    await b.session.subscribe(P + 'bw', (args) => got.b.push(args[0]));
    await c.session.subscribe(P + 'bw', (args) => got.c.push(args[0]));
    await d.session.publish(P + 'bw', [1], {}, { acknowledge: true, exclude: [b.session.id], eligible_authrole: ['anonymous'] });
    await d.session.publish(P + 'bw', [2], {}, { acknowledge: true, eligible_authrole: ['nobody'] });
    await d.session.publish(P + 'bw', [3], {}, { acknowledge: true, eligible: [c.session.id] });
    await sleep(300);
    check('exclude=[b] + eligible_authrole=[anonymous]: a gets it', got.a.includes(1), describe(got));
    check('exclude=[b] + eligible_authrole=[anonymous]: c gets it', got.c.includes(1), describe(got));
    check('exclude=[b] + eligible_authrole=[anonymous]: b does not', !got.b.includes(1), describe(got));
    check('eligible_authrole=[nobody]: nobody gets it', !got.a.includes(2) && !got.b.includes(2) && !got.c.includes(2), describe(got));
    check('eligible=[c]: only c gets it', got.c.includes(3) && !got.a.includes(3) && !got.b.includes(3), describe(got));
    await closeConn(c.conn);
  });

  for (const s of [a, b, d]) await closeConn(s.conn);
  finish();
}

main().catch((e) => {
  if (e && e.closeReason !== undefined) fail('join', `connection closed before join: ${e.closeReason} ${describe(e.details)}`);
  else fail('features', fmtErr(e));
  finish(1);
});
