/**
 * `npm run bench:metrics-prisma`: what the Prisma timing extension adds per query, in process on
 * the embedded database: the same small read (a settings row by key) on the plain client and on
 * the instrumented one, in alternating blocks. Merges `prismaExtension` into
 * bench/results/metrics-overhead.json.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDatabase, type PrismaClient } from '@weft/db';
import { ServerMetrics } from '../apps/server/src/metrics.js';
import { machine } from './lib/machine.js';
import { median, round } from './lib/stats.js';

const BLOCKS = 10;
const PER_BLOCK = 300;
const dir = mkdtempSync(join(tmpdir(), 'weft-bench-prisma-'));
const db = await openDatabase({ dataDir: dir });
await db.prisma.setting.create({ data: { key: 'bench', value: 'x' } });
const plain = db.prisma;
const timed = new ServerMetrics().instrumentPrisma(db.prisma);
const block = async (p: PrismaClient) => {
  const t0 = performance.now();
  for (let i = 0; i < PER_BLOCK; i++) await p.setting.findUnique({ where: { key: 'bench' } });
  return ((performance.now() - t0) * 1000) / PER_BLOCK; // µs per query
};
await block(plain);
await block(timed); // warm both
const off: number[] = [];
const on: number[] = [];
for (let b = 0; b < BLOCKS; b++) {
  if (b % 2) { on.push(await block(timed)); off.push(await block(plain)); } else { off.push(await block(plain)); on.push(await block(timed)); }
}
const prismaExtension = {
  measuredAt: new Date().toISOString(),
  machine: machine(),
  query: 'setting.findUnique by primary key, embedded PGlite, in process',
  blocks: BLOCKS, queriesPerBlock: PER_BLOCK,
  microsecondsPerQuery: { plainMedian: round(median(off)), instrumentedMedian: round(median(on)), blocksPlain: off.map((x) => round(x)), blocksInstrumented: on.map((x) => round(x)) },
};
console.log(JSON.stringify(prismaExtension, null, 2));
const file = resolve(import.meta.dirname, 'results/metrics-overhead.json');
const out = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { benchmark: 'metrics-overhead' };
out.prismaExtension = prismaExtension;
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
await db.close();
rmSync(dir, { recursive: true, force: true });
