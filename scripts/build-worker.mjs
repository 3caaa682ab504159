// wrangler's build command for every worker: `node scripts/build-worker.mjs <function>`.
import { buildWorker } from './lib/build.mjs';

const name = process.argv[2];
if (!name) {
  console.error('usage: node scripts/build-worker.mjs <function>');
  process.exit(2);
}
buildWorker(name, { force: process.argv.includes('--force') });
