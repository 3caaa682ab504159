-- The dispatcher's calls without JIT compilation.
--
-- With millions of outbox rows (two million reminders sent, hundreds of thousands pending days
-- ahead), the claim's count of what is due is misjudged: the planner takes `status = 'pending'`
-- and `next_attempt_at <= now` as independent, while pending rows are nearly all due later, and
-- expects 470,000 rows where there are three. Above `jit_above_cost` Postgres then compiles the
-- query with LLVM: measured at 100,000 experts, 54 ms of a 57 ms claim that reads three rows,
-- on every dispatcher run. These functions run short index-served statements, for which JIT
-- can only cost, so it is off for them whatever the caller's settings.
alter function public.service_role_claim_outbox(int, int, int, uuid, uuid[]) set jit = off;
alter function public.service_role_complete_outbox(jsonb) set jit = off;
alter function public.service_role_advance_sessions(int, int) set jit = off;
