/**
 * `npm run bench:metrics`: what Prometheus metrics cost the server, as a paired comparison in one
 * run. One embedded-database data dir with BENCH_NODES (1,000) registered nodes; the server is
 * restarted on it with metrics off and on, alternating (off/on, on/off, ...) for BENCH_ROUNDS
 * rounds, the same fleet process reconnecting each time. Per run: server CPU (utime+stime from
 * /proc) for the connect storm (every agent gets a full netmap) and for BENCH_DELETES node deletes,
 * and delete -> last agent removal latency. With metrics on, /metrics is scraped every
 * BENCH_SCRAPE_MS (1 s: far more often than a usual 15-60 s scrape interval), and the scrape time
 * and size are recorded. The verdict is a same-run paired ratio: per round, metrics on divided by
 * metrics off (the two runs back to back, so the load of the shared machine at that moment is in
 * both), summarised as the geometric mean of the rounds' ratios with their min and max; the
 * absolute numbers are kept but only the ratios are comparable between runs. Writes
 * bench/results/metrics-overhead.json with the machine and the load average at start and end noted.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { adminCli } from './lib/server-process.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, SERVER_BIN } from '../apps/server/test/support/process.js';
import { now } from '../test-support/sim-agent.js';
import { machine } from './lib/machine.js';
import { median, percentile, round } from './lib/stats.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DELETES = Number(process.env.BENCH_DELETES ?? 15);
const SCRAPE_MS = Number(process.env.BENCH_SCRAPE_MS ?? 1000);
const here = import.meta.dirname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK_S = 1 / 100; // USER_HZ on Linux
const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_S;
};

const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-metrics-'));
const port = await freePort();
const metricsPort = await freePort();
const url = `http://127.0.0.1:${port}`;
const fleet = fork(join(here, 'control-fleet.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies: ((m: any) => void)[] = [];
fleet.on('message', (m: any) => {
  if (m.error) throw new Error(`fleet: ${m.error}`);
  replies.shift()?.(m);
});
const ask = (m: unknown) => new Promise<any>((res) => { replies.push(res); if (m) fleet.send(m as object); });

async function startServer(metrics: boolean): Promise<ChildProcess> {
  const args = [SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'warn', ...(metrics ? ['--metrics-listen', `127.0.0.1:${metricsPort}`] : [])];
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d) => (err += d));
  for (let t = 0; ; t++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) return server;
    if (t > 1500 || server.exitCode !== null) throw new Error(`server did not start within 5 minutes (exit ${server.exitCode}):\n${err}`);
    await sleep(200);
  }
}

async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await exited;
}

const admin = (args: string[]) => adminCli(SERVER_BIN, dataDir, args);

interface Run {
  round: number; metrics: boolean; nodes: number;
  connectCpuS: number; connectS: number; deleteCpuS: number; deleteWallS: number;
  deleteToLastAgentMs: number[];
  scrapes: { count: number; p50Ms: number; maxMs: number; bytes: number } | null;
  /** 1-minute load average when the run started. */
  loadAvg1m: number;
}

const load1 = () => round(loadavg()[0]!, 2);
/** Geometric mean (ratios multiply), with the spread. */
const ratioSummary = (rs: number[]) => ({
  geomean: round(Math.exp(rs.reduce((a, x) => a + Math.log(x), 0) / rs.length), 3),
  min: round(Math.min(...rs), 3),
  max: round(Math.max(...rs), 3),
});

