#!/usr/bin/env node
// AutobahnJS TLS scenario for switchyard: TLS client-certificate auth and TLS failures,
// over WebSocket (wss://). Run by interop/tls_test.go.
//
//   node tls.js --url wss://HOST:PORT/ws [--serializer json|msgpack|cbor] [--timeout 20]
//
// The router must run a TLS listener and the realms of tls_test.go (startTLSNode): its
// certificate is issued by the CA in env INTEROP_TLS_CA, it asks for client certificates
// of that CA, realm1 is anonymous and realm tlsauth has the tls principals alice (authid
// from the certificate's CN, role device) and bob (authid robert, role user). Env
// INTEROP_TLS_DIR holds the client certificates NAME.crt / NAME.key for alice, bob, eve
// (same CA, no principal) and outsider (CN alice, issued by a CA the router does not
// trust).
//
// Checks, one connection each, through an https.Agent that trusts only the test CA and
// presents the client certificate (scenario.js, tlsAgent; autobahn passes the transport
// option `agent` to the `ws` library):
//   - alice joins tlsauth offering only authmethod tls: no CHALLENGE, WELCOME authid
//     alice, authrole device, authmethod tls, authprovider static; then a call and an
//     event round trip on that session;
//   - bob likewise: WELCOME authid robert, authrole user;
//   - alice again, with autobahn's own transport option tlsConfiguration {ca, cert, key}
//     instead of an agent (note: autobahn then also sets rejectUnauthorized: false, so
//     that option never verifies the router's certificate);
//   - eve: ABORT wamp.error.authentication_failed (valid certificate, no principal);
//   - no client certificate, authmethods [tls]: ABORT wamp.error.no_auth_method;
//   - not trusting the test CA (Node's default trust store): the TLS handshake fails;
//     AutobahnJS reports the connection as "unreachable" (no WELCOME, no ABORT) and the
//     socket's error is a certificate verification error;
//   - presenting outsider's certificate: the router rejects it in the TLS handshake
//     (alert unknown ca), so the connection fails likewise.
// AutobahnJS cannot do RawSocket over TLS (rss://): its rawsocket.js connects with
// net.connect only (see scenario.js, transportFor).
//
// Option parsing, checks and the hard timeout come from scenario.js (its --role, --realm
// and --prefix are accepted and ignored).
'use strict';

const fs = require('fs');
const path = require('path');
const S = require('./scenario.js');

const { opts, ok, fail, check, finish, describe, fmtErr, closeConn, withTimeout } = S;
S.setTag('tls');

const REALM_TLS = 'tlsauth';
const CA = process.env.INTEROP_TLS_CA || '';
const DIR = process.env.INTEROP_TLS_DIR || '';

// files: the TLS files of one connection: trusting the test CA (else Node's default
// trust store) and presenting the client certificate cert of INTEROP_TLS_DIR (none:
// no certificate).
function files(cert, trust = true) {
  const f = { ca: trust ? CA : '', cert: '', key: '' };
  if (cert) { f.cert = path.join(DIR, cert + '.crt'); f.key = path.join(DIR, cert + '.key'); }
  return f;
}

// join is scenario.js's join of realm over transport (an AutobahnJS transport config)
// offering authmethods, expecting no CHALLENGE; socketErrors are the errors of the TLS
// sockets the agent made.
function join(transport, authmethods, realm = REALM_TLS) {
  return S.join({ realm, transport, authmethods });
}

async function roundTrip(name, s, key) {
  const proc = `tls.${key}.echo`;
  const topic = `tls.${key}.topic`;
  try {
    await withTimeout(s.register(proc, (args) => args), 3000, 'register');
    const res = await withTimeout(s.call(proc, ['hello', 42]), 3000, 'call');
    check(`${name}: call round trip`, describe(res) === describe(['hello', 42]), `result ${describe(res)}`);
    let got;
    const event = new Promise((r) => { got = r; });
    await withTimeout(s.subscribe(topic, (args) => got(args)), 3000, 'subscribe');
    await withTimeout(s.publish(topic, ['event', 7], {}, { acknowledge: true, exclude_me: false }), 3000, 'publish');
    const args = await withTimeout(event, 3000, 'event');
    check(`${name}: event round trip`, describe(args) === describe(['event', 7]), `args ${describe(args)}`);
  } catch (e) {
    fail(`${name}: call and event round trip`, fmtErr(e));
  }
}

