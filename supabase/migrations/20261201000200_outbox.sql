-- One outbox for every side effect: emails (notifications, reminders, account emails), video
-- rooms and outbound webhooks. Rows are written by triggers and by the functions that change
-- state, in the same transaction as the change, so that a committed change always has its side
-- effects queued and a rolled-back one never does. The dispatcher (booking-reminders, and the
-- request that queued the work, right after answering) claims due rows under a lease, carries
-- them out with idempotency keys and records the outcome, retrying with backoff.

-- The Send Email hook's replay protection keeps its table under a name that says what it is.
alter table public.webhook_deliveries rename to received_webhooks;
alter index public.webhook_deliveries_received_at_idx rename to received_webhooks_received_at_idx;
alter table public.received_webhooks rename constraint webhook_deliveries_id_check to received_webhooks_id_check;
comment on table public.received_webhooks is 'Standard Webhooks ids of Send Email hook deliveries already processed, so that a replayed delivery is refused.';
create or replace function public.service_role_record_webhook(webhook_id text) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  inserted int;
begin
  delete from public.received_webhooks where received_at < private.now() - interval '1 day';
  insert into public.received_webhooks (id, received_at) values (webhook_id, private.now()) on conflict (id) do nothing;
  get diagnostics inserted = row_count;
  return inserted = 1;
end
$$;
create or replace function public.service_role_forget_webhook(webhook_id text) returns void
language sql security definer set search_path = '' as $$
  delete from public.received_webhooks where id = webhook_id
$$;

-- Operators' automation endpoints (n8n, Zapier, ...): registered through the service role.
create function private.webhook_event_types() returns text[]
language sql immutable set search_path = '' as $$
  select array['session.requested', 'session.confirmed', 'session.declined', 'session.expired', 'session.cancelled', 'session.completed']
$$;
comment on function private.webhook_event_types() is 'The catalogue of outbound webhook event types.';
-- The endpoints' CHECK calls it as whoever registers one: the service role.
grant execute on function private.webhook_event_types() to service_role;

create table public.webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  url text not null check (url ~ '^https?://[^\s]+$' and char_length(url) <= 2000),
  description text not null default '' check (char_length(description) <= 500),
  event_types text[] not null
    check (cardinality(event_types) between 1 and 50 and event_types <@ (private.webhook_event_types() || '*'::text)),
  -- Standard Webhooks secret, shown once to the operator who registers the endpoint.
  secret text not null default 'whsec_' || pg_catalog.encode(extensions.gen_random_bytes(32), 'base64')
    check (secret ~ '^whsec_[A-Za-z0-9+/]{32,}={0,2}$'),
  disabled_at timestamptz,
  disabled_reason text check (char_length(disabled_reason) <= 500),
  failing_since timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint webhook_endpoints_disabled_has_reason check ((disabled_at is null) = (disabled_reason is null))
);
comment on table public.webhook_endpoints is 'Outbound webhook endpoints: URL, subscribed event types (or *), signing secret; disabled after 24 hours of failing every attempt.';
create trigger webhook_endpoints_updated_at before update on public.webhook_endpoints for each row execute function private.set_updated_at();

