/**
 * `npm run bench:control`: one real `weft-server` (embedded PGlite, the default) against a fleet of
 * simulated agents in a separate process, at 1,000 and 10,000 nodes (override: BENCH_SIZES=500,2000).
 * BENCH_BACKENDS=pglite,postgres picks the storage (Postgres: a throwaway local cluster). A run of
 * some sizes or backends replaces those rows in the results file and keeps the others.
 * Measures: time to connect all; full-netmap latency; delta propagation p50/p99 from a REST node
 * delete to the last affected agent receiving the removal; server RSS per connected node, read
 * after the server has idled for BENCH_SETTLE_MS (30 s) and also 3 s after the connect storm.
 * Writes bench/results/control.json with the machine noted.
 */
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, tmpdir, release } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, SERVER_BIN } from '../apps/server/test/support/process.js';
import { startPostgres } from '../test-support/postgres.js';
import { now } from '../test-support/sim-agent.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
/** "pglite" (the embedded default), "postgres" (a throwaway local cluster), or both. */
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',') as ('pglite' | 'postgres')[];
const DELETES = Number(process.env.BENCH_DELETES ?? 40);
/** How long the server idles before an RSS reading counts as settled. */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Extra Node flags for the server process, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const here = import.meta.dirname;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

async function runOnce(n: number, backend: 'pglite' | 'postgres') {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const pg = backend === 'postgres' ? await startPostgres() : null;
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-')); // after Postgres: a failed start leaves no dir behind
  const server = spawn(process.execPath, [...SERVER_NODE_ARGS, SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--stun-listen', 'off', '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, ...(pg ? { WEFT_DATABASE_URL: pg.url } : {}) },
  });
  let serverErr = '';
  server.stderr!.on('data', (d) => (serverErr += d));
  const fleet = fork(join(here, 'control-fleet.ts'), [], { execArgv: ['--import', 'tsx', '--max-old-space-size=8192'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies: ((m: any) => void)[] = [];
  fleet.on('message', (m: any) => {
    if (m.error) throw new Error(`fleet: ${m.error}`);
    replies.shift()?.(m);
  });
  const ask = (m: unknown) => new Promise<any>((res) => { replies.push(res); if (m) fleet.send(m as object); });
  try {
    await ask(null); // ready
    for (let t = 0; ; t++) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) break;
      if (t > 300 || server.exitCode !== null) throw new Error(`server did not start:\n${serverErr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const admin = async (args: string[]) => {
      const p = spawn(process.execPath, [SERVER_BIN, ...args, '--json', '--data-dir', dataDir]);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      await new Promise((r) => p.on('exit', r));
      return JSON.parse(out);
    };
    const apiKey = (await admin(['apikeys', 'create', '--scopes', 'admin'])).key as string;
    await admin(['users', 'create', 'bench']);
    const authKey = (await admin(['authkeys', 'create', '--user', 'bench', '--reusable', '--expiration', '0'])).key as string;

    console.log(`[${n}] registering ${n} nodes...`);
    const reg = await ask({ cmd: 'register', url, authKey, count: n, concurrency: 32 });
    // RSS right after a storm holds garbage V8 has not collected yet; idle for SETTLE_MS, it does.
    const rssAfterRegister = rssKb(server.pid!);
    await sleep(SETTLE_MS);
    const rssIdle = rssKb(server.pid!);
    console.log(`[${n}] registered in ${round(reg.ms / 1000)} s; connecting...`);
    const conn = await ask({ cmd: 'connect', concurrency: 64 });
    console.log(`[${n}] ${conn.open} connected in ${round(conn.ms / 1000)} s (netmap ${round(conn.netmapBytes / 1024)} KiB)`);
    await sleep(3000); // the last online patches go out
    const rssAfterConnect = rssKb(server.pid!);
    await sleep(SETTLE_MS);
    const rssConnected = rssKb(server.pid!);
    console.log(`[${n}] server RSS ${round(rssAfterConnect / 1024)} MiB 3 s after the last connect, ${round(rssConnected / 1024)} MiB after ${SETTLE_MS / 1000} s more`);

    const nodes = (await (await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { items: { id: number }[] };
    const victims = nodes.items.slice(-DELETES).map((x) => x.id);
    const fromRequest: number[] = [];
    const fromReturn: number[] = [];
    let missed = 0;
    const deleted: number[] = [];
    for (const id of victims) {
      const tracking = ask({ cmd: 'track-removal', nodeId: id, deleted, timeoutMs: 15_000 });
      deleted.push(id);
      await new Promise((r) => setTimeout(r, 50)); // tracker armed
      const t0 = now();
      const res = await fetch(`${url}/api/v1/nodes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
      const t1 = now();
      if (res.status !== 200) throw new Error(`delete ${id}: ${res.status}`);
      const r = await tracking;
      missed += r.affected - r.received;
      if (r.missing.length) console.log(`[${n}] delete ${id}: ${r.affected - r.received} agents missed it, e.g. ${JSON.stringify(r.missing)}`);
      fromRequest.push(r.lastAt - t0);
      fromReturn.push(r.lastAt - t1);
    }
    const closed = (await ask({ cmd: 'closed' })).codes;
    const result = {
      nodes: n,
      backend,
      measuredAt: new Date().toISOString(),
      agentSocketsClosedByCode: closed,
      registerAllSeconds: round(reg.ms / 1000),
      connectAllSeconds: round(conn.ms / 1000),
      netmapBytes: conn.netmapBytes,
      netmapLatencyMs: { p50: round(pct(conn.netmapMs, 50)), p99: round(pct(conn.netmapMs, 99)) },
      deltaPropagationMs: {
        deletes: victims.length,
        fromRequestSent: { p50: round(pct(fromRequest, 50)), p99: round(pct(fromRequest, 99)), max: round(Math.max(...fromRequest)) },
        fromResponseReturned: { p50: round(pct(fromReturn, 50)), p99: round(pct(fromReturn, 99)) },
        agentsThatMissedARemoval: missed,
      },
      serverRss: {
        settleSeconds: SETTLE_MS / 1000,
        afterRegisteringMiB: round(rssAfterRegister / 1024),
        idleWithNodesMiB: round(rssIdle / 1024),
        threeSecondsAfterConnectingAllMiB: round(rssAfterConnect / 1024),
        connectedMiB: round(rssConnected / 1024),
        perConnectedNodeKiB: round(rssConnected / n),
        perConnectedNodeThreeSecondsAfterConnectingAllKiB: round(rssAfterConnect / n),
        perConnectionKiB: round((rssConnected - rssIdle) / n),
      },
    };
    console.log(JSON.stringify(result, null, 2));
    return result;
  } finally {
    fleet.send({ cmd: 'exit' });
    server.kill('SIGTERM');
    if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
    await pg?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const measured: Awaited<ReturnType<typeof runOnce>>[] = [];
for (const backend of BACKENDS) for (const n of SIZES) measured.push(await runOnce(n, backend));
// A run of some sizes or backends replaces those rows and keeps the others from earlier runs.
const file = resolve(here, 'results/control.json');
const earlier: { nodes: number; backend: string }[] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).results ?? [] : [];
const results = [
  ...earlier.filter((e) => !measured.some((m) => m.nodes === e.nodes && m.backend === e.backend)),
  ...measured,
].sort((a, b) => a.backend.localeCompare(b.backend) || a.nodes - b.nodes);
const out = {
  benchmark: 'control',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version },
  setup: 'one weft-server process (embedded PGlite, or Postgres 15 in its own processes) + one fleet process of simulated agents, loopback; every node sees every other (no policy). serverRss is the weft-server process only (for PGlite that includes the database); perConnectedNodeKiB is read after the server idled settleSeconds with every agent connected.',
  targets: { propagationP99Ms: 1000, rssPerNodeKiB: 50 },
  results,
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log('wrote bench/results/control.json');
process.exit(0);
