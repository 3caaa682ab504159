-- Searches and their results, account tokens (hashes only), the reminder outbox and the audit log.

create table public.match_requests (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.profiles (id) on delete cascade,
  skills text[] not null check (cardinality(skills) between 1 and 10),
  max_rate_cents bigint check (max_rate_cents > 0),
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  window_from timestamptz,
  window_to timestamptz,
  duration_minutes integer check (duration_minutes between 60 and 480 and duration_minutes % 15 = 0),
  min_rating numeric(3, 2) check (min_rating between 0 and 5),
  result_count integer not null default 0 check (result_count >= 0),
  created_at timestamptz not null default now(),
  check (window_from is null or window_to > window_from)
);
create index match_requests_client_id_idx on public.match_requests (client_id, created_at);

create table public.match_results (
  request_id uuid not null references public.match_requests (id) on delete cascade,
  expert_id uuid not null references public.expert_profiles (id) on delete cascade,
  rank integer not null check (rank >= 1),
  score numeric(7, 4) not null,
  score_parts jsonb not null,
  primary key (request_id, rank),
  unique (request_id, expert_id)
);
create index match_results_expert_id_idx on public.match_results (expert_id);

-- Tokens: only the SHA-256 of the token is stored; nobody but service_role reads these tables.
create table public.email_verification_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  email text not null,
  token_hash bytea not null unique check (octet_length(token_hash) = 32),
  expires_at timestamptz not null,
  attempts smallint not null default 0 check (attempts between 0 and 5),
  consumed_at timestamptz,
  created_at timestamptz not null default now()
);
create index email_verification_tokens_user_id_idx on public.email_verification_tokens (user_id, created_at);

create table public.password_reset_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  token_hash bytea not null unique check (octet_length(token_hash) = 32),
  expires_at timestamptz not null,
  attempts smallint not null default 0 check (attempts between 0 and 5),
  consumed_at timestamptz,
  requested_ip inet,
  created_at timestamptz not null default now()
);
create index password_reset_tokens_user_id_idx on public.password_reset_tokens (user_id, created_at);

-- The reminder outbox: one row per session, recipient and kind, claimed with a lease.
create table public.reminders (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions (id) on delete cascade,
  recipient_id uuid not null references public.profiles (id) on delete cascade,
  kind text not null check (kind in ('24h', '1h')),
  due_at timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed', 'skipped')),
  attempts smallint not null default 0 check (attempts between 0 and 5),
  next_attempt_at timestamptz not null,
  lease_expires_at timestamptz,
  last_error text,
  skip_reason text,
  provider_message_id text,
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (session_id, recipient_id, kind),
  check ((status = 'sending') = (lease_expires_at is not null)),
  check ((status = 'sent') = (sent_at is not null and provider_message_id is not null)),
  check ((status = 'skipped') = (skip_reason is not null))
);
create index reminders_due_idx on public.reminders (next_attempt_at) where status = 'pending';
create index reminders_lease_idx on public.reminders (lease_expires_at) where status = 'sending';
create index reminders_recipient_id_idx on public.reminders (recipient_id);

create table public.audit_logs (
  id bigint generated always as identity primary key,
  actor_id uuid references auth.users (id) on delete set null,
  actor_role text not null check (actor_role in ('anon', 'authenticated', 'service_role', 'system')),
  action text not null check (action ~ '^[a-z_]+\.[a-z_]+$'),
  entity text not null,
  entity_id text,
  old_values jsonb,
  new_values jsonb,
  ip inet,
  user_agent text check (char_length(user_agent) <= 500),
  request_id text check (char_length(request_id) <= 64),
  created_at timestamptz not null default now()
);
comment on table public.audit_logs is 'Append-only record of every state change: who, what, when, from where. Read by admins only.';
create index audit_logs_actor_id_idx on public.audit_logs (actor_id, created_at);
create index audit_logs_entity_idx on public.audit_logs (entity, entity_id);

-- The one way rows reach the audit log, with the request context the workers pass along
-- (client address, user agent, request id).
create function private.audit(actor uuid, actor_role text, action text, entity text, entity_id text,
                              old_values jsonb, new_values jsonb, context jsonb) returns void
language sql security definer set search_path = '' as $$
  insert into public.audit_logs (actor_id, actor_role, action, entity, entity_id, old_values, new_values, ip, user_agent, request_id)
  values (actor, actor_role, action, entity, entity_id, old_values, new_values,
          nullif(context ->> 'ip', '')::inet, left(context ->> 'user_agent', 500), left(context ->> 'request_id', 64))
$$;

create trigger reminders_updated_at before update on public.reminders for each row execute function private.set_updated_at();

create function private.owns_match_request(request uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.match_requests where id = request and client_id = (select auth.uid()))
$$;
grant execute on function private.owns_match_request(uuid) to authenticated;

alter table public.match_requests enable row level security;
alter table public.match_requests force row level security;
alter table public.match_results enable row level security;
alter table public.match_results force row level security;
alter table public.email_verification_tokens enable row level security;
alter table public.email_verification_tokens force row level security;
alter table public.password_reset_tokens enable row level security;
alter table public.password_reset_tokens force row level security;
alter table public.reminders enable row level security;
alter table public.reminders force row level security;
alter table public.audit_logs enable row level security;
alter table public.audit_logs force row level security;

grant select on public.match_requests, public.match_results to authenticated;
create policy "Clients can see their own searches" on public.match_requests for select to authenticated
  using (client_id = (select auth.uid()));
create policy "Clients can see their own search results" on public.match_results for select to authenticated
  using ((select private.owns_match_request(request_id)));

-- Tokens: no grant and no policy for anon or authenticated; service_role works them.
revoke all on public.email_verification_tokens, public.password_reset_tokens from anon, authenticated;

grant select (id, session_id, recipient_id, kind, due_at, status, sent_at) on public.reminders to authenticated;
create policy "Recipients can see their reminders" on public.reminders for select to authenticated
  using (recipient_id = (select auth.uid()));

grant select on public.audit_logs to authenticated;
create policy "Admins can read the audit log" on public.audit_logs for select to authenticated
  using ((select private.is_admin()));
