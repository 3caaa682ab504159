// The local stack itself: every worker serves /health through wrangler dev and reaches PostgREST,
// the shared HTTP plumbing answers in the one error shape, PostgREST enforces the printed JWTs,
// and the stand-in records and fails on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, rest, stack, standin, user } from './helpers.mjs';
import { generateKeyPairSync } from 'node:crypto';
import { signAsymmetric, signHs256, userClaims } from '../scripts/lib/jwt.mjs';

const FUNCTIONS = ['auth-email-verify', 'booking-reminders', 'cancel-session', 'create-session', 'find-experts', 'password-reset', 'payment-events'];

test('the status lists all seven functions and everything a developer needs', () => {
  assert.deepEqual(Object.keys(stack.functions).sort(), FUNCTIONS);
  for (const key of ['postgrest_url', 'db_url', 'standin_url', 'jwt_secret', 'anon_key', 'service_role_key']) assert.ok(stack[key], key);
  assert.deepEqual(stack.users.map((u) => u.role).sort(), ['agency_admin', 'client', 'expert', 'expert', 'expert', 'expert']);
});

for (const name of FUNCTIONS) {
  test(`${name} answers /health with its name, version and a reachable PostgREST`, async () => {
    const { status, json, headers } = await call(name, '/health');
    assert.equal(status, 200);
    assert.equal(json.name, name);
    assert.match(json.version, /^\d+\.\d+\.\d+$/);
    assert.equal(json.postgrest.reachable, true);
    assert.equal(json.postgrest.status, 200);
    assert.match(headers.get('x-request-id'), /^[0-9a-f-]{36}$/);
  });
}

test('an unknown route is a 404 in the shared error shape', async () => {
  const { status, json } = await call('create-session', '/nowhere');
  assert.equal(status, 404);
  assert.equal(json.error.code, 'not_found');
  assert.equal(typeof json.error.message, 'string');
  assert.deepEqual(json.error.details, {});
});

test('a wrong method is a 405 naming the allowed ones', async () => {
  const { status, json, headers } = await call('find-experts', '/health', { method: 'DELETE' });
  assert.equal(status, 405);
  assert.equal(json.error.code, 'method_not_allowed');
  assert.equal(headers.get('allow'), 'GET, OPTIONS');
});

test('a preflight from an allowed origin is answered with the CORS headers', async () => {
  const { status, headers } = await call('create-session', '/health', {
    method: 'OPTIONS',
    headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET' },
  });
  assert.equal(status, 204);
  assert.equal(headers.get('access-control-allow-origin'), 'http://localhost:3000');
  assert.match(headers.get('access-control-allow-headers'), /authorization/);
});

test('an origin that is not allowed gets no CORS header', async () => {
  const { headers } = await call('create-session', '/health', { headers: { origin: 'https://evil.example' } });
  assert.equal(headers.get('access-control-allow-origin'), null);
});

test('a request id sent by the caller is kept, a malformed one replaced', async () => {
  assert.equal((await call('cancel-session', '/health', { headers: { 'x-request-id': 'trace-123' } })).headers.get('x-request-id'), 'trace-123');
  assert.notEqual((await call('cancel-session', '/health', { headers: { 'x-request-id': 'bad id\u00e9' } })).headers.get('x-request-id'), 'bad id\u00e9');
});

test('PostgREST applies RLS to the printed client JWT and refuses a forged one', async () => {
  const client = user('client');
  const profiles = await rest('/profiles?select=id,role', { token: client.jwt });
  assert.ok(profiles.some((p) => p.id === client.id), 'the client sees its own profile');
  assert.ok(!profiles.some((p) => p.id === user('agency_admin').id), 'but not another non-expert\'s');
  const sessions = await rest('/sessions?select=id,client_id,expert_id', { token: client.jwt });
  assert.ok(sessions.length >= 3, 'the three seeded sessions at least');
  assert.ok(sessions.every((s) => s.client_id === client.id || s.expert_id === client.id), 'and only the client\'s own');
  const forged = signHs256({ sub: client.id, role: 'service_role', aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 }, 'not-the-secret-not-the-secret-xx');
  await assert.rejects(rest('/sessions?select=id', { token: forged }), /401/);
});

test('the stand-in records requests and fails when told to', async () => {
  await standin.reset();
  const send = () => fetch(`${stack.standin_url}/emails`, {
    method: 'POST',
    headers: { authorization: 'Bearer re_test', 'content-type': 'application/json', 'idempotency-key': 'k1' },
    body: JSON.stringify({ from: 'a@example.com', to: ['b@example.com'], subject: 'Hi', text: 'Hello' }),
  });
  await standin.fail('email', 503, 1);
  assert.equal((await send()).status, 503);
  const first = await (await send()).json();
  const again = await (await send()).json();
  assert.equal(again.id, first.id, 'the idempotency key returns the first answer');
  assert.equal((await standin.emails()).length, 1, 'one email accepted despite three requests');
  assert.equal((await standin.requests('email')).length, 3);
});

