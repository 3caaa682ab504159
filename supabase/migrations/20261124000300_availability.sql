-- When experts can be booked: weekly rules in the expert's own timezone, and date exceptions.

create table public.availability_rules (
  id uuid primary key default gen_random_uuid(),
  expert_id uuid not null references public.expert_profiles (id) on delete cascade,
  weekday smallint not null check (weekday between 0 and 6), -- 0 = Sunday, as extract(dow)
  start_minute smallint not null check (start_minute between 0 and 1439),
  end_minute smallint not null check (end_minute between 1 and 1440),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (start_minute < end_minute),
  exclude using gist (expert_id with =, weekday with =, int4range(start_minute, end_minute) with &&)
);
comment on table public.availability_rules is 'Weekly bookable hours, minutes from local midnight in the expert''s timezone; DST is resolved by Postgres when slots are computed.';
create index availability_rules_expert_id_idx on public.availability_rules (expert_id, weekday);

create table public.availability_exceptions (
  id uuid primary key default gen_random_uuid(),
  expert_id uuid not null references public.expert_profiles (id) on delete cascade,
  on_date date not null,
  kind text not null check (kind in ('blocked', 'extra')),
  start_minute smallint check (start_minute between 0 and 1439),
  end_minute smallint check (end_minute between 1 and 1440),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A blocked day may omit its hours (the whole day); extra hours always name them.
  check ((start_minute is null) = (end_minute is null)),
  check (kind = 'blocked' or start_minute is not null),
  check (start_minute is null or start_minute < end_minute)
);
create index availability_exceptions_expert_id_idx on public.availability_exceptions (expert_id, on_date);

create trigger availability_rules_updated_at before update on public.availability_rules for each row execute function private.set_updated_at();
create trigger availability_exceptions_updated_at before update on public.availability_exceptions for each row execute function private.set_updated_at();

alter table public.availability_rules enable row level security;
alter table public.availability_rules force row level security;
alter table public.availability_exceptions enable row level security;
alter table public.availability_exceptions force row level security;

grant select on public.availability_rules, public.availability_exceptions to anon, authenticated;
grant insert (expert_id, weekday, start_minute, end_minute), update (weekday, start_minute, end_minute), delete
  on public.availability_rules to authenticated;
grant insert (expert_id, on_date, kind, start_minute, end_minute), update (on_date, kind, start_minute, end_minute), delete
  on public.availability_exceptions to authenticated;

create policy "Availability rules are visible to everyone" on public.availability_rules for select to anon, authenticated
  using (true);
create policy "Experts can add their own availability rules" on public.availability_rules for insert to authenticated
  with check (expert_id = (select auth.uid()));
create policy "Experts can change their own availability rules" on public.availability_rules for update to authenticated
  using (expert_id = (select auth.uid())) with check (expert_id = (select auth.uid()));
create policy "Experts can remove their own availability rules" on public.availability_rules for delete to authenticated
  using (expert_id = (select auth.uid()));

create policy "Availability exceptions are visible to everyone" on public.availability_exceptions for select to anon, authenticated
  using (true);
create policy "Experts can add their own availability exceptions" on public.availability_exceptions for insert to authenticated
  with check (expert_id = (select auth.uid()));
create policy "Experts can change their own availability exceptions" on public.availability_exceptions for update to authenticated
  using (expert_id = (select auth.uid())) with check (expert_id = (select auth.uid()));
create policy "Experts can remove their own availability exceptions" on public.availability_exceptions for delete to authenticated
  using (expert_id = (select auth.uid()));
