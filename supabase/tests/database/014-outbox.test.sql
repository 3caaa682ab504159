-- The outbox: each transition queues its emails, room work and webhooks in its own transaction,
-- exactly once; nothing for a rolled-back change; webhooks retried, logged, disabled after a day
-- of failures, re-enabled and replayed by an operator.
begin;
\ir _helpers.psql
select plan(41);

delete from outbox;
select tests.freeze_time('2030-01-02 08:00+00');
\set ada '''22222222-2222-4222-8222-222222222201'''
\set finn '''22222222-2222-4222-8222-222222222202'''
select tests.make_user('olive@example.com', '{"full_name": "Olive Outbox"}') as olive \gset
insert into webhook_endpoints (id, url, event_types) values
  ('99999999-0000-4000-8000-000000000001', 'https://hooks.example.com/all', '{*}'),
  ('99999999-0000-4000-8000-000000000002', 'https://hooks.example.com/cancelled', '{session.cancelled}');
insert into webhook_endpoints (id, url, event_types, disabled_at, disabled_reason) values
  ('99999999-0000-4000-8000-000000000003', 'https://hooks.example.com/off', '{*}', now(), 'test');

create function tests.queued(session uuid) returns table (channel text, topic text, recipient uuid, endpoint uuid)
language sql as $$
  select o.channel, o.topic, o.recipient_id, o.endpoint_id from public.outbox o
  where o.session_id = session and o.topic not like 'reminder.%' order by 1, 2, 3, 4
$$;
-- What a claim hands over besides emails: its rooms, then its webhooks.
create function tests.calls(claim jsonb) returns jsonb language sql as $$
  select (claim -> 'rooms') || (claim -> 'webhooks')
$$;
grant execute on all functions in schema tests to anon, authenticated, service_role;

-- An instant booking: confirmed at once.
select tests.authenticate_as('olive@example.com');
select (book_session(:ada, '2030-01-07 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD') ->> 'id') as instant_id \gset
reset role;
select is((select count(*) from outbox where session_id = :'instant_id'), 0::bigint, 'a held slot tells nobody before its payment');
select tests.pay(:'instant_id');
select results_eq(format('select * from tests.queued(%L)', :'instant_id'),
  format($$values ('email', 'session.confirmed', %L::uuid, null::uuid), ('email', 'session.confirmed', %L, null),
                  ('room', 'room.create', null, null), ('webhook', 'session.confirmed', null, '99999999-0000-4000-8000-000000000001')$$,
         least(:'olive'::uuid, :ada::uuid), greatest(:'olive'::uuid, :ada::uuid)),
  'an instant booking tells both participants, makes the room and tells the subscribed endpoint (not the disabled one)');
select is((select count(*) from outbox where session_id = :'instant_id' and topic like 'reminder.%'), 4::bigint, 'and schedules its four reminders');
select is((select payload ->> 'sequence' from outbox where session_id = :'instant_id' and topic = 'session.confirmed' limit 1), '0',
  'the invitation starts at SEQUENCE 0');
select is((select payload -> 'data' ->> 'session_id' from outbox where session_id = :'instant_id' and channel = 'webhook'), :'instant_id',
  'the webhook payload names the session');
select ok((select not (payload -> 'data' ?| array['notes', 'room_url', 'email']) from outbox where session_id = :'instant_id' and channel = 'webhook'),
  'and carries no notes, link or address');

-- A booking that fails queues nothing: its transaction never committed anything.
select count(*) as before_failure from outbox \gset
select tests.authenticate_as('olive@example.com');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:30+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD')$$,
  'PT409', 'That time is already booked with this expert.', 'a booking over another fails');
reset role;
select is((select count(*) from outbox), :before_failure::bigint, 'and queues nothing');

