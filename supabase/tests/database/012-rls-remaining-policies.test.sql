-- The policies the per-table files do not already exercise, each allowed and denied.
begin;
\ir _helpers.psql
select plan(20);

update expert_profiles set is_active = false where id = tests.user_id('rae.react@example.com');
insert into availability_exceptions (id, expert_id, on_date, kind) values ('77777777-7777-4777-8777-777777777777', tests.user_id('finn.fullstack@example.com'), '2030-01-01', 'blocked');
insert into reviews (session_id, reviewer_id, reviewee_id, rating, is_public) values ('55555555-5555-4555-8555-555555555501', tests.user_id('ada.ai@example.com'), tests.user_id('casey.client@example.com'), 4, false);
insert into match_requests (id, client_id, skills) values ('66666666-6666-4666-8666-666666666666', tests.user_id('casey.client@example.com'), '{react}');

-- Inactive experts: hidden from the public, visible to themselves and their agency.
select tests.as_anon();
select ok(not exists (select 1 from expert_profiles where id = tests.user_id('rae.react@example.com')), 'an inactive expert is hidden from anon');
reset role;
select tests.authenticate_as('rae.react@example.com');
select ok(exists (select 1 from expert_profiles where id = tests.user_id('rae.react@example.com')), 'an inactive expert still sees their own profile');
reset role;
select tests.authenticate_as('avery.agency@example.com');
select ok(exists (select 1 from expert_profiles where id = tests.user_id('rae.react@example.com')), 'their agency admin sees them too');
select is((select count(*) from agency_admins), 1::bigint, 'an agency admin sees who administers their agency');
reset role;
select tests.authenticate_as('casey.client@example.com');
select is((select count(*) from agency_admins), 0::bigint, 'a client sees no agency administrators');
reset role;

-- Skills, availability and exceptions: experts change and remove their own only.
select tests.authenticate_as('ada.ai@example.com');
select lives_ok($$update expert_skills set years = 4 where expert_id = tests.user_id('ada.ai@example.com')$$, 'an expert updates their own skills');
update expert_skills set years = 50 where expert_id = tests.user_id('finn.fullstack@example.com');
select lives_ok($$delete from expert_skills where expert_id = tests.user_id('ada.ai@example.com') and skill_id = (select id from skill_categories where slug = 'v0')$$, 'and removes one');
delete from expert_skills where expert_id = tests.user_id('finn.fullstack@example.com');
update availability_rules set end_minute = 1000 where expert_id = tests.user_id('finn.fullstack@example.com');
delete from availability_rules where expert_id = tests.user_id('finn.fullstack@example.com');
update availability_exceptions set kind = 'extra', start_minute = 0, end_minute = 60 where expert_id = tests.user_id('finn.fullstack@example.com');
delete from availability_exceptions where expert_id = tests.user_id('finn.fullstack@example.com');
select lives_ok($$insert into availability_exceptions (expert_id, on_date, kind) values (tests.user_id('ada.ai@example.com'), '2030-01-02', 'blocked')$$, 'an expert blocks a day of their own');
select throws_ok($$insert into availability_exceptions (expert_id, on_date, kind) values (tests.user_id('finn.fullstack@example.com'), '2030-01-02', 'blocked')$$,
  '42501', 'new row violates row-level security policy for table "availability_exceptions"', 'but not another expert''s');
select lives_ok($$update availability_rules set end_minute = 1000 where expert_id = tests.user_id('ada.ai@example.com') and weekday = 1$$, 'an expert changes their own hours');
select lives_ok($$delete from availability_exceptions where expert_id = tests.user_id('ada.ai@example.com')$$, 'and removes their own exceptions');
reset role;
select is((select years from expert_skills where expert_id = tests.user_id('finn.fullstack@example.com') order by skill_id limit 1), 7::smallint, 'another expert''s skills are untouched');
select is((select count(*) from expert_skills where expert_id = tests.user_id('finn.fullstack@example.com')), 5::bigint, 'and not removed');
select is((select count(*) from availability_rules where expert_id = tests.user_id('finn.fullstack@example.com') and end_minute = 1020), 5::bigint, 'another expert''s hours are untouched');
select is((select kind from availability_exceptions where id = '77777777-7777-4777-8777-777777777777'), 'blocked', 'and so are their exceptions');

-- Reviews and searches.
select tests.authenticate_as('casey.client@example.com');
select ok(exists (select 1 from reviews where not is_public), 'the reviewee sees a private review of them');
select lives_ok($$update reviews set comment = 'Great.' where reviewer_id = tests.user_id('casey.client@example.com')$$, 'a reviewer edits their review');
update reviews set rating = 1 where reviewer_id = tests.user_id('ada.ai@example.com');
select ok(exists (select 1 from match_requests where id = '66666666-6666-4666-8666-666666666666')
          and not exists (select 1 from match_requests where client_id <> tests.user_id('casey.client@example.com')), 'a client sees their own searches, only');
reset role;
select is((select rating from reviews where reviewer_id = tests.user_id('ada.ai@example.com')), 4::smallint, 'but cannot edit someone else''s review');
select tests.authenticate_as('devon.devops@example.com');
select is((select count(*) from reviews where not is_public), 0::bigint, 'a stranger sees no private review');
reset role;

select * from finish();
rollback;
