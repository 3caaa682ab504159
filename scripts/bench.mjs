// `npm run bench`: the one place the project's speed and size figures come from, side by side
// in one run, with each target checked and a miss said so:
//   1. each worker's size as `wrangler deploy --dry-run` reports it (target: at most 150 KiB gzip);
//   2. at 1,000, 10,000 and 100,000 experts (ten sessions each, their outbox, loaded set-based):
//      find-experts p50/p95/p99 in SQL, through PostgREST, through the Rust worker and through
//      its TypeScript peer under bare workerd, for six searches (target: p95 under 50 ms
//      through PostgREST at 100,000 experts, and at most 2x from 1,000 to 100,000); booking and
//      cancelling through the workers;
//   3. for every function, the Rust worker against its TypeScript peer making the same
//      PostgREST requests (bench/ts-peers), p50 as a ratio (target: at most 1.0x);
//   4. booking-reminders draining 5,000 due reminders through wrangler dev;
//   5. the shared crate natively: pricing, refund and HS256 verification per call.
// Timings on a shared machine vary: the targets compared take turns request by request, and the
// figures of one run are read side by side.
// BENCH_SIZES (default 1000,10000,100000) and BENCH_REQUESTS (default 200) narrow a run.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { buildEnv, PG_BIN } from './lib/tools.mjs';
import { functionNames } from './lib/build.mjs';
import { insertReminderBacklog, sqlRows } from './lib/fixtures.mjs';
import { userToken } from './lib/jwt.mjs';
import { PROFILES, psql, startStack, stackPaths } from './lib/stack.mjs';
import { root, waitFor } from './lib/util.mjs';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const SIZE_TARGET_KIB = 150;
const SEARCH_P95_TARGET_MS = 50;
const GROWTH_TARGET = 2;
const bin = (name) => join(root, 'node_modules', '.bin', name);
const execFileAsync = promisify(execFile);
const dist = join(stackPaths('bench').state, 'dist');
const missed = [];
const check = (ok, what) => {
  if (!ok) missed.push(what);
  return ok ? 'ok' : 'MISSED';
};

// Without blocking the event loop: the stand-in serves from this process, and a minute of
// blocking made its idle keep-alive sockets time out under the next request (ECONNRESET).
async function workerSizes() {
  rmSync(dist, { recursive: true, force: true });
  const sizes = [];
  for (const name of functionNames()) {
    const { stdout } = await execFileAsync(bin('wrangler'), ['deploy', '--dry-run', '--env', name, '--outdir', join(dist, name)], {
      cwd: root, env: { ...buildEnv(), WRANGLER_SEND_METRICS: 'false' }, encoding: 'utf8',
    });
    const [, total, gzip] = stdout.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/) ?? [];
    sizes.push({ name, total: Number(total), gzip: Number(gzip) });
  }
  return sizes;
}

function percentiles(samples) {
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

// One connection per target, kept alive, requests one after another: the latency a single
// client sees. `targets` maps a name to [base, next], where `next(i)` describes request i
// ({ path, method, body, headers, expect }). The targets take turns, request by request, so that
// whatever else the machine does in the meantime falls on all of them alike.
async function latencies(targets, { count = REQUESTS, warmup = 20 } = {}) {
  const agents = Object.fromEntries(Object.keys(targets).map((name) => [name, new Agent({ keepAlive: true, maxSockets: 1 })]));
  const samples = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
  for (let i = 0; i < warmup + count; i += 1) {
    for (const [name, [base, next]] of Object.entries(targets)) {
      const { ms } = await timed(base, agents[name], next(i));
      if (i >= warmup) samples[name].push(ms);
    }
  }
  Object.values(agents).forEach((agent) => agent.destroy());
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, percentiles(values)]));
}

