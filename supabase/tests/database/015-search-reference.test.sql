-- The search at scale gives exactly what scoring every candidate gave: on a generated catalogue,
-- the threshold walk's pages (every page, through the cursor) equal the whole-catalogue
-- reference's for many searches, and the free-time slots equal the candidate-by-candidate ones.
begin;
\ir _helpers.psql
select plan(4);

select tests.freeze_time('2031-01-06 07:00+00');
select setseed(0.42);
delete from online_status;

-- 400 experts like the seed's: 2-5 skills of the 14, rates 50-250, a third without reviews,
-- weekday hours (some on Saturdays) in four zones, some days blocked, some booked, a few online
-- (and a few no longer).
create temporary table generated as
select gen_random_uuid() as id, i,
       (array['UTC', 'Europe/Paris', 'Asia/Tokyo', 'America/New_York'])[1 + (i % 4)] as zone
from generate_series(1, 400) i;
insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
select id, 'authenticated', 'authenticated', 'gen-' || i || '@example.com', jsonb_build_object('role', 'expert', 'full_name', 'Gen ' || i, 'timezone', zone), now(), now()
from generated;
insert into expert_profiles (id, hourly_rate_cents, currency, timezone, instant_booking, is_active)
select id, 5000 + (floor(random() * 200) * 100)::int, case when i % 10 = 0 then 'EUR' else 'USD' end, zone, i % 2 = 0, i % 25 <> 0 from generated;
update expert_profiles e set rating_count = 1 + (random() * 30)::int, rating_avg = round((3 + random() * 2)::numeric, 2)
from generated g where g.id = e.id and g.i % 3 <> 0;
insert into expert_skills (expert_id, skill_id, proficiency, years)
select g.id, s.id, 1 + floor(random() * 5)::int, 1 from generated g cross join lateral (
  select id from skill_categories order by random() limit 2 + (g.i % 4)) s;
-- React is held by nearly everyone, so that its list takes the walk several rounds.
insert into expert_skills (expert_id, skill_id, proficiency, years)
select g.id, s.id, 1 + floor(random() * 5)::int, 1 from generated g, skill_categories s
where s.slug = 'react' and not exists (select 1 from expert_skills x where x.expert_id = g.id and x.skill_id = s.id);
insert into availability_rules (expert_id, weekday, start_minute, end_minute)
select g.id, d, 540, 1020 from generated g, generate_series(1, 5) d;
insert into availability_rules (expert_id, weekday, start_minute, end_minute)
select g.id, 6, 600, 780 from generated g where g.i % 7 = 0;
insert into availability_exceptions (expert_id, on_date, kind)
select g.id, date '2031-01-07' + (g.i % 5), 'blocked' from generated g where g.i % 6 = 0;
insert into availability_exceptions (expert_id, on_date, kind, start_minute, end_minute)
select g.id, date '2031-01-08', 'extra', 1080, 1260 from generated g where g.i % 9 = 0;
insert into sessions (client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency)
select (select h.id from generated h where h.i = g.i + 200), e.id, t, t + interval '2 hours', 120, 'confirmed', e.hourly_rate_cents,
       (e.hourly_rate_cents * 120 + 30) / 60, ((e.hourly_rate_cents * 120 + 30) / 60 * 1000 + 5000) / 10000,
       (e.hourly_rate_cents * 120 + 30) / 60 - ((e.hourly_rate_cents * 120 + 30) / 60 * 1000 + 5000) / 10000, e.currency
