// A hostile client skipping the workers: straight at PostgREST with its own JWT and arguments
// the workers would never send. Whatever gets through must be what the functions allow.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { call, EXPERTS, exec, freeWeekdayStart, insertPaidSession, newClient, newExpert, postgrest, sql, stack, standin, stripe, user } from './helpers.mjs';

beforeEach(() => standin.reset());

// Ada: 150.00/h, instant booking; 60 minutes are 15000 with a 1500 fee at the default 1000 bps.
const bookDirectly = (token, overrides = {}, headers = {}) => postgrest('/rpc/book_session', {
  method: 'POST', token, headers,
  body: { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada, 15), duration_minutes: 60, hourly_rate_cents: 15000,
          commission_bps: 1000, amount_cents: 15000, platform_fee_cents: 1500, expert_payout_cents: 13500, currency: 'USD', ...overrides },
});

describe('book_session called directly', () => {
  test('a commission of the caller\'s choosing is refused with the server\'s price', async () => {
    const mallory = newClient('mallory');
    for (const split of [{ commission_bps: 0, platform_fee_cents: 0, expert_payout_cents: 15000 }, { commission_bps: 10000, platform_fee_cents: 15000, expert_payout_cents: 0 }]) {
      const { status, json } = await bookDirectly(mallory.jwt, split);
      assert.deepEqual([status, json.hint], [409, 'price_changed'], JSON.stringify(split));
      assert.equal(JSON.parse(json.details).price.platform_fee_cents, 1500, 'the answer names the server\'s fee');
    }
    assert.equal(sql(`select count(*)::int as n from sessions where client_id = '${mallory.id}'`)[0].n, 0, 'nothing was booked');
  });

  test('a room of the caller\'s choosing cannot even be named; the platform\'s is derived from the id', async () => {
    const mallory = newClient('mallory-room');
    const named = await bookDirectly(mallory.jwt, { room_name: 'evil', room_url: 'https://evil.example/join' });
    assert.equal(named.status, 404, 'PostgREST finds no book_session taking a room');
    assert.equal(named.json.code, 'PGRST202');
    const { status, json } = await bookDirectly(mallory.jwt);
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.room_url, `https://call-an-expert.daily.co/cae-${json.id}`);
  });

  test('audit facts are what PostgREST received; the forged context is kept as a claim', async () => {
    const mallory = newClient('mallory-audit');
    const { status, json } = await bookDirectly(mallory.jwt, { context: { ip: '6.6.6.6', user_agent: 'Forged/1.0', request_id: 'forged' } },
      { 'user-agent': 'MalloryScript/2.0', 'x-request-id': 'direct-1' });
    assert.equal(status, 200, JSON.stringify(json));
    const [row] = sql(`select host(ip) as ip, user_agent, request_id, reported_context from audit_logs where entity_id = '${json.id}' and action = 'session.created'`);
    assert.deepEqual(row, { ip: null, user_agent: 'MalloryScript/2.0', request_id: 'direct-1', reported_context: { ip: '6.6.6.6', user_agent: 'Forged/1.0', request_id: 'forged' } });
  });

  test('through create-session, the audit row carries the worker\'s request id as a fact and the client\'s address as reported', async () => {
    const booker = newClient('audited');
    const { status, json } = await call('create-session', '/', {
      method: 'POST', token: booker.jwt, headers: { 'x-request-id': 'trace-audit-1', 'cf-connecting-ip': '198.51.100.7' },
      body: { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada, 14), duration_minutes: 60 },
    });
    assert.equal(status, 201, JSON.stringify(json));
    const [row] = sql(`select request_id, reported_context ->> 'ip' as reported_ip from audit_logs where entity_id = '${json.session.id}' and action = 'session.created'`);
    assert.deepEqual(row, { request_id: 'trace-audit-1', reported_ip: '198.51.100.7' });
  });
});

