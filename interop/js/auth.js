#!/usr/bin/env node
// AutobahnJS authentication scenario for switchyard. Run by interop/auth_test.go.
//
//   node auth.js --url URL [--realm realm1] [--serializer json|msgpack|cbor] [--timeout 20]
//
// The router must run realm REALM with the principals of auth_test.go: ticket joe/s3cret
// (role user), WAMP-CRA ann/plain-secret (role admin) and salty/salted-secret salted with
// NaCl, 100 iterations, keylen 32 (role user). Checks, one session each: ticket ok, ticket
// wrong, wampcra ok, wampcra salted ok, wampcra wrong secret, and an HELLO offering only
// an authmethod the realm does not offer; and that anonymous sessions still join.
//
// Prints "ok   <check>" or "FAIL <check>: <detail>" per check and exits non-zero on any
// failure or after the hard timeout. Option parsing, checks and the hard timeout come
// from scenario.js (its --role and --prefix are accepted and ignored).
'use strict';

const autobahn = require('autobahn');
const S = require('./scenario.js');

const { opts, ok, fail, check, finish, describe, fmtErr, closeConn, withTimeout } = S;
S.setTag(`[js auth ${opts.url.split(':')[0]} ${opts.serializer}]`);

// join opens one connection with the given auth options and resolves with
// {joined: true, conn, session, details, challenges} or {joined: false, reason, details,
// challenges} (the ABORT reason the router sent, as AutobahnJS reports it).
function join(authmethods, authid, respond) {
  return new Promise((resolve) => {
    const challenges = [];
    const conn = new autobahn.Connection({
      realm: opts.realm,
      transports: [S.transportFor(opts.url)],
      max_retries: 0,
      retry_if_unreachable: false,
      authmethods,
      authid,
      onchallenge: (session, method, extra) => {
        challenges.push({ method, extra });
        return respond(method, extra);
      },
    });
    let joined = false;
    conn.closing = false;
    conn.onopen = (session, details) => {
      joined = true;
      resolve({ joined: true, conn, session, details, challenges });
    };
    conn.onclose = (reason, details) => {
      if (!joined) resolve({ joined: false, closeReason: reason, reason: details && details.reason, details, challenges });
      else if (!conn.closing) fail(`${authid} connection`, `lost: ${reason} ${describe(details)}`);
      return true; // never retry
    };
    conn.open();
  });
}

function craResponder(secret) {
  return (method, extra) => {
    if (method !== 'wampcra') throw new Error('unexpected challenge method ' + method);
    let key = secret;
    if (extra.salt) key = autobahn.auth_cra.derive_key(secret, extra.salt, extra.iterations, extra.keylen);
    return autobahn.auth_cra.sign(key, extra.challenge);
  };
}

async function expectWelcome(name, authmethods, authid, respond, want) {
  const r = await withTimeout(join(authmethods, authid, respond), 5000, `${name}: WELCOME or ABORT`);
  if (!r.joined) {
    fail(name, `not joined: closed ${r.closeReason}, reason ${describe(r.reason)}, details ${describe(r.details)}`);
    return r;
  }
  const d = r.details || {};
  check(`${name}: one ${want.authmethod} challenge`, r.challenges.length === 1 && r.challenges[0].method === want.authmethod,
    `challenges ${describe(r.challenges)}`);
  check(`${name}: WELCOME authid ${want.authid}`, d.authid === want.authid, `authid ${describe(d.authid)}`);
  check(`${name}: WELCOME authrole ${want.authrole}`, d.authrole === want.authrole, `authrole ${describe(d.authrole)}`);
  check(`${name}: WELCOME authmethod ${want.authmethod}`, d.authmethod === want.authmethod, `authmethod ${describe(d.authmethod)}`);
  // The session works: a call to a meta procedure round-trips.
  try {
    const id = await withTimeout(r.session.call('wamp.session.count'), 3000, 'wamp.session.count');
    check(`${name}: session usable (wamp.session.count)`, typeof id === 'number', `result ${describe(id)}`);
  } catch (e) {
    fail(`${name}: session usable (wamp.session.count)`, fmtErr(e));
  }
  await closeConn(r.conn);
  return r;
}

