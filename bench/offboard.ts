/**
 * `npm run bench:offboard`: how fast an offboard reaches a fleet, against a plain node delete as
 * the paired baseline in the same run. One real `weft-server` (embedded PGlite unless
 * BENCH_BACKENDS=postgres), BENCH_NODES (1,000) connected simulated agents in a separate process.
 * Each round adds a user with BENCH_DEVICES (2) connected devices and offboards them, and adds one
 * more device and deletes it (order alternating); measured from the REST call returning to the
 * last fleet agent holding the removal of every device. Writes bench/results/offboard.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import { adminCli, forkFleet } from './lib/server-process.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, SERVER_BIN } from '../apps/server/test/support/process.js';
import { startPostgres } from '../test-support/postgres.js';
import { now } from '../test-support/sim-agent.js';
import { machine } from './lib/machine.js';
import { percentile, round } from './lib/stats.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 2);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'pglite').split(',') as ('pglite' | 'postgres')[];
const here = import.meta.dirname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runOnce(backend: 'pglite' | 'postgres') {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-off-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const pg = backend === 'postgres' ? await startPostgres() : null;
  const server = spawn(process.execPath, [SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, ...(pg ? { WEFT_DATABASE_URL: pg.url } : {}) },
  });
  let serverErr = '';
  server.stderr!.on('data', (d) => (serverErr += d));
  const { fleet, ask } = forkFleet(join(here, 'offboard-fleet.ts'), 4096);
  try {
    await ask(null);
    for (let t = 0; ; t++) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) break;
      if (t > 300 || server.exitCode !== null) throw new Error(`server did not start:\n${serverErr}`);
      await sleep(200);
    }
    const admin = (args: string[]) => adminCli(SERVER_BIN, dataDir, args);
    const apiKey = (await admin(['apikeys', 'create', '--scopes', 'admin'])).key as string;
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    const keyFor = async (user: string) => {
      await api('POST', '/api/v1/users', { name: user });
      return (await api('POST', '/api/v1/authkeys', { user, reusable: true, expiresIn: 0 })).key as string;
    };
    console.log(`[${backend}] ${NODES} agents registering and connecting...`);
    const f = await ask({ cmd: 'fleet', url, authKey: await keyFor('fleet'), count: NODES });
    console.log(`[${backend}] ${f.open} connected`);
    await sleep(3000); // the connect storm's online patches go out

    const offboard: number[] = [];
    const del: number[] = [];
    const offboardFromSent: number[] = [];
    const delFromSent: number[] = [];
    let missed = 0;
    const closes: Record<string, number> = {};
    const measure = async (ids: number[], call: () => Promise<unknown>, fromSent: number[]) => {
      const tracking = ask({ cmd: 'track', nodeIds: ids, timeoutMs: 15_000 });
      await sleep(50); // tracker armed
      const sent = now();
      await call();
      const returned = now();
      const r = await tracking;
      missed += r.missed;
      for (const c of r.closed) closes[String(c)] = (closes[String(c)] ?? 0) + 1;
      fromSent.push(r.lastAt - sent);
      return r.lastAt - returned;
    };
    for (let i = 0; i < ROUNDS; i++) {
      const offUser = `off-${i}`;
      const offIds = (await ask({ cmd: 'victims', url, authKey: await keyFor(offUser), count: DEVICES, tag: offUser })).ids as number[];
      const delIds = (await ask({ cmd: 'victims', url, authKey: await keyFor(`del-${i}`), count: 1, tag: `del-${i}` })).ids as number[];
      const runOff = async () => offboard.push(await measure(offIds, () => api('POST', `/api/v1/users/${offUser}/offboard`), offboardFromSent));
      const runDel = async () => del.push(await measure(delIds, () => api('DELETE', `/api/v1/nodes/${delIds[0]}`), delFromSent));
      if (i % 2 === 0) { await runOff(); await runDel(); } else { await runDel(); await runOff(); }
      console.log(`[${backend}] round ${i + 1}/${ROUNDS}: offboard ${round(offboard.at(-1)!)} ms, delete ${round(del.at(-1)!)} ms`);
    }
    const stats = (xs: number[]) => ({ samples: xs.length, p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)) });
    return {
      backend,
      nodes: NODES,
      devicesPerOffboardedUser: DEVICES,
      // Negative: the last agent had the removal before the HTTP reply reached the caller (the
      // server hands the change to its mapper before it answers).
      fromResponseReturnedMs: { offboard: stats(offboard), nodeDelete: stats(del) },
      fromRequestSentMs: { offboard: stats(offboardFromSent), nodeDelete: stats(delFromSent) },
      agentsThatMissedARemoval: missed,
      victimSocketsClosedByCode: closes,
      measuredAt: new Date().toISOString(),
    };
  } finally {
    fleet.send({ cmd: 'exit' });
    server.kill('SIGTERM');
    if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
    await pg?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results = [];
for (const b of BACKENDS) results.push(await runOnce(b));
const out = {
  benchmark: 'offboard',
  date: new Date().toISOString(),
  machine: machine(),
  commit: execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8' }).trim(),
  setup: `one weft-server + one process of ${NODES} simulated agents on loopback, every node sees every other; per round a user with ${DEVICES} connected devices is offboarded (POST /api/v1/users/:id/offboard) and, as the paired baseline, one other connected device is deleted (DELETE /api/v1/nodes/:id), order alternating. Times are from the REST call returning (and, separately, from it being sent) to the last of the ${NODES} agents holding the removal of every device.`,
  results,
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(resolve(here, 'results/offboard.json'), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));
process.exit(0);
