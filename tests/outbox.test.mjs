// The outbox end to end: every transition tells the right people exactly once, with calendar
// invitations a standard iCalendar parser reads; webhooks reach operators' endpoints signed as
// Standard Webhooks, retried, logged and replayable; no request waits on a provider.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import ICAL from 'ical.js';
import { Webhook } from 'standardwebhooks';
import { bookAndPay, call, eventually, EXPERTS, exec, freeWeekdayStart, makeOutboxDue, newClient, newExpert, postgrest, rest, runDispatcher, sql, stack, standin } from './helpers.mjs';

beforeEach(() => standin.reset());

// Booked through create-session and paid through the Stripe stand-in, as a browser would.
const book = (token, body) => bookAndPay(token, body);
const cancel = (token, body) => call('cancel-session', '/', { method: 'POST', token, body });

// An expert of their own for each test, working every day 08:00-20:00 UTC, so that any test's
// sessions are theirs alone to count.
async function expertForTest(label, { instant = false } = {}) {
  const expert = await newExpert(label, { rate: 12000, timezone: 'UTC' });
  exec(`update expert_profiles set instant_booking = ${instant} where id = '${expert.id}';
        insert into availability_rules (expert_id, weekday, start_minute, end_minute) select '${expert.id}', d, 480, 1200 from generate_series(0, 6) d`);
  return expert;
}

const inviteOf = (email) => {
  const attachment = email.attachments?.[0];
  assert.ok(attachment, `${email.subject} carries an invitation`);
  const calendar = new ICAL.Component(ICAL.parse(Buffer.from(attachment.content, 'base64').toString('utf8')));
  const event = calendar.getFirstSubcomponent('vevent');
  return {
    method: calendar.getFirstPropertyValue('method'),
    uid: event.getFirstPropertyValue('uid'),
    sequence: event.getFirstPropertyValue('sequence'),
    status: event.getFirstPropertyValue('status'),
    start: event.getFirstPropertyValue('dtstart').toJSDate().toISOString(),
    contentType: attachment.content_type,
  };
};

const subjectsTo = async (address) => (await standin.emails()).filter((e) => e.to[0] === address).map((e) => e.subject.split(':')[0].split(' for ')[0]);

