-- Experts :first to :last of the benchmark's marketplace, set-based (so that 1,000, then 10,000,
-- then 100,000 load one after another): experts like the seed's (3-4
-- of the 14 skills, proficiency 1-5, rates 50.00-250.00 USD, two thirds with public reviews
-- rated 3.0-5.0, weekday hours 09:00-17:00 in one of six zones, 1% online), as many clients,
-- ten sessions per expert (past ones completed, the rest confirmed or requested, none
-- overlapping for an expert or a client), their PaymentIntents and charges as Stripe reported
-- them, every expert's Connect account able to take charges, and their outbox: two sent
-- confirmation emails each,
-- and the four reminders of each future confirmed session. Run as a superuser: triggers are off
-- while loading, and what they would have written (profiles, search entries, ratings) is written
-- here in bulk instead.
\set ON_ERROR_STOP on
set session_replication_role = replica;
set synchronous_commit = off;

create temporary table bench_people as
select gen_random_uuid() as expert_id, gen_random_uuid() as client_id, i,
       (array['UTC', 'Europe/Paris', 'Europe/London', 'America/New_York', 'America/Los_Angeles', 'Asia/Tokyo'])[1 + i % 6] as zone
from generate_series(:first, :last) i;

insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data, email_confirmed_at, created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated', u.email, '{"provider": "email"}', '{}', now(), now(), now()
from bench_people p cross join lateral (values (p.expert_id, 'bench-expert-' || p.i || '@example.com'), (p.client_id, 'bench-client-' || p.i || '@example.com')) as u (id, email);

insert into public.profiles (id, role, full_name, timezone)
select u.id, u.role, u.name, p.zone from bench_people p
cross join lateral (values (p.expert_id, 'expert', 'Expert ' || p.i), (p.client_id, 'client', 'Client ' || p.i)) as u (id, role, name);

insert into public.expert_profiles (id, headline, hourly_rate_cents, currency, timezone, instant_booking, is_active, accepts_payments, rating_avg, rating_count)
select p.expert_id, 'Expert ' || p.i, 5000 + (hashint4(p.i) & 2147483647) % 201 * 100, 'USD', p.zone, p.i % 2 = 0, true, true,
       case when p.i % 3 = 0 then 0 else round(3 + ((hashint4(p.i * 7) & 2147483647) % 201) / 100.0, 2) end,
       case when p.i % 3 = 0 then 0 else 1 + (hashint4(p.i * 11) & 2147483647) % 40 end
from bench_people p;

insert into public.payout_accounts (expert_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted, reported_at)
select p.expert_id, 'acct_b' || replace(p.expert_id::text, '-', ''), true, true, true, now() from bench_people p;

-- Skills in clusters, so that a popular pair (react, typescript) is held together by many: the
-- first three or four of one cluster (a slice in both subscripts: with one, Postgres would take
-- every cluster up to that one).
insert into public.expert_skills (expert_id, skill_id, proficiency, years)
select p.expert_id, s.id, 1 + (hashint4(p.i * 31 + s.id) & 2147483647) % 5, 1 + (hashint4(p.i + s.id) & 2147483647) % 15
from bench_people p
cross join lateral (
  select sc.id from public.skill_categories sc
  where sc.slug = any ((array[
    array['react', 'typescript', 'nextjs', 'v0'], array['react', 'typescript', 'supabase', 'postgres'],
    array['cursor', 'v0', 'lovable', 'llm-apps'], array['kubernetes', 'terraform', 'aws', 'docker'],
    array['docker', 'ci-cd', 'aws', 'postgres'], array['react', 'nextjs', 'lovable', 'cursor']])[1 + p.i % 6:1 + p.i % 6][1:3 + p.i % 2])
) s;

insert into public.availability_rules (expert_id, weekday, start_minute, end_minute)
select p.expert_id, d, 540, 1020 from bench_people p, generate_series(1, 5) d;

insert into public.online_status (profile_id, is_online, last_seen_at)
select p.expert_id, true, now() from bench_people p where p.i % 100 = 0;

