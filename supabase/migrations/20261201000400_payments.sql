-- Money that really moves: Stripe PaymentIntents as destination charges to the experts' Connect
-- (Express) accounts, the platform fee as the application fee, captures, releases and refunds
-- carried out from the outbox, and a ledger that mirrors what Stripe reported.
--
-- The flow (README, "Payments"): create-session books the slot as awaiting_payment and creates the
-- PaymentIntent; the browser confirms it with Stripe.js; Stripe's events (payment-events) move
-- the session to confirmed (instant booking, captured at once) or requested (authorised, manual
-- capture); the expert's confirmation queues the capture; a request that ends without a session
-- queues the release of the authorisation; a cancellation queues the refund its policy gives.
-- Every Stripe object the workers learn about, from an event or from an API answer, goes through
-- one function, private.mirror_stripe_object, which merges it into the ledger idempotently and in
-- any order, and moves the session along.

-- Currencies the platform takes, with their minor unit: amounts everywhere are integers in it
-- (cents; yen for JPY, which has none).
create table private.currencies (
  code char(3) primary key check (code ~ '^[A-Z]{3}$'),
  minor_unit_digits smallint not null check (minor_unit_digits in (0, 2, 3))
);
comment on table private.currencies is 'The currencies enabled for bookings and their minor unit (2: cents; 0: zero-decimal, e.g. JPY).';
insert into private.currencies values ('USD', 2), ('EUR', 2), ('GBP', 2), ('CAD', 2), ('AUD', 2), ('JPY', 0);
alter table public.expert_profiles add constraint expert_profiles_currency_enabled
  foreign key (currency) references private.currencies (code);
create index expert_profiles_currency_idx on public.expert_profiles (currency);

-- Payment settings an operator changes in SQL.
alter table private.platform_settings
  add column payment_hold_minutes integer not null default 15 check (payment_hold_minutes between 1 and 120),
  -- Card authorisations lapse after about 7 days: a request must be answered well before, so
  -- that its capture can still be retried.
  add column request_answer_hours integer not null default 156 check (request_answer_hours between 1 and 160),
  add column max_payment_holds integer not null default 3 check (max_payment_holds between 1 and 20);

