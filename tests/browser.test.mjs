// supabase-js, unchanged, in a real headless Chromium: a page from an allowed origin searches,
// books, pays and cancels through the local router (/functions/v1/<name>), and the same page
// from an origin the workers do not allow is refused by the browser's CORS checks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { EXPERTS, freeWeekdayStart, newClient, sql, stack } from './helpers.mjs';

const root = new URL('..', import.meta.url).pathname;
let browser;
let servers = [];
let bundleDir;

// The app's two pages: the same HTML and bundle, served from an allowed and a refused origin.
function serve(origin, bundle) {
  const server = createServer((req, res) => {
    if (req.url === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(bundle);
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><head><meta charset="utf-8"><script src="/app.js"></script></head><body>Call-an-Expert</body></html>');
  });
  const { port } = new URL(origin);
  return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)));
}

before(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), 'browser-app-'));
  execFileSync(join(root, 'node_modules', '.bin', 'esbuild'), [join(root, 'tests', 'browser', 'app.mjs'), '--bundle', '--format=iife', '--platform=browser',
    `--outfile=${join(bundleDir, 'app.js')}`], { stdio: 'ignore' });
  const bundle = readFileSync(join(bundleDir, 'app.js'));
  servers = await Promise.all([serve(stack.app_origins.allowed, bundle), serve(stack.app_origins.refused, bundle)]);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(bundleDir, { recursive: true, force: true });
});

const runApp = async (origin, client, startsAt) => {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate((config) => window.marketplace(config), {
      url: stack.router_url, anonKey: stack.anon_key, jwt: client.jwt, stripeUrl: stack.stripe.api_url,
      publishableKey: stack.stripe.publishable_key, expertId: EXPERTS.ada, startsAt,
    });
  } finally {
    await page.close();
  }
};

test('supabase-js from an allowed origin searches, books, pays and cancels through /functions/v1', async () => {
  const client = newClient('browser');
  const startsAt = freeWeekdayStart(EXPERTS.ada, 11);
  const outcome = await runApp(stack.app_origins.allowed, client, startsAt);
  assert.equal(outcome.step, 'done', JSON.stringify(outcome));
  assert.ok(outcome.experts.includes(EXPERTS.ada), 'the search finds Ada');
  assert.equal(outcome.booked.session.status, 'awaiting_payment');
  assert.equal(outcome.paid, 'succeeded', 'paid as Stripe.js pays');
  assert.equal(outcome.status, 'confirmed', 'Stripe\'s event confirmed it, read back through PostgREST');
  assert.deepEqual([outcome.cancelled.status, outcome.cancelled.refund.percent], ['cancelled', 100]);
  const [row] = sql(`select status, client_id from sessions where id = '${outcome.booked.session.id}'`);
  assert.deepEqual(row, { status: 'cancelled', client_id: client.id });
});

test('the same app from an origin the workers do not allow is refused by the browser', async () => {
  const client = newClient('browser-refused');
  const outcome = await runApp(stack.app_origins.refused, client, freeWeekdayStart(EXPERTS.ada, 12));
  assert.deepEqual([outcome.step, outcome.error], ['search', 'FunctionsFetchError'], JSON.stringify(outcome));
  assert.equal(sql(`select count(*)::int as n from sessions where client_id = '${client.id}'`)[0].n, 0, 'nothing was booked');
});