describe('every transition tells the right people, once', () => {
  test('a request, its confirmation through PostgREST and its cancellation: invitations keep their UID and step their SEQUENCE', async () => {
    const expert = await expertForTest('ics-expert');
    const client = newClient('ics-client');
    const starts_at = freeWeekdayStart(expert.id, 10);
    const booked = await book(client.jwt, { expert_id: expert.id, starts_at, duration_minutes: 60 });
    assert.equal(booked.status, 201, JSON.stringify(booked.json));
    const id = booked.json.session.id;

    const [requestToClient] = await standin.emailsTo([client.email]);
    const [requestToExpert] = await standin.emailsTo([expert.email]);
    assert.match(requestToExpert.text, /Confirm or decline/);
    const tentative = inviteOf(requestToClient);
    assert.deepEqual([tentative.method, tentative.status, tentative.sequence, tentative.start], ['REQUEST', 'TENTATIVE', 0, new Date(starts_at).toISOString()]);
    assert.equal(tentative.uid, `session-${id}@call-an-expert.com`);

    // The expert confirms straight through PostgREST: the database queues the emails, the dispatcher sends them.
    const confirmed = await postgrest(`/sessions?id=eq.${id}`, { method: 'PATCH', token: expert.jwt, body: { status: 'confirmed' } });
    assert.equal(confirmed.status, 204, confirmed.text);
    assert.equal((await runDispatcher()).status, 200);
    const confirmation = (await standin.emailsTo([client.email], 2)).find((e) => e.subject.startsWith('Session confirmed'));
    const update = inviteOf(confirmation);
    assert.deepEqual([update.method, update.status, update.sequence, update.uid], ['REQUEST', 'CONFIRMED', 1, tentative.uid]);

    const cancelled = await cancel(client.jwt, { session_id: id, reason: 'Conflict' });
    assert.equal(cancelled.status, 200);
    const notice = (await standin.emailsTo([client.email], 3)).find((e) => e.subject.startsWith('Session cancelled'));
    const cancellation = inviteOf(notice);
    assert.deepEqual([cancellation.method, cancellation.status, cancellation.sequence, cancellation.uid], ['CANCEL', 'CANCELLED', 2, tentative.uid]);
    assert.match(cancellation.contentType, /method=CANCEL/);

    await runDispatcher();
    assert.deepEqual(await subjectsTo(client.email), ['Session requested', 'Session confirmed', 'Session cancelled'], 'each once, in order');
    assert.deepEqual(await subjectsTo(expert.email), ['Session requested', 'Session confirmed', 'Session cancelled']);
    const daily = (await standin.requests('daily')).filter((r) => r.path.includes(`cae-${id}`) || r.body?.name === `cae-${id}`);
    assert.deepEqual(daily.map((r) => r.method), ['POST', 'DELETE'], 'the room is made at booking and removed at cancellation');
  });

  test('a decline and an expiry tell both participants; a completed session asks the client for a review', async () => {
    const expert = await expertForTest('decline-expert');
    const client = newClient('decline-client');
    const declined = (await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 9), duration_minutes: 60 })).json.session.id;
    await standin.emailsTo([client.email]);
    assert.equal((await postgrest(`/sessions?id=eq.${declined}`, { method: 'PATCH', token: expert.jwt, body: { status: 'declined' } })).status, 204);

    // An unanswered request whose start has passed, and a session in progress past its end.
    const [{ id: lapsed }] = sql(`insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
      values ('${client.id}', '${expert.id}', date_trunc('minute', now()) - interval '1 minute', date_trunc('minute', now()) + interval '59 minutes', 60, 'requested', 12000, 12000, 1200, 10800, 'USD') returning id`);
    const [{ id: finished }] = sql(`insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
      values ('${client.id}', '${expert.id}', date_trunc('minute', now()) - interval '3 hours', date_trunc('minute', now()) - interval '2 hours', 60, 'in_progress', 12000, 12000, 1200, 10800, 'USD') returning id`);
    exec(`delete from outbox where session_id in ('${lapsed}', '${finished}')`);
    const run = await runDispatcher();
    assert.ok(run.json.expired >= 1 && run.json.completed >= 1, JSON.stringify(run.json));
    await runDispatcher();

    const byTopic = (address) => subjectsTo(address);
    await eventually('the notices', async () => (await byTopic(client.email)).length >= 4);
    assert.deepEqual((await byTopic(client.email)).sort(), ['How was your session with Test Expert?', 'Request expired', 'Session declined', 'Session requested'].sort());
    assert.deepEqual((await byTopic(expert.email)).sort(), ['Request declined', 'Request expired', 'Session requested'].sort());
    const review = (await standin.emails()).find((e) => e.to[0] === client.email && e.subject.startsWith('How was'));
    assert.match(review.text, new RegExp(`Leave a review: http://localhost:3000/sessions/${finished}/review`));
    assert.deepEqual(sql(`select status from sessions where id in ('${lapsed}', '${finished}') order by starts_at`).map((r) => r.status), ['completed', 'expired']);
  });

  test('a booking that fails queues nothing', async () => {
    const expert = await expertForTest('race-expert');
    const [first, second] = [newClient('race-a'), newClient('race-b')];
    const starts_at = freeWeekdayStart(expert.id, 14);
    assert.equal((await book(first.jwt, { expert_id: expert.id, starts_at, duration_minutes: 60 })).status, 201);
    const lost = await book(second.jwt, { expert_id: expert.id, starts_at, duration_minutes: 60 });
    assert.equal(lost.status, 409);
    assert.equal(sql(`select count(*)::int as n from outbox where recipient_id = '${second.id}'`)[0].n, 0);
    await runDispatcher();
    assert.deepEqual((await standin.emails()).filter((e) => e.to[0] === second.email), []);
  });
});