-- Ten sessions per expert, on ten different days (j weeks plus the expert's own weekday offset),
-- each with a client of its own for that day (7919 is prime: the ten clients of an expert, and
-- the ten sessions of a client, are all different), from seven weeks ago to three weeks ahead.
create temporary table bench_sessions as
select gen_random_uuid() as id, c.client_id, p.expert_id, p.zone, j,
       ((date_trunc('day', now()) - interval '49 days' + make_interval(days => j * 7 + p.i % 5)) at time zone 'UTC' + time '10:00')
         at time zone p.zone as starts_at,
       e.hourly_rate_cents
from bench_people p
join public.expert_profiles e on e.id = p.expert_id
cross join generate_series(0, 9) j
join bench_people c on c.i = :first + (p.i - :first + j * 7919) % (:last - :first + 1);

insert into public.sessions (id, client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents,
                             platform_fee_cents, expert_payout_cents, commission_bps, currency, room_name, room_url, created_at, answer_by)
select s.id, s.client_id, s.expert_id, s.starts_at, s.starts_at + interval '60 minutes', 60,
       case when s.starts_at < now() then 'completed' when s.j % 10 = 9 then 'requested' else 'confirmed' end,
       s.hourly_rate_cents, s.hourly_rate_cents, (s.hourly_rate_cents * 1000 + 5000) / 10000, s.hourly_rate_cents - (s.hourly_rate_cents * 1000 + 5000) / 10000,
       1000, 'USD', 'cae-' || s.id, 'https://call-an-expert.daily.co/cae-' || s.id, s.starts_at - interval '14 days',
       case when s.starts_at >= now() and s.j % 10 = 9 then s.starts_at end
from bench_sessions s;

-- Each session's PaymentIntent and charge, as Stripe reported them: authorised for a request,
-- captured for the rest.
update public.sessions x set payment_intent_id = 'pi_b' || replace(x.id::text, '-', '') from bench_sessions s where s.id = x.id;
insert into public.payments (session_id, kind, provider_ref, parent_ref, status, amount_cents, captured_cents, refunded_cents, application_fee_cents,
                             fee_ref, transfer_ref, currency, reported_at, created_at)
select s.id, k.kind, k.prefix || replace(s.id::text, '-', ''), k.parent, k.status, s.hourly_rate_cents, k.captured, k.refunded,
       (s.hourly_rate_cents * 1000 + 5000) / 10000, k.fee, k.transfer, 'USD', s.starts_at - interval '14 days', s.starts_at - interval '14 days'
from bench_sessions s
cross join lateral (select s.j % 10 = 9 and s.starts_at > now() as authorised) a
cross join lateral (values
  ('payment_intent', 'pi_b', null, case when a.authorised then 'requires_capture' else 'succeeded' end, null::bigint, null::bigint, null, null),
  ('charge', 'ch_b', 'pi_b' || replace(s.id::text, '-', ''), 'succeeded', case when a.authorised then 0 else s.hourly_rate_cents end, 0::bigint,
   case when not a.authorised then 'fee_b' || replace(s.id::text, '-', '') end, case when not a.authorised then 'tr_b' || replace(s.id::text, '-', '') end)
) as k (kind, prefix, parent, status, captured, refunded, fee, transfer);

insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, status, attempts, max_attempts, due_at, next_attempt_at,
                           batch_key, provider_ref, sent_at, created_at)
select 'email', 'session.confirmed', 'email:session.confirmed:' || s.id || ':' || r.id, s.id, r.id, 'sent', 1, 5,
       s.starts_at - interval '14 days', s.starts_at - interval '14 days', 'bench', 'bench', s.starts_at - interval '14 days', s.starts_at - interval '14 days'
from bench_sessions s cross join lateral (values (s.client_id), (s.expert_id)) as r (id);

insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, max_attempts, due_at, next_attempt_at, created_at)
select 'email', 'reminder.' || k.kind, 'reminder:' || s.id || ':' || r.id || ':' || k.kind, s.id, r.id, 5, s.starts_at - k.lead, s.starts_at - k.lead, now()
from bench_sessions s cross join lateral (values (s.client_id), (s.expert_id)) as r (id)
cross join (values ('24h', interval '24 hours'), ('1h', interval '1 hour')) as k (kind, lead)
where s.starts_at - k.lead > now() and s.j % 10 <> 9;

insert into private.search_entries select e.* from private.search_entry_source e join bench_people p on p.expert_id = e.expert_id;
insert into private.search_pairs select e.* from private.search_pair_source e join bench_people p on p.expert_id = e.expert_id;
insert into private.online_search_entries select e.* from private.online_search_entry_source e join bench_people p on p.expert_id = e.expert_id;

set session_replication_role = origin;
drop table bench_people, bench_sessions;
