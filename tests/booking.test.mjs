// create-session, cancel-session and find-experts end to end: the built workers under wrangler
// dev, the real PostgREST and Postgres, the stand-in for Stripe, Daily.co and Resend.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { bookAndPay, call, eventually, EXPERTS, exec, freeWeekdayStart, insertPaidSession, makeOutboxDue, newClient, newExpert, postgrest, reconcile, runDispatcher, sql, stack, standin, stripe, user, userByEmail } from './helpers.mjs';

const client = user('client');
const book = (token, body) => call('create-session', '/', { method: 'POST', token, body });
const cancel = (token, body) => call('cancel-session', '/', { method: 'POST', token, body });
const fieldsOf = (json) => json.error.details.fields.map((f) => `${f.field}:${f.rule}`);

beforeEach(() => standin.reset());

describe('create-session', () => {
  test('an instant-booking expert is booked once paid, priced by the rules, with room, ledger, history, audit and emails', async () => {
    const booker = newClient('instant');
    const starts_at = freeWeekdayStart(EXPERTS.ada, 10);
    const { status, json, session } = await bookAndPay(booker.jwt, { expert_id: EXPERTS.ada, starts_at, duration_minutes: 75, notes: 'Cursor rules' });
    assert.equal(status, 201, JSON.stringify(json));
    assert.equal(json.session.status, 'awaiting_payment', 'the slot is held until the payment is made');
    assert.match(json.payment.client_secret, /^pi_\w+_secret_\w+$/, 'the browser confirms the payment with Stripe.js');
    assert.equal(session.status, 'confirmed', 'Stripe reporting the payment confirms the instant booking');
    assert.deepEqual(json.price, { hourly_rate_cents: 15000, duration_minutes: 75, commission_bps: 1000, amount_cents: 18750, platform_fee_cents: 1875, expert_payout_cents: 16875, currency: 'USD' });
    const id = json.session.id;
    assert.equal(json.session.room_name, `cae-${id}`);
    assert.equal(json.session.room_url, `https://call-an-expert.daily.co/cae-${id}`, 'the room link is the platform\'s, derived from the id');
    const [intent] = (await stripe.objects()).payment_intents.filter((pi) => pi.metadata.session_id === id);
    assert.deepEqual([intent.amount, intent.currency, intent.application_fee_amount, intent.capture_method, intent.transfer_data.destination],
      [18750, 'usd', 1875, 'automatic', 'acct_seed01'], 'a destination charge to the expert\'s account, the fee as application fee');
    assert.deepEqual(sql(`select kind, status, amount_cents, captured_cents, application_fee_cents from payments where session_id = '${id}' order by kind`), [
      { kind: 'charge', status: 'succeeded', amount_cents: 18750, captured_cents: 18750, application_fee_cents: 1875 },
      { kind: 'payment_intent', status: 'succeeded', amount_cents: 18750, captured_cents: null, application_fee_cents: 1875 }]);
    assert.equal((await reconcile(id)).reconciled, true);
    assert.deepEqual(sql(`select from_status, to_status, changed_by from session_status_history where session_id = '${id}' order by id`), [
      { from_status: null, to_status: 'awaiting_payment', changed_by: booker.id }, { from_status: 'awaiting_payment', to_status: 'confirmed', changed_by: null }]);
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${id}' and action = 'session.created' and actor_id = '${booker.id}'`)[0].n, 1);
    const rooms = await eventually('the room', async () => (await standin.requests('daily')).length > 0 && standin.requests('daily'));
    assert.deepEqual(rooms.map((r) => [r.method, r.body?.name]), [['POST', `cae-${id}`]]);
    const emails = await standin.emailsTo([booker.email, 'ada.ai@example.com'], 2);
    assert.deepEqual(emails.map((e) => e.to[0]).sort(), [booker.email, 'ada.ai@example.com'].sort());
    assert.ok(emails.every((e) => e.idempotency_key.startsWith('outbox/')), 'sent as one batch under an idempotency key');
    const toClient = emails.find((e) => e.to[0] === booker.email);
    assert.match(toClient.text, /\(Asia\/Tokyo, UTC\+09:00\)/, 'the client reads the time in their own zone');
    assert.match(toClient.text, /Price: 187\.50 USD/);
  });

  test('an expert without instant booking gets a request once the payment is authorised, captured later', async () => {
    const booker = newClient('request');
    const { status, json, session } = await bookAndPay(booker.jwt, { expert_id: EXPERTS.finn, starts_at: freeWeekdayStart(EXPERTS.finn, 11), duration_minutes: 60 });
    assert.equal(status, 201);
    assert.equal(session.status, 'requested');
    assert.deepEqual(sql(`select kind, status, captured_cents from payments where session_id = '${json.session.id}' order by kind`),
      [{ kind: 'charge', status: 'succeeded', captured_cents: 0 }, { kind: 'payment_intent', status: 'requires_capture', captured_cents: null }]);
  });

  test('every bad field is named at once', async () => {
    const { status, json } = await book(client.jwt, { expert_id: 'nope', starts_at: 'tomorrow', duration_minutes: 70 });
    assert.equal(status, 400);
    assert.equal(json.error.code, 'validation_failed');
    assert.deepEqual(fieldsOf(json), ['expert_id:uuid', 'starts_at:format', 'duration_minutes:step']);
  });

  test('malformed JSON, an unknown field, a wrong content type and an oversized body are refused', async () => {
    assert.equal((await book(client.jwt, '{"expert_id": ')).json.error.code, 'invalid_json');
    const unknown = await book(client.jwt, { expert_id: EXPERTS.ada, amount_cents: 1 });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error.message, /unknown field `amount_cents`/);
    const wrongType = await call('create-session', '/', { method: 'POST', token: client.jwt, body: 'x=1', headers: { 'content-type': 'text/plain' } });
    assert.equal(wrongType.status, 415);
    const huge = await book(client.jwt, { expert_id: EXPERTS.ada, notes: 'x'.repeat(70 * 1024) });
    assert.equal(huge.status, 413);
  });

  test('without a user token the answer is 401', async () => {
    assert.equal((await book(undefined, { expert_id: EXPERTS.ada })).status, 401);
    assert.equal((await book(stack.anon_key, { expert_id: EXPERTS.ada })).status, 401);
    assert.equal((await book('not.a.jwt', { expert_id: EXPERTS.ada })).status, 401);
  });

  test('an expert cannot book themselves; an inactive expert is answered as an unknown one', async () => {
    const ada = userByEmail('ada.ai@example.com');
    const self = await book(ada.jwt, { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada), duration_minutes: 60 });
    assert.deepEqual([self.status, self.json.error.code], [409, 'self_booking']);
    const unknown = await book(client.jwt, { expert_id: '9b2d7e0a-0000-4000-8000-000000000000', starts_at: freeWeekdayStart(EXPERTS.ada), duration_minutes: 60 });
    assert.deepEqual([unknown.status, unknown.json.error.code], [404, 'not_found']);
    exec(`update expert_profiles set is_active = false where id = '${EXPERTS.rae}'`);
    try {
      const inactive = await book(client.jwt, { expert_id: EXPERTS.rae, starts_at: freeWeekdayStart(EXPERTS.rae), duration_minutes: 60 });
      assert.deepEqual([inactive.status, inactive.json], [unknown.status, unknown.json]);
    } finally {
      exec(`update expert_profiles set is_active = true where id = '${EXPERTS.rae}'`);
    }
  });

  test('a start too soon, too far ahead or outside the expert\'s hours is a 409 with the reason', async () => {
    const soon = new Date(Date.now() + 30 * 60_000);
    soon.setUTCSeconds(0, 0);
    const far = new Date(Date.now() + 100 * 86_400_000);
    far.setUTCSeconds(0, 0);
    const queuedBefore = sql('select count(*)::int as n from outbox')[0].n;
    for (const [starts_at, code] of [[soon.toISOString(), 'too_soon'], [far.toISOString(), 'too_far'], [freeWeekdayStart(EXPERTS.ada, 20), 'outside_availability']]) {
      const { status, json } = await book(client.jwt, { expert_id: EXPERTS.ada, starts_at, duration_minutes: 60 });
      assert.deepEqual([status, json.error.code], [409, code], starts_at);
    }
    assert.equal(sql('select count(*)::int as n from outbox')[0].n, queuedBefore, 'a refused booking queues nothing');
    assert.deepEqual(await standin.requests('daily'), [], 'and makes no room');
    assert.deepEqual(await standin.requests('stripe'), [], 'nor any PaymentIntent');
  });

  test('a quote that no longer matches the rate is a 409 with the new price', async () => {
    const { status, json } = await book(client.jwt, { expert_id: EXPERTS.devon, starts_at: freeWeekdayStart(EXPERTS.devon), duration_minutes: 60, expected_amount_cents: 12000 });
    assert.deepEqual([status, json.error.code], [409, 'price_changed']);
    assert.equal(json.error.details.price.amount_cents, 13500);
    assert.equal((await standin.requests('daily')).length, 0, 'no room is made for a stale quote');
  });

  test('a taken slot and a busy client are 409s, and the losing room is deleted', async () => {
    const first = newClient('first');
    const second = newClient('second');
    const starts_at = freeWeekdayStart(EXPERTS.devon, 13);
    const held = await book(first.jwt, { expert_id: EXPERTS.devon, starts_at, duration_minutes: 60 });
    assert.equal(held.status, 201);
    const waiting = await book(second.jwt, { expert_id: EXPERTS.devon, starts_at, duration_minutes: 60 });
    assert.deepEqual([waiting.status, waiting.json.error.code], [409, 'slot_taken'], 'a slot held for its payment is taken');
    await stripe.confirm(held.json.payment);
    const taken = await book(second.jwt, { expert_id: EXPERTS.devon, starts_at, duration_minutes: 60 });
    assert.deepEqual([taken.status, taken.json.error.code], [409, 'slot_taken']);
    const busy = await book(first.jwt, { expert_id: EXPERTS.ada, starts_at, duration_minutes: 60 });
    assert.deepEqual([busy.status, busy.json.error.code], [409, 'client_busy']);
    const daily = await eventually('the one room', async () => (await standin.requests('daily')).length > 0 && standin.requests('daily'));
    assert.deepEqual(daily.map((r) => r.method), ['POST'], 'only the booking that succeeded makes a room');
  });

  test('when Daily.co is down, booking still works and the room is made by a later attempt', async () => {
    const booker = newClient('daily-down');
    await standin.fail('daily', 500, 1);
    const { status, json } = await bookAndPay(booker.jwt, { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada), duration_minutes: 60 });
    assert.equal(status, 201, JSON.stringify(json));
    const id = json.session.id;
    const room = () => sql(`select status, attempts, last_error from outbox where session_id = '${id}' and topic = 'room.create'`)[0];
    await eventually('the failed first attempt', () => room().attempts === 1 && room().status === 'pending');
    assert.match(room().last_error, /500/);
    makeOutboxDue(id, 'room.%');
    assert.equal((await runDispatcher()).status, 200);
    assert.deepEqual(room(), { status: 'sent', attempts: 2, last_error: room().last_error });
    assert.deepEqual((await standin.requests('daily')).map((r) => [r.method, r.body?.name, r.failed_with]), [['POST', `cae-${id}`, 500], ['POST', `cae-${id}`, null]]);
  });

  test('50 concurrent bookings of one slot end with one session and 49 conflicts', async () => {
    const clients = Array.from({ length: 50 }, (_, i) => newClient(`race${i}`));
    const starts_at = freeWeekdayStart(EXPERTS.finn, 14);
    const answers = await Promise.all(clients.map((c) => book(c.jwt, { expert_id: EXPERTS.finn, starts_at, duration_minutes: 60 })));
    const statuses = answers.map((a) => a.status).sort();
    assert.equal(statuses.filter((s) => s === 201).length, 1, JSON.stringify(answers.filter((a) => a.status !== 409 && a.status !== 201).map((a) => a.json)));
    assert.equal(statuses.filter((s) => s === 409).length, 49);
    assert.ok(answers.filter((a) => a.status === 409).every((a) => a.json.error.code === 'slot_taken'));
    assert.equal(sql(`select count(*)::int as n from sessions where expert_id = '${EXPERTS.finn}' and starts_at = '${starts_at}'`)[0].n, 1);
    assert.equal((await stripe.objects()).payment_intents.length, 1, 'one PaymentIntent, for the winner');
    await stripe.confirm(answers.find((a) => a.status === 201).json.payment);
    const daily = await eventually('the winner\'s room', async () => (await standin.requests('daily')).length > 0 && standin.requests('daily'));
    assert.deepEqual(daily.map((r) => r.method), ['POST'], 'one room, for the winner, once paid');
  });

  test('an expert whose Connect account cannot take charges cannot be booked, and is not offered', async () => {
    const expert = await newExpert('no-payouts', { payouts: false });
    exec(`insert into availability_rules (expert_id, weekday, start_minute, end_minute) select '${expert.id}', d, 0, 1440 from generate_series(0, 6) d;
          insert into expert_skills (expert_id, skill_id, proficiency) select '${expert.id}', id, 5 from skill_categories where slug = 'aws'`);
    const refused = await book(newClient('no-payouts-client').jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id), duration_minutes: 60 });
    assert.deepEqual([refused.status, refused.json.error.code], [409, 'payments_not_enabled']);
    const search = await call('find-experts', '/?skills=aws&limit=50');
    assert.ok(!search.json.experts.some((e) => e.expert_id === expert.id), 'find-experts does not offer them');
  });

  test('Stripe down at booking: 503, and no session is left holding the slot', async () => {
    const booker = newClient('stripe-down');
    const starts_at = freeWeekdayStart(EXPERTS.ada);
    await standin.fail('stripe', 0, 1);
    const down = await book(booker.jwt, { expert_id: EXPERTS.ada, starts_at, duration_minutes: 60 });
    assert.deepEqual([down.status, down.json.error.code, down.headers.get('retry-after')], [503, 'payment_provider_unavailable', '5']);
    assert.equal(sql(`select count(*)::int as n from sessions where client_id = '${booker.id}'`)[0].n, 0, 'no session');
    assert.equal(sql(`select count(*)::int as n from audit_logs where actor_id = '${booker.id}' and action = 'session.abandoned'`)[0].n, 1, 'the attempt is audited');
    const retried = await bookAndPay(booker.jwt, { expert_id: EXPERTS.ada, starts_at, duration_minutes: 60 });
    assert.deepEqual([retried.status, retried.session.status], [201, 'confirmed'], 'the same slot is booked once Stripe answers');
  });
});

