-- Every query the functions make is served by an index. With sequential scans priced out (as
-- for tables far larger than the seed), each of them, as the functions write it, must name the
-- index meant to serve it and leave no Seq Scan and no Sort behind.
begin;
\ir _helpers.psql
select plan(35);

create function tests.plan_of(query text) returns text language plpgsql as $$
declare
  line text;
  plan text := '';
begin
  for line in execute 'explain (costs off) ' || query loop
    plan := plan || line || E'\n';
  end loop;
  return plan;
end
$$;
create function tests.served(query text, index_name text) returns boolean language plpgsql as $$
declare
  plan text := tests.plan_of(query);
begin
  if plan ~ 'Seq Scan' or plan !~ index_name then
    raise notice '%', plan;
    return false;
  end if;
  return true;
end
$$;
-- Statistics of a busy calendar rather than the seed's three sessions: 3,000 sessions of the
-- four experts with 100 clients, none overlapping, so that the planner's choices are the ones a
-- real database gets.
select tests.make_user('plan-client-' || i || '@example.com') from generate_series(1, 100) i;
insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
select c.id, e.id, t, t + interval '1 hour', 60, 'confirmed', e.hourly_rate_cents, e.hourly_rate_cents,
       (e.hourly_rate_cents * 1000 + 5000) / 10000, e.hourly_rate_cents - (e.hourly_rate_cents * 1000 + 5000) / 10000, e.currency
from (select id, hourly_rate_cents, currency, row_number() over (order by id) - 1 as n from expert_profiles) e
cross join generate_series(0, 749) k
cross join lateral (select timestamptz '2031-01-01 00:00+00' + make_interval(hours => k) as t) x
join (select id, row_number() over (order by id) - 1 as n from auth.users where email like 'plan-client-%') c on c.n = (k * 4 + e.n) % 100;
analyze sessions;
-- And of a catalogue rather than the seed's four experts, whose few dozen entries the planner
-- reads one way before autovacuum has analyzed them and another after: the lists of 5,000 more
-- experts (three skills each), their pairs and the entries of the 2% online, analyzed.
insert into private.search_entries (skill_id, expert_id, proficiency, rating_part, sort_key, hourly_rate_cents, currency, rating_avg)
select ids[1 + (g + k * 5) % cardinality(ids)], x.expert_id, x.proficiency, x.rating_part, 0.09 * x.proficiency + 0.20 * x.rating_part,
       5000 + (g % 200) * 100, 'USD', round(x.rating_part * 5, 2)
