-- Foundation: extensions, the private helper schema, the clock, and the default privileges
-- every later migration relies on.

create extension if not exists btree_gist with schema extensions;
create extension if not exists pgcrypto with schema extensions;

-- Hosted projects grant everything on new objects in public to anon and authenticated; we grant
-- per table and per function instead, so nothing is reachable by accident.
alter default privileges for role postgres in schema public revoke all on tables from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on sequences from anon, authenticated;
alter default privileges for role postgres in schema public revoke execute on functions from anon, authenticated, public;
alter default privileges for role postgres revoke execute on functions from public;

-- Helpers used by policies, triggers and RPC functions. Not exposed through PostgREST.
create schema private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;

-- The database's clock. Tests freeze it by setting call_an_expert.now in their transaction; a
-- PostgREST caller cannot set it (PostgREST exposes no way to set arbitrary settings).
create function private.now() returns timestamptz
language sql stable set search_path = '' as $$
  select coalesce(nullif(pg_catalog.current_setting('call_an_expert.now', true), '')::timestamptz, pg_catalog.now())
$$;
comment on function private.now() is 'now(), or the instant a test froze the clock at.';
grant execute on function private.now() to anon, authenticated, service_role;

create function private.is_valid_timezone(zone text) returns boolean
language sql stable set search_path = '' as $$
  select exists (select 1 from pg_catalog.pg_timezone_names where name = zone)
$$;
comment on function private.is_valid_timezone(text) is 'True for IANA zone names PostgreSQL knows (Europe/Paris), false for abbreviations and offsets.';
grant execute on function private.is_valid_timezone(text) to anon, authenticated, service_role;

create function private.set_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end
$$;
comment on function private.set_updated_at() is 'Keeps updated_at current on every update.';

-- What the workers' /health probes: answers only when PostgREST and the database both do.
create function public.health() returns boolean
language sql stable set search_path = '' as $$
  select true
$$;
comment on function public.health() is 'Liveness of PostgREST and the database, for the functions'' GET /health.';
grant execute on function public.health() to anon, authenticated, service_role;
