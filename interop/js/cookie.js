#!/usr/bin/env node
// AutobahnJS WAMP-Cookie scenario for switchyard, over WebSocket. Run by
// interop/cookie_test.go.
//
//   node cookie.js --url ws://HOST:PORT/ws [--serializer json|msgpack|cbor] [--timeout 20]
//
// The router must run the listener and realm of cookie_test.go (startCookieNode): a
// WebSocket listener that hands out the cookie cbtid on each upgrade, and realm1 with
// ticket joe/s3cret (role user) and WAMP-Cookie.
//
// Checks, one connection each (the same as ../python/cookie.py):
//   - first connection, no cookie sent: the upgrade response has Set-Cookie cbtid=TOKEN
//     with HttpOnly and SameSite=Strict (no Secure: plain TCP); the session offers
//     ["cookie", "ticket"] as joe, gets one ticket CHALLENGE, joins with authmethod ticket;
//   - second connection sending Cookie: cbtid=TOKEN, offering only ["cookie"] and no
//     authid: no CHALLENGE, WELCOME authid joe, authrole user, authmethod cookie,
//     authprovider static; the session works (a call to wamp.session.count);
//   - a bogus cookie, offering only ["cookie"]: ABORT wamp.error.no_auth_method, no
//     CHALLENGE; and the same without any cookie.
//
// How AutobahnJS 22.11.1 gets there: in Node its WebSocket transport
// (lib/transport/websocket.js) creates a `ws` WebSocket with the options
// {agent, headers} taken from the transport config, so the transport option `headers`
// sends the Cookie header. The response is not exposed: AutobahnJS keeps the `ws`
// WebSocket (and its 'upgrade' event) to itself and reports only the negotiated
// subprotocol. The script therefore reads Set-Cookie through the transport option
// `agent`: an http.Agent whose addRequest (called by Node's http.ClientRequest for each
// request it makes through the agent) listens for that request's 'upgrade' event, the
// same event `ws` itself reads the 101 response from.
//
// Option parsing, checks and the hard timeout come from scenario.js (its --role, --realm
// and --prefix are accepted and ignored).
'use strict';

const S = require('./scenario.js');

const { opts, fail, check, finish, describe, fmtErr, closeConn, withTimeout } = S;
S.setTag('cookie');

const REALM = 'realm1';
const COOKIE = 'cbtid';

// join opens one WebSocket connection, sending Cookie: cbtid=cookie when given, and joins
// REALM offering authmethods as authid, answering a ticket CHALLENGE with ticket (no
// other CHALLENGE): scenario.js's join, keeping the upgrade response's headers
// (Node's IncomingMessage.headers: lower-case names, set-cookie an array).
async function join(authmethods, { authid, ticket, cookie } = {}) {
  const transport = S.transportFor(opts.url);
  if (transport.type !== 'websocket' || !opts.url.startsWith('ws:')) throw new Error('cookie.js needs a ws:// URL');
  return S.join({
    realm: REALM,
    transport,
    authmethods,
    authid,
    respond: (method) => {
      if (method === 'ticket' && ticket !== undefined) return ticket;
      throw new Error('unexpected challenge ' + method);
    },
    headers: cookie !== undefined ? { Cookie: `${COOKIE}=${cookie}` } : undefined,
    upgrade: true,
  });
}

// setCookie returns {token, attrs} of the cbtid Set-Cookie header in headers, or null.
function setCookie(headers) {
  for (const h of (headers && headers['set-cookie']) || []) {
    const m = new RegExp(`^${COOKIE}=([^;\\s]+)(.*)$`).exec(h);
    if (m) return { token: m[1], attrs: m[2] };
  }
  return null;
}

const methods = (r) => describe(r.challenges.map((c) => c.method));

async function main() {
  // 1. No cookie yet: the router sets one; ticket authenticates and the cookie is
  // remembered for joe.
  let r = await withTimeout(join(['cookie', 'ticket'], { authid: 'joe', ticket: 's3cret' }), 5000, 'first connection');
  const sc = setCookie(r.headers);
  check(`first connection: upgrade response sets cookie ${COOKIE}`, sc !== null, `response headers ${describe(r.headers)}`);
  if (sc) {
    const low = sc.attrs.toLowerCase();
    check('first connection: Set-Cookie has HttpOnly and SameSite=Strict, no Secure on plain TCP',
      low.includes('httponly') && low.includes('samesite=strict') && !/;\s*secure/.test(low), `attributes ${describe(sc.attrs)}`);
  }
  if (!r.joined) {
    fail('first connection: ticket joe', `not joined: closed ${r.closeReason}, reason ${describe(r.reason)}, details ${describe(r.details)}`);
    return finish();
  }
  let d = r.details || {};
  check('first connection: one ticket CHALLENGE (cookie offered, none sent)', methods(r) === '["ticket"]', `challenges ${methods(r)}`);
  check('first connection: WELCOME authid joe, authrole user, authmethod ticket',
    d.authid === 'joe' && d.authrole === 'user' && d.authmethod === 'ticket',
    `authid ${d.authid} authrole ${d.authrole} authmethod ${d.authmethod}`);
  await closeConn(r.conn);
  if (!sc) return finish();

  // 2. The cookie alone: joe again, without a CHALLENGE.
  r = await withTimeout(join(['cookie'], { cookie: sc.token }), 5000, 'cookie rejoin');
  if (!r.joined) {
    fail('cookie rejoin', `not joined: closed ${r.closeReason}, reason ${describe(r.reason)}, challenges ${methods(r)}`);
  } else {
    d = r.details || {};
    check('cookie rejoin: no CHALLENGE', r.challenges.length === 0, `challenges ${methods(r)}`);
    check('cookie rejoin: WELCOME authid joe', d.authid === 'joe', `authid ${describe(d.authid)}`);
    check('cookie rejoin: WELCOME authrole user', d.authrole === 'user', `authrole ${describe(d.authrole)}`);
    check('cookie rejoin: WELCOME authmethod cookie', d.authmethod === 'cookie', `authmethod ${describe(d.authmethod)}`);
    check('cookie rejoin: WELCOME authprovider static', d.authprovider === 'static', `authprovider ${describe(d.authprovider)}`);
    try {
      const n = await withTimeout(r.session.call('wamp.session.count'), 3000, 'wamp.session.count');
      check('cookie rejoin: session usable (wamp.session.count)', typeof n === 'number', `result ${describe(n)}`);
    } catch (e) {
      fail('cookie rejoin: session usable (wamp.session.count)', fmtErr(e));
    }
    await closeConn(r.conn);
  }

  // 3. A cookie the router never issued, and no cookie: no method left.
  for (const [name, cookie] of [['bogus cookie', 'A'.repeat(32)], ['no cookie', undefined]]) {
    r = await withTimeout(join(['cookie'], { cookie }), 5000, name);
    if (r.joined) {
      fail(name, `joined as ${r.details.authid}/${r.details.authrole} (authmethod ${r.details.authmethod})`);
      await closeConn(r.conn);
      continue;
    }
    check(`${name}, offering only cookie: ABORT wamp.error.no_auth_method`, r.reason === 'wamp.error.no_auth_method',
      `closed ${r.closeReason}, reason ${describe(r.reason)}, details ${describe(r.details)}`);
    check(`${name}: no CHALLENGE`, r.challenges.length === 0, `challenges ${methods(r)}`);
  }
  finish();
}

main().catch((e) => {
  fail('cookie scenario', fmtErr(e));
  finish(1);
});
