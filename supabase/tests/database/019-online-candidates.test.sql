-- Who is online, for the search (see 20261201000600_search_growth.sql): the online experts'
-- entries follow presence, skills and profiles; the search counts an expert online only while
-- their last report is under five minutes old; with more than 2,000 online it gives the same
-- page another way; and no client reaches the table.
begin;
\ir _helpers.psql
select plan(17);

\set rae '''22222222-2222-4222-8222-222222222204'''
select tests.freeze_time('2031-01-06 07:00+00');

-- An expert's online entries, and what they should be: their search entries while their
-- presence is online, with its last report.
create function tests.online_entries(expert uuid) returns text language sql security definer set search_path = '' as $$
  select coalesce(string_agg(oe.skill_id || ':' || oe.hourly_rate_cents || ':' || oe.currency || ':' || oe.rating_avg || ':' || oe.last_seen_at,
                             ' ' order by oe.skill_id), '')
  from private.online_search_entries oe where oe.expert_id = expert
$$;
create function tests.expected_online_entries(expert uuid) returns text language sql security definer set search_path = '' as $$
  select coalesce(string_agg(se.skill_id || ':' || se.hourly_rate_cents || ':' || se.currency || ':' || se.rating_avg || ':' || o.last_seen_at,
                             ' ' order by se.skill_id), '')
  from private.search_entries se join public.online_status o on o.profile_id = se.expert_id and o.is_online
  where se.expert_id = expert
$$;
-- Rae's online part in an anonymous search for React.
create function tests.rae_online() returns int language plpgsql as $$
declare
  part int;
begin
  perform tests.as_anon();
  select (e -> 'score_parts' ->> 'online')::int into part
  from jsonb_array_elements(public.find_experts(array['react']) -> 'experts') e
  where e ->> 'expert_id' = '22222222-2222-4222-8222-222222222204';
  perform set_config('role', 'postgres', true);
  return part;
end
$$;

select is(tests.online_entries(:rae), '', 'an expert who never reported presence has no online entries');

select tests.authenticate_as('rae.react@example.com');
insert into online_status (profile_id, is_online) values (:rae, true);
reset role;
select is(tests.online_entries(:rae), tests.expected_online_entries(:rae), 'reporting online copies the expert''s entries');
select is((select count(*)::int from private.online_search_entries where expert_id = :rae and last_seen_at = '2031-01-06 07:00+00'), 4,
  'one per skill, stamped with the report''s time');
select is(tests.rae_online(), 1, 'the search counts her online');

select tests.freeze_time('2031-01-06 07:04+00');
select tests.authenticate_as('rae.react@example.com');
update online_status set is_online = true where profile_id = :rae;
reset role;
select is((select min(last_seen_at) from private.online_search_entries where expert_id = :rae), '2031-01-06 07:04+00'::timestamptz,
  'each later report moves her entries'' last report');

select tests.freeze_time('2031-01-06 07:10+00');
select is(tests.rae_online(), 0, 'six minutes without a report: no longer online for the search');
select tests.freeze_time('2031-01-06 07:08+00');
select is(tests.rae_online(), 1, 'four minutes: still online');

insert into expert_skills (expert_id, skill_id, proficiency, years) select :rae, id, 2, 1 from skill_categories where slug = 'docker';
select is(tests.online_entries(:rae), tests.expected_online_entries(:rae), 'a skill added while online is an online entry at once');
select is((select count(*)::int from private.online_search_entries where expert_id = :rae), 5, 'five of them now');

update expert_profiles set hourly_rate_cents = 9500 where id = :rae;
select is(tests.online_entries(:rae), tests.expected_online_entries(:rae), 'a new rate is in the online entries at once');
select is((select min(hourly_rate_cents) from private.online_search_entries where expert_id = :rae), 9500::bigint, 'the new rate');

select tests.authenticate_as('rae.react@example.com');
update online_status set is_online = false where profile_id = :rae;
reset role;
select is(tests.online_entries(:rae), '', 'reporting offline removes them');

select tests.authenticate_as('rae.react@example.com');
update online_status set is_online = true where profile_id = :rae;
reset role;
update expert_profiles set is_active = false where id = :rae;
select is(tests.online_entries(:rae), '', 'an expert made inactive while online has none');
update expert_profiles set is_active = true where id = :rae;
select is(tests.online_entries(:rae), tests.expected_online_entries(:rae), 'and has them again when active again');

-- More than 2,000 online: presence is looked up per candidate instead, for the same page.
select tests.as_anon();
select public.find_experts(array['react', 'typescript'], page_size => 50) as page_before \gset
reset role;
insert into online_status (profile_id, is_online)
select tests.make_user('crowd-' || i || '@example.com'), true from generate_series(1, 2001) i;
select tests.as_anon();
select is(public.find_experts(array['react', 'typescript'], page_size => 50), :'page_before'::jsonb,
  'with 2,001 online the search gives the same page');
reset role;

delete from online_status where profile_id = :rae;
select is(tests.online_entries(:rae), '', 'removing the presence row removes them');

select tests.authenticate_as('casey.client@example.com');
select throws_ok($$select * from private.online_search_entries$$, '42501', null, 'a client cannot read the online entries');
reset role;

select * from finish();
rollback;
