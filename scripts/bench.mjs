// `npm run bench`: prints the figures the project's speed and size goals are checked by.
//   1. each worker's size as `wrangler deploy --dry-run` reports it (goal: at most 200 KiB gzip);
//   2. find-experts under bare workerd against a TypeScript worker (@supabase/postgrest-js)
//      making the same PostgREST request, and PostgREST alone (goal: no slower than TypeScript);
//   3. booking-reminders draining a backlog of 5,000 reminders through wrangler dev;
//   4. the shared crate natively: pricing, refund and HS256 verification per call.
// Figures, not pass/fail: timings on a shared machine vary; read them side by side.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join, relative } from 'node:path';
import { buildEnv } from './lib/tools.mjs';
import { functionNames } from './lib/build.mjs';
import { insertReminderBacklog } from './lib/fixtures.mjs';
import { PROFILES, startStack, stackPaths } from './lib/stack.mjs';
import { root, waitFor } from './lib/util.mjs';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const bin = (name) => join(root, 'node_modules', '.bin', name);
const dist = join(stackPaths('bench').state, 'dist');

function workerSizes() {
  rmSync(dist, { recursive: true, force: true });
  return functionNames().map((name) => {
    const out = execFileSync(bin('wrangler'), ['deploy', '--dry-run', '--env', name, '--outdir', join(dist, name)], {
      cwd: root, env: { ...buildEnv(), WRANGLER_SEND_METRICS: 'false' }, encoding: 'utf8',
    });
    const [, total, gzip] = out.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/) ?? [];
    return { name, total: Number(total), gzip: Number(gzip) };
  });
}

// One connection, kept alive, requests one after another: the latency a single client sees.
async function latency(url, { method = 'GET', body, headers = {} } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () => new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(url, { method, agent, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode < 300 ? resolve(Number(process.hrtime.bigint() - started) / 1e6) : reject(new Error(`${url} answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  for (let i = 0; i < 30; i += 1) await once();
  const samples = [];
  for (let i = 0; i < REQUESTS; i += 1) samples.push(await once());
  agent.destroy();
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { p50: at(0.5), p90: at(0.9), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

async function bareWorkerd(status) {
  const ports = { rust: PROFILES.bench.base + 40, ts: PROFILES.bench.base + 41 };
  const tsOut = join(dist, 'ts-find-experts', 'index.js');
  execFileSync(bin('esbuild'), [join(root, 'bench', 'ts-find-experts', 'index.ts'), '--bundle', '--format=esm', '--platform=neutral', '--minify', `--outfile=${tsOut}`], { cwd: root });
  const rustDir = join(dist, 'find-experts');
  const wasm = readdirSync(rustDir).find((file) => file.endsWith('.wasm'));
  const bindings = `[(name = "POSTGREST_URL", text = "${status.postgrest_url}"), (name = "SUPABASE_ANON_KEY", text = "${status.anon_key}"), (name = "ALLOWED_ORIGINS", text = "*")]`;
  const configPath = join(dist, 'workerd.capnp');
  const rel = (path) => relative(dist, path);
  writeFileSync(configPath, `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "rust", worker = .rustWorker),
    (name = "ts", worker = .tsWorker),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [
    (name = "rust", address = "127.0.0.1:${ports.rust}", http = (), service = "rust"),
    (name = "ts", address = "127.0.0.1:${ports.ts}", http = (), service = "ts"),
  ],
);
const rustWorker :Workerd.Worker = (
  modules = [(name = "shim.js", esModule = embed "${rel(join(rustDir, 'shim.js'))}"), (name = "${wasm}", wasm = embed "${rel(join(rustDir, wasm))}")],
  compatibilityDate = "2026-04-01", bindings = ${bindings}, globalOutbound = "loopback",
);
const tsWorker :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed "${rel(tsOut)}")],
  compatibilityDate = "2026-04-01", compatibilityFlags = ["nodejs_compat"], bindings = ${bindings}, globalOutbound = "loopback",
);
`);
  const workerd = spawn(join(root, 'node_modules', '@cloudflare', 'workerd-linux-64', 'bin', 'workerd'), ['serve', configPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (const port of Object.values(ports)) {
      await waitFor(`workerd on ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 30_000);
    }
    const search = '?skills=react,typescript';
    return [
      ['PostgREST directly: POST /rpc/find_experts', await latency(`${status.postgrest_url}/rpc/find_experts`, {
        method: 'POST', body: JSON.stringify({ skills: ['react', 'typescript'], duration_minutes: 60, page_size: 10 }),
        headers: { authorization: `Bearer ${status.anon_key}`, apikey: status.anon_key },
      })],
      ['TypeScript worker (postgrest-js): GET /?skills=...', await latency(`http://127.0.0.1:${ports.ts}/${search}`)],
      ['Rust find-experts worker: GET /?skills=...', await latency(`http://127.0.0.1:${ports.rust}/${search}`)],
      ['PostgREST directly: GET /rpc/health', await latency(`${status.postgrest_url}/rpc/health`, { headers: { authorization: `Bearer ${status.anon_key}`, apikey: status.anon_key } })],
      ['TypeScript worker: GET /health (GET /rpc/health)', await latency(`http://127.0.0.1:${ports.ts}/health`)],
      ['Rust find-experts worker: GET /health (GET /rpc/health)', await latency(`http://127.0.0.1:${ports.rust}/health`)],
    ];
  } finally {
    workerd.kill('SIGTERM');
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
  const sent = runs.reduce((total, run) => total + run.sent, 0);
  return { runs, seconds, sent };
}

const native = execFileSync('cargo', ['bench', '--quiet', '-p', 'shared', '--bench', 'domain'], { cwd: root, encoding: 'utf8' });
const { status, stop } = await startStack({ profile: 'bench' });
try {
  const sizes = workerSizes();
  const speed = await bareWorkerd(status);
  const reminders = await reminderThroughput(status);
  const ms = (value) => value.toFixed(2).padStart(7);
  console.log('\nWorker size (wrangler deploy --dry-run; goal: at most 200 KiB gzip)');
  for (const { name, total, gzip } of sizes) console.log(`  ${name.padEnd(18)} ${total.toFixed(2).padStart(8)} KiB  gzip ${gzip.toFixed(2).padStart(7)} KiB`);
  console.log(`\nLatency under bare workerd, one connection, ${REQUESTS} requests each (ms; goal: Rust no slower than TypeScript)`);
  console.log(`  ${''.padEnd(58)}     p50     p90    mean`);
  for (const [label, { p50, p90, mean }] of speed) console.log(`  ${label.padEnd(58)} ${ms(p50)} ${ms(p90)} ${ms(mean)}`);
  console.log('\nbooking-reminders through wrangler dev: a backlog of 5,000 due reminders');
  console.log(`  runs: ${reminders.runs.length}, sent per run: ${reminders.runs.map((run) => run.sent).join(' + ')} = ${reminders.sent}`);
  console.log(`  subrequests per run: ${reminders.runs.map((run) => run.subrequests).join(', ')} (budget 40)`);
  console.log(`  ${reminders.seconds.toFixed(1)} s in all: ${(reminders.sent / reminders.seconds).toFixed(0)} reminders per second`);
  console.log('\nThe shared crate natively (cargo bench -p shared; goal: HS256 verification under 20 µs)');
  console.log(native.trim().split('\n').map((line) => `  ${line}`).join('\n'));
} finally {
  await stop();
}
