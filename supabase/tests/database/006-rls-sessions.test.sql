-- RLS on sessions, payments, messages and reviews: participants, strangers, agency admins, anon.
begin;
\ir _helpers.psql
select plan(23);

\set completed '''55555555-5555-4555-8555-555555555501'''
\set live '''55555555-5555-4555-8555-555555555502'''
\set requested '''55555555-5555-4555-8555-555555555503'''

select tests.as_anon();
select throws_ok('select * from sessions', '42501', 'permission denied for table sessions', 'anon cannot read sessions');
select throws_ok('select * from payments', '42501', 'permission denied for table payments', 'anon cannot read payments');
select throws_ok('select * from session_messages', '42501', 'permission denied for table session_messages', 'anon cannot read messages');
select throws_ok('select * from reviews', '42501', 'permission denied for table reviews', 'anon reads no review row: public reviews come through expert_reviews');
reset role;

select tests.authenticate_as('casey.client@example.com');
select is((select count(*) from sessions), 3::bigint, 'a client sees their three sessions');
select is((select count(*) from payments), 6::bigint, 'and their payments (a PaymentIntent and a charge each)');
select throws_ok($$insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
  values (tests.user_id('casey.client@example.com'), tests.user_id('ada.ai@example.com'), '2030-01-01 10:00+00', '2030-01-01 11:00+00', 60, 1, 1, 0, 1, 'USD')$$,
  '42501', 'permission denied for table sessions', 'a client cannot insert a session at a price of their choosing');
select throws_ok(format($$update sessions set refund_amount_cents = 15000 where id = %L$$, :completed), '42501',
  'permission denied for table sessions', 'a client cannot change a refund');
select throws_ok($$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'refund', 're_forged', 'succeeded', 100, 'USD', now())$$,
  '42501', 'permission denied for table payments', 'a client cannot write the ledger');
select lives_ok(format($$insert into session_messages (session_id, sender_id, body) values (%L, tests.user_id('casey.client@example.com'), 'Hello')$$, :live),
  'a participant writes in their session');
select throws_ok(format($$insert into session_messages (session_id, sender_id, body) values (%L, tests.user_id('finn.fullstack@example.com'), 'Forged')$$, :live),
  '42501', 'new row violates row-level security policy for table "session_messages"', 'but not in someone else''s name');
select throws_ok(format($$insert into reviews (session_id, reviewer_id, rating) values (%L, tests.user_id('casey.client@example.com'), 5)$$, :live),
  '42501', 'new row violates row-level security policy for table "reviews"', 'a session still in progress cannot be reviewed');
reset role;

select tests.authenticate_as('ada.ai@example.com');
select is((select count(*) from sessions where tests.user_id('ada.ai@example.com') not in (client_id, expert_id)), 0::bigint,
  'an expert sees only their own sessions');
select ok(exists (select 1 from sessions where id = :completed), 'including the one with the client');
select lives_ok(format($$insert into reviews (session_id, reviewer_id, rating, is_public) values (%L, tests.user_id('ada.ai@example.com'), 4, false)$$, :completed),
  'the expert reviews the completed session');
reset role;
select is((select reviewee_id from reviews where reviewer_id = tests.user_id('ada.ai@example.com')), tests.user_id('casey.client@example.com'),
  'the reviewee is set from the session: the other participant');

select tests.authenticate_as('devon.devops@example.com');
select is((select count(*) from sessions where client_id = tests.user_id('casey.client@example.com')), 0::bigint, 'another expert sees none of the client''s sessions');
select is((select count(*) from payments p where p.session_id in (:completed, :live, :requested)), 0::bigint, 'nor their payments');
select is((select count(*) from session_messages), 0::bigint, 'nor their messages');
select is((select count(*) from reviews where not is_public), 0::bigint, 'nor private reviews');
reset role;

select tests.authenticate_as('avery.agency@example.com');
select is((select count(*) from sessions), 0::bigint, 'an agency admin reads no session row, not even their experts''');
select ok(exists (select 1 from agency_sessions() where session_id = :requested), 'but sees their agency''s experts'' sessions through agency_sessions');
reset role;

select tests.make_user('other.client@example.com');
select tests.authenticate_as('other.client@example.com');
select is((select count(*) from sessions) + (select count(*) from payments) + (select count(*) from session_status_history), 0::bigint,
  'another client sees no session, payment or history');
reset role;

select * from finish();
rollback;
