// Builds one function's wasm worker with worker-build, skipping the build when nothing it is
// made from changed since the last one: wrangler runs this on every `wrangler dev` start.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildEnv } from './tools.mjs';
import { root, log } from './util.mjs';

export const functionNames = () =>
  readdirSync(join(root, 'functions'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).filter((name) => name !== 'build').map((name) => newestMtime(join(path, name))));
}

export function buildOutput(name) {
  return join(root, 'functions', name, 'build', 'worker', 'shim.mjs');
}

export function buildWorker(name, { force = false } = {}) {
  const output = buildOutput(name);
  // The worker embeds its OpenAPI document (GET /openapi.json).
  const inputs = ['Cargo.toml', 'Cargo.lock', 'shared', join('functions', name), join('openapi', `${name}.json`)].map((path) => newestMtime(join(root, path)));
  if (!force && existsSync(output) && statSync(output).mtimeMs >= Math.max(...inputs)) {
    log(`${name}: up to date`);
    return;
  }
  log(`${name}: building the wasm worker`);
  execFileSync('worker-build', ['--release'], { cwd: join(root, 'functions', name), env: buildEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
}
