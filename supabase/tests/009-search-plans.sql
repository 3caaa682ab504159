-- The search filters and the overlap checks can be served by indexes. With sequential scans
-- priced out (as for tables far larger than the seed), a plan still holding a Seq Scan would
-- mean no index can serve the query.
begin;
\ir _helpers.psql
select plan(4);

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

select tests.plan_of($$select e.id from public.skill_categories sc join public.expert_skills es on es.skill_id = sc.id
                       join public.expert_profiles e on e.id = es.expert_id
                       where sc.slug = any('{react,typescript}') and e.is_active and e.currency = 'USD' and e.hourly_rate_cents <= 15000$$) as search_plan \gset
select doesnt_match(:'search_plan'::text, 'Seq Scan', 'the filters of find_experts are served by indexes');
select matches(:'search_plan'::text, 'Index Scan using expert_profiles_(search_idx|pkey) on expert_profiles',
  'experts are reached by an index (expert_profiles_search_idx for rate and currency)');
select doesnt_match(tests.plan_of($$select es.expert_id from public.expert_skills es where es.skill_id = any('{1,4}')$$), 'Seq Scan',
  'experts are found by skill through an index (expert_skills_skill_id_idx)');
select doesnt_match(
  tests.plan_of($$select 1 from public.sessions s where s.expert_id = '22222222-2222-4222-8222-222222222201'
                  and s.status in ('requested', 'confirmed', 'in_progress')
                  and tstzrange(s.starts_at, s.ends_at) && tstzrange(now(), now() + interval '1 hour')$$),
  'Seq Scan',
  'overlap checks of free slots and bookings are served by an index (sessions_expert_id_idx or the exclusion constraints'' GiST indexes)');

select * from finish();
rollback;
