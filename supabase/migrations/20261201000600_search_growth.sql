-- find_experts at 100,000 experts for the cost it has at 1,000.
--
-- Measured at 100,000 experts (1% online) against 1,000, the search still grew 1.6x (skills
-- only) to 3.2x (with a rate ceiling), from three costs:
-- 1. Who of those online is a candidate: one probe of the lists per online expert, about 1,000
--    probes at 100,000 experts on every search. The online experts' entries now have a table of
--    their own, kept by triggers on presence and on the lists and indexed per skill and last
--    report, so the online candidates of a search are one index range per skill.
-- 2. Every expert the walk met for the first time was scored, one aggregation by key each
--    (about 10 us): 450 in the last round of a search with a rate ceiling, where few could still
--    enter the page. Now only those whose score could still reach the page's last are: at most
--    their keys read, what an entry not read yet can hold of the other lists, their own price
--    part, availability and presence. The others are seen and never scored, as they could not
--    enter the page. Who was seen is checked with a hashed anti-join instead of comparing every
--    entry read with every expert seen.
-- 3. free_slots read the clock (private.now(), a function call with its own search_path) 28
--    times per call; now once.
-- And the walk starts deeper (96 entries a list in its first round instead of 32), which saves
-- rounds where a page needs hundreds of entries and costs nothing measurable where it does not.
-- And it knows which requested skills experts hold together. The bound for the unseen assumed
-- one expert could sit at the edge of every list at once; for skills nobody holds together
-- (react and kubernetes) the walk then read most of both lists, 170 ms at 100,000 experts.
-- An expert's requested skills are pairwise held together, so they lie in one connected group
-- of the graph "some expert holds both" (from private.search_pairs, one row per expert and
-- pair of skills): the bound takes the best group instead of all lists.
-- Results stay exactly those of scoring every candidate (supabase/tests/database/015).

-- free_slots as 20261201000400_payments.sql left it (held slots are busy), reading the clock once.
create or replace function private.free_slots(expert uuid, window_from timestamptz, window_to timestamptz, minutes int, max_slots int default 3)
returns setof timestamptz
language plpgsql stable security definer set search_path = '' as $$
declare
  clock timestamptz := private.now();
begin
  return query
  with bounds as (
    select e.timezone as tz, greatest(window_from, clock + interval '1 hour') as lo,
           least(window_to, clock + interval '90 days' + make_interval(mins => minutes)) as hi,
           clock + interval '90 days' as last_start
    from public.expert_profiles e where e.id = expert
  ),
  days as (
    select d::date as day, b.* from bounds b,
      generate_series((b.lo at time zone b.tz)::date::timestamp, (b.hi at time zone b.tz)::date::timestamp, interval '1 day') as d
    where b.lo < b.hi
  ),
  windows as (
    select d.day, d.tz, d.lo, d.hi, d.last_start,
           tstzrange((d.day + make_interval(mins => r.start_minute)) at time zone d.tz, (d.day + make_interval(mins => r.end_minute)) at time zone d.tz) as win
    from days d join public.availability_rules r on r.expert_id = expert and r.weekday = extract(dow from d.day)::int
    union all
    select d.day, d.tz, d.lo, d.hi, d.last_start,
           tstzrange((d.day + make_interval(mins => x.start_minute)) at time zone d.tz, (d.day + make_interval(mins => x.end_minute)) at time zone d.tz)
    from days d join public.availability_exceptions x on x.expert_id = expert and x.on_date = d.day and x.kind = 'extra'
  ),
  pieces as (
    select w.*, lower(w.win) as anchor, piece
    from windows w,
    unnest(tstzmultirange(w.win) - coalesce((
      select range_agg(busy.during) from (
        select tstzrange((w.day + make_interval(mins => coalesce(x.start_minute, 0))) at time zone w.tz,
                         (w.day + make_interval(mins => coalesce(x.end_minute, 1440))) at time zone w.tz) as during
        from public.availability_exceptions x where x.expert_id = expert and x.on_date = w.day and x.kind = 'blocked'
        union all
        select tstzrange(s.starts_at, s.ends_at) from public.sessions s
        where s.expert_id = expert and s.status in ('awaiting_payment', 'requested', 'confirmed', 'in_progress')
          and tstzrange(s.starts_at, s.ends_at) && w.win
      ) busy), '{}'::tstzmultirange)) as piece
    where not isempty(w.win)
  ),
  spans as (
    select p.anchor + make_interval(mins => 15 * ceil(extract(epoch from greatest(lower(p.piece), p.lo) - p.anchor) / 900)::int) as first_start,
           least(upper(p.piece), p.hi) - make_interval(mins => minutes) as last_fit, p.last_start
    from pieces p
  )
  select distinct slot from spans s, generate_series(s.first_start, least(s.last_fit, s.last_start), interval '15 minutes') as slot
  order by slot
  limit max_slots;
