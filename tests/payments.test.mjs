// Money end to end: create-session's PaymentIntent, the browser paying through the Stripe
// stand-in, Stripe's signed events reaching payment-events (in order, out of order, twice, late,
// never), captures, releases and refunds carried out by the dispatcher with idempotency keys,
// Stripe failing at each step, disputes and Connect onboarding. Every path ends with the ledger
// equal to the stand-in's record of what Stripe was asked to do.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  assertLedgerMatchesStripe, bookAndPay, call, eventually, exec, insertPaidSession, makeOutboxDue, newClient, newExpert, postgrest,
  runDispatcher, sessionRow, sql, stack, standin, stripe,
} from './helpers.mjs';

beforeEach(async () => {
  await standin.reset();
  await stripe.delivery('immediate');
});

const book = (token, body) => call('create-session', '/', { method: 'POST', token, body });
const cancel = (token, body) => call('cancel-session', '/', { method: 'POST', token, body });
const patchStatus = (token, id, status) => postgrest(`/sessions?id=eq.${id}`, { method: 'PATCH', token, body: { status } });

// An expert of each test's own, bookable every day 06:00-22:00 UTC.
async function expertForTest(label, { instant = false, payouts = true } = {}) {
  const expert = await newExpert(label, { rate: 12000, timezone: 'UTC', payouts });
  exec(`update expert_profiles set instant_booking = ${instant} where id = '${expert.id}';
        insert into availability_rules (expert_id, weekday, start_minute, end_minute) select '${expert.id}', d, 360, 1320 from generate_series(0, 6) d`);
  return expert;
}

let dayOffset = 3;
// A start on a day of its own, days ahead, at 10:00 UTC.
const nextStart = () => {
  const day = new Date(Date.now() + dayOffset++ * 86_400_000);
  day.setUTCHours(10, 0, 0, 0);
  return day.toISOString();
};

const failStripe = (status, path) => fetch(`${stack.standin_url}/__standin/fail`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'stripe', status, times: 1, path }),
});
const intentOf = async (sessionId) => (await stripe.objects()).payment_intents.find((pi) => pi.metadata.session_id === sessionId);
const stripeRequests = async (pathPart) => (await standin.requests('stripe')).filter((r) => r.path.includes(pathPart));

// A Stripe delivery as the worker receives it: the body signed with `secret` at `timestamp`.
const signed = (body, { secret = stack.stripe.webhook_secret, timestamp = Math.floor(Date.now() / 1000) } = {}) => {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const signature = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
  return { payload, header: `t=${timestamp},v1=${signature}` };
};
const deliver = ({ payload, header }) =>
  call('payment-events', '/', { method: 'POST', body: payload, headers: { 'stripe-signature': header, 'content-type': 'application/json; charset=utf-8' } });

