// `npm run dev`: brings up the local stack and keeps it running until Ctrl-C.
// `npm run status`: prints the running stack's URLs, keys and tokens as JSON.
import { existsSync, readFileSync } from 'node:fs';
import { startStack, stackPaths } from './lib/stack.mjs';

const profile = process.env.STACK_PROFILE ?? 'dev';

if (process.argv[2] === 'status') {
  const { status } = stackPaths(profile);
  if (!existsSync(status)) {
    console.error(`No ${profile} stack is running: start it with npm run dev.`);
    process.exit(1);
  }
  process.stdout.write(readFileSync(status, 'utf8') + '\n');
  process.exit(0);
}

const started = Date.now();
const { status, stop } = await startStack({ profile });
let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nStopping the stack...');
  await stop();
  console.log('Stopped: every process the stack started has exited.');
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

const width = Math.max(...Object.keys(status.functions).map((name) => name.length));
console.log(`
Call-an-Expert local stack is up (${((Date.now() - started) / 1000).toFixed(0)} s).

Functions:
${Object.entries(status.functions).map(([name, url]) => `  ${name.padEnd(width)}  ${url}`).join('\n')}

PostgREST     ${status.postgrest_url}
Database      ${status.db_url}
Stand-in      ${status.standin_url}  (recorded requests: ${status.standin_url}/__standin/requests)
JWT secret    ${status.jwt_secret}
anon key      ${status.anon_key}
service_role  ${status.service_role_key}

Seeded users (Authorization: Bearer <jwt>):
${status.users.map((user) => `  ${user.role.padEnd(12)} ${user.email}\n    ${user.jwt}`).join('\n')}

Everything as JSON: npm run status. Logs: ${status.logs}. Ctrl-C stops it all.`);