// Sessions for cancellation tests are made directly in the database, at times relative to now,
// each with a new client and expert so that reruns against one stack never overlap, and paid
// through the Stripe stand-in.
async function sessionAt({ hoursAhead, rate = 9000, status = 'confirmed' }) {
  const booker = newClient('booker');
  const expert = await newExpert('expert', { rate });
  const id = await insertPaidSession({ clientId: booker.id, expertId: expert.id, hoursAhead, status });
  return { id, booker, expert };
}

// What Stripe was asked to give back for a session: its refunds and application fee refunds.
async function refundsAtStripe(id) {
  const objects = await stripe.objects();
  const intent = objects.payment_intents.find((pi) => pi.metadata.session_id === id);
  const refunds = objects.refunds.filter((r) => r.payment_intent === intent.id && r.metadata.session_id === id);
  const charge = objects.charges.find((c) => c.id === intent.latest_charge);
  const feeRefunds = objects.fee_refunds.filter((f) => f.fee === charge.application_fee);
  return { intent, refunds, feeRefunds };
}

describe('cancel-session', () => {
  test('a client cancelling more than 24 hours ahead gets everything back, split in proportion', async () => {
    // Starts between 24 h 1 min and 24 h 2 min from the database's now: just past the boundary.
    const { id, booker, expert } = await sessionAt({ hoursAhead: 24 + 2 / 60 });
    const { status, json } = await cancel(booker.jwt, { session_id: id, reason: 'Plans changed' });
    assert.equal(status, 200, JSON.stringify(json));
    // 90.00/h x 75 min = 112.50, fee 11.25.
    assert.deepEqual(json.refund, { percent: 100, amount_cents: 11250, platform_fee_cents: 1125, expert_payout_cents: 10125, currency: 'USD' });
    const { refunds, feeRefunds } = await eventually('the refund and the fee refund at Stripe', async () => {
      const at = await refundsAtStripe(id);
      return at.feeRefunds.length > 0 && at;
    });
    assert.deepEqual(refunds.map((r) => r.amount), [11250], 'Stripe refunds the client the whole amount');
    assert.deepEqual(feeRefunds.map((f) => f.amount), [1125], 'and gives back the whole application fee');
    await stripe.settle();
    assert.deepEqual(await eventually('the ledger to reconcile', async () => (await reconcile(id)).reconciled && reconcile(id)).then((r) => r.ledger),
      { captured_cents: 11250, refunded_cents: 11250, net_cents: 0, platform_fee_cents: 0, expert_payout_cents: 0, transfer_reversed_cents: 11250 });
    assert.deepEqual(sql(`select to_status, reason from session_status_history where session_id = '${id}' order by id desc limit 1`), [{ to_status: 'cancelled', reason: 'Plans changed' }]);
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${id}' and action = 'session.cancelled'`)[0].n, 1);
    const emails = await standin.emailsTo([booker.email, expert.email], 2);
    const toExpert = emails.find((e) => e.to[0] === expert.email);
    assert.match(toExpert.text, /cancelled your session/, 'the other participant is told');
    assert.match(toExpert.text, /Reason given: Plans changed/);
    assert.match(emails.find((e) => e.to[0] === booker.email).text, /You will be refunded 112\.50 USD \(100%\)/, 'and the client their refund');
    await eventually('the room\'s removal', async () => (await standin.requests('daily')).some((r) => r.method === 'DELETE'));
  });

  test('a client cancelling within 24 hours gets half, rounded in their favour', async () => {
    // Starts between 23 h 58 min and 23 h 59 min from now: just inside the boundary.
    const { id, booker } = await sessionAt({ hoursAhead: 24 - 1 / 60, rate: 12000 });
    const { json } = await cancel(booker.jwt, { session_id: id });
    // 120.00/h x 75 min = 150.00 -> half is 75.00; fee part 7.50.
    assert.deepEqual(json.refund, { percent: 50, amount_cents: 7500, platform_fee_cents: 750, expert_payout_cents: 6750, currency: 'USD' });
    await eventually('the fee refund at Stripe', async () => (await refundsAtStripe(id)).feeRefunds.length > 0);
    await stripe.settle();
    const ledger = await eventually('the ledger to reconcile', async () => (await reconcile(id)).reconciled && reconcile(id));
    assert.deepEqual([ledger.ledger.net_cents, ledger.ledger.platform_fee_cents, ledger.ledger.expert_payout_cents], [7500, 750, 6750],
      'the platform keeps half its fee, the expert half their payout');
  });

  test('an expert cancelling refunds the client in full', async () => {
    const { id, booker, expert } = await sessionAt({ hoursAhead: 2 });
    const { json } = await cancel(expert.jwt, { session_id: id, reason: 'Ill' });
    assert.equal(json.refund.percent, 100);
    const emails = await standin.emailsTo([booker.email, expert.email], 2);
    assert.match(emails.find((e) => e.to[0] === booker.email).text, /Ill/);
  });

  test('a request never confirmed is cancelled with nothing to refund', async () => {
    const { id, booker } = await sessionAt({ hoursAhead: 48, status: 'requested' });
    const { json } = await cancel(booker.jwt, { session_id: id });
    assert.deepEqual(json.refund, { percent: 0, amount_cents: 0, platform_fee_cents: 0, expert_payout_cents: 0, currency: 'USD' });
    const released = await eventually('the authorisation released', async () => {
      const { intent } = await refundsAtStripe(id);
      return intent.status === 'canceled' && intent;
    });
    assert.equal(released.cancellation_reason, 'requested_by_customer');
    await stripe.settle();
    const ledger = await eventually('the ledger to reconcile', async () => (await reconcile(id)).reconciled && reconcile(id));
    assert.deepEqual([ledger.ledger.captured_cents, ledger.ledger.net_cents], [0, 0], 'nothing was captured, nothing is kept');
  });

  test('cancelling twice answers the same and never refunds twice', async () => {
    const { id, booker, expert } = await sessionAt({ hoursAhead: 30 });
    const first = await cancel(booker.jwt, { session_id: id, reason: 'once' });
    const again = await cancel(booker.jwt, { session_id: id, reason: 'twice' });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, first.json);
    await eventually('the refund at Stripe', async () => (await refundsAtStripe(id)).feeRefunds.length > 0);
    await runDispatcher();
    assert.equal((await refundsAtStripe(id)).refunds.length, 1, 'Stripe is asked for one refund');
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${id}' and action = 'session.cancelled'`)[0].n, 1);
    await standin.emailsTo([booker.email], 1);
    await runDispatcher();
    const told = (await standin.emails()).filter((e) => [booker.email, expert.email].includes(e.to[0]));
    assert.deepEqual(told.map((e) => e.to[0]).sort(), [booker.email, expert.email].sort(), 'one email to each participant, once');
  });

  test('concurrent cancels of one session refund once', async () => {
    const { id, booker } = await sessionAt({ hoursAhead: 40 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => cancel(booker.jwt, { session_id: id })));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(new Set(answers.map((a) => JSON.stringify(a.json))).size, 1);
    await eventually('the refund at Stripe', async () => (await refundsAtStripe(id)).feeRefunds.length > 0);
    await runDispatcher();
    assert.equal((await refundsAtStripe(id)).refunds.length, 1, 'one refund, whatever the concurrency');
  });

  test('a stranger gets 404, as for a session that does not exist', async () => {
    const { id } = await sessionAt({ hoursAhead: 50 });
    const stranger = newClient('stranger');
    const theirs = await cancel(stranger.jwt, { session_id: id });
    const none = await cancel(stranger.jwt, { session_id: '9b2d7e0a-0000-4000-8000-000000000000' });
    assert.deepEqual([theirs.status, theirs.json], [none.status, none.json]);
    assert.equal(theirs.status, 404);
    assert.equal(sql(`select status from sessions where id = '${id}'`)[0].status, 'confirmed');
  });

  test('a started or finished session cannot be cancelled', async () => {
    const live = await cancel(client.jwt, { session_id: '55555555-5555-4555-8555-555555555502' });
    assert.deepEqual([live.status, live.json.error.code], [409, 'not_cancellable']);
    const done = await cancel(client.jwt, { session_id: '55555555-5555-4555-8555-555555555501' });
    assert.deepEqual([done.status, done.json.error.code], [409, 'not_cancellable']);
    const late = await sessionAt({ hoursAhead: -0.1 });
    const started = await cancel(late.booker.jwt, { session_id: late.id });
    assert.deepEqual([started.status, started.json.error.code], [409, 'already_started']);
  });

  test('a failing room deletion does not stop the cancellation', async () => {
    const { id, booker } = await sessionAt({ hoursAhead: 60 });
    await standin.fail('daily', 500, 1);
    const { status, json } = await cancel(booker.jwt, { session_id: id });
    assert.equal(status, 200);
    assert.equal(json.status, 'cancelled');
  });

  test('bad input is a 400 naming the field, no token a 401', async () => {
    const { status, json } = await cancel(client.jwt, { session_id: 'x' });
    assert.deepEqual([status, fieldsOf(json)], [400, ['session_id:uuid']]);
    assert.equal((await cancel(undefined, { session_id: 'x' })).status, 401);
  });
});

