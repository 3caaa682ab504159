-- The database holds the line alone: whatever a signed-in client can do by calling PostgREST
-- directly, with its own JWT and arguments of its choosing, is something the functions would
-- also let it do. Prices, commissions, room links, audit facts, presence times and status
-- changes come from the server, never from the caller.

-- Time zones: the rule stays "an IANA name PostgreSQL knows", read from a table filled once
-- here instead of pg_timezone_names, which reads every zone file on each call (about 40 ms).
-- After a PostgreSQL upgrade brings new zones, run private.refresh_timezone_names().
create table private.timezone_names (name text primary key);
comment on table private.timezone_names is 'The zone names of pg_timezone_names, copied so that checking one costs an index lookup.';

create function private.refresh_timezone_names() returns void
language sql security definer set search_path = '' as $$
  insert into private.timezone_names (name) select name from pg_catalog.pg_timezone_names on conflict (name) do nothing
$$;
comment on function private.refresh_timezone_names() is 'Adds the zones the server knows to private.timezone_names (run after a PostgreSQL upgrade).';
select private.refresh_timezone_names();

create or replace function private.is_valid_timezone(zone text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.timezone_names where name = zone)
$$;

-- Platform settings only an operator changes (as postgres, in SQL): the default commission and
-- the video provider's room domain, from which every session's room link is derived.
create table private.platform_settings (
  singleton boolean primary key default true check (singleton),
  default_commission_bps integer not null default 1000 check (default_commission_bps between 0 and 10000),
  video_room_base_url text not null default 'https://call-an-expert.daily.co'
    check (video_room_base_url ~ '^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
  updated_at timestamptz not null default now()
);
comment on table private.platform_settings is 'One row: the platform default commission (basis points) and the video rooms'' base URL (https://<domain>.daily.co).';
insert into private.platform_settings default values;
create trigger platform_settings_updated_at before update on private.platform_settings for each row execute function private.set_updated_at();

-- Contract commissions: per expert, or per agency for all its experts. Written by the service
-- role alone; an expert and their agency's admins can read theirs.
create table public.commission_rates (
  id uuid primary key default gen_random_uuid(),
  expert_id uuid unique references public.expert_profiles (id) on delete cascade,
  agency_id uuid unique references public.agency_profiles (id) on delete cascade,
  commission_bps integer not null check (commission_bps between 0 and 10000),
  note text not null default '' check (char_length(note) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint commission_rates_one_party check ((expert_id is null) <> (agency_id is null))
);
comment on table public.commission_rates is 'Contract commission rates (basis points) for an expert or an agency; the platform default applies otherwise. Service role writes only.';
create trigger commission_rates_updated_at before update on public.commission_rates for each row execute function private.set_updated_at();
alter table public.commission_rates enable row level security;
alter table public.commission_rates force row level security;
grant select on public.commission_rates to authenticated;
create policy "Experts can see their own commission rate" on public.commission_rates for select to authenticated
  using (expert_id = (select auth.uid()));
create policy "Agency admins can see their agency's commission rate" on public.commission_rates for select to authenticated
  using ((select private.administers_agency(agency_id)));

-- The commission a booking with `expert` is priced at: the expert's contract, else their
-- agency's, else the platform default.
create function private.commission_bps_for(expert uuid) returns integer
language sql stable security definer set search_path = '' as $$
  select coalesce(
    (select c.commission_bps from public.commission_rates c where c.expert_id = expert),
    (select c.commission_bps from public.commission_rates c join public.expert_profiles e on e.agency_id = c.agency_id where e.id = expert),
    (select s.default_commission_bps from private.platform_settings s))
$$;
comment on function private.commission_bps_for(uuid) is 'Server-side commission for an expert: their contract, their agency''s, or the platform default.';

-- A session's room is the platform's: named after the session, on the configured domain.
create function private.assign_room() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  new.room_name := 'cae-' || new.id::text;
  new.room_url := (select s.video_room_base_url from private.platform_settings s) || '/' || new.room_name;
  return new;
end
$$;
comment on function private.assign_room() is 'Derives a session''s room name from its id and its URL from the platform''s video domain, whatever a writer sent.';
update public.sessions s set room_name = 'cae-' || s.id::text,
       room_url = (select p.video_room_base_url from private.platform_settings p) || '/cae-' || s.id::text
 where s.room_name is distinct from 'cae-' || s.id::text or s.room_url is null;
-- Unique by construction now that the name is the id's: the separate unique key goes.
alter table public.sessions drop constraint sessions_room_name_key;
alter table public.sessions alter column room_name set not null, alter column room_url set not null;
create trigger sessions_assign_room before insert or update of room_name, room_url on public.sessions
  for each row execute function private.assign_room();

-- Sessions start on a whole minute (the worker's rule, now also the table's).
alter table public.sessions add constraint sessions_start_on_a_minute check (starts_at = date_trunc('minute', starts_at));

-- Audit facts are what the server knows: the actor and time, and the request as PostgREST
-- received it (request.headers). What a caller passes along (the end user's address as a
-- worker saw it, say) is kept apart, as reported.
alter table public.audit_logs add column reported_context jsonb
  constraint audit_logs_reported_context_is_small check (jsonb_typeof(reported_context) = 'object' and octet_length(reported_context::text) <= 2000);
comment on column public.audit_logs.ip is 'The client address in the request PostgREST received (cf-connecting-ip or x-real-ip, set by the gateway), never a caller''s claim.';
comment on column public.audit_logs.user_agent is 'The user agent of the request PostgREST received.';
comment on column public.audit_logs.request_id is 'The x-request-id of the request PostgREST received (the workers send theirs).';
comment on column public.audit_logs.reported_context is 'What the caller reported about its own client (ip, user_agent, request_id): a claim, not a fact.';

create function private.inet_or_null(address text) returns inet
language plpgsql immutable set search_path = '' as $$
begin
  return address::inet;
exception when others then
  return null;
end
$$;

create or replace function private.audit(actor uuid, actor_role text, action text, entity text, entity_id text,
                                         old_values jsonb, new_values jsonb, context jsonb) returns void
language sql security definer set search_path = '' as $$
  with request as (select coalesce(nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb, '{}') as headers),
  reported as (
    select nullif(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
             'ip', left(context ->> 'ip', 64), 'user_agent', left(context ->> 'user_agent', 500), 'request_id', left(context ->> 'request_id', 64))), '{}') as claims
  )
  insert into public.audit_logs (actor_id, actor_role, action, entity, entity_id, old_values, new_values, ip, user_agent, request_id, reported_context)
  select actor, actor_role, action, entity, entity_id, old_values, new_values,
         private.inet_or_null(coalesce(r.headers ->> 'cf-connecting-ip', r.headers ->> 'x-real-ip')),
         left(r.headers ->> 'user-agent', 500), left(r.headers ->> 'x-request-id', 64), c.claims
  from request r, reported c
