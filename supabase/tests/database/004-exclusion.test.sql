-- No two active sessions overlap for one expert or one client, whatever the concurrency.
begin;
\ir _helpers.psql
select plan(7);

select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-05-06 10:00+00', 120) as base_id \gset

select throws_ok($$select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-05-06 11:45+00', 60)$$,
  '23P01', null, 'the same pair cannot overlap');
select tests.make_user('other.client@example.com');
select throws_ok($$select tests.make_session('other.client@example.com', 'devon.devops@example.com', '2030-05-06 09:15+00', 60)$$,
  '23P01', null, 'another client cannot take the expert''s booked time');
select throws_ok($$select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-05-06 10:30+00', 60)$$,
  '23P01', null, 'the client cannot be in two sessions at once, even with different experts');
select lives_ok($$select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-05-06 12:00+00', 60)$$,
  'back-to-back sessions touch without overlapping');

update sessions set status = 'cancelled', cancelled_at = now(), refund_amount_cents = 0, refund_percent = 0 where id = :'base_id';
select lives_ok($$select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-05-06 10:00+00', 60)$$,
  'a cancelled session frees its time');
select lives_ok($$select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-05-07 10:00+00', 60, 'declined')$$,
  'a declined session does not block anything');
select is((select count(*) from pg_constraint where conrelid = 'public.sessions'::regclass and contype = 'x'), 2::bigint,
  'both exclusion constraints exist');

select * from finish();
rollback;
