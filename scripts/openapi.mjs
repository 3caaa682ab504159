// `npm run openapi`: writes openapi/<function>.json from scripts/lib/openapi.mjs and, from each,
// the TypeScript types of its requests and responses (types/<function>.d.ts, by
// openapi-typescript) for browser apps; with --check, fails when a committed file is not what it
// would write (CI runs that).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { documentFor, documentedFunctions } from './lib/openapi.mjs';
import { functionNames } from './lib/build.mjs';
import { root } from './lib/util.mjs';

const check = process.argv.includes('--check');
const missing = functionNames().filter((name) => !documentedFunctions.includes(name));
if (missing.length) throw new Error(`no OpenAPI description for ${missing.join(', ')}`);
const dir = join(root, 'openapi');
const typesDir = join(root, 'types');
const scratch = mkdtempSync(join(tmpdir(), 'openapi-'));
mkdirSync(dir, { recursive: true });
mkdirSync(typesDir, { recursive: true });
const stale = [];
const settle = (path, text) => {
  if (!check) writeFileSync(path, text);
  else if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(path);
};
try {
  for (const name of functionNames()) {
    // Compact: each worker embeds its document (GET /openapi.json), and every byte is in its size.
    const text = `${JSON.stringify(documentFor(name))}\n`;
    settle(join(dir, `${name}.json`), text);
    const source = join(scratch, `${name}.json`);
    const output = join(scratch, `${name}.d.ts`);
    writeFileSync(source, text);
    execFileSync(join(root, 'node_modules', '.bin', 'openapi-typescript'), [source, '--output', output], { stdio: 'ignore' });
    settle(join(typesDir, `${name}.d.ts`), readFileSync(output, 'utf8'));
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (stale.length) {
  console.error(`Out of date (run npm run openapi): ${stale.join(', ')}`);
  process.exit(1);
}
