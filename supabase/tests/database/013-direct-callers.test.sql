-- A client calling PostgREST directly, with its own JWT and arguments the workers would never
-- send, gets nothing the functions would refuse it. One block per rule, each both ways.
begin;
\ir _helpers.psql
select plan(75);

select tests.freeze_time('2030-01-02 08:00+00');
\set ada '''22222222-2222-4222-8222-222222222201'''
\set finn '''22222222-2222-4222-8222-222222222202'''
\set rae '''22222222-2222-4222-8222-222222222204'''
select tests.make_user('mallory@example.com', '{"full_name": "Mallory Client"}');

-- 1. The commission is the server's: a booking at any other split is refused.
-- Ada: 150.00/h, 60 minutes = 15000; at 1000 bps the fee is 1500.
select tests.authenticate_as('mallory@example.com');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:00+00', 60, 15000, 0, 15000, 0, 15000, 'USD')$$,
  'PT409', 'The price changed since the quote.', 'a booking at 0 bps (the platform earns nothing) is refused');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:00+00', 60, 15000, 10000, 15000, 15000, 0, 'USD')$$,
  'PT409', 'The price changed since the quote.', 'a booking at 10000 bps (the expert earns nothing) is refused');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:00+00', 60, 15000, 1000, 15000, 100, 14900, 'USD')$$,
  'PT409', 'The price changed since the quote.', 'a fee that does not follow the commission is refused, even when the parts add up');
select lives_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD')$$,
  'the booking at the database''s own price goes through');
reset role;
select results_eq($$select commission_bps, platform_fee_cents, expert_payout_cents from sessions where client_id = tests.user_id('mallory@example.com')$$,
  $$values (1000, 1500::bigint, 13500::bigint)$$, 'the session stores the server''s commission and split');
select results_eq($$select s.status, (select count(*) from payments p where p.session_id = s.id) from sessions s where s.client_id = tests.user_id('mallory@example.com')$$,
  $$values ('awaiting_payment'::text, 0::bigint)$$, 'and holds its slot for the payment, with nothing in the ledger until Stripe reports one');

-- A contract rate, set by the service role alone, replaces the default.
select tests.as_service_role();
select lives_ok($$insert into commission_rates (expert_id, commission_bps, note) values ('22222222-2222-4222-8222-222222222201', 1500, 'launch partner')$$,
  'the service role sets a contract rate');
reset role;
select tests.authenticate_as('ada.ai@example.com');
select throws_ok($$update commission_rates set commission_bps = 0$$, '42501', 'permission denied for table commission_rates', 'an expert cannot change their rate');
select throws_ok($$insert into commission_rates (expert_id, commission_bps) values ('22222222-2222-4222-8222-222222222201', 0)$$, '42501',
  'permission denied for table commission_rates', 'nor write one');
select is((select commission_bps from commission_rates), 1500, 'but reads their own');
reset role;
select tests.authenticate_as('mallory@example.com');
select is((select count(*) from commission_rates), 0::bigint, 'a client reads no contract');
select is((expert_quote('22222222-2222-4222-8222-222222222201') ->> 'commission_bps')::int, 1500, 'the quote carries the contract commission');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-08 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD')$$,
  'PT409', 'The price changed since the quote.', 'the default split is refused once a contract applies');
select lives_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-08 10:00+00', 60, 15000, 1500, 15000, 2250, 12750, 'USD')$$,
  'the contract split goes through');
reset role;
select tests.as_service_role();
insert into commission_rates (agency_id, commission_bps) values ('44444444-4444-4444-8444-444444444444', 1200);
reset role;
select is((expert_quote(:rae) ->> 'commission_bps')::int, 1200, 'an agency''s contract applies to its experts');
select is((expert_quote(:finn) ->> 'commission_bps')::int, 1000, 'the platform default to everyone else');

-- 2. The room is the platform's: derived from the session id, on the configured domain.
select hasnt_function('public', 'book_session',
  array['uuid', 'timestamp with time zone', 'integer', 'bigint', 'bigint', 'bigint', 'bigint', 'integer', 'text', 'text', 'text', 'text', 'uuid', 'jsonb'],
  'book_session takes no room name or link from its caller');
select is_empty($$select id from sessions where room_name <> 'cae-' || id::text or room_url <> 'https://call-an-expert.daily.co/cae-' || id::text$$,
  'every session''s room is named after it, on the platform''s domain');
insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency, room_name, room_url)
values (tests.user_id('mallory@example.com'), :finn, '2030-01-09 15:00+00', '2030-01-09 16:00+00', 60, 'requested', 12000, 12000, 1200, 10800, 'USD', 'evil', 'https://evil.example/join')
returning room_url as written_url, id as written_id \gset
select is(:'written_url', 'https://call-an-expert.daily.co/cae-' || :'written_id', 'even an insert naming another room gets the platform''s');
update sessions set room_name = 'evil', room_url = 'https://evil.example/join' where id = :'written_id';
select results_eq(format($$select room_name, room_url from sessions where id = %L$$, :'written_id'),
  format($$values ('cae-%s', 'https://call-an-expert.daily.co/cae-%s')$$, :'written_id', :'written_id'),
  'and an update naming another room gets the platform''s again');

