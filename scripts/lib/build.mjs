// Builds one function's wasm worker with worker-build, skipping the build when nothing it is
// made from changed since the last one: wrangler runs this on every `wrangler dev` start.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
  dropToolSections(join(root, 'functions', name, 'build', 'index_bg.wasm'));
}

// worker-build runs wasm-opt with --debuginfo, which keeps the name section; with Rust's symbols
// stripped it only names the JavaScript imports. It, the producers and the target features (notes
// for tools, which the runtime ignores) are dropped byte for byte: re-encoding the module with
// wasm-opt would cost more than they weigh.
function dropToolSections(wasm) {
  const bytes = readFileSync(wasm);
  const kept = [bytes.subarray(0, 8)];
  for (let at = 8; at < bytes.length;) {
    const start = at;
    const id = bytes[at++];
    const [size, next] = leb128(bytes, at);
    at = next + size;
    if (id === 0) {
      const [nameLength, nameAt] = leb128(bytes, next);
      const name = bytes.subarray(nameAt, nameAt + nameLength).toString();
      if (['name', 'producers', 'target_features'].includes(name)) continue;
    }
    kept.push(bytes.subarray(start, at));
  }
  writeFileSync(wasm, Buffer.concat(kept));
}

function leb128(bytes, at) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
  }
}
