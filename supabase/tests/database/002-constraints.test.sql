-- Every rule stated in SQL is enforced: each constraint is broken once, and the valid row passes.
begin;
\ir _helpers.psql
select plan(22);

\set client '''casey.client@example.com'''
\set ada '''ada.ai@example.com'''
\set start '''2030-01-07 10:00+00'''

-- Sessions: duration, money and the pricing rule (Ada charges 15000 cents an hour).
prepare session_with(int, bigint, bigint, bigint, bigint) as
  insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
  values (tests.user_id('casey.client@example.com'), tests.user_id('ada.ai@example.com'), '2030-01-07 10:00+00',
          timestamptz '2030-01-07 10:00+00' + make_interval(mins => $1), $1, $2, $3, $4, $5, 'USD');

select lives_ok('execute session_with(75, 15000, 18750, 1875, 16875)', 'a 75-minute session priced by the rules is accepted');
select throws_ok('execute session_with(45, 15000, 11250, 1125, 10125)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_duration_minutes_check"', 'a session shorter than 60 minutes is rejected');
select throws_ok('execute session_with(70, 15000, 17500, 1750, 15750)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_duration_minutes_check"', 'a duration off the 15-minute steps is rejected');
select throws_ok('execute session_with(495, 15000, 123750, 12375, 111375)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_duration_minutes_check"', 'a session longer than 480 minutes is rejected');
select throws_ok('execute session_with(60, 15000, 14000, 1400, 12600)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_amount_follows_rate"', 'an amount other than rate x duration is rejected');
select throws_ok('execute session_with(60, 15000, 15000, 1000, 14000)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_fee_follows_commission"', 'a fee other than the commission is rejected');
select throws_ok('execute session_with(60, 15000, 15000, 1500, 13000)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_fee_plus_payout_is_amount"', 'fee + payout must equal the amount');
select throws_ok('execute session_with(60, 0, 0, 0, 0)', '23514',
  'new row for relation "sessions" violates check constraint "sessions_amount_cents_check"', 'money must be greater than zero');

select throws_ok($$
  insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
  values (tests.user_id('ada.ai@example.com'), tests.user_id('ada.ai@example.com'), '2030-02-01 10:00+00', '2030-02-01 11:00+00', 60, 15000, 15000, 1500, 13500, 'USD')
$$, '23514', 'new row for relation "sessions" violates check constraint "sessions_not_self_booked"', 'an expert cannot book themselves');
select throws_ok($$
  insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
  values (tests.user_id('casey.client@example.com'), tests.user_id('ada.ai@example.com'), '2030-02-01 10:00+00', '2030-02-01 12:00+00', 60, 15000, 15000, 1500, 13500, 'USD')
$$, '23514', 'new row for relation "sessions" violates check constraint "sessions_end_follows_duration"', 'the end must be start + duration');

-- Payments (each row one Stripe object) and reviews.
select throws_ok($$
  insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at)
  values ('55555555-5555-4555-8555-555555555501', 'refund', 're_minus', 'succeeded', -1, 'USD', now())
$$, '23514', 'new row for relation "payments" violates check constraint "payments_amount_cents_check"', 'a negative amount is rejected');
select throws_ok($$
  insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at)
  values ('55555555-5555-4555-8555-555555555501', 'refund', 'ch_notarefund', 'succeeded', 100, 'USD', now())
$$, '23514', 'new row for relation "payments" violates check constraint "payments_provider_ref_names_kind"', 'a row names a Stripe object of its kind');
select throws_ok($$
  insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at)
  values ('55555555-5555-4555-8555-555555555502', 'charge', 'ch_seed01', 'succeeded', 100, 'USD', now())
$$, '23505', 'duplicate key value violates unique constraint "payments_provider_ref_key"', 'a Stripe object is mirrored once');
select throws_ok($$
  insert into reviews (session_id, reviewer_id, reviewee_id, rating) values ('55555555-5555-4555-8555-555555555501', tests.user_id('ada.ai@example.com'), tests.user_id('casey.client@example.com'), 6)
$$, '23514', 'new row for relation "reviews" violates check constraint "reviews_rating_check"', 'a rating above 5 is rejected');
select throws_ok($$
  insert into reviews (session_id, reviewer_id, reviewee_id, rating) values ('55555555-5555-4555-8555-555555555501', tests.user_id('ada.ai@example.com'), tests.user_id('casey.client@example.com'), 0)
$$, '23514', 'new row for relation "reviews" violates check constraint "reviews_rating_check"', 'a rating below 1 is rejected');
select throws_ok($$
  insert into reviews (session_id, reviewer_id, reviewee_id, rating) values ('55555555-5555-4555-8555-555555555501', tests.user_id('casey.client@example.com'), tests.user_id('ada.ai@example.com'), 4)
$$, '23505', 'duplicate key value violates unique constraint "reviews_session_id_reviewer_id_key"', 'a participant reviews a session once');

-- Timezones, skills, availability.
select throws_ok($$update profiles set timezone = 'Mars/Olympus' where id = tests.user_id('casey.client@example.com')$$, '23514',
  'new row for relation "profiles" violates check constraint "profiles_timezone_check"', 'an unknown timezone is rejected');
select throws_ok($$update expert_profiles set timezone = 'EST5EDT+99' where id = tests.user_id('ada.ai@example.com')$$, '23514',
  'new row for relation "expert_profiles" violates check constraint "expert_profiles_timezone_check"', 'an offset string is not an IANA zone');
select lives_ok($$update profiles set timezone = 'Asia/Kathmandu' where id = tests.user_id('casey.client@example.com')$$, 'a valid IANA zone is accepted');
select throws_ok($$insert into skill_categories (slug, name) values ('Not A Slug', 'x')$$, '23514',
  'new row for relation "skill_categories" violates check constraint "skill_categories_slug_check"', 'a skill slug is lowercase words joined by hyphens');
select throws_ok($$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 1, 600, 700)$$, '23P01',
  null, 'weekly rules of one expert do not overlap');
select throws_ok($$update expert_profiles set hourly_rate_cents = 0 where id = tests.user_id('ada.ai@example.com')$$, '23514',
  'new row for relation "expert_profiles" violates check constraint "expert_profiles_hourly_rate_cents_check"', 'an hourly rate must be positive');

select * from finish();
rollback;