async function expectAbort(name, authmethods, authid, respond, wantReason, wantChallenges) {
  const r = await withTimeout(join(authmethods, authid, respond), 5000, `${name}: WELCOME or ABORT`);
  if (r.joined) {
    fail(name, `joined, want ABORT ${wantReason}: details ${describe(r.details)}`);
    await closeConn(r.conn);
    return r;
  }
  check(`${name}: ABORT ${wantReason}`, r.reason === wantReason,
    `closed ${r.closeReason}, reason ${describe(r.reason)}, details ${describe(r.details)}`);
  check(`${name}: ${wantChallenges} challenge(s)`, r.challenges.length === wantChallenges, `challenges ${describe(r.challenges)}`);
  return r;
}

async function main() {
  try {
    S.transportFor(opts.url);
  } catch (e) {
    fail('transport', e.message);
    return finish(1);
  }
  const failed = 'wamp.error.authentication_failed';

  // The realm also admits anonymous sessions: a HELLO without authmethods still joins.
  const anon = await withTimeout(join(undefined, undefined, () => { throw new Error('no challenge expected'); }), 5000, 'anonymous: WELCOME or ABORT');
  if (!anon.joined) {
    fail('anonymous ok', `not joined: closed ${anon.closeReason}, reason ${describe(anon.reason)}`);
  } else {
    const d = anon.details || {};
    check('anonymous ok: no challenge, WELCOME authrole anonymous, authmethod anonymous',
      anon.challenges.length === 0 && d.authrole === 'anonymous' && d.authmethod === 'anonymous',
      `challenges ${describe(anon.challenges)}, details ${describe(d)}`);
    await closeConn(anon.conn);
  }

  await expectWelcome('ticket ok', ['ticket'], 'joe', () => 's3cret',
    { authid: 'joe', authrole: 'user', authmethod: 'ticket' });
  await expectAbort('ticket wrong', ['ticket'], 'joe', () => 'not-the-ticket', failed, 1);
  await expectAbort('ticket unknown authid', ['ticket'], 'nobody', () => 's3cret', failed, 1);

  const cra = await expectWelcome('wampcra ok', ['wampcra'], 'ann', craResponder('plain-secret'),
    { authid: 'ann', authrole: 'admin', authmethod: 'wampcra' });
  if (cra.challenges.length === 1) {
    const ex = cra.challenges[0].extra || {};
    check('wampcra ok: unsalted challenge has no salt', ex.salt === undefined, `extra ${describe(ex)}`);
  }
  const salty = await expectWelcome('wampcra salted ok', ['wampcra'], 'salty', craResponder('salted-secret'),
    { authid: 'salty', authrole: 'user', authmethod: 'wampcra' });
  if (salty.challenges.length === 1) {
    const ex = salty.challenges[0].extra || {};
    check('wampcra salted ok: challenge carries salt NaCl, iterations 100, keylen 32',
      ex.salt === 'NaCl' && ex.iterations === 100 && ex.keylen === 32, `extra ${describe(ex)}`);
  }
  await expectAbort('wampcra wrong secret', ['wampcra'], 'ann', craResponder('wrong-secret'), failed, 1);
  await expectAbort('wampcra salted wrong secret', ['wampcra'], 'salty', craResponder('wrong-secret'), failed, 1);

  // AutobahnJS sends any authmethods list as is; it has no cryptosign support of its own,
  // but the router must ABORT before any challenge.
  await expectAbort('unknown authmethod only (cryptosign)', ['cryptosign'], 'joe',
    () => { throw new Error('no challenge expected'); }, 'wamp.error.no_auth_method', 0);

  finish();
}

main().catch((e) => {
  fail('scenario', fmtErr(e));
  finish(1);
});
