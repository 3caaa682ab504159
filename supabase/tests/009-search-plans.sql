-- The search filters and the overlap checks are served by indexes. The seed is too small for the
-- planner to prefer them on its own, so sequential scans are priced out as for a large table.
begin;
\ir _helpers.psql
select plan(3);

create function tests.plan_of(query text) returns text language plpgsql as $$
declare
  line text;
  plan text := '';
begin
  for line in execute 'explain (costs off) ' || query loop
    plan := plan || line || E'\n';
  end loop;
  return plan;
end
$$;
set local enable_seqscan = off;

select matches(
  tests.plan_of($$select e.id from public.skill_categories sc join public.expert_skills es on es.skill_id = sc.id
                  join public.expert_profiles e on e.id = es.expert_id
                  where sc.slug = any('{react,typescript}') and e.is_active and e.currency = 'USD' and e.hourly_rate_cents <= 15000$$),
  'Index Scan using expert_profiles_search_idx on expert_profiles',
  'the rate and currency filters of find_experts use expert_profiles_search_idx');
select matches(
  tests.plan_of($$select es.expert_id from public.expert_skills es where es.skill_id = any('{1,4}')$$),
  'expert_skills_skill_id_idx',
  'experts are found by skill through expert_skills_skill_id_idx');
select matches(
  tests.plan_of($$select 1 from public.sessions s where s.expert_id = '22222222-2222-4222-8222-222222222201'
                  and s.status in ('requested', 'confirmed', 'in_progress')
                  and tstzrange(s.starts_at, s.ends_at) && tstzrange(now(), now() + interval '1 hour')$$),
  'Index Scan using sessions_(expert|client)_no_overlap on sessions',
  'overlap checks of free slots and bookings use an exclusion constraint''s GiST index');

select * from finish();
rollback;
