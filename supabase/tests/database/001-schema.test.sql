-- Schema shape and the hosted-Supabase conditions every migration must meet.
begin;
\ir _helpers.psql
select plan(15);

select tables_are('public', array[
  'profiles', 'agency_profiles', 'agency_admins', 'expert_profiles', 'skill_categories', 'expert_skills', 'online_status',
  'availability_rules', 'availability_exceptions', 'sessions', 'session_status_history', 'payments', 'session_messages',
  'reviews', 'match_requests', 'match_results', 'email_verification_tokens', 'password_reset_tokens', 'outbox', 'audit_logs',
  'received_webhooks', 'rate_limit_events', 'commission_rates', 'webhook_endpoints', 'webhook_attempts', 'payout_accounts',
  'stripe_events'
], 'public has exactly the tables of the data model');

select is_empty($$
  select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind = 'r' and not (c.relrowsecurity and c.relforcerowsecurity)
$$, 'every public table has row level security enabled and forced');

select is_empty($$
  select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind = 'r'
    and not exists (select 1 from pg_policy p where p.polrelid = c.oid)
    and c.relname not in ('email_verification_tokens', 'password_reset_tokens', 'received_webhooks', 'rate_limit_events', 'webhook_endpoints', 'webhook_attempts',
                          'stripe_events')
$$, 'every public table has policies but the seven only service_role reaches (it bypasses RLS)');

select is_empty($$
  select p.polname from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and p.polname !~ '^[A-Z][a-z'']* [a-z'' ]+'
$$, 'every policy is named as a sentence');

select is_empty($$
  select p.polname from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public'
    and regexp_replace(coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
                       'SELECT auth\.uid\(\) AS uid', '', 'g') ~ 'auth\.uid\(\)'
$$, 'policies call auth.uid() wrapped in a select, evaluated once per statement');

select is_empty($$
  select c.conrelid::regclass || ' ' || a.attname
  from pg_constraint c
  join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
  join pg_namespace n on n.oid = (select relnamespace from pg_class where oid = c.conrelid)
  where c.contype = 'f' and n.nspname = 'public'
    and not exists (select 1 from pg_index i where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])
$$, 'every foreign key is the leading column of an index');

select is_empty($$
  select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('auth', 'storage', 'realtime') and pg_get_userbyid(c.relowner) <> 'supabase_admin'
  union all
  select n.nspname || '.' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('auth', 'storage', 'realtime') and pg_get_userbyid(p.proowner) <> 'supabase_admin'
$$, 'no table, index or function of ours lives in auth, storage or realtime');

select is_empty($$
  select e.extname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
  where e.extname <> 'plpgsql' and n.nspname <> 'extensions'
$$, 'every extension lives in the extensions schema');

select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('public', 'private') and p.prosecdef
    and not coalesce(p.proconfig @> array['search_path=""'], false)
$$, 'every SECURITY DEFINER function pins an empty search_path');

select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('public', 'private') and has_function_privilege('public', p.oid, 'execute')
$$, 'no function of ours is executable by PUBLIC');

select ok(not rolsuper, 'migrations run as postgres, which is not a superuser') from pg_roles where rolname = current_user;

select is_empty($$
  select table_name || ' ' || privilege_type from information_schema.role_table_grants
  where table_schema = 'public' and grantee = 'anon' and privilege_type <> 'SELECT'
$$, 'anon can only read, never write, any table');

select is_empty($$
  select table_name from information_schema.role_table_grants
  where table_schema = 'public' and grantee in ('anon', 'authenticated')
    and table_name in ('email_verification_tokens', 'password_reset_tokens', 'received_webhooks', 'rate_limit_events', 'webhook_endpoints', 'webhook_attempts',
                       'stripe_events')
$$, 'anon and authenticated have no privilege at all on token, webhook and rate-limit tables');

select is_empty($$
  select table_name || '.' || column_name from information_schema.column_privileges
  where table_schema = 'public' and grantee in ('anon', 'authenticated') and privilege_type = 'UPDATE'
    and column_name in ('id', 'role', 'rating_avg', 'rating_count', 'agency_id', 'amount_cents', 'platform_fee_cents',
                        'expert_payout_cents', 'hourly_rate_cents', 'refund_amount_cents', 'refund_percent', 'client_id', 'expert_id',
                        'accepts_payments', 'payment_intent_id', 'payment_due_at', 'answer_by', 'refund_platform_fee_cents',
                        'refund_expert_payout_cents', 'payment_problem', 'disputed_at', 'charges_enabled', 'payouts_enabled',
                        'stripe_account_id')
    and not (table_name = 'expert_profiles' and column_name = 'hourly_rate_cents')
$$, 'no user can update identities, roles, ratings, prices, refunds or payment facts (experts set only their own rate)');

select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname = 'public' and p.proname like 'service_role\_%'
    and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))
$$, 'service_role_ functions are executable by the service role alone');

select * from finish();
rollback;