from (select array_agg(id order by id) as ids from skill_categories) c
cross join generate_series(1, 5000) g
cross join generate_series(0, 2) k
cross join lateral (select md5('plan-expert-' || g)::uuid as expert_id, (1 + (g + k) % 5)::smallint as proficiency, round(0.6 + (g % 40) / 100.0, 4) as rating_part) x;
insert into private.search_pairs select a.skill_id, b.skill_id, a.expert_id
from private.search_entries a join private.search_entries b on b.expert_id = a.expert_id and b.skill_id > a.skill_id
where a.expert_id <> all (select id from expert_profiles);
insert into private.online_search_entries select se.skill_id, se.expert_id, now(), se.proficiency, se.rating_part, se.hourly_rate_cents, se.currency, se.rating_avg
from private.search_entries se where se.expert_id <> all (select id from expert_profiles) and get_byte(decode(md5(se.expert_id::text), 'hex'), 0) < 5;
analyze private.search_entries, private.search_pairs, private.online_search_entries;
set local enable_seqscan = off;
-- And bitmap scans, which the planner takes for rows inserted by this transaction (not yet
-- marked all-visible, as vacuum marks a real catalogue's), losing the lists' order.
set local enable_bitmapscan = off;
\set ada '''22222222-2222-4222-8222-222222222201'''
\set casey '''11111111-1111-4111-8111-111111111111'''

-- find_experts: the walk, the scoring of the experts seen, presence, the price bound.
select ok(tests.served($$select se.expert_id, se.sort_key from private.search_entries se
  where se.skill_id = 4 and (se.sort_key, se.expert_id) < (1, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
    and se.currency = 'USD' and se.hourly_rate_cents <= 8000 and se.rating_avg >= 4
  order by se.sort_key desc, se.expert_id desc limit 32$$, 'Index Only Scan Backward using search_entries_walk_idx'),
  'the walk reads each skill''s list backwards from its index, filters in the index');
select doesnt_match(tests.plan_of($$select se.expert_id from private.search_entries se where se.skill_id = 4
  and (se.sort_key, se.expert_id) < (1, 'ffffffff-ffff-ffff-ffff-ffffffffffff') order by se.sort_key desc, se.expert_id desc limit 32$$), 'Sort',
  'in list order, with no sort');
select ok(tests.served($$select se.expert_id, sum(se.proficiency)
  from unnest('{22222222-2222-4222-8222-222222222201,22222222-2222-4222-8222-222222222202}'::uuid[]) f (id)
  cross join lateral (select e.expert_id, e.proficiency from private.search_entries e where e.expert_id = f.id and e.skill_id = any ('{4,6}') limit 2) se
  group by se.expert_id$$,
  'Index Scan using search_entries_pkey on search_entries e\n +Index Cond: \(+expert_id = f.id\)'), 'the experts seen are scored by their keys, one probe an expert');
select ok(tests.served($$select o.profile_id from public.online_status o where o.is_online and o.last_seen_at > now() - interval '5 minutes' limit 2001$$,
  'online_status_online_idx'), 'who is online now comes from an index');
select ok(tests.served($$select min(e.hourly_rate_cents) from public.expert_profiles e where e.is_active$$, 'expert_profiles_rate_idx'),
  'the lowest rate, for the price bound, is an index''s first entry');
select ok(tests.served($$select oe.expert_id from private.online_search_entries oe
  where oe.skill_id = any ('{4,6}') and oe.last_seen_at > now() - interval '5 minutes'
    and oe.currency = 'USD' and oe.hourly_rate_cents <= 8000 and oe.rating_avg >= 4$$, 'online_search_entries_skill_idx'),
  'the online candidates are an index range per skill, filtered in the index');
select ok(tests.served($$select p, q, held.holders from generate_subscripts('{4,6,9}'::smallint[], 1) p join generate_subscripts('{4,6,9}'::smallint[], 1) q on q > p
  cross join lateral (select count(*) as holders from (
    select 1 from private.search_pairs sp where sp.skill_a = ('{4,6,9}'::smallint[])[p] and sp.skill_b = ('{4,6,9}'::smallint[])[q] limit 51) h) as held$$,
  'Index (Only )?Scan using search_pairs_pkey on search_pairs sp\n +Index Cond: \(\(skill_a = '), 'how many hold two requested skills together, up to one past rare, is one index range a pair');
select ok(tests.served($$select distinct sp.expert_id from unnest('{1,2}'::int[], '{2,3}'::int[]) r (p, q)
  join private.search_pairs sp on sp.skill_a = ('{4,6,9}'::smallint[])[r.p] and sp.skill_b = ('{4,6,9}'::smallint[])[r.q]$$,
  'Index (Only )?Scan using search_pairs_pkey on search_pairs sp\n +Index Cond: \(\(skill_a = '), 'the holders of the rare pairs are an index range a pair');
select ok(tests.served($$select 1 from private.search_entries se where se.expert_id = '22222222-2222-4222-8222-222222222201'$$, 'search_entries_pkey')
  and tests.served($$select 1 from private.online_search_entries oe where oe.expert_id = '22222222-2222-4222-8222-222222222201'$$, 'online_search_entries_pkey'),
  'a presence report rewrites that expert''s online entries by key');

-- Free slots: an expert's rules, exceptions and sessions of the days searched.
select ok(tests.served(format($$select * from public.availability_rules r where r.expert_id = %L and r.weekday = 3$$, :ada), 'availability_rules_expert_id_idx'),
  'the rules of a weekday');
select ok(tests.served(format($$select * from public.availability_exceptions x where x.expert_id = %L and x.on_date = '2030-01-02' and x.kind = 'blocked'$$, :ada),
  'availability_exceptions_expert_id_idx'), 'the exceptions of a day');
select ok(tests.served(format($$select 1 from public.sessions s where s.expert_id = %L and s.status in ('requested', 'confirmed', 'in_progress')
  and tstzrange(s.starts_at, s.ends_at) && tstzrange('2031-01-02 09:00+00', '2031-01-02 17:00+00')$$, :ada), 'sessions_(expert_id_idx|expert_no_overlap)'),
  'the sessions overlapping a window');

-- book_session: the expert, both participants' overlaps.
select ok(tests.served(format($$select 1 from public.sessions s where s.client_id = %L and s.status in ('requested', 'confirmed', 'in_progress')
  and tstzrange(s.starts_at, s.ends_at) && tstzrange('2031-01-02 09:00+00', '2031-01-02 10:00+00')$$, :casey), 'sessions_(client_id_idx|client_no_overlap)'),
  'a client''s overlapping sessions');
select ok(tests.served(format($$select * from public.expert_profiles e where e.id = %L and e.is_active$$, :ada), 'expert_profiles_pkey'), 'the expert booked');
select ok(tests.served(format($$select c.commission_bps from public.commission_rates c where c.expert_id = %L$$, :ada), 'commission_rates_expert_id_key'),
  'their contract rate');

-- The cancel path: the session with its payments, as cancel-session reads it through PostgREST.
select ok(tests.served($$select s.id, (select json_agg(p) from public.payments p where p.session_id = s.id) from public.sessions s
  where s.id = '55555555-5555-4555-8555-555555555503'$$, 'payments_session_id_idx'), 'a session and its payments, by key');

-- Calendars: an expert's and a client's sessions in a range.
select ok(tests.served(format($$select * from public.sessions s where s.expert_id = %L and s.starts_at >= '2030-01-01' and s.starts_at < '2030-02-01' order by s.starts_at$$, :ada),
  'sessions_expert_id_idx'), 'an expert''s calendar');
select ok(tests.served(format($$select * from public.sessions s where s.client_id = %L and s.starts_at >= '2030-01-01' and s.starts_at < '2030-02-01' order by s.starts_at$$, :casey),
  'sessions_client_id_idx'), 'a client''s calendar');

-- The dispatcher: due rows per channel, expired leases, a kept batch, the sessions to advance.
select ok(tests.served($$select o.id from public.outbox o where o.channel = 'email' and o.status = 'pending' and o.batch_key is null
  and o.next_attempt_at <= now() order by o.next_attempt_at, o.created_at, o.id limit 100$$, 'outbox_due_idx'), 'due emails');
select ok(tests.served($$select o.id from public.outbox o where o.channel in ('room', 'webhook') and o.status = 'sending' and o.lease_expires_at <= now()$$,
  'outbox_lease_idx'), 'expired leases');
select ok(tests.served($$select o.id from public.outbox o where o.batch_key = 'outbox/x' and o.status in ('pending', 'sending')$$, 'outbox_batch_key_idx'),
  'the members of a kept batch');
select ok(tests.served($$select s.id from public.sessions s where s.status = 'requested' and s.answer_by <= now() order by s.answer_by limit 200$$,
  'sessions_answer_by_idx'), 'requests to expire');
select ok(tests.served($$select s.id from public.sessions s where s.status = 'awaiting_payment' and s.payment_due_at <= now() order by s.payment_due_at limit 200$$,
  'sessions_hold_due_idx'), 'holds to lapse');
select ok(tests.served($$select count(*) from public.sessions s where s.client_id = '11111111-1111-4111-8111-111111111111' and s.status = 'awaiting_payment' and s.payment_due_at > now()$$,
  'sessions_client_holds_idx'), 'a client''s unpaid holds');

-- Payments: each Stripe object found by its id or by what names it.
select ok(tests.served($$select s.id from public.sessions s where s.payment_intent_id = 'pi_x'$$, 'sessions_payment_intent_id_key'), 'a session by its PaymentIntent');
select ok(tests.served($$select p.session_id from public.payments p where p.provider_ref = 'ch_x'$$, 'payments_provider_ref_key'), 'a ledger row by its object');
select ok(tests.served($$select p.session_id from public.payments p where p.kind = 'charge' and p.fee_ref = 'fee_x'$$, 'payments_fee_ref_idx'), 'a charge by its application fee');
select ok(tests.served($$select p.session_id from public.payments p where p.kind = 'charge' and p.transfer_ref = 'tr_x'$$, 'payments_transfer_ref_idx'), 'a charge by its transfer');
select ok(tests.served($$select p.kind from public.payments p where p.session_id = '55555555-5555-4555-8555-555555555503'$$, 'payments_session_id_idx'), 'a session''s ledger');
select ok(tests.served($$select a.expert_id from public.payout_accounts a where a.stripe_account_id = 'acct_x'$$, 'payout_accounts_stripe_account_id_key'), 'an expert by their account');
select ok(tests.served($$select e.id from public.stripe_events e where e.status = 'deferred' and e.next_attempt_at <= now() order by e.next_attempt_at limit 200$$,
  'stripe_events_retry_idx'), 'Stripe events to retry');
select ok(tests.served($$select o.id from public.outbox o where o.session_id = '55555555-5555-4555-8555-555555555503' and o.topic = 'payment.capture' and o.status in ('pending', 'sending')$$,
  'outbox_session_id_idx'), 'a session''s pending capture');
select ok(tests.served($$select s.id from public.sessions s where s.status = 'in_progress' and s.starts_at <= now() and s.ends_at <= now() order by s.starts_at limit 200$$,
  'sessions_status_starts_at_idx'), 'sessions to complete');
select ok(tests.served($$select o.session_id from public.outbox o where o.session_id = '55555555-5555-4555-8555-555555555503' and o.topic = 'room.create'$$,
  'outbox_session_id_idx'), 'a session''s room work');
select ok(tests.served($$select 1 from public.match_requests m where m.client_id = '11111111-1111-4111-8111-111111111111' and m.created_at > now() - interval '1 minute'
  order by m.created_at desc limit 60$$, 'match_requests_client_id_idx'), 'a searcher''s searches of the last minute');

select * from finish();
rollback;