// One request ({ method, path, body, headers, expect }) on `agent`: how long its whole answer
// took, and the answer; any status but `expect` fails the run.
function timed(base, agent, { method = 'GET', path = '/', body, headers = {}, expect = 200 }) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const started = process.hrtime.bigint();
    const req = request(`${base}${path}`, { method, agent, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== expect) reject(new Error(`${method} ${base}${path} answered ${res.statusCode}, not ${expect}: ${text.slice(0, 300)}`));
        else resolve({ ms, text, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// The same search REQUESTS times in one database session (warm, as PostgREST's pooled
// connections are), as anon, timed inside the database.
function inSql(dbUrl, args) {
  const block = `do $$ declare started timestamptz; samples float8[] := '{}'; begin
      for i in 1 .. ${REQUESTS + 20} loop
        started := clock_timestamp();
        perform public.find_experts(${args});
        if i > 20 then samples := samples || extract(epoch from clock_timestamp() - started) * 1000; end if;
      end loop;
      raise notice 'bench:%', (select json_build_object('p50', percentile_disc(0.5) within group (order by s),
        'p95', percentile_disc(0.95) within group (order by s), 'p99', percentile_disc(0.99) within group (order by s)) from unnest(samples) s);
    end $$`;
  const result = spawnSync(join(PG_BIN, 'psql'), ['-X', '-q', '-d', dbUrl, '-c', 'set role anon', '-c', block], { encoding: 'utf8' });
  const match = `${result.stderr}`.match(/bench:(\{.*\})/);
  if (!match) throw new Error(`no timing from SQL: ${result.stderr}`);
  return JSON.parse(match[1]);
}

function loadCatalogue(status, first, last) {
  const started = Date.now();
  psql(status.db_superuser_url, ['-v', `first=${first}`, '-v', `last=${last}`, '-f', join(root, 'bench', 'catalogue.sql')]);
  // Index-only scans need the visibility map a vacuum sets (autovacuum does it in production).
  psql(status.db_superuser_url, ['-c', 'vacuum analyze']);
  // The 1% online report in again, so that they are online (last report under five minutes
  // old) while this size is measured, however long the load took.
  psql(status.db_superuser_url, ['-c', 'update public.online_status set is_online = true where is_online']);
  return (Date.now() - started) / 1000;
}

// Bare workerd: every Rust worker and the TypeScript peers, each on its own port, straight to
// PostgREST (no stand-in in between). Request workers get no DISPATCHER binding here: the handoff
// happens after their answer and is no part of what is measured.
async function startWorkerd(status) {
  const names = functionNames();
  const ports = Object.fromEntries(names.map((name, index) => [name, PROFILES.bench.base + 40 + index]));
  ports.ts = PROFILES.bench.base + 39;
  const tsOut = join(dist, 'ts-peers', 'index.js');
  execFileSync(bin('esbuild'), [join(root, 'bench', 'ts-peers', 'index.ts'), '--bundle', '--format=esm', '--platform=neutral', '--minify', `--outfile=${tsOut}`], { cwd: root });
  const text = (entries) => `[${Object.entries(entries).map(([name, value]) => `(name = "${name}", text = "${value}")`).join(', ')}]`;
  const vars = {
    POSTGREST_URL: status.postgrest_url, SUPABASE_ANON_KEY: status.anon_key, SUPABASE_SERVICE_ROLE_KEY: status.service_role_key,
    SUPABASE_JWT_SECRET: status.jwt_secret, ALLOWED_ORIGINS: '*', ACCOUNT_TOKEN_KEY: 'bench-account-token-key-of-at-least-32-bytes',
    RESEND_API_URL: status.standin_url, RESEND_API_KEY: 're_bench', EMAIL_FROM: 'Bench <bench@example.com>', DAILY_API_URL: `${status.standin_url}/v1`,
    DAILY_API_KEY: 'daily_bench', SITE_URL: 'http://localhost:3000', SUPABASE_URL: status.postgrest_url, SEND_EMAIL_HOOK_SECRET: status.send_email_hook_secret,
    STRIPE_API_URL: status.stripe.api_url, STRIPE_SECRET_KEY: status.stripe.secret_key, STRIPE_WEBHOOK_SECRET: status.stripe.webhook_secret,
  };
  const rel = (path) => relative(dist, path);
  // Cap'n Proto names are camelCase: find-experts -> workerFindExperts.
  const ident = (name) => `worker${name.split('-').map((part) => part[0].toUpperCase() + part.slice(1)).join('')}`;
  const services = names.map((name) => {
    const wasm = readdirSync(join(dist, name)).find((file) => file.endsWith('.wasm'));
    return `const ${ident(name)} :Workerd.Worker = (
  modules = [(name = "shim.js", esModule = embed "${rel(join(dist, name, 'shim.js'))}"), (name = "${wasm}", wasm = embed "${rel(join(dist, name, wasm))}")],
  compatibilityDate = "2026-04-01", bindings = ${text(vars)}, globalOutbound = "loopback",
);`;
  });
  const configPath = join(dist, 'workerd.capnp');
  writeFileSync(configPath, `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
${names.map((name) => `    (name = "${name}", worker = .${ident(name)}),`).join('\n')}
    (name = "ts", worker = .tsPeers),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [
${Object.entries(ports).map(([name, port]) => `    (name = "${name}", address = "127.0.0.1:${port}", http = (), service = "${name}"),`).join('\n')}
  ],
);
${services.join('\n')}
const tsPeers :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed "${rel(tsOut)}")],
  compatibilityDate = "2026-04-01", compatibilityFlags = ["nodejs_compat"], bindings = ${text(vars)}, globalOutbound = "loopback",
);
`);
  const workerd = spawn(join(root, 'node_modules', '@cloudflare', 'workerd-linux-64', 'bin', 'workerd'), ['serve', configPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  const urls = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`]));
  for (const name of names) await waitFor(`${name} under workerd`, async () => (await fetch(`${urls[name]}/health`)).ok, 30_000);
  await waitFor('the TypeScript peers under workerd', async () => (await fetch(`${urls.ts}/find-experts/health`)).ok, 30_000);
  return { urls, stop: () => workerd.kill('SIGTERM') };
}

// A client of the benchmark's own, with a token, and an instant-booking expert's free weekday
// slot ten days ahead, which book-then-cancel frees again each time.
function bookingFixture(status) {
  const email = `bench-booker-${randomUUID()}@example.com`;
  const [{ id }] = sqlRows(status.db_superuser_url, `insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)
    values (gen_random_uuid(), 'authenticated', 'authenticated', '${email}', '{}', now(), now()) returning id`);
  const [{ starts_at }] = sqlRows(status.db_superuser_url, `select ((d::date + time '10:00') at time zone 'Europe/London') as starts_at
    from generate_series(current_date + 10, current_date + 20, interval '1 day') d where extract(isodow from d) < 6 limit 1`);
  return { token: userToken({ id, email }, status.jwt_secret), body: { expert_id: '22222222-2222-4222-8222-222222222201', starts_at: new Date(starts_at).toISOString(), duration_minutes: 60 } };
}

// The browser's part: Stripe.js confirming the PaymentIntent, then Stripe's event booking the session.
const payer = (status) => async (booking) => {
  await fetch(`${status.stripe.api_url}/v1/payment_intents/${booking.payment.payment_intent_id}/confirm`, {
    method: 'POST', headers: { authorization: `Bearer ${status.stripe.publishable_key}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_secret: booking.payment.client_secret, payment_method: 'pm_card_visa' }).toString(),
  });
  await waitFor('the payment to book the session', () =>
    sqlRows(status.db_superuser_url, `select status from sessions where id = '${booking.session.id}'`)[0].status === 'confirmed', 10_000, 10);
};