from generated g join expert_profiles e on e.id = g.id
cross join lateral (select (date '2031-01-07' + (g.i % 3) + time '10:00') at time zone g.zone as t) x
where g.i % 4 = 1 and g.i < 40;
-- Fortran is held by some experts, alone: nobody holds it with another skill.
insert into skill_categories (slug, name) values ('fortran', 'Fortran');
delete from expert_skills where expert_id in (select id from generated where i % 17 = 0);
insert into expert_skills (expert_id, skill_id, proficiency, years)
select g.id, s.id, 1 + floor(random() * 5)::int, 1 from generated g, skill_categories s where g.i % 17 = 0 and s.slug = 'fortran';
-- Some online now, some whose last report is ten minutes old (online no longer).
select tests.freeze_time('2031-01-06 06:50+00');
insert into online_status (profile_id, is_online) select id, true from generated where i % 13 = 0 and i % 11 <> 0;
select tests.freeze_time('2031-01-06 07:00+00');
insert into online_status (profile_id, is_online) select id, true from generated where i % 11 = 0;
-- One expert in twenty has not finished Stripe onboarding: not offered.
insert into payout_accounts (expert_id, stripe_account_id, charges_enabled, reported_at)
select id, 'acct_gen' || i, i % 20 <> 7, now() from generated;

-- The whole-catalogue algorithm this migration replaced, kept as the reference.
create function tests.find_experts_reference(
  skills text[], max_rate_cents bigint default null, currency text default null,
  window_from timestamptz default null, window_to timestamptz default null, duration_minutes int default 60,
  min_rating numeric default null, page_size int default 10, after_score numeric default null, after_id uuid default null
) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  slot_from timestamptz := coalesce(window_from, private.now());
  slot_to timestamptz := least(coalesce(window_to, private.now() + interval '7 days'), private.now() + interval '90 days' + make_interval(mins => duration_minutes));
  found_experts jsonb;
  request_id uuid;
begin
  with candidates as (
    select e.id, e.hourly_rate_cents, e.currency, e.rating_avg, e.rating_count, e.instant_booking, e.timezone, e.headline,
           p.full_name, p.avatar_url,
           sum(es.proficiency) as proficiency_sum,
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('slug', sc.slug, 'proficiency', es.proficiency, 'years', es.years) order by sc.slug) as matched_skills
    from public.skill_categories sc
    join public.expert_skills es on es.skill_id = sc.id
    join public.expert_profiles e on e.id = es.expert_id
    join public.profiles p on p.id = e.id
    where sc.slug = any (find_experts_reference.skills)
      and e.is_active and e.accepts_payments
      and (find_experts_reference.currency is null or e.currency = find_experts_reference.currency)
      and (find_experts_reference.max_rate_cents is null or e.hourly_rate_cents <= find_experts_reference.max_rate_cents)
      and (find_experts_reference.min_rating is null or e.rating_avg >= find_experts_reference.min_rating)
    group by e.id, p.id
  ),
  slotted as (
    select c.*,
           coalesce((select pg_catalog.jsonb_agg(slot order by slot) from private.free_slots(c.id, slot_from, slot_to, find_experts_reference.duration_minutes, 3) as slot), '[]') as next_slots,
           coalesce((select o.is_online and o.last_seen_at > private.now() - interval '5 minutes' from public.online_status o where o.profile_id = c.id), false) as online
    from candidates c
  ),
  scored as (
    select s.*,
           round(s.proficiency_sum::numeric / (5 * cardinality(find_experts_reference.skills)), 4) as skill_match,
           round(case when s.rating_count > 0 then s.rating_avg / 5 else 0.6 end, 4) as rating_part,
           round(case when find_experts_reference.max_rate_cents is null then 0.5 else 1 - s.hourly_rate_cents::numeric / find_experts_reference.max_rate_cents end, 4) as price_fit,
           case when pg_catalog.jsonb_array_length(s.next_slots) > 0 then 1 else 0 end as availability,
           case when s.online then 1 else 0 end as online_part
    from slotted s
    where find_experts_reference.window_from is null or pg_catalog.jsonb_array_length(s.next_slots) > 0
  ),
  ranked as (
    select s.*, round(0.45 * s.skill_match + 0.20 * s.rating_part + 0.15 * s.price_fit + 0.15 * s.availability + 0.05 * s.online_part, 4) as score
    from scored s
  ),
  page as (
    select r.* from ranked r
    where find_experts_reference.after_score is null or r.score < find_experts_reference.after_score or (r.score = find_experts_reference.after_score and r.id > find_experts_reference.after_id)
    order by r.score desc, r.id
    limit find_experts_reference.page_size
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'expert_id', p.id, 'full_name', p.full_name, 'avatar_url', p.avatar_url, 'headline', p.headline,
           'hourly_rate_cents', p.hourly_rate_cents, 'currency', p.currency, 'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
           'instant_booking', p.instant_booking, 'timezone', p.timezone, 'skills', p.matched_skills, 'online', p.online,
           'score', p.score,
           'score_parts', pg_catalog.jsonb_build_object('skill_match', p.skill_match, 'rating', p.rating_part, 'price_fit', p.price_fit,
                                                        'availability', p.availability, 'online', p.online_part),
           'next_slots', p.next_slots) order by p.score desc, p.id), '[]')
    into found_experts
  from page p;

  return found_experts;
