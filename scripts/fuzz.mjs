// `npm run fuzz`: schemathesis, from PyPI, against the running workers of a stack, from each
// worker's OpenAPI document. It must find no 5xx, no response the document does not allow
// (status, content type, schema) and no request answered with an error that changed the database
// (tests/fuzz/hooks.py). `npm test` runs it with a few examples per operation; by hand:
//   npm run dev        # in one terminal
//   npm run fuzz -- --max-examples 200
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSchemathesis } from './lib/tools.mjs';
import { functionNames } from './lib/build.mjs';
import { userToken } from './lib/jwt.mjs';
import { sqlRows } from './lib/fixtures.mjs';
import { stackPaths } from './lib/stack.mjs';
import { root, log } from './lib/util.mjs';

const argument = (name, fallback) => {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : fallback;
};
const maxExamples = Number(argument('--max-examples', 10));
const status = JSON.parse(readFileSync(process.env.STACK_STATUS ?? stackPaths('dev').status, 'utf8'));
const schemathesis = ensureSchemathesis();

// A signed-in client of the fuzzer's own: requests reach the routes' real checks.
const email = `fuzz-${Date.now()}@example.com`;
const [{ id }] = sqlRows(status.db_superuser_url, `insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
  values (gen_random_uuid(), 'authenticated', 'authenticated', '${email}', '{"full_name": "Fuzz Client"}', now(), now()) returning id`);
const token = userToken({ id, email }, status.jwt_secret);

const failed = [];
for (const name of functionNames()) {
  log(`schemathesis: ${name}, ${maxExamples} examples per operation`);
  const run = spawnSync(schemathesis, ['run', join(root, 'openapi', `${name}.json`), '--url', status.functions[name],
    '--checks', 'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,error_changes_nothing',
    '--max-examples', String(maxExamples), '--seed', '20261201', '--header', `Authorization: Bearer ${token}`, '--no-color'], {
    cwd: root, stdio: 'inherit',
    env: { ...process.env, SCHEMATHESIS_HOOKS: 'hooks', PYTHONPATH: join(root, 'tests', 'fuzz'), FUZZ_DB_URL: status.db_superuser_url },
  });
  if (run.status !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`schemathesis found problems in: ${failed.join(', ')}`);
  process.exit(1);
}
console.log('schemathesis: no 5xx, no response outside the documents, no error that changed the database.');
