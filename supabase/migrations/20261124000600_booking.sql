-- Booking: availability in the expert's timezone, free slots, booking and cancellation as
-- single transactions, the charge following the status, and contacts for notifications.

-- A time as its recipient reads it: 2030-01-07 10:00 (Europe/Paris, UTC+01:00).
create function private.format_local(at timestamptz, zone text) returns text
language sql stable set search_path = '' as $$
  select pg_catalog.to_char(at at time zone zone, 'YYYY-MM-DD HH24:MI') || ' (' || zone || ', UTC'
    || case when offset_minutes < 0 then '-' else '+' end
    || pg_catalog.lpad((abs(offset_minutes) / 60)::text, 2, '0') || ':' || pg_catalog.lpad((abs(offset_minutes) % 60)::text, 2, '0') || ')'
  from (select (extract(epoch from (at at time zone zone) - (at at time zone 'UTC')) / 60)::int as offset_minutes) as o
$$;
comment on function private.format_local(timestamptz, text) is 'Renders an instant in a timezone with its name and UTC offset, language-neutral.';

-- Whether [starts, ends) lies inside the expert's bookable hours: a weekly rule or extra hours
-- on that local date, and no blocked hours. Local times come from Postgres, so DST is handled.
create function private.is_within_availability(expert uuid, starts timestamptz, ends timestamptz) returns boolean
language sql stable security definer set search_path = '' as $$
  with expert as (select timezone from public.expert_profiles where id = expert),
  local as (
    select (starts at time zone e.timezone) as local_start, (ends at time zone e.timezone) as local_end from expert e
  ),
  span as (
    select local_start::date as day,
           extract(dow from local_start)::int as weekday,
           (extract(hour from local_start) * 60 + extract(minute from local_start))::int as start_minute,
           case when local_end::date > local_start::date then 1440 + ((local_end::date - local_start::date - 1) * 1440)
                  + (extract(hour from local_end) * 60 + extract(minute from local_end))::int
                else (extract(hour from local_end) * 60 + extract(minute from local_end))::int end as end_minute
    from local
  )
  select exists (
      select 1 from span s join public.availability_rules r on r.expert_id = expert and r.weekday = s.weekday
      where r.start_minute <= s.start_minute and r.end_minute >= s.end_minute
      union all
      select 1 from span s join public.availability_exceptions x on x.expert_id = expert and x.on_date = s.day and x.kind = 'extra'
      where x.start_minute <= s.start_minute and x.end_minute >= s.end_minute
    )
    and not exists (
      select 1 from span s join public.availability_exceptions x on x.expert_id = expert and x.on_date = s.day and x.kind = 'blocked'
      where x.start_minute is null or int4range(x.start_minute, x.end_minute) && int4range(s.start_minute, s.end_minute)
    )
$$;

-- The expert's next free starts in [window_from, window_to): every 15 minutes of their bookable
-- hours, local wall-clock times converted by Postgres (a start that does not exist on a DST day
-- is skipped), minus the minimum notice and every active session.
create function private.free_slots(expert uuid, window_from timestamptz, window_to timestamptz, minutes int, max_slots int default 3)
returns setof timestamptz
language sql stable security definer set search_path = '' as $$
  with e as (select timezone from public.expert_profiles where id = expert),
  days as (
    select d::date as day
    from e, generate_series(((greatest(window_from, private.now()) at time zone e.timezone)::date)::timestamp,
                            ((window_to at time zone e.timezone)::date)::timestamp, interval '1 day') as d
  ),
  windows as (
    select days.day, r.start_minute, r.end_minute from days join public.availability_rules r
      on r.expert_id = expert and r.weekday = extract(dow from days.day)::int
    union all
    select x.on_date, x.start_minute, x.end_minute from public.availability_exceptions x
      where x.expert_id = expert and x.kind = 'extra' and x.on_date in (select day from days)
  ),
  candidates as (
    select distinct (w.day + make_interval(mins => m)) at time zone e.timezone as starts, w.day, m
    from windows w cross join e, generate_series(w.start_minute, w.end_minute - minutes, 15) as m
  )
  select c.starts from candidates c
  where c.starts >= greatest(window_from, private.now() + interval '1 hour')
    and c.starts + make_interval(mins => minutes) <= window_to
    and c.starts <= private.now() + interval '90 days'
    -- the wall-clock time exists that day (not skipped by a DST change)
    and ((c.starts at time zone (select timezone from e)) = c.day + make_interval(mins => c.m))
    -- candidates lie inside a rule or extra hours by construction; blocked hours still apply
    and not exists (
      select 1 from public.availability_exceptions x
      where x.expert_id = expert and x.on_date = c.day and x.kind = 'blocked'
        and (x.start_minute is null or int4range(x.start_minute, x.end_minute) && int4range(c.m, c.m + minutes))
    )
    and not exists (
      select 1 from public.sessions s
      where s.expert_id = expert and s.status in ('requested', 'confirmed', 'in_progress')
        and tstzrange(s.starts_at, s.ends_at) && tstzrange(c.starts, c.starts + make_interval(mins => minutes))
    )
  order by c.starts
  limit max_slots
