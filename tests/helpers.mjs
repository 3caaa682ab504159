// Shared by the end-to-end tests: the running test stack's status, typed calls to the workers,
// PostgREST and SQL for arranging and checking state, and the stand-in's controls.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { functionNames } from '../scripts/lib/build.mjs';
import { request as httpRequest } from 'node:http';
import { userToken } from '../scripts/lib/jwt.mjs';
import { sqlRows } from '../scripts/lib/fixtures.mjs';
import { psql } from '../scripts/lib/stack.mjs';

const statusPath = process.env.STACK_STATUS;
if (!statusPath) throw new Error('STACK_STATUS is not set: run the end-to-end tests through npm test');
export const stack = JSON.parse(readFileSync(statusPath, 'utf8'));

export const user = (role, index = 0) => stack.users.filter((u) => u.role === role)[index];
export const userByEmail = (email) => stack.users.find((u) => u.email === email);

// Every answer a test receives from a worker is checked against the worker's OpenAPI document
// (openapi/<function>.json): a status it does not list, or a body that breaks its schema, fails
// the test, so the document cannot drift from the code.
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
for (const name of functionNames()) {
  ajv.addSchema(JSON.parse(readFileSync(new URL(`../openapi/${name}.json`, import.meta.url), 'utf8')), `openapi:${name}`);
}
const pointer = (...parts) => parts.map((part) => String(part).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export function checkAgainstOpenApi(fn, method, path, status, text) {
  const route = path.split('?')[0].replace(new RegExp(`^/functions/v1/${fn}(?=/|$)`), '') || '/';
  const document = ajv.getSchema(`openapi:${fn}`).schema;
  const item = document.paths[route];
  const operation = item?.[method.toLowerCase()];
  const where = `${fn} ${method} ${route} answered ${status}`;
  if (!operation) {
    // Outside the document: only the shared plumbing's answers (an unknown route, a wrong method).
    if (![404, 405].includes(status)) throw new Error(`${where}: the route is not in its OpenAPI document`);
    const valid = ajv.validate({ $ref: `openapi:${fn}#/components/schemas/Error` }, JSON.parse(text));
    if (!valid) throw new Error(`${where}: not the error shape: ${ajv.errorsText()}`);
    return;
  }
  const response = operation.responses[String(status)];
  if (!response) throw new Error(`${where}, a status its OpenAPI document does not list (${Object.keys(operation.responses).join(', ')})`);
  if (!response.content) {
    if (text) throw new Error(`${where} with a body its OpenAPI document does not describe`);
    return;
  }
  let body;
  try { body = JSON.parse(text); } catch { throw new Error(`${where} with a body that is not JSON: ${text.slice(0, 200)}`); }
  const schema = `openapi:${fn}#/${pointer('paths', route, method.toLowerCase(), 'responses', status, 'content', 'application/json', 'schema')}`;
  if (!ajv.validate({ $ref: schema }, body)) {
    throw new Error(`${where} with a body its OpenAPI document does not allow: ${ajv.errorsText(ajv.errors, { separator: '; ' })}\n${text.slice(0, 500)}`);
  }
}

// Calls a worker; `token` is sent as a bearer token, `body` as JSON. Each call opens its own
// connection (no keep-alive), so a server closing an idle pooled connection cannot race a test.
export function call(fn, path, { method = 'GET', body, token, headers = {} } = {}) {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = httpRequest(new URL(`${stack.functions[fn]}${path}`), {
      method,
      agent: false,
      headers: {
        ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        try {
          checkAgainstOpenApi(fn, method, path, response.statusCode, text);
        } catch (error) {
          reject(error);
          return;
        }
        resolve({ status: response.statusCode, headers: new Headers(Object.entries(response.headers).map(([k, v]) => [k, String(v)])), json, text });
      });
    });
    request.on('error', reject);
    request.end(payload);
  });
}

