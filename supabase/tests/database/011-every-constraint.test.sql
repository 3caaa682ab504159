-- Every CHECK, UNIQUE and EXCLUDE constraint of public, broken once by a statement that breaks
-- it alone; and no constraint without such a statement.
begin;
\ir _helpers.psql
select plan(2);

select tests.freeze_time('2029-12-01 00:00+00');
insert into match_requests (id, client_id, skills) values ('66666666-6666-4666-8666-666666666666', tests.user_id('casey.client@example.com'), '{react}');
insert into match_results (request_id, expert_id, rank, score, score_parts) values ('66666666-6666-4666-8666-666666666666', tests.user_id('rae.react@example.com'), 1, 0.5, '{}');
insert into email_verification_tokens (user_id, email, token_hash, expires_at) values (tests.user_id('casey.client@example.com'), 'c@example.com', extensions.digest('one', 'sha256'), now());
insert into password_reset_tokens (user_id, token_hash, expires_at) values (tests.user_id('casey.client@example.com'), extensions.digest('two', 'sha256'), now());
select tests.make_session('casey.client@example.com', 'devon.devops@example.com', '2030-01-07 10:00+00', 60) as confirmed_id \gset
insert into reviews (session_id, reviewer_id, reviewee_id, rating) values ('55555555-5555-4555-8555-555555555501', tests.user_id('ada.ai@example.com'), tests.user_id('casey.client@example.com'), 4);
insert into commission_rates (expert_id, commission_bps) values (tests.user_id('ada.ai@example.com'), 1200);
insert into webhook_endpoints (url, event_types) values ('https://hooks.example.com/a', '{session.confirmed}');
insert into outbox (channel, topic, dedupe_key, session_id, endpoint_id, max_attempts, due_at, next_attempt_at)
select 'webhook', 'session.confirmed', 'test-webhook', '55555555-5555-4555-8555-555555555503', id, 8, now(), now() from webhook_endpoints;
insert into webhook_attempts (outbox_id, endpoint_id, attempt, status_code) select o.id, o.endpoint_id, 1, 500 from outbox o where o.dedupe_key = 'test-webhook';
insert into commission_rates (agency_id, commission_bps) values ('44444444-4444-4444-8444-444444444444', 1100);

-- An insert of a valid session of Casey's with Ada, with `overrides` (column -> value) applied.
create function tests.session_sql(overrides jsonb) returns text language sql as $$
  select format($f$insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents,
                  platform_fee_cents, expert_payout_cents, commission_bps, currency, notes, meeting_provider, room_name,
                  cancelled_at, refund_amount_cents, refund_percent, cancellation_reason, payment_intent_id, payment_problem, answer_by)
                select client_id, expert_id, starts_at, starts_at + make_interval(mins => duration_minutes), duration_minutes, status, hourly_rate_cents,
                       amount_cents, platform_fee_cents, expert_payout_cents, commission_bps, currency, notes, meeting_provider, room_name,
                       cancelled_at, refund_amount_cents, refund_percent, cancellation_reason, payment_intent_id, payment_problem, answer_by
                from jsonb_populate_record(null::public.sessions, %L::jsonb)$f$,
    jsonb_build_object('client_id', tests.user_id('casey.client@example.com'), 'expert_id', tests.user_id('ada.ai@example.com'),
      'starts_at', '2030-02-04T10:00:00Z', 'duration_minutes', 60, 'status', 'confirmed', 'hourly_rate_cents', 15000, 'amount_cents', 15000,
      'platform_fee_cents', 1500, 'expert_payout_cents', 13500, 'commission_bps', 1000, 'currency', 'USD', 'notes', '',
      'meeting_provider', 'daily') || overrides)
$$;
\set cancelled '{"status": "cancelled", "cancelled_at": "2029-12-01T00:00:00Z", "refund_amount_cents": 0, "refund_percent": 0}'

