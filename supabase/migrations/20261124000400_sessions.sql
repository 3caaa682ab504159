-- Sessions and what hangs off them: the status machine and its history, the payment ledger,
-- chat messages and reviews with the experts' rating aggregates.

create table public.sessions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.profiles (id),
  expert_id uuid not null references public.expert_profiles (id),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  duration_minutes integer not null check (duration_minutes between 60 and 480 and duration_minutes % 15 = 0),
  status text not null default 'requested'
    check (status in ('requested', 'confirmed', 'declined', 'cancelled', 'in_progress', 'completed')),
  -- A positive rate and a non-negative fee follow from the amount rules below.
  hourly_rate_cents bigint not null,
  amount_cents bigint not null check (amount_cents > 0),
  platform_fee_cents bigint not null,
  expert_payout_cents bigint not null check (expert_payout_cents >= 0),
  commission_bps integer not null default 1000 check (commission_bps between 0 and 10000),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  notes text not null default '' check (char_length(notes) <= 2000),
  meeting_provider text not null default 'daily' check (meeting_provider in ('daily')),
  room_name text unique,
  room_url text,
  cancelled_by uuid references public.profiles (id),
  cancelled_at timestamptz,
  cancellation_reason text check (char_length(cancellation_reason) <= 1000),
  refund_amount_cents bigint constraint sessions_refund_within_amount check (refund_amount_cents >= 0 and refund_amount_cents <= amount_cents),
  refund_percent smallint check (refund_percent in (0, 50, 100)),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint sessions_not_self_booked check (client_id <> expert_id),
  constraint sessions_end_follows_duration check (ends_at = starts_at + make_interval(mins => duration_minutes)),
  -- The money rules of the shared crate, mirrored: amount = rate x minutes / 60 and
  -- fee = amount x bps / 10000, each rounded half up; payout is the rest.
  constraint sessions_amount_follows_rate check (amount_cents = (hourly_rate_cents * duration_minutes + 30) / 60),
  constraint sessions_fee_follows_commission check (platform_fee_cents = (amount_cents * commission_bps + 5000) / 10000),
  constraint sessions_fee_plus_payout_is_amount check (platform_fee_cents + expert_payout_cents = amount_cents),
  constraint sessions_cancelled_has_time check ((status = 'cancelled') = (cancelled_at is not null)),
  constraint sessions_cancelled_has_refund check ((cancelled_at is null) = (refund_amount_cents is null) and (cancelled_at is null) = (refund_percent is null)),
  -- Active sessions never overlap, for the expert nor for the client, whatever the concurrency.
  constraint sessions_expert_no_overlap exclude using gist (expert_id with =, tstzrange(starts_at, ends_at) with &&)
    where (status in ('requested', 'confirmed', 'in_progress')),
  constraint sessions_client_no_overlap exclude using gist (client_id with =, tstzrange(starts_at, ends_at) with &&)
    where (status in ('requested', 'confirmed', 'in_progress'))
);
comment on table public.sessions is 'A booked video session. Created only by book_session (priced by the rules); status moves only along the machine enforced by a trigger.';
create index sessions_client_id_idx on public.sessions (client_id, starts_at);
create index sessions_expert_id_idx on public.sessions (expert_id, starts_at);
create index sessions_cancelled_by_idx on public.sessions (cancelled_by);
create index sessions_status_starts_at_idx on public.sessions (status, starts_at);

create table public.session_status_history (
  id bigint generated always as identity primary key,
  session_id uuid not null references public.sessions (id) on delete cascade,
  from_status text,
  to_status text not null,
  changed_by uuid references public.profiles (id),
  reason text,
  created_at timestamptz not null default now()
);
create index session_status_history_session_id_idx on public.session_status_history (session_id, id);
create index session_status_history_changed_by_idx on public.session_status_history (changed_by);

