-- Reminders in the outbox: scheduled with confirmed sessions, skipped on cancellation, moved
-- with the session, claimed under a lease, retried with backoff, batched under a kept key.
begin;
\ir _helpers.psql
select plan(19);

-- Claims are global: start from an empty outbox (rolled back with the test), and keep only the
-- reminders of the sessions made here (their other emails and rooms have tests of their own).
delete from outbox;
create function tests.reminders_only() returns void language sql as $$
  delete from public.outbox where topic not like 'reminder.%'
$$;
create function tests.reminders(session uuid) returns table (kind text, recipient_id uuid, status text, skip_reason text, due_at timestamptz)
language sql as $$
  select replace(o.topic, 'reminder.', ''), o.recipient_id, o.status, o.skip_reason, o.due_at
  from public.outbox o where o.session_id = session and o.topic like 'reminder.%' order by 1, 2
$$;
create function tests.claimed_emails(claim jsonb) returns int language sql as $$
  select jsonb_array_length(claim -> 'emails')
$$;
grant execute on all functions in schema tests to service_role;

select tests.freeze_time('2030-03-01 09:00+00');
select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-03-05 10:00+00', 60, 'requested') as later_id \gset
select is((select count(*) from tests.reminders(:'later_id')), 0::bigint, 'a requested session has no reminders');

update sessions set status = 'confirmed' where id = :'later_id';
select results_eq(
  format($$select kind, recipient_id, due_at from tests.reminders(%L) order by kind desc, recipient_id$$, :'later_id'),
  format($$values ('24h', %L::uuid, '2030-03-04 10:00+00'::timestamptz), ('24h', %L::uuid, '2030-03-04 10:00+00'),
                  ('1h', %L::uuid, '2030-03-05 09:00+00'), ('1h', %L::uuid, '2030-03-05 09:00+00')$$,
         tests.user_id('casey.client@example.com'), tests.user_id('devon.devops@example.com'),
         tests.user_id('casey.client@example.com'), tests.user_id('devon.devops@example.com')),
  'confirming schedules 24 h and 1 h reminders for both participants');
select is((select count(*) from outbox where session_id = :'later_id' and topic like 'reminder.%' and channel = 'email' and max_attempts = 5), 4::bigint,
  'as email rows of the outbox, five attempts each');

select tests.make_session('casey.client@example.com', 'ada.ai@example.com', '2030-03-01 15:00+00', 60, 'confirmed') as soon_id \gset
select set_eq(format('select kind from tests.reminders(%L)', :'soon_id'), $$values ('1h'), ('1h')$$,
  'a session confirmed less than 24 h ahead gets only the 1 h reminders');

update sessions set starts_at = '2030-03-06 10:00+00', ends_at = '2030-03-06 11:00+00' where id = :'later_id';
select is((select min(due_at) from tests.reminders(:'later_id')), '2030-03-05 10:00+00'::timestamptz, 'moving the session moves its reminders');
select tests.reminders_only();

-- Claiming.
select tests.freeze_time('2030-03-01 14:00+00');
select tests.as_service_role();
select service_role_claim_outbox(100, 0, 60) as first_claim \gset
select is(tests.claimed_emails(:'first_claim'), 2, 'the two due 1 h reminders are claimed');
select is(tests.claimed_emails(service_role_claim_outbox(100, 0, 60)), 0, 'a second claim gets nothing: they are leased');
reset role;
select is((select count(*) from outbox where session_id = :'soon_id' and status = 'sending' and attempts = 1), 2::bigint, 'claimed reminders are sending, attempt 1');
select is((select count(distinct batch_key) from outbox where session_id = :'soon_id'), 1::bigint, 'under one batch key');
select is((:'first_claim'::jsonb ->> 'batch_key'), (select min(batch_key) from outbox where session_id = :'soon_id'), 'which the claim hands over');

select tests.freeze_time('2030-03-01 14:01:01+00');
select tests.as_service_role();
select is(service_role_claim_outbox(100, 0, 60) ->> 'batch_key', :'first_claim'::jsonb ->> 'batch_key',
  'an expired lease is claimed again, as the same batch under the same key');
select is(
  service_role_complete_outbox((select jsonb_agg(jsonb_build_object('id', id, 'error', 'provider down')) from outbox where session_id = :'soon_id')),
  '{"sent": 0, "retrying": 2, "failed": 0}'::jsonb, 'a failed send is retried');
reset role;
select is((select min(next_attempt_at) from outbox where session_id = :'soon_id'), '2030-03-01 14:03:01+00'::timestamptz,
  'after the second attempt the retry waits 2 minutes');

select tests.freeze_time('2030-03-01 14:04+00');
select tests.as_service_role();
select is(service_role_claim_outbox(100, 0, 60) ->> 'batch_key', :'first_claim'::jsonb ->> 'batch_key', 'the retry is the same batch again');
select is(
  service_role_complete_outbox((select jsonb_agg(jsonb_build_object('id', id, 'provider_ref', 'msg-' || id)) from outbox where session_id = :'soon_id')),
  '{"sent": 2, "retrying": 0, "failed": 0}'::jsonb, 'then sent');
reset role;
select is((select count(*) from outbox where session_id = :'soon_id' and status = 'sent' and provider_ref like 'msg-%'), 2::bigint,
  'sent reminders keep the provider''s message id');

-- Stale and cancelled reminders are skipped with their reason.
update sessions set status = 'cancelled', cancelled_at = private.now(), refund_amount_cents = 0, refund_percent = 0 where id = :'later_id';
select is((select array_agg(distinct skip_reason) from tests.reminders(:'later_id')), array['session_cancelled'],
  'cancelling skips the pending reminders, saying why');
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-03-02 16:00+00', 60, 'confirmed') as missed_id \gset
select tests.reminders_only();
select tests.freeze_time('2030-03-02 15:30+00');
select tests.as_service_role();
select lives_ok($$select service_role_claim_outbox(100, 0, 60)$$, 'a late run claims');
reset role;
select results_eq(format($$select kind, status, skip_reason from tests.reminders(%L) order by kind, recipient_id$$, :'missed_id'),
  $$values ('1h', 'sending', null::text), ('1h', 'sending', null), ('24h', 'skipped', 'moment_passed'), ('24h', 'skipped', 'moment_passed')$$,
  'a 24 h reminder whose moment passed is skipped, the due 1 h one claimed');

select * from finish();
rollback;