$$;
comment on function private.audit(uuid, text, text, text, text, jsonb, jsonb, jsonb) is 'The one way rows reach the audit log: facts from the request PostgREST received, the caller''s context as reported.';

-- Presence times are the server's: a user reports only whether they are online.
revoke insert (last_seen_at), update (last_seen_at) on public.online_status from authenticated;
-- An upsert (supabase-js .upsert(), PostgREST merge-duplicates) sets every column it names,
-- the key included; the policy keeps the key the user's own.
grant update (profile_id) on public.online_status to authenticated;
create function private.stamp_presence() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.last_seen_at := private.now();
  return new;
end
$$;
comment on function private.stamp_presence() is 'Sets last_seen_at from the database clock on every presence report.';
create trigger online_status_stamp before insert or update on public.online_status for each row execute function private.stamp_presence();

-- The status machine respects time, for every writer:
--   requested -> confirmed | declined   only before the start
--   requested -> expired                at or after the start (the system's move)
--   -> cancelled                        only before the start (through cancel-session)
--   confirmed -> in_progress            from 15 minutes before the start until the end
--   in_progress -> completed            only after the start
-- A user talking to PostgREST directly acts only as the session's expert, and neither cancels
-- (the refund is recorded by cancel-session) nor expires (the dispatcher does).
alter table public.sessions drop constraint sessions_status_check;
alter table public.sessions add constraint sessions_status_check
  check (status in ('requested', 'confirmed', 'declined', 'cancelled', 'expired', 'in_progress', 'completed'));

create or replace function private.enforce_session_transition() returns trigger
language plpgsql set search_path = '' as $$
declare
  actor uuid := (select auth.uid());
  now timestamptz := private.now();
begin
  if new.status = old.status then
    return new;
  end if;
  if (old.status, new.status) not in (
    ('requested', 'confirmed'), ('requested', 'declined'), ('requested', 'cancelled'), ('requested', 'expired'),
    ('confirmed', 'in_progress'), ('confirmed', 'cancelled'), ('in_progress', 'completed')
  ) then
    raise exception using errcode = 'PT409', hint = 'invalid_transition',
      message = pg_catalog.format('A %s session cannot become %s.', replace(old.status, '_', ' '), replace(new.status, '_', ' '));
  end if;
  if current_user in ('authenticated', 'anon') then
    if actor is distinct from old.expert_id then
      raise exception using errcode = '42501', hint = 'not_the_expert',
        message = 'Only the session''s expert can change its status directly.';
    end if;
    if new.status = 'cancelled' then
      raise exception using errcode = '42501', hint = 'use_cancel_session',
        message = 'Cancel a session through cancel-session, which records the refund.';
    end if;
    if new.status = 'expired' then
      raise exception using errcode = '42501', hint = 'system_transition',
        message = 'Only the platform expires a request.';
    end if;
  end if;
  if new.status in ('confirmed', 'declined') and now >= old.starts_at then
    raise exception using errcode = 'PT409', hint = 'too_late_to_answer',
      message = 'A request can be confirmed or declined only before its start.';
  end if;
  if new.status = 'cancelled' and now >= old.starts_at then
    raise exception using errcode = 'PT409', hint = 'already_started', message = 'A session cannot be cancelled once it has started.';
  end if;
  if new.status = 'expired' and now < old.starts_at then
    raise exception using errcode = 'PT409', hint = 'not_expired', message = 'A request expires only once its start has passed unanswered.';
  end if;
  if new.status = 'in_progress' and now < old.starts_at - interval '15 minutes' then
    raise exception using errcode = 'PT409', hint = 'too_early_to_start',
      message = 'A session can be started at most 15 minutes before its start time.';
  end if;
  if new.status = 'in_progress' and now >= old.ends_at then
    raise exception using errcode = 'PT409', hint = 'session_over', message = 'A session cannot be started after its end.';
  end if;
  if new.status = 'completed' and now < old.starts_at then
    raise exception using errcode = 'PT409', hint = 'not_started', message = 'A session can be completed only after its start.';
  end if;
  return new;
end
$$;
comment on function private.enforce_session_transition() is 'The status machine with its time rules; direct API callers only as the expert, never cancelling or expiring.';

-- The charge follows the request: captured on confirmation, dropped when the request ends
-- without a session.
create or replace function private.follow_charge() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if old.status = 'requested' and new.status = 'confirmed' then
    update public.payments set status = 'succeeded' where session_id = new.id and kind = 'charge' and status = 'pending';
  elsif old.status = 'requested' and new.status in ('declined', 'cancelled', 'expired') then
    update public.payments set status = 'cancelled' where session_id = new.id and kind = 'charge' and status = 'pending';
  end if;
  return null;
end
$$;

-- An audit row for a transition the system made on its own.
create function private.audit_system(action text, session uuid, from_status text, to_status text) returns void
language sql security definer set search_path = '' as $$
  select private.audit(null, 'system', action, 'sessions', session::text,
                       pg_catalog.jsonb_build_object('status', from_status), pg_catalog.jsonb_build_object('status', to_status), null)
$$;

-- The system's transitions, run by the dispatcher: requests unanswered at their start expire,
-- and sessions in progress past their end plus `grace_minutes` are completed. Each is audited.
create function private.advance_sessions(batch_size int, grace_minutes int) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  now timestamptz := private.now();
  expired uuid[];
  completed uuid[];
begin
  if batch_size not between 1 and 1000 or grace_minutes not between 0 and 1440 then
    raise exception using errcode = 'PT400', hint = 'invalid_batch', message = 'Advance 1 to 1000 sessions with a grace of 0 to 1440 minutes.';
  end if;
  with due as (
    select s.id from public.sessions s
    where s.status = 'requested' and s.starts_at <= now
    order by s.starts_at limit batch_size for update skip locked
  ),
  moved as (update public.sessions s set status = 'expired' from due where s.id = due.id returning s.id)
  select coalesce(pg_catalog.array_agg(id), '{}') into expired from moved;
  perform private.audit_system('session.expired', id, 'requested', 'expired') from unnest(expired) as id;

  -- ends_at <= x implies starts_at <= x: the second condition lets the (status, starts_at) index serve.
  with due as (
    select s.id from public.sessions s
    where s.status = 'in_progress' and s.starts_at <= now - make_interval(mins => grace_minutes)
      and s.ends_at <= now - make_interval(mins => grace_minutes)
    order by s.starts_at limit batch_size for update skip locked
  ),
  moved as (update public.sessions s set status = 'completed' from due where s.id = due.id returning s.id)
  select coalesce(pg_catalog.array_agg(id), '{}') into completed from moved;
  perform private.audit_system('session.completed', id, 'in_progress', 'completed') from unnest(completed) as id;

  return pg_catalog.jsonb_build_object('expired', cardinality(expired), 'completed', cardinality(completed));
end
$$;
comment on function private.advance_sessions(int, int) is 'Expires unanswered requests past their start and completes sessions past their end plus a grace period.';

create function public.service_role_advance_sessions(batch_size int default 200, grace_minutes int default 30) returns jsonb
language sql security definer set search_path = '' as $$
  select private.advance_sessions(batch_size, grace_minutes)
$$;
comment on function public.service_role_advance_sessions(int, int) is 'The dispatcher''s tick: the system''s own transitions (see private.advance_sessions).';
grant execute on function public.service_role_advance_sessions(int, int) to service_role;

-- What create-session prices with: an active expert's current rate and the commission the
-- server applies; nothing for an inactive or unknown expert.
create or replace function public.expert_quote(expert_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object('expert_id', e.id, 'hourly_rate_cents', e.hourly_rate_cents, 'currency', e.currency,
                                       'commission_bps', private.commission_bps_for(e.id), 'instant_booking', e.instant_booking)
  from public.expert_profiles e where e.id = expert_quote.expert_id and e.is_active
$$;

-- Books a session for the calling user in one transaction. The price is the database's own:
-- the expert's rate and the server-side commission give the amount, fee and payout, and the
-- caller's figures (the quote it showed) must equal them, or the answer is price_changed with
-- the current price. The room is derived from the session id; the audit row states what the
-- server knows and keeps the caller's context as reported.
drop function public.book_session(uuid, timestamptz, int, bigint, bigint, bigint, bigint, int, text, text, text, text, uuid, jsonb);
create function public.book_session(
  expert_id uuid, starts_at timestamptz, duration_minutes int, hourly_rate_cents bigint, commission_bps int,
  amount_cents bigint, platform_fee_cents bigint, expert_payout_cents bigint, currency text,
  notes text default '', context jsonb default '{}'
) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  now timestamptz := private.now();
  expert public.expert_profiles%rowtype;
  ends timestamptz := starts_at + make_interval(mins => duration_minutes);
  bps int;
  amount bigint;
  fee bigint;
  booked public.sessions%rowtype;
begin
  if caller is null then
    raise exception using errcode = 'PT401', hint = 'unauthorized', message = 'Sign in to book a session.';
  end if;
  if duration_minutes is null or duration_minutes not between 60 and 480 or duration_minutes % 15 <> 0 then
    raise exception using errcode = 'PT400', hint = 'invalid_duration', message = 'A session lasts 60 to 480 minutes, in steps of 15.';
  end if;
  if starts_at is null or starts_at <> pg_catalog.date_trunc('minute', starts_at) then
    raise exception using errcode = 'PT400', hint = 'invalid_start', message = 'A session starts on a whole minute.';
  end if;
  if char_length(coalesce(notes, '')) > 2000 then
    raise exception using errcode = 'PT400', hint = 'invalid_notes', message = 'Notes are at most 2000 characters.';
  end if;
  select * into expert from public.expert_profiles e where e.id = book_session.expert_id and e.is_active;
  if not found then
    raise exception using errcode = 'PT404', hint = 'expert_not_found', message = 'No such expert.';
  end if;
  if expert.id = caller then
    raise exception using errcode = 'PT409', hint = 'self_booking', message = 'An expert cannot book a session with themselves.';
  end if;
  if starts_at < now + interval '1 hour' then
    raise exception using errcode = 'PT409', hint = 'too_soon', message = 'A session must be booked at least 60 minutes ahead.';
  end if;
  if starts_at > now + interval '90 days' then
    raise exception using errcode = 'PT409', hint = 'too_far', message = 'A session can be booked at most 90 days ahead.';
  end if;
  bps := private.commission_bps_for(expert.id);
  amount := (expert.hourly_rate_cents * duration_minutes + 30) / 60;
  fee := (amount * bps + 5000) / 10000;
  if (expert.hourly_rate_cents, bps, amount, fee, amount - fee, expert.currency::text)
     is distinct from (book_session.hourly_rate_cents, book_session.commission_bps, book_session.amount_cents,
                       book_session.platform_fee_cents, book_session.expert_payout_cents, book_session.currency) then
    raise exception using errcode = 'PT409', hint = 'price_changed', message = 'The price changed since the quote.',
      detail = pg_catalog.jsonb_build_object('price', pg_catalog.jsonb_build_object(
        'hourly_rate_cents', expert.hourly_rate_cents, 'duration_minutes', duration_minutes, 'commission_bps', bps,
        'amount_cents', amount, 'platform_fee_cents', fee, 'expert_payout_cents', amount - fee, 'currency', expert.currency))::text;
  end if;
  if not private.is_within_availability(expert.id, starts_at, ends) then
    raise exception using errcode = 'PT409', hint = 'outside_availability', message = 'The expert is not available at that time.';
  end if;
  if exists (select 1 from public.sessions s where s.expert_id = expert.id and s.status in ('requested', 'confirmed', 'in_progress')
             and tstzrange(s.starts_at, s.ends_at) && tstzrange(book_session.starts_at, ends)) then
    raise exception using errcode = 'PT409', hint = 'slot_taken', message = 'That time is already booked with this expert.';
  end if;
  if exists (select 1 from public.sessions s where s.client_id = caller and s.status in ('requested', 'confirmed', 'in_progress')
             and tstzrange(s.starts_at, s.ends_at) && tstzrange(book_session.starts_at, ends)) then
    raise exception using errcode = 'PT409', hint = 'client_busy', message = 'You already have a session at that time.';
  end if;

  begin
    insert into public.sessions (id, client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents,
                                 platform_fee_cents, expert_payout_cents, commission_bps, currency, notes)
    values (gen_random_uuid(), caller, expert.id, starts_at, ends, duration_minutes,
            case when expert.instant_booking then 'confirmed' else 'requested' end,
            expert.hourly_rate_cents, amount, fee, amount - fee, bps, expert.currency, coalesce(notes, ''))
    returning * into booked;
  exception
    when exclusion_violation or deadlock_detected or serialization_failure then
      -- A concurrent booking won the race for this time (two racing inserts on an exclusion
      -- constraint can also deadlock: the loser is told the same).
      raise exception using errcode = 'PT409', hint = 'slot_taken', message = 'That time was just booked by someone else.';
  end;

  insert into public.payments (session_id, kind, amount_cents, platform_fee_cents, expert_payout_cents, currency, status)
  values (booked.id, 'charge', booked.amount_cents, booked.platform_fee_cents, booked.expert_payout_cents, booked.currency,
          case when booked.status = 'confirmed' then 'succeeded' else 'pending' end);

  perform private.audit(caller, 'authenticated', 'session.created', 'sessions', booked.id::text, null, pg_catalog.to_jsonb(booked), context);

  return pg_catalog.to_jsonb(booked);
end
$$;
comment on function public.book_session is 'Books a session for the caller atomically at the database''s own price; raises PT409 with a hint naming the conflict.';
grant execute on function public.book_session to authenticated;

-- The refund a cancellation may carry, by the policy of SPEC.md, with the database's clock:
-- by the expert 100%; by the client strictly more than 24 hours ahead 100%, later 50% rounded
-- half up in the client's favour; nothing for a charge never captured. Split between fee and
-- payout in proportion, the fee part rounded half up.
create function private.allowed_refund(session public.sessions, actor uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  with charge as (
    select coalesce(sum(p.amount_cents) filter (where p.kind = 'charge' and p.status = 'succeeded'), 0)
           - coalesce(sum(p.amount_cents) filter (where p.kind = 'refund' and p.status <> 'failed'), 0) as refundable
    from public.payments p where p.session_id = session.id
  ),
  policy as (
    select c.refundable,
           case when c.refundable = 0 then 0
                when actor = session.expert_id then 100
                when session.starts_at - private.now() > interval '24 hours' then 100
                else 50 end as percent
    from charge c
  ),
  amount as (
    select p.percent, p.refundable,
           case p.percent when 100 then session.amount_cents when 50 then (session.amount_cents + 1) / 2 else 0 end as cents
    from policy p
  )
  select pg_catalog.jsonb_build_object(
    'percent', a.percent, 'amount_cents', a.cents, 'refundable_cents', a.refundable,
    'platform_fee_cents', (session.platform_fee_cents * a.cents * 2 + session.amount_cents) / (session.amount_cents * 2),
    'expert_payout_cents', a.cents - (session.platform_fee_cents * a.cents * 2 + session.amount_cents) / (session.amount_cents * 2))
  from amount a
$$;
comment on function private.allowed_refund(public.sessions, uuid) is 'The refund the cancellation policy gives a participant now, split between fee and payout.';

-- Cancels a session for one of its participants. Called by cancel-session with the service
-- role after it verified the caller; the refund it computed with the shared crate must be the
-- one the policy allows now (defence in depth), and never more than what was captured.
-- Idempotent: cancelling again returns the first answer and writes nothing.
create or replace function public.service_role_cancel_session(
  session_id uuid, actor_id uuid, reason text, refund_percent int, refund_amount_cents bigint,
  refund_fee_cents bigint, refund_payout_cents bigint, context jsonb default '{}'
) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  session public.sessions%rowtype;
  cancelled public.sessions%rowtype;
  allowed jsonb;
begin
  select * into session from public.sessions s where s.id = service_role_cancel_session.session_id for update;
  if not found or actor_id not in (session.client_id, session.expert_id) then
    raise exception using errcode = 'PT404', hint = 'not_found', message = 'No such session.';
  end if;
  if session.status = 'cancelled' then
    return pg_catalog.jsonb_build_object('session', pg_catalog.to_jsonb(session), 'newly_cancelled', false);
  end if;
  if session.status not in ('requested', 'confirmed') then
    raise exception using errcode = 'PT409', hint = 'not_cancellable',
      message = pg_catalog.format('A %s session cannot be cancelled.', replace(session.status, '_', ' '));
  end if;
  if private.now() >= session.starts_at then
    raise exception using errcode = 'PT409', hint = 'already_started', message = 'A session cannot be cancelled once it has started.';
  end if;
  allowed := private.allowed_refund(session, actor_id);
  if (refund_percent, refund_amount_cents, refund_fee_cents, refund_payout_cents)
     is distinct from ((allowed ->> 'percent')::int, (allowed ->> 'amount_cents')::bigint,
                       (allowed ->> 'platform_fee_cents')::bigint, (allowed ->> 'expert_payout_cents')::bigint)
     or refund_amount_cents > (allowed ->> 'refundable_cents')::bigint then
    raise exception using errcode = 'PT409', hint = 'refund_mismatch',
      message = 'The refund is not the one the cancellation policy gives now; try again.',
      detail = pg_catalog.jsonb_build_object('allowed', allowed - 'refundable_cents')::text;
  end if;

  update public.sessions s
     set status = 'cancelled', cancelled_by = actor_id, cancelled_at = private.now(), cancellation_reason = nullif(reason, ''),
         refund_amount_cents = service_role_cancel_session.refund_amount_cents, refund_percent = service_role_cancel_session.refund_percent
   where s.id = session.id
  returning * into cancelled;

  if refund_amount_cents > 0 then
    insert into public.payments (session_id, kind, amount_cents, platform_fee_cents, expert_payout_cents, currency, status)
    values (session.id, 'refund', refund_amount_cents, refund_fee_cents, refund_payout_cents, session.currency, 'pending');
  end if;

  perform private.audit(actor_id, 'authenticated', 'session.cancelled', 'sessions', session.id::text, pg_catalog.to_jsonb(session), pg_catalog.to_jsonb(cancelled), context);

  return pg_catalog.jsonb_build_object('session', pg_catalog.to_jsonb(cancelled), 'newly_cancelled', true);
end
$$;

-- Ratings count public reviews only, the ones anyone can read, so that a rating can be checked
-- against the reviews shown.
create or replace function private.refresh_expert_rating() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  expert uuid := coalesce(new.reviewee_id, old.reviewee_id);
begin
  update public.expert_profiles e
     set rating_avg = coalesce((select round(avg(r.rating), 2) from public.reviews r where r.reviewee_id = e.id and r.is_public), 0),
         rating_count = (select count(*) from public.reviews r where r.reviewee_id = e.id and r.is_public)
   where e.id = expert;
  return null;
end
$$;
comment on function private.refresh_expert_rating() is 'Keeps expert_profiles.rating_avg and rating_count equal to the public reviews the expert received.';
update public.expert_profiles e
   set rating_avg = coalesce((select round(avg(r.rating), 2) from public.reviews r where r.reviewee_id = e.id and r.is_public), 0),
       rating_count = (select count(*) from public.reviews r where r.reviewee_id = e.id and r.is_public);
comment on column public.expert_profiles.rating_avg is 'Maintained by the database from the public reviews the expert received; not writable by users.';

-- Public reviews are read through expert_reviews: what a review page shows (rating, comment,
-- the reviewer's display name, date), never the reviewer's id or the session's. The table
-- itself is for the reviewer and the reviewee.
drop policy "Public reviews are visible to everyone" on public.reviews;
revoke select on public.reviews from anon;
drop index public.reviews_reviewee_id_idx;
create index reviews_reviewee_id_idx on public.reviews (reviewee_id, created_at desc, id) ;

-- "Casey Client" -> "Casey C.": enough to read a review by, too little to find a client by.
create function private.display_name(full_name text) returns text
language sql immutable set search_path = '' as $$
  select case
    when pg_catalog.btrim(coalesce(full_name, '')) = '' then 'A client'
    when pg_catalog.strpos(pg_catalog.btrim(full_name), ' ') = 0 then pg_catalog.btrim(full_name)
    else pg_catalog.split_part(pg_catalog.btrim(full_name), ' ', 1) || ' '
         || left(pg_catalog.regexp_replace(pg_catalog.btrim(full_name), '^.* ', ''), 1) || '.'
  end
$$;

create function public.expert_reviews(expert_id uuid, page_size int default 20, before timestamptz default null)
returns table (review_id uuid, rating smallint, comment text, reviewer_name text, created_at timestamptz)
language plpgsql stable security definer set search_path = '' as $$
begin
  if page_size not between 1 and 50 then
    raise exception using errcode = 'PT400', hint = 'invalid_page_size', message = 'A page holds 1 to 50 reviews.';
  end if;
  return query
    select r.id, r.rating, r.comment, private.display_name(p.full_name), r.created_at
    from public.reviews r
    join public.expert_profiles e on e.id = r.reviewee_id and e.is_active
    join public.profiles p on p.id = r.reviewer_id
    where r.reviewee_id = expert_reviews.expert_id and r.is_public
      and (expert_reviews.before is null or r.created_at < expert_reviews.before)
    order by r.created_at desc, r.id
    limit page_size;
end
$$;
comment on function public.expert_reviews(uuid, int, timestamptz) is 'An active expert''s public reviews, newest first: rating, comment, the reviewer''s display name and date.';
grant execute on function public.expert_reviews(uuid, int, timestamptz) to anon, authenticated;

-- Agency admins manage their experts' calendars through agency_sessions: times, status and
-- amounts, never the client's identity, notes or the room link.
drop policy "Agency admins can see their experts' sessions" on public.sessions;
drop function private.administers_expert(uuid);

create function public.agency_sessions(from_time timestamptz default null, to_time timestamptz default null)
returns table (session_id uuid, expert_id uuid, expert_name text, starts_at timestamptz, ends_at timestamptz, duration_minutes int,
               status text, amount_cents bigint, platform_fee_cents bigint, expert_payout_cents bigint, currency text)
language plpgsql stable security definer set search_path = '' as $$
declare
  range_from timestamptz := coalesce(from_time, private.now() - interval '30 days');
  range_to timestamptz := coalesce(to_time, private.now() + interval '90 days');
begin
  if range_to <= range_from or range_to - range_from > interval '366 days' then
    raise exception using errcode = 'PT400', hint = 'invalid_range', message = 'Ask for a range of at most 366 days that ends after it starts.';
  end if;
  return query
    select s.id, s.expert_id, p.full_name, s.starts_at, s.ends_at, s.duration_minutes, s.status,
           s.amount_cents, s.platform_fee_cents, s.expert_payout_cents, s.currency::text
    from public.agency_admins a
    join public.expert_profiles e on e.agency_id = a.agency_id
    join public.profiles p on p.id = e.id
    join public.sessions s on s.expert_id = e.id and s.starts_at >= range_from and s.starts_at < range_to
    where a.profile_id = (select auth.uid())
    order by s.starts_at, s.id;
end
$$;
comment on function public.agency_sessions(timestamptz, timestamptz) is 'The sessions of the caller''s agencies'' experts in a range (default: 30 days back, 90 ahead), without client details, notes or links.';
grant execute on function public.agency_sessions(timestamptz, timestamptz) to authenticated;

-- find_experts is public: it enforces the worker's bounds itself, so that no direct caller can
-- make it work harder than the worker would (1-10 skills, a window of at most 31 days, a
-- duration of 60-480 minutes in 15-minute steps, a page of 1-50).
create function private.check_search(skills text[], max_rate_cents bigint, currency text, window_from timestamptz, window_to timestamptz,
                                     duration_minutes int, min_rating numeric, page_size int, after_score numeric, after_id uuid) returns void
language plpgsql immutable set search_path = '' as $$
declare
  problems text[] := '{}';
begin
  if skills is null or cardinality(skills) not between 1 and 10 or array_position(skills, null) is not null then
    problems := array_append(problems, 'skills: give 1 to 10 skill slugs');
  end if;
  if max_rate_cents is not null and max_rate_cents not between 1 and 10000000 then
    problems := array_append(problems, 'max_rate_cents: a positive amount of at most 10000000');
  end if;
  if currency is not null and currency !~ '^[A-Z]{3}$' then
    problems := array_append(problems, 'currency: an ISO 4217 code in capitals');
  end if;
  if (window_from is null) <> (window_to is null) then
    problems := array_append(problems, 'window: give both window_from and window_to, or neither');
  elsif window_to <= window_from or window_to - window_from > interval '31 days' then
    problems := array_append(problems, 'window: it ends after it starts and spans at most 31 days');
  end if;
  if duration_minutes is null or duration_minutes not between 60 and 480 or duration_minutes % 15 <> 0 then
    problems := array_append(problems, 'duration_minutes: 60 to 480, in steps of 15');
  end if;
  if min_rating is not null and min_rating not between 0 and 5 then
    problems := array_append(problems, 'min_rating: 0 to 5');
  end if;
  if page_size is null or page_size not between 1 and 50 then
    problems := array_append(problems, 'page_size: 1 to 50');
  end if;
  if (after_score is null) <> (after_id is null) then
    problems := array_append(problems, 'cursor: give both after_score and after_id, or neither');
  end if;
  if cardinality(problems) > 0 then
    raise exception using errcode = 'PT400', hint = 'invalid_search', message = 'Invalid search: ' || array_to_string(problems, '; ') || '.',
      detail = pg_catalog.jsonb_build_object('problems', problems)::text;
  end if;
end
$$;
comment on function private.check_search is 'Refuses a search outside the bounds the find-experts worker enforces.';

-- A signed-in user records at most 60 searches a minute (each writes match_requests rows).
create function private.limit_searches(searcher uuid) returns void
language plpgsql security definer set search_path = '' as $$
declare
  recent int;
  oldest timestamptz;
begin
  -- One searcher at a time, so that concurrent searches cannot all slip under the limit.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('find_experts:' || searcher::text, 0));
  select count(*), min(created_at) into recent, oldest from (
    select m.created_at from public.match_requests m
    where m.client_id = searcher and m.created_at > private.now() - interval '1 minute'
    order by m.created_at desc limit 60) as latest;
  if recent >= 60 then
    raise exception using errcode = 'PT429', hint = 'rate_limited', message = 'At most 60 searches a minute: try again shortly.',
      detail = pg_catalog.jsonb_build_object('retry_after', greatest(1, ceil(extract(epoch from oldest + interval '1 minute' - private.now())))::int)::text;
  end if;
end
$$;
comment on function private.limit_searches(uuid) is 'Refuses a signed-in user''s 61st search within a minute.';

create or replace function public.find_experts(
  skills text[], max_rate_cents bigint default null, currency text default null,
  window_from timestamptz default null, window_to timestamptz default null, duration_minutes int default 60,
  min_rating numeric default null, page_size int default 10, after_score numeric default null, after_id uuid default null
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  slot_from timestamptz := coalesce(window_from, private.now());
  -- Nothing can be booked past the horizon: no slot is looked for beyond it.
  slot_to timestamptz := least(coalesce(window_to, private.now() + interval '7 days'), private.now() + interval '90 days' + make_interval(mins => duration_minutes));
  found_experts jsonb;
  request_id uuid;
begin
  perform private.check_search(skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, page_size, after_score, after_id);
  if caller is not null then
    perform private.limit_searches(caller);
  end if;
  with candidates as (
    select e.id, e.hourly_rate_cents, e.currency, e.rating_avg, e.rating_count, e.instant_booking, e.timezone, e.headline,
           p.full_name, p.avatar_url,
           sum(es.proficiency) as proficiency_sum,
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('slug', sc.slug, 'proficiency', es.proficiency, 'years', es.years) order by sc.slug) as matched_skills
    from public.skill_categories sc
    join public.expert_skills es on es.skill_id = sc.id
    join public.expert_profiles e on e.id = es.expert_id
    join public.profiles p on p.id = e.id
    where sc.slug = any (find_experts.skills)
      and e.is_active
      and (find_experts.currency is null or e.currency = find_experts.currency)
      and (find_experts.max_rate_cents is null or e.hourly_rate_cents <= find_experts.max_rate_cents)
      and (find_experts.min_rating is null or e.rating_avg >= find_experts.min_rating)
    group by e.id, p.id
  ),
  slotted as (
    select c.*,
           coalesce((select pg_catalog.jsonb_agg(slot order by slot) from private.free_slots(c.id, slot_from, slot_to, find_experts.duration_minutes, 3) as slot), '[]') as next_slots,
           coalesce((select o.is_online and o.last_seen_at > private.now() - interval '5 minutes' from public.online_status o where o.profile_id = c.id), false) as online
    from candidates c
  ),
  scored as (
    select s.*,
           round(s.proficiency_sum::numeric / (5 * cardinality(find_experts.skills)), 4) as skill_match,
           round(case when s.rating_count > 0 then s.rating_avg / 5 else 0.6 end, 4) as rating_part,
           round(case when find_experts.max_rate_cents is null then 0.5 else 1 - s.hourly_rate_cents::numeric / find_experts.max_rate_cents end, 4) as price_fit,
           case when pg_catalog.jsonb_array_length(s.next_slots) > 0 then 1 else 0 end as availability,
           case when s.online then 1 else 0 end as online_part
    from slotted s
    where find_experts.window_from is null or pg_catalog.jsonb_array_length(s.next_slots) > 0
  ),
  ranked as (
    select s.*, round(0.45 * s.skill_match + 0.20 * s.rating_part + 0.15 * s.price_fit + 0.15 * s.availability + 0.05 * s.online_part, 4) as score
    from scored s
  ),
  page as (
    select r.* from ranked r
    where find_experts.after_score is null or r.score < find_experts.after_score or (r.score = find_experts.after_score and r.id > find_experts.after_id)
    order by r.score desc, r.id
    limit find_experts.page_size
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'expert_id', p.id, 'full_name', p.full_name, 'avatar_url', p.avatar_url, 'headline', p.headline,
           'hourly_rate_cents', p.hourly_rate_cents, 'currency', p.currency, 'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
           'instant_booking', p.instant_booking, 'timezone', p.timezone, 'skills', p.matched_skills, 'online', p.online,
           'score', p.score,
           'score_parts', pg_catalog.jsonb_build_object('skill_match', p.skill_match, 'rating', p.rating_part, 'price_fit', p.price_fit,
                                                        'availability', p.availability, 'online', p.online_part),
           'next_slots', p.next_slots) order by p.score desc, p.id), '[]')
    into found_experts
  from page p;

  if caller is not null then
    insert into public.match_requests (client_id, skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, result_count, created_at)
    values (caller, find_experts.skills, find_experts.max_rate_cents, find_experts.currency, find_experts.window_from, find_experts.window_to,
            find_experts.duration_minutes, find_experts.min_rating, pg_catalog.jsonb_array_length(found_experts), private.now())
    returning id into request_id;
    insert into public.match_results (request_id, expert_id, rank, score, score_parts)
    select request_id, (t.item ->> 'expert_id')::uuid, t.position::int, (t.item ->> 'score')::numeric, t.item -> 'score_parts'
    from pg_catalog.jsonb_array_elements(found_experts) with ordinality as t (item, position);
  end if;

  return pg_catalog.jsonb_build_object('experts', found_experts, 'match_request_id', request_id);
end
$$;
comment on function public.find_experts is 'Ranks active experts for a search (score documented above the function); records authenticated searches.';
grant execute on function public.find_experts to anon, authenticated;
