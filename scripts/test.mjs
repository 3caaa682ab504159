// `npm test`: every test of the project, against one stack started for the whole run.
//   1. cargo test for the workspace (the shared crate's pure logic, natively)
//   2. the pgTAP files in supabase/tests/database through pg_prove (where `supabase test db` finds them)
//   3. the end-to-end tests in tests/ against the built workers under wrangler dev
//   4. schemathesis against the same workers from their OpenAPI documents (scripts/fuzz.mjs)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTools } from './lib/tools.mjs';
import { startStack, stackPaths } from './lib/stack.mjs';
import { root, log } from './lib/util.mjs';

const failures = [];
// Asynchronous on purpose: the stand-in serves from this process while the steps run.
const step = (name, command, args, env = {}) => new Promise((resolve) => {
  log(`${name}: ${command} ${args.join(' ')}`);
  spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).on('close', (code, signal) => {
    if (code !== 0) failures.push(`${name} (exit ${code ?? signal})`);
    resolve();
  });
});

ensureTools();
await step('cargo test', 'cargo', ['test', '--workspace', '--quiet']);

const { status, stop } = await startStack({ profile: 'test', installTools: false });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await stop();
    process.exit(130);
  });
}
try {
  const db = new URL(status.db_url);
  const pgDir = join('supabase', 'tests', 'database');
  const pgTests = readdirSync(join(root, pgDir)).filter((name) => name.endsWith('.test.sql')).sort().map((name) => join(pgDir, name));
  await step('pgTAP', 'pg_prove', ['--host', db.hostname, '--port', db.port, '--username', db.username, '--dbname', 'postgres', '--failures', ...pgTests], { PGPASSWORD: db.password });
  const e2e = readdirSync(join(root, 'tests')).filter((name) => name.endsWith('.test.mjs')).sort().map((name) => join('tests', name));
  await step('end-to-end', process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...e2e], { STACK_STATUS: stackPaths('test').status });
  await step('schemathesis', process.execPath, [join('scripts', 'fuzz.mjs'), '--max-examples', '10'], { STACK_STATUS: stackPaths('test').status });
} finally {
  await stop();
}

if (failures.length) {
  console.error(`\nFailed: ${failures.join(', ')}`);
  process.exit(1);
}
console.log('\nAll test suites passed: cargo test, pgTAP, end-to-end, schemathesis.');
