-- Expert search: filtering, a documented deterministic score, keyset pagination and next free
-- slots, all in one statement; an authenticated search is recorded with its results.
--
-- score = 0.45 skill_match + 0.20 rating + 0.15 price_fit + 0.15 availability + 0.05 online
--   skill_match  = sum of the expert's proficiency (1-5) over the requested skills / (5 x requested skills)
--   rating       = rating_avg / 5, or 0.6 (three stars) for an expert with no reviews yet
--   price_fit    = 1 - hourly rate / max rate when a max rate is given, else 0.5
--   availability = 1 when a free slot exists in the window (the next 7 days without one), else 0
--   online       = 1 when the expert was seen online in the last 5 minutes, else 0
-- Rounded to 4 decimals; ties broken by expert id, which is also the pagination key.

create function public.find_experts(
  skills text[], max_rate_cents bigint default null, currency text default null,
  window_from timestamptz default null, window_to timestamptz default null, duration_minutes int default 60,
  min_rating numeric default null, page_size int default 10, after_score numeric default null, after_id uuid default null
) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  caller uuid := (select auth.uid());
  slot_from timestamptz := coalesce(window_from, private.now());
  slot_to timestamptz := coalesce(window_to, private.now() + interval '7 days');
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
    where sc.slug = any (find_experts.skills)
      and e.is_active
      and (find_experts.currency is null or e.currency = find_experts.currency)
      and (find_experts.max_rate_cents is null or e.hourly_rate_cents <= find_experts.max_rate_cents)
      and (find_experts.min_rating is null or e.rating_avg >= find_experts.min_rating)
    group by e.id, p.id
  ),
  slotted as (
    select c.*,
           coalesce((select pg_catalog.jsonb_agg(slot order by slot) from private.free_slots(c.id, slot_from, slot_to, find_experts.duration_minutes, 3) as slot), '[]') as next_slots,
           coalesce((select o.is_online and o.last_seen_at > private.now() - interval '5 minutes' from public.online_status o where o.profile_id = c.id), false) as online
    from candidates c
  ),
  scored as (
    select s.*,
           round(s.proficiency_sum::numeric / (5 * cardinality(find_experts.skills)), 4) as skill_match,
           round(case when s.rating_count > 0 then s.rating_avg / 5 else 0.6 end, 4) as rating_part,
           round(case when find_experts.max_rate_cents is null then 0.5 else 1 - s.hourly_rate_cents::numeric / find_experts.max_rate_cents end, 4) as price_fit,
           case when pg_catalog.jsonb_array_length(s.next_slots) > 0 then 1 else 0 end as availability,
           case when s.online then 1 else 0 end as online_part
    from slotted s
    where find_experts.window_from is null or pg_catalog.jsonb_array_length(s.next_slots) > 0
  ),
  ranked as (
    select s.*, round(0.45 * s.skill_match + 0.20 * s.rating_part + 0.15 * s.price_fit + 0.15 * s.availability + 0.05 * s.online_part, 4) as score
    from scored s
  ),
  page as (
    select r.* from ranked r
    where find_experts.after_score is null or r.score < find_experts.after_score or (r.score = find_experts.after_score and r.id > find_experts.after_id)
    order by r.score desc, r.id
    limit find_experts.page_size
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

  if caller is not null then
    insert into public.match_requests (client_id, skills, max_rate_cents, currency, window_from, window_to, duration_minutes, min_rating, result_count)
    values (caller, find_experts.skills, find_experts.max_rate_cents, find_experts.currency, find_experts.window_from, find_experts.window_to,
            find_experts.duration_minutes, find_experts.min_rating, pg_catalog.jsonb_array_length(found_experts))
    returning id into request_id;
    insert into public.match_results (request_id, expert_id, rank, score, score_parts)
    select request_id, (t.item ->> 'expert_id')::uuid, t.position::int, (t.item ->> 'score')::numeric, t.item -> 'score_parts'
    from pg_catalog.jsonb_array_elements(found_experts) with ordinality as t (item, position);
  end if;

  return pg_catalog.jsonb_build_object('experts', found_experts, 'match_request_id', request_id);
end
$$;
comment on function public.find_experts is 'Ranks active experts for a search (score documented above the function); records authenticated searches.';
grant execute on function public.find_experts to anon, authenticated;
