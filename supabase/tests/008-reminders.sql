-- The reminder outbox: scheduled with confirmed sessions, skipped on cancellation, moved with
-- the session, claimed under a lease, retried with backoff.
begin;
\ir _helpers.psql
select plan(16);

-- Claims are global: start from an empty outbox (rolled back with the test).
delete from reminders;

select tests.freeze_time('2030-03-01 09:00+00');
select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-03-05 10:00+00', 60, 'requested') as later_id \gset
select is((select count(*) from reminders where session_id = :'later_id'), 0::bigint, 'a requested session has no reminders');

update sessions set status = 'confirmed' where id = :'later_id';
select results_eq(
  format($$select kind, recipient_id, due_at from reminders where session_id = %L order by kind desc, recipient_id$$, :'later_id'),
  format($$values ('24h', %L::uuid, '2030-03-04 10:00+00'::timestamptz), ('24h', %L::uuid, '2030-03-04 10:00+00'),
                  ('1h', %L::uuid, '2030-03-05 09:00+00'), ('1h', %L::uuid, '2030-03-05 09:00+00')$$,
         tests.user_id('casey.client@example.com'), tests.user_id('devon.devops@example.com'),
         tests.user_id('casey.client@example.com'), tests.user_id('devon.devops@example.com')),
  'confirming schedules 24 h and 1 h reminders for both participants');

select tests.make_session('casey.client@example.com', 'ada.ai@example.com', '2030-03-01 15:00+00', 60, 'confirmed') as soon_id \gset
select set_eq(format('select kind from reminders where session_id = %L', :'soon_id'), $$values ('1h'), ('1h')$$,
  'a session confirmed less than 24 h ahead gets only the 1 h reminders');

update sessions set starts_at = '2030-03-06 10:00+00', ends_at = '2030-03-06 11:00+00' where id = :'later_id';
select is((select min(due_at) from reminders where session_id = :'later_id'), '2030-03-05 10:00+00'::timestamptz, 'moving the session moves its reminders');

-- Claiming.
select tests.freeze_time('2030-03-01 14:00+00');
select tests.as_service_role();
select is(jsonb_array_length(service_role_claim_reminders(100, 60) -> 'reminders'), 2, 'the two due 1 h reminders are claimed');
select is(jsonb_array_length(service_role_claim_reminders(100, 60) -> 'reminders'), 0, 'a second claim gets nothing: they are leased');
reset role;
select is((select count(*) from reminders where session_id = :'soon_id' and status = 'sending' and attempts = 1), 2::bigint, 'claimed reminders are sending, attempt 1');

select tests.freeze_time('2030-03-01 14:01:01+00');
select tests.as_service_role();
select is(jsonb_array_length(service_role_claim_reminders(100, 60) -> 'reminders'), 2, 'an expired lease is claimed again');
select is(
  service_role_complete_reminders((select jsonb_agg(jsonb_build_object('id', id, 'error', 'provider down')) from reminders where session_id = :'soon_id')),
  '{"sent": 0, "retrying": 2, "failed": 0}'::jsonb, 'a failed send is retried');
reset role;
select is((select min(next_attempt_at) from reminders where session_id = :'soon_id'), '2030-03-01 14:03:01+00'::timestamptz,
  'after the second attempt the retry waits 2 minutes');

select tests.freeze_time('2030-03-01 14:04+00');
select tests.as_service_role();
select lives_ok($$select service_role_claim_reminders(100, 60)$$, 'the retry is claimed');
select is(
  service_role_complete_reminders((select jsonb_agg(jsonb_build_object('id', id, 'provider_message_id', 'msg-' || id)) from reminders where session_id = :'soon_id')),
  '{"sent": 2, "retrying": 0, "failed": 0}'::jsonb, 'then sent');
reset role;
select is((select count(*) from reminders where session_id = :'soon_id' and status = 'sent' and provider_message_id like 'msg-%'), 2::bigint,
  'sent reminders keep the provider''s message id');

-- Stale and cancelled reminders are skipped with their reason.
update sessions set status = 'cancelled', cancelled_at = now(), refund_amount_cents = 0, refund_percent = 0 where id = :'later_id';
select is((select array_agg(distinct skip_reason) from reminders where session_id = :'later_id'), array['session_cancelled'],
  'cancelling skips the pending reminders, saying why');
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-03-02 16:00+00', 60, 'confirmed') as missed_id \gset
select tests.freeze_time('2030-03-02 15:30+00');
select tests.as_service_role();
select lives_ok($$select service_role_claim_reminders(100, 60)$$, 'a late run claims');
reset role;
select results_eq(format($$select kind, status, skip_reason from reminders where session_id = %L order by kind, recipient_id$$, :'missed_id'),
  $$values ('1h', 'sending', null::text), ('1h', 'sending', null), ('24h', 'skipped', 'moment_passed'), ('24h', 'skipped', 'moment_passed')$$,
  'a 24 h reminder whose moment passed is skipped, the due 1 h one claimed');

select * from finish();
rollback;