-- 3. Audit facts come from the request as PostgREST received it; the caller's context is a claim.
select set_config('request.headers', '{"user-agent": "RealBrowser/1.0", "cf-connecting-ip": "203.0.113.9", "x-request-id": "req-42"}', true);
select tests.authenticate_as('mallory@example.com');
select book_session(:finn, '2030-01-10 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD', '',
                    '{"ip": "6.6.6.6", "user_agent": "Forged/1.0", "request_id": "forged"}');
reset role;
select results_eq($$select host(ip), user_agent, request_id from audit_logs where actor_id = tests.user_id('mallory@example.com') order by id desc limit 1$$,
  $$values ('203.0.113.9', 'RealBrowser/1.0', 'req-42')$$, 'ip, user agent and request id are those PostgREST received');
select is((select reported_context from audit_logs where actor_id = tests.user_id('mallory@example.com') order by id desc limit 1),
  '{"ip": "6.6.6.6", "user_agent": "Forged/1.0", "request_id": "forged"}'::jsonb, 'what the caller claimed is kept apart, as reported');
-- Mallory pays for what she booked so far (she may hold only a few unpaid slots at once).
select tests.pay(id) from sessions where client_id = tests.user_id('mallory@example.com') and status = 'awaiting_payment';
select set_config('request.headers', '{"cf-connecting-ip": "not an address"}', true);
select tests.authenticate_as('mallory@example.com');
select lives_ok($$select book_session('22222222-2222-4222-8222-222222222202', '2030-01-10 17:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD')$$,
  'a malformed address header does not stop a booking');
reset role;
select is((select ip from audit_logs where actor_id = tests.user_id('mallory@example.com') order by id desc limit 1), null, 'it is simply not recorded');
select set_config('request.headers', '', true);

-- 4. A cancellation's refund must be the one the policy gives, never more than was captured.
select tests.make_session('mallory@example.com', 'rae.react@example.com', '2030-01-02 20:00+00', 60) as soon_id \gset
select tests.make_session('mallory@example.com', 'rae.react@example.com', '2030-01-20 20:00+00', 60, 'requested') as unpaid_id \gset
select tests.as_service_role();
select throws_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 100, 9000, 900, 8100)$$, :'soon_id'),
  'PT409', 'The refund is not the one the cancellation policy gives now; try again.', 'a full refund 12 hours before the start is refused for the client');
select throws_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 50, 5000, 500, 4500)$$, :'soon_id'),
  'PT409', null, 'so is more than the policy''s half');
select throws_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 50, 4500, 0, 4500)$$, :'soon_id'),
  'PT409', null, 'and a split that does not follow the charge''s');
select throws_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 100, 9000, 900, 8100)$$, :'unpaid_id'),
  'PT409', null, 'a refund of a charge never captured is refused');
select lives_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 50, 4500, 450, 4050)$$, :'soon_id'),
  'half, split in proportion, goes through');
select lives_ok(format($$select service_role_cancel_session(%L, tests.user_id('mallory@example.com'), '', 0, 0, 0, 0)$$, :'unpaid_id'),
  'and so does nothing for the request never charged');
reset role;

-- 5. find_experts keeps the worker's bounds; signed-in searches are rate limited.
select tests.as_anon();
select throws_ok($$select find_experts(array['react'], window_from => '2060-01-01', window_to => '2060-03-01')$$, 'PT400', null,
  'a window of two months is refused');
select throws_ok($$select find_experts(array['a','b','c','d','e','f','g','h','i','j','k'])$$, 'PT400', null, 'eleven skills are refused');
select throws_ok($$select find_experts('{}'::text[])$$, 'PT400', null, 'no skill is refused');
select throws_ok($$select find_experts(array['react'], duration_minutes => 70)$$, 'PT400', null, 'a duration off the 15-minute steps is refused');
select throws_ok($$select find_experts(array['react'], page_size => 51)$$, 'PT400', null, 'a page of 51 is refused');
select throws_ok($$select find_experts(array['react'], window_from => '2030-01-03')$$, 'PT400', null, 'half a window is refused');
select lives_ok($$select find_experts(array['react'], window_from => '2030-01-03', window_to => '2030-02-03', page_size => 50)$$,
  'a search at the bounds is answered');
