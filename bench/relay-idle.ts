/**
 * `npm run bench:relay-idle`: the relay's memory per connected idle client at 10,000 clients
 * (issue 9's target: under 30 KiB). The relay runs in its own process (bench/lib/relay-idle-server.ts:
 * RelayServer + ws, UDP attached); this process opens BENCH_RELAY_IDLE_CLIENTS (default 10,000)
 * real WebSocket clients on loopback, in batches, each greeted with its SERVER_INFO, then leaves
 * them idle. Per client = (the relay's RSS with all connected - its RSS after a warm-up of a few
 * hundred connects and closes) / clients, each after a full GC; heap and external (Buffer) memory
 * the same way. Kernel socket buffers are not in RSS (they are the kernel's, and tcp_mem bounds
 * them), so they are not counted. Writes bench/results/relay-idle.json with the machine noted.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { machine } from './lib/machine.js';
import { round } from './lib/stats.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const CLIENTS = Number(process.env.BENCH_RELAY_IDLE_CLIENTS ?? 10_000);
const BATCH = 200;
const WARMUP = 300;
const TARGET_KIB = 30;

interface Mem { clients: number; rssKiB: number; heapUsedKiB: number; externalKiB: number }

function ask(child: ChildProcess, cmd: string): Promise<Mem> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Mem));
    child.send({ cmd });
  });
}

function open(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.once('message', () => resolve(ws)); // SERVER_INFO: the relay holds this client now
    ws.once('error', reject);
  });
}

async function openMany(port: number, n: number): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < n; i += BATCH) out.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => open(port)))));
  return out;
}

async function main(): Promise<void> {
  const child = fork(join(here, 'lib/relay-idle-server.ts'), [], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })));
  try {
    // Warm-up: code paths compiled, pools allocated, then all closed again.
    const warm = await openMany(port, WARMUP);
    for (const ws of warm) ws.close();
    while ((await ask(child, 'measure')).clients > 0) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500));
    const base = await ask(child, 'measure');
    const t0 = Date.now();
    const clients = await openMany(port, CLIENTS);
    const connectS = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000)); // idle
    const full = await ask(child, 'measure');
    if (full.clients !== CLIENTS) throw new Error(`the relay holds ${full.clients} clients, not ${CLIENTS}`);
    const per = (a: number, b: number) => round((a - b) / CLIENTS, 2);
    const result = {
      benchmark: 'relay-idle',
      date: new Date().toISOString(),
      machine: machine(),
      workload: { clients: CLIENTS, batch: BATCH, warmup: WARMUP, note: 'RelayServer + ws (weft-server socket options) with UDP attached, in its own process; real WebSocket clients on loopback; RSS/heap/external after a full GC, all connected minus the warm base; no authentication state.' },
      connectSeconds: round(connectS, 1),
      base,
      full,
      perClientKiB: { rss: per(full.rssKiB, base.rssKiB), heapUsed: per(full.heapUsedKiB, base.heapUsedKiB), external: per(full.externalKiB, base.externalKiB) },
      targetKiB: TARGET_KIB,
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(`relay memory per idle client at ${CLIENTS}: ${result.perClientKiB.rss} KiB RSS (target < ${TARGET_KIB}): ${result.perClientKiB.rss < TARGET_KIB ? 'met' : 'NOT met'}`);
    if (CLIENTS === 10_000) writeFileSync(join(here, 'results/relay-idle.json'), JSON.stringify(result, null, 2) + '\n');
    for (const ws of clients) ws.terminate();
  } finally {
    child.send({ cmd: 'exit' });
    setTimeout(() => child.kill(), 2000).unref();
  }
}

await main();
