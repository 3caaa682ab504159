-- People: profiles (one per auth user), agencies, experts, skills and presence.

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  role text not null default 'client' check (role in ('client', 'expert', 'agency_admin', 'admin')),
  full_name text not null default '' check (char_length(full_name) <= 200),
  avatar_url text check (avatar_url is null or avatar_url ~ '^https://'),
  timezone text not null default 'UTC' check (private.is_valid_timezone(timezone)),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is 'One row per auth user, created by a trigger on auth.users. role is set by the system, never by the user.';
create index profiles_role_idx on public.profiles (role);

create table public.agency_profiles (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 200),
  subscription_status text not null default 'trialing' check (subscription_status in ('trialing', 'active', 'past_due', 'canceled')),
  max_experts integer not null default 5 check (max_experts between 0 and 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.agency_profiles is 'An agency and its entitlements (no billing here).';

create table public.agency_admins (
  agency_id uuid not null references public.agency_profiles (id) on delete cascade,
  profile_id uuid not null references public.profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (agency_id, profile_id)
);
create index agency_admins_profile_id_idx on public.agency_admins (profile_id);

create table public.expert_profiles (
  id uuid primary key references public.profiles (id) on delete cascade,
  headline text not null default '' check (char_length(headline) <= 200),
  bio text not null default '' check (char_length(bio) <= 5000),
  -- Integer minor units; the ceiling keeps rate x 480 minutes far from bigint overflow.
  hourly_rate_cents bigint not null check (hourly_rate_cents > 0 and hourly_rate_cents <= 10000000),
  currency char(3) not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  timezone text not null default 'UTC' check (private.is_valid_timezone(timezone)),
  instant_booking boolean not null default false,
  is_active boolean not null default true,
  rating_avg numeric(3, 2) not null default 0 check (rating_avg between 0 and 5),
  rating_count integer not null default 0 check (rating_count >= 0),
  agency_id uuid references public.agency_profiles (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on column public.expert_profiles.rating_avg is 'Maintained by the database from public reviews; not writable by users.';
create index expert_profiles_agency_id_idx on public.expert_profiles (agency_id);
create index expert_profiles_search_idx on public.expert_profiles (currency, hourly_rate_cents) where is_active;

create table public.skill_categories (
  id smallint generated always as identity primary key,
  slug text not null unique check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 40),
  name text not null check (char_length(name) between 1 and 100)
);

create table public.expert_skills (
  expert_id uuid not null references public.expert_profiles (id) on delete cascade,
  skill_id smallint not null references public.skill_categories (id) on delete cascade,
  proficiency smallint not null check (proficiency between 1 and 5),
  years smallint not null default 0 check (years between 0 and 60),
  primary key (expert_id, skill_id)
);
create index expert_skills_skill_id_idx on public.expert_skills (skill_id, expert_id);

create table public.online_status (
  profile_id uuid primary key references public.profiles (id) on delete cascade,
  is_online boolean not null default false,
  last_seen_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create trigger profiles_updated_at before update on public.profiles for each row execute function private.set_updated_at();
create trigger agency_profiles_updated_at before update on public.agency_profiles for each row execute function private.set_updated_at();
create trigger expert_profiles_updated_at before update on public.expert_profiles for each row execute function private.set_updated_at();
create trigger online_status_updated_at before update on public.online_status for each row execute function private.set_updated_at();

-- A profile for every new auth user. Sign-up metadata may ask for client or expert, never more.
create function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  requested_zone text := new.raw_user_meta_data ->> 'timezone';
begin
  insert into public.profiles (id, role, full_name, timezone)
  values (
    new.id,
    case when new.raw_user_meta_data ->> 'role' = 'expert' then 'expert' else 'client' end,
    coalesce(left(new.raw_user_meta_data ->> 'full_name', 200), ''),
    case when requested_zone is not null and private.is_valid_timezone(requested_zone) then requested_zone else 'UTC' end
  );
  return new;
end
$$;
comment on function private.handle_new_user() is 'Creates the profile of a new auth user; role comes from sign-up metadata but only client or expert.';
create trigger on_auth_user_created after insert on auth.users for each row execute function private.handle_new_user();

-- Policy helpers. SECURITY DEFINER so that a policy on one table can look at another without
-- recursing through that table's own policies.
create function private.is_admin() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.profiles where id = (select auth.uid()) and role = 'admin')
$$;
create function private.administers_agency(agency uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.agency_admins where agency_id = agency and profile_id = (select auth.uid()))
$$;
create function private.administers_expert(expert uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.expert_profiles e join public.agency_admins a on a.agency_id = e.agency_id
    where e.id = expert and a.profile_id = (select auth.uid())
  )
$$;
grant execute on function private.is_admin(), private.administers_agency(uuid), private.administers_expert(uuid) to authenticated;

alter table public.profiles enable row level security;
alter table public.profiles force row level security;
alter table public.agency_profiles enable row level security;
alter table public.agency_profiles force row level security;
alter table public.agency_admins enable row level security;
alter table public.agency_admins force row level security;
alter table public.expert_profiles enable row level security;
alter table public.expert_profiles force row level security;
alter table public.skill_categories enable row level security;
alter table public.skill_categories force row level security;
alter table public.expert_skills enable row level security;
alter table public.expert_skills force row level security;
alter table public.online_status enable row level security;
alter table public.online_status force row level security;

-- profiles: experts are public (discovery); everyone sees their own; a user's role is not theirs to change.
grant select on public.profiles to anon, authenticated;
grant update (full_name, avatar_url, timezone) on public.profiles to authenticated;
create policy "Expert profiles are visible to everyone" on public.profiles for select to anon, authenticated
  using (role = 'expert');
create policy "Users can see their own profile" on public.profiles for select to authenticated
  using (id = (select auth.uid()));
create policy "Users can update their own profile" on public.profiles for update to authenticated
  using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- agencies: their admins see and rename them; entitlements are set by the system.
grant select on public.agency_profiles to authenticated;
grant update (name) on public.agency_profiles to authenticated;
create policy "Agency admins can see their agency" on public.agency_profiles for select to authenticated
  using ((select private.administers_agency(id)));
create policy "Agency admins can rename their agency" on public.agency_profiles for update to authenticated
  using ((select private.administers_agency(id))) with check ((select private.administers_agency(id)));
grant select on public.agency_admins to authenticated;
create policy "Agency admins can see who administers their agency" on public.agency_admins for select to authenticated
  using ((select private.administers_agency(agency_id)));

-- expert profiles: public for discovery; experts edit their own offer, not their rating or agency.
grant select on public.expert_profiles to anon, authenticated;
grant update (headline, bio, hourly_rate_cents, currency, timezone, instant_booking, is_active) on public.expert_profiles to authenticated;
create policy "Active experts are visible to everyone" on public.expert_profiles for select to anon, authenticated
  using (is_active);
create policy "Experts can see their own profile" on public.expert_profiles for select to authenticated
  using (id = (select auth.uid()));
create policy "Agency admins can see their experts" on public.expert_profiles for select to authenticated
  using ((select private.administers_agency(agency_id)));
create policy "Experts can update their own profile" on public.expert_profiles for update to authenticated
  using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- skills: the catalogue is public; experts manage their own skills.
grant select on public.skill_categories to anon, authenticated;
create policy "Skill categories are visible to everyone" on public.skill_categories for select to anon, authenticated
  using (true);
grant select on public.expert_skills to anon, authenticated;
grant insert, update (proficiency, years), delete on public.expert_skills to authenticated;
create policy "Expert skills are visible to everyone" on public.expert_skills for select to anon, authenticated
  using (true);
create policy "Experts can add their own skills" on public.expert_skills for insert to authenticated
  with check (expert_id = (select auth.uid()));
create policy "Experts can update their own skills" on public.expert_skills for update to authenticated
  using (expert_id = (select auth.uid())) with check (expert_id = (select auth.uid()));
create policy "Experts can remove their own skills" on public.expert_skills for delete to authenticated
  using (expert_id = (select auth.uid()));

-- presence: public; each user reports their own.
grant select on public.online_status to anon, authenticated;
grant insert (profile_id, is_online, last_seen_at), update (is_online, last_seen_at) on public.online_status to authenticated;
create policy "Presence is visible to everyone" on public.online_status for select to anon, authenticated
  using (true);
create policy "Users can report their own presence" on public.online_status for insert to authenticated
  with check (profile_id = (select auth.uid()));
create policy "Users can update their own presence" on public.online_status for update to authenticated
  using (profile_id = (select auth.uid())) with check (profile_id = (select auth.uid()));
