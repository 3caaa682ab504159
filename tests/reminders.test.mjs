// booking-reminders end to end, for the reminders the outbox holds: the built worker under
// wrangler dev, claiming from the real database through PostgREST, sending through the stand-in.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { call, exec, newClient, newExpert, rest, sql, stack, standin } from './helpers.mjs';
import { insertReminderBacklog } from '../scripts/lib/fixtures.mjs';

const run = () => call('booking-reminders', '/run', { method: 'POST', token: stack.service_role_key });

// A confirmed session `hoursAhead` from now between a new client (Asia/Tokyo) and a new expert
// (America/Los_Angeles), arranged as booked earlier: the database schedules its reminders, and
// what its booking queued (confirmation emails, the room) is taken as done.
async function confirmedSession(hoursAhead) {
  const client = newClient('remind-client');
  const expert = await newExpert('remind-expert');
  const [{ id }] = sql(`
    insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
    values ('${client.id}', '${expert.id}', date_trunc('minute', now()) + make_interval(mins => ${Math.round(hoursAhead * 60)}),
            date_trunc('minute', now()) + make_interval(mins => ${Math.round(hoursAhead * 60)} + 60), 60, 'confirmed', 9000, 9000, 900, 8100, 'USD')
    returning id`);
  exec(`delete from outbox where session_id = '${id}' and topic not like 'reminder.%'`);
  return { id, client, expert };
}

const makeDue = (sessionId, kind) => exec(`update outbox set next_attempt_at = now() - interval '1 second' where session_id = '${sessionId}' and topic = 'reminder.${kind}'`);
const reminders = (sessionId) => sql(`select replace(topic, 'reminder.', '') as kind, status, attempts, skip_reason, provider_ref as provider_message_id, last_error
  from outbox where session_id = '${sessionId}' and topic like 'reminder.%' order by kind, recipient_id`);
const emailsTo = async (...addresses) => (await standin.emails()).filter((email) => addresses.includes(email.to[0]) && email.subject.startsWith('Reminder'));
const claim = (leaseSeconds) => rest('/rpc/service_role_claim_outbox', { method: 'POST', body: { email_batch: 100, calls: 0, lease_seconds: leaseSeconds } });

beforeEach(() => standin.reset());