end
$$;

create function tests.free_slots_reference(expert uuid, window_from timestamptz, window_to timestamptz, minutes int, max_slots int default 3)
returns setof timestamptz
language sql stable security definer set search_path = '' as $$
  with e as (select timezone from public.expert_profiles where id = expert),
  days as (
    select d::date as day
    from e, generate_series(((greatest(window_from, private.now()) at time zone e.timezone)::date)::timestamp,
                            ((window_to at time zone e.timezone)::date)::timestamp, interval '1 day') as d
  ),
  windows as (
    select days.day, r.start_minute, r.end_minute from days join public.availability_rules r
      on r.expert_id = expert and r.weekday = extract(dow from days.day)::int
    union all
    select x.on_date, x.start_minute, x.end_minute from public.availability_exceptions x
      where x.expert_id = expert and x.kind = 'extra' and x.on_date in (select day from days)
  ),
  candidates as (
    select distinct (w.day + make_interval(mins => m)) at time zone e.timezone as starts, w.day, m
    from windows w cross join e, generate_series(w.start_minute, w.end_minute - minutes, 15) as m
  )
  select c.starts from candidates c
  where c.starts >= greatest(window_from, private.now() + interval '1 hour')
    and c.starts + make_interval(mins => minutes) <= window_to
    and c.starts <= private.now() + interval '90 days'
    -- the wall-clock time exists that day (not skipped by a DST change)
    and ((c.starts at time zone (select timezone from e)) = c.day + make_interval(mins => c.m))
    -- candidates lie inside a rule or extra hours by construction; blocked hours still apply
    and not exists (
      select 1 from public.availability_exceptions x
      where x.expert_id = expert and x.on_date = c.day and x.kind = 'blocked'
        and (x.start_minute is null or int4range(x.start_minute, x.end_minute) && int4range(c.m, c.m + minutes))
    )
    and not exists (
      select 1 from public.sessions s
      where s.expert_id = expert and s.status in ('requested', 'confirmed', 'in_progress')
        and tstzrange(s.starts_at, s.ends_at) && tstzrange(c.starts, c.starts + make_interval(mins => minutes))
    )
  order by c.starts
  limit max_slots
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

