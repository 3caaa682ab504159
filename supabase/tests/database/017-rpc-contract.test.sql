-- The contract between the workers and the database: every function a worker calls, with its
-- argument names and types as the worker's type for it (shared/src/rpc.rs) sends them. The
-- shared crate's own test reads this file and checks each type's fields against the names
-- below, so that renaming an argument on either side fails a test.
begin;
\ir _helpers.psql
select plan(44);

create temporary table contract (name text primary key, arguments text not null);
insert into contract values
  ('book_session', 'expert_id uuid, starts_at timestamp with time zone, duration_minutes integer, hourly_rate_cents bigint, commission_bps integer, amount_cents bigint, platform_fee_cents bigint, expert_payout_cents bigint, currency text, notes text, context jsonb'),
  ('expert_quote', 'expert_id uuid'),
  ('find_experts', 'skills text[], max_rate_cents bigint, currency text, window_from timestamp with time zone, window_to timestamp with time zone, duration_minutes integer, min_rating numeric, page_size integer, after_score numeric, after_id uuid'),
  ('service_role_abandon_booking', 'session_id uuid, reason text, context jsonb'),
  ('service_role_account_token', 'kind text, token_id uuid'),
  ('service_role_advance_sessions', 'batch_size integer, grace_minutes integer'),
  ('service_role_cancel_session', 'session_id uuid, actor_id uuid, reason text, refund_percent integer, refund_amount_cents bigint, refund_fee_cents bigint, refund_payout_cents bigint, context jsonb'),
  ('service_role_claim_outbox', 'email_batch integer, calls integer, lease_seconds integer, only_session uuid, only_ids uuid[]'),
  ('service_role_complete_outbox', 'results jsonb'),
  ('service_role_complete_password_reset', 'token_id uuid, password text, context jsonb'),
  ('service_role_confirm_email', 'token_id uuid, context jsonb'),
  ('service_role_fail_token_attempt', 'kind text, token_id uuid'),
  ('service_role_forget_webhook', 'webhook_id text'),
  ('service_role_hit_rate_limit', 'bucket text, max_hits integer, window_seconds integer'),
  ('service_role_issue_email_verification', 'user_id uuid, token_id uuid, token_hash text, context jsonb'),
  ('service_role_issue_password_reset', 'email text, token_id uuid, token_hash text, context jsonb'),
  ('service_role_payment_plan', 'session_id uuid'),
  ('service_role_payout_account', 'expert_id uuid'),
  ('service_role_receive_stripe_event', 'event jsonb, signed_at bigint'),
  ('service_role_record_stripe_objects', 'objects jsonb'),
  ('service_role_record_webhook', 'webhook_id text'),
  ('service_role_replay_outbox', 'outbox_id uuid');

-- Each function exists with exactly those argument types...
select has_function('public', c.name, (
         select array_agg(trim(substring(part from position(' ' in part) + 1)) order by ordinality)
         from unnest(string_to_array(c.arguments, ', ')) with ordinality as part),
       c.name || ' exists with the argument types the workers send')
from contract c order by c.name;

-- ...and names: PostgREST matches named arguments, so a renamed one is a missing function.
select is((select pg_get_function_identity_arguments(p.oid) from pg_proc p
           where p.pronamespace = 'public'::regnamespace and p.proname = c.name),
          c.arguments, c.name || '(' || c.arguments || ')')
from contract c order by c.name;

select * from finish();
rollback;