describe('find-experts', () => {
  const find = (query, token) => call('find-experts', `/?${new URLSearchParams(query)}`, { token });

  test('anyone can search; experts come ranked with their score parts and next free slots', async () => {
    const { status, json, headers } = await find({ skills: 'react,typescript' });
    assert.equal(status, 200);
    assert.equal(headers.get('cache-control'), 'public, max-age=30');
    const ids = json.experts.map((e) => e.expert_id);
    assert.deepEqual(new Set(ids), new Set([EXPERTS.finn, EXPERTS.rae]));
    for (const expert of json.experts) {
      const p = expert.score_parts;
      const expected = Math.round((0.45 * p.skill_match + 0.2 * p.rating + 0.15 * p.price_fit + 0.15 * p.availability + 0.05 * p.online) * 1e4) / 1e4;
      assert.equal(expert.score, expected, 'the score is the documented weighted sum of its parts');
      assert.ok(expert.next_slots.length > 0 && expert.next_slots.every((slot) => Date.parse(slot) > Date.now() + 3_599_000));
    }
    const scores = json.experts.map((e) => [e.score, e.expert_id]);
    assert.deepEqual(scores, [...scores].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : 1)), 'ranked by score, ties by id');
    assert.equal(json.match_request_id, null, 'anonymous searches are not recorded');
  });

  test('the same search as a JSON body answers the same', async () => {
    const byQuery = await find({ skills: 'kubernetes', max_rate_cents: '20000', currency: 'USD' });
    const byBody = await call('find-experts', '/', { method: 'POST', body: { skills: ['kubernetes'], max_rate_cents: 20000, currency: 'USD' } });
    assert.deepEqual(byBody.json.experts.map((e) => e.expert_id), byQuery.json.experts.map((e) => e.expert_id));
    assert.deepEqual(byQuery.json.experts.map((e) => e.expert_id), [EXPERTS.devon]);
    assert.equal(byQuery.json.experts[0].score_parts.price_fit, 0.325, '1 - 13500 / 20000');
  });

  test('filters run in the database: rate ceiling, currency, minimum rating', async () => {
    assert.deepEqual((await find({ skills: 'react', max_rate_cents: '10000' })).json.experts.map((e) => e.expert_id), [EXPERTS.rae]);
    assert.deepEqual((await find({ skills: 'react', currency: 'EUR' })).json.experts, []);
    assert.deepEqual((await find({ skills: 'cursor,react', min_rating: '4.5' })).json.experts.map((e) => e.expert_id), [EXPERTS.ada]);
  });

  test('a window keeps only experts free in it, for the duration asked', async () => {
    // Saturday morning in Berlin: only Devon works then.
    const [{ from, to }] = sql(`select (d + time '08:00') at time zone 'Europe/Berlin' as from, (d + time '14:00') at time zone 'Europe/Berlin' as to
      from (select (current_date + ((6 - extract(isodow from current_date)::int + 7) % 7) + 7) as d) x`);
    const { json } = await find({ skills: 'react,kubernetes', from: new Date(from).toISOString(), to: new Date(to).toISOString(), duration_minutes: '120' });
    assert.deepEqual(json.experts.map((e) => e.expert_id), [EXPERTS.devon]);
    for (const slot of json.experts[0].next_slots) {
      assert.ok(Date.parse(slot) >= Date.parse(from) && Date.parse(slot) + 120 * 60_000 <= Date.parse(to));
    }
  });

  test('pages follow the cursor without repeating anyone', async () => {
    const first = await find({ skills: 'react,typescript,nextjs,v0', limit: '2' });
    assert.equal(first.json.experts.length, 2);
    assert.ok(first.json.next_cursor);
    const second = await find({ skills: 'react,typescript,nextjs,v0', limit: '2', cursor: first.json.next_cursor });
    const seen = [...first.json.experts, ...second.json.experts].map((e) => e.expert_id);
    assert.equal(new Set(seen).size, seen.length);
    assert.deepEqual(new Set(seen), new Set([EXPERTS.ada, EXPERTS.finn, EXPERTS.rae]));
    assert.equal(second.json.next_cursor, null);
  });

  test('an authenticated search is recorded with its results', async () => {
    const searcher = newClient('searcher');
    const { json } = await call('find-experts', '/', { method: 'POST', token: searcher.jwt, body: { skills: ['terraform'] } });
    assert.ok(json.match_request_id);
    assert.deepEqual(sql(`select client_id, skills, result_count from match_requests where id = '${json.match_request_id}'`), [{ client_id: searcher.id, skills: ['terraform'], result_count: 1 }]);
    assert.deepEqual(sql(`select expert_id, rank from match_results where request_id = '${json.match_request_id}'`), [{ expert_id: EXPERTS.devon, rank: 1 }]);
  });

  test('the search follows the calendar: a booked slot disappears; a cancellation, a new rule or a removed exception brings one back', async () => {
    // An expert free only from 10:00 to 12:00 UTC on one weekday, searched for two hours that day.
    const expert = await newExpert('fresh-slots', { timezone: 'UTC' });
    exec(`insert into expert_skills (expert_id, skill_id, proficiency) select '${expert.id}', id, 5 from skill_categories where slug = 'docker'`);
    const [{ day }] = sql(`select d::date::text as day from generate_series(current_date + 3, current_date + 10, interval '1 day') d
      where extract(isodow from d) = 3 limit 1`);
    const hours = await postgrest('/availability_rules', { method: 'POST', token: expert.jwt, headers: { prefer: 'return=minimal' },
      body: { expert_id: expert.id, weekday: 3, start_minute: 600, end_minute: 720 } });
    assert.equal(hours.status, 201, hours.text);
    const slotsOn = async (date) => {
      const { json } = await find({ skills: 'docker', from: `${date}T00:00:00Z`, to: `${date}T23:59:00Z`, duration_minutes: '120', limit: '50' });
      return json.experts.find((e) => e.expert_id === expert.id)?.next_slots.map((slot) => new Date(slot).toISOString()) ?? [];
    };
    const ten = (date) => new Date(`${date}T10:00:00Z`).toISOString();
    assert.deepEqual(await slotsOn(day), [ten(day)], 'free: the one slot is offered');

    const booker = newClient('fresh-booker');
    const booked = await book(booker.jwt, { expert_id: expert.id, starts_at: ten(day), duration_minutes: 120 });
    assert.equal(booked.status, 201, JSON.stringify(booked.json));
    assert.deepEqual(await slotsOn(day), [], 'held for its payment: the slot disappears');
    await stripe.confirm(booked.json.payment);
    assert.deepEqual(await slotsOn(day), [], 'booked: it stays gone');
    assert.equal((await cancel(booker.jwt, { session_id: booked.json.session.id })).status, 200);
    assert.deepEqual(await slotsOn(day), [ten(day)], 'cancelled: it is back');

    const blocked = await postgrest('/availability_exceptions', { method: 'POST', token: expert.jwt, headers: { prefer: 'return=representation' },
      body: { expert_id: expert.id, on_date: day, kind: 'blocked' } });
    assert.equal(blocked.status, 201, blocked.text);
    assert.deepEqual(await slotsOn(day), [], 'a blocked day offers nothing');
    assert.equal((await postgrest(`/availability_exceptions?id=eq.${blocked.json[0].id}`, { method: 'DELETE', token: expert.jwt })).status, 204);
    assert.deepEqual(await slotsOn(day), [ten(day)], 'the exception removed, the slot is back');

    const thursday = new Date(new Date(`${day}T00:00:00Z`).getTime() + 86_400_000).toISOString().slice(0, 10);
    assert.deepEqual(await slotsOn(thursday), [], 'no hours on the next day yet');
    const added = await postgrest('/availability_rules', { method: 'POST', token: expert.jwt, headers: { prefer: 'return=minimal' },
      body: { expert_id: expert.id, weekday: 4, start_minute: 480, end_minute: 600 } });
    assert.equal(added.status, 201, added.text);
    assert.deepEqual(await slotsOn(thursday), [new Date(`${thursday}T08:00:00Z`).toISOString()], 'a new rule opens new slots');
  });

  test('bad parameters are all named; a bad token is a 401, not an anonymous search', async () => {
    const { status, json } = await find({ skills: 'React', limit: '0', min_rating: '9' });
    assert.equal(status, 400);
    assert.deepEqual(fieldsOf(json), ['skills[0]:slug', 'min_rating:range', 'limit:range']);
    assert.equal((await find({ skills: 'react' }, 'forged.token.here')).status, 401);
  });
});

