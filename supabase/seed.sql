-- Seed data for the local stack: one client, four experts, one agency admin, the skill
-- catalogue and three sample sessions (completed, in progress, requested). Every seeded user
-- signs in with the password "password123". Times are relative to now, so the data stays useful.

insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated', u.email,
       extensions.crypt('password123', extensions.gen_salt('bf', 10)), now(),
       '{"provider": "email", "providers": ["email"]}', u.meta, now(), now()
from (values
  ('11111111-1111-4111-8111-111111111111'::uuid, 'casey.client@example.com', '{"full_name": "Casey Client", "timezone": "Europe/Paris"}'::jsonb),
  ('22222222-2222-4222-8222-222222222201'::uuid, 'ada.ai@example.com', '{"full_name": "Ada Lovelace", "role": "expert", "timezone": "Europe/London"}'::jsonb),
  ('22222222-2222-4222-8222-222222222202'::uuid, 'finn.fullstack@example.com', '{"full_name": "Finn Stack", "role": "expert", "timezone": "America/New_York"}'::jsonb),
  ('22222222-2222-4222-8222-222222222203'::uuid, 'devon.devops@example.com', '{"full_name": "Devon Ops", "role": "expert", "timezone": "Europe/Berlin"}'::jsonb),
  ('22222222-2222-4222-8222-222222222204'::uuid, 'rae.react@example.com', '{"full_name": "Rae Hooks", "role": "expert", "timezone": "America/Los_Angeles"}'::jsonb),
  ('33333333-3333-4333-8333-333333333333'::uuid, 'avery.agency@example.com', '{"full_name": "Avery Agency", "timezone": "UTC"}'::jsonb)
) as u (id, email, meta);

update public.profiles set role = 'agency_admin' where id = '33333333-3333-4333-8333-333333333333';

insert into public.agency_profiles (id, name, subscription_status, max_experts)
values ('44444444-4444-4444-8444-444444444444', 'Cloud Native Crew', 'active', 10);
insert into public.agency_admins (agency_id, profile_id)
values ('44444444-4444-4444-8444-444444444444', '33333333-3333-4333-8333-333333333333');

insert into public.expert_profiles (id, headline, bio, hourly_rate_cents, currency, timezone, instant_booking, agency_id) values
  ('22222222-2222-4222-8222-222222222201', 'AI tooling: Cursor, v0, Lovable', 'Ships AI-assisted products and teaches teams to do the same.', 15000, 'USD', 'Europe/London', true, null),
  ('22222222-2222-4222-8222-222222222202', 'Full-stack TypeScript and Supabase', 'Next.js, Postgres and everything in between.', 12000, 'USD', 'America/New_York', false, null),
  ('22222222-2222-4222-8222-222222222203', 'DevOps: Kubernetes, Terraform, CI', 'Makes deploys boring and on-call quiet.', 13500, 'USD', 'Europe/Berlin', true, '44444444-4444-4444-8444-444444444444'),
  ('22222222-2222-4222-8222-222222222204', 'React and design systems', 'Hooks, performance and accessible components.', 9000, 'USD', 'America/Los_Angeles', false, '44444444-4444-4444-8444-444444444444');

-- Every seeded expert has finished Stripe Connect onboarding and can take charges.
insert into public.payout_accounts (expert_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted, reported_at)
select e.id, 'acct_seed' || right(e.id::text, 2), true, true, true, now() from public.expert_profiles e;

insert into public.skill_categories (slug, name) values
  ('cursor', 'Cursor'), ('v0', 'v0'), ('lovable', 'Lovable'), ('react', 'React'), ('nextjs', 'Next.js'),
  ('typescript', 'TypeScript'), ('supabase', 'Supabase'), ('postgres', 'PostgreSQL'), ('llm-apps', 'LLM applications'),
  ('kubernetes', 'Kubernetes'), ('terraform', 'Terraform'), ('aws', 'AWS'), ('docker', 'Docker'), ('ci-cd', 'CI/CD');

insert into public.expert_skills (expert_id, skill_id, proficiency, years)
select e.id::uuid, s.id, e.proficiency, e.years
from (values
  ('22222222-2222-4222-8222-222222222201', 'cursor', 5, 3), ('22222222-2222-4222-8222-222222222201', 'v0', 4, 2),
  ('22222222-2222-4222-8222-222222222201', 'lovable', 4, 2), ('22222222-2222-4222-8222-222222222201', 'llm-apps', 5, 4),
  ('22222222-2222-4222-8222-222222222202', 'react', 4, 7), ('22222222-2222-4222-8222-222222222202', 'nextjs', 5, 5),
  ('22222222-2222-4222-8222-222222222202', 'typescript', 5, 8), ('22222222-2222-4222-8222-222222222202', 'supabase', 4, 3),
  ('22222222-2222-4222-8222-222222222202', 'postgres', 4, 9),
  ('22222222-2222-4222-8222-222222222203', 'kubernetes', 5, 7), ('22222222-2222-4222-8222-222222222203', 'terraform', 5, 6),
  ('22222222-2222-4222-8222-222222222203', 'aws', 4, 9), ('22222222-2222-4222-8222-222222222203', 'docker', 5, 10),
  ('22222222-2222-4222-8222-222222222203', 'ci-cd', 4, 8),
  ('22222222-2222-4222-8222-222222222204', 'react', 5, 9), ('22222222-2222-4222-8222-222222222204', 'typescript', 4, 6),
  ('22222222-2222-4222-8222-222222222204', 'v0', 3, 1), ('22222222-2222-4222-8222-222222222204', 'nextjs', 3, 4)
) as e (id, slug, proficiency, years)
join public.skill_categories s on s.slug = e.slug;

