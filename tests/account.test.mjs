// auth-email-verify and password-reset end to end: the Send Email hook signed as Supabase Auth
// signs it (Standard Webhooks, with node:crypto), the verification and reset token flows.
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, eventually, exec, newClient, runDispatcher, sql, stack, standin } from './helpers.mjs';

beforeEach(() => standin.reset());

const hookKey = Buffer.from(stack.send_email_hook_secret.replace('v1,whsec_', ''), 'base64');
function hook(payload, { id = `msg_${randomUUID()}`, timestamp = Math.floor(Date.now() / 1000), key = hookKey, signature } = {}) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signed = `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
  return call('auth-email-verify', '/hook', {
    method: 'POST',
    body,
    headers: { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature ?? signed },
  });
}
const hookPayload = (action, data = {}, user = {}) => ({
  user: { id: randomUUID(), email: 'casey.client@example.com', new_email: 'casey.new@example.com', user_metadata: { full_name: 'Casey' }, ...user },
  email_data: { token: '654321', token_hash: 'th_current', redirect_to: 'http://localhost:3000/welcome', email_action_type: action, site_url: 'x', token_new: '', token_hash_new: '', ...data },
});

describe('auth-email-verify: Send Email hook', () => {
  test('a signed signup delivery sends the confirmation link Supabase Auth expects', async () => {
    const id = `msg_${randomUUID()}`;
    const { status, json } = await hook(hookPayload('signup'), { id });
    assert.deepEqual([status, json], [200, {}]);
    const [email] = await standin.emails();
    assert.equal(email.to[0], 'casey.client@example.com');
    assert.equal(email.idempotency_key, `auth-hook/${id}/0`);
    assert.ok(email.text.includes(`${stack.postgrest_url}/auth/v1/verify?token=th_current&type=signup&redirect_to=http%3A%2F%2Flocalhost%3A3000%2Fwelcome`));
    assert.match(email.text, /654321/);
  });

  test('each action type reaches the right addresses', async () => {
    const cases = [
      ['invite', {}, ['casey.client@example.com']],
      ['magiclink', {}, ['casey.client@example.com']],
      ['recovery', {}, ['casey.client@example.com']],
      ['reauthentication', {}, ['casey.client@example.com']],
      ['email_change', {}, ['casey.new@example.com']],
      ['email_change', { token_hash_new: 'th_for_current' }, ['casey.client@example.com', 'casey.new@example.com']],
    ];
    for (const [action, data, expected] of cases) {
      await standin.reset();
      const { status } = await hook(hookPayload(action, data));
      assert.equal(status, 200, action);
      assert.deepEqual((await standin.emails()).map((e) => e.to[0]), expected, `${action} ${JSON.stringify(data)}`);
    }
  });

  test('bad signatures, missing headers and stale timestamps are refused in the hook format', async () => {
    const wrongKey = await hook(hookPayload('signup'), { key: Buffer.from('not-the-secret') });
    assert.deepEqual([wrongKey.status, wrongKey.json.error.http_code], [401, 401]);
    assert.match(wrongKey.json.error.message, /No signature/);
    const stale = await hook(hookPayload('signup'), { timestamp: Math.floor(Date.now() / 1000) - 301 });
    assert.match(stale.json.error.message, /5-minute tolerance/);
    const missing = await call('auth-email-verify', '/hook', { method: 'POST', body: hookPayload('signup') });
    assert.deepEqual([missing.status, missing.json.error.message], [401, 'The webhook-id header is missing.']);
    assert.equal((await standin.emails()).length, 0);
  });

  test('a replayed delivery is refused and sends nothing', async () => {
    const id = `msg_${randomUUID()}`;
    assert.equal((await hook(hookPayload('magiclink'), { id })).status, 200);
    const replay = await hook(hookPayload('magiclink'), { id });
    assert.deepEqual([replay.status, replay.json.error.http_code], [409, 409]);
    assert.equal((await standin.emails()).length, 1);
  });

  test('an unknown action type and a malformed payload are 400s', async () => {
    const unknown = await hook(hookPayload('sms'));
    assert.deepEqual([unknown.status, unknown.json.error.message], [400, 'Unknown email_action_type "sms".']);
    const malformed = await hook('{"user": ');
    assert.equal(malformed.status, 400);
    assert.ok(malformed.json.error.http_code === 400);
  });

  test('when the provider fails, the answer is a retryable 503 and the retry sends once', async () => {
    const id = `msg_${randomUUID()}`;
    await standin.fail('email', 500, 1);
    const failed = await hook(hookPayload('recovery'), { id });
    assert.deepEqual([failed.status, failed.json.error.http_code], [503, 503]);
    assert.equal(failed.headers.get('retry-after'), '2');
    const retried = await hook(hookPayload('recovery'), { id });
    assert.equal(retried.status, 200, 'the retry of the same delivery is not a replay');
    assert.equal((await standin.emails()).length, 1);
  });
});

const verification = (path, token, body) => call('auth-email-verify', path, { method: 'POST', token, body: body ?? {} });
const linkToken = (email) => email.text.match(/token=([0-9a-f-]{36}\.[0-9a-f]{64})/)[1];

function unconfirmedUser(label) {
  const user = newClient(label);
  exec(`update auth.users set email_confirmed_at = null where id = '${user.id}'`);
  return user;
}

describe('auth-email-verify: own token flow', () => {
  test('a user gets a link whose token is stored only as a hash, and confirming it confirms the email once', async () => {
    const user = unconfirmedUser('verify');
    const requested = await verification('/request', user.jwt);
    assert.equal(requested.status, 202, JSON.stringify(requested.json));
    const [email] = await standin.emailsTo([user.email]);
    assert.equal(email.to[0], user.email);
    const token = linkToken(email);
    const [id, secret] = token.split('.');
    const [row] = sql(`select encode(token_hash, 'hex') as hash, expires_at > now() + interval '23 hours' as lasts_a_day from email_verification_tokens where id = '${id}'`);
    assert.equal(row.hash, createHash('sha256').update(Buffer.from(secret, 'hex')).digest('hex'));
    assert.ok(!JSON.stringify(sql(`select * from email_verification_tokens where id = '${id}'`)).includes(secret), 'the secret itself is stored nowhere');
    assert.ok(row.lasts_a_day);

    const confirmed = await verification('/confirm', undefined, { token });
    assert.deepEqual([confirmed.status, confirmed.json.confirmed], [200, true]);
    assert.ok(sql(`select email_confirmed_at is not null as confirmed from auth.users where id = '${user.id}'`)[0].confirmed);
    assert.equal(sql(`select count(*)::int as n from audit_logs where action = 'email.confirmed' and actor_id = '${user.id}'`)[0].n, 1);
    const again = await verification('/confirm', undefined, { token });
    assert.deepEqual([again.status, again.json.error.code], [409, 'token_used']);
  });

  test('at most three requests an hour', async () => {
    const user = unconfirmedUser('verify-limit');
    for (let i = 0; i < 3; i += 1) assert.equal((await verification('/request', user.jwt)).status, 202);
    const fourth = await verification('/request', user.jwt);
    assert.deepEqual([fourth.status, fourth.json.error.code, fourth.headers.get('retry-after')], [429, 'rate_limited', '3600']);
  });

  test('a confirmed address, a missing token and no JWT are refused', async () => {
    const confirmedUser = newClient('already');
    exec(`update auth.users set email_confirmed_at = now() where id = '${confirmedUser.id}'`);
    assert.equal((await verification('/request', confirmedUser.jwt)).json.error.code, 'already_confirmed');
    assert.equal((await verification('/request')).status, 401);
    const missing = await verification('/confirm', undefined, {});
    assert.deepEqual([missing.status, missing.json.error.details.fields[0].field], [400, 'token']);
    const malformed = await verification('/confirm', undefined, { token: 'abc' });
    assert.deepEqual([malformed.status, malformed.json.error.details.fields[0].rule], [400, 'token']);
  });

  test('five wrong secrets lock the token, even against the right one', async () => {
    const user = unconfirmedUser('verify-guess');
    await verification('/request', user.jwt);
    const token = linkToken((await standin.emailsTo([user.email]))[0]);
    const [id] = token.split('.');
    for (let i = 0; i < 5; i += 1) {
      const wrong = await verification('/confirm', undefined, { token: `${id}.${'0'.repeat(64)}` });
      assert.deepEqual([wrong.status, wrong.json.error.code], [400, 'invalid_token']);
    }
    const right = await verification('/confirm', undefined, { token });
    assert.deepEqual([right.status, right.json.error.code], [429, 'too_many_attempts']);
    assert.ok(!sql(`select email_confirmed_at is not null as confirmed from auth.users where id = '${user.id}'`)[0].confirmed);
    assert.equal(sql(`select attempts from email_verification_tokens where id = '${id}'`)[0].attempts, 5);
  });

  test('an expired token confirms nothing', async () => {
    const user = unconfirmedUser('verify-late');
    await verification('/request', user.jwt);
    const token = linkToken((await standin.emailsTo([user.email]))[0]);
    exec(`update email_verification_tokens set expires_at = now() - interval '1 second' where id = '${token.split('.')[0]}'`);
    const late = await verification('/confirm', undefined, { token });
    assert.deepEqual([late.status, late.json.error.code], [400, 'token_expired']);
    assert.ok(!sql(`select email_confirmed_at is not null as confirmed from auth.users where id = '${user.id}'`)[0].confirmed);
  });
});

const reset = (path, body) => call('password-reset', path, { method: 'POST', body });

describe('password-reset', () => {
  beforeEach(() => exec('delete from rate_limit_events'));

  test('a request answers the same, in about the same time, whether or not the account exists', async () => {
    const user = newClient('reset');
    const timed = async (email) => {
      const started = performance.now();
      const answer = await reset('/request', { email });
      return { ...answer, ms: performance.now() - started };
    };
    const known = await timed(user.email);
    const unknown = await timed(`nobody-${randomUUID()}@example.com`);
    assert.equal(known.status, 202);
    assert.deepEqual([unknown.status, unknown.text], [known.status, known.text]);
    assert.ok(known.ms >= 500 && unknown.ms >= 500, `${known.ms} / ${unknown.ms}`);
    assert.ok(Math.abs(known.ms - unknown.ms) < 250, `${known.ms} vs ${unknown.ms}`);
    await standin.emailsTo([user.email]);
    assert.deepEqual((await standin.emails()).map((e) => e.to[0]), [user.email], 'only the real account gets an email');
  });

  test('completing sets a bcrypt password Supabase Auth accepts, consumes every reset token and signs the user out', async () => {
    const user = newClient('reset-complete');
    exec(`insert into auth.sessions (id, user_id, created_at) values (gen_random_uuid(), '${user.id}', now());
          insert into auth.refresh_tokens (token, user_id, revoked, session_id, created_at)
          select 'rt-' || id, '${user.id}', false, id, now() from auth.sessions where user_id = '${user.id}'`);
    await reset('/request', { email: user.email });
    await reset('/request', { email: user.email });
    const tokens = (await standin.emailsTo([user.email], 2)).map(linkToken);
    const issued = sql(`select id from password_reset_tokens where user_id = '${user.id}' order by created_at`).map((row) => row.id);
    const [first, second] = issued.map((id) => tokens.find((token) => token.startsWith(id)));
    const done = await reset('/complete', { token: second, password: 'Correct-Horse-42' });
    assert.deepEqual([done.status, done.json.password_changed], [200, true]);
    const [account] = sql(`select encrypted_password ~ '^\\$2[aby]\\$10\\$' as bcrypt, encrypted_password = extensions.crypt('Correct-Horse-42', encrypted_password) as verifies from auth.users where id = '${user.id}'`);
    assert.deepEqual(account, { bcrypt: true, verifies: true });
    assert.equal(sql(`select count(*)::int as n from password_reset_tokens where user_id = '${user.id}' and consumed_at is null`)[0].n, 0, 'the other token is consumed too');
    assert.equal(sql(`select count(*)::int as n from auth.sessions where user_id = '${user.id}'`)[0].n, 0);
    assert.equal(sql(`select count(*)::int as n from auth.refresh_tokens where user_id = '${user.id}' and not revoked`)[0].n, 0, 'no refresh token still works');
    assert.equal(sql(`select count(*)::int as n from audit_logs where action = 'password.reset' and actor_id = '${user.id}'`)[0].n, 1);
    await eventually('the password-changed notice', async () => (await standin.emails()).some((e) => e.to[0] === user.email && e.subject === 'Your password was changed'));
    const reused = await reset('/complete', { token: first, password: 'Another-Horse-43' });
    assert.deepEqual([reused.status, reused.json.error.code], [409, 'token_used']);
  });

  test('a weak password is refused without spending an attempt; the token still works', async () => {
    const user = newClient('reset-weak');
    await reset('/request', { email: user.email });
    const token = linkToken((await standin.emailsTo([user.email]))[0]);
    for (const [password, rule] of [['short1A', 'too_short'], ['alllowercaseletters', 'one_class'], [`${user.email.split('@')[0]}-X1`, 'contains_email']]) {
      const weak = await reset('/complete', { token, password });
      assert.deepEqual([weak.status, weak.json.error.details.fields[0].rule], [400, rule], password);
    }
    assert.equal(sql(`select attempts from password_reset_tokens where id = '${token.split('.')[0]}'`)[0].attempts, 0);
    assert.equal((await reset('/complete', { token, password: 'Strong-Enough-77' })).status, 200);
  });

  test('an expired or forged token changes nothing', async () => {
    const user = newClient('reset-expired');
    const before = sql(`select encrypted_password from auth.users where id = '${user.id}'`)[0].encrypted_password;
    await reset('/request', { email: user.email });
    const token = linkToken((await standin.emailsTo([user.email]))[0]);
    exec(`update password_reset_tokens set expires_at = now() - interval '1 second' where id = '${token.split('.')[0]}'`);
    assert.equal((await reset('/complete', { token, password: 'Correct-Horse-42' })).json.error.code, 'token_expired');
    assert.equal((await reset('/complete', { token: `${randomUUID()}.${'a'.repeat(64)}`, password: 'Correct-Horse-42' })).json.error.code, 'invalid_token');
    assert.equal(sql(`select encrypted_password from auth.users where id = '${user.id}'`)[0].encrypted_password, before);
  });

  test('requests are rate limited per address, with Retry-After', async () => {
    const email = `limit-${randomUUID()}@example.com`;
    for (let i = 0; i < 5; i += 1) assert.equal((await reset('/request', { email })).status, 202);
    const sixth = await reset('/request', { email });
    assert.deepEqual([sixth.status, sixth.json.error.code], [429, 'rate_limited']);
    assert.ok(Number(sixth.headers.get('retry-after')) > 3500);
  });

  test('requests are rate limited per client address', async () => {
    const answers = [];
    for (let i = 0; i < 21; i += 1) answers.push((await reset('/request', { email: `client-${i}-${randomUUID()}@example.com` })).status);
    assert.deepEqual([answers.slice(0, 20).every((s) => s === 202), answers[20]], [true, 429]);
  });

  test('when the reset email cannot be sent, the answer is still 202 and the email goes out on a later attempt', async () => {
    const user = newClient('reset-down');
    const healthy = await reset('/request', { email: `nobody-${randomUUID()}@example.com` });
    await standin.fail('email', 500, 1);
    const failed = await reset('/request', { email: user.email });
    assert.deepEqual([failed.status, failed.text], [healthy.status, healthy.text]);
    const queued = () => sql(`select status, attempts, last_error from outbox where recipient_id = '${user.id}' and topic = 'account.password_reset'`)[0];
    await eventually('the failed first attempt', () => queued()?.attempts === 1 && queued().status === 'pending');
    assert.match(queued().last_error, /500/);
    exec(`update outbox set next_attempt_at = now() where recipient_id = '${user.id}' and topic = 'account.password_reset'`);
    assert.equal((await runDispatcher()).status, 200);
    assert.equal(queued().status, 'sent');
    const [email] = await standin.emailsTo([user.email]);
    const [token] = sql(`select id from password_reset_tokens where user_id = '${user.id}'`);
    assert.ok(linkToken(email).startsWith(token.id), 'the retried email carries the same token');
  });

  test('no token secret or hash appears in a response, a log line or an audit row', async () => {
    const user = newClient('reset-leak');
    const answers = [await reset('/request', { email: user.email })];
    const token = linkToken((await standin.emailsTo([user.email]))[0]);
    const [id, secret] = token.split('.');
    const hash = createHash('sha256').update(Buffer.from(secret, 'hex')).digest('hex');
    answers.push(await reset('/complete', { token: `${id}.${'1'.repeat(64)}`, password: 'Correct-Horse-42' }));
    answers.push(await reset('/complete', { token, password: 'Correct-Horse-42' }));
    for (const answer of answers) assert.ok(!answer.text.includes(secret) && !answer.text.includes(hash), answer.text);
    const logs = readdirSync(stack.logs).map((file) => readFileSync(join(stack.logs, file), 'utf8')).join('\n');
    assert.ok(!logs.includes(secret) && !logs.includes(hash), 'not in the logs');
    const audit = JSON.stringify(sql(`select * from audit_logs where actor_id = '${user.id}' or entity_id = '${id}'`));
    assert.ok(audit.length > 2 && !audit.includes(secret) && !audit.includes(hash), 'not in the audit rows');
    const outbox = JSON.stringify(sql(`select * from outbox where recipient_id = '${user.id}'`));
    assert.ok(outbox.includes(id) && !outbox.includes(secret) && !outbox.includes(hash), 'nor in the outbox, which holds the token id alone');
  });

  test('a malformed email is a 400; the answer never depends on the account', async () => {
    const { status, json } = await reset('/request', { email: 'not-an-email' });
    assert.deepEqual([status, json.error.details.fields[0].field], [400, 'email']);
  });
});