end
$$;

-- The online experts' entries: one row per skill of an expert reported online, with their last
-- report and what the filters need. Small (the experts online), and rewritten on every report.
create table private.online_search_entries (
  skill_id smallint not null,
  expert_id uuid not null,
  last_seen_at timestamptz not null,
  proficiency smallint not null,
  rating_part numeric(5, 4) not null,
  hourly_rate_cents bigint not null,
  currency char(3) not null,
  rating_avg numeric(3, 2) not null,
  primary key (expert_id, skill_id)
);
comment on table private.online_search_entries is 'find_experts'' online candidates: private.search_entries of the experts whose presence is online, with their last report.';
create index online_search_entries_skill_idx on private.online_search_entries (skill_id, last_seen_at)
  include (expert_id, proficiency, rating_part, hourly_rate_cents, currency, rating_avg);

-- What the online entries are, derived from the lists and presence: for the triggers (one
-- expert) and for bulk loads (all of them).
create view private.online_search_entry_source as
  select se.skill_id, se.expert_id, o.last_seen_at, se.proficiency, se.rating_part, se.hourly_rate_cents, se.currency, se.rating_avg
  from private.search_entries se join public.online_status o on o.profile_id = se.expert_id
  where o.is_online;

create function private.refresh_online_search_entries(expert uuid) returns void
language sql security definer set search_path = '' as $$
  delete from private.online_search_entries where expert_id = expert;
  insert into private.online_search_entries select * from private.online_search_entry_source where expert_id = expert;
$$;

-- Which skills are held together: one row per expert in the lists and pair of their skills.
create table private.search_pairs (
  skill_a smallint not null,
  skill_b smallint not null,
  expert_id uuid not null,
  primary key (skill_a, skill_b, expert_id),
  check (skill_a < skill_b)
);
comment on table private.search_pairs is 'find_experts'' graph of skills held together: pairs of skills of each expert in private.search_entries.';
create index search_pairs_expert_idx on private.search_pairs (expert_id);
create view private.search_pair_source as
  select a.skill_id as skill_a, b.skill_id as skill_b, a.expert_id
  from private.search_entries a join private.search_entries b on b.expert_id = a.expert_id and b.skill_id > a.skill_id;

create or replace function private.refresh_search_entries(expert uuid) returns void
language sql security definer set search_path = '' as $$
  delete from private.search_entries where expert_id = expert;
  insert into private.search_entries select * from private.search_entry_source where expert_id = expert;
  delete from private.search_pairs where expert_id = expert;
  insert into private.search_pairs select * from private.search_pair_source where expert_id = expert;
  select private.refresh_online_search_entries(expert);
$$;
insert into private.search_pairs select * from private.search_pair_source;

create function private.follow_presence() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.refresh_online_search_entries(coalesce(new.profile_id, old.profile_id));
  if tg_op = 'UPDATE' and new.profile_id <> old.profile_id then
    perform private.refresh_online_search_entries(old.profile_id);
  end if;
  return null;