async function oneRun(roundNo: number, metrics: boolean, apiKey: string, deleted: number[]): Promise<Run> {
  const loadAtStart = load1();
  const server = await startServer(metrics);
  try {
    const c0 = cpuSeconds(server.pid!);
    const t0 = now();
    const conn = await ask({ cmd: 'connect', concurrency: 64 });
    const connectS = (now() - t0) / 1000;
    const connectCpuS = cpuSeconds(server.pid!) - c0;
    await sleep(3000); // the last online patches go out

    const scrapeMs: number[] = [];
    let scrapeBytes = 0;
    let scraping = metrics;
    const scraper = (async () => {
      while (scraping) {
        const s0 = now();
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        scrapeMs.push(now() - s0);
        scrapeBytes = text.length;
        await sleep(SCRAPE_MS);
      }
    })();

    const nodes = (await (await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { items: { id: number }[] };
    const victims = nodes.items.filter((x) => !deleted.includes(x.id)).slice(-DELETES).map((x) => x.id);
    const latencies: number[] = [];
    const d0 = cpuSeconds(server.pid!);
    const w0 = now();
    for (const id of victims) {
      const tracking = ask({ cmd: 'track-removal', nodeId: id, deleted, timeoutMs: 15_000 });
      deleted.push(id);
      await sleep(50); // tracker armed
      const start = now();
      const res = await fetch(`${url}/api/v1/nodes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
      if (res.status !== 200) throw new Error(`delete ${id}: ${res.status}`);
      const r = await tracking;
      if (r.affected !== r.received) throw new Error(`delete ${id}: ${r.affected - r.received} agents missed it`);
      latencies.push(r.lastAt - start);
    }
    const deleteCpuS = cpuSeconds(server.pid!) - d0;
    const deleteWallS = (now() - w0) / 1000;
    scraping = false;
    await scraper;
    await ask({ cmd: 'disconnect', drop: victims });
    const run: Run = {
      round: roundNo, metrics, nodes: conn.open, connectCpuS: round(connectCpuS, 2), connectS: round(connectS, 2),
      deleteCpuS: round(deleteCpuS, 2), deleteWallS: round(deleteWallS, 2), deleteToLastAgentMs: latencies.map((x) => round(x)),
      scrapes: metrics ? { count: scrapeMs.length, p50Ms: round(median(scrapeMs)), maxMs: round(Math.max(...scrapeMs)), bytes: scrapeBytes } : null,
      loadAvg1m: loadAtStart,
    };
    console.log(`[round ${roundNo} metrics ${metrics ? 'on' : 'off'}] ${conn.open} agents; connect ${run.connectS} s, ${run.connectCpuS} CPU-s; deletes p50 ${round(median(latencies))} ms, ${run.deleteCpuS} CPU-s${metrics ? `; scrape p50 ${run.scrapes!.p50Ms} ms, ${run.scrapes!.bytes} B` : ''}`);
    return run;
  } finally {
    await stopServer(server);
  }
}

const loadAvgAtStart = load1();
try {
  await ask(null); // fleet ready
  // Registration once, metrics off (not measured here: bench:control does).
  const setup = await startServer(false);
  const apiKey = (await admin(['apikeys', 'create', '--scopes', 'admin'])).key as string;
  await admin(['users', 'create', 'bench']);
  const authKey = (await admin(['authkeys', 'create', '--user', 'bench', '--reusable', '--expiration', '0'])).key as string;
  console.log(`registering ${NODES} nodes...`);
  await ask({ cmd: 'register', url, authKey, count: NODES, concurrency: 32 });
  await stopServer(setup);

  const runs: Run[] = [];
  const deleted: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const order = r % 2 === 1 ? [false, true] : [true, false];
    for (const m of order) runs.push(await oneRun(r, m, apiKey, deleted));
  }

  const side = (on: boolean) => {
    const rs = runs.filter((x) => x.metrics === on);
    const lat = rs.flatMap((x) => x.deleteToLastAgentMs);
    return {
      runs: rs.length,
      deleteToLastAgentMs: { samples: lat.length, p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)) },
      connectCpuSecondsMedian: round(median(rs.map((x) => x.connectCpuS)), 2),
      deleteCpuSecondsMedian: round(median(rs.map((x) => x.deleteCpuS)), 2),
    };
  };
  const off = side(false);
  const on = side(true);
  const pairs = Array.from({ length: ROUNDS }, (_, i) => {
    const a = runs.find((x) => x.round === i + 1 && !x.metrics)!;
    const b = runs.find((x) => x.round === i + 1 && x.metrics)!;
    return {
      round: i + 1,
      connectCpuRatio: round(b.connectCpuS / a.connectCpuS, 3),
      deleteCpuRatio: round(b.deleteCpuS / a.deleteCpuS, 3),
      deleteP50Ratio: round(median(b.deleteToLastAgentMs) / median(a.deleteToLastAgentMs), 3),
      connectCpuDeltaS: round(b.connectCpuS - a.connectCpuS, 2),
      deleteCpuDeltaS: round(b.deleteCpuS - a.deleteCpuS, 2),
      deleteP50DeltaMs: round(median(b.deleteToLastAgentMs) - median(a.deleteToLastAgentMs)),
    };
  });
  const pairedRatios = {
    meaning: 'metrics on / metrics off, per round (back-to-back runs), geometric mean over rounds with min and max: 1.0 = no cost; the spread is the noise of this machine at the time',
    connectCpu: ratioSummary(pairs.map((x) => x.connectCpuRatio)),
    deleteCpu: ratioSummary(pairs.map((x) => x.deleteCpuRatio)),
    deleteToLastAgentP50: ratioSummary(pairs.map((x) => x.deleteP50Ratio)),
  };
  const out = {
    benchmark: 'metrics-overhead',
    date: new Date().toISOString(),
    machine: machine(),
    loadAvg1m: { start: loadAvgAtStart, end: load1() },
    setup: `one weft-server (embedded PGlite) restarted on one data dir with ${NODES} registered nodes, metrics off and on alternating per round (round 1 off then on, round 2 on then off, ...); one fleet process of simulated agents reconnects each run (full netmaps), then ${DELETES} REST node deletes each timed to the last agent's removal. With metrics on, a separate listener is scraped every ${SCRAPE_MS} ms during the deletes. CPU = server process utime+stime. Each run deletes nodes, so the fleet shrinks by ${DELETES} per run; alternation spreads that over both sides.`,
    summary: { pairedRatios, off, on, pairs },
    runs,
  };
  mkdirSync(resolve(here, 'results'), { recursive: true });
  const file = resolve(here, 'results/metrics-overhead.json');
  // bench:metrics-scrape and bench:metrics-prisma add their sections to the same file: kept.
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const kept = Object.fromEntries(['scrape', 'prismaExtension'].filter((k) => k in previous).map((k) => [k, previous[k]]));
  writeFileSync(file, JSON.stringify({ ...out, ...kept }, null, 2) + '\n');
  console.log(JSON.stringify(out.summary, null, 2));
  console.log('wrote bench/results/metrics-overhead.json');
} finally {
  fleet.send({ cmd: 'exit' });
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