-- The outbox.
create table public.outbox (
  id uuid primary key default gen_random_uuid(),
  channel text not null check (channel in ('email', 'room', 'webhook')),
  -- What to do: session.confirmed, reminder.24h, account.password_reset, room.create, ...
  topic text not null check (topic ~ '^[a-z_]+(\.[a-z0-9_]+)+$' and char_length(topic) <= 100),
  -- Queuing the same side effect twice is a no-op.
  dedupe_key text not null unique check (char_length(dedupe_key) <= 300),
  session_id uuid references public.sessions (id) on delete cascade,
  recipient_id uuid references public.profiles (id) on delete cascade,
  endpoint_id uuid references public.webhook_endpoints (id) on delete cascade,
  payload jsonb not null default '{}' check (jsonb_typeof(payload) = 'object'),
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed', 'skipped')),
  attempts smallint not null default 0,
  max_attempts smallint not null check (max_attempts between 1 and 100),
  due_at timestamptz not null,
  next_attempt_at timestamptz not null,
  lease_expires_at timestamptz,
  -- Emails go out in batches whose idempotency key is kept until the batch is sent.
  batch_key text check (char_length(batch_key) <= 100),
  last_error text check (char_length(last_error) <= 1000),
  skip_reason text check (char_length(skip_reason) <= 200),
  provider_ref text check (char_length(provider_ref) <= 300),
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint outbox_attempts_within_max check (attempts between 0 and max_attempts),
  constraint outbox_sending_has_lease check ((status = 'sending') = (lease_expires_at is not null)),
  constraint outbox_sent_has_ref check ((status = 'sent') = (sent_at is not null and provider_ref is not null)),
  constraint outbox_skipped_has_reason check ((status = 'skipped') = (skip_reason is not null)),
  constraint outbox_email_has_recipient check (channel <> 'email' or recipient_id is not null),
  constraint outbox_webhook_has_endpoint check ((channel = 'webhook') = (endpoint_id is not null)),
  constraint outbox_room_has_session check (channel <> 'room' or session_id is not null)
);
comment on table public.outbox is 'Every side effect of a state change, queued in its transaction and carried out by the dispatcher with leases, idempotency keys and backoff.';
create index outbox_due_idx on public.outbox (channel, next_attempt_at) where status = 'pending';
create index outbox_lease_idx on public.outbox (channel, lease_expires_at) where status = 'sending';
create index outbox_batch_key_idx on public.outbox (batch_key) where batch_key is not null and status in ('pending', 'sending');
create index outbox_session_id_idx on public.outbox (session_id, topic);
create index outbox_recipient_id_idx on public.outbox (recipient_id);
create index outbox_endpoint_id_idx on public.outbox (endpoint_id, created_at);
create trigger outbox_updated_at before update on public.outbox for each row execute function private.set_updated_at();

-- One row per attempt to deliver a webhook: what the endpoint answered and how fast.
create table public.webhook_attempts (
  id bigint generated always as identity primary key,
  outbox_id uuid not null references public.outbox (id) on delete cascade,
  endpoint_id uuid not null references public.webhook_endpoints (id) on delete cascade,
  attempt smallint not null check (attempt >= 1),
  status_code integer check (status_code between 100 and 599),
  latency_ms integer check (latency_ms >= 0),
  response_excerpt text check (char_length(response_excerpt) <= 500),
  error text check (char_length(error) <= 1000),
  created_at timestamptz not null default now()
);
comment on table public.webhook_attempts is 'The delivery log of outbound webhooks: one row per attempt.';
create index webhook_attempts_outbox_id_idx on public.webhook_attempts (outbox_id, attempt);
create index webhook_attempts_endpoint_id_idx on public.webhook_attempts (endpoint_id, created_at);

alter table public.webhook_endpoints enable row level security;
alter table public.webhook_endpoints force row level security;
alter table public.outbox enable row level security;
alter table public.outbox force row level security;
alter table public.webhook_attempts enable row level security;
alter table public.webhook_attempts force row level security;
-- Endpoints and attempts are the operators' (service role); a user sees only the notifications
-- addressed to them, without internals.
revoke all on public.webhook_endpoints, public.webhook_attempts from anon, authenticated;
grant select (id, session_id, recipient_id, topic, status, due_at, sent_at) on public.outbox to authenticated;
create policy "Recipients can see their notifications" on public.outbox for select to authenticated
  using (recipient_id = (select auth.uid()));

-- How long to wait before attempt n + 1 after n failed ones.
create function private.outbox_backoff(channel text, attempts int) returns interval
language sql immutable set search_path = '' as $$
  select case channel
    when 'email' then make_interval(mins => (2 ^ least(greatest(attempts - 1, 0), 10))::int)
    when 'room' then make_interval(mins => least((2 ^ least(greatest(attempts - 1, 0), 10))::int, 15))
    -- Webhooks, like Standard Webhooks senders: retried for more than a day.
    else (array[interval '30 seconds', interval '5 minutes', interval '30 minutes', interval '2 hours',
                interval '5 hours', interval '10 hours', interval '10 hours'])[least(greatest(attempts, 1), 7)]
  end
$$;
comment on function private.outbox_backoff(text, int) is 'Email 1, 2, 4, 8 minutes; rooms doubling up to 15 minutes; webhooks 30 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h.';

-- Queues one side effect; a second call with the same dedupe key changes nothing.
create function private.enqueue(channel text, topic text, dedupe_key text, session uuid, recipient uuid, endpoint uuid,
                                payload jsonb, due timestamptz default null) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  queued uuid;
  due_at timestamptz := coalesce(due, private.now());
