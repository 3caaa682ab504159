-- find_experts bounds the experts it meets by the skills they hold, read with their entries.
--
-- An expert met on one list was bounded as if they held every other requested skill of a
-- clique at that list's ceiling, so that deep in a walk nearly everyone met was scored, one
-- probe of their entries each, although none could reach the page: at 100,000 experts, react,
-- typescript and nextjs (one cluster: everyone holding one of them holds two) scored about
-- 8,000 experts after the first round, none of whom the page took, about 100 of that search's
-- 190 ms. Each entry now carries its expert's skill ids (three or four) and rating part, in the
-- walk's index, so that an expert met is bounded by what they hold: their keys read, the
-- ceiling of a list not read yet of a skill they hold, and 0.20 x their rating for a skill they
-- do not hold (the score gives a skill not held its rating share alone). That search then
-- scores no one after its first round; how deep it reads is unchanged (the bound of the experts
-- not met yet is the same).

alter table private.search_entries add column skills smallint[];

-- As before, with the expert's skill ids last (the table's new column is last).
create or replace view private.search_entry_source as
  select es.skill_id, e.id as expert_id, es.proficiency, r.part as rating_part, 0.09 * es.proficiency + 0.20 * r.part as sort_key,
         e.hourly_rate_cents, e.currency, e.rating_avg,
         (select pg_catalog.array_agg(held.skill_id order by held.skill_id) from public.expert_skills held where held.expert_id = e.id) as skills
  from public.expert_profiles e
  cross join lateral (select round(case when e.rating_count > 0 then e.rating_avg / 5 else 0.6 end, 4) as part) r
  join public.expert_skills es on es.expert_id = e.id
  where e.is_active and e.accepts_payments;

update private.search_entries se set skills = held.skills
from (select es.expert_id, pg_catalog.array_agg(es.skill_id order by es.skill_id) as skills from public.expert_skills es group by es.expert_id) held
where held.expert_id = se.expert_id;
alter table private.search_entries alter column skills set not null;
comment on column private.search_entries.skills is 'All the skill ids of the entry''s expert: find_experts bounds an expert it meets by the skills they hold.';

-- The walk reads the skills and rating part with the key, still from the index alone.
drop index private.search_entries_walk_idx;
create index search_entries_walk_idx on private.search_entries (skill_id, sort_key, expert_id)
  include (hourly_rate_cents, currency, rating_avg, skills, rating_part);

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
  -- Pairs of lists held together by more experts than rare_pair (pair_p, pair_q), and by at
  -- most that many (rare_p, rare_q): the holders of a rare pair are all scored in the first
  -- round, so that experts not read yet hold no rare pair.
  rare_pair constant int := 50;
  pair_p int[];
  pair_q int[];
  rare_p int[];
  rare_q int[];
  rare_holders uuid[];
  -- Per list, the lists held with it by some expert (a bit per list position).
  held_with int[];
  -- The maximal sets of lists every two of which some expert holds together, as bit masks.
  cliques int[];
  found_experts jsonb;
  request_id uuid;