create temporary table searches (label text, args jsonb);
insert into searches values
  ('one popular skill', '{"skills": ["react"]}'),
  ('two skills', '{"skills": ["react", "typescript"]}'),
  ('three skills, one unknown', '{"skills": ["docker", "aws", "cobol"]}'),
  ('a rate ceiling', '{"skills": ["react", "typescript"], "max_rate_cents": 8000}'),
  ('a currency', '{"skills": ["postgres"], "currency": "EUR"}'),
  ('a minimum rating', '{"skills": ["cursor", "v0"], "min_rating": 4.2}'),
  ('a two-day window, 90 minutes', '{"skills": ["react", "typescript"], "window_from": "2031-01-07T00:00:00Z", "window_to": "2031-01-09T00:00:00Z", "duration_minutes": 90}'),
  ('a Saturday morning', '{"skills": ["kubernetes", "terraform", "docker"], "window_from": "2031-01-11T08:00:00Z", "window_to": "2031-01-11T14:00:00Z", "duration_minutes": 120}'),
  ('a long session', '{"skills": ["nextjs"], "duration_minutes": 480}'),
  ('skills nobody holds together', '{"skills": ["react", "fortran"]}'),
  ('two groups and an unknown skill', '{"skills": ["fortran", "cobol", "react", "typescript"], "max_rate_cents": 15000}'),
  ('ten skills', '{"skills": ["cursor", "v0", "lovable", "react", "nextjs", "typescript", "supabase", "postgres", "llm-apps", "aws"], "max_rate_cents": 20000}'),
  -- React goes with everything (pairs held by about 100) and the others with each other by
  -- about 20 (rare: their holders are read first), so the cliques are pairs with react.
  ('three skills, pairs rare and common', '{"skills": ["react", "typescript", "nextjs"]}'),
  ('four skills, cliques of two', '{"skills": ["react", "typescript", "nextjs", "supabase"], "max_rate_cents": 18000}'),
  ('two skills held together rarely', '{"skills": ["nextjs", "supabase"]}');

-- Every page of every search, through the cursor: pages of 7 and 50 for all, and for three the
-- first 40 pages of one (every tie between neighbours there).
create function tests.pages(args jsonb, page_size int, from_reference boolean, max_pages int default 500) returns jsonb language plpgsql as $$
declare
  pages jsonb := '[]';
  page jsonb;
  after_score numeric;
  after_id uuid;
begin
  for i in 1 .. max_pages loop
    if from_reference then
      page := tests.find_experts_reference(array(select jsonb_array_elements_text(args -> 'skills')), (args ->> 'max_rate_cents')::bigint, args ->> 'currency',
        (args ->> 'window_from')::timestamptz, (args ->> 'window_to')::timestamptz, coalesce((args ->> 'duration_minutes')::int, 60),
        (args ->> 'min_rating')::numeric, page_size, after_score, after_id);
    else
      page := public.find_experts(array(select jsonb_array_elements_text(args -> 'skills')), (args ->> 'max_rate_cents')::bigint, args ->> 'currency',
        (args ->> 'window_from')::timestamptz, (args ->> 'window_to')::timestamptz, coalesce((args ->> 'duration_minutes')::int, 60),
        (args ->> 'min_rating')::numeric, page_size, after_score, after_id) -> 'experts';
    end if;
    pages := pages || jsonb_build_array(page);
    exit when jsonb_array_length(page) < page_size;
    after_score := (page -> -1 ->> 'score')::numeric;
    after_id := (page -> -1 ->> 'expert_id')::uuid;
  end loop;
  return pages;
end
$$;

select is_empty($$
  select s.label || ' / page size ' || size from searches s, unnest(array[1, 7, 50]) size
  where (size > 1 or s.label in ('two skills', 'a two-day window, 90 minutes', 'skills nobody holds together'))
    and tests.pages(s.args, size, false, case size when 1 then 40 else 500 end) is distinct from tests.pages(s.args, size, true, case size when 1 then 40 else 500 end)
$$, 'every page of every search is the one scoring every candidate gives');

select ok((select sum(jsonb_array_length(p)) from searches s, jsonb_array_elements(tests.pages(s.args, 50, false)) p) > 1000,
  'the searches compared are not empty: well over a thousand results in all');

select is_empty($$
  select g.i || ' ' || d || ' min' from generated g, unnest(array[60, 150]) d
  where array(select private.free_slots(g.id, '2031-01-06 00:00+00', '2031-01-13 00:00+00', d, 100))
        is distinct from array(select tests.free_slots_reference(g.id, '2031-01-06 00:00+00', '2031-01-13 00:00+00', d, 100))
$$, 'free slots from free time are exactly the candidate-by-candidate ones, for every expert and duration');

select ok((select count(*) from generated g, private.free_slots(g.id, '2031-01-06 00:00+00', '2031-01-13 00:00+00', 90, 100)) > 10000,
  'and there are many of them');

select * from finish();
rollback;