// PostgREST with a given token (service_role by default, which bypasses RLS).
export async function rest(path, { method = 'GET', body, prefer, token = stack.service_role_key } = {}) {
  const response = await fetch(`${stack.postgrest_url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, apikey: stack.anon_key, 'content-type': 'application/json', ...(prefer ? { prefer } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`PostgREST ${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

// PostgREST as a direct caller would use it: the answer whatever its status.
export async function postgrest(path, { method = 'GET', body, token, headers = {} } = {}) {
  const response = await fetch(`${stack.postgrest_url}${path}`, {
    method,
    headers: { apikey: stack.anon_key, 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: response.status, json, text };
}

// Side effects happen after the response (the dispatcher runs once the answer has gone):
// polls `probe` until it returns something truthy, failing with `what` after `timeoutMs`.
export async function eventually(what, probe, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// The dispatcher's run for everything due, as the cron trigger runs it.
export const runDispatcher = () => call('booking-reminders', '/run', { method: 'POST', token: stack.service_role_key });

// Makes a session's queued outbox rows due now (their backoff or due time passed).
export const makeOutboxDue = (sessionId, topicLike = '%') =>
  exec(`update outbox set next_attempt_at = now() - interval '1 second' where session_id = '${sessionId}' and topic like '${topicLike}' and status = 'pending'`);

export const standin = {
  reset: () => fetch(`${stack.standin_url}/__standin/reset`, { method: 'POST' }),
  requests: async (service) => (await fetch(`${stack.standin_url}/__standin/requests${service ? `?service=${service}` : ''}`)).json(),
  emails: async () => (await fetch(`${stack.standin_url}/__standin/emails`)).json(),
  fail: (service, status = 500, times = 1) =>
    fetch(`${stack.standin_url}/__standin/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, status, times }) }),
  delay: (service, ms) =>
    fetch(`${stack.standin_url}/__standin/delay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, ms }) }),
  // The emails accepted for these addresses, once at least `count` of them have arrived.
  emailsTo: async (addresses, count = 1) => eventually(`${count} email(s) to ${addresses.join(', ')}`, async () => {
    const emails = (await standin.emails()).filter((email) => addresses.includes(email.to[0]));
    return emails.length >= count && emails;
  }),
};

// SQL as the superuser, for arranging what no API may do (past sessions, new users) and for
// checking the database directly. Returns the rows as JSON.
export const sql = (query) => sqlRows(stack.db_superuser_url, query);

export function exec(statement) {
  psql(stack.db_superuser_url, ['-c', statement]);
}

// A new signed-in client with a ready JWT.
export function newClient(label) {
  const email = `${label}-${Math.random().toString(36).slice(2, 10)}@example.com`;
  const [{ id }] = sql(`insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
    values (gen_random_uuid(), 'authenticated', 'authenticated', '${email}', '{"full_name": "Test Client", "timezone": "Asia/Tokyo"}', now(), now()) returning id`);
  return { id, email, jwt: userToken({ id, email }, stack.jwt_secret) };
}

// A new active expert (no availability rules) with a ready JWT and, unless `payouts` is false,
// a Connect account that finished onboarding (at the stand-in and in the database).
export async function newExpert(label, { rate = 9000, timezone = 'America/Los_Angeles', payouts = true } = {}) {
  const email = `${label}-${Math.random().toString(36).slice(2, 10)}@example.com`;
  const [{ id }] = sql(`insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
    values (gen_random_uuid(), 'authenticated', 'authenticated', '${email}', '{"full_name": "Test Expert", "role": "expert", "timezone": "${timezone}"}', now(), now()) returning id`);
  exec(`insert into expert_profiles (id, hourly_rate_cents, currency, timezone) values ('${id}', ${rate}, 'USD', '${timezone}')`);
  if (payouts) {
    const account = await stripe.control('POST', '/accounts', { expert_id: id, email });
    exec(`insert into payout_accounts (expert_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted, reported_at)
          values ('${id}', '${account.id}', true, true, true, now())`);
  }
  return { id, email, jwt: userToken({ id, email }, stack.jwt_secret) };
}

// Stripe's side, played by the stand-in: its control routes, and the browser's part (Stripe.js
// confirming a PaymentIntent with the publishable key and the client secret).
export const stripe = {
  control: async (method, path, body) => {
    const response = await fetch(`${stack.standin_url}/__standin/stripe${path}`, {
      method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`stand-in ${method} ${path} answered ${response.status}: ${JSON.stringify(json)}`);
    return json;
  },
  delivery: (mode) => stripe.control('POST', '/delivery', { mode }),
  release: (order = 'in_order') => stripe.control('POST', '/release', { order }),
  // Waits until every event sent so far has been answered.
  settle: () => stripe.control('POST', '/settle'),
  deliveries: () => stripe.control('GET', '/deliveries'),
  objects: () => stripe.control('GET', '/objects'),
  confirm: async (payment, paymentMethod = 'pm_card_visa') => {
    const response = await fetch(`${stack.stripe.api_url}/v1/payment_intents/${payment.payment_intent_id}/confirm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.stripe.publishable_key}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_secret: payment.client_secret, payment_method: paymentMethod }).toString(),
    });
    await stripe.settle();
    return { status: response.status, json: await response.json() };
  },
};

// A call to the Stripe API (the stand-in) with the platform's secret key, as a worker makes it.
export async function stripeApi(path, params, { method = 'POST', idempotencyKey } = {}) {
  const response = await fetch(`${stack.stripe.api_url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.stripe.secret_key}`, 'content-type': 'application/x-www-form-urlencoded',
               ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
    body: method === 'GET' ? undefined : new URLSearchParams(params).toString(),
  });
  return { status: response.status, json: await response.json() };
}

// A session arranged in the database (at any time, outside any hours: what no API may book),
// paid through Stripe as create-session and the browser would have: its PaymentIntent succeeded
// (confirmed) or authorised (requested), its ledger mirrored from Stripe's events. What its
// arrival queued is dropped, as if it went out long ago.
export async function insertPaidSession({ clientId, expertId, hoursAhead, status = 'confirmed', minutes = 75 }) {
  const offset = Math.round(hoursAhead * 60);
  const [session] = sql(`
    insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
    select '${clientId}', e.id, date_trunc('minute', now()) + make_interval(mins => ${offset}), date_trunc('minute', now()) + make_interval(mins => ${offset} + ${minutes}),
           ${minutes}, '${status}', e.hourly_rate_cents, (e.hourly_rate_cents * ${minutes} + 30) / 60, ((e.hourly_rate_cents * ${minutes} + 30) / 60 * 1000 + 5000) / 10000,
           (e.hourly_rate_cents * ${minutes} + 30) / 60 - ((e.hourly_rate_cents * ${minutes} + 30) / 60 * 1000 + 5000) / 10000, e.currency
    from expert_profiles e where e.id = '${expertId}'
    returning id, amount_cents, platform_fee_cents, lower(currency) as currency, (select stripe_account_id from payout_accounts where expert_id = '${expertId}') as destination`);
  exec(`delete from outbox where session_id = '${session.id}'`);
  const intent = await stripeApi('/v1/payment_intents', {
    amount: session.amount_cents, currency: session.currency, capture_method: status === 'requested' ? 'manual' : 'automatic',
    application_fee_amount: session.platform_fee_cents, 'transfer_data[destination]': session.destination, 'metadata[session_id]': session.id,
  });
  if (intent.status !== 200) throw new Error(`the stand-in refused the PaymentIntent: ${JSON.stringify(intent.json)}`);
  exec(`update sessions set payment_intent_id = '${intent.json.id}' where id = '${session.id}'`);
  await stripe.confirm({ payment_intent_id: intent.json.id, client_secret: intent.json.client_secret });
  return session.id;
}

export const sessionRow = (id) => sql(`select * from sessions where id = '${id}'`)[0];

// Books through create-session and pays as the browser would, once Stripe's events have moved
// the session on: the booking's answer and the session as it is then.
export async function bookAndPay(token, body, paymentMethod = 'pm_card_visa') {
  const booked = await call('create-session', '/', { method: 'POST', token, body });
  if (booked.status !== 201) return { ...booked, session: undefined };
  await stripe.confirm(booked.json.payment, paymentMethod);
  const session = await eventually('the payment to book the session', () => {
    const row = sessionRow(booked.json.session.id);
    return (paymentMethod !== 'pm_card_visa' || row.status !== 'awaiting_payment') && row;
  });
  return { ...booked, session };
}

// What a session's ledger sums to against what the money rules say (service_role_reconcile_session).
export const reconcile = (sessionId) => rest('/rpc/service_role_reconcile_session', { method: 'POST', body: { session_id: sessionId } });

let dayCursor = 2;
// A start inside an expert's weekly hours (weekdays 09:00-17:00 local) on a weekday no other
// test has used yet and the expert has nothing booked, at `hour` local time.
export function freeWeekdayStart(expertId, hour = 12) {
  const [{ starts }] = sql(`
    select (d::date + make_time(${hour}, 0, 0)) at time zone e.timezone as starts
    from public.expert_profiles e, generate_series(current_date + ${dayCursor}, current_date + 80, interval '1 day') d
    where e.id = '${expertId}' and extract(isodow from d) < 6
      and not exists (select 1 from public.sessions s where s.expert_id = e.id and (s.starts_at at time zone e.timezone)::date = d::date)
    order by d limit 1`);
  const [{ next }] = sql(`select ((timestamptz '${starts}' at time zone 'UTC')::date - current_date + 1) as next`);
  dayCursor = next;
  return new Date(starts).toISOString();
}

export const EXPERTS = {
  ada: '22222222-2222-4222-8222-222222222201',
  finn: '22222222-2222-4222-8222-222222222202',
  devon: '22222222-2222-4222-8222-222222222203',
  rae: '22222222-2222-4222-8222-222222222204',
};

const sum = (values) => values.reduce((total, value) => total + (value ?? 0), 0);

// The session's ledger reconciled, and equal to the stand-in's record of what Stripe was asked
// to do for it: captured, refunded (of captured charges), application fees kept, transfers
// reversed; every one of those Stripe objects named by a ledger row.
export async function assertLedgerMatchesStripe(sessionId, assert, { reconciled: expectReconciled = true } = {}) {
  await stripe.settle();
  const objects = await stripe.objects();
  const intents = objects.payment_intents.filter((pi) => pi.metadata.session_id === sessionId);
  const charges = objects.charges.filter((c) => intents.some((pi) => pi.id === c.payment_intent));
  const captured = charges.filter((c) => c.captured);
  const refunds = objects.refunds.filter((r) => captured.some((c) => c.id === r.charge) && ['pending', 'succeeded'].includes(r.status));
  const fees = objects.application_fees.filter((f) => captured.some((c) => c.application_fee === f.id));
  const feeRefunds = objects.fee_refunds.filter((f) => fees.some((fee) => fee.id === f.fee));
  const reversals = objects.transfer_reversals.filter((r) => captured.some((c) => c.transfer === r.transfer));
  const atStripe = {
    captured_cents: sum(captured.map((c) => c.amount_captured)),
    refunded_cents: sum(refunds.map((r) => r.amount)),
    platform_fee_cents: sum(fees.map((f) => f.amount)) - sum(feeRefunds.map((f) => f.amount)),
    transfer_reversed_cents: sum(reversals.map((r) => r.amount)),
  };
  atStripe.net_cents = atStripe.captured_cents - atStripe.refunded_cents;
  atStripe.expert_payout_cents = atStripe.captured_cents - sum(fees.map((f) => f.amount)) - atStripe.transfer_reversed_cents + sum(feeRefunds.map((f) => f.amount));
  const reconciled = await eventually(`the ledger of ${sessionId} to match Stripe's record`, async () => {
    const answer = await reconcile(sessionId);
    return JSON.stringify(Object.keys(atStripe).sort().map((key) => answer.ledger[key])) === JSON.stringify(Object.keys(atStripe).sort().map((key) => atStripe[key])) && answer;
  }).catch(async () => reconcile(sessionId));
  assert.deepEqual(reconciled.ledger, atStripe, 'the ledger sums to what Stripe was asked to do');
  assert.equal(reconciled.reconciled, expectReconciled,
    expectReconciled ? `the ledger holds what the money rules give: ${JSON.stringify(reconciled)}` : 'the ledger shows the money the rules did not give');
  const named = new Set(sql(`select provider_ref from payments where session_id = '${sessionId}'`).map((row) => row.provider_ref));
  for (const object of [...intents, ...captured, ...refunds, ...feeRefunds, ...reversals]) {
    assert.ok(named.has(object.id), `the ledger mirrors ${object.object} ${object.id}`);
  }
  return reconciled;
}