async function expectWelcome(name, transport, key, authid, authrole) {
  const r = await withTimeout(join(transport, ['tls']), 5000, `${name}: WELCOME or ABORT`);
  if (!r.joined) {
    fail(name, `not joined: closed ${r.closeReason}, reason ${describe(r.reason)}, socket errors ${r.socketErrors.map(fmtErr).join('; ')}`);
    return;
  }
  const d = r.details || {};
  check(`${name}: no CHALLENGE`, r.challenges.length === 0, `challenges ${describe(r.challenges)}`);
  check(`${name}: WELCOME authid ${authid}`, d.authid === authid, `authid ${describe(d.authid)}`);
  check(`${name}: WELCOME authrole ${authrole}`, d.authrole === authrole, `authrole ${describe(d.authrole)}`);
  check(`${name}: WELCOME authmethod tls`, d.authmethod === 'tls', `authmethod ${describe(d.authmethod)}`);
  check(`${name}: WELCOME authprovider static`, d.authprovider === 'static', `authprovider ${describe(d.authprovider)}`);
  await roundTrip(name, r.session, key);
  await closeConn(r.conn);
}

async function expectAbort(name, cert, want) {
  const r = await withTimeout(join(S.transportFor(opts.url, files(cert)), ['tls']), 5000, `${name}: WELCOME or ABORT`);
  if (r.joined) {
    fail(name, `joined, want ABORT ${want}: authid ${r.details.authid} authrole ${r.details.authrole}`);
    await closeConn(r.conn);
    return;
  }
  check(`${name}: ABORT ${want}`, r.reason === want, `closed ${r.closeReason}, reason ${describe(r.reason)}, details ${describe(r.details)}`);
}

async function expectConnectFailure(name, tls, pattern) {
  const r = await withTimeout(join(S.transportFor(opts.url, tls), undefined, 'realm1'), 5000, `${name}: connection failure`);
  if (r.joined) {
    fail(name, `joined realm1 as ${r.details.authid}/${r.details.authrole}`);
    await closeConn(r.conn);
    return;
  }
  const errs = r.socketErrors.map((e) => `${e.code || ''} ${e.message}`).join('; ');
  check(`${name}: connection fails (${r.closeReason}; socket error ${errs || 'none'})`,
    r.closeReason === 'unreachable' && !r.reason && pattern.test(errs),
    `closed ${r.closeReason}, reason ${describe(r.reason)}, socket errors ${errs || 'none'}`);
}

async function main() {
  if (!CA || !DIR) {
    fail('environment', 'INTEROP_TLS_CA and INTEROP_TLS_DIR must be set');
    return finish(1);
  }
  try {
    S.transportFor(opts.url); // validate early: rss:// is impossible with AutobahnJS
  } catch (e) {
    fail('transport', e.message);
    return finish(1);
  }
  await expectWelcome('tls alice (static principal, authid from CN)', S.transportFor(opts.url, files('alice')),
    'alice', 'alice', 'device');
  await expectWelcome('tls bob (static principal with authid)', S.transportFor(opts.url, files('bob')),
    'bob', 'robert', 'user');
  const f = files('alice');
  const viaOption = S.transportFor(opts.url, files());
  delete viaOption.agent;
  viaOption.tlsConfiguration = { ca: fs.readFileSync(f.ca), cert: fs.readFileSync(f.cert), key: fs.readFileSync(f.key) };
  await expectWelcome('tls alice via autobahn tlsConfiguration', viaOption, 'alice2', 'alice', 'device');
  await expectAbort('tls eve (valid certificate, no principal)', 'eve', 'wamp.error.authentication_failed');
  await expectAbort('tls without client certificate', '', 'wamp.error.no_auth_method');
  await expectConnectFailure('not trusting the test CA', files('', false), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|self.signed|certificate/i);
  await expectConnectFailure('client certificate of another CA', files('outsider'), /unknown ca|bad certificate/i);
  finish();
}

main().catch((e) => {
  fail('tls scenario', fmtErr(e));
  finish(1);
});