begin
  insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, endpoint_id, payload, max_attempts, due_at, next_attempt_at, created_at)
  values (channel, topic, dedupe_key, session, recipient, endpoint, payload,
          case channel when 'email' then 5 when 'room' then 50 else 8 end, due_at, due_at, private.now())
  on conflict on constraint outbox_dedupe_key_key do nothing
  returning id into queued;
  return queued;
end
$$;
comment on function private.enqueue is 'Writes one outbox row, idempotent per dedupe key.';

-- Each change of an event invitation bumps its SEQUENCE (RFC 5545): a request is a tentative
-- invitation (0), its confirmation an update, a decline, expiry or cancellation a cancel.
alter table public.sessions add column calendar_sequence integer not null default 0 check (calendar_sequence >= 0);
create function private.bump_calendar_sequence() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.status is distinct from old.status and new.status in ('confirmed', 'declined', 'expired', 'cancelled') then
    new.calendar_sequence := old.calendar_sequence + 1;
  end if;
  return new;
end
$$;
create trigger sessions_bump_calendar_sequence before update of status on public.sessions
  for each row execute function private.bump_calendar_sequence();

-- What an outbound webhook says about a session: no emails, notes or links.
create function private.session_event_data(s public.sessions) returns jsonb
language sql stable set search_path = '' as $$
  select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'session_id', s.id, 'status', s.status, 'client_id', s.client_id, 'expert_id', s.expert_id,
    'starts_at', s.starts_at, 'ends_at', s.ends_at, 'duration_minutes', s.duration_minutes,
    'amount_cents', s.amount_cents, 'platform_fee_cents', s.platform_fee_cents, 'expert_payout_cents', s.expert_payout_cents,
    'currency', s.currency,
    'cancelled_by', case when s.cancelled_by is null then null when s.cancelled_by = s.client_id then 'client' else 'expert' end,
    'refund_percent', s.refund_percent, 'refund_amount_cents', s.refund_amount_cents))
$$;

-- Every transition tells the right people, makes or frees the room, and is announced to the
-- webhook endpoints that subscribed to it.
create function private.enqueue_session_events() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  event text;
  recipients uuid[];
  recipient uuid;
  email_payload jsonb;
  endpoint public.webhook_endpoints%rowtype;
  occurred timestamptz := private.now();
begin
  -- Sessions are born requested or confirmed (book_session); anything else inserted is history.
  event := case
    when tg_op = 'INSERT' and new.status in ('requested', 'confirmed') then 'session.' || new.status
    when tg_op = 'UPDATE' and new.status is distinct from old.status then 'session.' || new.status
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

  if tg_op = 'INSERT' then
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
comment on function private.enqueue_session_events() is 'Queues the emails, room work and webhook deliveries of a session''s creation and of each transition.';
create trigger sessions_enqueue_events after insert or update of status on public.sessions
  for each row execute function private.enqueue_session_events();

-- Reminders are outbox emails now: 24 h and 1 h before the start, one per participant, for
-- confirmed sessions; moved with the session; skipped when it is cancelled or declined.
create or replace function private.schedule_reminders() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.status = 'confirmed' and (tg_op = 'INSERT' or old.status <> 'confirmed' or old.starts_at <> new.starts_at) then
    insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, max_attempts, due_at, next_attempt_at, created_at)
    select 'email', 'reminder.' || kind.name, pg_catalog.format('reminder:%s:%s:%s', new.id, recipient, kind.name), new.id, recipient, 5,
           new.starts_at - kind.lead, new.starts_at - kind.lead, private.now()
    from unnest(array[new.client_id, new.expert_id]) as recipient,
         (values ('24h', interval '24 hours'), ('1h', interval '1 hour')) as kind (name, lead)
    where new.starts_at - kind.lead > private.now()
    on conflict (dedupe_key) do update
      set due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, status = 'pending', skip_reason = null,
          attempts = 0, last_error = null, lease_expires_at = null, batch_key = null
      where public.outbox.status in ('pending', 'skipped', 'failed');
  elsif tg_op = 'UPDATE' and new.status in ('cancelled', 'declined') and old.status <> new.status then
    update public.outbox set status = 'skipped', skip_reason = 'session_' || new.status
    where session_id = new.id and topic like 'reminder.%' and status = 'pending';
  end if;
  return null;
end
$$;
comment on function private.schedule_reminders() is 'Keeps the reminder emails in the outbox in step with confirmed sessions.';

insert into public.outbox (channel, topic, dedupe_key, session_id, recipient_id, status, attempts, max_attempts, due_at, next_attempt_at,
                           lease_expires_at, last_error, skip_reason, provider_ref, sent_at, created_at)
