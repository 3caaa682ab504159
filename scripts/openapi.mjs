// `npm run openapi`: writes openapi/<function>.json from scripts/lib/openapi.mjs; with --check,
// fails when a committed document is not what it would write (CI runs that).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { documentFor, documentedFunctions } from './lib/openapi.mjs';
import { functionNames } from './lib/build.mjs';
import { root } from './lib/util.mjs';

const check = process.argv.includes('--check');
const missing = functionNames().filter((name) => !documentedFunctions.includes(name));
if (missing.length) throw new Error(`no OpenAPI description for ${missing.join(', ')}`);
const dir = join(root, 'openapi');
mkdirSync(dir, { recursive: true });
const stale = [];
for (const name of functionNames()) {
  const path = join(dir, `${name}.json`);
  const text = `${JSON.stringify(documentFor(name), null, 1)}\n`;
  if (check) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(path);
  } else {
    writeFileSync(path, text);
  }
}
if (stale.length) {
  console.error(`Out of date (run npm run openapi): ${stale.join(', ')}`);
  process.exit(1);
}