$$;
comment on function private.free_slots(uuid, timestamptz, timestamptz, int, int) is 'Next bookable starts of an expert in a window, DST-correct, excluding booked time and the notice period.';

-- A requested session is charged when the expert confirms it; the charge is dropped when the
-- request ends without a session.
create function private.follow_charge() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if old.status = 'requested' and new.status = 'confirmed' then
    update public.payments set status = 'succeeded' where session_id = new.id and kind = 'charge' and status = 'pending';
  elsif old.status = 'requested' and new.status in ('declined', 'cancelled') then
    update public.payments set status = 'cancelled' where session_id = new.id and kind = 'charge' and status = 'pending';
  end if;
  return null;
end
$$;
create trigger sessions_follow_charge after update of status on public.sessions
  for each row execute function private.follow_charge();

-- Books a session for the calling user in one transaction: checks the expert, the notice, the
-- availability, both participants' overlaps and that the rate is the one priced; then writes
-- the session (with its room), the pending or captured charge and the audit row. The price
-- itself is checked by the table's constraints against the rate.
create function public.book_session(
  expert_id uuid, starts_at timestamptz, duration_minutes int, hourly_rate_cents bigint, amount_cents bigint,
  platform_fee_cents bigint, expert_payout_cents bigint, commission_bps int, currency text,
  room_name text, room_url text, notes text default '', session_id uuid default gen_random_uuid(), context jsonb default '{}'
) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  expert public.expert_profiles%rowtype;
  ends timestamptz := starts_at + make_interval(mins => duration_minutes);
  booked public.sessions%rowtype;