describe('payments called directly', () => {
  test('a held session cannot be paid for by writing the database or by handing in a Stripe object', async () => {
    const mallory = newClient('mallory-pay');
    const { json: held } = await bookDirectly(mallory.jwt);
    assert.equal(held.status, 'awaiting_payment');
    // The client's own PATCH changes nothing (checked below, with the rest).
    await postgrest(`/sessions?id=eq.${held.id}`, { method: 'PATCH', token: mallory.jwt, body: { status: 'confirmed' } });
    const ada = user('expert');
    const byExpert = await postgrest(`/sessions?id=eq.${held.id}`, { method: 'PATCH', token: ada.jwt, body: { status: 'confirmed' } });
    assert.deepEqual([byExpert.status, byExpert.json.hint], [403, 'payment_pending'], 'not even the expert confirms an unpaid hold');
    const paid = { object: 'payment_intent', id: 'pi_forged', status: 'succeeded', amount: 15000, currency: 'usd', metadata: { session_id: held.id } };
    for (const [fn, body] of [['service_role_record_stripe_objects', { objects: [paid] }],
      ['service_role_receive_stripe_event', { signed_at: Math.floor(Date.now() / 1000), event: { id: 'evt_forged', object: 'event', type: 'payment_intent.succeeded', created: 1, data: { object: paid } } }]]) {
      const forged = await postgrest(`/rpc/${fn}`, { method: 'POST', token: mallory.jwt, body });
      assert.equal(forged.status, 403, `${fn}: ${forged.text}`);
    }
    const ledger = await postgrest(`/payments?session_id=eq.${held.id}`, { method: 'POST', token: mallory.jwt,
      body: { session_id: held.id, kind: 'payment_intent', provider_ref: 'pi_forged', status: 'succeeded', amount_cents: 15000, currency: 'USD', reported_at: new Date().toISOString() } });
    assert.equal(ledger.status, 403, 'nor write the ledger');
    assert.deepEqual(sql(`select status, payment_intent_id from sessions where id = '${held.id}'`), [{ status: 'awaiting_payment', payment_intent_id: null }]);
  });
});

describe('public and presence endpoints called directly', () => {
  test('find_experts refuses what the worker would: a window of decades, too many skills, a huge page', async () => {
    for (const body of [
      { skills: ['react'], window_from: '2060-01-01T00:00:00Z', window_to: '2060-12-31T00:00:00Z' },
      { skills: Array.from({ length: 11 }, (_, i) => `s${i}`) },
      { skills: ['react'], page_size: 1000 },
      { skills: ['react'], duration_minutes: 61 },
    ]) {
      const { status, json } = await postgrest('/rpc/find_experts', { method: 'POST', body });
      assert.deepEqual([status, json.hint], [400, 'invalid_search'], JSON.stringify(body));
    }
    assert.equal((await postgrest('/rpc/find_experts', { method: 'POST', body: { skills: ['react'] } })).status, 200, 'a sane search is answered');
  });

  test('a signed-in user searching faster than 60 a minute is told to wait, by the worker too', async () => {
    const eager = newClient('eager');
    exec(`insert into match_requests (client_id, skills) select '${eager.id}', '{react}' from generate_series(1, 60)`);
    const direct = await postgrest('/rpc/find_experts', { method: 'POST', token: eager.jwt, body: { skills: ['react'] } });
    assert.deepEqual([direct.status, direct.json.hint], [429, 'rate_limited']);
    const viaWorker = await call('find-experts', '/', { method: 'POST', token: eager.jwt, body: { skills: ['react'] } });
    assert.deepEqual([viaWorker.status, viaWorker.json.error.code], [429, 'rate_limited']);
    assert.ok(Number(viaWorker.headers.get('retry-after')) >= 1);
  });

  test('presence is stamped with the server\'s clock; a time in 2099 is refused', async () => {
    const ada = user('expert');
    const forged = await postgrest('/online_status?on_conflict=profile_id', {
      method: 'POST', token: ada.jwt, headers: { prefer: 'resolution=merge-duplicates' }, body: { profile_id: ada.id, is_online: true, last_seen_at: '2099-01-01T00:00:00Z' },
    });
    assert.equal(forged.status, 403);
    const honest = await postgrest('/online_status?on_conflict=profile_id', {
      method: 'POST', token: ada.jwt, headers: { prefer: 'resolution=merge-duplicates' }, body: { profile_id: ada.id, is_online: true },
    });
    assert.ok([200, 201].includes(honest.status), honest.text);
    const [{ seconds }] = sql(`select abs(extract(epoch from now() - last_seen_at))::int as seconds from online_status where profile_id = '${ada.id}'`);
    assert.ok(seconds < 60, `last seen ${seconds} s from now`);
  });

  test('public reviews come without user or session ids', async () => {
    assert.equal((await postgrest('/reviews?select=reviewer_id,session_id')).status, 401, 'anon reads no review row');
    const { status, json } = await postgrest(`/rpc/expert_reviews?expert_id=${EXPERTS.ada}`);
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(json[0]).sort(), ['comment', 'created_at', 'rating', 'review_id', 'reviewer_name']);
    assert.equal(json[0].reviewer_name, 'Casey C.');
  });

  test('an agency admin reads their experts\' calendar without notes, links or clients', async () => {
    const avery = user('agency_admin');
    assert.deepEqual((await postgrest('/sessions?select=id,notes', { token: avery.jwt })).json, []);
    const { status, json } = await postgrest('/rpc/agency_sessions', { method: 'POST', token: avery.jwt, body: {} });
    assert.equal(status, 200);
    const seeded = json.find((s) => s.session_id === '55555555-5555-4555-8555-555555555503');
    assert.ok(seeded, 'Rae\'s requested session is listed');
    for (const hidden of ['notes', 'room_url', 'room_name', 'client_id']) assert.ok(!(hidden in seeded), hidden);
  });
});