describe('failures and overlap lose nothing and duplicate nothing', () => {
  // Whatever earlier tests left due is sent first, so that the failures told to the stand-in
  // below fall on this test's emails.
  beforeEach(() => runDispatcher());

  test('the email provider failing three times: the notices go out once it recovers, exactly once', async () => {
    const expert = await expertForTest('flaky-expert', { instant: true });
    const client = newClient('flaky-client');
    await standin.fail('email', 503, 3);
    const { json } = await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 11), duration_minutes: 60 });
    const id = json.session.id;
    const attempts = () => sql(`select max(attempts) as n from outbox where session_id = '${id}' and topic = 'session.confirmed'`)[0].n;
    await eventually('the first failed attempt', () => attempts() === 1);
    for (let attempt = 2; attempt <= 4; attempt += 1) {
      makeOutboxDue(id, 'session.%');
      await runDispatcher();
    }
    await runDispatcher();
    assert.deepEqual(sql(`select status, attempts from outbox where session_id = '${id}' and topic = 'session.confirmed'`), [{ status: 'sent', attempts: 4 }, { status: 'sent', attempts: 4 }]);
    assert.equal((await standin.emails()).filter((e) => [client.email, expert.email].includes(e.to[0])).length, 2, 'one email each');
    const keys = new Set((await standin.requests('email')).filter((r) => r.body?.some?.((m) => m.to[0] === client.email)).map((r) => r.headers['idempotency-key']));
    assert.equal(keys.size, 1, 'every attempt carried the batch\'s one idempotency key');
  });

  test('two dispatcher runs at once send each notice once', async () => {
    const expert = await expertForTest('overlap-expert', { instant: true });
    const clients = Array.from({ length: 6 }, (_, i) => newClient(`overlap-${i}`));
    await standin.fail('email', 503, 6);
    for (const [index, client] of clients.entries()) {
      const answer = await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 9 + index), duration_minutes: 60 });
      assert.equal(answer.status, 201);
    }
    await eventually('the first attempts', () => sql(`select count(*)::int as n from outbox o join sessions s on s.id = o.session_id
      where s.expert_id = '${expert.id}' and o.topic = 'session.confirmed' and o.attempts = 1`)[0].n === 12);
    exec(`update outbox set next_attempt_at = now() - interval '1 second'
          where session_id in (select id from sessions where expert_id = '${expert.id}') and topic = 'session.confirmed' and status = 'pending'`);
    const [a, b] = await Promise.all([runDispatcher(), runDispatcher()]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const addresses = clients.map((c) => c.email);
    const received = (await standin.emails()).filter((e) => addresses.includes(e.to[0]));
    assert.equal(received.length, 6);
    assert.equal(new Set(received.map((e) => e.to[0])).size, 6, 'no client got theirs twice');
  });
});

