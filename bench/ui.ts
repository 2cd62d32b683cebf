/**
 * `npm run bench:ui` — the admin UI's devices page with 10,000 devices, in Debian's Chromium
 * (headless) against a real weft-server on the embedded database.
 *
 * Setup: USERS users and DEVICES node-less peers registered through the REST API (POST
 * /api/v1/nodes, the admin path), one sign-in through the UI. Measured, RUNS times: from
 * `page.goto('/devices')` to the table's first page (PAGE_SIZE rows, sorted by name) in the DOM,
 * waited for on animation frames (wall time in this process; also the page's own
 * `performance.now()` at that moment, i.e. since its navigation started). The first run is cold
 * (no cached assets); later ones reuse the immutable assets as a returning admin would. Also the
 * list request alone (`GET /api/v1/nodes?limit=50&sort=name`), which the page's time includes.
 * Target: median under 1 s. Writes bench/results/ui.json. Not a test: a loaded machine is slower.
 * Env: BENCH_UI_DEVICES (default 10000), BENCH_UI_RUNS (default 7).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli, spawnServer } from '../apps/server/test/support/process.js';
import { adminKey, CHROMIUM, ensureWebBuilt, launchChromium, rest } from '../e2e/ui/browser.js';
import { machine } from './lib/machine.js';
import { median, round } from './lib/stats.js';

const OUT = fileURLToPath(new URL('./results/ui.json', import.meta.url));
const DEVICES = Number(process.env.BENCH_UI_DEVICES ?? 10_000);
const RUNS = Number(process.env.BENCH_UI_RUNS ?? 7);
const USERS = 20;
const PAGE_SIZE = 50;
const CONCURRENCY = 16;
const TARGET_MS = 1000;

const hex = (n: number) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');

ensureWebBuilt();
const s = await spawnServer();
try {
  const key = await adminKey(s);
  const password = 'bench ui local admin password';
  const set = await cli(['admin', 'set-password', '--data-dir', s.dataDir], { input: `${password}\n` });
  if (set.code !== 0) throw new Error(`admin set-password failed: ${set.stderr}`);
  for (let u = 0; u < USERS; u++) await rest(s, key, 'POST', '/api/v1/users', { name: `user${u}` });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < DEVICES) {
        const i = next++;
        const r = await rest(s, key, 'POST', '/api/v1/nodes', { user: `user${i % USERS}`, hostname: `host-${String(i).padStart(5, '0')}`, nodeKey: `nodekey:${hex(32)}`, tags: i % 10 === 0 ? ['tag:server'] : [] });
        if (r.status !== 201) throw new Error(`creating device ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
  const setupS = (performance.now() - t0) / 1000;
  console.log(`registered ${DEVICES} devices in ${setupS.toFixed(0)} s`);

  const apiMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = performance.now();
    const r = await rest<{ total: number }>(s, key, 'GET', `/api/v1/nodes?limit=${PAGE_SIZE}&sort=name&order=asc`);
    apiMs.push(performance.now() - a);
    if (r.body.total !== DEVICES) throw new Error(`expected ${DEVICES} devices, the server has ${r.body.total}`);
  }

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${s.url}/`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    // Cold for the first run: the sign-in page above loaded the assets, so clear the cache.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.clearBrowserCache');

    const wallMs: number[] = [];
    const pageMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await page.goto('about:blank');
      const a = performance.now();
      await page.goto(`${s.url}/devices`, { waitUntil: 'commit' });
      const inPage = await page.waitForFunction(
        (n) => (document.querySelectorAll('[data-testid="devices"] tbody tr').length >= n ? performance.now() : 0),
        PAGE_SIZE,
        { polling: 'raf', timeout: 60_000 },
      );
      wallMs.push(performance.now() - a);
      pageMs.push((await inPage.jsonValue()) as number);
    }
    const first = await page.locator('[data-testid="devices"] tbody tr').first().innerText();
    if (!first.includes('host-00000')) throw new Error(`first row is not the first device by name: ${first}`);

    const result = {
      benchmark: 'ui',
      date: new Date().toISOString(),
      machine: machine({ chromium: [CHROMIUM, ['--version']] }),
      setup:
        `weft-server (embedded PGlite, bundle or tsx as bin/weft-server.mjs picks) with ${DEVICES} devices of ${USERS} users registered through POST /api/v1/nodes; ` +
        `headless Debian Chromium (playwright-core); ${RUNS} runs of about:blank -> /devices, timed to ${PAGE_SIZE} table rows in the DOM (requestAnimationFrame polling); ` +
        'run 1 cold (browser cache cleared), later runs with the cached immutable assets; a loaded machine inflates all times (see machine.loadAvg1m)',
      devices: DEVICES,
      registerSeconds: round(setupS),
      devicesPage: {
        targetMs: TARGET_MS,
        medianWallMs: round(median(wallMs)),
        coldWallMs: round(wallMs[0]!),
        medianInPageMs: round(median(pageMs)),
        wallMs: wallMs.map((x) => round(x)),
        inPageMs: pageMs.map((x) => round(x)),
        underTarget: median(wallMs) < TARGET_MS,
      },
      listRequest: { medianMs: round(median(apiMs)), samplesMs: apiMs.map((x) => round(x)) },
    };
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result.devicesPage, null, 2));
    console.log(`wrote ${OUT}`);
  } finally {
    await browser.close();
  }
} finally {
  await s.stop();
}