describe('with PostgREST unreachable', () => {
  const failPostgrest = (path, status = 0) =>
    fetch(`${stack.standin_url}/__standin/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'postgrest', status, times: 1, path }) });

  test('health says so with a 503', async () => {
    await failPostgrest('/rpc/health');
    const { status, json } = await call('create-session', '/health');
    assert.deepEqual([status, json.status, json.postgrest.reachable], [503, 'degraded', false]);
  });

  test('create-session answers 503 when the booking cannot reach the database, and makes no room', async () => {
    const booker = newClient('db-down');
    await failPostgrest('/rpc/book_session');
    const { status, json, headers } = await book(booker.jwt, { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada), duration_minutes: 60 });
    assert.deepEqual([status, json.error.code, headers.get('retry-after')], [503, 'database_unavailable', '5']);
    assert.equal(sql(`select count(*)::int as n from sessions where client_id = '${booker.id}'`)[0].n, 0);
    assert.deepEqual(await standin.requests('daily'), []);
  });

  test('create-session answers 503 before making a room when the quote cannot be read', async () => {
    const booker = newClient('db-down-early');
    await failPostgrest('/rpc/expert_quote', 503);
    const { status } = await book(booker.jwt, { expert_id: EXPERTS.ada, starts_at: freeWeekdayStart(EXPERTS.ada), duration_minutes: 60 });
    assert.equal(status, 503);
    assert.deepEqual(await standin.requests('daily'), []);
  });

  test('cancel-session answers 503 and changes nothing; the retry then cancels once', async () => {
    const { id, booker } = await sessionAt({ hoursAhead: 30 });
    await failPostgrest('/rpc/service_role_cancel_session');
    const down = await cancel(booker.jwt, { session_id: id });
    assert.deepEqual([down.status, down.json.error.code], [503, 'database_unavailable']);
    assert.deepEqual(sql(`select status from sessions where id = '${id}'`), [{ status: 'confirmed' }]);
    assert.equal(sql(`select count(*)::int as n from outbox where session_id = '${id}' and topic = 'payment.refund'`)[0].n, 0, 'no refund queued');
    const retried = await cancel(booker.jwt, { session_id: id });
    assert.equal(retried.status, 200);
    assert.equal(sql(`select count(*)::int as n from outbox where session_id = '${id}' and topic = 'payment.refund'`)[0].n, 1, 'the retry queues it once');
  });

  test('find-experts answers 503', async () => {
    await failPostgrest('/rpc/find_experts');
    const { status, json } = await call('find-experts', '/?skills=react');
    assert.deepEqual([status, json.error.code], [503, 'database_unavailable']);
  });
});

describe('across a DST change in the expert\'s timezone', () => {
  // The first change of UTC offset 3 to 80 days ahead in one of these zones, by Postgres's own
  // zone data: local noons of consecutive days are then 23 or 25 hours apart.
  const [change] = sql(`
    with days as (
      select zone, d::date as day, (d::date + time '12:00') at time zone zone as noon
      from unnest(array['Africa/Casablanca', 'America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'America/Santiago', 'Pacific/Auckland']) as zone,
           generate_series(current_date + 2, current_date + 80, interval '1 day') as d)
    select zone, day::text from (select zone, day, noon - lag(noon) over (partition by zone order by day) as step from days) steps
    where step <> interval '24 hours' order by day limit 1`);

  test('slots and bookings follow the expert\'s wall clock on both sides of the change', async (t) => {
    if (!change) return t.skip('no DST change within the booking horizon in the candidate zones today');
    const expert = await newExpert('dst-expert', { timezone: change.zone });
    exec(`insert into availability_rules (expert_id, weekday, start_minute, end_minute) select '${expert.id}', d, 540, 1020 from generate_series(0, 6) d;
          insert into expert_skills (expert_id, skill_id, proficiency) select '${expert.id}', id, 5 from skill_categories where slug = 'ci-cd'`);
    const [{ before, after, before_end, after_end }] = sql(`
      select (day - 2 + time '09:00') at time zone '${change.zone}' as before, (day + 1 + time '09:00') at time zone '${change.zone}' as after,
             (day - 1 + time '00:00') at time zone '${change.zone}' as before_end, (day + 2 + time '00:00') at time zone '${change.zone}' as after_end
      from (select date '${change.day}' as day) x`);
    const nine = [new Date(before), new Date(after)];
    assert.notEqual(nine[0].getUTCHours(), nine[1].getUTCHours(), `09:00 in ${change.zone} is another UTC hour after ${change.day}`);
    for (const [from, to, expected] of [[new Date(new Date(before).getTime() - 9 * 3600e3), before_end, nine[0]], [new Date(new Date(after).getTime() - 9 * 3600e3), after_end, nine[1]]]) {
      const { json } = await call('find-experts', `/?${new URLSearchParams({ skills: 'ci-cd', from: from.toISOString(), to: new Date(to).toISOString(), limit: '50' })}`);
      const found = json.experts.find((e) => e.expert_id === expert.id);
      assert.ok(found, JSON.stringify(json));
      assert.equal(new Date(found.next_slots[0]).toISOString(), expected.toISOString(), `the first slot is 09:00 local on ${expected.toISOString().slice(0, 10)}`);
    }
    const booker = newClient('dst-client');
    const inside = await book(booker.jwt, { expert_id: expert.id, starts_at: nine[1].toISOString(), duration_minutes: 60 });
    assert.equal(inside.status, 201, JSON.stringify(inside.json));
    const early = await book(newClient('dst-early').jwt, { expert_id: expert.id, starts_at: new Date(nine[1].getTime() - 3600e3).toISOString(), duration_minutes: 60 });
    assert.deepEqual([early.status, early.json.error.code], [409, 'outside_availability'], '08:00 local is before the expert\'s hours');
  });
});
