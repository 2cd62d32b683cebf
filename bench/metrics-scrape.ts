/**
 * `npm run bench:metrics-scrape`: CPU of one /metrics scrape, in process (no network, no load
 * noise from other processes beyond the CPU share): a ServerMetrics with the series a busy server
 * has (40 HTTP routes x 3 statuses, 40 Prisma model/operation pairs, every change kind) and a
 * node-state gauge iterating BENCH_NODES (10,000) entries. Merges `scrape` into
 * bench/results/metrics-overhead.json.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify from 'fastify';
import { ServerMetrics } from '../apps/server/src/metrics.js';
import { machine } from './lib/machine.js';
import { median, percentile, round } from './lib/stats.js';

const NODES = Number(process.env.BENCH_NODES ?? 10_000);
const SCRAPES = 200;
const m = new ServerMetrics();
const rows = Array.from({ length: NODES }, (_, i) => ({ online: i % 3 !== 0, expired: i % 50 === 0 }));
m.attach({
  nodeStates: () => {
    const out = { online: 0, offline: 0, expired: 0 };
    for (const r of rows) if (r.expired) out.expired++; else if (r.online) out.online++; else out.offline++;
    return out;
  },
  sessions: () => NODES,
  rateLimitRefusals: () => ({ login: 3, credentials: 5 }),
});
for (const kind of ['nodes-upserted', 'nodes-removed', 'nodes-expired', 'nodes-patched', 'presence'] as const) for (let i = 0; i < 100; i++) m.mapper.applied(kind, Math.random() / 10);
for (let i = 0; i < 1000; i++) m.busReceived(Math.random() / 100);
// HTTP and Prisma series through the same code paths the server uses.
const app = Fastify();
m.instrumentHttp(app);
for (let r = 0; r < 40; r++) app.get(`/route${r}/:id`, async (_req, reply) => reply.code([200, 404, 500][r % 3]!).send('x'));
await app.ready();
for (let r = 0; r < 40; r++) for (let s = 0; s < 3; s++) await app.inject({ method: 'GET', url: `/route${r}/${s}` });
// No database here: Prisma's series are filled through the histogram the extension observes.
const hist = (m as unknown as { dbQuery: { observe(l: object, v: number): void } }).dbQuery;
for (let i = 0; i < 40; i++) for (let k = 0; k < 20; k++) hist.observe({ model: `Model${i % 8}`, operation: `op${i}` }, Math.random() / 100);

const cpuMs: number[] = [];
let bytes = 0;
for (let i = 0; i < SCRAPES; i++) {
  const c0 = process.cpuUsage();
  bytes = (await m.exposition()).length;
  const c = process.cpuUsage(c0);
  cpuMs.push((c.user + c.system) / 1000);
}
const scrape = {
  measuredAt: new Date().toISOString(),
  machine: machine(),
  nodes: NODES,
  scrapes: SCRAPES,
  exposition: { bytes },
  cpuMsPerScrape: { p50: round(median(cpuMs), 2), p99: round(percentile(cpuMs, 99), 2) },
  note: 'one scrape every 15 s at the p50 is this many ms of CPU per 15 s; the node-state gauge is one pass over the mapper table.',
};
console.log(JSON.stringify(scrape, null, 2));
const file = resolve(import.meta.dirname, 'results/metrics-overhead.json');
const out = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { benchmark: 'metrics-overhead' };
out.scrape = scrape;
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
await app.close();