-- A request, confirmed by the expert through PostgREST.
select tests.authenticate_as('olive@example.com');
select (book_session(:finn, '2030-01-08 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as request_id \gset
reset role;
select tests.pay(:'request_id');
select results_eq(format($$select topic, count(*) from tests.queued(%L) group by topic order by topic$$, :'request_id'),
  $$values ('room.create', 1::bigint), ('session.requested', 3::bigint)$$, 'a request tells both (and the endpoint) and makes the room');
select tests.authenticate_as('finn.fullstack@example.com');
update sessions set status = 'confirmed' where id = :'request_id';
reset role;
select results_eq(format($$select recipient_id, (payload ->> 'sequence')::int from outbox where session_id = %L and topic = 'session.confirmed' and channel = 'email' order by 1$$, :'request_id'),
  format($$values (%L::uuid, 1), (%L::uuid, 1)$$, least(:'olive'::uuid, :finn::uuid), greatest(:'olive'::uuid, :finn::uuid)),
  'the expert''s confirmation through PostgREST tells both, as an update of the invitation (SEQUENCE 1)');
select is((select count(*) from outbox where session_id = :'request_id' and channel = 'webhook' and topic = 'session.confirmed'), 1::bigint, 'and the endpoint');

-- Declined, expired.
select tests.authenticate_as('olive@example.com');
select (book_session(:finn, '2030-01-09 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as declined_id \gset
select (book_session(:finn, '2030-01-10 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as expiring_id \gset
reset role;
select tests.pay(:'declined_id'), tests.pay(:'expiring_id');
select tests.authenticate_as('finn.fullstack@example.com');
update sessions set status = 'declined' where id = :'declined_id';
reset role;
select results_eq(format($$select channel, count(*) from outbox where session_id = %L and topic in ('session.declined', 'room.delete') group by channel order by 1$$, :'declined_id'),
  $$values ('email', 2::bigint), ('room', 1::bigint), ('webhook', 1::bigint)$$, 'a decline tells both, frees the room and tells the endpoint');
select tests.freeze_time('2030-01-10 15:00+00');
select tests.as_service_role();
select service_role_advance_sessions();
reset role;
select results_eq(format($$select channel, count(*) from outbox where session_id = %L and topic in ('session.expired', 'room.delete') group by channel order by 1$$, :'expiring_id'),
  $$values ('email', 2::bigint), ('room', 1::bigint), ('webhook', 1::bigint)$$, 'an expiry tells both, frees the room and tells the endpoint');
select tests.freeze_time('2030-01-02 08:00+00');

-- Cancelled: both told with the refund, the room freed, both endpoints told.
select tests.as_service_role();
select service_role_cancel_session(:'request_id', :finn, 'Ill', 100, 12000, 1200, 10800);
select service_role_cancel_session(:'request_id', :finn, 'Ill again', 100, 12000, 1200, 10800);
reset role;
select results_eq(format($$select recipient_id, payload ->> 'cancelled_by', (payload ->> 'refund_amount_cents')::int, payload ->> 'reason', (payload ->> 'sequence')::int
                          from outbox where session_id = %L and topic = 'session.cancelled' and channel = 'email' order by 1$$, :'request_id'),
  format($$values (%L::uuid, 'expert', 12000, 'Ill', 2), (%L::uuid, 'expert', 12000, 'Ill', 2)$$, least(:'olive'::uuid, :finn::uuid), greatest(:'olive'::uuid, :finn::uuid)),
  'a cancellation tells both once, with who cancelled, the refund and the reason, cancelling the invitation (SEQUENCE 2)');
select is((select count(*) from outbox where session_id = :'request_id' and channel = 'webhook' and topic = 'session.cancelled'), 2::bigint,
  'every endpoint subscribed to it is told once');
select is((select count(*) from outbox where session_id = :'request_id' and topic = 'room.delete'), 1::bigint, 'the room is freed once');

-- Completed: the client is asked for a review.
select tests.make_session('olive@example.com', 'rae.react@example.com', '2030-01-03 17:00+00', 60, 'confirmed') as done_id \gset
select tests.freeze_time('2030-01-03 16:50+00');
update sessions set status = 'in_progress' where id = :'done_id';
select tests.freeze_time('2030-01-03 18:30+00');
select tests.as_service_role();
select service_role_advance_sessions();
reset role;
select results_eq(format($$select channel, recipient_id from outbox where session_id = %L and topic = 'session.completed' and channel = 'email'$$, :'done_id'),
  format($$values ('email', %L::uuid)$$, :'olive'), 'a completed session asks the client, only, for a review');
select is((select count(*) from outbox where session_id = :'done_id' and topic = 'room.delete'), 1::bigint, 'and frees the room');
select tests.freeze_time('2030-01-02 08:00+00');

-- Claims: rooms first, then webhooks, within the calls asked for (payments, claimed before
-- both, are 016's).
delete from outbox where channel in ('email', 'payment');
select tests.as_service_role();
-- Seven room rows are due, all at the frozen instant (so in the order of their random ids): four
-- for sessions no longer active (declined, expired, cancelled, completed), which a claim skips,
-- and three to hand over. A claim of two calls leaves at least one of those three, whatever the
-- order; a claim of three could take all three, leaving the next claim no room to show.
select service_role_claim_outbox(0, 2, 60) as rooms_claim \gset
select service_role_complete_outbox((select jsonb_agg(jsonb_build_object('id', c ->> 'id', 'provider_ref', 'ok')) from jsonb_array_elements(tests.calls(:'rooms_claim')) c));
reset role;
select ok((select count(*) + (:'rooms_claim'::jsonb ->> 'skipped')::int = 2
                  and coalesce(bool_and(c ? 'room_name' and (c ->> 'not_before')::bigint < (c ->> 'expires')::bigint), true)
           from jsonb_array_elements(tests.calls(:'rooms_claim')) c), 'a claim takes rooms first, with their name and validity, up to the calls asked for');
select tests.as_service_role();
select service_role_claim_outbox(0, 100, 60) as hooks_claim \gset
reset role;
select ok((select count(*) filter (where c ? 'room_name') > 0 and count(*) filter (where c ? 'url') > 0 from jsonb_array_elements(tests.calls(:'hooks_claim')) c),
  'the next claim takes the remaining rooms, then the webhooks');
select is((select array_agg(status || ':' || skip_reason order by skip_reason) from outbox where topic = 'room.create' and session_id in (:'declined_id', :'expiring_id')),
  array['skipped:session_declined', 'skipped:session_expired'], 'a room for a session no longer active is not made');
select ok((select bool_and(c ->> 'webhook_id' like 'msg\_%' and c ->> 'secret' like 'whsec\_%' and c -> 'body' ? 'type')
           from jsonb_array_elements(tests.calls(:'hooks_claim')) c where c ? 'url'), 'a webhook claim carries the message id, the endpoint''s secret and the body');
select (c ->> 'id') as hook_id from jsonb_array_elements(tests.calls(:'hooks_claim')) c
where c ->> 'url' = 'https://hooks.example.com/cancelled' \gset

select tests.as_service_role();
select is(service_role_complete_outbox((select jsonb_agg(
           case when c ->> 'id' = :'hook_id' then jsonb_build_object('id', c ->> 'id', 'error', 'endpoint answered 500', 'status_code', 500, 'latency_ms', 12, 'response_excerpt', 'oops')
                else jsonb_build_object('id', c ->> 'id', 'provider_ref', 'HTTP 200', 'status_code', 200, 'latency_ms', 5) end)
         from jsonb_array_elements(tests.calls(:'hooks_claim')) c)) ->> 'retrying', '1', 'a failed delivery is retried');
reset role;
select results_eq(format($$select attempt, status_code, latency_ms, response_excerpt, error from webhook_attempts where outbox_id = %L$$, :'hook_id'),
  $$values (1::smallint, 500, 12, 'oops'::text, 'endpoint answered 500'::text)$$, 'each attempt is logged: status, latency, an excerpt of the answer');
select is((select next_attempt_at from outbox where id = :'hook_id'), '2030-01-02 08:00:30+00'::timestamptz, 'the first retry waits 30 seconds');
select is((select failing_since from webhook_endpoints where id = '99999999-0000-4000-8000-000000000002'), '2030-01-02 08:00+00'::timestamptz,
  'the endpoint is marked failing since then');

-- Sustained failure: every attempt failing for a day disables the endpoint.
select tests.freeze_time('2030-01-03 08:01+00');
select tests.as_service_role();
select service_role_claim_outbox(0, 100, 60);
select service_role_complete_outbox(jsonb_build_array(jsonb_build_object('id', :'hook_id', 'error', 'endpoint answered 503', 'status_code', 503)));
reset role;
select results_eq($$select disabled_at, disabled_reason from webhook_endpoints where id = '99999999-0000-4000-8000-000000000002'$$,
  $$values ('2030-01-03 08:01+00'::timestamptz, 'every delivery failed for 24 hours'::text)$$, 'after a day of failures the endpoint is disabled');
select tests.freeze_time('2030-01-03 12:00+00');
select tests.as_service_role();
select service_role_claim_outbox(0, 100, 60);
reset role;
select results_eq(format($$select status, skip_reason from outbox where id = %L$$, :'hook_id'), $$values ('skipped'::text, 'endpoint_disabled'::text)$$,
  'its pending delivery is skipped, saying why');
select tests.as_service_role();
select throws_ok(format($$select service_role_replay_outbox(%L)$$, :'hook_id'), 'PT409', 'Re-enable the endpoint before replaying its deliveries.',
  'a delivery to a disabled endpoint cannot be replayed');
select is((service_role_enable_webhook_endpoint('99999999-0000-4000-8000-000000000002') ->> 'replayed')::int, 1, 'an operator re-enables it, replaying what it missed');
reset role;
select results_eq(format($$select status, attempts, skip_reason from outbox where id = %L$$, :'hook_id'), $$values ('pending'::text, 0::smallint, null::text)$$,
  'the delivery starts over');
select is((select count(*) from audit_logs where action = 'webhook_endpoint.enabled' and entity_id = '99999999-0000-4000-8000-000000000002'), 1::bigint, 'audited');

-- Replaying a delivered webhook sends it again under the same id.
select id as sent_hook from outbox where channel = 'webhook' and status = 'sent' limit 1 \gset
select tests.as_service_role();
select is(service_role_replay_outbox(:'sent_hook') ->> 'status', 'pending', 'a sent delivery can be replayed');
select is((select c ->> 'webhook_id' from jsonb_array_elements(tests.calls(service_role_claim_outbox(0, 100, 60, only_ids => array[:'sent_hook'::uuid]))) c),
  'msg_' || replace(:'sent_hook', '-', ''), 'with the same message id, so receivers recognise it');
select throws_ok(format($$select service_role_replay_outbox(%L)$$, :'sent_hook'), 'PT409', 'This row is being carried out right now.', 'but not while in flight');
reset role;

-- Account emails queue only the token's id: no secret is ever in the database.
select tests.as_service_role();
select (service_role_issue_password_reset('olive@example.com', 'eeeeeeee-0000-4000-8000-000000000001', repeat('ab', 32)) ->> 'outbox_id') as reset_outbox \gset
reset role;
select results_eq(format($$select topic, recipient_id, payload from outbox where id = %L$$, :'reset_outbox'),
  format($$values ('account.password_reset', %L::uuid, '{"token_id": "eeeeeeee-0000-4000-8000-000000000001"}'::jsonb)$$, :'olive'),
  'a reset queues its email with the token''s id alone');
select tests.as_service_role();
select lives_ok($$select service_role_complete_password_reset('eeeeeeee-0000-4000-8000-000000000001', 'A-new-passw0rd')$$, 'the reset completes');
reset role;
select is((select count(*) from outbox where recipient_id = :'olive' and topic = 'account.password_changed'), 1::bigint, 'and queues the password-changed notice');
select tests.as_service_role();
select is(service_role_issue_password_reset('nobody@example.com', gen_random_uuid(), repeat('ab', 32)), null, 'an unknown address queues nothing');
reset role;

-- A batch keeps its key across a retry even when a member is skipped meanwhile.
select tests.freeze_time('2030-01-02 08:00+00');
delete from outbox;
select tests.make_session('olive@example.com', 'devon.devops@example.com', '2030-01-02 09:30+00', 60, 'confirmed') as soon_id \gset
delete from outbox where topic not like 'reminder.%';
update outbox set next_attempt_at = '2030-01-02 08:00+00' where session_id = :'soon_id';
select tests.as_service_role();
select service_role_claim_outbox(100, 0, 1) ->> 'batch_key' as first_key \gset
reset role;
update sessions set status = 'cancelled', cancelled_at = private.now(), refund_amount_cents = 0, refund_percent = 0 where id = :'soon_id';
select tests.freeze_time('2030-01-02 08:00:02+00');
select tests.as_service_role();
select service_role_claim_outbox(100, 0, 60) as retried \gset
reset role;
select results_eq(format($$select (%1$L::jsonb ->> 'batch_key'), jsonb_array_length(%1$L::jsonb -> 'emails'), (%1$L::jsonb ->> 'skipped')::int$$, :'retried'),
  $$values (null::text, 0, 2)$$, 'a crashed batch whose session was cancelled meanwhile is skipped, never sent');
select is((select count(distinct batch_key) from outbox where session_id = :'soon_id'), 1::bigint, 'its rows keep the key they were first sent under');

select * from finish();
rollback;