-- Weekdays 09:00-17:00 in each expert's own timezone; Devon also works Saturday mornings.
insert into public.availability_rules (expert_id, weekday, start_minute, end_minute)
select e.id, d.weekday, 540, 1020
from public.expert_profiles e cross join generate_series(1, 5) as d (weekday);
insert into public.availability_rules (expert_id, weekday, start_minute, end_minute)
values ('22222222-2222-4222-8222-222222222203', 6, 540, 780);

insert into public.online_status (profile_id, is_online, last_seen_at)
values ('22222222-2222-4222-8222-222222222201', true, now()), ('22222222-2222-4222-8222-222222222203', false, now() - interval '2 hours');

-- Three sessions of Casey's, priced by the rules (the table's checks verify it).
insert into public.sessions (id, client_id, expert_id, starts_at, ends_at, duration_minutes, status, hourly_rate_cents, amount_cents, platform_fee_cents, expert_payout_cents, currency, notes, room_name, room_url, payment_intent_id)
select s.id::uuid, '11111111-1111-4111-8111-111111111111', s.expert_id::uuid, s.starts_at, s.starts_at + make_interval(mins => s.minutes), s.minutes,
       s.status, s.rate, (s.rate * s.minutes + 30) / 60, ((s.rate * s.minutes + 30) / 60 * 1000 + 5000) / 10000,
       (s.rate * s.minutes + 30) / 60 - ((s.rate * s.minutes + 30) / 60 * 1000 + 5000) / 10000, 'USD', s.notes,
       'cae-' || s.id, 'https://call-an-expert.daily.co/cae-' || s.id, 'pi_seed' || right(s.id, 2)
from (values
  ('55555555-5555-4555-8555-555555555501', '22222222-2222-4222-8222-222222222201', date_trunc('hour', now()) - interval '7 days', 60, 'completed', 15000::bigint, 'Set up Cursor rules for our monorepo.'),
  ('55555555-5555-4555-8555-555555555502', '22222222-2222-4222-8222-222222222202', date_trunc('minute', now()) - interval '15 minutes', 90, 'in_progress', 12000::bigint, 'Review our Supabase RLS policies.'),
  ('55555555-5555-4555-8555-555555555503', '22222222-2222-4222-8222-222222222204', date_trunc('hour', now()) + interval '3 days', 60, 'requested', 9000::bigint, 'Speed up a slow React table.')
) as s (id, expert_id, starts_at, minutes, status, rate, notes);

-- Their payments, as Stripe would have reported them: paid and captured for the two that took
-- place, authorised and waiting for the expert's answer for the request.
insert into public.payments (session_id, kind, provider_ref, parent_ref, status, amount_cents, captured_cents, refunded_cents, application_fee_cents, fee_ref, transfer_ref, currency, reported_at)
select s.id, k.kind, k.ref, k.parent, k.status, s.amount_cents, k.captured, k.refunded, s.platform_fee_cents, k.fee, k.transfer, s.currency, s.created_at
from public.sessions s
cross join lateral (values
  ('payment_intent', s.payment_intent_id, null, case when s.status = 'requested' then 'requires_capture' else 'succeeded' end, null::bigint, null::bigint, null, null),
  ('charge', 'ch_seed' || right(s.id::text, 2), s.payment_intent_id, 'succeeded', case when s.status = 'requested' then 0 else s.amount_cents end, 0::bigint,
   case when s.status <> 'requested' then 'fee_seed' || right(s.id::text, 2) end, case when s.status <> 'requested' then 'tr_seed' || right(s.id::text, 2) end)
) as k (kind, ref, parent, status, captured, refunded, fee, transfer);

insert into public.reviews (session_id, reviewer_id, reviewee_id, rating, comment)
values ('55555555-5555-4555-8555-555555555501', '11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222201', 5, 'Clear, fast and practical.');

insert into public.session_messages (session_id, sender_id, body)
values ('55555555-5555-4555-8555-555555555502', '11111111-1111-4111-8111-111111111111', 'Hi Finn, the repo link is in the notes.');