select 'email', 'reminder.' || r.kind, pg_catalog.format('reminder:%s:%s:%s', r.session_id, r.recipient_id, r.kind), r.session_id, r.recipient_id,
       r.status, r.attempts, 5, r.due_at, r.next_attempt_at, r.lease_expires_at, r.last_error, r.skip_reason, r.provider_message_id, r.sent_at, r.created_at
from public.reminders r;
drop function public.service_role_claim_reminders(int, int);
drop function public.service_role_complete_reminders(jsonb);
drop table public.reminders;

-- Who to notify about a session and how they read its time.
create or replace function public.service_role_session_contacts(session_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select pg_catalog.jsonb_build_object(
    'session_id', s.id, 'room_url', s.room_url, 'duration_minutes', s.duration_minutes, 'status', s.status,
    'starts_at', s.starts_at, 'ends_at', s.ends_at,
    'amount_cents', s.amount_cents, 'expert_payout_cents', s.expert_payout_cents, 'currency', s.currency,
    'client', pg_catalog.jsonb_build_object('id', c.id, 'email', cu.email, 'name', c.full_name, 'starts_local', private.format_local(s.starts_at, c.timezone)),
    'expert', pg_catalog.jsonb_build_object('id', x.id, 'email', xu.email, 'name', x.full_name, 'starts_local', private.format_local(s.starts_at, x.timezone)))
  from public.sessions s
  join public.profiles c on c.id = s.client_id join auth.users cu on cu.id = c.id
  join public.profiles x on x.id = s.expert_id join auth.users xu on xu.id = x.id
  where s.id = service_role_session_contacts.session_id
$$;

-- Why a claimed row should not be carried out any more, if it should not.
create function private.outbox_skip_reason(item public.outbox) returns text
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
  end
$$;

-- What the dispatcher needs to carry out a claimed row.
create function private.outbox_work(item public.outbox) returns jsonb
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

-- Leases due outbox work to one dispatch round: one batch of emails (an existing batch being
-- retried first, under its kept key, else a new one), then up to `calls` rooms and webhooks,
-- rooms first, handed over in their own arrays.
-- Rows that should not be carried out any more are skipped with their reason; rows out of
-- attempts are failed for good. `only_session` and `only_ids` narrow the claim to the work a
-- request just queued.
create function public.service_role_claim_outbox(email_batch int default 100, calls int default 10, lease_seconds int default 300,
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
    -- A batch already tried keeps its members and its idempotency key until it is sent.
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
      where o.channel in ('room', 'webhook')
        and ((o.status = 'pending' and o.next_attempt_at <= now) or (o.status = 'sending' and o.lease_expires_at <= now))
        and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids))
      order by o.channel = 'room' desc, o.next_attempt_at, o.created_at, o.id limit calls for update skip locked) t;
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
  -- A new batch's key is derived from its members, so it names exactly that set of emails.
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
           'skipped', (select count(*) from skipped), 'failed', (select count(*) from given_up))
    into claim
  from leased l;

  select pg_catalog.jsonb_build_object(
           'email', count(*) filter (where o.channel = 'email'), 'room', count(*) filter (where o.channel = 'room'),
           'webhook', count(*) filter (where o.channel = 'webhook'))
    into remaining
  from public.outbox o
  where ((o.status = 'pending' and o.next_attempt_at <= now) or (o.status = 'sending' and o.lease_expires_at <= now))
    and (only_session is null or o.session_id = only_session) and (only_ids is null or o.id = any (only_ids));

  return claim || pg_catalog.jsonb_build_object('remaining', remaining);
end
$$;
comment on function public.service_role_claim_outbox(int, int, int, uuid, uuid[]) is 'Leases due outbox work to one dispatch round: one email batch, then rooms and webhooks.';