// The request paths that used to call providers inline, through wrangler dev with the DISPATCHER
// handoff: cancelling a paid session (a refund, two emails, the room's removal) with Resend and
// Daily.co answering at once, then in 500 ms. The same latency means nobody waits on them.
async function providersOffThePath(status) {
  const delay = (ms) => Promise.all(['email', 'daily'].map((service) => fetch(`${status.standin_url}/__standin/delay`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, ms }) })));
  const run = async () => (await bookAndCancel({ rust: [status.functions['create-session'], status.functions['cancel-session']] }, bookingFixture(status), { rounds: 20, pay: payer(status) })).rust;
  const quick = await run();
  await delay(500);
  try {
    return { quick, slow: await run() };
  } finally {
    await delay(0);
  }
}

async function reminderThroughput(status) {
  insertReminderBacklog(status.db_superuser_url, 5000);
  const runs = [];
  const started = Date.now();
  while (runs.length < 20 && runs.at(-1)?.remaining !== 0) {
    const response = await fetch(`${status.functions['booking-reminders']}/run`, { method: 'POST', headers: { authorization: `Bearer ${status.service_role_key}` } });
    runs.push(await response.json());
  }
  const seconds = (Date.now() - started) / 1000;
  return { runs, seconds, sent: runs.reduce((total, run) => total + run.sent, 0) };
}

