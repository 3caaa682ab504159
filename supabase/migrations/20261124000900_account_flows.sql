-- Account flows: webhook replay protection, rate limits, email verification and password reset.
-- Every function here is for the service role only: the workers verify who is asking (a hook
-- signature, a user's JWT, possession of a token) before calling them.

create table public.webhook_deliveries (
  id text primary key check (char_length(id) between 1 and 200),
  received_at timestamptz not null default now()
);
comment on table public.webhook_deliveries is 'Standard Webhooks ids already processed, so that a replayed delivery is refused.';
create index webhook_deliveries_received_at_idx on public.webhook_deliveries (received_at);

create table public.rate_limit_events (
  id bigint generated always as identity primary key,
  bucket text not null check (char_length(bucket) <= 300),
  created_at timestamptz not null default now()
);
comment on table public.rate_limit_events is 'One row per counted request, by bucket (for example a hashed email or a client address).';
create index rate_limit_events_bucket_idx on public.rate_limit_events (bucket, created_at);

alter table public.webhook_deliveries enable row level security;
alter table public.webhook_deliveries force row level security;
alter table public.rate_limit_events enable row level security;
alter table public.rate_limit_events force row level security;
-- Like the token tables: no grant and no policy for anon or authenticated.
revoke all on public.webhook_deliveries, public.rate_limit_events from anon, authenticated;

-- Records a webhook id; false when it was already seen (a replay). Old ids are forgotten once
-- no signature could still be fresh for them.
create function public.service_role_record_webhook(webhook_id text) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  inserted int;
begin
  delete from public.webhook_deliveries where received_at < private.now() - interval '1 day';
  insert into public.webhook_deliveries (id, received_at) values (webhook_id, private.now()) on conflict (id) do nothing;
  get diagnostics inserted = row_count;
  return inserted = 1;
end
$$;
create function public.service_role_forget_webhook(webhook_id text) returns void
language sql security definer set search_path = '' as $$
  delete from public.webhook_deliveries where id = webhook_id
$$;

-- Counts a request in `bucket`: 0 when allowed (and counted), otherwise the seconds to wait.
create function public.service_role_hit_rate_limit(bucket text, max_hits int, window_seconds int) returns int
language plpgsql security definer set search_path = '' as $$
declare
  hits int;
  oldest timestamptz;
begin
  -- One bucket at a time, so that concurrent requests cannot all slip under the limit.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(bucket, 0));
  select count(*), min(created_at) into hits, oldest from public.rate_limit_events e
  where e.bucket = service_role_hit_rate_limit.bucket and e.created_at > private.now() - make_interval(secs => window_seconds);
  if hits >= max_hits then
    return greatest(1, ceil(extract(epoch from oldest + make_interval(secs => window_seconds) - private.now())))::int;
  end if;
  insert into public.rate_limit_events (bucket, created_at) values (bucket, private.now());
  return 0;
end
$$;