describe('booking-reminders', () => {
  test('POST /run is for the service role only', async () => {
    assert.equal((await call('booking-reminders', '/run', { method: 'POST' })).status, 401);
    const asClient = await call('booking-reminders', '/run', { method: 'POST', token: stack.users[0].jwt });
    assert.deepEqual([asClient.status, asClient.json.error.code], [403, 'forbidden']);
  });

  test('due reminders are sent to both participants, each in their own timezone', async () => {
    const { id, client, expert } = await confirmedSession(1.5);
    makeDue(id, '1h');
    const { status, json } = await run();
    assert.equal(status, 200, JSON.stringify(json));
    assert.ok(json.sent >= 2 && json.subrequests <= 40);
    assert.deepEqual(reminders(id).map((r) => [r.kind, r.status]), [['1h', 'sent'], ['1h', 'sent']]);
    assert.ok(reminders(id).every((r) => r.provider_message_id));
    const [toClient] = await emailsTo(client.email);
    const [toExpert] = await emailsTo(expert.email);
    assert.match(toClient.text, /in one hour: \d{4}-\d\d-\d\d \d\d:\d\d \(Asia\/Tokyo, UTC\+09:00\)/);
    assert.match(toExpert.text, /in one hour: \d{4}-\d\d-\d\d \d\d:\d\d \(America\/Los_Angeles, UTC-0[78]:00\)/);
    assert.ok((await standin.requests('email')).every((r) => r.path === '/emails/batch' && r.headers['idempotency-key'].startsWith('outbox/')), 'in batches, each under its idempotency key');
  });

  test('reminders not yet due stay pending', async () => {
    const { id } = await confirmedSession(72);
    await run();
    assert.ok(reminders(id).every((r) => r.status === 'pending' && r.attempts === 0));
  });

  test('a reminder whose session was cancelled meanwhile is skipped, never sent', async () => {
    const { id, client } = await confirmedSession(1.5);
    makeDue(id, '1h');
    // A run claims it and dies before sending; then the session is cancelled.
    await claim(1);
    exec(`update sessions set status = 'cancelled', cancelled_at = now(), refund_amount_cents = 0, refund_percent = 0 where id = '${id}'`);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await run();
    assert.deepEqual(reminders(id).filter((r) => r.kind === '1h').map((r) => [r.status, r.skip_reason]), [['skipped', 'session_cancelled'], ['skipped', 'session_cancelled']]);
    assert.deepEqual(await emailsTo(client.email), []);
  });

  test('a reminder whose moment passed is skipped with the reason', async () => {
    // A session 30 minutes away whose 24 h and 1 h reminders were never sent (the worker was down).
    const { id, client } = await confirmedSession(0.5);
    exec(`insert into outbox (channel, topic, dedupe_key, session_id, recipient_id, max_attempts, due_at, next_attempt_at)
          select 'email', 'reminder.' || k.kind, 'late:' || s.id || r.recipient || k.kind, s.id, r.recipient, 5, s.starts_at - k.lead, s.starts_at - k.lead
          from sessions s, unnest(array[s.client_id, s.expert_id]) as r (recipient), (values ('24h', interval '24 hours'), ('1h', interval '1 hour')) as k (kind, lead)
          where s.id = '${id}'
          on conflict (dedupe_key) do nothing`);
    await run();
    const byKind = reminders(id).map((r) => [r.kind, r.status, r.skip_reason]);
    assert.deepEqual(byKind, [['1h', 'sent', null], ['1h', 'sent', null], ['24h', 'skipped', 'moment_passed'], ['24h', 'skipped', 'moment_passed']]);
    assert.equal((await emailsTo(client.email)).length, 1, 'only the late 1 h reminder reaches the client');
  });

  test('two overlapping runs never send the same reminder', async () => {
    const sessions = await Promise.all(Array.from({ length: 10 }, () => confirmedSession(1.5)));
    sessions.forEach(({ id }) => makeDue(id, '1h'));
    const [first, second] = await Promise.all([run(), run()]);
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const addresses = sessions.flatMap(({ client, expert }) => [client.email, expert.email]);
    const emails = await emailsTo(...addresses);
    assert.equal(emails.length, 20, 'each of the 20 reminders once');
    assert.equal(new Set(emails.map((e) => e.to[0])).size, 20);
  });

  test('when the provider fails the reminders back off, and after recovery are sent exactly once', async () => {
    const { id, client } = await confirmedSession(1.5);
    makeDue(id, '1h');
    await standin.fail('email', 503, 1);
    const failed = await run();
    assert.equal(failed.status, 200);
    assert.ok(failed.json.retrying >= 2);
    const afterFailure = reminders(id);
    assert.ok(afterFailure.every((r) => r.status === 'pending' && r.attempts === 1 && /503/.test(r.last_error)));
    assert.ok(sql(`select bool_and(next_attempt_at > now() + interval '50 seconds') as later from outbox where session_id = '${id}' and topic = 'reminder.1h'`)[0].later, 'the retry waits');
    makeDue(id, '1h');
    await run();
    await run();
    assert.ok(reminders(id).every((r) => r.status === 'sent' && r.attempts === 2));
    assert.equal((await emailsTo(client.email)).length, 1);
  });

  test('a reminder failing five times is failed for good', async () => {
    const { id, client } = await confirmedSession(1.5);
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      makeDue(id, '1h');
      await standin.fail('email', 500, 1);
      await run();
    }
    assert.ok(reminders(id).every((r) => r.status === 'failed' && r.attempts === 5));
    makeDue(id, '1h');
    await run();
    assert.deepEqual(await emailsTo(client.email), []);
  });

  test('a run that crashed between claim and send is picked up once its lease expires', async () => {
    const { id, client } = await confirmedSession(1.5);
    makeDue(id, '1h');
    const claimed = await claim(1);
    assert.ok(claimed.emails.some((r) => r.contacts.session_id === id));
    await run();
    assert.ok(reminders(id).every((r) => r.status === 'sending'), 'still leased to the crashed run');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await run();
    assert.ok(reminders(id).every((r) => r.status === 'sent'));
    assert.equal((await emailsTo(client.email)).length, 1);
  });

  test('the cron trigger runs the same dispatch', async () => {
    const { id } = await confirmedSession(1.5);
    makeDue(id, '1h');
    const response = await fetch(`${stack.functions['booking-reminders']}/__scheduled?cron=${encodeURIComponent('*/5 * * * *')}`);
    assert.equal(response.status, 200);
    assert.ok(reminders(id).every((r) => r.status === 'sent'));
  });

  test('a backlog of 5,000 due reminders drains over successive runs within the budget, without a duplicate', async () => {
    const { client, expert, clientEmail, expertEmail } = insertReminderBacklog(stack.db_superuser_url, 5000);
    const backlog = () => sql(`select status, count(*)::int as n from outbox where recipient_id in ('${client}', '${expert}') and topic = 'reminder.24h' group by status order by status`);
    assert.deepEqual(backlog(), [{ status: 'pending', n: 5000 }]);
    const runs = [];
    const started = Date.now();
    for (let i = 0; i < 10 && runs.at(-1)?.remaining !== 0; i += 1) {
      const { status, json } = await run();
      assert.equal(status, 200, JSON.stringify(json));
      runs.push(json);
    }
    const seconds = (Date.now() - started) / 1000;
    for (const summary of runs) {
      assert.ok(summary.subrequests <= 40, `a run used ${summary.subrequests} subrequests`);
      assert.ok(summary.batches <= 13);
    }
    assert.ok(runs.length >= 4, 'more than one run was needed');
    assert.deepEqual(backlog(), [{ status: 'sent', n: 5000 }]);
    assert.equal((await emailsTo(clientEmail, expertEmail)).length, 5000, 'exactly one email per reminder');
    const batches = (await standin.requests('email')).filter((r) => r.path === '/emails/batch');
    assert.ok(batches.every((r) => r.body.length <= 100));
    console.log(`# backlog: 5000 reminders in ${runs.length} runs, ${seconds.toFixed(1)} s, ${(5000 / seconds).toFixed(0)} reminders/s, ${runs.map((r) => r.sent).join('+')} per run`);
  });
});