// The searches compared: a popular pair of skills, with a rate ceiling, with a two-day window.
function searches() {
  const tuesday = new Date();
  tuesday.setUTCDate(tuesday.getUTCDate() + ((9 - tuesday.getUTCDay()) % 7 || 7));
  tuesday.setUTCHours(0, 0, 0, 0);
  const windowFrom = tuesday.toISOString();
  const windowTo = new Date(tuesday.getTime() + 2 * 86_400_000).toISOString();
  return [
    { label: 'skills only', sql: `array['react', 'typescript']`, rpc: { skills: ['react', 'typescript'] }, query: 'skills=react,typescript' },
    { label: '+ rate ceiling 80.00', sql: `array['react', 'typescript'], max_rate_cents => 8000`, rpc: { skills: ['react', 'typescript'], max_rate_cents: 8000 },
      query: 'skills=react,typescript&max_rate_cents=8000' },
    { label: '+ 2-day window, 90 min', sql: `array['react', 'typescript'], window_from => '${windowFrom}', window_to => '${windowTo}', duration_minutes => 90`,
      rpc: { skills: ['react', 'typescript'], window_from: windowFrom, window_to: windowTo, duration_minutes: 90 },
      query: `skills=react,typescript&from=${encodeURIComponent(windowFrom)}&to=${encodeURIComponent(windowTo)}&duration_minutes=90` },
    // Skills nobody holds together: the walk must know it, or it reads most of both lists.
    { label: 'skills held apart (react, kubernetes)', sql: `array['react', 'kubernetes']`, rpc: { skills: ['react', 'kubernetes'] }, query: 'skills=react,kubernetes' },
    // Two clusters' skills, every pair held together, all four by the seed's one expert: the
    // bound must know that nobody else holds more than three of them.
    { label: 'four skills of two clusters', sql: `array['react', 'typescript', 'nextjs', 'supabase']`, rpc: { skills: ['react', 'typescript', 'nextjs', 'supabase'] },
      query: 'skills=react,typescript,nextjs,supabase' },
    // Three skills thousands hold together, each at proficiency 5 by a fifth of them: the best
    // combined scores lie deeper in every list than their own best entries.
    { label: 'three skills of one cluster', sql: `array['react', 'typescript', 'nextjs']`, rpc: { skills: ['react', 'typescript', 'nextjs'] },
      query: 'skills=react,typescript,nextjs' },
  ];
}

const ms = (value) => value.toFixed(2).padStart(7);
const row = (label, figures) => `  ${label.padEnd(44)} ${ms(figures.p50)} ${ms(figures.p95)} ${ms(figures.p99)}`;