describe('outbound webhooks', () => {
  // One endpoint of the stand-in per test, registered as an operator does: through the service role.
  const register = async (name, eventTypes = ['*']) => {
    const [endpoint] = await rest('/webhook_endpoints', { method: 'POST', prefer: 'return=representation', body: { url: `${stack.standin_url}/webhooks/${name}`, event_types: eventTypes } });
    return endpoint;
  };
  const deliveriesTo = async (name) => (await standin.requests('webhook')).filter((r) => r.path === `/webhooks/${name}`);
  const disable = (endpoint) => exec(`update webhook_endpoints set disabled_at = now(), disabled_reason = 'test over' where id = '${endpoint.id}'`);

  test('transitions reach a subscribed endpoint signed as Standard Webhooks, without secrets or personal data', async () => {
    const endpoint = await register(`all-${Date.now()}`, ['session.confirmed', 'session.cancelled']);
    try {
      const expert = await expertForTest('hook-expert', { instant: true });
      const client = newClient('hook-client');
      const { json } = await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 12), duration_minutes: 60 });
      await cancel(client.jwt, { session_id: json.session.id });
      const deliveries = await eventually('two deliveries', async () => {
        const found = await deliveriesTo(endpoint.url.split('/').pop());
        return found.length >= 2 && found;
      });
      const verifier = new Webhook(endpoint.secret);
      const events = deliveries.map((d) => verifier.verify(d.raw, d.headers));
      assert.deepEqual(events.map((e) => e.type), ['session.confirmed', 'session.cancelled']);
      assert.equal(events[1].data.session_id, json.session.id);
      assert.equal(events[1].data.cancelled_by, 'client');
      for (const event of events) {
        const text = JSON.stringify(event);
        for (const forbidden of [client.email, expert.email, 'room_url', 'notes', endpoint.secret]) assert.ok(!text.includes(forbidden), forbidden);
      }
      assert.throws(() => verifier.verify(deliveries[0].raw.replace('confirmed', 'completed'), deliveries[0].headers), 'a tampered body does not verify');
      assert.deepEqual(sql(`select count(*)::int as n, min(status_code) as code from webhook_attempts where endpoint_id = '${endpoint.id}'`), [{ n: 2, code: 200 }], 'each delivery is logged');
    } finally {
      disable(endpoint);
    }
  });

  test('a failing endpoint is retried and logged; an operator replays a delivery under the same id', async () => {
    const name = `flaky-${Date.now()}`;
    const endpoint = await register(name, ['session.confirmed']);
    try {
      await fetch(`${stack.standin_url}/__standin/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'webhook', status: 500, times: 2, path: name }) });
      const expert = await expertForTest('replay-expert', { instant: true });
      const client = newClient('replay-client');
      const { json } = await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 13), duration_minutes: 60 });
      const delivery = () => sql(`select id, status, attempts from outbox where endpoint_id = '${endpoint.id}' and session_id = '${json.session.id}'`)[0];
      await eventually('the first failed delivery', () => delivery()?.attempts === 1);
      assert.ok(sql(`select next_attempt_at > now() + interval '20 seconds' as later from outbox where id = '${delivery().id}'`)[0].later, 'the retry waits');
      makeOutboxDue(json.session.id, 'session.confirmed');
      await runDispatcher();
      makeOutboxDue(json.session.id, 'session.confirmed');
      await runDispatcher();
      assert.deepEqual([delivery().status, delivery().attempts], ['sent', 3]);
      assert.deepEqual(sql(`select attempt, status_code from webhook_attempts where outbox_id = '${delivery().id}' order by attempt`),
        [{ attempt: 1, status_code: 500 }, { attempt: 2, status_code: 500 }, { attempt: 3, status_code: 200 }]);

      const replayed = await call('booking-reminders', '/replay', { method: 'POST', token: stack.service_role_key, body: { outbox_id: delivery().id } });
      assert.equal(replayed.status, 202, JSON.stringify(replayed.json));
      const deliveries = await eventually('the replay', async () => {
        const found = await deliveriesTo(name);
        return found.length === 4 && found;
      });
      assert.equal(new Set(deliveries.map((d) => d.headers['webhook-id'])).size, 1, 'every attempt and the replay carry one message id');
      const forbidden = await call('booking-reminders', '/replay', { method: 'POST', token: client.jwt, body: { outbox_id: delivery().id } });
      assert.equal(forbidden.status, 403, 'replaying is for operators');
    } finally {
      disable(endpoint);
    }
  });
});

describe('requests wait on no provider', () => {
  test('with the email and video providers answering in 2 seconds, booking and cancelling answer at once', async () => {
    const expert = await expertForTest('slow-expert', { instant: true });
    const client = newClient('slow-client');
    await standin.delay('email', 2000);
    await standin.delay('daily', 2000);
    try {
      let started = Date.now();
      const booked = await book(client.jwt, { expert_id: expert.id, starts_at: freeWeekdayStart(expert.id, 15), duration_minutes: 60 });
      const bookingMs = Date.now() - started;
      assert.equal(booked.status, 201);
      started = Date.now();
      const cancelled = await cancel(client.jwt, { session_id: booked.json.session.id });
      const cancellingMs = Date.now() - started;
      assert.equal(cancelled.status, 200);
      assert.ok(bookingMs < 1500 && cancellingMs < 1500, `booking ${bookingMs} ms, cancelling ${cancellingMs} ms`);
      await standin.emailsTo([client.email], 2);
    } finally {
      await standin.delay('email', 0);
      await standin.delay('daily', 0);
    }
  });
});
