-- Availability across a DST change in the expert's timezone: Finn works 09:00-17:00 in
-- New York, which moves from UTC-5 to UTC-4 on Sunday 2030-03-10 at 02:00 local.
begin;
\ir _helpers.psql
select plan(6);

select tests.freeze_time('2030-03-04 12:00+00');
\set finn '''22222222-2222-4222-8222-222222222202'''

select is((select s from private.free_slots(:finn, '2030-03-08 00:00+00', '2030-03-09 00:00+00', 60, 1) as s),
  '2030-03-08 14:00+00'::timestamptz, 'the Friday before, 09:00 local is 14:00 UTC');
select is((select s from private.free_slots(:finn, '2030-03-11 00:00+00', '2030-03-12 00:00+00', 60, 1) as s),
  '2030-03-11 13:00+00'::timestamptz, 'the Monday after, 09:00 local is 13:00 UTC');

insert into availability_rules (expert_id, weekday, start_minute, end_minute) values (:finn, 0, 60, 240);
select is(
  (select array_agg(to_char(s at time zone 'America/New_York', 'HH24:MI') order by s)
   from private.free_slots(:finn, '2030-03-10 05:00+00', '2030-03-11 04:00+00', 60, 20) as s),
  array['01:00', '01:15', '01:30', '01:45', '03:00'],
  'on the change day, the local starts that do not exist (02:00-02:45) are skipped');

select ok(private.is_within_availability(:finn, '2030-03-11 13:00+00', '2030-03-11 14:00+00'), 'a booking at 09:00 EDT is inside the hours');
select ok(not private.is_within_availability(:finn, '2030-03-08 13:00+00', '2030-03-08 14:00+00'), 'the same UTC time the Friday before is 08:00 EST, outside');

select tests.authenticate_as('casey.client@example.com');
select lives_ok($$select book_session('22222222-2222-4222-8222-222222222202', '2030-03-11 13:00+00', 60, 12000, 1000, 12000, 1200, 10800, 'USD')$$,
  'booking_session accepts 09:00 local on the first day of summer time');
reset role;

select * from finish();
rollback;
