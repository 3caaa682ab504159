-- Payments: held slots, Stripe's objects mirrored in any order, captures, releases and refunds
-- queued with their sessions' transitions and completed from Stripe's answers, the ledger
-- reconciled, and nothing of it writable or readable by a client calling PostgREST directly.
begin;
\ir _helpers.psql
select plan(67);

select tests.freeze_time('2030-01-02 08:00+00');
\set ada '''22222222-2222-4222-8222-222222222201'''
\set finn '''22222222-2222-4222-8222-222222222202'''
\set rae '''22222222-2222-4222-8222-222222222204'''
select tests.make_user('paula@example.com', '{"full_name": "Paula Payer"}') as paula \gset
delete from outbox;

-- The work a claim hands over for payments, and a Stripe answer to it.
create function tests.claim_payments() returns jsonb language sql as $$
  select public.service_role_claim_outbox(0, 20, 60) -> 'payments'
$$;
create function tests.event(id text, type text, created timestamptz, object jsonb) returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'event', 'type', type, 'created', extract(epoch from created)::bigint,
                            'api_version', '2024-06-20', 'livemode', false, 'data', jsonb_build_object('object', object))
$$;
create function tests.ledger(session uuid) returns jsonb language sql as $$
  select public.service_role_reconcile_session(session)
$$;
grant execute on all functions in schema tests to anon, authenticated, service_role;

-- 1. What a client cannot do directly.
select tests.authenticate_as('paula@example.com');
select throws_ok($$insert into payout_accounts (expert_id, stripe_account_id, charges_enabled, reported_at) values (tests.user_id('paula@example.com'), 'acct_mine', true, now())$$,
  '42501', 'permission denied for table payout_accounts', 'a user cannot give themselves a payout account');
select is((select count(*) from payout_accounts), 0::bigint, 'nor read anyone''s');
select throws_ok($$select * from stripe_events$$, '42501', 'permission denied for table stripe_events', 'nor Stripe''s events');
select throws_ok($$update expert_profiles set accepts_payments = true$$, '42501', 'permission denied for table expert_profiles',
  'nor mark an expert as taking payments');
reset role;
select tests.authenticate_as('ada.ai@example.com');
select results_eq($$select stripe_account_id, charges_enabled from payout_accounts$$, $$values ('acct_seed01'::text, true)$$,
  'an expert reads their own account');
select throws_ok($$update payout_accounts set charges_enabled = false$$, '42501', 'permission denied for table payout_accounts', 'but does not write it');
reset role;

-- 2. An expert whose account cannot take charges is neither offered nor bookable.
update payout_accounts set charges_enabled = false where expert_id = :rae;
select is((select accepts_payments from expert_profiles where id = :rae), false, 'an account that cannot take charges stops the expert''s payments');
select tests.as_anon();
select ok(not (find_experts(array['react']) -> 'experts') @> jsonb_build_array(jsonb_build_object('expert_id', :rae)),
  'find_experts does not offer them');
select is(expert_quote(:rae) ->> 'accepts_payments', 'false', 'their quote says so');
reset role;
select tests.authenticate_as('paula@example.com');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222204', '2030-01-07 17:00+00', 60, 9000, 1000, 9000, 900, 8100, 'USD')$$,
  'PT409', 'This expert cannot take payments yet.', 'and they cannot be booked');
reset role;
select tests.as_service_role();
select service_role_record_stripe_objects(jsonb_build_array(jsonb_build_object(
  'object', 'account', 'id', 'acct_seed04', 'charges_enabled', true, 'payouts_enabled', true, 'details_submitted', true,
  'requirements', jsonb_build_object('currently_due', '[]'::jsonb))));
reset role;
select is((select accepts_payments from expert_profiles where id = :rae), true, 'Stripe reporting the account enabled makes the expert bookable again');
select tests.as_service_role();
select service_role_receive_stripe_event(tests.event('evt_acctold', 'account.updated', '2030-01-01 00:00+00',
  jsonb_build_object('object', 'account', 'id', 'acct_seed04', 'charges_enabled', false, 'payouts_enabled', false)), 1893456000);
