-- What bounds the experts the search has not read yet (see 20261201000700_search_cliques.sql):
-- the holders of a pair of skills few hold together are scored first, and an expert met on one
-- list is weighed with the best clique of pairs held together that list is in. Two catalogues
-- of skills of their own, each built so that the walk stops before the best expert's entries
-- would be read: found only if that part of the bound is right.
begin;
\ir _helpers.psql
select plan(6);

select tests.freeze_time('2031-01-06 07:00+00');
delete from online_status;
insert into skill_categories (slug, name) values
  ('delta', 'Delta'), ('epsilon', 'Epsilon'), ('alpha', 'Alpha'), ('beta', 'Beta'), ('gamma', 'Gamma');

-- Experts alike but for their skills: the same rate, reviews, hours and payout account.
create temporary table crowd (id uuid, label text, skills text[], proficiencies int[]);
insert into crowd
-- 1. delta and epsilon: 150 hold either at proficiency 5 and 150 at 4, and one expert holds
--    both at 3, the best of all for a search of the two, and the pair's only holder.
select gen_random_uuid(), 'delta ' || i, array['delta'], array[case when i <= 150 then 5 else 4 end] from generate_series(1, 300) i
union all select gen_random_uuid(), 'epsilon ' || i, array['epsilon'], array[case when i <= 150 then 5 else 4 end] from generate_series(1, 300) i
union all select gen_random_uuid(), 'both rarely', array['delta', 'epsilon'], array[3, 3]
-- 2. alpha, beta and gamma: 60 hold alpha and beta and 60 alpha and gamma, all at 1 (common
--    pairs: the cliques are {alpha, beta} and {alpha, gamma}); 100 hold alpha alone and 300
--    gamma alone, at 5; the best for the three holds alpha at 4, below the first 96 of its
--    list, and gamma at 4, below the first 288 of its.
union all select gen_random_uuid(), 'alpha beta ' || i, array['alpha', 'beta'], array[1, 1] from generate_series(1, 60) i
union all select gen_random_uuid(), 'alpha gamma ' || i, array['alpha', 'gamma'], array[1, 1] from generate_series(1, 60) i
union all select gen_random_uuid(), 'alpha ' || i, array['alpha'], array[5] from generate_series(1, 100) i
union all select gen_random_uuid(), 'gamma ' || i, array['gamma'], array[5] from generate_series(1, 300) i
union all select gen_random_uuid(), 'alpha and gamma, best', array['alpha', 'gamma'], array[4, 4];

insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
select id, 'authenticated', 'authenticated', replace(label, ' ', '-') || '@example.com',
       jsonb_build_object('role', 'expert', 'full_name', label, 'timezone', 'UTC'), now(), now()
from crowd;
insert into expert_profiles (id, hourly_rate_cents, currency, timezone, instant_booking, is_active, rating_avg, rating_count)
select id, 10000, 'USD', 'UTC', true, true, 5.00, 200 from crowd;
insert into expert_skills (expert_id, skill_id, proficiency, years)
select c.id, sc.id, s.proficiency, 1 from crowd c
cross join lateral unnest(c.skills, c.proficiencies) s (slug, proficiency)
join skill_categories sc on sc.slug = s.slug;
insert into availability_rules (expert_id, weekday, start_minute, end_minute)
select c.id, d, 540, 1020 from crowd c, generate_series(1, 5) d;
insert into payout_accounts (expert_id, stripe_account_id, charges_enabled, reported_at)
select id, 'acct_' || replace(id::text, '-', ''), true, now() from crowd;

create function tests.first_of(search jsonb) returns text language sql as $$
  select c.label from crowd c
  where c.id = (search -> 'experts' -> 0 ->> 'expert_id')::uuid
$$;

-- The searches are a client's: anon, as the public search is called through PostgREST.
grant select on crowd to anon;
grant execute on function tests.first_of(jsonb) to anon;
select is((select count(*)::int from private.search_pairs sp join skill_categories a on a.id = sp.skill_a join skill_categories b on b.id = sp.skill_b
           where (a.slug, b.slug) in (('delta', 'epsilon'), ('epsilon', 'delta'))), 1, 'one expert holds delta and epsilon together');
select tests.as_anon();
select is(tests.first_of(find_experts(array['delta', 'epsilon'])), 'both rarely',
          'the only holder of a rare pair leads, though the lists would have been left before their entries');
select is(tests.first_of(find_experts(array['delta', 'epsilon'], page_size => 1)), 'both rarely', 'on a page of one too');

select is((select jsonb_agg(x ->> 'expert_id' order by ord) from jsonb_array_elements(find_experts(array['delta', 'epsilon']) -> 'experts') with ordinality e (x, ord)),
          (select jsonb_agg(id) from (
             select c.id from crowd c where c.label = 'both rarely'
             union all (select c.id from crowd c where c.label ~ '^(delta|epsilon) ' and c.proficiencies[1] = 5 order by c.id limit 9)) ids),
          'then the holders of either at 5, by id (their scores tie)');

select is(tests.first_of(find_experts(array['alpha', 'beta', 'gamma'])), 'alpha and gamma, best',
          'an expert met on one list is weighed with the best clique of that list, not the worst');
select is(tests.first_of(find_experts(array['alpha', 'beta', 'gamma'], page_size => 3)), 'alpha and gamma, best', 'on a small page too');

reset role;
select * from finish();
rollback;
