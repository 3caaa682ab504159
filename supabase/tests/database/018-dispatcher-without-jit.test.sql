-- The dispatcher's functions never JIT-compile their statements (see the migration
-- 20261201000500_dispatcher_without_jit.sql): the setting is theirs, whatever the caller's.
begin;
\ir _helpers.psql
select plan(3);

select ok('jit=off' = any (p.proconfig), p.oid::regprocedure::text || ' runs with jit off')
from pg_proc p
where p.oid in ('public.service_role_claim_outbox(int, int, int, uuid, uuid[])'::regprocedure,
                'public.service_role_complete_outbox(jsonb)'::regprocedure,
                'public.service_role_advance_sessions(int, int)'::regprocedure)
order by p.oid::regprocedure::text;

select * from finish();
rollback;