begin
  if caller is null then
    raise exception using errcode = 'PT401', hint = 'unauthorized', message = 'Sign in to book a session.';
  end if;
  select * into expert from public.expert_profiles e where e.id = book_session.expert_id;
  if not found then
    raise exception using errcode = 'PT404', hint = 'expert_not_found', message = 'No such expert.';
  end if;
  if expert.id = caller then
    raise exception using errcode = 'PT409', hint = 'self_booking', message = 'An expert cannot book a session with themselves.';
  end if;
  if not expert.is_active then
    raise exception using errcode = 'PT409', hint = 'expert_inactive', message = 'This expert is not taking bookings.';
  end if;
  if starts_at < private.now() + interval '1 hour' then
    raise exception using errcode = 'PT409', hint = 'too_soon', message = 'A session must be booked at least 60 minutes ahead.';
  end if;
  if starts_at > private.now() + interval '90 days' then
    raise exception using errcode = 'PT409', hint = 'too_far', message = 'A session can be booked at most 90 days ahead.';
  end if;
  if expert.hourly_rate_cents <> book_session.hourly_rate_cents or expert.currency <> book_session.currency then
    raise exception using errcode = 'PT409', hint = 'price_changed', message = 'The expert''s rate changed since the quote.',
      detail = pg_catalog.jsonb_build_object('hourly_rate_cents', expert.hourly_rate_cents, 'currency', expert.currency,
        'amount_cents', (expert.hourly_rate_cents * duration_minutes + 30) / 60)::text;
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
                                 platform_fee_cents, expert_payout_cents, commission_bps, currency, notes, room_name, room_url)
    values (session_id, caller, expert.id, starts_at, ends, duration_minutes,
            case when expert.instant_booking then 'confirmed' else 'requested' end,
            hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, commission_bps, currency, coalesce(notes, ''),
            room_name, room_url)
    returning * into booked;
  exception
    when exclusion_violation or deadlock_detected or serialization_failure then
      -- A concurrent booking won the race for this time (two racing inserts on an exclusion
      -- constraint can also deadlock: the loser is told the same).
      raise exception using errcode = 'PT409', hint = 'slot_taken', message = 'That time was just booked by someone else.';
    when check_violation then
      raise exception using errcode = 'PT400', hint = 'invalid_price', message = 'The price does not follow the expert''s rate and the commission.';
  end;

  insert into public.payments (session_id, kind, amount_cents, platform_fee_cents, expert_payout_cents, currency, status)
  values (booked.id, 'charge', amount_cents, platform_fee_cents, expert_payout_cents, currency,
          case when booked.status = 'confirmed' then 'succeeded' else 'pending' end);

  perform private.audit(caller, 'authenticated', 'session.created', 'sessions', booked.id::text, null, pg_catalog.to_jsonb(booked), context);

  return pg_catalog.to_jsonb(booked);
end
$$;
comment on function public.book_session is 'Books a session for the caller atomically; raises PT409 with a hint naming the conflict.';
grant execute on function public.book_session to authenticated;

-- Cancels a session for one of its participants, with the refund the shared crate computed.
-- Called by cancel-session with the service role after it verified the caller; idempotent:
-- cancelling again returns the first answer and writes nothing.
create function public.service_role_cancel_session(
  session_id uuid, actor_id uuid, reason text, refund_percent int, refund_amount_cents bigint,
  refund_fee_cents bigint, refund_payout_cents bigint, context jsonb default '{}'
) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  session public.sessions%rowtype;
  cancelled public.sessions%rowtype;
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
comment on function public.service_role_cancel_session is 'Cancels for a verified participant with the computed refund; repeat calls return the first result.';
grant execute on function public.service_role_cancel_session to service_role;

-- Who to notify about a session and how they read its time: for the functions' emails only.
create function public.service_role_session_contacts(session_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object(
    'session_id', s.id, 'room_url', s.room_url, 'duration_minutes', s.duration_minutes, 'status', s.status,
    'amount_cents', s.amount_cents, 'currency', s.currency,
    'client', pg_catalog.jsonb_build_object('id', c.id, 'email', cu.email, 'name', c.full_name, 'starts_local', private.format_local(s.starts_at, c.timezone)),
    'expert', pg_catalog.jsonb_build_object('id', x.id, 'email', xu.email, 'name', x.full_name, 'starts_local', private.format_local(s.starts_at, x.timezone)))
  from public.sessions s
  join public.profiles c on c.id = s.client_id join auth.users cu on cu.id = c.id
  join public.profiles x on x.id = s.expert_id join auth.users xu on xu.id = x.id
  where s.id = service_role_session_contacts.session_id
$$;
grant execute on function public.service_role_session_contacts(uuid) to service_role;

-- What create-session prices with: the expert's current rate, also for an inactive expert so
-- that the caller learns why they cannot book (null when there is no such expert).
create function public.expert_quote(expert_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object('expert_id', e.id, 'hourly_rate_cents', e.hourly_rate_cents, 'currency', e.currency,
                                       'is_active', e.is_active, 'instant_booking', e.instant_booking)
  from public.expert_profiles e where e.id = expert_quote.expert_id
$$;
grant execute on function public.expert_quote(uuid) to anon, authenticated;