reset role;
select tests.authenticate_as('mallory@example.com');
select lives_ok($$select find_experts(array['react']) from generate_series(1, 60)$$, 'a signed-in user runs 60 searches in a minute');
select throws_ok($$select find_experts(array['react'])$$, 'PT429', 'At most 60 searches a minute: try again shortly.', 'the 61st is refused');
reset role;
select tests.freeze_time('2030-01-02 08:01:01+00');
select tests.authenticate_as('mallory@example.com');
select lives_ok($$select find_experts(array['react'])$$, 'a minute later searching works again');
reset role;
select tests.freeze_time('2030-01-02 08:00+00');

-- 6. Presence times are the server's.
select tests.authenticate_as('mallory@example.com');
select throws_ok($$insert into online_status (profile_id, is_online, last_seen_at) values (tests.user_id('mallory@example.com'), true, '2099-01-01')$$,
  '42501', 'permission denied for table online_status', 'a user cannot choose when they were last seen');
select lives_ok($$insert into online_status (profile_id, is_online) values (tests.user_id('mallory@example.com'), true)$$, 'but reports being online');
select throws_ok($$update online_status set last_seen_at = '2099-01-01' where profile_id = tests.user_id('mallory@example.com')$$,
  '42501', 'permission denied for table online_status', 'and cannot move the time later either');
reset role;
select is((select last_seen_at from online_status where profile_id = tests.user_id('mallory@example.com')), '2030-01-02 08:00+00'::timestamptz,
  'the time is the database''s clock');