-- Records what the providers said for each claimed row: sent (with the provider's reference),
-- or failed and retried after the channel's backoff, failed for good out of attempts. Webhook
-- attempts are logged, and an endpoint failing every attempt for 24 hours is disabled. Only rows
-- still leased are touched.
create function public.service_role_complete_outbox(results jsonb) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  now timestamptz := private.now();
  outcome jsonb;
begin
  with reported as (
    select (item ->> 'id')::uuid as id, left(item ->> 'provider_ref', 300) as provider_ref, left(item ->> 'error', 1000) as error,
           (item ->> 'status_code')::int as status_code, (item ->> 'latency_ms')::int as latency_ms, left(item ->> 'response_excerpt', 500) as excerpt
    from pg_catalog.jsonb_array_elements(results) as item
  ),
  updated as (
    update public.outbox o
       set status = case when r.provider_ref is not null then 'sent' when o.attempts >= o.max_attempts then 'failed' else 'pending' end,
           provider_ref = r.provider_ref,
           sent_at = case when r.provider_ref is not null then now end,
           last_error = case when r.provider_ref is null then coalesce(r.error, 'no answer') else o.last_error end,
           next_attempt_at = case when r.provider_ref is null then now + private.outbox_backoff(o.channel, o.attempts) else o.next_attempt_at end,
           lease_expires_at = null
      from reported r
     where o.id = r.id and o.status = 'sending'
    returning o.id, o.channel, o.endpoint_id, o.attempts, o.status, r.status_code, r.latency_ms, r.excerpt, r.error
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
  return outcome;
end
$$;
comment on function public.service_role_complete_outbox(jsonb) is 'Records send outcomes: sent, retried after the channel''s backoff, or failed for good; logs webhook attempts.';

-- An operator sends a delivery again (after fixing or re-enabling its endpoint): it starts over
-- with its id, so receivers that already processed it recognise it.
create function public.service_role_replay_outbox(outbox_id uuid) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  item public.outbox%rowtype;
begin
  select * into item from public.outbox o where o.id = outbox_id for update;
  if not found then
    raise exception using errcode = 'PT404', hint = 'not_found', message = 'No such outbox row.';
  end if;
  if item.status = 'sending' then
    raise exception using errcode = 'PT409', hint = 'in_flight', message = 'This row is being carried out right now.';
  end if;
  if item.channel = 'webhook' and exists (select 1 from public.webhook_endpoints w where w.id = item.endpoint_id and w.disabled_at is not null) then
    raise exception using errcode = 'PT409', hint = 'endpoint_disabled', message = 'Re-enable the endpoint before replaying its deliveries.';
  end if;
  update public.outbox o
     set status = 'pending', attempts = 0, next_attempt_at = private.now(), lease_expires_at = null, batch_key = null,
         last_error = null, skip_reason = null, provider_ref = null, sent_at = null
   where o.id = item.id
  returning * into item;
  perform private.audit(null, 'service_role', 'outbox.replayed', 'outbox', item.id::text, null, pg_catalog.jsonb_build_object('topic', item.topic), null);
  return pg_catalog.jsonb_build_object('id', item.id, 'channel', item.channel, 'topic', item.topic, 'status', item.status);
end
$$;
comment on function public.service_role_replay_outbox(uuid) is 'Starts a delivery over (same id): for operators, after fixing or re-enabling an endpoint.';

-- Re-enables an endpoint and replays what it missed since `since` (failed or skipped).
create function public.service_role_enable_webhook_endpoint(endpoint_id uuid, since timestamptz default null) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  replayed int;
begin
  update public.webhook_endpoints w set disabled_at = null, disabled_reason = null, failing_since = null where w.id = endpoint_id;
  if not found then
    raise exception using errcode = 'PT404', hint = 'not_found', message = 'No such webhook endpoint.';
  end if;
  update public.outbox o
     set status = 'pending', attempts = 0, next_attempt_at = private.now(), last_error = null, skip_reason = null
   where o.endpoint_id = service_role_enable_webhook_endpoint.endpoint_id and o.status in ('failed', 'skipped')
     and o.created_at >= coalesce(since, private.now() - interval '7 days');
  get diagnostics replayed = row_count;
  perform private.audit(null, 'service_role', 'webhook_endpoint.enabled', 'webhook_endpoints', endpoint_id::text, null,
                        pg_catalog.jsonb_build_object('replayed', replayed), null);
  return pg_catalog.jsonb_build_object('endpoint_id', endpoint_id, 'replayed', replayed);
end
$$;
comment on function public.service_role_enable_webhook_endpoint(uuid, timestamptz) is 'Re-enables a webhook endpoint and replays its failed or skipped deliveries since a time (default: 7 days).';

grant execute on function public.service_role_claim_outbox(int, int, int, uuid, uuid[]), public.service_role_complete_outbox(jsonb),
  public.service_role_replay_outbox(uuid), public.service_role_enable_webhook_endpoint(uuid, timestamptz) to service_role;

-- Sessions starting soon whose video room the provider has not made yet, for operators.
create function public.service_role_rooms_missing(within_minutes int default 60)
returns table (session_id uuid, starts_at timestamptz, status text, attempts smallint, last_error text)
language sql stable security definer set search_path = '' as $$
  select o.session_id, s.starts_at, s.status, o.attempts, o.last_error
  from public.outbox o join public.sessions s on s.id = o.session_id
  where o.topic = 'room.create' and o.status in ('pending', 'sending', 'failed')
    and s.status in ('requested', 'confirmed') and s.starts_at between private.now() and private.now() + make_interval(mins => within_minutes)
  order by s.starts_at
$$;
comment on function public.service_role_rooms_missing(int) is 'Sessions starting within the next minutes whose video room does not exist yet.';
grant execute on function public.service_role_rooms_missing(int) to service_role;

-- The dispatcher's tick also reports those rooms, so that each run raises an alert for them.
create or replace function public.service_role_advance_sessions(batch_size int default 200, grace_minutes int default 30) returns jsonb
language sql security definer set search_path = '' as $$
  select private.advance_sessions(batch_size, grace_minutes)
         || pg_catalog.jsonb_build_object('rooms_missing',
              (select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(m)), '[]') from public.service_role_rooms_missing(60) m))
