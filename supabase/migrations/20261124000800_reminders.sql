-- Reminder scheduling and dispatch: the database keeps the outbox in step with the sessions,
-- and hands due reminders to booking-reminders under a lease so that overlapping runs never
-- send the same one and a crashed run's reminders are picked up again.

-- 24 h and 1 h before the start, one per participant, for confirmed sessions; moved with the
-- session; skipped (with the reason) when it is cancelled or declined.
create function private.schedule_reminders() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.status = 'confirmed' and (tg_op = 'INSERT' or old.status <> 'confirmed' or old.starts_at <> new.starts_at) then
    insert into public.reminders (session_id, recipient_id, kind, due_at, next_attempt_at)
    select new.id, recipient, kind.name, new.starts_at - kind.lead, new.starts_at - kind.lead
    from unnest(array[new.client_id, new.expert_id]) as recipient,
         (values ('24h', interval '24 hours'), ('1h', interval '1 hour')) as kind (name, lead)
    where new.starts_at - kind.lead > private.now()
    on conflict (session_id, recipient_id, kind) do update
      set due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, status = 'pending', skip_reason = null,
          attempts = 0, last_error = null, lease_expires_at = null
      where public.reminders.status in ('pending', 'skipped', 'failed');
  elsif tg_op = 'UPDATE' and new.status in ('cancelled', 'declined') and old.status <> new.status then
    update public.reminders set status = 'skipped', skip_reason = 'session_' || new.status
    where session_id = new.id and status = 'pending';
  end if;
  return null;
end
$$;
comment on function private.schedule_reminders() is 'Keeps the reminder outbox in step with confirmed sessions.';
create trigger sessions_schedule_reminders after insert or update of status, starts_at on public.sessions
  for each row execute function private.schedule_reminders();

-- Claims up to batch_size due reminders (pending and due, or sending with an expired lease)
-- with FOR UPDATE SKIP LOCKED, after skipping those whose session is no longer confirmed or
-- whose moment has passed (a 24 h reminder once the 1 h one is due, a 1 h one once the session
-- started). Returns each claimed reminder with what its email needs, and how many stay due.
create function public.service_role_claim_reminders(batch_size int default 100, lease_seconds int default 300) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  claimed jsonb;
  skipped_count bigint;
  failed_count bigint;
  remaining bigint;
begin
  if batch_size not between 1 and 100 or lease_seconds not between 1 and 3600 then
    raise exception using errcode = 'PT400', hint = 'invalid_claim', message = 'A claim takes 1 to 100 reminders for 1 to 3600 seconds.';
  end if;

  with due as (
    select r.id from public.reminders r
    where (r.status = 'pending' and r.next_attempt_at <= private.now())
       or (r.status = 'sending' and r.lease_expires_at <= private.now())
    order by r.next_attempt_at, r.id
    limit batch_size
    for update skip locked
  ),
  judged as (
    select r.id,
           case when s.status <> 'confirmed' then 'session_' || s.status
                when private.now() >= s.starts_at - case r.kind when '24h' then interval '1 hour' else interval '0' end then 'moment_passed'
                when r.attempts >= 5 then null
           end as skip_reason,
           r.attempts >= 5 as exhausted
    from due join public.reminders r on r.id = due.id join public.sessions s on s.id = r.session_id
  ),
  skipped as (
    update public.reminders r set status = 'skipped', skip_reason = j.skip_reason, lease_expires_at = null
    from judged j where r.id = j.id and j.skip_reason is not null
    returning r.id
  ),
  given_up as (
    update public.reminders r set status = 'failed', lease_expires_at = null,
           last_error = coalesce(r.last_error, 'lease expired') || ' (gave up after 5 attempts)'
    from judged j where r.id = j.id and j.skip_reason is null and j.exhausted
    returning r.id
  ),
  leased as (
    update public.reminders r set status = 'sending', attempts = r.attempts + 1,
           lease_expires_at = private.now() + make_interval(secs => lease_seconds)
    from judged j where r.id = j.id and j.skip_reason is null and not j.exhausted
    returning r.*
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', l.id, 'kind', l.kind, 'attempts', l.attempts,
           'recipient', case when l.recipient_id = s.client_id then 'client' else 'expert' end,
           'contacts', public.service_role_session_contacts(l.session_id)) order by l.id), '[]'),
         (select count(*) from skipped), (select count(*) from given_up)
    into claimed, skipped_count, failed_count
  from leased l join public.sessions s on s.id = l.session_id;

  select count(*) into remaining from public.reminders r
  where (r.status = 'pending' and r.next_attempt_at <= private.now()) or (r.status = 'sending' and r.lease_expires_at <= private.now());

  return pg_catalog.jsonb_build_object('reminders', claimed, 'skipped', skipped_count, 'failed', failed_count, 'remaining', remaining);
end
$$;
comment on function public.service_role_claim_reminders(int, int) is 'Leases due reminders to one dispatch run; skips the stale ones with their reason.';
grant execute on function public.service_role_claim_reminders(int, int) to service_role;

-- Records what the provider said for each claimed reminder: sent (with its message id) or
-- failed (retried with exponential backoff, 1, 2, 4, 8 minutes, then failed for good at the
-- fifth attempt). Only reminders still leased are touched.
create function public.service_role_complete_reminders(results jsonb) returns jsonb
language sql security definer set search_path = '' as $$
  with outcome as (
    select (item ->> 'id')::uuid as id, item ->> 'provider_message_id' as message_id, left(item ->> 'error', 1000) as error
    from pg_catalog.jsonb_array_elements(results) as item
  ),
  updated as (
    update public.reminders r
       set status = case when o.message_id is not null then 'sent' when r.attempts >= 5 then 'failed' else 'pending' end,
           provider_message_id = o.message_id,
           sent_at = case when o.message_id is not null then private.now() end,
           last_error = case when o.message_id is null then o.error else r.last_error end,
           next_attempt_at = case when o.message_id is null then private.now() + make_interval(mins => (2 ^ (r.attempts - 1))::int) else r.next_attempt_at end,
           lease_expires_at = null
      from outcome o
     where r.id = o.id and r.status = 'sending'
    returning r.status
  )
  select pg_catalog.jsonb_build_object(
    'sent', count(*) filter (where status = 'sent'),
    'retrying', count(*) filter (where status = 'pending'),
    'failed', count(*) filter (where status = 'failed'))
  from updated
$$;
comment on function public.service_role_complete_reminders(jsonb) is 'Records send outcomes; failures back off exponentially up to 5 attempts.';
grant execute on function public.service_role_complete_reminders(jsonb) to service_role;
