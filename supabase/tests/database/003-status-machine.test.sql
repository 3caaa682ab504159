-- The status machine: every pair of statuses against the allowed transitions, who may make
-- them, and the history rows they leave.
begin;
\ir _helpers.psql
select plan(15);

-- As the owner (what the booking functions do), try every transition from a fresh session,
-- each step at a moment its time rule allows, so that only the machine's edges decide.
create temporary table transition_results (from_status text, to_status text, allowed boolean);
create function tests.move(session uuid, to_status text) returns void language plpgsql as $$
declare
  starts timestamptz := (select starts_at from public.sessions where id = session);
begin
  perform tests.freeze_time(starts + case to_status when 'in_progress' then interval '-10 minutes' when 'completed' then interval '30 minutes'
                                                     when 'expired' then interval '1 minute' else interval '-1 day' end);
  update public.sessions set status = to_status,
    cancelled_at = case when to_status = 'cancelled' then private.now() end,
    refund_amount_cents = case when to_status = 'cancelled' then 0 end,
    refund_percent = case when to_status = 'cancelled' then 0 end
  where id = session;
end
$$;
do $$
declare
  statuses text[] := array['requested', 'confirmed', 'declined', 'cancelled', 'expired', 'in_progress', 'completed'];
  path jsonb := '{"requested": [], "confirmed": ["confirmed"], "declined": ["declined"], "cancelled": ["cancelled"], "expired": ["expired"],
                  "in_progress": ["confirmed", "in_progress"], "completed": ["confirmed", "in_progress", "completed"]}';
  from_status text;
  to_status text;
  step text;
  session uuid;
  day int := 0;
begin
  foreach from_status in array statuses loop
    foreach to_status in array statuses loop
      continue when from_status = to_status;
      day := day + 1;
      session := tests.make_session('casey.client@example.com', 'finn.fullstack@example.com', timestamptz '2031-01-01 10:00+00' + make_interval(days => day), 60, 'requested');
      for step in select jsonb_array_elements_text(path -> from_status) loop
        perform tests.move(session, step);
      end loop;
      begin
        perform tests.move(session, to_status);
        insert into transition_results values (from_status, to_status, true);
      exception when sqlstate 'PT409' then
        insert into transition_results values (from_status, to_status, false);
      end;
    end loop;
  end loop;
  perform set_config('call_an_expert.now', '', true);
end
$$;

select set_eq(
  'select from_status, to_status from transition_results where allowed',
  $$values ('requested', 'confirmed'), ('requested', 'declined'), ('requested', 'cancelled'), ('requested', 'expired'),
           ('confirmed', 'in_progress'), ('confirmed', 'cancelled'), ('in_progress', 'completed')$$,
  'exactly the seven transitions of the machine are allowed');
select is((select count(*) from transition_results where not allowed), 35::bigint, 'the other 35 pairs are refused');

select throws_ok($$update sessions set status = 'requested' where id = '55555555-5555-4555-8555-555555555501'$$,
  'PT409', 'A completed session cannot become requested.', 'the refusal names both statuses');

-- Who may do it through PostgREST.
select tests.freeze_time('2030-03-01 09:00+00');
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-03-02 17:00+00', 60, 'requested') as requested_id \gset
select tests.make_session('casey.client@example.com', 'rae.react@example.com', '2030-03-03 17:00+00', 60, 'confirmed') as confirmed_id \gset

select tests.authenticate_as('casey.client@example.com');
update sessions set status = 'confirmed' where id = :'requested_id';
reset role;
select is((select status from sessions where id = :'requested_id'), 'requested', 'a client cannot confirm a session (the update matches no row)');

select tests.authenticate_as('ada.ai@example.com');
update sessions set status = 'confirmed' where id = :'requested_id';
reset role;
select is((select status from sessions where id = :'requested_id'), 'requested', 'another expert cannot confirm it either');

select tests.authenticate_as('rae.react@example.com');
select throws_ok(format($$update sessions set status = 'cancelled' where id = %L$$, :'confirmed_id'), '42501',
  'Cancel a session through cancel-session, which records the refund.', 'the expert cannot cancel directly: cancel-session records the refund');
select throws_ok(format($$update sessions set status = 'in_progress' where id = %L$$, :'confirmed_id'), 'PT409',
  'A session can be started at most 15 minutes before its start time.', 'a session cannot be started a day early');
select throws_ok(format($$update sessions set amount_cents = 1 where id = %L$$, :'requested_id'), '42501',
  'permission denied for table sessions', 'the expert cannot change the price');
select lives_ok(format($$update sessions set status = 'confirmed' where id = %L$$, :'requested_id'), 'the expert confirms their requested session');
reset role;
select is((select status from sessions where id = :'requested_id'), 'confirmed', 'the session is confirmed');

select tests.freeze_time('2030-03-03 16:50+00');
select tests.authenticate_as('rae.react@example.com');
select lives_ok(format($$update sessions set status = 'in_progress' where id = %L$$, :'confirmed_id'), 'the expert starts the session 10 minutes early');
reset role;
select tests.freeze_time('2030-03-03 17:45+00');
select tests.authenticate_as('rae.react@example.com');
select lives_ok(format($$update sessions set status = 'completed' where id = %L$$, :'confirmed_id'), 'and completes it once it has started');
reset role;

select results_eq(
  format($$select from_status, to_status, changed_by from session_status_history where session_id = %L order by id$$, :'confirmed_id'),
  format($$values (null::text, 'confirmed'::text, null::uuid), ('confirmed', 'in_progress', %L::uuid), ('in_progress', 'completed', %L::uuid)$$,
         tests.user_id('rae.react@example.com'), tests.user_id('rae.react@example.com')),
  'every status, the first included, leaves a history row naming who changed it');

select tests.authenticate_as('casey.client@example.com');
select is((select count(*) from session_status_history where session_id = :'confirmed_id'), 3::bigint, 'the client sees the history of their session');
select tests.authenticate_as('devon.devops@example.com');
select is((select count(*) from session_status_history where session_id = :'confirmed_id'), 0::bigint, 'a stranger sees none of it');
reset role;

select * from finish();
rollback;
