// Data the end-to-end tests and the benchmark both arrange directly in the database.
import { psql } from './stack.mjs';

export function sqlRows(dbUrl, query) {
  return JSON.parse(psql(dbUrl, ['-At', '-c', `with t as (${query}) select coalesce(json_agg(t), '[]') from t`]));
}

// `count` due 24 h reminders (two per session, client and expert) in the outbox, for sessions a
// client and an expert made for the purpose hold an hour apart from tomorrow on.
export function insertReminderBacklog(dbUrl, count) {
  const tag = Math.random().toString(36).slice(2, 10);
  const newUser = (email, meta) => sqlRows(dbUrl, `
    insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
    values (gen_random_uuid(), 'authenticated', 'authenticated', '${email}', '${JSON.stringify(meta)}', now(), now()) returning id`)[0].id;
  const clientEmail = `backlog-client-${tag}@example.com`;
  const expertEmail = `backlog-expert-${tag}@example.com`;
  const client = newUser(clientEmail, { timezone: 'Asia/Tokyo' });
  const expert = newUser(expertEmail, { role: 'expert', timezone: 'America/Los_Angeles' });
  sqlRows(dbUrl, `insert into public.expert_profiles (id, hourly_rate_cents, currency, timezone) values ('${expert}', 9000, 'USD', 'America/Los_Angeles') returning id`);
  sqlRows(dbUrl, `
    insert into public.sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
    select '${client}', '${expert}', s, s + interval '60 minutes', 60, 'confirmed', 9000, 9000, 900, 8100, 'USD'
    from generate_series(date_trunc('minute', now()) + interval '26 hours', date_trunc('minute', now()) + interval '26 hours' + interval '61 minutes' * (${Math.ceil(count / 2)} - 1), interval '61 minutes') s
    returning id`);
  // Only the reminders are the backlog: what the bookings queued (confirmations, rooms) is taken as done.
  sqlRows(dbUrl, `delete from public.outbox where topic not like 'reminder.%' and session_id in (select id from public.sessions where client_id = '${client}') returning id`);
  sqlRows(dbUrl, `update public.outbox set next_attempt_at = now() - interval '1 second'
    where topic = 'reminder.24h' and recipient_id in ('${client}', '${expert}') returning id`);
  return { client, expert, clientEmail, expertEmail };
}