const native = execFileSync('cargo', ['bench', '--quiet', '-p', 'shared', '--bench', 'domain'], { cwd: root, encoding: 'utf8' });
const { status, stop } = await startStack({ profile: 'bench' });
let workerd;
try {
  // Before the sizes: their dry-run rewrites the build output, which makes wrangler dev reload.
  const reminders = await reminderThroughput(status);
  const offThePath = await providersOffThePath(status);
  const sizes = await workerSizes();
  // From here on, the workers' own request paths are timed: Stripe's events for the bookings
  // made are dropped, since processing them (payment-events under wrangler dev, on the same
  // cores) is another component's work, and it tripled the latency of whichever request came next.
  await fetch(`${status.standin_url}/__standin/stripe/delivery`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'drop' }) });
  workerd = await startWorkerd(status);
  const { urls } = workerd;
  const anon = { authorization: `Bearer ${status.anon_key}`, apikey: status.anon_key };

  const bySize = [];
  let loaded = 0;
  for (const size of SIZES) {
    const seconds = loadCatalogue(status, loaded + 1, size);
    loaded = size;
    const results = [];
    for (const search of searches()) {
      results.push({
        label: search.label,
        sql: inSql(status.db_url, search.sql),
        ...await latencies({
          postgrest: [status.postgrest_url, () => ({ method: 'POST', path: '/rpc/find_experts', body: search.rpc, headers: anon })],
          rust: [urls['find-experts'], () => ({ path: `/?${search.query}` })],
          ts: [urls.ts, () => ({ path: `/find-experts/?${search.query}` })],
        }),
      });
    }
    const { rust: booking } = await bookAndCancel({ rust: [urls['create-session'], urls['cancel-session']] }, bookingFixture(status));
    bySize.push({ size, seconds, results, booking });
  }

  // Every function, Rust against its TypeScript peer, on the largest catalogue.
  const fixture = bookingFixture(status);
  const service = { authorization: `Bearer ${status.service_role_key}` };
  const pairs = [];
  // Like for like: the peer answers inside the same envelope as the Rust worker (request id,
  // CORS headers), or the comparison would time less work on one side.
  const envelope = ['x-request-id', 'access-control-allow-origin', 'access-control-expose-headers', 'vary'];
  const compare = async (label, rustBase, rustNext, tsNext) => {
    const agent = new Agent({ keepAlive: false });
    for (const [side, base, next] of [['Rust', rustBase, rustNext], ['TypeScript', urls.ts, tsNext]]) {
      const { headers } = await timed(base, agent, next(0));
      const absent = envelope.filter((name) => !(name in headers));
      if (absent.length) throw new Error(`${label}: the ${side} answer lacks ${absent.join(', ')}`);
    }
    agent.destroy();
    const { rust, ts } = await latencies({ rust: [rustBase, rustNext], ts: [urls.ts, tsNext] });
    pairs.push({ label, rust, ts, ratio: rust.p50 / ts.p50 });
  };
  for (const name of functionNames()) await compare(`${name}: GET /health`, urls[name], () => ({ path: '/health' }), () => ({ path: `/${name}/health` }));
  await compare('find-experts: GET / (skills)', urls['find-experts'], () => ({ path: '/?skills=react,typescript' }), () => ({ path: '/find-experts/?skills=react,typescript' }));
  const confirm = { method: 'POST', body: { token: `${randomUUID()}.${'0'.repeat(64)}` }, expect: 400 };
  await compare('auth-email-verify: POST /confirm (unknown token)', urls['auth-email-verify'], () => ({ ...confirm, path: '/confirm' }), () => ({ ...confirm, path: '/auth-email-verify/confirm' }));
  // A new address and client address each time: no rate limit is reached, both answer at the 500 ms floor.
  const reset = (path) => (i) => ({ method: 'POST', path, expect: 202, body: { email: `nobody-${i}-${randomUUID()}@example.com` }, headers: { 'cf-connecting-ip': `198.18.${Math.floor(i / 256) % 256}.${i % 256}` } });
  await compare('password-reset: POST /request (no account)', urls['password-reset'], reset('/request'), reset('/password-reset/request'));
  // At this size reminders fall due every few minutes (an hour and a day before sessions at
  // 10:00 in six zones): what would fall due during the comparison waits a day, so that both
  // runs find nothing due, as the label says.
  psql(status.db_superuser_url, ['-c', "update public.outbox set next_attempt_at = next_attempt_at + interval '1 day' where status = 'pending' and next_attempt_at < now() + interval '1 hour'"]);
  await compare('booking-reminders: POST /run (nothing due)', urls['booking-reminders'], () => ({ method: 'POST', path: '/run', headers: service }),
    () => ({ method: 'POST', path: '/booking-reminders/run', headers: service }));
  const { rust: rustBooking, ts: tsBooking } = await bookAndCancel({
    rust: [urls['create-session'], urls['cancel-session']], ts: [`${urls.ts}/create-session`, `${urls.ts}/cancel-session`],
  }, fixture);
  pairs.push({ label: 'create-session: POST / (book)', rust: rustBooking.book, ts: tsBooking.book, ratio: rustBooking.book.p50 / tsBooking.book.p50 });
  pairs.push({ label: 'cancel-session: POST / (cancel)', rust: rustBooking.cancel, ts: tsBooking.cancel, ratio: rustBooking.cancel.p50 / tsBooking.cancel.p50 });

  console.log(`\nWorker size (wrangler deploy --dry-run; target: at most ${SIZE_TARGET_KIB} KiB gzip)`);
  for (const { name, total, gzip } of sizes) {
    console.log(`  ${name.padEnd(18)} ${total.toFixed(2).padStart(8)} KiB  gzip ${gzip.toFixed(2).padStart(7)} KiB  ${check(gzip <= SIZE_TARGET_KIB, `${name} is ${gzip} KiB gzip`)}`);
  }
  for (const { size, seconds, results } of bySize) {
    console.log(`\nfind-experts at ${size.toLocaleString('en')} experts (${(size * 10).toLocaleString('en')} sessions; loaded in ${seconds.toFixed(0)} s), ms     p50     p95     p99`);
    for (const result of results) {
      console.log(`  ${result.label}`);
      console.log(row('    in SQL (find_experts, warm session)', result.sql));
      console.log(row('    through PostgREST', result.postgrest));
      console.log(row('    through the Rust worker (bare workerd)', result.rust));
      console.log(row('    through the TypeScript peer (bare workerd)', result.ts));
    }
  }
  const largest = bySize.at(-1);
  const smallest = bySize[0];
  console.log(`\nfind-experts targets (through PostgREST, p95)`);
  for (const [index, result] of largest.results.entries()) {
    const under = check(result.postgrest.p95 < SEARCH_P95_TARGET_MS, `${result.label}: p95 ${result.postgrest.p95.toFixed(1)} ms at ${largest.size}`);
    const growth = result.postgrest.p95 / smallest.results[index].postgrest.p95;
    const grows = check(growth <= GROWTH_TARGET, `${result.label}: grows ${growth.toFixed(2)}x from ${smallest.size} to ${largest.size}`);
    console.log(`  ${result.label.padEnd(28)} ${ms(result.postgrest.p95)} ms at ${largest.size.toLocaleString('en')} (< ${SEARCH_P95_TARGET_MS}: ${under}), ${growth.toFixed(2)}x from ${smallest.size.toLocaleString('en')} (<= ${GROWTH_TARGET}x: ${grows})`);
  }
  console.log('\nBooking and cancelling through the Rust workers (bare workerd), ms      p50     p95     p99');
  for (const { size, booking } of bySize) {
    console.log(row(`  book at ${size.toLocaleString('en')} experts`, booking.book));
    console.log(row(`  cancel at ${size.toLocaleString('en')} experts`, booking.cancel));
  }
  console.log('\nThe request paths and the providers (wrangler dev; cancelling a paid session queues a refund, two emails and a room removal), ms  p50     p95     p99');
  console.log(row('  cancel, Resend and Daily.co answering at once', offThePath.quick.cancel));
  console.log(row('  cancel, Resend and Daily.co answering in 500 ms', offThePath.slow.cancel));
  const waited = offThePath.slow.cancel.p50 - offThePath.quick.cancel.p50;
  console.log(`  the cancellation waits ${waited.toFixed(2)} ms longer on slow providers (target: none of their 500 ms): ${check(waited < 100, `cancel-session waited ${waited.toFixed(0)} ms on slow providers`)}`);
  console.log(row('  book (one call to Stripe for the PaymentIntent, the one wait the client needs)', offThePath.quick.book));

  console.log(`\nEvery function: Rust worker against its TypeScript peer, same PostgREST requests, ${largest.size.toLocaleString('en')} experts (p50 ms; target: at most 1.0x)`);
  console.log(`  ${''.padEnd(52)}    Rust      TS   ratio`);
  for (const { label, rust, ts, ratio } of pairs) {
    console.log(`  ${label.padEnd(52)} ${ms(rust.p50)} ${ms(ts.p50)}  ${ratio.toFixed(2)}x ${check(ratio <= 1.0, `${label}: Rust at ${ratio.toFixed(2)}x TypeScript`)}`);
  }
  console.log('\nbooking-reminders through wrangler dev: a backlog of 5,000 due reminders');
  console.log(`  runs: ${reminders.runs.length}, sent per run: ${reminders.runs.map((run) => run.sent).join(' + ')} = ${reminders.sent}`);
  console.log(`  subrequests per run: ${reminders.runs.map((run) => run.subrequests).join(', ')} (budget 40)`);
  console.log(`  ${reminders.seconds.toFixed(1)} s in all: ${(reminders.sent / reminders.seconds).toFixed(0)} reminders per second`);
  console.log('\nThe shared crate natively (cargo bench -p shared; target: HS256 verification under 20 µs)');
  console.log(native.trim().split('\n').map((line) => `  ${line}`).join('\n'));
  console.log(missed.length ? `\nTargets missed (${missed.length}):\n${missed.map((what) => `  - ${what}`).join('\n')}` : '\nEvery target met.');
} finally {
  workerd?.stop();
  await stop();
}