end
$$;
comment on function private.follow_presence() is 'Keeps private.online_search_entries in step with online_status.';
create trigger online_status_search_entries after insert or update or delete on public.online_status
  for each row execute function private.follow_presence();
insert into private.online_search_entries select * from private.online_search_entry_source;

create or replace function public.find_experts(
  skills text[], max_rate_cents bigint default null, currency text default null,
  window_from timestamptz default null, window_to timestamptz default null, duration_minutes int default 60,
  min_rating numeric default null, page_size int default 10, after_score numeric default null, after_id uuid default null
) returns jsonb
-- Without JIT: its statements are short and index-served, but the planner sizes a set-returning
-- function at 1,000 rows, priced the pairs of two lists as 333,333 and compiled that statement
-- with LLVM on every search (4.7 ms of 9 at 100,000 experts).
language plpgsql volatile security definer set search_path = '' set jit = off as $$
declare
  caller uuid := (select auth.uid());
  now timestamptz := private.now();
  slot_from timestamptz := coalesce(window_from, now);
  -- Nothing can be booked past the horizon: no slot is looked for beyond it.
  slot_to timestamptz := least(coalesce(window_to, now + interval '7 days'), now + interval '90 days' + make_interval(mins => duration_minutes));
  n int := cardinality(skills);
  skill_ids smallint[];
  -- The first round reads 96 entries a list (32 before): at 100,000 experts a page needs several
  -- hundred, and every round has a fixed cost; at 1,000 it costs the same.
  batch int := greatest(2 * page_size, 96);
  last_key numeric[];
  last_id uuid[];
  done boolean[];
  seen uuid[] := '{}';
  fresh uuid[];
  online_now uuid[];
  online_bound numeric := 0;
  price_bound numeric;
  top private.search_hit[] := '{}';
  hit private.search_hit;
  candidate record;
  slots jsonb;
  unseen_bound numeric;
  unseen_static numeric;
  met uuid[];
  page_floor numeric;
  first_round boolean := true;
  -- Per list, its group of skills held together (the smallest position in it).
  groups int[];
  pair_p int[];
  pair_q int[];
  found_experts jsonb;
  request_id uuid;