create table public.payments (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions (id) on delete cascade,
  kind text not null check (kind in ('charge', 'refund')),
  amount_cents bigint not null check (amount_cents > 0),
  platform_fee_cents bigint not null check (platform_fee_cents >= 0),
  expert_payout_cents bigint not null check (expert_payout_cents >= 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed', 'cancelled')),
  provider text not null default 'manual',
  provider_ref text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint payments_fee_plus_payout_is_amount check (platform_fee_cents + expert_payout_cents = amount_cents)
);
comment on table public.payments is 'Ledger: one charge per session, at most one refund. Written only by the booking functions.';
create unique index payments_one_charge_per_session on public.payments (session_id) where kind = 'charge';
create unique index payments_one_refund_per_session on public.payments (session_id) where kind = 'refund';
create index payments_session_id_idx on public.payments (session_id);

create table public.session_messages (
  id bigint generated always as identity primary key,
  session_id uuid not null references public.sessions (id) on delete cascade,
  sender_id uuid not null references public.profiles (id),
  body text not null check (char_length(body) between 1 and 4000),
  created_at timestamptz not null default now()
);
create index session_messages_session_id_idx on public.session_messages (session_id, id);
create index session_messages_sender_id_idx on public.session_messages (sender_id);
alter publication supabase_realtime add table public.session_messages;

create table public.reviews (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions (id) on delete cascade,
  reviewer_id uuid not null references public.profiles (id),
  reviewee_id uuid not null references public.profiles (id),
  rating smallint not null check (rating between 1 and 5),
  comment text not null default '' check (char_length(comment) <= 2000),
  is_public boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (session_id, reviewer_id),
  check (reviewer_id <> reviewee_id)
);
create index reviews_reviewer_id_idx on public.reviews (reviewer_id);
create index reviews_reviewee_id_idx on public.reviews (reviewee_id);

create trigger sessions_updated_at before update on public.sessions for each row execute function private.set_updated_at();
create trigger payments_updated_at before update on public.payments for each row execute function private.set_updated_at();
create trigger reviews_updated_at before update on public.reviews for each row execute function private.set_updated_at();

-- The status machine. Runs as the caller: a user talking to PostgREST directly (current_user
-- authenticated) may only do what an expert does by hand; cancellations go through
-- cancel_session so that the refund is recorded with them.
create function private.enforce_session_transition() returns trigger
language plpgsql set search_path = '' as $$
declare
  actor uuid := (select auth.uid());
begin
  if new.status = old.status then
    return new;
  end if;
  if (old.status, new.status) not in (
    ('requested', 'confirmed'), ('requested', 'declined'), ('requested', 'cancelled'),
    ('confirmed', 'in_progress'), ('confirmed', 'cancelled'), ('in_progress', 'completed')
  ) then
    raise exception using errcode = 'PT409', hint = 'invalid_transition',
      message = pg_catalog.format('A %s session cannot become %s.', old.status, new.status);
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
    if new.status = 'in_progress' and private.now() < old.starts_at - interval '15 minutes' then
      raise exception using errcode = 'PT409', hint = 'too_early_to_start',
        message = 'A session can be started at most 15 minutes before its start time.';
    end if;
  end if;
  return new;
end
$$;
comment on function private.enforce_session_transition() is 'Allows requested->confirmed|declined|cancelled, confirmed->in_progress|cancelled, in_progress->completed; direct API callers only as the expert.';
create trigger sessions_status_machine before update of status on public.sessions
  for each row execute function private.enforce_session_transition();

create function private.record_status_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' or new.status is distinct from old.status then
    insert into public.session_status_history (session_id, from_status, to_status, changed_by, reason)
    values (new.id, case when tg_op = 'UPDATE' then old.status end, new.status, (select auth.uid()),
            case when new.status = 'cancelled' then new.cancellation_reason end);
  end if;
  return null;
end
$$;
comment on function private.record_status_change() is 'Writes a history row for the first status and for every transition.';
create trigger sessions_status_history after insert or update of status on public.sessions
  for each row execute function private.record_status_change();

-- Reviews: the reviewee is the other participant, whatever the caller sent.
create function private.set_reviewee() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  select case when s.client_id = new.reviewer_id then s.expert_id else s.client_id end
    into new.reviewee_id
    from public.sessions s where s.id = new.session_id;
  return new;
end
$$;
create trigger reviews_set_reviewee before insert on public.reviews for each row execute function private.set_reviewee();

create function private.refresh_expert_rating() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  expert uuid := coalesce(new.reviewee_id, old.reviewee_id);
begin
  update public.expert_profiles e
     set rating_avg = coalesce((select round(avg(r.rating), 2) from public.reviews r where r.reviewee_id = e.id), 0),
         rating_count = (select count(*) from public.reviews r where r.reviewee_id = e.id)
   where e.id = expert;
  return null;
end
$$;
comment on function private.refresh_expert_rating() is 'Keeps expert_profiles.rating_avg and rating_count equal to the reviews the expert received.';
create trigger reviews_refresh_rating after insert or update or delete on public.reviews
  for each row execute function private.refresh_expert_rating();

-- Policy helpers.
create function private.is_session_participant(session uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.sessions s where s.id = session and (select auth.uid()) in (s.client_id, s.expert_id))
$$;
create function private.can_review(session uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.sessions s
    where s.id = session and s.status = 'completed' and (select auth.uid()) in (s.client_id, s.expert_id)
  )
$$;
grant execute on function private.is_session_participant(uuid), private.can_review(uuid) to authenticated;

alter table public.sessions enable row level security;
alter table public.sessions force row level security;
alter table public.session_status_history enable row level security;
alter table public.session_status_history force row level security;
alter table public.payments enable row level security;
alter table public.payments force row level security;
alter table public.session_messages enable row level security;
alter table public.session_messages force row level security;
alter table public.reviews enable row level security;
alter table public.reviews force row level security;

-- sessions: participants and the expert's agency admins read; only the expert sets the status by
-- hand; creation and cancellation go through the booking functions.
grant select on public.sessions to authenticated;
grant update (status) on public.sessions to authenticated;
create policy "Participants can see their sessions" on public.sessions for select to authenticated
  using ((select auth.uid()) in (client_id, expert_id));
create policy "Agency admins can see their experts' sessions" on public.sessions for select to authenticated
  using ((select private.administers_expert(expert_id)));
create policy "Experts can move their own sessions along" on public.sessions for update to authenticated
  using (expert_id = (select auth.uid())) with check (expert_id = (select auth.uid()));

grant select on public.session_status_history to authenticated;
create policy "Participants can see their sessions' history" on public.session_status_history for select to authenticated
  using ((select private.is_session_participant(session_id)));

grant select on public.payments to authenticated;
create policy "Participants can see their sessions' payments" on public.payments for select to authenticated
  using ((select private.is_session_participant(session_id)));

grant select, insert (session_id, sender_id, body) on public.session_messages to authenticated;
create policy "Participants can read their sessions' messages" on public.session_messages for select to authenticated
  using ((select private.is_session_participant(session_id)));
create policy "Participants can write in their sessions" on public.session_messages for insert to authenticated
  with check (sender_id = (select auth.uid()) and (select private.is_session_participant(session_id)));

grant select on public.reviews to anon, authenticated;
grant insert (session_id, reviewer_id, rating, comment, is_public), update (rating, comment, is_public) on public.reviews to authenticated;
create policy "Public reviews are visible to everyone" on public.reviews for select to anon, authenticated
  using (is_public);
create policy "Reviewers and reviewees can see their reviews" on public.reviews for select to authenticated
  using ((select auth.uid()) in (reviewer_id, reviewee_id));
create policy "Participants can review a completed session" on public.reviews for insert to authenticated
  with check (reviewer_id = (select auth.uid()) and (select private.can_review(session_id)));
create policy "Reviewers can edit their reviews" on public.reviews for update to authenticated
  using (reviewer_id = (select auth.uid())) with check (reviewer_id = (select auth.uid()));