// For each target [bookBase, cancelBase]: book, then cancel, on the same slot, again and again,
// the targets taking turns round by round: the latency of each. With `pay`, each booking is paid
// (as the browser pays, untimed) before it is cancelled, so that the cancellation has a refund,
// emails and a room to queue.
async function bookAndCancel(targets, fixture, { rounds = Math.max(20, Math.floor(REQUESTS / 4)), pay } = {}) {
  const samples = Object.fromEntries(Object.keys(targets).map((name) => [name, { book: [], cancel: [] }]));
  const agents = Object.fromEntries(Object.keys(targets).map((name) => [name, [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })]]));
  const headers = { authorization: `Bearer ${fixture.token}` };
  const send = async (base, agent, body, expect) => {
    const { ms, text } = await timed(base, agent, { method: 'POST', body, headers, expect });
    return { ms, json: JSON.parse(text) };
  };
  for (let i = 0; i < rounds + 5; i += 1) {
    for (const [name, [bookBase, cancelBase]] of Object.entries(targets)) {
      const booked = await send(bookBase, agents[name][0], fixture.body, 201);
      if (pay) await pay(booked.json);
      const undone = await send(cancelBase, agents[name][1], { session_id: booked.json.session.id }, 200);
      if (i >= 5) {
        samples[name].book.push(booked.ms);
        samples[name].cancel.push(undone.ms);
      }
    }
  }
  Object.values(agents).flat().forEach((agent) => agent.destroy());
  return Object.fromEntries(Object.entries(samples).map(([name, { book, cancel }]) => [name, { book: percentiles(book), cancel: percentiles(cancel) }]));
}