test('user tokens signed with the project\'s ES256 and RS256 keys are verified by the worker (WebCrypto) and by PostgREST', async () => {
  const client = user('client');
  for (const key of [stack.signing_keys.es256, stack.signing_keys.rs256]) {
    const token = signAsymmetric(userClaims(client), { alg: key.alg, kid: key.kid, privateKey: key.private_pem });
    const { status, json } = await call('find-experts', '/', { method: 'POST', token, body: { skills: ['react'] } });
    assert.equal(status, 200, `${key.alg}: ${JSON.stringify(json)}`);
    assert.ok(json.match_request_id, `${key.alg}: the search was recorded as the user, through PostgREST`);
  }
});

test('a token signed by an unknown key under a known kid, or with alg none, is refused', async () => {
  const client = user('client');
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
  const forged = signAsymmetric(userClaims(client), { alg: 'ES256', kid: stack.signing_keys.es256.kid, privateKey: stranger });
  const refused = await call('find-experts', '/', { method: 'POST', token: forged, body: { skills: ['react'] } });
  assert.deepEqual([refused.status, refused.json.error.message], [401, "The token's signature is invalid."]);
  const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(userClaims(client))).toString('base64url')}.`;
  assert.equal((await call('find-experts', '/', { method: 'POST', token: unsigned, body: { skills: ['react'] } })).status, 401);
});

// The Supabase CLI layout names what the README says: the stack's API and database ports (the
// dev profile's), the seed, the Send Email hook at auth-email-verify's dev port, and pgTAP files
// where `supabase test db` finds them.
test('supabase/config.toml matches the local stack for the Supabase CLI', async () => {
  const { readFileSync, readdirSync, existsSync } = await import('node:fs');
  const { PROFILES } = await import('../scripts/lib/stack.mjs');
  const { functionNames } = await import('../scripts/lib/build.mjs');
  const config = { top: {} };
  let section = config.top;
  for (const line of readFileSync(new URL('../supabase/config.toml', import.meta.url), 'utf8').split('\n')) {
    const header = line.match(/^\[([^\]]+)\]\s*$/);
    if (header) section = config[header[1]] = {};
    const entry = line.match(/^([a-z_]+)\s*=\s*(.+)$/);
    if (entry) section[entry[1]] = JSON.parse(entry[2].replace(/^\[(.*)\]$/, '[$1]'));
  }
  const base = PROFILES.dev.base;
  assert.equal(config.top.project_id, 'call-an-expert');
  assert.equal(config.api.port, base, 'the API port is the dev stack\'s PostgREST port');
  assert.equal(config.db.port, base + 1, 'the database port is the dev stack\'s');
  assert.equal(config.db.major_version, 15);
  assert.deepEqual(config['db.seed'], { enabled: true, sql_paths: ['./seed.sql'] });
  assert.ok(existsSync(new URL('../supabase/seed.sql', import.meta.url)));
  const hookPort = base + 10 + functionNames().indexOf('auth-email-verify');
  assert.deepEqual(config['auth.hook.send_email'], { enabled: true, uri: `http://host.docker.internal:${hookPort}/hook`, secrets: 'env(SEND_EMAIL_HOOK_SECRET)' });
  const pgTap = readdirSync(new URL('../supabase/tests/database/', import.meta.url));
  assert.ok(pgTap.filter((name) => name.endsWith('.test.sql')).length >= 16, 'the pgTAP files are in supabase/tests/database');
  assert.deepEqual(readdirSync(new URL('../supabase/tests/', import.meta.url)), ['database'], 'and nowhere else');
});

for (const name of FUNCTIONS) {
  test(`${name} serves its OpenAPI 3.1 document at GET /openapi.json, the one committed`, async () => {
    const { readFileSync } = await import('node:fs');
    const { status, json, headers } = await call(name, '/openapi.json');
    assert.equal(status, 200);
    assert.match(headers.get('content-type'), /^application\/json/);
    assert.deepEqual(json, JSON.parse(readFileSync(new URL(`../openapi/${name}.json`, import.meta.url), 'utf8')));
    assert.equal(json.openapi, '3.1.0');
  });
}

test('every function answers under /functions/v1/<name>, at its own origin and through the one router port', async () => {
  for (const name of FUNCTIONS) {
    const direct = await call(name, `/functions/v1/${name}/health`);
    assert.deepEqual([direct.status, direct.json.name], [200, name], `${name} at its origin`);
    const routed = await fetch(`${stack.router_url}/functions/v1/${name}/health`, { headers: { apikey: stack.anon_key, 'x-client-info': 'supabase-js/2' } });
    assert.deepEqual([routed.status, (await routed.json()).name], [200, name], `${name} through the router`);
  }
  const preflight = await fetch(`${stack.router_url}/functions/v1/create-session`, {
    method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, apikey, x-client-info, content-type' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  for (const header of ['authorization', 'apikey', 'x-client-info', 'content-type']) {
    assert.match(preflight.headers.get('access-control-allow-headers'), new RegExp(header), `supabase-js sends ${header}`);
  }
  const unknown = await fetch(`${stack.router_url}/functions/v1/nothing-here/health`);
  assert.equal(unknown.status, 404);
});
