-- RLS on what only the system writes: tokens, reminders, audit rows, match requests and results.
begin;
\ir _helpers.psql
select plan(17);

insert into email_verification_tokens (user_id, email, token_hash, expires_at)
values (tests.user_id('casey.client@example.com'), 'casey.client@example.com', extensions.digest('t1', 'sha256'), now() + interval '1 day');
insert into password_reset_tokens (user_id, token_hash, expires_at)
values (tests.user_id('casey.client@example.com'), extensions.digest('t2', 'sha256'), now() + interval '1 hour');
insert into outbox (channel, topic, dedupe_key, session_id, recipient_id, max_attempts, due_at, next_attempt_at, last_error)
values ('email', 'reminder.24h', 'test-reminder', '55555555-5555-4555-8555-555555555503', tests.user_id('casey.client@example.com'), 5, now(), now(), 'boom');
insert into webhook_endpoints (url, event_types) values ('https://hooks.example.com/a', '{*}');
insert into audit_logs (actor_id, actor_role, action, entity, entity_id) values (tests.user_id('casey.client@example.com'), 'authenticated', 'session.created', 'sessions', 'x');
insert into match_requests (id, client_id, skills) values ('66666666-6666-4666-8666-666666666666', tests.user_id('casey.client@example.com'), array['react']);
insert into match_results (request_id, expert_id, rank, score, score_parts) values ('66666666-6666-4666-8666-666666666666', tests.user_id('rae.react@example.com'), 1, 0.9, '{}');

select tests.authenticate_as('casey.client@example.com');
select throws_ok('select token_hash from email_verification_tokens', '42501', 'permission denied for table email_verification_tokens',
  'a user cannot read even their own verification token hash');
select throws_ok('select token_hash from password_reset_tokens', '42501', 'permission denied for table password_reset_tokens',
  'nor their reset token hash');
select is((select count(*) from outbox where topic = 'reminder.24h'), 1::bigint, 'a recipient sees their notification');
select ok(not exists (select 1 from outbox where recipient_id is distinct from tests.user_id('casey.client@example.com')), 'and only theirs');
select throws_ok('select last_error, payload from outbox', '42501', 'permission denied for table outbox', 'but not its internals');
select throws_ok('select secret from webhook_endpoints', '42501', 'permission denied for table webhook_endpoints', 'nor any webhook endpoint or secret');
select throws_ok('select * from webhook_attempts', '42501', 'permission denied for table webhook_attempts', 'nor the delivery log');
select is((select count(*) from audit_logs), 0::bigint, 'a client cannot read the audit log, not even their own rows');
select throws_ok($$insert into audit_logs (actor_role, action, entity) values ('authenticated', 'x.y', 'z')$$, '42501',
  'permission denied for table audit_logs', 'nor write it');
select is((select count(*) from match_results where request_id = '66666666-6666-4666-8666-666666666666'), 1::bigint, 'a client sees their own search results');
select is((select count(*) from match_results r join match_requests q on q.id = r.request_id where q.client_id <> tests.user_id('casey.client@example.com')), 0::bigint,
  'and no one else''s');
select throws_ok($$update auth.users set email_confirmed_at = now() where id = tests.user_id('casey.client@example.com')$$, '42501',
  'permission denied for table users', 'a client cannot confirm their own email');
reset role;

select tests.authenticate_as('rae.react@example.com');
select is((select count(*) from outbox where topic = 'reminder.24h') + (select count(*) from match_requests) + (select count(*) from match_results), 0::bigint,
  'an expert sees neither the client''s reminders nor searches');
reset role;

select tests.as_anon();
select throws_ok('select * from outbox', '42501', 'permission denied for table outbox', 'anon cannot read the outbox');
select throws_ok('select * from match_requests', '42501', 'permission denied for table match_requests', 'anon cannot read searches');
reset role;

select count(*) as all_audit_rows from audit_logs \gset
select (select count(*) from email_verification_tokens) + (select count(*) from password_reset_tokens) as all_tokens \gset
update profiles set role = 'admin' where id = tests.user_id('avery.agency@example.com');
select tests.authenticate_as('avery.agency@example.com');
select is((select count(*) from audit_logs), :all_audit_rows::bigint, 'an admin reads the whole audit log');
reset role;

select tests.as_service_role();
select is((select count(*) from email_verification_tokens) + (select count(*) from password_reset_tokens), :all_tokens::bigint, 'service_role works the token tables');
reset role;

select * from finish();
rollback;