reset role;
select is((select charges_enabled from payout_accounts where expert_id = :rae), true, 'an older account.updated arriving late changes nothing');

-- 3. An instant booking holds the slot until Stripe reports the payment succeeded.
select tests.authenticate_as('paula@example.com');
select (book_session(:ada, '2030-01-07 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD') ->> 'id') as instant_id \gset
reset role;
select results_eq(format($$select status, payment_due_at from sessions where id = %L$$, :'instant_id'),
  $$values ('awaiting_payment'::text, '2030-01-02 08:15+00'::timestamptz)$$, 'a booking holds its slot for 15 minutes');
select tests.authenticate_as('rae.react@example.com');
select throws_ok(format($$select book_session('22222222-2222-4222-8222-222222222201', '2030-01-07 10:30+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD')$$),
  'PT409', null, 'nobody else books over a held slot');
reset role;
select tests.authenticate_as('ada.ai@example.com');
select throws_ok(format($$update sessions set status = 'confirmed' where id = %L$$, :'instant_id'), '42501',
  'This session is waiting for its payment; it becomes a request once the payment is authorised.', 'the expert cannot confirm an unpaid hold');
reset role;
select tests.stripe_payment_intent(:'instant_id') as instant_pi \gset
select tests.as_service_role();
select service_role_record_stripe_objects(jsonb_build_array((:'instant_pi'::jsonb) || '{"status": "requires_payment_method"}'));
select is(service_role_receive_stripe_event(tests.event('evt_paid', 'payment_intent.succeeded', '2030-01-02 08:01+00', :'instant_pi'), 1893571260) ->> 'status',
  'applied', 'payment_intent.succeeded is applied');
reset role;
select results_eq(format($$select status, payment_intent_id from sessions where id = %L$$, :'instant_id'),
  format($$values ('confirmed'::text, %L::text)$$, :'instant_pi'::jsonb ->> 'id'), 'the paid instant booking is confirmed');
select is((select count(*) from outbox where session_id = :'instant_id' and topic = 'session.confirmed'), 2::bigint, 'and both participants are told');
select is((tests.ledger(:'instant_id') ->> 'reconciled')::boolean, true, 'its ledger holds the amount, the fee and the payout the rules give');
select tests.as_service_role();
select is(service_role_receive_stripe_event(tests.event('evt_paid', 'payment_intent.succeeded', '2030-01-02 08:01+00', :'instant_pi'), 1893571300) ->> 'status',
  'duplicate', 'the same event delivered again (a later signature) is a duplicate');
select throws_ok(format($$select service_role_receive_stripe_event(tests.event('evt_paid', 'payment_intent.succeeded', '2030-01-02 08:01+00', %L), 1893571300)$$, :'instant_pi'),
  'PT400', 'This delivery was already received.', 'a delivery replayed as it was signed is refused');
select service_role_receive_stripe_event(tests.event('evt_stale', 'payment_intent.processing', '2030-01-02 08:00:30+00',
  (:'instant_pi'::jsonb) || '{"status": "processing"}'), 1893571400);
reset role;
select is((select status from payments where provider_ref = :'instant_pi'::jsonb ->> 'id'), 'succeeded', 'an older event arriving late does not move the ledger back');
select is((select count(*) from stripe_events), 3::bigint, 'every event is stored once');
select tests.as_service_role();
select throws_ok($$select service_role_receive_stripe_event('{"id": "evt_x", "object": "event"}', 1893571400)$$, 'PT400',
  'The body is not a Stripe event (id, type, created, data.object).', 'a body that is not an event is refused');
reset role;