create temporary table cases (expected text primary key, statement text not null);
insert into cases values
  ('profiles_avatar_url_check', $$update profiles set avatar_url = 'http://insecure.example/a.png' where id = tests.user_id('casey.client@example.com')$$),
  ('profiles_full_name_check', $$update profiles set full_name = repeat('x', 201) where id = tests.user_id('casey.client@example.com')$$),
  ('profiles_role_check', $$update profiles set role = 'owner' where id = tests.user_id('casey.client@example.com')$$),
  ('profiles_timezone_check', $$update profiles set timezone = 'Mars/Olympus' where id = tests.user_id('casey.client@example.com')$$),
  ('agency_profiles_max_experts_check', $$update agency_profiles set max_experts = -1$$),
  ('agency_profiles_name_check', $$update agency_profiles set name = ''$$),
  ('agency_profiles_subscription_status_check', $$update agency_profiles set subscription_status = 'free'$$),
  ('expert_profiles_bio_check', $$update expert_profiles set bio = repeat('x', 5001) where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_currency_check', $$update expert_profiles set currency = 'usd' where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_headline_check', $$update expert_profiles set headline = repeat('x', 201) where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_hourly_rate_cents_check', $$update expert_profiles set hourly_rate_cents = 0 where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_rating_avg_check', $$update expert_profiles set rating_avg = 5.5 where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_rating_count_check', $$update expert_profiles set rating_count = -1 where id = tests.user_id('ada.ai@example.com')$$),
  ('expert_profiles_timezone_check', $$update expert_profiles set timezone = 'Nowhere/Town' where id = tests.user_id('ada.ai@example.com')$$),
  ('skill_categories_name_check', $$insert into skill_categories (slug, name) values ('fresh-skill', '')$$),
  ('skill_categories_slug_check', $$insert into skill_categories (slug, name) values ('Bad Slug', 'Bad')$$),
  ('skill_categories_slug_key', $$insert into skill_categories (slug, name) values ('react', 'React again')$$),
  ('expert_skills_proficiency_check', $$update expert_skills set proficiency = 6 where expert_id = tests.user_id('ada.ai@example.com')$$),
  ('expert_skills_years_check', $$update expert_skills set years = 61 where expert_id = tests.user_id('ada.ai@example.com')$$),
  ('availability_rules_check', $$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 0, 600, 500)$$),
  ('availability_rules_end_minute_check', $$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 0, 10, 1441)$$),
  ('availability_rules_expert_id_weekday_int4range_excl', $$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 1, 600, 700)$$),
  ('availability_rules_start_minute_check', $$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 0, -1, 10)$$),
  ('availability_rules_weekday_check', $$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 7, 10, 20)$$),
  ('availability_exceptions_check', $$insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'blocked', 10, null)$$),
  ('availability_exceptions_check1', $$insert into availability_exceptions (expert_id, on_date, kind) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'extra')$$),
  ('availability_exceptions_check2', $$insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'blocked', 600, 500)$$),
  ('availability_exceptions_end_minute_check', $$insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'blocked', 10, 1441)$$),
  ('availability_exceptions_kind_check', $$insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'holiday', 0, 60)$$),
  ('availability_exceptions_start_minute_check', $$insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), '2030-01-01', 'blocked', -5, 10)$$),
  ('sessions_amount_cents_check', tests.session_sql('{"amount_cents": 0}')),
  ('sessions_amount_follows_rate', tests.session_sql('{"amount_cents": 14000, "platform_fee_cents": 1400, "expert_payout_cents": 12600}')),
  ('sessions_cancellation_reason_check', tests.session_sql(:'cancelled'::jsonb || jsonb_build_object('cancellation_reason', repeat('x', 1001)))),
  ('sessions_cancelled_has_refund', tests.session_sql('{"status": "cancelled", "cancelled_at": "2029-12-01T00:00:00Z"}')),
  ('sessions_cancelled_has_time', tests.session_sql('{"status": "cancelled"}')),
  ('sessions_client_no_overlap', tests.session_sql(jsonb_build_object('expert_id', tests.user_id('finn.fullstack@example.com'), 'hourly_rate_cents', 12000, 'amount_cents', 12000, 'platform_fee_cents', 1200, 'expert_payout_cents', 10800, 'starts_at', '2030-01-07T10:30:00Z'))),
  ('sessions_commission_bps_check', tests.session_sql('{"commission_bps": 10001}')),
  ('sessions_currency_check', tests.session_sql('{"currency": "usd"}')),
  ('sessions_duration_minutes_check', tests.session_sql('{"duration_minutes": 45, "amount_cents": 11250, "platform_fee_cents": 1125, "expert_payout_cents": 10125}')),
  ('sessions_end_follows_duration', $$update sessions set ends_at = ends_at + interval '1 minute' where id = '55555555-5555-4555-8555-555555555503'$$),
  ('sessions_expert_no_overlap', $$select tests.make_session((select email from auth.users where id = tests.user_id('avery.agency@example.com')), 'devon.devops@example.com', '2030-01-07 10:30+00', 60)$$),
  ('sessions_expert_payout_cents_check', tests.session_sql('{"platform_fee_cents": 15001, "expert_payout_cents": -1}')),
  ('sessions_fee_follows_commission', tests.session_sql('{"platform_fee_cents": 1000, "expert_payout_cents": 14000}')),
  ('sessions_fee_plus_payout_is_amount', tests.session_sql('{"expert_payout_cents": 13000}')),
  ('sessions_meeting_provider_check', tests.session_sql('{"meeting_provider": "zoom"}')),
  ('sessions_not_self_booked', tests.session_sql(jsonb_build_object('client_id', tests.user_id('ada.ai@example.com')))),
  ('sessions_notes_check', tests.session_sql(jsonb_build_object('notes', repeat('x', 2001)))),
  ('sessions_refund_percent_check', tests.session_sql(:'cancelled'::jsonb || '{"refund_percent": 25}')),
  ('sessions_refund_within_amount', tests.session_sql(:'cancelled'::jsonb || '{"refund_amount_cents": 15001, "refund_percent": 100}')),
  ('sessions_start_on_a_minute', tests.session_sql('{"starts_at": "2030-02-04T10:00:30Z"}')),
  ('commission_rates_one_party', $$insert into commission_rates (expert_id, agency_id, commission_bps) values (tests.user_id('finn.fullstack@example.com'), '44444444-4444-4444-8444-444444444444', 900)$$),
  ('commission_rates_commission_bps_check', $$insert into commission_rates (expert_id, commission_bps) values (tests.user_id('finn.fullstack@example.com'), 10001)$$),
  ('commission_rates_note_check', $$insert into commission_rates (expert_id, commission_bps, note) values (tests.user_id('finn.fullstack@example.com'), 900, repeat('x', 501))$$),
  ('commission_rates_expert_id_key', $$insert into commission_rates (expert_id, commission_bps) values (tests.user_id('ada.ai@example.com'), 900)$$),
  ('commission_rates_agency_id_key', $$insert into commission_rates (agency_id, commission_bps) values ('44444444-4444-4444-8444-444444444444', 900)$$),
  ('sessions_status_check', tests.session_sql('{"status": "paused"}')),
  ('payments_amount_cents_check', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'refund', 're_c1', 'succeeded', -1, 'USD', now())$$),
  ('payments_currency_check', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'refund', 're_c2', 'succeeded', 10, 'usd', now())$$),
  ('payments_kind_check', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'tip', 'tip_c3', 'succeeded', 10, 'USD', now())$$),
  ('payments_status_check', $$update payments set status = 'Lost!' where session_id = '55555555-5555-4555-8555-555555555501'$$),
  ('payments_provider_ref_key', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'charge', 'ch_seed01', 'succeeded', 10, 'USD', now())$$),
  ('payments_provider_ref_names_kind', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at) values ('55555555-5555-4555-8555-555555555501', 'dispute', 're_c4', 'needs_response', 10, 'USD', now())$$),
  ('payments_parent_ref_check', $$insert into payments (session_id, kind, provider_ref, status, amount_cents, currency, reported_at, parent_ref) values ('55555555-5555-4555-8555-555555555501', 'refund', 're_c5', 'succeeded', 10, 'USD', now(), repeat('x', 81))$$),
  ('payments_captured_cents_check', $$update payments set captured_cents = -1 where provider_ref = 'ch_seed01'$$),
  ('payments_refunded_cents_check', $$update payments set refunded_cents = -1 where provider_ref = 'ch_seed01'$$),
  ('payments_application_fee_cents_check', $$update payments set application_fee_cents = -1 where provider_ref = 'ch_seed01'$$),
  ('payments_fee_ref_check', $$update payments set fee_ref = 'ch_x' where provider_ref = 'ch_seed01'$$),
  ('payments_transfer_ref_check', $$update payments set transfer_ref = 'acct_x' where provider_ref = 'ch_seed01'$$),
  ('payments_failure_reason_check', $$update payments set failure_reason = repeat('x', 501) where provider_ref = 'ch_seed01'$$),
  ('payout_accounts_stripe_account_id_check', $$update payout_accounts set stripe_account_id = 'pi_x' where expert_id = tests.user_id('ada.ai@example.com')$$),
  ('payout_accounts_stripe_account_id_key', $$update payout_accounts set stripe_account_id = 'acct_seed02' where expert_id = tests.user_id('ada.ai@example.com')$$),
  ('stripe_events_id_check', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, received_at, applied_at) values ('ev_1', 'charge.succeeded', now(), '{}', now(), 'applied', now(), now())$$),
  ('stripe_events_type_check', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, received_at, applied_at) values ('evt_2', repeat('x', 101), now(), '{}', now(), 'applied', now(), now())$$),
  ('stripe_events_account_check', $$insert into stripe_events (id, type, account, created_at_stripe, payload, signed_at, status, received_at, applied_at) values ('evt_3', 'account.updated', repeat('x', 81), now(), '{}', now(), 'applied', now(), now())$$),
  ('stripe_events_status_check', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, received_at, applied_at) values ('evt_4', 'charge.succeeded', now(), '{}', now(), 'done', now(), now())$$),
  ('stripe_events_attempts_check', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, attempts, received_at, applied_at) values ('evt_5', 'charge.succeeded', now(), '{}', now(), 'applied', 0, now(), now())$$),
  ('stripe_events_last_error_check', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, last_error, received_at, applied_at) values ('evt_6', 'charge.succeeded', now(), '{}', now(), 'applied', repeat('x', 1001), now(), now())$$),
  ('stripe_events_deferred_has_retry', $$insert into stripe_events (id, type, created_at_stripe, payload, signed_at, status, received_at) values ('evt_7', 'charge.succeeded', now(), '{}', now(), 'deferred', now())$$),
  ('sessions_payment_intent_id_check', tests.session_sql('{"payment_intent_id": "ch_1"}')),
  ('sessions_payment_intent_id_key', tests.session_sql('{"payment_intent_id": "pi_seed01"}')),
  ('sessions_payment_problem_check', tests.session_sql('{"payment_problem": "gone"}')),
  ('sessions_answer_by_before_start', tests.session_sql('{"status": "requested", "answer_by": "2030-03-01T00:00:00Z"}')),
  ('outbox_payment_has_session', format($$update outbox set channel = 'payment', session_id = null where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('session_messages_body_check', $$insert into session_messages (session_id, sender_id, body) values ('55555555-5555-4555-8555-555555555502', tests.user_id('casey.client@example.com'), '')$$),
  ('reviews_check', $$update reviews set reviewee_id = reviewer_id where reviewer_id = tests.user_id('ada.ai@example.com')$$),
  ('reviews_comment_check', $$update reviews set comment = repeat('x', 2001) where reviewer_id = tests.user_id('ada.ai@example.com')$$),
  ('reviews_rating_check', $$update reviews set rating = 6 where reviewer_id = tests.user_id('ada.ai@example.com')$$),
  ('reviews_session_id_reviewer_id_key', $$insert into reviews (session_id, reviewer_id, reviewee_id, rating) values ('55555555-5555-4555-8555-555555555501', tests.user_id('ada.ai@example.com'), tests.user_id('casey.client@example.com'), 3)$$),
  ('match_requests_check', $$update match_requests set window_from = '2030-01-02', window_to = '2030-01-01'$$),
  ('match_requests_currency_check', $$update match_requests set currency = 'usd'$$),
  ('match_requests_duration_minutes_check', $$update match_requests set duration_minutes = 50$$),
  ('match_requests_max_rate_cents_check', $$update match_requests set max_rate_cents = 0$$),
  ('match_requests_min_rating_check', $$update match_requests set min_rating = 6$$),
  ('match_requests_result_count_check', $$update match_requests set result_count = -1$$),
  ('match_requests_skills_check', $$update match_requests set skills = '{}'$$),
  ('match_results_rank_check', $$update match_results set rank = 0$$),
  ('match_results_request_id_expert_id_key', $$insert into match_results (request_id, expert_id, rank, score, score_parts) values ('66666666-6666-4666-8666-666666666666', tests.user_id('rae.react@example.com'), 2, 0.4, '{}')$$),
  ('email_verification_tokens_attempts_check', $$update email_verification_tokens set attempts = 6$$),
  ('email_verification_tokens_token_hash_check', $$update email_verification_tokens set token_hash = '\x00'$$),
  ('email_verification_tokens_token_hash_key', $$insert into email_verification_tokens (user_id, email, token_hash, expires_at) values (tests.user_id('casey.client@example.com'), 'c@example.com', extensions.digest('one', 'sha256'), now())$$),
  ('password_reset_tokens_attempts_check', $$update password_reset_tokens set attempts = 6$$),
  ('password_reset_tokens_token_hash_check', $$update password_reset_tokens set token_hash = '\x00'$$),
  ('password_reset_tokens_token_hash_key', $$insert into password_reset_tokens (user_id, token_hash, expires_at) values (tests.user_id('casey.client@example.com'), extensions.digest('two', 'sha256'), now())$$),
  ('outbox_attempts_within_max', format($$update outbox set attempts = 6 where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_sending_has_lease', format($$update outbox set status = 'sending' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_sent_has_ref', format($$update outbox set status = 'sent' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_skipped_has_reason', format($$update outbox set status = 'skipped' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_status_check', format($$update outbox set status = 'queued' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_channel_check', format($$update outbox set channel = 'sms' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_topic_check', format($$update outbox set topic = 'Reminder!' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_max_attempts_check', format($$update outbox set max_attempts = 0, attempts = 0 where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_payload_check', format($$update outbox set payload = '[]' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_batch_key_check', format($$update outbox set batch_key = repeat('x', 101) where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_last_error_check', format($$update outbox set last_error = repeat('x', 1001) where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_skip_reason_check', format($$update outbox set skip_reason = repeat('x', 201) where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_provider_ref_check', format($$update outbox set provider_ref = repeat('x', 301) where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_dedupe_key_check', format($$update outbox set dedupe_key = repeat('x', 301) where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_dedupe_key_key', format($$insert into outbox (channel, topic, dedupe_key, recipient_id, max_attempts, due_at, next_attempt_at) select channel, topic, dedupe_key, recipient_id, 5, due_at, due_at from outbox where session_id = %L limit 1$$, :'confirmed_id')),
  ('outbox_email_has_recipient', format($$update outbox set recipient_id = null where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_webhook_has_endpoint', format($$update outbox set channel = 'webhook' where session_id = %L and topic = 'reminder.24h'$$, :'confirmed_id')),
  ('outbox_room_has_session', $$update outbox set session_id = null where topic = 'room.create'$$),
  ('sessions_calendar_sequence_check', $$update sessions set calendar_sequence = -1 where id = '55555555-5555-4555-8555-555555555503'$$),
  ('webhook_endpoints_url_check', $$update webhook_endpoints set url = 'ftp://hooks.example.com'$$),
  ('webhook_endpoints_description_check', $$update webhook_endpoints set description = repeat('x', 501)$$),
  ('webhook_endpoints_event_types_check', $$update webhook_endpoints set event_types = '{session.teleported}'$$),
  ('webhook_endpoints_secret_check', $$update webhook_endpoints set secret = 'plain'$$),
  ('webhook_endpoints_disabled_reason_check', $$update webhook_endpoints set disabled_at = now(), disabled_reason = repeat('x', 501)$$),
  ('webhook_endpoints_disabled_has_reason', $$update webhook_endpoints set disabled_at = now()$$),
  ('webhook_attempts_attempt_check', $$update webhook_attempts set attempt = 0$$),
  ('webhook_attempts_status_code_check', $$update webhook_attempts set status_code = 600$$),
  ('webhook_attempts_latency_ms_check', $$update webhook_attempts set latency_ms = -1$$),
  ('webhook_attempts_response_excerpt_check', $$update webhook_attempts set response_excerpt = repeat('x', 501)$$),
  ('webhook_attempts_error_check', $$update webhook_attempts set error = repeat('x', 1001)$$),
  ('audit_logs_action_check', $$insert into audit_logs (actor_role, action, entity) values ('system', 'Created!', 'sessions')$$),
  ('audit_logs_actor_role_check', $$insert into audit_logs (actor_role, action, entity) values ('root', 'session.created', 'sessions')$$),
  ('audit_logs_request_id_check', $$insert into audit_logs (actor_role, action, entity, request_id) values ('system', 'session.created', 'sessions', repeat('x', 65))$$),
  ('audit_logs_reported_context_is_small', $$insert into audit_logs (actor_role, action, entity, reported_context) values ('system', 'session.created', 'sessions', jsonb_build_object('user_agent', repeat('x', 2001)))$$),
  ('audit_logs_user_agent_check', $$insert into audit_logs (actor_role, action, entity, user_agent) values ('system', 'session.created', 'sessions', repeat('x', 501))$$),
  ('received_webhooks_id_check', $$insert into received_webhooks (id) values ('')$$),
  ('rate_limit_events_bucket_check', $$insert into rate_limit_events (bucket) values (repeat('x', 301))$$);

-- Run each case in its own subtransaction and note which constraint stopped it.
create temporary table outcomes (expected text, violated text);
do $$
declare
  c record;
  violated text;
begin
  for c in select * from cases loop
    begin
      execute c.statement;
      violated := '(nothing)';
    exception when integrity_constraint_violation or check_violation or unique_violation or exclusion_violation then
      get stacked diagnostics violated = constraint_name;
    end;
    insert into outcomes values (c.expected, violated);
  end loop;
end
$$;

select is_empty($$select expected || ' was stopped by ' || violated from outcomes where violated is distinct from expected$$,
  'each statement is stopped by exactly the constraint it breaks');
select is_empty($$
  select conname from pg_constraint where connamespace = 'public'::regnamespace and contype in ('c', 'u', 'x')
  except select expected from cases
$$, 'every CHECK, UNIQUE and EXCLUDE constraint of public has a case');

select * from finish();
rollback;