describe('booking and paying', () => {
  test('an instant booking is paid and captured at once, and confirmed by Stripe\'s event', async (t) => {
    const expert = await expertForTest('instant', { instant: true });
    const client = newClient('instant-client');
    const { status, json, session } = await bookAndPay(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 90 });
    assert.equal(status, 201, JSON.stringify(json));
    assert.equal(session.status, 'confirmed');
    const intent = await intentOf(json.session.id);
    assert.deepEqual([intent.status, intent.amount, intent.application_fee_amount, intent.capture_method], ['succeeded', 18000, 1800, 'automatic']);
    const [created] = await stripeRequests('/v1/payment_intents');
    assert.equal(created.headers['idempotency-key'], `payment_intent:${json.session.id}`, 'keyed by the session');
    assert.equal(created.body.metadata.session_id, json.session.id);
    assert.equal(created.body.transfer_data.destination, sql(`select stripe_account_id from payout_accounts where expert_id = '${expert.id}'`)[0].stripe_account_id);
    await assertLedgerMatchesStripe(json.session.id, assert);
    await standin.emailsTo([client.email, expert.email], 2);
  });

  test('a request is authorised, confirmed by the expert through PostgREST, and captured by the dispatcher', async () => {
    const expert = await expertForTest('capture');
    const client = newClient('capture-client');
    const { json, session } = await bookAndPay(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    assert.equal(session.status, 'requested');
    assert.equal((await intentOf(json.session.id)).status, 'requires_capture', 'authorised, not captured');
    assert.ok(new Date(session.answer_by) <= new Date(Date.now() + 156 * 3600e3 + 60e3), 'to be answered while the authorisation lives');
    const confirmed = await patchStatus(expert.jwt, json.session.id, 'confirmed');
    assert.equal(confirmed.status, 204, confirmed.text);
    assert.equal((await runDispatcher()).status, 200);
    const intent = await eventually('the capture', async () => (await intentOf(json.session.id)).status === 'succeeded' && intentOf(json.session.id));
    const [capture] = await stripeRequests('/capture');
    assert.equal(capture.headers['idempotency-key'], `payment.capture:${intent.id}`);
    await assertLedgerMatchesStripe(json.session.id, assert);
  });

  test('a declined request, an expired request and a lapsed hold release what was authorised and keep nothing', async () => {
    const expert = await expertForTest('ends');
    const declined = await bookAndPay(newClient('declined').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const expiring = await bookAndPay(newClient('expiring').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const lapsing = await book(newClient('lapsing').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    assert.equal((await patchStatus(expert.jwt, declined.json.session.id, 'declined')).status, 204);
    // Their deadlines pass: the answer's (the authorisation's lifetime) and the hold's.
    exec(`update sessions set answer_by = now() - interval '1 second' where id = '${expiring.json.session.id}';
          update sessions set payment_due_at = now() - interval '1 second' where id = '${lapsing.json.session.id}'`);
    const run = await runDispatcher();
    assert.equal(run.status, 200, JSON.stringify(run.json));
    for (const [booked, reason] of [[declined, 'abandoned'], [expiring, 'abandoned'], [lapsing, 'abandoned']]) {
      const id = booked.json.session.id;
      const intent = await eventually(`the release for ${id}`, async () => (await intentOf(id)).status === 'canceled' && intentOf(id));
      assert.equal(intent.cancellation_reason, reason);
      await assertLedgerMatchesStripe(id, assert);
    }
    assert.deepEqual([sessionRow(expiring.json.session.id).status, sessionRow(lapsing.json.session.id).status], ['expired', 'expired']);
    const late = await stripe.confirm(lapsing.json.payment);
    assert.deepEqual([late.status, late.json.error.code], [400, 'payment_intent_unexpected_state'], 'a lapsed hold can no longer be paid');
  });

  test('a declined card leaves the slot held, and a second card pays for it', async () => {
    const expert = await expertForTest('declined-card', { instant: true });
    const client = newClient('declined-card-client');
    const booked = await book(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const declined = await stripe.confirm(booked.json.payment, 'pm_card_chargeDeclined');
    assert.deepEqual([declined.status, declined.json.error.code], [402, 'card_declined']);
    assert.equal(sessionRow(booked.json.session.id).status, 'awaiting_payment');
    assert.match(sql(`select failure_reason from payments where provider_ref = '${booked.json.payment.payment_intent_id}'`)[0].failure_reason, /declined/);
    await stripe.confirm(booked.json.payment);
    await eventually('the second card to book it', () => sessionRow(booked.json.session.id).status === 'confirmed');
    await assertLedgerMatchesStripe(booked.json.session.id, assert);
  });
});

describe('cancelling paid sessions', () => {
  const tiers = [
    ['a client more than 24 hours ahead: everything back', 'client', 30, 11250, 1125],
    ['a client within 24 hours: half back, rounded in their favour', 'client', 20, 5625, 563],
    ['the expert: everything back', 'expert', 3, 11250, 1125],
  ];
  for (const [name, by, hoursAhead, refund, feeRefund] of tiers) {
    test(name, async () => {
      const client = newClient('tier-client');
      const expert = await newExpert('tier-expert', { rate: 9000 });
      const id = await insertPaidSession({ clientId: client.id, expertId: expert.id, hoursAhead });
      const answer = await cancel(by === 'client' ? client.jwt : expert.jwt, { session_id: id });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual([answer.json.refund.amount_cents, answer.json.refund.platform_fee_cents], [refund, feeRefund]);
      const objects = await eventually('the fee refund', async () => {
        const all = await stripe.objects();
        return all.fee_refunds.some((f) => f.metadata.session_id === id) && all;
      });
      const [stripeRefund] = objects.refunds.filter((r) => r.metadata.session_id === id);
      assert.equal(stripeRefund.amount, refund);
      assert.equal(stripeRefund.transfer_reversal !== null, true, 'the transfer to the expert is reversed with it');
      assert.deepEqual(objects.fee_refunds.filter((f) => f.metadata.session_id === id).map((f) => f.amount), [feeRefund],
        'the platform\'s share comes back from the application fee, to the cent');
      await assertLedgerMatchesStripe(id, assert);
    });
  }

  test('a request never captured is cancelled by releasing the authorisation; cancelling again does nothing more', async () => {
    const client = newClient('uncaptured-client');
    const expert = await newExpert('uncaptured-expert');
    const id = await insertPaidSession({ clientId: client.id, expertId: expert.id, hoursAhead: 50, status: 'requested' });
    assert.equal((await cancel(client.jwt, { session_id: id })).json.refund.amount_cents, 0);
    await eventually('the release', async () => (await intentOf(id)).status === 'canceled');
    await cancel(client.jwt, { session_id: id });
    await runDispatcher();
    assert.equal((await stripeRequests('/cancel')).length, 1, 'Stripe is asked once');
    assert.equal((await stripe.objects()).refunds.filter((r) => r.metadata.session_id === id).length, 0, 'and refunds nothing');
    await assertLedgerMatchesStripe(id, assert);
  });
});

describe('Stripe\'s events', () => {
  test('every event delivered twice is applied once', async () => {
    await stripe.delivery('twice');
    const expert = await expertForTest('twice', { instant: true });
    const client = newClient('twice-client');
    const { json, session } = await bookAndPay(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    assert.equal(session.status, 'confirmed');
    const deliveries = (await stripe.deliveries()).filter((d) => d.status !== 'dropped');
    assert.ok(deliveries.length >= 4 && deliveries.every((d) => d.status === 200), JSON.stringify(deliveries.map((d) => [d.type, d.status])));
    const answers = deliveries.map((d) => JSON.parse(d.answer).status);
    assert.ok(answers.includes('duplicate'), 'the second delivery of each is answered as a duplicate');
    const ids = [...new Set(deliveries.map((d) => d.event))];
    assert.equal(sql(`select count(*)::int as n from stripe_events where id in (${ids.map((id) => `'${id}'`).join(',')})`)[0].n, ids.length, 'each stored once');
    await assertLedgerMatchesStripe(json.session.id, assert);
    await runDispatcher();
    const emails = (await standin.emails()).filter((e) => [client.email, expert.email].includes(e.to[0]) && /confirmed/i.test(e.subject));
    assert.equal(emails.length, 2, 'each participant told once');
  });

  test('events out of order, and late, end in the same state', async () => {
    await stripe.delivery('hold');
    const expert = await expertForTest('reverse');
    const client = newClient('reverse-client');
    const booked = await book(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    await stripe.confirm(booked.json.payment);
    assert.equal(sessionRow(booked.json.session.id).status, 'awaiting_payment', 'no event yet: the hold stands');
    const { released } = await stripe.release('reverse');
    assert.ok(released >= 2);
    await eventually('the request', () => sessionRow(booked.json.session.id).status === 'requested');
    assert.equal(sql(`select status from payments where provider_ref = '${booked.json.payment.payment_intent_id}'`)[0].status, 'requires_capture',
      'the older payment_intent.created arriving last does not move the ledger back');
    await assertLedgerMatchesStripe(booked.json.session.id, assert);
  });

  test('a payment whose events never come is found when the hold lapses, and refunded', async () => {
    await stripe.delivery('drop');
    const expert = await expertForTest('dropped', { instant: true });
    const client = newClient('dropped-client');
    const booked = await book(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    await stripe.confirm(booked.json.payment);
    assert.equal((await intentOf(booked.json.session.id)).status, 'succeeded', 'the client paid');
    exec(`update sessions set payment_due_at = now() - interval '1 second' where id = '${booked.json.session.id}'`);
    await runDispatcher();
    // The release finds the PaymentIntent succeeded; the money of a lapsed hold goes back.
    await eventually('the refund of a payment nobody heard about', async () =>
      (await stripe.objects()).refunds.some((r) => r.metadata.session_id === booked.json.session.id) || (await runDispatcher(), false), 15000);
    await stripe.delivery('immediate');
    await runDispatcher();
    assert.equal(sessionRow(booked.json.session.id).status, 'expired');
    await assertLedgerMatchesStripe(booked.json.session.id, assert);
  });

  test('a forged, stale or replayed delivery changes nothing and is answered 400', async () => {
    const expert = await expertForTest('forged', { instant: true });
    const booked = await book(newClient('forged-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const event = { id: 'evt_forged1', object: 'event', type: 'payment_intent.succeeded', created: Math.floor(Date.now() / 1000),
      data: { object: { object: 'payment_intent', id: booked.json.payment.payment_intent_id, status: 'succeeded', amount: 12000, currency: 'usd',
                        metadata: { session_id: booked.json.session.id } } } };
    const before = sql('select count(*)::int as n from stripe_events')[0].n;
    const forged = await deliver(signed(event, { secret: 'whsec_not_the_endpoints' }));
    assert.deepEqual([forged.status, forged.json.error.code], [400, 'invalid_signature']);
    const stale = await deliver(signed(event, { timestamp: Math.floor(Date.now() / 1000) - 301 }));
    assert.deepEqual([stale.status, stale.json.error.code], [400, 'invalid_signature']);
    assert.match(stale.json.error.message, /5-minute tolerance/);
    const unsigned = await call('payment-events', '/', { method: 'POST', body: event });
    assert.equal(unsigned.status, 400);
    const tampered = signed(event);
    const changed = await deliver({ payload: tampered.payload.replace('12000', '1'), header: tampered.header });
    assert.equal(changed.status, 400, 'a body changed after signing');
    assert.equal(sql('select count(*)::int as n from stripe_events')[0].n, before, 'nothing stored');
    assert.equal(sessionRow(booked.json.session.id).status, 'awaiting_payment', 'nothing applied');

    await stripe.confirm(booked.json.payment);
    const [delivery] = (await stripe.deliveries()).filter((d) => d.type === 'payment_intent.succeeded');
    const replayed = await deliver({ payload: delivery.body, header: delivery.signature });
    assert.deepEqual([replayed.status, replayed.json.error.code], [400, 'replayed_delivery'], 'the same signed delivery again is a replay');
    const notJson = await deliver(signed('{"id": '));
    assert.deepEqual([notJson.status, notJson.json.error.code], [400, 'invalid_json']);
  });

  test('an event arriving while the database is down is answered 503, and applied when Stripe retries', async () => {
    const expert = await expertForTest('db-down', { instant: true });
    const booked = await book(newClient('db-down-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    await fetch(`${stack.standin_url}/__standin/fail`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'postgrest', status: 0, times: 2, path: '/rpc/service_role_receive_stripe_event' }) });
    await stripe.confirm(booked.json.payment);
    assert.ok((await stripe.deliveries()).some((d) => d.status === 503), 'Stripe is told to retry');
    assert.equal(sessionRow(booked.json.session.id).status, 'awaiting_payment');
    await stripe.control('POST', '/redeliver');
    await eventually('the retried event', () => sessionRow(booked.json.session.id).status === 'confirmed');
    await assertLedgerMatchesStripe(booked.json.session.id, assert);
  });

  test('a dispute flags the session and the payment, with an audit row', async () => {
    const expert = await expertForTest('dispute', { instant: true });
    const { json } = await bookAndPay(newClient('dispute-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const intent = await intentOf(json.session.id);
    const dispute = await stripe.control('POST', `/charges/${intent.latest_charge}/dispute`, { reason: 'fraudulent' });
    await eventually('the dispute', () => sessionRow(json.session.id).disputed_at);
    assert.deepEqual(sql(`select kind, status, amount_cents, parent_ref from payments where provider_ref = '${dispute.id}'`),
      [{ kind: 'dispute', status: 'needs_response', amount_cents: 12000, parent_ref: intent.latest_charge }]);
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${json.session.id}' and action = 'payment.disputed'`)[0].n, 1);
    await assertLedgerMatchesStripe(json.session.id, assert);
  });

  test('a refund that fails at the bank flags the session for an operator', async () => {
    const client = newClient('bounce-client');
    const expert = await newExpert('bounce-expert');
    const id = await insertPaidSession({ clientId: client.id, expertId: expert.id, hoursAhead: 40 });
    await cancel(client.jwt, { session_id: id });
    const refund = await eventually('the refund', async () => (await stripe.objects()).refunds.find((r) => r.metadata.session_id === id));
    await stripe.control('POST', `/refunds/${refund.id}/fail`);
    await eventually('the refund_failed flag', () => sessionRow(id).payment_problem === 'refund_failed');
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${id}' and action = 'payment.refund_failed'`)[0].n, 1);
    // Stripe kept the money it could not give back: the ledger says so, and does not reconcile.
    await assertLedgerMatchesStripe(id, assert, { reconciled: false });
  });
});

describe('Stripe failing', () => {
  test('a capture, a refund and a fee refund that fail are retried under the same key until they succeed', async () => {
    const expert = await expertForTest('flaky');
    const client = newClient('flaky-client');
    const { json } = await bookAndPay(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const id = json.session.id;
    await standin.fail('stripe', 0, 1);
    await patchStatus(expert.jwt, id, 'confirmed');
    await runDispatcher();
    const capture = () => sql(`select status, attempts, last_error from outbox where session_id = '${id}' and topic = 'payment.capture'`)[0];
    assert.deepEqual([capture().status, capture().attempts], ['pending', 1], 'Stripe unreachable: retried later');
    makeOutboxDue(id, 'payment.%');
    await runDispatcher();
    assert.equal(capture().status, 'sent');
    const captures = await stripeRequests('/capture');
    assert.equal(captures.length, 2);
    assert.equal(new Set(captures.map((r) => r.headers['idempotency-key'])).size, 1, 'under one idempotency key');

    await failStripe(503, '/v1/refunds');
    await failStripe(0, '/application_fees/');
    const answer = await cancel(expert.jwt, { session_id: id, reason: 'Ill' });
    assert.equal(answer.status, 200, 'the cancellation does not wait on Stripe');
    for (let round = 0; round < 4 && !(await stripe.objects()).fee_refunds.some((f) => f.metadata.session_id === id); round += 1) {
      makeOutboxDue(id, 'payment.%');
      await runDispatcher();
    }
    for (const path of ['/v1/refunds', '/application_fees/']) {
      const calls = await stripeRequests(path);
      assert.ok(calls.length >= 2 && calls[0].failed_with !== null, `${path}: failed first (${JSON.stringify(calls.map((r) => r.failed_with))})`);
      assert.equal(new Set(calls.map((r) => r.headers['idempotency-key'])).size, 1, `${path}: retried under its one key`);
    }
    assert.equal((await stripe.objects()).refunds.filter((r) => r.metadata.session_id === id).length, 1, 'refunded once');
    await assertLedgerMatchesStripe(id, assert);
  });

  test('a release that fails is retried under the same key', async () => {
    const expert = await expertForTest('flaky-release');
    const client = newClient('flaky-release-client');
    const { json } = await bookAndPay(client.jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    await failStripe(503, '/cancel');
    assert.equal((await patchStatus(expert.jwt, json.session.id, 'declined')).status, 204);
    await runDispatcher();
    assert.equal((await intentOf(json.session.id)).status, 'requires_capture', 'not released yet');
    makeOutboxDue(json.session.id, 'payment.%');
    await runDispatcher();
    assert.equal((await intentOf(json.session.id)).status, 'canceled');
    const calls = await stripeRequests('/cancel');
    assert.deepEqual(calls.map((r) => r.failed_with), [503, null]);
    assert.equal(new Set(calls.map((r) => r.headers['idempotency-key'])).size, 1);
    await assertLedgerMatchesStripe(json.session.id, assert);
  });

  test('a capture Stripe refuses is failed at once for an operator, and the session says so', async () => {
    const expert = await expertForTest('refused');
    const { json } = await bookAndPay(newClient('refused-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    await standin.fail('stripe', 400, 1);
    await patchStatus(expert.jwt, json.session.id, 'confirmed');
    await runDispatcher();
    assert.deepEqual(sql(`select status, attempts from outbox where session_id = '${json.session.id}' and topic = 'payment.capture'`), [{ status: 'failed', attempts: 1 }],
      'an answer Stripe would repeat is not retried');
    assert.equal(sessionRow(json.session.id).payment_problem, 'capture_failed');
    assert.equal(sql(`select count(*)::int as n from audit_logs where entity_id = '${json.session.id}' and action = 'payment.capture_failed'`)[0].n, 1);
  });

  test('an authorisation Stripe cancels (it lapsed) expires the request, keeping nothing', async () => {
    const expert = await expertForTest('lapsed');
    const { json } = await bookAndPay(newClient('lapsed-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    const intent = await intentOf(json.session.id);
    await fetch(`${stack.stripe.api_url}/v1/payment_intents/${intent.id}/cancel`, { method: 'POST',
      headers: { authorization: `Bearer ${stack.stripe.secret_key}`, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    await stripe.settle();
    assert.equal(sessionRow(json.session.id).status, 'expired');
    await assertLedgerMatchesStripe(json.session.id, assert);
  });
});

describe('Connect onboarding', () => {
  test('an expert gets an onboarding link, once an account, and becomes bookable when Stripe says it can take charges', async () => {
    const expert = await expertForTest('onboard', { payouts: false });
    const first = await call('payment-events', '/onboarding-link', { method: 'POST', token: expert.jwt });
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.match(first.json.url, /^https:\/\/connect\.stripe\.com\//);
    assert.deepEqual([first.json.account.charges_enabled, first.json.account.payouts_enabled], [false, false]);
    const again = await call('payment-events', '/onboarding-link', { method: 'POST', token: expert.jwt });
    assert.equal(again.json.account.id, first.json.account.id, 'the account is made once and reused');
    assert.equal((await stripeRequests('/v1/accounts')).length, 1);
    const [account] = await stripeRequests('/v1/accounts');
    assert.deepEqual([account.body.type, account.body.metadata.expert_id, account.headers['idempotency-key']], ['express', expert.id, `account:${expert.id}`]);
    const refused = await book(newClient('early-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    assert.deepEqual([refused.status, refused.json.error.code], [409, 'payments_not_enabled']);

    await stripe.control('POST', `/accounts/${first.json.account.id}/onboard`);
    await eventually('account.updated to enable the expert', () => sql(`select accepts_payments from expert_profiles where id = '${expert.id}'`)[0].accepts_payments);
    assert.deepEqual(sql(`select charges_enabled, payouts_enabled, details_submitted from payout_accounts where expert_id = '${expert.id}'`),
      [{ charges_enabled: true, payouts_enabled: true, details_submitted: true }]);
    const booked = await bookAndPay(newClient('late-client').jwt, { expert_id: expert.id, starts_at: nextStart(), duration_minutes: 60 });
    assert.equal(booked.session.status, 'requested');
  });

  test('a client is refused an onboarding link; without a token the answer is 401', async () => {
    const client = newClient('not-an-expert');
    const refused = await call('payment-events', '/onboarding-link', { method: 'POST', token: client.jwt });
    assert.deepEqual([refused.status, refused.json.error.code], [403, 'forbidden']);
    assert.equal((await call('payment-events', '/onboarding-link', { method: 'POST' })).status, 401);
  });
});