begin
  perform private.check_search(skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, page_size, after_score, after_id);
  if caller is not null then
    perform private.limit_searches(caller);
  end if;

  select coalesce(pg_catalog.array_agg(sc.id order by sc.id), '{}') into skill_ids from public.skill_categories sc where sc.slug = any (skills);
  -- The lists' groups: connected by the pairs of requested skills some expert holds together.
  groups := array(select p from generate_subscripts(skill_ids, 1) p order by p);
  select coalesce(pg_catalog.array_agg(p order by p, q), '{}'), coalesce(pg_catalog.array_agg(q order by p, q), '{}') into pair_p, pair_q
  from generate_subscripts(skill_ids, 1) p
  join generate_subscripts(skill_ids, 1) q on q > p
  -- One probe a pair (the limit keeps the planner from hashing the whole table).
  cross join lateral (select 1 from private.search_pairs sp where sp.skill_a = skill_ids[p] and sp.skill_b = skill_ids[q] limit 1) as held;
  for i in 1 .. cardinality(skill_ids) loop
    for e in 1 .. cardinality(pair_p) loop
      groups[pair_p[e]] := least(groups[pair_p[e]], groups[pair_q[e]]);
      groups[pair_q[e]] := groups[pair_p[e]];
    end loop;
  end loop;
  last_key := pg_catalog.array_fill(1::numeric, array[cardinality(skill_ids)]);
  last_id := pg_catalog.array_fill('ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid, array[cardinality(skill_ids)]);
  done := pg_catalog.array_fill(false, array[cardinality(skill_ids)]);
  price_bound := case when max_rate_cents is null then 0.075
                      else 0.15 * greatest(0, 1 - coalesce((select min(e.hourly_rate_cents) from public.expert_profiles e where e.is_active), max_rate_cents)::numeric / max_rate_cents) end;
  -- Everyone online now who is a candidate is looked at first (when at most 2,000 are online),
  -- so the walk need not allow for them.
  if (select count(*) from (select 1 from public.online_status o where o.is_online and o.last_seen_at > now - interval '5 minutes' limit 2001) o) > 2000 then
    online_bound := 0.05;
    online_now := '{}';
  else
    -- The online experts' entries, per skill and last report: one index range per skill.
    select coalesce(pg_catalog.array_agg(distinct oe.expert_id), '{}') into online_now
    from private.online_search_entries oe
    where oe.skill_id = any (skill_ids) and oe.last_seen_at > now - interval '5 minutes'
      and (find_experts.currency is null or oe.currency = find_experts.currency)
      and (find_experts.max_rate_cents is null or oe.hourly_rate_cents <= find_experts.max_rate_cents)
      and (find_experts.min_rating is null or oe.rating_avg >= find_experts.min_rating);
  end if;
  seen := online_now;
  fresh := '{}';

  while cardinality(skill_ids) > 0 loop
    page_floor := case when cardinality(top) >= page_size then top[page_size].score end;
    -- Sorted access: the next entries of every list not yet exhausted, filters applied in the index.
    with lists as (
      select l.position, l.skill_id, l.key, l.id from unnest(skill_ids, last_key, last_id) with ordinality as l (skill_id, key, id, position)
      where not done[l.position]
    ),
    read as (
      select l.position, x.expert_id, x.sort_key, x.hourly_rate_cents, count(*) over (partition by l.position) as taken,
             row_number() over (partition by l.position order by x.sort_key, x.expert_id) as from_last
      from lists l cross join lateral (
        select se.expert_id, se.sort_key, se.hourly_rate_cents from private.search_entries se
        where se.skill_id = l.skill_id and (se.sort_key, se.expert_id) < (l.key, l.id)
          and (find_experts.currency is null or se.currency = find_experts.currency)
          and (find_experts.max_rate_cents is null or se.hourly_rate_cents <= find_experts.max_rate_cents)
          and (find_experts.min_rating is null or se.rating_avg >= find_experts.min_rating)
        order by se.sort_key desc, se.expert_id desc
        limit batch) x
    ),
    moved as (
      select l.position, r.sort_key, r.expert_id, coalesce(r.taken, 0) as taken
      from lists l left join read r on r.position = l.position and r.from_last = 1
    ),
    edge as (
      select p, case when m.position is null then last_key[p] when m.taken < batch then 0 else m.sort_key end as key,
             coalesce(m.expert_id, last_id[p]) as id, done[p] or (m.position is not null and m.taken < batch) as exhausted
      from generate_subscripts(skill_ids, 1) p left join moved m on m.position = p
    ),
    -- The most an entry not read yet can hold of its list's share (0.20 x rating for a skill not held).
    ceiling as (
      select e.p, case when e.exhausted then 0.20 else greatest(e.key, 0.20) end as part from edge e
    ),
    -- An expert's skills lie in one group: beyond 0.20 a skill, an unseen one holds at most
    -- the ceilings of one group.
    group_ceiling as (
      select groups[c.p] as grp, sum(c.part - 0.20) as gain from ceiling c group by groups[c.p]
    ),
    unseen as (
      select 0.20 * n + coalesce(max(g.gain), 0) as static from group_ceiling g
    ),
    -- The experts read for the first time: what their keys read add to that ceiling, and their price part.
    met_now as (
      select r.expert_id, min(groups[r.position]) as grp, sum(r.sort_key - c.part) as gain,
             case when find_experts.max_rate_cents is null then 0.075 else 0.15 * (1 - min(r.hourly_rate_cents)::numeric / find_experts.max_rate_cents) end as price_part
      from read r join ceiling c on c.p = r.position
      where not exists (select 1 from unnest(seen) s (id) where s.id = r.expert_id)
      group by r.expert_id
    )
    select (select pg_catalog.array_agg(e.key order by e.p) from edge e),
           (select pg_catalog.array_agg(e.id order by e.p) from edge e),
           (select pg_catalog.array_agg(e.exhausted order by e.p) from edge e),
           (select u.static from unseen u),
           coalesce((select pg_catalog.array_agg(m.expert_id) from met_now m), '{}'),
           -- Scored are only those whose score could still reach the page: at most their keys
           -- read and the ceilings of the rest of their group, their price part, availability
           -- and presence.
           coalesce((select pg_catalog.array_agg(m.expert_id) from met_now m
                     where page_floor is null
                        or (0.20 * n + (select g.gain from group_ceiling g where g.grp = m.grp) + m.gain) / n
                           + m.price_part + 0.15 + online_bound + 0.0002 >= page_floor), '{}')
      into last_key, last_id, done, unseen_static, met, fresh;
    seen := seen || met;

    -- The experts seen for the first time, scored but for availability, best first; each is
    -- resolved (availability, exact score) only while they could still enter the page.
    for candidate in
      select c.expert_id, c.skill_match, c.rating_part, c.price_fit, c.online,
             0.45 * c.skill_match + 0.20 * c.rating_part + 0.15 * c.price_fit + 0.05 * c.online as partial
      from (
        select se.expert_id,
               round(sum(se.proficiency)::numeric / (5 * n), 4) as skill_match,
               min(se.rating_part) as rating_part,
               case when find_experts.max_rate_cents is null then 0.5 else round(1 - min(se.hourly_rate_cents)::numeric / find_experts.max_rate_cents, 4) end as price_fit,
               case when max(se.online) = 1 or (online_bound > 0 and exists (
                      select 1 from public.online_status o where o.profile_id = se.expert_id and o.is_online and o.last_seen_at > now - interval '5 minutes'))
                    then 1 else 0 end as online
        from (
          -- The experts met on the lists: their entries of the requested skills, by key.
          select e.expert_id, e.proficiency, e.rating_part, e.hourly_rate_cents, 0 as online
          from private.search_entries e
          where e.expert_id = any (fresh) and e.skill_id = any (skill_ids)
            and (find_experts.currency is null or e.currency = find_experts.currency)
            and (find_experts.max_rate_cents is null or e.hourly_rate_cents <= find_experts.max_rate_cents)
            and (find_experts.min_rating is null or e.rating_avg >= find_experts.min_rating)
          union all
          -- First, everyone online who is a candidate (online_now), from their own entries.
          select oe.expert_id, oe.proficiency, oe.rating_part, oe.hourly_rate_cents, 1
          from private.online_search_entries oe
          where first_round and online_bound = 0 and oe.skill_id = any (skill_ids) and oe.last_seen_at > now - interval '5 minutes'
            and (find_experts.currency is null or oe.currency = find_experts.currency)
            and (find_experts.max_rate_cents is null or oe.hourly_rate_cents <= find_experts.max_rate_cents)
            and (find_experts.min_rating is null or oe.rating_avg >= find_experts.min_rating)
        ) se
        group by se.expert_id
      ) c
      order by partial desc, c.expert_id
    loop
      -- Strictly below the page's last even if available: neither this one nor any after it can
      -- enter (an equal score may, with a smaller id, so it is resolved).
      exit when cardinality(top) >= page_size and round(candidate.partial + 0.15, 4) < top[page_size].score;
      -- Above the cursor whatever their availability: on an earlier page.
      continue when after_score is not null and round(candidate.partial, 4) > after_score;
      slots := coalesce((select pg_catalog.jsonb_agg(slot order by slot) from private.free_slots(candidate.expert_id, slot_from, slot_to, duration_minutes, 3) as slot), '[]');
      continue when window_from is not null and pg_catalog.jsonb_array_length(slots) = 0;
      hit := (candidate.expert_id, round(candidate.partial + case when pg_catalog.jsonb_array_length(slots) > 0 then 0.15 else 0 end, 4),
              candidate.skill_match, candidate.rating_part, candidate.price_fit,
              case when pg_catalog.jsonb_array_length(slots) > 0 then 1 else 0 end, candidate.online, slots);
      -- On an earlier page (at or above the cursor): not this page's.
      continue when after_score is not null and (hit.score > after_score or (hit.score = after_score and hit.expert_id <= after_id));
      top := array(select t from unnest(top || hit) t order by (t).score desc, (t).expert_id limit page_size);
    end loop;
    fresh := '{}';
    first_round := false;
    -- Each round reads twice as deep as the last: few rounds, whatever the depth the page needs.
    batch := least(2 * batch, 2048);

    exit when not (false = any (done));
    -- No expert still unseen can beat the page's last: the page is final.
    unseen_bound := unseen_static / n + price_bound + 0.15 + online_bound;
    exit when cardinality(top) >= page_size and unseen_bound + 0.0002 < top[page_size].score;
  end loop;

  with page as (
    select t.*, e.hourly_rate_cents, e.currency, e.rating_avg, e.rating_count, e.instant_booking, e.timezone, e.headline, p.full_name, p.avatar_url,
           (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('slug', sc.slug, 'proficiency', es.proficiency, 'years', es.years) order by sc.slug)
            from public.expert_skills es join public.skill_categories sc on sc.id = es.skill_id
            where es.expert_id = t.expert_id and es.skill_id = any (skill_ids)) as matched_skills
    from unnest(top) t join public.expert_profiles e on e.id = t.expert_id join public.profiles p on p.id = t.expert_id
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'expert_id', p.expert_id, 'full_name', p.full_name, 'avatar_url', p.avatar_url, 'headline', p.headline,
           'hourly_rate_cents', p.hourly_rate_cents, 'currency', p.currency, 'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
           'instant_booking', p.instant_booking, 'timezone', p.timezone, 'skills', p.matched_skills, 'online', p.online = 1,
           'score', p.score,
           'score_parts', pg_catalog.jsonb_build_object('skill_match', p.skill_match, 'rating', p.rating_part, 'price_fit', p.price_fit,
                                                        'availability', p.availability, 'online', p.online),
           'next_slots', p.next_slots) order by p.score desc, p.expert_id), '[]')
    into found_experts
  from page p;

  if caller is not null then
    insert into public.match_requests (client_id, skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, result_count, created_at)
    values (caller, find_experts.skills, find_experts.max_rate_cents, find_experts.currency, find_experts.window_from, find_experts.window_to,
            find_experts.duration_minutes, find_experts.min_rating, pg_catalog.jsonb_array_length(found_experts), now)
    returning id into request_id;
    insert into public.match_results (request_id, expert_id, rank, score, score_parts)
    select request_id, (t.item ->> 'expert_id')::uuid, t.position::int, (t.item ->> 'score')::numeric, t.item -> 'score_parts'
    from pg_catalog.jsonb_array_elements(found_experts) with ordinality as t (item, position);
  end if;

  -- The whole answer of find-experts, so that the worker passes it on without reading it; the
  -- cursor is the page's last score and id, hex of "score|id".
  return pg_catalog.jsonb_build_object('experts', found_experts, 'match_request_id', request_id,
    'next_cursor', case when cardinality(top) = page_size
                        then pg_catalog.encode(pg_catalog.convert_to(top[page_size].score::text || '|' || top[page_size].expert_id::text, 'UTF8'), 'hex') end);
end
$$;
comment on function public.find_experts is 'Ranks active experts for a search with a threshold walk over per-skill lists (see 20261201000300_search_at_scale.sql and this migration); records authenticated searches.';
