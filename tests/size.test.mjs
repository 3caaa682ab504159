// Every worker fits the size goal as Cloudflare will count it: `wrangler deploy --dry-run`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEnv } from '../scripts/lib/tools.mjs';
import { functionNames } from '../scripts/lib/build.mjs';
import { root } from '../scripts/lib/util.mjs';

const LIMIT_KIB = 150;

for (const name of functionNames()) {
  test(`${name} is at most ${LIMIT_KIB} KiB gzip as wrangler deploy --dry-run reports it`, () => {
    const outdir = mkdtempSync(join(tmpdir(), `size-${name}-`));
    try {
      const out = execFileSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--env', name, '--outdir', outdir], {
        cwd: root, env: { ...buildEnv(), WRANGLER_SEND_METRICS: 'false' }, encoding: 'utf8',
      });
      const gzip = Number(out.match(/gzip: ([\d.]+) KiB/)?.[1]);
      assert.ok(gzip > 0, `no size in: ${out}`);
      assert.ok(gzip <= LIMIT_KIB, `${name} is ${gzip} KiB gzip`);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
}
