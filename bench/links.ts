/**
 * `npm run bench:links`: what link health costs the server at 10,000 nodes (BENCH_NODES). One real
 * server process (buildApp on embedded PGlite, bench/links-server.ts) and a simulated fleet in
 * another (bench/links-fleet.ts, real WebSockets). The server's CPU (utime + stime from /proc) is
 * read over an idle window with every node connected and not reporting, then over the same length
 * with every node reporting as the agent does at its bounded rate (one message per node per 30 s,
 * BENCH_LINKS links each, every counter moved, 1% of nodes turning a link stale or back per
 * round). Extra = reporting - idle. Also: bytes and messages agents send, node_links rows
 * written (from /metrics), and the fleet query `GET /api/v1/links?state=stale`.
 * A separate script from bench:control (which registers and fans out netmaps); writes
 * bench/results/links.json with the machine noted.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

const N = Number(process.env.BENCH_NODES ?? 10_000);
const LINKS = Number(process.env.BENCH_LINKS ?? 16);
const PERIOD_MS = 30_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const here = import.meta.dirname;
const TOKEN = 'bench-links-metrics-token-0123';

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
};
const rssMb = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ask<T = any>(child: ChildProcess, msg: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m: any) => (m?.error ? reject(new Error(m.error)) : resolve(m)));
    child.send(msg as object);
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const execArgv = ['--import', 'tsx', '--max-old-space-size=6144'];
const fleet = fork(join(here, 'links-fleet.ts'), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const server = fork(join(here, 'links-server.ts'), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
try {
  const { nodes } = await ask(fleet, { cmd: 'keys', count: N });
  const t0 = performance.now();
  const { url, apiKey, ids } = await ask(server, { nodes, token: TOKEN });
  console.log(`server seeded with ${N} nodes in ${Math.round(performance.now() - t0)} ms`);
  const conn = await ask(fleet, { cmd: 'connect', url, concurrency: 200 });
  console.log(`connected ${conn.open} in ${Math.round(conn.ms)} ms`);
  await sleep(10_000);
  const windowMs = ROUNDS * PERIOD_MS;
  const idle0 = ticks(server.pid!);
  await sleep(windowMs);
  const idleTicks = ticks(server.pid!) - idle0;
  const rssIdle = rssMb(server.pid!);
  console.log(`idle: ${idleTicks} ticks over ${windowMs} ms`);
  const rows0 = await metric(url, 'weft_link_rows_written_total');
  const busy0 = ticks(server.pid!);
  const rep = await ask(fleet, { cmd: 'report', ids, links: LINKS, rounds: ROUNDS, periodMs: PERIOD_MS, staleShare: 0.01 });
  const busyTicks = ticks(server.pid!) - busy0;
  await sleep(6_000); // the last batched write
  const rows = (await metric(url, 'weft_link_rows_written_total')) - rows0;
  const rssReporting = rssMb(server.pid!);
  const q0 = performance.now();
  const staleRes = await fetch(`${url}/api/v1/links?state=stale`, { headers: { authorization: `Bearer ${apiKey}` } });
  const staleBody = (await staleRes.json()) as { items: unknown[] };
  const fleetQueryMs = Math.round(performance.now() - q0);
  const staleGauge = await metric(url, 'weft_links_stale');
  const extraCpuS = (busyTicks - idleTicks) / 100;
  const result = {
    nodes: N, linksPerNode: LINKS, windowS: windowMs / 1000, reportPeriodS: PERIOD_MS / 1000,
    connected: conn.open, openAfter: rep.open,
    serverCpuIdleS: idleTicks / 100, serverCpuReportingS: busyTicks / 100,
    extraCpuS: Math.round(extraCpuS * 100) / 100,
    extraCpuShareOfOneCore: Math.round((extraCpuS / (windowMs / 1000)) * 1000) / 1000,
    extraCpuPerMessageUs: Math.round((extraCpuS / rep.messages) * 1e6),
    messages: rep.messages, agentToServerBytes: rep.bytes,
    agentToServerBytesPerS: Math.round(rep.bytes / (windowMs / 1000)), bytesPerMessage: Math.round(rep.bytes / rep.messages),
    nodeLinksRowsWritten: rows, rowsWrittenPerS: Math.round((rows / (windowMs / 1000)) * 10) / 10,
    serverRssMbIdle: rssIdle, serverRssMbReporting: rssReporting,
    staleLinksListed: staleBody.items.length, staleGauge, fleetQueryMs,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), kernel: release(), loadavg1: Math.round(loadavg()[0]! * 10) / 10 },
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(join(here, 'results', 'links.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  fleet.send({ cmd: 'exit' });
  server.send({ cmd: 'stop' });
  await sleep(3_000);
  fleet.kill();
  server.kill();
}