-- 7. The status machine respects time (Rae's sessions, frozen clock).
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-01-03 17:00+00', 60, 'requested') as req_id \gset
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-01-04 17:00+00', 60, 'confirmed') as conf_id \gset
select tests.freeze_time('2030-01-03 17:00+00');
select tests.authenticate_as('rae.react@example.com');
select throws_ok(format($$update sessions set status = 'confirmed' where id = %L$$, :'req_id'), 'PT409',
  'A request can be confirmed or declined only before its answer deadline (its start, or the card authorisation''s lifetime).',
  'a request cannot be confirmed at its start');
select throws_ok(format($$update sessions set status = 'declined' where id = %L$$, :'req_id'), 'PT409',
  'A request can be confirmed or declined only before its answer deadline (its start, or the card authorisation''s lifetime).', 'nor declined');
select throws_ok(format($$update sessions set status = 'expired' where id = %L$$, :'req_id'), '42501',
  'Only the platform expires a request.', 'an expert cannot expire a request');
reset role;
select tests.freeze_time('2030-01-03 16:59+00');
select tests.authenticate_as('rae.react@example.com');
select lives_ok(format($$update sessions set status = 'declined' where id = %L$$, :'req_id'), 'a minute before its start it can still be declined');
reset role;
select tests.freeze_time('2030-01-04 16:44+00');
select tests.authenticate_as('rae.react@example.com');
select throws_ok(format($$update sessions set status = 'in_progress' where id = %L$$, :'conf_id'), 'PT409',
  'A session can be started at most 15 minutes before its start time.', 'sixteen minutes early is too early to start');
reset role;
select tests.freeze_time('2030-01-04 18:00+00');
select tests.authenticate_as('rae.react@example.com');
select throws_ok(format($$update sessions set status = 'in_progress' where id = %L$$, :'conf_id'), 'PT409',
  'A session cannot be started after its end.', 'a session cannot be started once its end has passed');
reset role;
select tests.freeze_time('2030-01-04 16:45+00');
select tests.authenticate_as('rae.react@example.com');
select lives_ok(format($$update sessions set status = 'in_progress' where id = %L$$, :'conf_id'), 'fifteen minutes early it starts');
select throws_ok(format($$update sessions set status = 'completed' where id = %L$$, :'conf_id'), 'PT409',
  'A session can be completed only after its start.', 'but cannot be completed before its start');
reset role;

-- The system: a request unanswered at its start expires (its charge released), a session in
-- progress past its end plus the grace period is completed.
select tests.freeze_time('2030-01-04 18:29+00');
select tests.as_service_role();
select service_role_advance_sessions();
reset role;
select is((select status from sessions where id = :'conf_id'), 'in_progress', 'a session just past its end is not completed yet');
select tests.freeze_time('2030-01-04 18:30+00');
select tests.as_service_role();
select cmp_ok((service_role_advance_sessions() ->> 'completed')::int, '>=', 1, '30 minutes past its end the dispatcher completes it');
reset role;
select is((select status from sessions where id = :'conf_id'), 'completed', 'it is completed');
select is((select count(*) from audit_logs where entity_id = :'conf_id' and action = 'session.completed' and actor_role = 'system'), 1::bigint, 'audited too');
select tests.make_session('casey.client@example.com', 'finn.fullstack@example.com', '2030-01-05 15:00+00', 60, 'requested') as late_id \gset
update sessions set payment_intent_id = 'pi_late' where id = :'late_id';
select tests.freeze_time('2030-01-05 14:59+00');
select tests.as_service_role();
select throws_ok(format($$update sessions set status = 'expired' where id = %L$$, :'late_id'), 'PT409',
  'A session expires only when its payment hold or answer deadline has passed, or its payment was cancelled.', 'a request does not expire before its start');
select service_role_advance_sessions();
reset role;
select is((select status from sessions where id = :'late_id'), 'requested', 'nor is it expired by the dispatcher');
select tests.freeze_time('2030-01-05 15:00+00');
select tests.as_service_role();
select cmp_ok((service_role_advance_sessions() ->> 'expired')::int, '>=', 1, 'at its start the dispatcher expires it');
reset role;
select results_eq(format($$select s.status, o.topic, o.payload ->> 'payment_intent' from sessions s join outbox o on o.session_id = s.id and o.channel = 'payment' where s.id = %L$$, :'late_id'),
  $$values ('expired'::text, 'payment.release'::text, 'pi_late'::text)$$, 'and the release of its authorisation is queued');
select is((select count(*) from audit_logs where entity_id = :'late_id' and action = 'session.expired' and actor_role = 'system'), 1::bigint, 'with an audit row');
select tests.freeze_time('2030-01-02 08:00+00');

-- 8. Public reviews show what a review page needs, no identifiers.
select tests.as_anon();
select throws_ok('select reviewer_id, session_id from reviews', '42501', 'permission denied for table reviews', 'anon reads no review row');
select results_eq($$select rating, comment, reviewer_name from expert_reviews('22222222-2222-4222-8222-222222222201')$$,
  $$values (5::smallint, 'Clear, fast and practical.'::text, 'Casey C.'::text)$$, 'anon reads the rating, comment and the reviewer''s display name');
reset role;
select is_empty($$select name from unnest(array(select unnest(proargnames) from pg_proc where proname = 'expert_reviews')) as name
                  where name in ('reviewer_id', 'session_id', 'reviewee_id')$$, 'expert_reviews answers with no user or session id');

-- 9. Agency admins see times, status and amounts; not notes, links or the client.
select tests.authenticate_as('avery.agency@example.com');
select throws_ok($$select notes from agency_sessions()$$, '42703', null, 'an agency admin gets no notes');
select throws_ok($$select room_url from agency_sessions()$$, '42703', null, 'nor room links');
select ok(exists (select 1 from agency_sessions(now() - interval '1 day', now() + interval '30 days') where session_id = '55555555-5555-4555-8555-555555555503' and amount_cents = 9000),
  'but their expert''s session, with its amounts');
reset role;
select tests.authenticate_as('mallory@example.com');
select is((select count(*) from agency_sessions()), 0::bigint, 'a client administers no agency and sees nothing');
reset role;

-- 10. Ratings count public reviews only.
insert into reviews (session_id, reviewer_id, reviewee_id, rating, is_public)
select id, tests.user_id('mallory@example.com'), :ada, 1, false from sessions where client_id = tests.user_id('mallory@example.com') and expert_id = :ada limit 1;
select results_eq($$select rating_avg, rating_count from expert_profiles where id = '22222222-2222-4222-8222-222222222201'$$,
  $$values (5.00::numeric(3, 2), 1)$$, 'a private one-star review leaves the rating alone');
update reviews set is_public = true where reviewer_id = tests.user_id('mallory@example.com');
select results_eq($$select rating_avg, rating_count from expert_profiles where id = '22222222-2222-4222-8222-222222222201'$$,
  $$values (3.00::numeric(3, 2), 2)$$, 'made public, it counts');

-- 11. An inactive expert is quoted as an unknown one.
update expert_profiles set is_active = false where id = :finn;
select tests.as_anon();
select is(expert_quote(:finn), null, 'no quote for an inactive expert');
select isnt(expert_quote(:ada), null, 'an active expert is quoted');
reset role;
update expert_profiles set is_active = true where id = :finn;

-- 12. The timezone rule, at the cost of an index lookup.
select ok(private.is_valid_timezone('Europe/Paris') and not private.is_valid_timezone('Mars/Olympus') and not private.is_valid_timezone('+02:00'),
  'IANA names are valid, anything else is not');
select doesnt_match(pg_get_functiondef('private.is_valid_timezone(text)'::regprocedure), 'pg_timezone_names', 'the check no longer reads the zone files');
create function tests.elapsed(query text) returns interval language plpgsql as $$
declare
  started timestamptz := clock_timestamp();
begin
  execute query;
  return clock_timestamp() - started;
end
$$;
select cmp_ok(tests.elapsed($$select count(*) from generate_series(1, 10000) i where private.is_valid_timezone(case when i > 0 then 'Europe/Paris' end)$$),
  '<', interval '1 second', '10,000 checks take under a second (they took about 40 ms each)');

select * from finish();
rollback;
