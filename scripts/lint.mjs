// `npm run lint`: the fast gates CI runs before the tests. Formatting as rustfmt.toml states it,
// clippy with every warning an error, natively (with the tests and benches) and for the wasm32
// target the workers are built for (with the Workers glue compiled in), and the OpenAPI
// documents and their TypeScript types current.
import { execFileSync } from 'node:child_process';
import { ensureTools } from './lib/tools.mjs';
import { root, log } from './lib/util.mjs';

const cargo = (...args) => {
  log(`lint: cargo ${args.join(' ')}`);
  execFileSync('cargo', args, { cwd: root, stdio: 'inherit' });
};

ensureTools();
log('lint: node scripts/openapi.mjs --check');
execFileSync(process.execPath, ['scripts/openapi.mjs', '--check'], { cwd: root, stdio: 'inherit' });
cargo('fmt', '--all', '--check');
cargo('clippy', '--workspace', '--all-targets', '--quiet', '--', '-D', 'warnings');
cargo('clippy', '--workspace', '--target', 'wasm32-unknown-unknown', '--features', 'shared/worker', '--quiet', '--', '-D', 'warnings');
