-- The dispatcher's functions and the search never JIT-compile their statements (see the
-- migrations 20261201000500_dispatcher_without_jit.sql and 20261201000600_search_growth.sql):
-- the setting is theirs, whatever the caller's.
begin;
\ir _helpers.psql
select plan(4);

select ok('jit=off' = any (p.proconfig), p.oid::regprocedure::text || ' runs with jit off')
from pg_proc p
where p.oid in ('public.service_role_claim_outbox(int, int, int, uuid, uuid[])'::regprocedure,
                'public.service_role_complete_outbox(jsonb)'::regprocedure,
                'public.service_role_advance_sessions(int, int)'::regprocedure,
                'public.find_experts(text[], bigint, text, timestamptz, timestamptz, int, numeric, int, numeric, uuid)'::regprocedure)
order by p.oid::regprocedure::text;

select * from finish();
rollback;
