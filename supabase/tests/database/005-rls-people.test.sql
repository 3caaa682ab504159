-- RLS on profiles, experts, agencies, skills, availability and presence: each role both ways.
begin;
\ir _helpers.psql
select plan(22);

select count(*) filter (where role = 'expert') as expert_profiles from profiles \gset
select count(*) as active_experts from expert_profiles where is_active \gset
select tests.as_anon();
select results_eq('select role, count(*) from profiles group by role', format('values (%L, %s::bigint)', 'expert', :expert_profiles),
  'anon sees every expert profile and no one else''s');
select is((select count(*) from expert_profiles), :active_experts::bigint, 'anon sees every active expert');
select ok((select count(*) from skill_categories) >= 4, 'anon sees the skill catalogue');
select ok((select count(*) from availability_rules) > 0, 'anon sees availability, for booking');
select throws_ok($$insert into online_status (profile_id) values ('22222222-2222-4222-8222-222222222201')$$, '42501',
  'permission denied for table online_status', 'anon cannot write presence');
select throws_ok('select * from agency_profiles', '42501', 'permission denied for table agency_profiles', 'anon cannot see agencies');
reset role;

select tests.authenticate_as('casey.client@example.com');
select is((select count(*) from profiles where role <> 'expert'), 1::bigint, 'a client sees their own profile and no other non-expert');
select throws_ok($$update profiles set role = 'admin' where id = tests.user_id('casey.client@example.com')$$, '42501',
  'permission denied for table profiles', 'a client cannot make themselves admin');
select lives_ok($$update profiles set full_name = 'Casey C.' where id = tests.user_id('casey.client@example.com')$$, 'a client renames themselves');
update profiles set full_name = 'Hacked' where id = tests.user_id('ada.ai@example.com');
update expert_profiles set headline = 'Hacked' where id = tests.user_id('ada.ai@example.com');
reset role;
select is((select full_name from profiles where id = tests.user_id('ada.ai@example.com')), 'Ada Lovelace', 'a client cannot rename an expert');
select isnt((select headline from expert_profiles where id = tests.user_id('ada.ai@example.com')), 'Hacked', 'nor change their offer');

select tests.authenticate_as('ada.ai@example.com');
select lives_ok($$update expert_profiles set hourly_rate_cents = 16000 where id = tests.user_id('ada.ai@example.com')$$, 'an expert sets their own rate');
select throws_ok($$update expert_profiles set rating_avg = 5 where id = tests.user_id('ada.ai@example.com')$$, '42501',
  'permission denied for table expert_profiles', 'an expert cannot set their own rating');
select lives_ok($$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('ada.ai@example.com'), 0, 600, 720)$$,
  'an expert adds their own availability');
select throws_ok($$insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (tests.user_id('finn.fullstack@example.com'), 0, 600, 720)$$,
  '42501', 'new row violates row-level security policy for table "availability_rules"', 'but not another expert''s');
select throws_ok($$insert into expert_skills (expert_id, skill_id, proficiency) values (tests.user_id('finn.fullstack@example.com'), 1, 5)$$,
  '42501', 'new row violates row-level security policy for table "expert_skills"', 'nor another expert''s skills');
select lives_ok($$insert into online_status (profile_id, is_online) values (tests.user_id('ada.ai@example.com'), true)
                  on conflict (profile_id) do update set is_online = true$$, 'an expert reports their own presence');
reset role;

select tests.authenticate_as('avery.agency@example.com');
select is((select name from agency_profiles), 'Cloud Native Crew', 'an agency admin sees their agency');
select lives_ok($$update agency_profiles set name = 'Crew' where true$$, 'and renames it');
select throws_ok($$update agency_profiles set subscription_status = 'active'$$, '42501', 'permission denied for table agency_profiles',
  'but cannot grant themselves entitlements');
reset role;
select tests.authenticate_as('casey.client@example.com');
select is((select count(*) from agency_profiles), 0::bigint, 'a client sees no agency');
reset role;

select count(*) as all_profiles from profiles \gset
select tests.as_service_role();
select is((select count(*) from profiles), :all_profiles::bigint, 'service_role sees every profile');
reset role;

select * from finish();
rollback;