begin
  perform private.check_search(skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, page_size, after_score, after_id);
  if caller is not null then
    perform private.limit_searches(caller);
  end if;

  select coalesce(pg_catalog.array_agg(sc.id order by sc.id), '{}') into skill_ids from public.skill_categories sc where sc.slug = any (skills);
  with pairs as (
    select p, q, held.holders
    from generate_subscripts(skill_ids, 1) p
    join generate_subscripts(skill_ids, 1) q on q > p
    -- One probe a pair, counting to one past rare (the limit keeps the planner from hashing the whole table).
    cross join lateral (select count(*) as holders from (
      select 1 from private.search_pairs sp where sp.skill_a = skill_ids[p] and sp.skill_b = skill_ids[q] limit rare_pair + 1) h) as held
  )
  select coalesce(pg_catalog.array_agg(p order by p, q) filter (where holders > rare_pair), '{}'),
         coalesce(pg_catalog.array_agg(q order by p, q) filter (where holders > rare_pair), '{}'),
         coalesce(pg_catalog.array_agg(p order by p, q) filter (where holders between 1 and rare_pair), '{}'),
         coalesce(pg_catalog.array_agg(q order by p, q) filter (where holders between 1 and rare_pair), '{}')
    into pair_p, pair_q, rare_p, rare_q
  from pairs;
  held_with := pg_catalog.array_fill(0, array[cardinality(skill_ids)]);
  for e in 1 .. cardinality(pair_p) loop
    held_with[pair_p[e]] := held_with[pair_p[e]] | (1 << (pair_q[e] - 1));
    held_with[pair_q[e]] := held_with[pair_q[e]] | (1 << (pair_p[e] - 1));
  end loop;
  -- The skills of an expert not read yet are a clique of the graph of pairs held together but
  -- not rare: every two of them are a pair held together (by that expert), and not a rare one
  -- (or that expert was read). At most 10 lists, so at most 1,023 sets to try, once a search.
  cliques := array(
    select mask from generate_series(1, (1 << cardinality(skill_ids)) - 1) mask
    where not exists (select 1 from generate_subscripts(skill_ids, 1) p
                      where mask & (1 << (p - 1)) <> 0 and mask & ~(1 << (p - 1)) & ~held_with[p] <> 0)
      and not exists (select 1 from generate_subscripts(skill_ids, 1) p
                      where mask & (1 << (p - 1)) = 0 and mask & ~held_with[p] = 0));
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
  rare_holders := array(
    select distinct sp.expert_id from unnest(rare_p, rare_q) r (p, q)
    join private.search_pairs sp on sp.skill_a = skill_ids[r.p] and sp.skill_b = skill_ids[r.q]
    where not (sp.expert_id = any (online_now)));
  seen := online_now || rare_holders;
  fresh := '{}';

  while cardinality(skill_ids) > 0 loop
    page_floor := case when cardinality(top) >= page_size then top[page_size].score end;
    -- Sorted access: the next entries of every list not yet exhausted, filters applied in the index.
    with lists as (
      select l.position, l.skill_id, l.key, l.id from unnest(skill_ids, last_key, last_id) with ordinality as l (skill_id, key, id, position)
      where not done[l.position]
    ),
    read as (
      select l.position, x.expert_id, x.sort_key, x.hourly_rate_cents, x.skills, x.rating_part, count(*) over (partition by l.position) as taken,
             row_number() over (partition by l.position order by x.sort_key, x.expert_id) as from_last
      from lists l cross join lateral (
        select se.expert_id, se.sort_key, se.hourly_rate_cents, se.skills, se.rating_part from private.search_entries se
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
    -- An expert's skills lie in one clique: beyond 0.20 a skill, an unseen one holds at most
    -- the ceilings of one clique's lists.
    clique_ceiling as (
      select k.mask, sum(c.part - 0.20) as gain from unnest(cliques) k (mask) join ceiling c on k.mask & (1 << (c.p - 1)) <> 0 group by k.mask
    ),
    -- Per list, the best clique it is in.
    list_ceiling as (
      select c.p, max(k.gain) as gain from ceiling c join clique_ceiling k on k.mask & (1 << (c.p - 1)) <> 0 group by c.p
    ),
    unseen as (
      select 0.20 * n + coalesce(max(k.gain), 0) as static from clique_ceiling k
    ),
    -- The experts read for the first time: what their keys read add to that ceiling, their keys
    -- read, where, the skills they hold, their rating part and their price part.
    met_now as (
      select r.expert_id, min(r.position) as first_list, sum(r.sort_key - c.part) as gain, sum(r.sort_key) as read_sum,
             pg_catalog.array_agg(r.position) as read_at, min(r.skills) as held, min(r.rating_part) as rating_part,
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
           -- read plus, for the rest, the ceilings of a clique with the first list they were
           -- read in or (smaller for most) the ceiling of each list of a skill they hold and
           -- 0.20 x their rating for each requested skill they do not hold; then their price
           -- part, availability and presence.
           coalesce((select pg_catalog.array_agg(m.expert_id) from met_now m
                     where page_floor is null
                        or least(0.20 * n + (select l.gain from list_ceiling l where l.p = m.first_list) + m.gain,
                                 m.read_sum + (select coalesce(sum(case when skill_ids[c.p] = any (m.held) then c.part else 0.20 * m.rating_part end), 0)
                                               from ceiling c where not (c.p = any (m.read_at)))
                                 -- A requested skill no one has (not a list) gives its rating share too.
                                 + (n - cardinality(skill_ids)) * 0.20 * m.rating_part) / n
                           + m.price_part + 0.15 + online_bound + 0.0002 >= page_floor), '{}')
      into last_key, last_id, done, unseen_static, met, fresh;
    seen := seen || met;
    if first_round then
      fresh := fresh || rare_holders;
    end if;

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
          -- The experts met on the lists: their entries of the requested skills, by key, one
          -- probe an expert (as "= any (fresh)", thousands of them made a scan of the entries).
          select e.expert_id, e.proficiency, e.rating_part, e.hourly_rate_cents, 0 as online
          from unnest(fresh) f (id)
          cross join lateral (
            select e.expert_id, e.proficiency, e.rating_part, e.hourly_rate_cents from private.search_entries e
            where e.expert_id = f.id and e.skill_id = any (skill_ids)
              and (find_experts.currency is null or e.currency = find_experts.currency)
              and (find_experts.max_rate_cents is null or e.hourly_rate_cents <= find_experts.max_rate_cents)
              and (find_experts.min_rating is null or e.rating_avg >= find_experts.min_rating)
            -- Exact (an entry a skill) and a fence: flattened, the planner hashed every entry of the skills.
            limit cardinality(skill_ids)) e
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
comment on function public.find_experts is 'Ranks active experts for a search with a threshold walk over per-skill lists (see 20261201000300_search_at_scale.sql, 20261201000600_search_growth.sql, 20261201000700_search_cliques.sql and this migration); records authenticated searches.';
