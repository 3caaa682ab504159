-- Which skills experts hold together (see 20261201000600_search_growth.sql): the pairs follow
-- skills and profiles, a search for skills nobody holds together finds them all, and no client
-- reaches the pairs or the functions that write them.
begin;
\ir _helpers.psql
select plan(12);

\set rae '''22222222-2222-4222-8222-222222222204'''
\set devon '''22222222-2222-4222-8222-222222222203'''

-- An expert's pairs, and what they should be: every two of their skills in the lists.
create function tests.pairs(expert uuid) returns text language sql security definer set search_path = '' as $$
  select coalesce(string_agg(sp.skill_a || '-' || sp.skill_b, ' ' order by sp.skill_a, sp.skill_b), '')
  from private.search_pairs sp where sp.expert_id = expert
$$;
create function tests.expected_pairs(expert uuid) returns text language sql security definer set search_path = '' as $$
  select coalesce(string_agg(a.skill_id || '-' || b.skill_id, ' ' order by a.skill_id, b.skill_id), '')
  from private.search_entries a join private.search_entries b on b.expert_id = a.expert_id and b.skill_id > a.skill_id
  where a.expert_id = expert
$$;

select is((select count(*)::int from private.search_pairs where expert_id = :rae), 6, 'four skills make six pairs');
select is(tests.pairs(:rae), tests.expected_pairs(:rae), 'the seed''s pairs are those of the lists');

insert into expert_skills (expert_id, skill_id, proficiency, years) select :rae, id, 2, 1 from skill_categories where slug = 'docker';
select is((select count(*)::int from private.search_pairs where expert_id = :rae), 10, 'a fifth skill adds four pairs');
delete from expert_skills where expert_id = :rae and skill_id in (select id from skill_categories where slug in ('docker', 'v0'));
select is(tests.pairs(:rae), tests.expected_pairs(:rae), 'removed skills take their pairs along');
select is((select count(*)::int from private.search_pairs where expert_id = :rae), 3, 'three skills, three pairs');

update expert_profiles set is_active = false where id = :rae;
select is(tests.pairs(:rae), '', 'an inactive expert holds no pairs');
update expert_profiles set is_active = true where id = :rae;
select is(tests.pairs(:rae), tests.expected_pairs(:rae), 'and holds them again when active again');

-- Nobody holds react and kubernetes together (Devon has kubernetes, Finn and Rae react): the
-- walk's bound takes one of the two groups, and every page is the full walk's.
select tests.as_anon();
select is((select count(*)::int from jsonb_array_elements(public.find_experts(array['react', 'kubernetes'], page_size => 50) -> 'experts')), 3,
  'all three experts holding either skill are found');
select is(public.find_experts(array['react', 'kubernetes'], page_size => 1) -> 'experts' -> 0,
          public.find_experts(array['react', 'kubernetes'], page_size => 50) -> 'experts' -> 0,
  'a page of one is the first of them');
reset role;

-- A client calling past the workers reaches none of it: not the pairs, not the functions that
-- rewrite an expert's entries.
select tests.authenticate_as('casey.client@example.com');
select throws_ok($$select * from private.search_pairs$$, '42501', null, 'a client cannot read the pairs');
select throws_ok(format('select private.refresh_search_entries(%L)', :rae), '42501', null, 'nor rewrite an expert''s entries and pairs');
select throws_ok(format('select private.refresh_online_search_entries(%L)', :rae), '42501', null, 'nor their online entries');
reset role;

select * from finish();
rollback;