$$;

-- Account emails go through the outbox too: queued with the token they announce. Only the
-- token's id is queued; its secret is derived from it with the workers' ACCOUNT_TOKEN_KEY when
-- the email is rendered, so the database never holds a usable token.
create or replace function public.service_role_issue_email_verification(user_id uuid, token_id uuid, token_hash text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  account auth.users%rowtype;
  recent int;
  expires timestamptz := private.now() + interval '24 hours';
  queued uuid;
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
  queued := private.enqueue('email', 'account.email_verification', 'email:account.email_verification:' || token_id, null, account.id, null,
                            pg_catalog.jsonb_build_object('token_id', token_id));
  perform private.audit(account.id, 'authenticated', 'email_verification.requested', 'email_verification_tokens', token_id::text, null, null, context);
  return pg_catalog.jsonb_build_object('email', account.email, 'expires_at', expires, 'outbox_id', queued);
end
$$;

create or replace function public.service_role_issue_password_reset(email text, token_id uuid, token_hash text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  account auth.users%rowtype;
  expires timestamptz := private.now() + interval '1 hour';
  queued uuid;
begin
  select * into account from auth.users u where u.email = service_role_issue_password_reset.email and u.deleted_at is null;
  if not found then
    return null;
  end if;
  insert into public.password_reset_tokens (id, user_id, token_hash, expires_at, requested_ip, created_at)
  values (token_id, account.id, pg_catalog.decode(token_hash, 'hex'), expires, private.inet_or_null(context ->> 'ip'), private.now());
  queued := private.enqueue('email', 'account.password_reset', 'email:account.password_reset:' || token_id, null, account.id, null,
                            pg_catalog.jsonb_build_object('token_id', token_id));
  perform private.audit(account.id, 'anon', 'password_reset.requested', 'password_reset_tokens', token_id::text, null, null, context);
  return pg_catalog.jsonb_build_object('expires_at', expires, 'outbox_id', queued);
end
$$;

create or replace function public.service_role_complete_password_reset(token_id uuid, password text, context jsonb default '{}') returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  token public.password_reset_tokens%rowtype;
  revoked_count int;
  queued uuid;
begin
  select * into token from public.password_reset_tokens t
  where t.id = token_id and t.consumed_at is null and t.attempts < 5 and t.expires_at > private.now()
  for update;
  if not found then
    raise exception using errcode = 'PT409', hint = 'token_used', message = 'This link was already used or is no longer valid.';
  end if;
  update auth.users u set encrypted_password = extensions.crypt(password, extensions.gen_salt('bf', 10)), updated_at = private.now()
  where u.id = token.user_id;
  update public.password_reset_tokens set consumed_at = private.now() where user_id = token.user_id and consumed_at is null;
  update auth.refresh_tokens set revoked = true, updated_at = private.now() where user_id = token.user_id::text and not coalesce(revoked, false);
  get diagnostics revoked_count = row_count;
  delete from auth.sessions where user_id = token.user_id;
  queued := private.enqueue('email', 'account.password_changed', 'email:account.password_changed:' || token_id, null, token.user_id, null, '{}');
  perform private.audit(token.user_id, 'anon', 'password.reset', 'auth.users', token.user_id::text, null,
                        pg_catalog.jsonb_build_object('refresh_tokens_revoked', revoked_count), context);
  return pg_catalog.jsonb_build_object('outbox_id', queued);
end
$$;