describe('the status machine called directly', () => {
  test('an expert cannot confirm a request once it has started; the dispatcher expires it and releases the authorisation', async () => {
    const expert = await newExpert('late-answer');
    const booker = newClient('late-answer-client');
    const id = await insertPaidSession({ clientId: booker.id, expertId: expert.id, hoursAhead: -5 / 60, minutes: 60, status: 'requested' });
    const late = await postgrest(`/sessions?id=eq.${id}`, { method: 'PATCH', token: expert.jwt, body: { status: 'confirmed' } });
    assert.deepEqual([late.status, late.json.hint], [409, 'too_late_to_answer']);
    const run = await call('booking-reminders', '/run', { method: 'POST', token: stack.service_role_key });
    assert.equal(run.status, 200, JSON.stringify(run.json));
    assert.ok(run.json.expired >= 1);
    assert.equal(sql(`select status from sessions where id = '${id}'`)[0].status, 'expired');
    const intent = (await stripe.objects()).payment_intents.find((pi) => pi.metadata.session_id === id);
    assert.deepEqual([intent.status, intent.cancellation_reason], ['canceled', 'abandoned'], 'the card authorisation is released at Stripe');
  });

  test('an expert cannot start a session an hour early, nor complete it before it starts', async () => {
    const expert = await newExpert('eager-expert');
    const booker = newClient('eager-expert-client');
    const confirmedIn = (minutes) => sql(`
      insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
      values ('${booker.id}', '${expert.id}', date_trunc('minute', now()) + interval '${minutes} minutes', date_trunc('minute', now()) + interval '${minutes + 60} minutes',
              60, 'confirmed', 9000, 9000, 900, 8100, 'USD')
      returning id`)[0].id;
    const patch = (id, status) => postgrest(`/sessions?id=eq.${id}`, { method: 'PATCH', token: expert.jwt, body: { status } });
    const later = confirmedIn(120);
    const early = await patch(later, 'in_progress');
    assert.deepEqual([early.status, early.json.hint], [409, 'too_early_to_start']);
    const soon = confirmedIn(10);
    assert.equal((await patch(soon, 'in_progress')).status, 204, 'ten minutes before its start it can begin');
    const done = await patch(soon, 'completed');
    assert.deepEqual([done.status, done.json.hint], [409, 'not_started']);
    assert.deepEqual(sql(`select status from sessions where id in ('${later}', '${soon}') order by starts_at`).map((r) => r.status), ['in_progress', 'confirmed']);
  });
});