-- 4. A request: authorised with manual capture, confirmed by the expert through PostgREST, captured.
select tests.authenticate_as('paula@example.com');
select (book_session(:finn, '2030-01-23 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as request_id \gset
reset role;
select tests.stripe_payment_intent(:'request_id') as request_pi \gset
select tests.as_service_role();
select service_role_receive_stripe_event(tests.event('evt_auth', 'payment_intent.amount_capturable_updated', '2030-01-02 08:02+00', :'request_pi'), 1893571320);
reset role;
select results_eq(format($$select status, answer_by from sessions where id = %L$$, :'request_id'),
  $$values ('requested'::text, '2030-01-08 20:02+00'::timestamptz)$$, 'an authorised request waits for the expert, at most 6.5 days (the authorisation''s life)');
select is((tests.ledger(:'request_id') -> 'ledger' ->> 'captured_cents')::int, 0, 'nothing is captured yet');
select tests.authenticate_as('finn.fullstack@example.com');
update sessions set status = 'confirmed' where id = :'request_id';
reset role;
select tests.as_service_role();
select tests.claim_payments() as capture_claim \gset
reset role;
select results_eq(format($$select c ->> 'topic', c ->> 'payment_intent', c ->> 'idempotency_key' from jsonb_array_elements(%L::jsonb) c$$, :'capture_claim'),
  format($$values ('payment.capture'::text, %L::text, %L::text)$$, :'request_pi'::jsonb ->> 'id', 'payment.capture:' || (:'request_pi'::jsonb ->> 'id')),
  'the expert''s confirmation queues the capture, with an idempotency key of its own');
-- Stripe is down: the capture is retried, under the same key.
select tests.as_service_role();
select service_role_complete_outbox(jsonb_build_array(jsonb_build_object('id', :'capture_claim'::jsonb -> 0 ->> 'id', 'error', 'Stripe answered 503')));
reset role;
select results_eq(format($$select status, attempts, next_attempt_at from outbox where id = %L$$, :'capture_claim'::jsonb -> 0 ->> 'id'),
  $$values ('pending'::text, 1::smallint, '2030-01-02 08:01+00'::timestamptz)$$, 'a failed capture is retried a minute later');
select tests.freeze_time('2030-01-02 08:01+00');
select tests.as_service_role();
select tests.claim_payments() as capture_claim \gset
select service_role_complete_outbox(jsonb_build_array(jsonb_build_object('id', :'capture_claim'::jsonb -> 0 ->> 'id', 'provider_ref', :'request_pi'::jsonb ->> 'id',
  'object', tests.stripe_payment_intent(:'request_id', 'succeeded'))));
reset role;
select is((select status from outbox where id = (:'capture_claim'::jsonb -> 0 ->> 'id')::uuid), 'sent', 'the retried capture is recorded from Stripe''s answer');
select is((tests.ledger(:'request_id') ->> 'reconciled')::boolean, true, 'and the ledger reconciles: captured, fee and payout as the rules split them');

-- 5. The client cancels 10 hours ahead: half is refunded, split between fee and payout.
select tests.freeze_time('2030-01-23 05:00+00');
select tests.as_service_role();
select service_role_cancel_session(:'request_id', :'paula', 'Plans changed', 50, 6000, 600, 5400);
select tests.claim_payments() as refund_claim \gset
reset role;
select results_eq(format($$select c ->> 'topic', (c ->> 'amount_cents')::int, (c ->> 'platform_fee_cents')::int, c ->> 'payment_intent' from jsonb_array_elements(%L::jsonb) c$$, :'refund_claim'),
  format($$values ('payment.refund'::text, 6000, 600, %L::text)$$, :'request_pi'::jsonb ->> 'id'),
  'a late cancellation queues the refund of half, with the platform''s share of it');
select tests.as_service_role();
select service_role_complete_outbox(jsonb_build_array(jsonb_build_object('id', :'refund_claim'::jsonb -> 0 ->> 'id', 'provider_ref', 're_half',
  'object', jsonb_build_object('object', 'refund', 'id', 're_half', 'amount', 6000, 'currency', 'usd', 'status', 'succeeded',
    'payment_intent', :'request_pi'::jsonb ->> 'id', 'metadata', jsonb_build_object('session_id', :'request_id', 'platform_fee_cents', '600'),
    'charge', (:'request_pi'::jsonb -> 'latest_charge') || '{"amount_captured": 12000, "captured": true, "amount_refunded": 6000}',
    'transfer_reversal', jsonb_build_object('object', 'transfer_reversal', 'id', 'trr_half', 'amount', 6000, 'currency', 'usd',
                                            'transfer', :'request_pi'::jsonb -> 'latest_charge' ->> 'transfer')))));
select tests.claim_payments() as fee_claim \gset
reset role;
select results_eq(format($$select c ->> 'topic', (c ->> 'amount_cents')::int, c ->> 'fee', c ->> 'idempotency_key' from jsonb_array_elements(%L::jsonb) c$$, :'fee_claim'),
  format($$values ('payment.fee_refund'::text, 600, %L::text, 'payment.fee_refund:re_half'::text)$$, :'request_pi'::jsonb -> 'latest_charge' ->> 'application_fee'),
  'the refund queues the refund of the application fee''s share, from the charge''s application fee');
select is((tests.ledger(:'request_id') ->> 'reconciled')::boolean, false, 'until it is done the shares do not reconcile');
select tests.as_service_role();
select service_role_complete_outbox(jsonb_build_array(jsonb_build_object('id', :'fee_claim'::jsonb -> 0 ->> 'id', 'provider_ref', 'fr_half',
  'object', jsonb_build_object('object', 'fee_refund', 'id', 'fr_half', 'amount', 600, 'currency', 'usd',
                               'fee', :'request_pi'::jsonb -> 'latest_charge' ->> 'application_fee'))));
reset role;
select results_eq(format($$select t -> 'ledger' -> 'net_cents', t -> 'ledger' -> 'platform_fee_cents', t -> 'ledger' -> 'expert_payout_cents', t -> 'reconciled' from tests.ledger(%L) t$$, :'request_id'),
  $$values ('6000'::jsonb, '600'::jsonb, '5400'::jsonb, 'true'::jsonb)$$, 'then the ledger keeps half: 60.00, of which 6.00 fee and 54.00 payout');
select results_eq(format($$select kind, provider_ref from payments where session_id = %L order by kind$$, :'request_id'),
  format($$values ('application_fee_refund'::text, 'fr_half'::text), ('charge', %L), ('payment_intent', %L), ('refund', 're_half'), ('transfer_reversal', 'trr_half')$$,
         :'request_pi'::jsonb -> 'latest_charge' ->> 'id', :'request_pi'::jsonb ->> 'id'),
  'each row names the Stripe object it mirrors');
select tests.as_service_role();
select service_role_cancel_session(:'request_id', :'paula', 'Again', 0, 0, 0, 0);
reset role;
select is((select count(*) from outbox where session_id = :'request_id' and topic = 'payment.refund'), 1::bigint, 'cancelling twice never refunds twice');
-- The same refund reported again, by events, in another order, changes nothing.
select tests.as_service_role();
select service_role_receive_stripe_event(tests.event('evt_fee', 'application_fee.refunded', '2030-01-23 05:00+00', jsonb_build_object(
  'object', 'application_fee', 'id', :'request_pi'::jsonb -> 'latest_charge' ->> 'application_fee', 'amount', 1200, 'amount_refunded', 600,
  'refunds', jsonb_build_object('data', jsonb_build_array(jsonb_build_object('object', 'fee_refund', 'id', 'fr_half', 'amount', 600, 'currency', 'usd'))))), 1895028000);
select service_role_receive_stripe_event(tests.event('evt_refund', 'refund.created', '2030-01-23 05:00+00', jsonb_build_object(
  'object', 'refund', 'id', 're_half', 'amount', 6000, 'currency', 'usd', 'status', 'pending', 'charge', :'request_pi'::jsonb -> 'latest_charge' ->> 'id',
  'metadata', jsonb_build_object('session_id', :'request_id', 'platform_fee_cents', '600'))), 1895028000);
reset role;
select results_eq(format($$select count(*), (tests.ledger(%L) ->> 'reconciled')::boolean from payments where session_id = %L$$, :'request_id', :'request_id'),
  $$values (5::bigint, true)$$, 'events repeating what the answers said add no row and keep the ledger reconciled');
select is((select status from payments where provider_ref = 're_half'), 'succeeded', 'a pending refund reported after its success does not move it back');
select is((select count(*) from outbox where topic = 'payment.fee_refund'), 1::bigint, 'nor queues the fee refund again');
select tests.freeze_time('2030-01-02 08:01+00');

-- 6. Requests that end without a session release the authorisation.
select tests.authenticate_as('paula@example.com');
select (book_session(:finn, '2030-01-21 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as declined_id \gset
select (book_session(:finn, '2030-01-22 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as lapsing_id \gset
reset role;
select tests.pay(:'declined_id');
select tests.authenticate_as('finn.fullstack@example.com');
update sessions set status = 'declined' where id = :'declined_id';
reset role;
select results_eq(format($$select topic, payload ->> 'reason' from outbox where session_id = %L and channel = 'payment'$$, :'declined_id'),
  $$values ('payment.release'::text, 'abandoned'::text)$$, 'a declined request releases its authorisation');
select tests.freeze_time('2030-01-09 08:00+00');
select tests.authenticate_as('paula@example.com');
select (book_session(:finn, '2030-01-25 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as unanswered_id \gset
reset role;
select tests.pay(:'unanswered_id');
select is((select answer_by from sessions where id = :'unanswered_id'), '2030-01-15 20:00+00'::timestamptz, 'a request must be answered within 6.5 days');
select tests.freeze_time('2030-01-15 20:00+00');
select tests.as_service_role();
select service_role_advance_sessions();
reset role;
select results_eq(format($$select s.status, o.topic from sessions s join outbox o on o.session_id = s.id and o.channel = 'payment' where s.id = %L$$, :'unanswered_id'),
  $$values ('expired'::text, 'payment.release'::text)$$, 'unanswered by then, it expires and its authorisation is released');
select is((select status from sessions where id = :'lapsing_id'), 'expired', 'a hold never paid expired with it');
select is((select count(*) from outbox where session_id = :'lapsing_id'), 0::bigint, 'telling no one and releasing nothing: no payment was made');
select is((select count(*) from audit_logs where entity_id = :'lapsing_id' and action = 'session.hold_lapsed'), 1::bigint, 'the lapse is audited');

-- 7. A payment that succeeds after its hold lapsed is refunded in full; one authorised, released.
select tests.stripe_payment_intent(:'lapsing_id', 'succeeded') as late_pi \gset
select tests.as_service_role();
select service_role_receive_stripe_event(tests.event('evt_late', 'payment_intent.succeeded', '2030-01-15 20:00+00', :'late_pi'), 1894737600);
reset role;
select results_eq(format($$select topic, (payload ->> 'amount_cents')::int, (payload ->> 'platform_fee_cents')::int from outbox where session_id = %L and channel = 'payment'$$, :'lapsing_id'),
  $$values ('payment.refund'::text, 12000, 1200)$$, 'money taken for a lapsed hold is refunded in full, fee included');
select is((select status from sessions where id = :'lapsing_id'), 'expired', 'and the session stays expired');

-- 8. A release that finds the PaymentIntent already cancelled is done; a capture Stripe refuses
-- for good flags the session for an operator.
select tests.as_service_role();
select tests.claim_payments() as ends_claim \gset
select service_role_complete_outbox((select jsonb_agg(case c ->> 'topic'
    when 'payment.release' then jsonb_build_object('id', c ->> 'id', 'error', 'payment_intent_unexpected_state', 'permanent', true,
      'object', jsonb_build_object('object', 'payment_intent', 'id', c ->> 'payment_intent', 'status', 'canceled', 'amount', 12000, 'currency', 'usd',
                                   'metadata', jsonb_build_object('session_id', c ->> 'session_id')))
    else jsonb_build_object('id', c ->> 'id', 'error', 'Stripe answered 503') end) from jsonb_array_elements(:'ends_claim'::jsonb) c));
reset role;
select is((select array_agg(distinct status) from outbox where topic = 'payment.release'), array['sent'],
  'a release refused because the PaymentIntent is already cancelled has reached its goal');

select tests.freeze_time('2030-01-02 08:01+00');
select tests.authenticate_as('paula@example.com');
select (book_session(:finn, '2030-01-24 15:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD') ->> 'id') as refused_id \gset
reset role;
select tests.pay(:'refused_id');
select tests.authenticate_as('finn.fullstack@example.com');
update sessions set status = 'confirmed' where id = :'refused_id';
reset role;
select tests.as_service_role();
select service_role_complete_outbox((select jsonb_agg(jsonb_build_object('id', c ->> 'id', 'error', 'Stripe answered 400: the authorisation expired', 'permanent', true))
  from jsonb_array_elements(tests.claim_payments()) c where c ->> 'session_id' = :'refused_id'));
reset role;
select results_eq(format($$select s.payment_problem, o.status from sessions s join outbox o on o.session_id = s.id and o.topic = 'payment.capture' where s.id = %L$$, :'refused_id'),
  $$values ('capture_failed'::text, 'failed'::text)$$, 'a capture Stripe refuses is failed at once and the session says so');
select is((select count(*) from audit_logs where entity_id = :'refused_id' and action = 'payment.capture_failed'), 1::bigint, 'with an audit row');
select tests.as_service_role();
select service_role_cancel_session(:'refused_id', :finn, 'Sorry', 100, 12000, 1200, 10800);
select tests.claim_payments() as after_failed;
reset role;
select is((select skip_reason from outbox where session_id = :'refused_id' and topic = 'payment.refund'), 'capture_failed',
  'and a later refund of what was never captured is skipped');

-- 9. Events that name what is not known yet wait, and are applied once it is.
select tests.authenticate_as('paula@example.com');
select (book_session(:ada, '2030-01-28 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD') ->> 'id') as disputed_id \gset
reset role;
select tests.stripe_payment_intent(:'disputed_id') as disputed_pi \gset
select tests.as_service_role();
select is(service_role_receive_stripe_event(tests.event('evt_dispute', 'charge.dispute.created', '2030-01-02 08:03+00', jsonb_build_object(
  'object', 'dispute', 'id', 'dp_1', 'amount', 15000, 'currency', 'usd', 'status', 'needs_response', 'reason', 'fraudulent',
  'charge', :'disputed_pi'::jsonb -> 'latest_charge' ->> 'id')), 1893571380) ->> 'status',
  'deferred', 'a dispute on a charge not known yet is stored and deferred');
select service_role_receive_stripe_event(tests.event('evt_disputedpaid', 'payment_intent.succeeded', '2030-01-02 08:02+00', :'disputed_pi'), 1893571390);
reset role;
select tests.freeze_time('2030-01-02 08:10+00');
select tests.as_service_role();
select is((service_role_advance_sessions() ->> 'stripe_events_retried')::int, 1, 'the dispatcher retries it');
reset role;
select results_eq($$select status, attempts from stripe_events where id = 'evt_dispute'$$, $$values ('applied'::text, 2)$$,
  'and applies it once the charge is known');
select results_eq(format($$select s.disputed_at is not null, p.status from sessions s join payments p on p.session_id = s.id and p.kind = 'dispute' where s.id = %L$$, :'disputed_id'),
  $$values (true, 'needs_response'::text)$$, 'the dispute flags the session and enters the ledger');
select is((select count(*) from audit_logs where entity_id = :'disputed_id' and action = 'payment.disputed'), 1::bigint, 'with an audit row');
select tests.as_service_role();
select service_role_receive_stripe_event(tests.event('evt_unknown', 'customer.created', '2030-01-02 08:03+00', '{"object": "customer", "id": "cus_1"}'), 1893571400);
reset role;
select is((select status from stripe_events where id = 'evt_unknown'), 'ignored', 'an event of another type is stored and ignored');

-- 10. A booking whose PaymentIntent could not be made is removed, audited.
select tests.authenticate_as('paula@example.com');
select (book_session(:ada, '2030-01-29 10:00+00', 60, 15000, 1000, 15000, 1500, 13500, 'USD') ->> 'id') as abandoned_id \gset
reset role;
select tests.as_service_role();
select is(service_role_abandon_booking(:'abandoned_id', 'Stripe answered 503'), true, 'a booking Stripe could not take is removed');
select is(service_role_abandon_booking(:'instant_id', 'late'), false, 'but never one that was paid');
reset role;
select results_eq(format($$select (select count(*) from sessions where id = %L), (select count(*) from audit_logs where entity_id = %L and action = 'session.abandoned')$$,
  :'abandoned_id', :'abandoned_id'), $$values (0::bigint, 1::bigint)$$, 'leaving only its audit row');

-- 13. Currencies: an expert's is one the platform takes; a zero-decimal one is priced in yen.
select throws_ok(format($$update expert_profiles set currency = 'XYZ' where id = %L$$, :rae), '23503', null,
  'a currency the platform does not take is refused');
update expert_profiles set currency = 'JPY', hourly_rate_cents = 12000 where id = :rae;
select tests.authenticate_as('paula@example.com');
select (book_session(:rae, '2030-02-11 17:00+00', 90, 12000, 1000, 18000, 1800, 16200, 'JPY') ->> 'id') as yen_id \gset
reset role;
select tests.as_service_role();
select results_eq(format($$select p ->> 'currency', (p ->> 'amount_cents')::int, (p ->> 'application_fee_cents')::int from service_role_payment_plan(%L) p$$, :'yen_id'),
  $$values ('jpy'::text, 18000, 1800)$$, '12,000 yen an hour for 90 minutes: a PaymentIntent of 18,000 yen, 1,800 of them the fee');
reset role;
select tests.pay(:'yen_id');
update expert_profiles set currency = 'USD', hourly_rate_cents = 9000 where id = :rae;

-- 11. A client holds at most three unpaid slots at once.
select tests.authenticate_as('paula@example.com');
select book_session(:rae, '2030-02-04 17:00+00', 60, 9000, 1000, 9000, 900, 8100, 'USD');
select book_session(:rae, '2030-02-05 17:00+00', 60, 9000, 1000, 9000, 900, 8100, 'USD');
select book_session(:rae, '2030-02-06 17:00+00', 60, 9000, 1000, 9000, 900, 8100, 'USD');
select throws_ok($$select book_session('22222222-2222-4222-8222-222222222204', '2030-02-07 17:00+00', 60, 9000, 1000, 9000, 900, 8100, 'USD')$$,
  'PT429', 'You have 3 unpaid bookings waiting for payment; pay for or cancel one first.', 'a fourth unpaid hold is refused');
reset role;

-- 12. A hostile client cannot reach any of the payment functions.
select tests.authenticate_as('paula@example.com');
select throws_ok($$select service_role_record_stripe_objects('[]')$$, '42501', null, 'a client cannot record Stripe objects');
select throws_ok($$select service_role_receive_stripe_event('{}', 0)$$, '42501', null, 'nor hand in an event');
select throws_ok(format($$select service_role_abandon_booking(%L, 'mine')$$, :'instant_id'), '42501', null, 'nor remove a booking');
select throws_ok(format($$select service_role_reconcile_session(%L)$$, :'instant_id'), '42501', null, 'nor read the reconciliation');
reset role;

select * from finish();
rollback;