-- Email verification: at most 3 requests an hour per user; the token lives 24 hours.
create function public.service_role_issue_email_verification(user_id uuid, token_id uuid, token_hash text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  account auth.users%rowtype;
  recent int;
  expires timestamptz := private.now() + interval '24 hours';
begin
  select * into account from auth.users u where u.id = user_id for update;
  if not found then
    raise exception using errcode = 'PT404', hint = 'not_found', message = 'No such user.';
  end if;
  if account.email_confirmed_at is not null then
    raise exception using errcode = 'PT409', hint = 'already_confirmed', message = 'This email address is already confirmed.';
  end if;
  select count(*) into recent from public.email_verification_tokens t
  where t.user_id = account.id and t.created_at > private.now() - interval '1 hour';
  if recent >= 3 then
    raise exception using errcode = 'PT429', hint = 'rate_limited', message = 'At most 3 verification emails an hour: try again later.',
      detail = pg_catalog.jsonb_build_object('retry_after', 3600)::text;
  end if;
  insert into public.email_verification_tokens (id, user_id, email, token_hash, expires_at, created_at)
  values (token_id, account.id, account.email, pg_catalog.decode(token_hash, 'hex'), expires, private.now());
  perform private.audit(account.id, 'authenticated', 'email_verification.requested', 'email_verification_tokens', token_id::text, null, null, context);
  return pg_catalog.jsonb_build_object('email', account.email, 'name', (select full_name from public.profiles where id = account.id), 'expires_at', expires);
end
$$;

-- A token's stored state, for the worker to compare the presented secret in constant time.
create function public.service_role_account_token(kind text, token_id uuid) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
begin
  if kind = 'email_verification' then
    return (select pg_catalog.jsonb_build_object('token_hash', pg_catalog.encode(t.token_hash, 'hex'), 'expires_at', t.expires_at,
              'attempts', t.attempts, 'consumed', t.consumed_at is not null, 'email', t.email)
            from public.email_verification_tokens t where t.id = token_id);
  elsif kind = 'password_reset' then
    return (select pg_catalog.jsonb_build_object('token_hash', pg_catalog.encode(t.token_hash, 'hex'), 'expires_at', t.expires_at,
              'attempts', t.attempts, 'consumed', t.consumed_at is not null, 'email', u.email)
            from public.password_reset_tokens t join auth.users u on u.id = t.user_id where t.id = token_id);
  end if;
  raise exception using errcode = 'PT400', hint = 'invalid_kind', message = 'Unknown token kind.';
end
$$;

-- Counts a failed attempt against a token (never past 5).
create function public.service_role_fail_token_attempt(kind text, token_id uuid) returns int
language plpgsql security definer set search_path = '' as $$
declare
  now_attempts int;
begin
  if kind = 'email_verification' then
    update public.email_verification_tokens set attempts = least(attempts + 1, 5) where id = token_id returning attempts into now_attempts;
  elsif kind = 'password_reset' then
    update public.password_reset_tokens set attempts = least(attempts + 1, 5) where id = token_id returning attempts into now_attempts;
  end if;
  return now_attempts;
end
$$;

-- Consumes a verified email token and confirms the address in auth.users.
create function public.service_role_confirm_email(token_id uuid, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  token public.email_verification_tokens%rowtype;
begin
  update public.email_verification_tokens t set consumed_at = private.now()
  where t.id = token_id and t.consumed_at is null and t.attempts < 5 and t.expires_at > private.now()
  returning * into token;
  if not found then
    raise exception using errcode = 'PT409', hint = 'token_used', message = 'This link was already used or is no longer valid.';
  end if;
  update auth.users u set email_confirmed_at = coalesce(u.email_confirmed_at, private.now()), updated_at = private.now()
  where u.id = token.user_id and u.email = token.email;
  if not found then
    raise exception using errcode = 'PT409', hint = 'email_changed', message = 'The account''s email address changed since this link was sent.';
  end if;
  perform private.audit(token.user_id, 'anon', 'email.confirmed', 'auth.users', token.user_id::text, null, pg_catalog.jsonb_build_object('email', token.email), context);
  return pg_catalog.jsonb_build_object('user_id', token.user_id, 'confirmed', true);
end
$$;

-- Password reset: a 1-hour token for an existing account, null (and nothing written) otherwise.
create function public.service_role_issue_password_reset(email text, token_id uuid, token_hash text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  account auth.users%rowtype;
  expires timestamptz := private.now() + interval '1 hour';
begin
  select * into account from auth.users u where u.email = service_role_issue_password_reset.email and u.deleted_at is null;
  if not found then
    return null;
  end if;
  insert into public.password_reset_tokens (id, user_id, token_hash, expires_at, requested_ip, created_at)
  values (token_id, account.id, pg_catalog.decode(token_hash, 'hex'), expires, nullif(context ->> 'ip', '')::inet, private.now());
  perform private.audit(account.id, 'anon', 'password_reset.requested', 'password_reset_tokens', token_id::text, null, null, context);
  return pg_catalog.jsonb_build_object('email', account.email, 'name', (select full_name from public.profiles where id = account.id), 'expires_at', expires);
end
$$;

-- Sets the new password as a bcrypt hash (the form Supabase Auth verifies at sign-in), consumes
-- this and every other open reset token of the user, and signs the user out everywhere.
create function public.service_role_complete_password_reset(token_id uuid, password text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  token public.password_reset_tokens%rowtype;
  account auth.users%rowtype;
  revoked_count int;
begin
  select * into token from public.password_reset_tokens t
  where t.id = token_id and t.consumed_at is null and t.attempts < 5 and t.expires_at > private.now()
  for update;
  if not found then
    raise exception using errcode = 'PT409', hint = 'token_used', message = 'This link was already used or is no longer valid.';
  end if;
  update auth.users u set encrypted_password = extensions.crypt(password, extensions.gen_salt('bf', 10)), updated_at = private.now()
  where u.id = token.user_id returning * into account;
  update public.password_reset_tokens set consumed_at = private.now() where user_id = token.user_id and consumed_at is null;
  update auth.refresh_tokens set revoked = true, updated_at = private.now() where user_id = token.user_id::text and not coalesce(revoked, false);
  get diagnostics revoked_count = row_count;
  delete from auth.sessions where user_id = token.user_id;
  perform private.audit(token.user_id, 'anon', 'password.reset', 'auth.users', token.user_id::text, null,
                        pg_catalog.jsonb_build_object('refresh_tokens_revoked', revoked_count), context);
  return pg_catalog.jsonb_build_object('email', account.email, 'name', (select full_name from public.profiles where id = account.id));
end
$$;

-- An audit row for system events the workers observe (an email that could not be sent).
create function public.service_role_audit(action text, entity text, entity_id text, new_values jsonb default null, context jsonb default '{}') returns void
language sql security definer set search_path = '' as $$
  select private.audit(null, 'system', action, entity, entity_id, null, new_values, context)
$$;

grant execute on function public.service_role_audit(text, text, text, jsonb, jsonb), public.service_role_record_webhook(text), public.service_role_forget_webhook(text),
  public.service_role_hit_rate_limit(text, int, int), public.service_role_issue_email_verification(uuid, uuid, text, jsonb),
  public.service_role_account_token(text, uuid), public.service_role_fail_token_attempt(text, uuid),
  public.service_role_confirm_email(uuid, jsonb), public.service_role_issue_password_reset(text, uuid, text, jsonb),
  public.service_role_complete_password_reset(uuid, text, jsonb)
  to service_role;
