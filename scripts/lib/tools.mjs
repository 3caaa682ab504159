// Installs what the stack and the tests need, once, and is quick when everything is there:
// Debian's PostgreSQL 15 with pgTAP, the wasm target, worker-build, wasm-bindgen-cli at the
// Cargo.lock version, and the npm packages.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { root, log } from './util.mjs';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const WORKER_BUILD_VERSION = '0.8.7';

const cargoBin = join(process.env.CARGO_HOME ?? join(process.env.HOME, '.cargo'), 'bin');
// cargo installs into ~/.cargo/bin, which a fresh shell may not have on its PATH yet.
const pathWithCargo = `${cargoBin}:${process.env.PATH}`;

function has(command, args = ['--version']) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, PATH: pathWithCargo } });
  return result.status === 0 ? result.stdout.trim() : null;
}

function run(command, args, options = {}) {
  log(`$ ${command} ${args.join(' ')}`);
  execFileSync(command, args, { stdio: 'inherit', ...options });
}

function asRoot(command, args) {
  if (process.getuid() === 0) run(command, args);
  else run('sudo', [command, ...args]);
}

export function wasmBindgenVersion() {
  const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
  const match = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/);
  if (!match) throw new Error('wasm-bindgen is not in Cargo.lock');
  return match[1];
}

function ensureDebianPackages() {
  const wanted = [
    [join(PG_BIN, 'postgres'), 'postgresql-15'],
    ['/usr/share/postgresql/15/extension/pgtap.control', 'postgresql-15-pgtap'],
    ['/usr/bin/pg_prove', 'pgtap'],
    // The real browser of the supabase-js test, driven by playwright-core.
    ['/usr/bin/chromium', 'chromium'],
  ].filter(([path]) => !existsSync(path)).map(([, pkg]) => pkg);
  if (wanted.length === 0) return;
  asRoot('apt-get', ['update', '-qq']);
  asRoot('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...wanted]);
}

function ensureRustTools() {
  const targets = has('rustup', ['target', 'list', '--installed']) ?? '';
  if (!targets.split('\n').includes('wasm32-unknown-unknown')) run('rustup', ['target', 'add', 'wasm32-unknown-unknown']);
  const components = has('rustup', ['component', 'list', '--installed']) ?? '';
  const missing = ['rustfmt', 'clippy'].filter((name) => !components.split('\n').some((line) => line.startsWith(`${name}-`)));
  if (missing.length) run('rustup', ['component', 'add', ...missing]);
  if (!(has('worker-build') ?? '').includes(WORKER_BUILD_VERSION)) {
    run('cargo', ['install', 'worker-build', '--version', WORKER_BUILD_VERSION, '--locked']);
  }
  const bindgen = wasmBindgenVersion();
  if (!(has('wasm-bindgen') ?? '').includes(bindgen)) {
    // Not --locked: that lock names a webpki-roots release the registry may not serve.
    run('cargo', ['install', 'wasm-bindgen-cli', '--version', bindgen]);
  }
}

function ensureNodeModules() {
  const stamp = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  // `npm install` rather than `npm ci`: the lock may lack other platforms' optional packages,
  // which `npm ci` treats as out of sync.
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: root });
}

const SCHEMATHESIS_VERSION = '4.32.5';

// schemathesis, from PyPI, in a virtual environment of the project's own (.tools/).
export function ensureSchemathesis() {
  const venv = join(root, '.tools', 'schemathesis');
  const bin = join(venv, 'bin', 'schemathesis');
  if ((has(bin) ?? '').includes(SCHEMATHESIS_VERSION)) return bin;
  if (has('python3', ['-c', 'import venv, ensurepip']) === null) asRoot('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'python3-venv']);
  run('python3', ['-m', 'venv', venv]);
  run(join(venv, 'bin', 'pip'), ['install', '--quiet', `schemathesis==${SCHEMATHESIS_VERSION}`]);
  return bin;
}

export function ensureTools({ rust = true } = {}) {
  ensureDebianPackages();
  if (rust) ensureRustTools();
  ensureNodeModules();
}

// The three helpers worker-build would otherwise download from GitHub.
export function buildEnv() {
  const bin = join(root, 'node_modules', '.bin');
  return {
    ...process.env,
    PATH: `${bin}:${pathWithCargo}`,
    WASM_BINDGEN_BIN: join(cargoBin, 'wasm-bindgen'),
    WASM_OPT_BIN: join(bin, 'wasm-opt'),
    ESBUILD_BIN: join(bin, 'esbuild'),
  };
}