-- Experts' Connect accounts, as Stripe's account.updated events describe them.
create table public.payout_accounts (
  expert_id uuid primary key references public.expert_profiles (id) on delete cascade,
  stripe_account_id text not null unique check (stripe_account_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
  charges_enabled boolean not null default false,
  payouts_enabled boolean not null default false,
  details_submitted boolean not null default false,
  requirements_due text[] not null default '{}',
  -- When Stripe described this state: an older description never overwrites a newer one.
  reported_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.payout_accounts is 'An expert''s Stripe Connect account and whether it can take charges and receive payouts. Written only from Stripe''s answers and events.';
create trigger payout_accounts_updated_at before update on public.payout_accounts for each row execute function private.set_updated_at();
alter table public.payout_accounts enable row level security;
alter table public.payout_accounts force row level security;
revoke all on public.payout_accounts from anon, authenticated;
grant select on public.payout_accounts to authenticated;
create policy "Experts can see their payout account" on public.payout_accounts for select to authenticated
  using (expert_id = (select auth.uid()));

-- Only an expert whose account can take charges is offered and can be booked.
alter table public.expert_profiles add column accepts_payments boolean not null default false;
comment on column public.expert_profiles.accepts_payments is 'The expert''s Connect account can take charges (Stripe''s charges_enabled); maintained by the database.';
create function private.follow_payout_account() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.expert_profiles e set accepts_payments = coalesce(new.charges_enabled, false)
   where e.id = coalesce(new.expert_id, old.expert_id) and e.accepts_payments is distinct from coalesce(new.charges_enabled, false);
  return null;
end
$$;
create trigger payout_accounts_follow after insert or update of charges_enabled or delete on public.payout_accounts
  for each row execute function private.follow_payout_account();

create or replace view private.search_entry_source as
  select es.skill_id, e.id as expert_id, es.proficiency, r.part as rating_part, 0.09 * es.proficiency + 0.20 * r.part as sort_key,
         e.hourly_rate_cents, e.currency, e.rating_avg
  from public.expert_profiles e
  cross join lateral (select round(case when e.rating_count > 0 then e.rating_avg / 5 else 0.6 end, 4) as part) r
  join public.expert_skills es on es.expert_id = e.id
  where e.is_active and e.accepts_payments;
drop trigger expert_profiles_search_entries on public.expert_profiles;
create trigger expert_profiles_search_entries after insert or update of is_active, accepts_payments, hourly_rate_cents, currency, rating_avg, rating_count
  on public.expert_profiles for each row execute function private.follow_search_entries();
delete from private.search_entries;
insert into private.search_entries select * from private.search_entry_source;

-- Sessions: a slot held while its payment is made, the PaymentIntent, the deadline to answer a
-- request, the refund's split, and what went wrong with the money.
alter table public.sessions
  add column payment_intent_id text unique check (payment_intent_id ~ '^pi_[A-Za-z0-9]{1,64}$'),
  add column payment_due_at timestamptz,
  add column answer_by timestamptz,
  add column refund_platform_fee_cents bigint,
  add column refund_expert_payout_cents bigint,
  add column payment_problem text check (payment_problem in ('capture_failed', 'release_failed', 'refund_failed', 'fee_refund_failed')),
  add column disputed_at timestamptz;
alter table public.sessions drop constraint sessions_status_check;
alter table public.sessions add constraint sessions_status_check
  check (status in ('awaiting_payment', 'requested', 'confirmed', 'declined', 'cancelled', 'expired', 'in_progress', 'completed'));
-- A held slot is taken: no one else books it while its payment is made.
alter table public.sessions drop constraint sessions_expert_no_overlap, drop constraint sessions_client_no_overlap;
alter table public.sessions
  add constraint sessions_expert_no_overlap exclude using gist (expert_id with =, tstzrange(starts_at, ends_at) with &&)
    where (status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress')),
  add constraint sessions_client_no_overlap exclude using gist (client_id with =, tstzrange(starts_at, ends_at) with &&)
    where (status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress'));
-- What follows from the rest of a session, whoever writes it: the refund's split between fee
-- and payout (in proportion, the fee part rounded half up, as the shared crate splits it), a
-- hold's deadline (the platform's hold) and a request's when no authorisation time is known
-- (its start).
create function private.derive_session_fields() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.refund_amount_cents is null then
    new.refund_platform_fee_cents := null;
    new.refund_expert_payout_cents := null;
  else
    new.refund_platform_fee_cents := (new.platform_fee_cents * new.refund_amount_cents * 2 + new.amount_cents) / (new.amount_cents * 2);
    new.refund_expert_payout_cents := new.refund_amount_cents - new.refund_platform_fee_cents;
  end if;
  if new.status = 'awaiting_payment' and new.payment_due_at is null then
    new.payment_due_at := private.now() + make_interval(mins => (select p.payment_hold_minutes from private.platform_settings p));
  end if;
  if new.status = 'requested' and new.answer_by is null then
    new.answer_by := new.starts_at;
  end if;
  return new;
end
$$;
create trigger sessions_derive_fields before insert or update on public.sessions
  for each row execute function private.derive_session_fields();
update public.sessions s set refund_amount_cents = s.refund_amount_cents where s.refund_amount_cents is not null or s.status = 'requested';
alter table public.sessions add constraint sessions_answer_by_before_start check (answer_by is null or answer_by <= starts_at);
create index sessions_hold_due_idx on public.sessions (payment_due_at) where status = 'awaiting_payment';
create index sessions_answer_by_idx on public.sessions (answer_by) where status = 'requested';
create index sessions_client_holds_idx on public.sessions (client_id) where status = 'awaiting_payment';

-- The ledger: one row per Stripe object, as Stripe last described it. The rows before this
-- migration mirrored no provider (a trigger marked them paid); they are dropped.
drop trigger sessions_follow_charge on public.sessions;
drop function private.follow_charge();
delete from public.payments;
drop index public.payments_one_charge_per_session, public.payments_one_refund_per_session;
alter table public.payments
  drop constraint payments_fee_plus_payout_is_amount,
  drop constraint payments_kind_check,
  drop constraint payments_status_check,
  drop constraint payments_amount_cents_check,
  drop column platform_fee_cents,
  drop column expert_payout_cents,
  drop column provider,
  alter column status drop default,
  alter column provider_ref set not null,
  add constraint payments_kind_check
    check (kind in ('payment_intent', 'charge', 'refund', 'application_fee_refund', 'transfer_reversal', 'dispute')),
  add constraint payments_status_check check (status ~ '^[a-z_]{1,40}$'),
  add constraint payments_amount_cents_check check (amount_cents >= 0),
  add constraint payments_provider_ref_key unique (provider_ref),
  add constraint payments_provider_ref_names_kind check (provider_ref ~ ((case kind
    when 'payment_intent' then '^pi_' when 'charge' then '^(ch|py)_' when 'refund' then '^(re|pyr)_'
    when 'application_fee_refund' then '^fr_' when 'transfer_reversal' then '^trr_' else '^(dp|du)_' end) || '[A-Za-z0-9]{1,64}$')),
  -- The charge (for a refund or dispute), application fee (fee refund) or transfer (reversal) it belongs to.
  add column parent_ref text check (char_length(parent_ref) <= 80),
  -- Charges: how much was captured and refunded, the application fee and the transfer made.
  add column captured_cents bigint check (captured_cents >= 0),
  add column refunded_cents bigint check (refunded_cents >= 0),
  add column application_fee_cents bigint check (application_fee_cents >= 0),
  add column fee_ref text check (fee_ref ~ '^fee_[A-Za-z0-9]{1,64}$'),
  add column transfer_ref text check (transfer_ref ~ '^tr_[A-Za-z0-9]{1,64}$'),
  add column failure_reason text check (char_length(failure_reason) <= 500),
  -- When Stripe described this state (the event's time, or when an API call answered).
  add column reported_at timestamptz not null;
comment on table public.payments is 'The payment ledger: each Stripe object of a session (PaymentIntent, charge, refund, application fee refund, transfer reversal, dispute) as Stripe last reported it.';
create index payments_fee_ref_idx on public.payments (fee_ref) where fee_ref is not null;
create index payments_transfer_ref_idx on public.payments (transfer_ref) where transfer_ref is not null;
create index payments_parent_ref_idx on public.payments (parent_ref) where parent_ref is not null;

-- Stripe's events, each stored before it is applied: applied, ignored (not about anything of
-- ours), or deferred (it names an object not known yet) and retried by the dispatcher.
create table public.stripe_events (
  id text primary key check (id ~ '^evt_[A-Za-z0-9]{1,64}$'),
  type text not null check (char_length(type) <= 100),
  account text check (char_length(account) <= 80),
  created_at_stripe timestamptz not null,
  payload jsonb not null,
  -- The newest Stripe-Signature timestamp accepted for this event: a delivery signed no later
  -- is a replay of one already received.
  signed_at timestamptz not null,
  status text not null check (status in ('applied', 'ignored', 'deferred', 'failed')),
  attempts integer not null default 1 check (attempts >= 1),
  next_attempt_at timestamptz,
  last_error text check (char_length(last_error) <= 1000),
  received_at timestamptz not null,
  applied_at timestamptz,
  constraint stripe_events_deferred_has_retry check ((status = 'deferred') = (next_attempt_at is not null))
);
comment on table public.stripe_events is 'Every Stripe event received, verified and stored before it is applied; deferred ones are retried by the dispatcher.';
create index stripe_events_retry_idx on public.stripe_events (next_attempt_at) where status = 'deferred';
alter table public.stripe_events enable row level security;
alter table public.stripe_events force row level security;
revoke all on public.stripe_events from anon, authenticated;

-- The outbox carries payment operations too.
alter table public.outbox drop constraint outbox_channel_check;
alter table public.outbox add constraint outbox_channel_check check (channel in ('email', 'room', 'webhook', 'payment'));
alter table public.outbox add constraint outbox_payment_has_session check (channel <> 'payment' or session_id is not null);

create or replace function private.outbox_backoff(channel text, attempts int) returns interval
language sql immutable set search_path = '' as $$
  select case channel
    when 'email' then make_interval(mins => (2 ^ least(greatest(attempts - 1, 0), 10))::int)
    when 'room' then make_interval(mins => least((2 ^ least(greatest(attempts - 1, 0), 10))::int, 15))
    -- Payments: 1, 2, 4, ... minutes, at most an hour apart, under the same idempotency key.
    when 'payment' then make_interval(mins => least((2 ^ least(greatest(attempts - 1, 0), 10))::int, 60))
    else (array[interval '30 seconds', interval '5 minutes', interval '30 minutes', interval '2 hours',
                interval '5 hours', interval '10 hours', interval '10 hours'])[least(greatest(attempts, 1), 7)]
  end
$$;
comment on function private.outbox_backoff(text, int) is 'Email 1, 2, 4, 8 minutes; rooms doubling up to 15 minutes; payments doubling up to an hour; webhooks 30 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h.';

create or replace function private.enqueue(channel text, topic text, dedupe_key text, session uuid, recipient uuid, endpoint uuid,
                                           payload jsonb, due timestamptz default null) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  queued uuid;
  due_at timestamptz := coalesce(due, private.now());
begin
  insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, endpoint_id, payload, max_attempts, due_at, next_attempt_at, created_at)
  values (channel, topic, dedupe_key, session, recipient, endpoint, payload,
          case channel when 'email' then 5 when 'room' then 50 when 'payment' then 12 else 8 end, due_at, due_at, private.now())
  on conflict on constraint outbox_dedupe_key_key do nothing
  returning id into queued;
  return queued;
end
$$;

create function private.try_uuid(value text) returns uuid
language plpgsql immutable set search_path = '' as $$
begin
  return value::uuid;
exception when invalid_text_representation then
  return null;
end
$$;

-- How settled a Stripe object's status is: a description of a less settled state never
-- replaces a more settled one, whatever order the events come in; equally settled ones are
-- ordered by when Stripe reported them.
create function private.stripe_status_rank(kind text, status text) returns int
language sql immutable set search_path = '' as $$
  select case
    when kind = 'payment_intent' then case status when 'requires_capture' then 1 when 'succeeded' then 2 when 'canceled' then 2 else 0 end
    when kind = 'charge' then case status when 'pending' then 0 else 1 end
    when kind = 'refund' then case status when 'pending' then 0 when 'requires_action' then 0 else 1 end
    when kind = 'dispute' then case when status in ('won', 'lost', 'prevented') then 1 else 0 end
    else 0
  end
$$;

-- Merges one object into the ledger: its status only forward (see stripe_status_rank), the
-- amounts captured and refunded only up, references once known kept.
create function private.mirror_payment(kind text, provider_ref text, session uuid, parent_ref text, status text, amount bigint,
                                       currency text, reported timestamptz, captured bigint default null, refunded bigint default null,
                                       application_fee bigint default null, fee_ref text default null, transfer_ref text default null,
                                       failure text default null) returns public.payments
language plpgsql security definer set search_path = '' as $$
declare
  merged public.payments;
begin
  insert into public.payments as p (session_id, kind, provider_ref, parent_ref, status, amount_cents, currency, reported_at, captured_cents,
                                    refunded_cents, application_fee_cents, fee_ref, transfer_ref, failure_reason, created_at)
  values (session, kind, provider_ref, parent_ref, status, amount, upper(currency), reported, captured, refunded, application_fee,
          fee_ref, transfer_ref, left(failure, 500), private.now())
  on conflict on constraint payments_provider_ref_key do update set
    status = case when (private.stripe_status_rank(p.kind, excluded.status), excluded.reported_at)
                       >= (private.stripe_status_rank(p.kind, p.status), p.reported_at) then excluded.status else p.status end,
    amount_cents = case when (private.stripe_status_rank(p.kind, excluded.status), excluded.reported_at)
                             >= (private.stripe_status_rank(p.kind, p.status), p.reported_at) then excluded.amount_cents else p.amount_cents end,
    failure_reason = case when (private.stripe_status_rank(p.kind, excluded.status), excluded.reported_at)
                               >= (private.stripe_status_rank(p.kind, p.status), p.reported_at) then excluded.failure_reason else p.failure_reason end,
    reported_at = greatest(p.reported_at, excluded.reported_at),
    parent_ref = coalesce(p.parent_ref, excluded.parent_ref),
    captured_cents = greatest(p.captured_cents, excluded.captured_cents),
    refunded_cents = greatest(p.refunded_cents, excluded.refunded_cents),
    application_fee_cents = coalesce(excluded.application_fee_cents, p.application_fee_cents),
    fee_ref = coalesce(p.fee_ref, excluded.fee_ref),
    transfer_ref = coalesce(p.transfer_ref, excluded.transfer_ref)
  returning * into merged;
  return merged;
end
$$;

-- The id of a field that Stripe sends either as an id or, when expanded, as the object.
create function private.stripe_id(field jsonb) returns text
language sql immutable set search_path = '' as $$
  select case pg_catalog.jsonb_typeof(field) when 'string' then field #>> '{}' when 'object' then field ->> 'id' end
$$;

create function private.stripe_time(seconds jsonb) returns timestamptz
language sql immutable set search_path = '' as $$
  select to_timestamp((seconds #>> '{}')::double precision)
$$;

-- The session a Stripe object belongs to: by our metadata, else through the objects it names.
create function private.stripe_session(object jsonb) returns uuid
language sql stable security definer set search_path = '' as $$
  select coalesce(
    (select s.id from public.sessions s where s.id = private.try_uuid(object #>> '{metadata,session_id}')),
    (select s.id from public.sessions s where s.payment_intent_id = private.stripe_id(object -> 'payment_intent')),
    (select p.session_id from public.payments p where p.provider_ref = private.stripe_id(object -> 'payment_intent')),
    (select p.session_id from public.payments p where p.provider_ref = private.stripe_id(object -> 'charge')),
    (select p.session_id from public.payments p where p.kind = 'charge' and p.fee_ref = private.stripe_id(object -> 'fee')),
    (select p.session_id from public.payments p where p.kind = 'charge' and p.transfer_ref = private.stripe_id(object -> 'transfer')),
    (select p.session_id from public.payments p where p.provider_ref = private.stripe_id(object -> 'source_transaction')))
$$;

-- Money a session should not have kept: a payment that succeeded, or an authorisation that was
-- made, after the session ended without being held (hold lapsed, request declined or expired,
-- cancelled before it was confirmed).
create function private.session_ended_unpaid(s public.sessions) returns boolean
language sql immutable set search_path = '' as $$
  select s.status in ('expired', 'declined') or (s.status = 'cancelled' and coalesce(s.refund_percent, 0) = 0)
$$;

-- Applies one Stripe object to the ledger and the session: 'applied', 'ignored' (nothing of
-- ours) or 'deferred' (it belongs to something not known yet).
create function private.mirror_stripe_object(object jsonb, reported timestamptz) returns text
language plpgsql security definer set search_path = '' as $$
declare
  kind text := object ->> 'object';
  session_id uuid;
  s public.sessions%rowtype;
  merged public.payments;
  item jsonb;
  outcome text;
  answer_hours int;
begin
  if kind = 'account' then
    return private.mirror_account(object, reported);
  elsif kind = 'application_fee' then
    outcome := 'ignored';
    for item in select * from pg_catalog.jsonb_array_elements(coalesce(object #> '{refunds,data}', '[]')) loop
      outcome := private.mirror_stripe_object(item || pg_catalog.jsonb_build_object('fee', object ->> 'id'), reported);
      exit when outcome = 'deferred';
    end loop;
    return outcome;
  elsif kind = 'transfer' then
    outcome := 'ignored';
    for item in select * from pg_catalog.jsonb_array_elements(coalesce(object #> '{reversals,data}', '[]')) loop
      outcome := private.mirror_stripe_object(item || pg_catalog.jsonb_build_object('source_transaction', object -> 'source_transaction'), reported);
      exit when outcome = 'deferred';
    end loop;
    return outcome;
  elsif kind not in ('payment_intent', 'charge', 'refund', 'fee_refund', 'transfer_reversal', 'dispute') then
    return 'ignored';
  end if;

  -- Expanded objects first, so that what this one names is known.
  if pg_catalog.jsonb_typeof(object -> 'charge') = 'object' then
    perform private.mirror_stripe_object(object -> 'charge', reported);
  end if;

  session_id := private.stripe_session(object);
  if session_id is null then
    -- Ours (it carries our metadata or names a charge) but not known yet: retried later.
    return case when object ? 'metadata' and object #>> '{metadata,session_id}' is not null
                  or kind in ('fee_refund', 'transfer_reversal', 'dispute') then 'deferred' else 'ignored' end;
  end if;
  select * into s from public.sessions x where x.id = session_id for update;

  if kind = 'payment_intent' then
    merged := private.mirror_payment('payment_intent', object ->> 'id', s.id, null, object ->> 'status', (object ->> 'amount')::bigint,
                                     object ->> 'currency', reported, application_fee => (object ->> 'application_fee_amount')::bigint,
                                     failure => object #>> '{last_payment_error,message}');
    if s.payment_intent_id is null and s.status = 'awaiting_payment' then
      update public.sessions x set payment_intent_id = merged.provider_ref where x.id = s.id returning * into s;
    end if;
    if s.payment_intent_id is distinct from merged.provider_ref then
      -- A PaymentIntent that is not this session's (a second one made for it): no session is
      -- held by it, so whatever it took is given back.
      if merged.status = 'requires_capture' then
        perform private.enqueue('payment', 'payment.release', 'payment.release:' || merged.provider_ref, s.id, null, null,
                                pg_catalog.jsonb_build_object('payment_intent', merged.provider_ref, 'reason', 'duplicate'));
      elsif merged.status = 'succeeded' then
        perform private.enqueue('payment', 'payment.refund', 'payment.refund:' || merged.provider_ref, s.id, null, null,
                                pg_catalog.jsonb_build_object('payment_intent', merged.provider_ref, 'amount_cents', merged.amount_cents,
                                                              'platform_fee_cents', merged.application_fee_cents, 'reason', 'duplicate'));
      end if;
    elsif merged.status = 'requires_capture' and s.status = 'awaiting_payment' then
      select p.request_answer_hours into answer_hours from private.platform_settings p;
      update public.sessions x set status = 'requested', payment_due_at = null,
             answer_by = least(x.starts_at, reported + make_interval(hours => answer_hours))
       where x.id = s.id;
    elsif merged.status = 'succeeded' and s.status = 'awaiting_payment' then
      update public.sessions x set status = 'confirmed', payment_due_at = null where x.id = s.id;
    elsif merged.status = 'canceled' and s.status in ('awaiting_payment', 'requested') then
      update public.sessions x set status = 'expired' where x.id = s.id;
    elsif merged.status = 'requires_capture' and private.session_ended_unpaid(s) then
      perform private.enqueue('payment', 'payment.release', 'payment.release:' || merged.provider_ref, s.id, null, null,
                              pg_catalog.jsonb_build_object('payment_intent', merged.provider_ref, 'reason', 'abandoned'));
    elsif merged.status = 'succeeded' and private.session_ended_unpaid(s) then
      perform private.enqueue('payment', 'payment.refund', 'payment.refund:' || merged.provider_ref, s.id, null, null,
                              pg_catalog.jsonb_build_object('payment_intent', merged.provider_ref, 'amount_cents', merged.amount_cents,
                                                            'platform_fee_cents', merged.application_fee_cents, 'reason', 'session_ended'));
    end if;
    -- Its charge, once the PaymentIntent is known.
    if pg_catalog.jsonb_typeof(object -> 'latest_charge') = 'object' then
      perform private.mirror_stripe_object(object -> 'latest_charge', reported);
    end if;

  elsif kind = 'charge' then
    perform private.mirror_payment('charge', object ->> 'id', s.id, private.stripe_id(object -> 'payment_intent'), object ->> 'status',
                                   (object ->> 'amount')::bigint, object ->> 'currency', reported,
                                   captured => case when (object ->> 'captured')::boolean then (object ->> 'amount_captured')::bigint else 0 end,
                                   refunded => (object ->> 'amount_refunded')::bigint,
                                   application_fee => (object ->> 'application_fee_amount')::bigint,
                                   fee_ref => private.stripe_id(object -> 'application_fee'), transfer_ref => private.stripe_id(object -> 'transfer'),
                                   failure => coalesce(object ->> 'failure_message', object ->> 'failure_code'));
    for item in select * from pg_catalog.jsonb_array_elements(coalesce(object #> '{refunds,data}', '[]')) loop
      perform private.mirror_stripe_object(item, reported);
    end loop;

  elsif kind = 'refund' then
    if pg_catalog.jsonb_typeof(object -> 'transfer_reversal') = 'object' then
      perform private.mirror_stripe_object((object -> 'transfer_reversal') || pg_catalog.jsonb_build_object('source_transaction', private.stripe_id(object -> 'charge')), reported);
    end if;
    merged := private.mirror_payment('refund', object ->> 'id', s.id, private.stripe_id(object -> 'charge'), object ->> 'status',
                                     (object ->> 'amount')::bigint, object ->> 'currency', reported,
                                     failure => object ->> 'failure_reason');
    if merged.status in ('failed', 'canceled') then
      perform private.flag_payment_problem(s.id, 'refund_failed', object);
    elsif (object #>> '{metadata,platform_fee_cents}')::bigint > 0 then
      -- The platform's share of the refund, given back from the application fee as an amount
      -- of its own, so that Stripe's proportional rounding cannot move a cent between shares.
      perform private.enqueue('payment', 'payment.fee_refund', 'payment.fee_refund:' || merged.provider_ref, s.id, null, null,
                              pg_catalog.jsonb_build_object('refund', merged.provider_ref, 'charge', merged.parent_ref,
                                                            'amount_cents', (object #>> '{metadata,platform_fee_cents}')::bigint));
    end if;

  elsif kind = 'fee_refund' then
    perform private.mirror_payment('application_fee_refund', object ->> 'id', s.id, private.stripe_id(object -> 'fee'), 'succeeded',
                                   (object ->> 'amount')::bigint, object ->> 'currency', reported);

  elsif kind = 'transfer_reversal' then
    perform private.mirror_payment('transfer_reversal', object ->> 'id', s.id, private.stripe_id(object -> 'transfer'), 'succeeded',
                                   (object ->> 'amount')::bigint, object ->> 'currency', reported);

  elsif kind = 'dispute' then
    merged := private.mirror_payment('dispute', object ->> 'id', s.id, private.stripe_id(object -> 'charge'), object ->> 'status',
                                     (object ->> 'amount')::bigint, object ->> 'currency', reported, failure => object ->> 'reason');
    if s.disputed_at is null then
      update public.sessions x set disputed_at = private.now() where x.id = s.id;
      perform private.audit(null, 'system', 'payment.disputed', 'sessions', s.id::text, null,
                            pg_catalog.jsonb_build_object('dispute', merged.provider_ref, 'amount_cents', merged.amount_cents,
                                                          'reason', object ->> 'reason', 'status', merged.status), null);
    end if;
  end if;
  return 'applied';
end
$$;
comment on function private.mirror_stripe_object(jsonb, timestamptz) is 'Applies a Stripe object (from an event or an API answer) to the ledger and the session, idempotently and in any order.';

create function private.flag_payment_problem(session uuid, problem text, object jsonb) returns void
language plpgsql security definer set search_path = '' as $$
begin
  update public.sessions s set payment_problem = problem where s.id = session and s.payment_problem is distinct from problem;
  if found then
    perform private.audit(null, 'system', 'payment.' || problem, 'sessions', session::text, null,
                          pg_catalog.jsonb_build_object('stripe_object', object ->> 'id', 'reason',
                            coalesce(object ->> 'failure_reason', object #>> '{error,message}', object ->> 'error')), null);
  end if;
end
$$;

-- An expert's Connect account as Stripe describes it; the account names its expert in metadata.
create function private.mirror_account(account jsonb, reported timestamptz) returns text
language plpgsql security definer set search_path = '' as $$
declare
  expert uuid;
begin
  select p.expert_id into expert from public.payout_accounts p where p.stripe_account_id = account ->> 'id';
  expert := coalesce(expert, (select e.id from public.expert_profiles e where e.id = private.try_uuid(account #>> '{metadata,expert_id}')));
  if expert is null then
    return 'ignored';
  end if;
  insert into public.payout_accounts as a (expert_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted, requirements_due, reported_at, created_at)
  values (expert, account ->> 'id', coalesce((account ->> 'charges_enabled')::boolean, false), coalesce((account ->> 'payouts_enabled')::boolean, false),
          coalesce((account ->> 'details_submitted')::boolean, false),
          coalesce(array(select pg_catalog.jsonb_array_elements_text(account #> '{requirements,currently_due}')), '{}'), reported, private.now())
  on conflict (expert_id) do update set
    charges_enabled = excluded.charges_enabled, payouts_enabled = excluded.payouts_enabled, details_submitted = excluded.details_submitted,
    requirements_due = excluded.requirements_due, reported_at = excluded.reported_at
  where a.stripe_account_id = excluded.stripe_account_id and excluded.reported_at >= a.reported_at;
  return 'applied';
end
$$;

-- Stripe objects the workers received in API answers (a PaymentIntent made at booking, an
-- account made for onboarding), mirrored as events are.
create function public.service_role_record_stripe_objects(objects jsonb) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  object jsonb;
  outcomes jsonb := '[]';
begin
  if pg_catalog.jsonb_typeof(objects) <> 'array' then
    raise exception using errcode = 'PT400', hint = 'invalid_objects', message = 'objects is an array of Stripe objects.';
  end if;
  for object in select * from pg_catalog.jsonb_array_elements(objects) loop
    -- Stripe's own times are whole seconds: an answer and an event of the same second are
    -- ordered by arrival.
    outcomes := outcomes || pg_catalog.to_jsonb(private.mirror_stripe_object(object, pg_catalog.date_trunc('second', private.now())));
  end loop;
  return outcomes;
end
$$;

-- Receives one verified Stripe event: stored, then applied. A delivery signed no later than one
-- already accepted is a replay (refused); a later one (Stripe retrying) changes nothing more once
-- the event was applied. An event that cannot be applied yet is kept and retried by the
-- dispatcher; one that fails to apply is kept with its error. Nothing is lost either way.
create function public.service_role_receive_stripe_event(event jsonb, signed_at bigint) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  stored public.stripe_events%rowtype;
  signed timestamptz := to_timestamp(signed_at);
begin
  if pg_catalog.jsonb_typeof(event) is distinct from 'object' or event ->> 'object' is distinct from 'event'
     or coalesce(event ->> 'id', '') !~ '^evt_[A-Za-z0-9]{1,64}$' or pg_catalog.jsonb_typeof(event -> 'created') is distinct from 'number'
     or pg_catalog.jsonb_typeof(event -> 'type') is distinct from 'string'
     or pg_catalog.jsonb_typeof(event #> '{data,object}') is distinct from 'object' then
    raise exception using errcode = 'PT400', hint = 'invalid_event', message = 'The body is not a Stripe event (id, type, created, data.object).';
  end if;
  select * into stored from public.stripe_events e where e.id = event ->> 'id' for update;
  if found then
    if signed <= stored.signed_at then
      raise exception using errcode = 'PT400', hint = 'replayed_delivery', message = 'This delivery was already received.';
    end if;
    if stored.status in ('applied', 'ignored') then
      update public.stripe_events e set signed_at = signed where e.id = stored.id;
      return pg_catalog.jsonb_build_object('event', stored.id, 'status', 'duplicate');
    end if;
    update public.stripe_events e set signed_at = signed, attempts = e.attempts + 1 where e.id = stored.id;
  else
    insert into public.stripe_events (id, type, account, created_at_stripe, payload, signed_at, status, received_at, next_attempt_at)
    values (event ->> 'id', event ->> 'type', event ->> 'account', private.stripe_time(event -> 'created'), event, signed, 'deferred',
            private.now(), private.now())
    returning * into stored;
  end if;
  -- The session it concerns, so that the receiver hands what it queued to the dispatcher.
  return pg_catalog.jsonb_build_object('event', stored.id, 'status', private.apply_stripe_event(stored.id),
                                       'session_id', private.stripe_session(event #> '{data,object}'));
end
$$;
comment on function public.service_role_receive_stripe_event(jsonb, bigint) is 'Stores and applies one verified Stripe event, idempotently per event id.';

-- The event types applied; any other is stored and ignored.
create function private.stripe_event_types() returns text[]
language sql immutable set search_path = '' as $$
  select array['payment_intent.created', 'payment_intent.amount_capturable_updated', 'payment_intent.succeeded', 'payment_intent.payment_failed',
               'payment_intent.canceled', 'payment_intent.processing', 'payment_intent.requires_action',
               'charge.succeeded', 'charge.captured', 'charge.failed', 'charge.refunded', 'charge.updated',
               'refund.created', 'refund.updated', 'refund.failed', 'charge.refund.updated',
               'application_fee.refunded', 'application_fee.refund.updated', 'transfer.reversed',
               'charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed', 'account.updated']
$$;

-- Applies a stored event, in a subtransaction: an error keeps the event (deferred, with the
-- error) and undoes only its partial effects.
create function private.apply_stripe_event(event_id text) returns text
language plpgsql security definer set search_path = '' as $$
declare
  stored public.stripe_events%rowtype;
  outcome text;
  failure text;
begin
  select * into stored from public.stripe_events e where e.id = event_id;
  begin
    outcome := case when stored.type = any (private.stripe_event_types())
                    then private.mirror_stripe_object(stored.payload #> '{data,object}', stored.created_at_stripe) else 'ignored' end;
  exception when others then
    get stacked diagnostics failure = message_text;
    outcome := 'deferred';
  end;
  update public.stripe_events e
     set status = case when outcome <> 'deferred' then outcome when e.attempts >= 20 then 'failed' else 'deferred' end,
         next_attempt_at = case when outcome = 'deferred' and e.attempts < 20
                                then private.now() + make_interval(mins => least((2 ^ least(e.attempts - 1, 10))::int, 60)) end,
         last_error = left(coalesce(failure, case when outcome = 'deferred' then 'names an object not known yet' end), 1000),
         applied_at = case when outcome in ('applied', 'ignored') then private.now() end
   where e.id = event_id
  returning e.status into outcome;
  return outcome;
end
$$;

-- The dispatcher's retry of deferred events, oldest first.
create function private.retry_stripe_events(batch_size int) returns int
language plpgsql security definer set search_path = '' as $$
declare
  event_id text;
  retried int := 0;
begin
  for event_id in
    select e.id from public.stripe_events e
    where e.status = 'deferred' and e.next_attempt_at <= private.now()
    order by e.next_attempt_at limit batch_size for update skip locked
  loop
    update public.stripe_events e set attempts = e.attempts + 1 where e.id = event_id;
    perform private.apply_stripe_event(event_id);
    retried := retried + 1;
  end loop;
  return retried;
end
$$;

-- What create-session makes the PaymentIntent with: the session's amount and currency, the
-- platform fee as the application fee, the expert's account as the destination, and manual
-- capture for a request (captured when the expert confirms).
create function public.service_role_payment_plan(session_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object(
    'session_id', s.id, 'amount_cents', s.amount_cents, 'currency', lower(s.currency), 'application_fee_cents', s.platform_fee_cents,
    'destination', a.stripe_account_id, 'manual_capture', not e.instant_booking,
    'description', pg_catalog.format('%s-minute session with %s', s.duration_minutes, coalesce(p.full_name, 'an expert')),
    'payment_due_at', s.payment_due_at)
  from public.sessions s
  join public.expert_profiles e on e.id = s.expert_id
  join public.profiles p on p.id = s.expert_id
  join public.payout_accounts a on a.expert_id = s.expert_id
  where s.id = service_role_payment_plan.session_id and s.status = 'awaiting_payment' and s.payment_intent_id is null
$$;

-- Undoes a booking whose PaymentIntent could not be made (Stripe down): nobody was told about
-- it, nothing was queued for it, so it is removed with its history; the audit row remains.
create function public.service_role_abandon_booking(session_id uuid, reason text, context jsonb default '{}') returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  removed public.sessions%rowtype;
begin
  delete from public.sessions s
   where s.id = service_role_abandon_booking.session_id and s.status = 'awaiting_payment' and s.payment_intent_id is null
  returning * into removed;
  if found then
    perform private.audit(removed.client_id, 'system', 'session.abandoned', 'sessions', removed.id::text, pg_catalog.to_jsonb(removed),
                          pg_catalog.jsonb_build_object('reason', left(reason, 500)), context);
  end if;
  return found;
end
$$;

-- What onboarding needs to know about an expert.
create function public.service_role_payout_account(expert_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object('expert_id', e.id, 'email', u.email, 'stripe_account_id', a.stripe_account_id,
                                       'charges_enabled', coalesce(a.charges_enabled, false), 'payouts_enabled', coalesce(a.payouts_enabled, false),
                                       'details_submitted', coalesce(a.details_submitted, false))
  from public.expert_profiles e join auth.users u on u.id = e.id
  left join public.payout_accounts a on a.expert_id = e.id
  where e.id = service_role_payout_account.expert_id
$$;

-- The ledger of a session summed up next to what the money rules say it should hold:
-- net = captured - refunded, the platform's share = application fee - fee refunds, the
-- expert's = captured - application fee - transfer reversals + fee refunds.
create function public.service_role_reconcile_session(session_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  with s as (select * from public.sessions x where x.id = service_role_reconcile_session.session_id),
  ledger as (
    select coalesce(sum(p.captured_cents) filter (where p.kind = 'charge' and p.status = 'succeeded'), 0) as captured,
           coalesce(sum(p.application_fee_cents) filter (where p.kind = 'charge' and p.status = 'succeeded' and p.captured_cents > 0), 0) as fee,
           -- A released authorisation refunds its uncaptured charge: no money came back from that.
           coalesce(sum(p.amount_cents) filter (where p.kind = 'refund' and p.status in ('pending', 'succeeded') and exists (
             select 1 from public.payments c where c.provider_ref = p.parent_ref and c.captured_cents > 0)), 0) as refunded,
           coalesce(sum(p.amount_cents) filter (where p.kind = 'application_fee_refund'), 0) as fee_refunded,
           coalesce(sum(p.amount_cents) filter (where p.kind = 'transfer_reversal'), 0) as reversed
    from public.payments p where p.session_id = service_role_reconcile_session.session_id
  ),
  expected as (
    select case when s.status in ('confirmed', 'in_progress', 'completed') or (s.status = 'cancelled' and s.refund_percent > 0)
                then s.amount_cents - coalesce(s.refund_amount_cents, 0) else 0 end as net,
           case when s.status in ('confirmed', 'in_progress', 'completed') or (s.status = 'cancelled' and s.refund_percent > 0)
                then s.platform_fee_cents - coalesce(s.refund_platform_fee_cents, 0) else 0 end as platform
    from s
  )
  select pg_catalog.jsonb_build_object(
    'session_id', s.id, 'status', s.status, 'currency', s.currency,
    'expected', pg_catalog.jsonb_build_object('net_cents', e.net, 'platform_fee_cents', e.platform, 'expert_payout_cents', e.net - e.platform),
    'ledger', pg_catalog.jsonb_build_object('captured_cents', l.captured, 'refunded_cents', l.refunded, 'net_cents', l.captured - l.refunded,
                                            'platform_fee_cents', l.fee - l.fee_refunded,
                                            'expert_payout_cents', l.captured - l.fee - l.reversed + l.fee_refunded,
                                            'transfer_reversed_cents', l.reversed),
    'reconciled', l.captured - l.refunded = e.net and l.fee - l.fee_refunded = e.platform
                  and l.captured - l.fee - l.reversed + l.fee_refunded = e.net - e.platform)
  from s, ledger l, expected e
$$;
comment on function public.service_role_reconcile_session(uuid) is 'A session''s ledger (what Stripe reported) against what the money rules say it should hold.';

grant execute on function public.service_role_record_stripe_objects(jsonb), public.service_role_receive_stripe_event(jsonb, bigint),
  public.service_role_payment_plan(uuid), public.service_role_abandon_booking(uuid, text, jsonb),
  public.service_role_payout_account(uuid), public.service_role_reconcile_session(uuid) to service_role;

-- The status machine, with the held slot: awaiting_payment becomes requested or confirmed only
-- when Stripe reports the payment (the system, never a user), or expires when its hold lapses; a
-- request must be answered by its deadline.
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
    ('awaiting_payment', 'requested'), ('awaiting_payment', 'confirmed'), ('awaiting_payment', 'expired'), ('awaiting_payment', 'cancelled'),
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
    if old.status = 'awaiting_payment' then
      raise exception using errcode = '42501', hint = 'payment_pending',
        message = 'This session is waiting for its payment; it becomes a request once the payment is authorised.';
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
  if old.status = 'requested' and new.status in ('confirmed', 'declined') and now >= least(old.starts_at, coalesce(old.answer_by, old.starts_at)) then
    raise exception using errcode = 'PT409', hint = 'too_late_to_answer',
      message = 'A request can be confirmed or declined only before its answer deadline (its start, or the card authorisation''s lifetime).';
  end if;
  if old.status = 'awaiting_payment' and new.status in ('requested', 'confirmed') and now >= old.starts_at then
    raise exception using errcode = 'PT409', hint = 'too_late_to_answer', message = 'A payment cannot book a session that has started.';
  end if;
  if new.status = 'cancelled' and now >= old.starts_at then
    raise exception using errcode = 'PT409', hint = 'already_started', message = 'A session cannot be cancelled once it has started.';
  end if;
  if new.status = 'expired' and not (
       (old.status = 'awaiting_payment' and now >= old.payment_due_at)
       or (old.status = 'requested' and now >= least(old.starts_at, coalesce(old.answer_by, old.starts_at)))
       or exists (select 1 from public.payments p where p.provider_ref = old.payment_intent_id and p.status = 'canceled')) then
    raise exception using errcode = 'PT409', hint = 'not_expired',
      message = 'A session expires only when its payment hold or answer deadline has passed, or its payment was cancelled.';
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

-- A held slot's invitation is first sent when the payment books it: its SEQUENCE starts there.
create or replace function private.bump_calendar_sequence() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.status is distinct from old.status and old.status <> 'awaiting_payment'
     and new.status in ('confirmed', 'declined', 'expired', 'cancelled') then
    new.calendar_sequence := old.calendar_sequence + 1;
  end if;
  return new;
end
$$;

-- Each transition's side effects. A held slot is announced to nobody until its payment books it
-- (requested or confirmed: emails, the room, webhooks); a hold that lapses or is cancelled
-- unpaid is not announced. The money follows: the expert's confirmation queues the capture, a
-- request or hold that ends queues the release of its authorisation, a cancellation of a
-- confirmed session queues the refund its policy gave.
create or replace function private.enqueue_session_events() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  event text;
  recipients uuid[];
  recipient uuid;
  email_payload jsonb;
  endpoint public.webhook_endpoints%rowtype;
  occurred timestamptz := private.now();
  was text := case when tg_op = 'UPDATE' then old.status end;
begin
  if tg_op = 'UPDATE' and new.status is distinct from old.status and new.payment_intent_id is not null then
    if was = 'requested' and new.status = 'confirmed' then
      perform private.enqueue('payment', 'payment.capture', 'payment.capture:' || new.payment_intent_id, new.id, null, null,
                              pg_catalog.jsonb_build_object('payment_intent', new.payment_intent_id));
    elsif was in ('awaiting_payment', 'requested') and new.status in ('declined', 'expired', 'cancelled') then
      perform private.enqueue('payment', 'payment.release', 'payment.release:' || new.payment_intent_id, new.id, null, null,
                              pg_catalog.jsonb_build_object('payment_intent', new.payment_intent_id,
                                                            'reason', case when new.status = 'cancelled' then 'requested_by_customer' else 'abandoned' end));
    elsif was = 'confirmed' and new.status = 'cancelled' and new.refund_amount_cents > 0 then
      perform private.enqueue('payment', 'payment.refund', 'payment.refund:' || new.payment_intent_id, new.id, null, null,
                              pg_catalog.jsonb_build_object('payment_intent', new.payment_intent_id, 'amount_cents', new.refund_amount_cents,
                                                            'platform_fee_cents', new.refund_platform_fee_cents, 'reason', 'requested_by_customer'));
    end if;
  end if;

  event := case
    when tg_op = 'INSERT' and new.status in ('requested', 'confirmed') then 'session.' || new.status
    when tg_op = 'UPDATE' and new.status is distinct from old.status and not (was = 'awaiting_payment' and new.status in ('expired', 'cancelled'))
      then 'session.' || new.status
  end;
  if event is null or event not in ('session.requested', 'session.confirmed', 'session.declined', 'session.expired',
                                    'session.cancelled', 'session.completed') then
    return null;
  end if;

  recipients := case when event = 'session.completed' then array[new.client_id] else array[new.client_id, new.expert_id] end;
  email_payload := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'sequence', new.calendar_sequence,
    'was_confirmed', case when tg_op = 'UPDATE' then old.status = 'confirmed' end,
    'reason', nullif(new.cancellation_reason, ''),
    'cancelled_by', case when new.cancelled_by is null then null when new.cancelled_by = new.client_id then 'client' else 'expert' end,
    'refund_percent', new.refund_percent, 'refund_amount_cents', new.refund_amount_cents));
  foreach recipient in array recipients loop
    perform private.enqueue('email', event, pg_catalog.format('email:%s:%s:%s', event, new.id, recipient), new.id, recipient, null, email_payload);
  end loop;

  if tg_op = 'INSERT' or was = 'awaiting_payment' then
    perform private.enqueue('room', 'room.create', 'room.create:' || new.id, new.id, null, null, '{}');
  elsif event in ('session.declined', 'session.expired', 'session.cancelled', 'session.completed') then
    perform private.enqueue('room', 'room.delete', 'room.delete:' || new.id, new.id, null, null, '{}');
  end if;

  for endpoint in
    select * from public.webhook_endpoints w
    where w.disabled_at is null and (event = any (w.event_types) or '*' = any (w.event_types))
  loop
    perform private.enqueue('webhook', event, pg_catalog.format('webhook:%s:%s:%s', endpoint.id, event, new.id), new.id, null, endpoint.id,
      pg_catalog.jsonb_build_object('type', event, 'timestamp', occurred, 'data', private.session_event_data(new)));
  end loop;
  return null;
end
$$;

-- The system's transitions: holds whose payment never came and requests unanswered by their
-- deadline expire, sessions in progress past their end plus the grace are completed, and Stripe
-- events that could not be applied yet are tried again. Each transition is audited.
create or replace function private.advance_sessions(batch_size int, grace_minutes int) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  now timestamptz := private.now();
  lapsed uuid[];
  expired uuid[];
  completed uuid[];
  retried int;
begin
  if batch_size not between 1 and 1000 or grace_minutes not between 0 and 1440 then
    raise exception using errcode = 'PT400', hint = 'invalid_batch', message = 'Advance 1 to 1000 sessions with a grace of 0 to 1440 minutes.';
  end if;
  with due as (
    select s.id from public.sessions s
    where s.status = 'awaiting_payment' and s.payment_due_at <= now
    order by s.payment_due_at limit batch_size for update skip locked
  ),
  moved as (update public.sessions s set status = 'expired' from due where s.id = due.id returning s.id)
  select coalesce(pg_catalog.array_agg(id), '{}') into lapsed from moved;
  perform private.audit_system('session.hold_lapsed', id, 'awaiting_payment', 'expired') from unnest(lapsed) as id;

  with due as (
    select s.id from public.sessions s
    where s.status = 'requested' and s.answer_by <= now
    order by s.answer_by limit batch_size for update skip locked
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

  retried := private.retry_stripe_events(batch_size);

  return pg_catalog.jsonb_build_object('expired', cardinality(expired) + cardinality(lapsed), 'holds_lapsed', cardinality(lapsed),
                                       'completed', cardinality(completed), 'stripe_events_retried', retried);
end
$$;

-- A request is priced as before; it now holds its slot as awaiting_payment until Stripe reports
-- the payment, for the hold the platform settings give, and only for an expert whose account can
-- take charges. A client holds at most a few unpaid slots at once.
create or replace function public.expert_quote(expert_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object('expert_id', e.id, 'hourly_rate_cents', e.hourly_rate_cents, 'currency', e.currency,
                                       'commission_bps', private.commission_bps_for(e.id), 'instant_booking', e.instant_booking,
                                       'accepts_payments', e.accepts_payments)
  from public.expert_profiles e where e.id = expert_quote.expert_id and e.is_active
$$;

create or replace function public.book_session(
  expert_id uuid, starts_at timestamptz, duration_minutes int, hourly_rate_cents bigint, commission_bps int,
  amount_cents bigint, platform_fee_cents bigint, expert_payout_cents bigint, currency text,
  notes text default '', context jsonb default '{}'
) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  now timestamptz := private.now();
  expert public.expert_profiles%rowtype;
  settings private.platform_settings%rowtype;
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
  if not expert.accepts_payments then
    raise exception using errcode = 'PT409', hint = 'payments_not_enabled', message = 'This expert cannot take payments yet.';
  end if;
  select * into settings from private.platform_settings;
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
  if (select count(*) from public.sessions s where s.client_id = caller and s.status = 'awaiting_payment' and s.payment_due_at > now)
     >= settings.max_payment_holds then
    raise exception using errcode = 'PT429', hint = 'too_many_holds',
      message = pg_catalog.format('You have %s unpaid bookings waiting for payment; pay for or cancel one first.', settings.max_payment_holds),
      detail = pg_catalog.jsonb_build_object('retry_after', settings.payment_hold_minutes * 60)::text;
  end if;
  if not private.is_within_availability(expert.id, starts_at, ends) then
    raise exception using errcode = 'PT409', hint = 'outside_availability', message = 'The expert is not available at that time.';
  end if;
  if exists (select 1 from public.sessions s where s.expert_id = expert.id and s.status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress')
             and tstzrange(s.starts_at, s.ends_at) && tstzrange(book_session.starts_at, ends)) then
    raise exception using errcode = 'PT409', hint = 'slot_taken', message = 'That time is already booked with this expert.';
  end if;
  if exists (select 1 from public.sessions s where s.client_id = caller and s.status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress')
             and tstzrange(s.starts_at, s.ends_at) && tstzrange(book_session.starts_at, ends)) then
    raise exception using errcode = 'PT409', hint = 'client_busy', message = 'You already have a session at that time.';
  end if;

  begin
    insert into public.sessions (id, client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents,
                                 platform_fee_cents, expert_payout_cents, commission_bps, currency, notes, payment_due_at)
    values (gen_random_uuid(), caller, expert.id, starts_at, ends, duration_minutes, 'awaiting_payment',
            expert.hourly_rate_cents, amount, fee, amount - fee, bps, expert.currency, coalesce(notes, ''),
            now + make_interval(mins => settings.payment_hold_minutes))
    returning * into booked;
  exception
    when exclusion_violation or deadlock_detected or serialization_failure then
      raise exception using errcode = 'PT409', hint = 'slot_taken', message = 'That time was just booked by someone else.';
  end;

  perform private.audit(caller, 'authenticated', 'session.created', 'sessions', booked.id::text, null, pg_catalog.to_jsonb(booked), context);

  return pg_catalog.to_jsonb(booked);
end
$$;

-- Refunds follow the session: only a confirmed session was charged (captured, or its capture
-- queued); anything earlier refunds nothing and has its authorisation released.
create or replace function private.allowed_refund(session public.sessions, actor uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  with policy as (
    select case when session.status <> 'confirmed' then 0
                when actor = session.expert_id then 100
                when session.starts_at - private.now() > interval '24 hours' then 100
                else 50 end as percent
  ),
  amount as (
    select p.percent, case p.percent when 100 then session.amount_cents when 50 then (session.amount_cents + 1) / 2 else 0 end as cents
    from policy p
  )
  select pg_catalog.jsonb_build_object(
    'percent', a.percent, 'amount_cents', a.cents,
    'platform_fee_cents', (session.platform_fee_cents * a.cents * 2 + session.amount_cents) / (session.amount_cents * 2),
    'expert_payout_cents', a.cents - (session.platform_fee_cents * a.cents * 2 + session.amount_cents) / (session.amount_cents * 2))
  from amount a
$$;

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
  if session.status not in ('awaiting_payment', 'requested', 'confirmed') then
    raise exception using errcode = 'PT409', hint = 'not_cancellable',
      message = pg_catalog.format('A %s session cannot be cancelled.', replace(session.status, '_', ' '));
  end if;
  if private.now() >= session.starts_at then
    raise exception using errcode = 'PT409', hint = 'already_started', message = 'A session cannot be cancelled once it has started.';
  end if;
  allowed := private.allowed_refund(session, actor_id);
  if (refund_percent, refund_amount_cents, refund_fee_cents, refund_payout_cents)
     is distinct from ((allowed ->> 'percent')::int, (allowed ->> 'amount_cents')::bigint,
                       (allowed ->> 'platform_fee_cents')::bigint, (allowed ->> 'expert_payout_cents')::bigint) then
    raise exception using errcode = 'PT409', hint = 'refund_mismatch',
      message = 'The refund is not the one the cancellation policy gives now; try again.',
      detail = pg_catalog.jsonb_build_object('allowed', allowed)::text;
  end if;

  -- The status machine moves the money: the refund (or the release) is queued by the trigger.
  update public.sessions s
     set status = 'cancelled', cancelled_by = actor_id, cancelled_at = private.now(), cancellation_reason = nullif(reason, ''),
         refund_amount_cents = service_role_cancel_session.refund_amount_cents, refund_percent = service_role_cancel_session.refund_percent,
         refund_platform_fee_cents = refund_fee_cents, refund_expert_payout_cents = refund_payout_cents, payment_due_at = null
   where s.id = session.id
  returning * into cancelled;

  perform private.audit(actor_id, 'authenticated', 'session.cancelled', 'sessions', session.id::text, pg_catalog.to_jsonb(session), pg_catalog.to_jsonb(cancelled), context);

  return pg_catalog.jsonb_build_object('session', pg_catalog.to_jsonb(cancelled), 'newly_cancelled', true);
end
$$;

-- Held slots are busy for the search too.
create or replace function private.free_slots(expert uuid, window_from timestamptz, window_to timestamptz, minutes int, max_slots int default 3)
returns setof timestamptz
language plpgsql stable security definer set search_path = '' as $$
begin
  return query
  with bounds as (
    select e.timezone as tz, greatest(window_from, private.now() + interval '1 hour') as lo,
           least(window_to, private.now() + interval '90 days' + make_interval(mins => minutes)) as hi,
           private.now() + interval '90 days' as last_start
    from public.expert_profiles e where e.id = expert
  ),
  days as (
    select d::date as day, b.* from bounds b,
      generate_series((b.lo at time zone b.tz)::date::timestamp, (b.hi at time zone b.tz)::date::timestamp, interval '1 day') as d
    where b.lo < b.hi
  ),
  windows as (
    select d.day, d.tz, d.lo, d.hi, d.last_start,
           tstzrange((d.day + make_interval(mins => r.start_minute)) at time zone d.tz, (d.day + make_interval(mins => r.end_minute)) at time zone d.tz) as win
    from days d join public.availability_rules r on r.expert_id = expert and r.weekday = extract(dow from d.day)::int
    union all
    select d.day, d.tz, d.lo, d.hi, d.last_start,
           tstzrange((d.day + make_interval(mins => x.start_minute)) at time zone d.tz, (d.day + make_interval(mins => x.end_minute)) at time zone d.tz)
    from days d join public.availability_exceptions x on x.expert_id = expert and x.on_date = d.day and x.kind = 'extra'
  ),
  pieces as (
    select w.*, lower(w.win) as anchor, piece
    from windows w,
    unnest(tstzmultirange(w.win) - coalesce((
      select range_agg(busy.during) from (
        select tstzrange((w.day + make_interval(mins => coalesce(x.start_minute, 0))) at time zone w.tz,
                         (w.day + make_interval(mins => coalesce(x.end_minute, 1440))) at time zone w.tz) as during
        from public.availability_exceptions x where x.expert_id = expert and x.on_date = w.day and x.kind = 'blocked'
        union all
        select tstzrange(s.starts_at, s.ends_at) from public.sessions s
        where s.expert_id = expert and s.status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress')
          and tstzrange(s.starts_at, s.ends_at) && w.win
      ) busy), '{}'::tstzmultirange)) as piece
    where not isempty(w.win)
  ),
  spans as (
    select p.anchor + make_interval(mins => 15 * ceil(extract(epoch from greatest(lower(p.piece), p.lo) - p.anchor) / 900)::int) as first_start,
           least(upper(p.piece), p.hi) - make_interval(mins => minutes) as last_fit, p.last_start
    from pieces p
  )
  select distinct slot from spans s, generate_series(s.first_start, least(s.last_fit, s.last_start), interval '15 minutes') as slot
  order by slot
  limit max_slots;
end
$$;

-- Payment work for the dispatcher. A refund waits for its session's capture; a fee refund for
-- the application fee it draws on to be known. What no longer applies is skipped.
create function private.payment_ready(item public.outbox) returns boolean
language sql stable security definer set search_path = '' as $$
  select case item.topic
    when 'payment.refund' then not exists (
      select 1 from public.outbox c where c.session_id = item.session_id and c.topic = 'payment.capture' and c.status in ('pending', 'sending'))
    when 'payment.fee_refund' then exists (
      select 1 from public.payments p where p.provider_ref = item.payload ->> 'charge' and p.fee_ref is not null)
    else true
  end
$$;

create or replace function private.outbox_skip_reason(item public.outbox) returns text
language sql stable security definer set search_path = '' as $$
  select case
    when item.topic like 'reminder.%' then (
      select case when s.status <> 'confirmed' then 'session_' || s.status
                  when private.now() >= s.starts_at - case item.topic when 'reminder.24h' then interval '1 hour' else interval '0' end then 'moment_passed'
             end
      from public.sessions s where s.id = item.session_id)
    when item.topic = 'room.create' then (
      select 'session_' || s.status from public.sessions s where s.id = item.session_id and s.status not in ('requested', 'confirmed', 'in_progress'))
    when item.channel = 'webhook' then (
      select 'endpoint_disabled' from public.webhook_endpoints w where w.id = item.endpoint_id and w.disabled_at is not null)
    -- A capture for a session cancelled meanwhile still runs: the cancellation's refund follows it.
    when item.topic = 'payment.refund' then (
      select 'capture_failed' from public.outbox c where c.session_id = item.session_id and c.topic = 'payment.capture' and c.status = 'failed')
  end
$$;

create or replace function private.outbox_work(item public.outbox) returns jsonb
language sql stable security definer set search_path = '' as $$
  select case item.channel
    when 'email' then pg_catalog.jsonb_build_object(
      'id', item.id, 'topic', item.topic, 'attempts', item.attempts, 'payload', item.payload, 'queued_at', item.created_at,
      'recipient', pg_catalog.jsonb_build_object('id', p.id, 'email', u.email, 'name', p.full_name,
        'side', case when s.client_id = p.id then 'client' when s.expert_id = p.id then 'expert' end),
      'contacts', case when item.session_id is not null then public.service_role_session_contacts(item.session_id) end)
    when 'room' then pg_catalog.jsonb_build_object(
      'id', item.id, 'topic', item.topic, 'attempts', item.attempts, 'room_name', s.room_name,
      'not_before', pg_catalog.floor(extract(epoch from s.starts_at - interval '15 minutes'))::bigint,
      'expires', pg_catalog.floor(extract(epoch from s.ends_at + interval '1 hour'))::bigint)
    when 'payment' then item.payload || pg_catalog.jsonb_build_object(
      'id', item.id, 'topic', item.topic, 'attempts', item.attempts, 'idempotency_key', item.dedupe_key, 'session_id', item.session_id,
      'currency', lower(s.currency),
      'fee', (select c.fee_ref from public.payments c where c.provider_ref = item.payload ->> 'charge'))
    else pg_catalog.jsonb_build_object(
      'id', item.id, 'topic', item.topic, 'attempts', item.attempts, 'webhook_id', 'msg_' || replace(item.id::text, '-', ''),
      'url', w.url, 'secret', w.secret, 'body', item.payload)
  end
  from (select 1) as one
  left join public.profiles p on p.id = item.recipient_id
  left join auth.users u on u.id = item.recipient_id
  left join public.sessions s on s.id = item.session_id
  left join public.webhook_endpoints w on w.id = item.endpoint_id
$$;

-- Claims as before, with payment operations first among the calls, handed over as `payments`.
create or replace function public.service_role_claim_outbox(email_batch int default 100, calls int default 10, lease_seconds int default 300,
                                                            only_session uuid default null, only_ids uuid[] default null) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  now timestamptz := private.now();
  batch text;
  claimed uuid[] := '{}';
  claim jsonb;
  remaining jsonb;
begin
  if email_batch not between 0 and 100 or calls not between 0 and 100 or lease_seconds not between 1 and 3600 then
    raise exception using errcode = 'PT400', hint = 'invalid_claim', message = 'A claim takes 0 to 100 emails and calls for 1 to 3600 seconds.';
  end if;

  if email_batch > 0 then
    select o.batch_key into batch from public.outbox o
    where o.channel = 'email' and o.batch_key is not null
      and ((o.status = 'pending' and o.next_attempt_at <= now) or (o.status = 'sending' and o.lease_expires_at <= now))
      and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids))
      and not exists (select 1 from public.outbox live where live.batch_key = o.batch_key and live.status = 'sending' and live.lease_expires_at > now)
    order by o.next_attempt_at limit 1;
    if batch is not null then
      select coalesce(pg_catalog.array_agg(t.id), '{}') into claimed from (
        select o.id from public.outbox o where o.batch_key = batch and o.status in ('pending', 'sending') for update skip locked) t;
    else
      select coalesce(pg_catalog.array_agg(t.id), '{}') into claimed from (
        select o.id from public.outbox o
        where o.channel = 'email' and o.status = 'pending' and o.batch_key is null and o.next_attempt_at <= now
          and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids))
        order by o.next_attempt_at, o.created_at, o.id limit email_batch for update skip locked) t;
    end if;
  end if;
  if calls > 0 then
    select claimed || coalesce(pg_catalog.array_agg(t.id), '{}') into claimed from (
      select o.id from public.outbox o
      where o.channel in ('payment', 'room', 'webhook')
        and ((o.status = 'pending' and o.next_attempt_at <= now) or (o.status = 'sending' and o.lease_expires_at <= now))
        and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids))
        and (o.channel <> 'payment' or private.payment_ready(o))
      order by o.channel = 'payment' desc, o.channel = 'room' desc, o.next_attempt_at, o.created_at, o.id limit calls for update skip locked) t;
  end if;

  with judged as (
    select o.id, o.channel, private.outbox_skip_reason(o) as skip_reason, o.attempts >= o.max_attempts as exhausted
    from public.outbox o where o.id = any (claimed)
  ),
  skipped as (
    update public.outbox o set status = 'skipped', skip_reason = j.skip_reason, lease_expires_at = null
    from judged j where o.id = j.id and j.skip_reason is not null
    returning o.id
  ),
  given_up as (
    update public.outbox o set status = 'failed', lease_expires_at = null,
           last_error = left(coalesce(o.last_error, 'lease expired') || ' (gave up after ' || o.attempts || ' attempts)', 1000)
    from judged j where o.id = j.id and j.skip_reason is null and j.exhausted
    returning o.id
  ),
  new_key as (
    select 'outbox/' || pg_catalog.md5(pg_catalog.string_agg(j.id::text, ',' order by j.id)) as batch_key
    from judged j where j.channel = 'email' and j.skip_reason is null and not j.exhausted
  ),
  leased as (
    update public.outbox o
       set status = 'sending', attempts = o.attempts + 1, lease_expires_at = now + make_interval(secs => lease_seconds),
           batch_key = case when o.channel = 'email' then coalesce(o.batch_key, (select k.batch_key from new_key k)) end
      from judged j
     where o.id = j.id and j.skip_reason is null and not j.exhausted
    returning o.*
  )
  select pg_catalog.jsonb_build_object(
           'batch_key', max(l.batch_key),
           'emails', coalesce(pg_catalog.jsonb_agg(private.outbox_work(l) order by l.next_attempt_at, l.created_at, l.id) filter (where l.channel = 'email'), '[]'),
           'rooms', coalesce(pg_catalog.jsonb_agg(private.outbox_work(l) order by l.next_attempt_at, l.created_at, l.id) filter (where l.channel = 'room'), '[]'),
           'webhooks', coalesce(pg_catalog.jsonb_agg(private.outbox_work(l) order by l.next_attempt_at, l.created_at, l.id) filter (where l.channel = 'webhook'), '[]'),
           'payments', coalesce(pg_catalog.jsonb_agg(private.outbox_work(l) order by l.next_attempt_at, l.created_at, l.id) filter (where l.channel = 'payment'), '[]'),
           'skipped', (select count(*) from skipped), 'failed', (select count(*) from given_up))
    into claim
  from leased l;
  perform private.flag_payment_problem(o.session_id, replace(o.topic, 'payment.', '') || '_failed', pg_catalog.jsonb_build_object('error', o.last_error))
  from public.outbox o where o.id = any (claimed) and o.channel = 'payment' and o.status = 'failed';

  select pg_catalog.jsonb_build_object(
           'email', count(*) filter (where o.channel = 'email'), 'room', count(*) filter (where o.channel = 'room'),
           'webhook', count(*) filter (where o.channel = 'webhook'), 'payment', count(*) filter (where o.channel = 'payment'))
    into remaining
  from public.outbox o
  where ((o.status = 'pending' and o.next_attempt_at <= now) or (o.status = 'sending' and o.lease_expires_at <= now))
    and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids))
    and (o.channel <> 'payment' or private.payment_ready(o));

  return claim || pg_catalog.jsonb_build_object('remaining', remaining);
end
$$;

-- Whether a payment operation's goal is reached, whatever its own call answered: a capture
-- when the PaymentIntent succeeded, a release when it was cancelled, or when it succeeded (the
-- money is then refunded as the session's, already queued).
create function private.payment_goal_reached(item public.outbox) returns boolean
language sql stable security definer set search_path = '' as $$
  select case item.topic
    when 'payment.capture' then exists (select 1 from public.payments p where p.provider_ref = item.payload ->> 'payment_intent' and p.status = 'succeeded')
    when 'payment.release' then exists (select 1 from public.payments p where p.provider_ref = item.payload ->> 'payment_intent' and p.status in ('canceled', 'succeeded'))
    else false
  end
$$;

-- Records outcomes as before; for payments, Stripe's answer (the object it returned, or the
-- object its error names) is mirrored first, an error Stripe will answer the same way again
-- (`permanent`) fails the operation at once unless its goal is reached anyway, and an operation
-- failed for good flags its session for an operator.
create or replace function public.service_role_complete_outbox(results jsonb) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  now timestamptz := private.now();
  outcome jsonb;
  reported jsonb;
begin
  for reported in
    select item from pg_catalog.jsonb_array_elements(results) as item
    where pg_catalog.jsonb_typeof(item -> 'object') = 'object'
      and exists (select 1 from public.outbox o where o.id = private.try_uuid(item ->> 'id') and o.status = 'sending' and o.channel = 'payment')
  loop
    perform private.mirror_stripe_object(reported -> 'object', pg_catalog.date_trunc('second', now));
  end loop;

  with reported as (
    select (item ->> 'id')::uuid as id, left(item ->> 'provider_ref', 300) as provider_ref, left(item ->> 'error', 1000) as error,
           (item ->> 'status_code')::int as status_code, (item ->> 'latency_ms')::int as latency_ms, left(item ->> 'response_excerpt', 500) as excerpt,
           coalesce((item ->> 'permanent')::boolean, false) as permanent
    from pg_catalog.jsonb_array_elements(results) as item
  ),
  judged as (
    select r.*, o.channel = 'payment' and r.provider_ref is null and private.payment_goal_reached(o) as goal_reached
    from reported r join public.outbox o on o.id = r.id and o.status = 'sending'
  ),
  updated as (
    update public.outbox o
       set status = case when j.provider_ref is not null or j.goal_reached then 'sent'
                         when o.attempts >= o.max_attempts or j.permanent then 'failed' else 'pending' end,
           provider_ref = coalesce(j.provider_ref, case when j.goal_reached then o.payload ->> 'payment_intent' end),
           sent_at = case when j.provider_ref is not null or j.goal_reached then now end,
           last_error = case when j.provider_ref is null then coalesce(j.error, 'no answer') else o.last_error end,
           next_attempt_at = case when j.provider_ref is null then now + private.outbox_backoff(o.channel, o.attempts) else o.next_attempt_at end,
           lease_expires_at = null
      from judged j
     where o.id = j.id and o.status = 'sending'
    returning o.id, o.channel, o.topic, o.session_id, o.endpoint_id, o.attempts, o.status, j.status_code, j.latency_ms, j.excerpt, j.error
  ),
  logged as (
    insert into public.webhook_attempts (outbox_id, endpoint_id, attempt, status_code, latency_ms, response_excerpt, error, created_at)
    select u.id, u.endpoint_id, u.attempts, u.status_code, u.latency_ms, u.excerpt, case when u.status <> 'sent' then u.error end, now
    from updated u where u.channel = 'webhook'
    returning endpoint_id, error is null as ok
  ),
  endpoints as (
    update public.webhook_endpoints w
       set failing_since = case when h.any_ok then null else coalesce(w.failing_since, now) end,
           disabled_at = case when not h.any_ok and coalesce(w.failing_since, now) <= now - interval '24 hours' then now end,
           disabled_reason = case when not h.any_ok and coalesce(w.failing_since, now) <= now - interval '24 hours'
                                  then 'every delivery failed for 24 hours' end
      from (select endpoint_id, bool_or(ok) as any_ok from logged group by endpoint_id) h
     where w.id = h.endpoint_id and w.disabled_at is null
    returning w.id
  )
  select pg_catalog.jsonb_build_object(
    'sent', count(*) filter (where status = 'sent'),
    'retrying', count(*) filter (where status = 'pending'),
    'failed', count(*) filter (where status = 'failed'))
    into outcome
  from updated;
  perform private.flag_payment_problem(o.session_id, replace(o.topic, 'payment.', '') || '_failed', pg_catalog.jsonb_build_object('error', o.last_error))
  from public.outbox o
  where o.id in (select private.try_uuid(item ->> 'id') from pg_catalog.jsonb_array_elements(results) as item)
    and o.channel = 'payment' and o.status = 'failed';
  return outcome;
end
$$;

-- Rooms are wanted for sessions a payment booked.
create or replace function public.service_role_rooms_missing(within_minutes int default 60)
returns table (session_id uuid, starts_at timestamptz, status text, attempts smallint, last_error text)
language sql stable security definer set search_path = '' as $$
  select o.session_id, s.starts_at, s.status, o.attempts, o.last_error
  from public.outbox o join public.sessions s on s.id = o.session_id
  where o.topic = 'room.create' and o.status in ('pending', 'sending', 'failed')
    and s.status in ('requested', 'confirmed') and s.starts_at between private.now() and private.now() + make_interval(mins => within_minutes)
  order by s.starts_at
$$;
