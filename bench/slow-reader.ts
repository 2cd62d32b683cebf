/**
 * `npm run bench:slow-reader`: server memory against agents that never read. One real
 * `weft-server` (embedded PGlite) with BENCH_NODES (500) nodes so netmaps are big; BENCH_SOCKETS
 * (10) registered nodes open sockets that never read and send BENCH_RESYNCS (200) resync requests
 * each. Prints the server's RSS before, with the sockets open (after BENCH_HOLD_MS), and after
 * they closed (after BENCH_SETTLE_MS), and how many of the sockets were still connected.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './lib/machine.js';
import { generateNodeKey, signMachineToken } from '@weft/crypto';
import { cli, spawnServer } from '../apps/server/test/support/process.js';
import { SimAgent } from '../test-support/sim-agent.js';
import { StalledSocket } from '../test-support/stalled-socket.js';

const NODES = Number(process.env.BENCH_NODES ?? 500);
const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 10);
const RESYNCS = Number(process.env.BENCH_RESYNCS ?? 200);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 5000);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 10_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024);

const server = await spawnServer();
try {
  const json = async (args: string[]) => JSON.parse((await cli([...args, '--json', '--data-dir', server.dataDir])).stdout);
  const apiKey = (await json(['apikeys', 'create', '--scopes', 'admin'])).key as string;
  await json(['users', 'create', 'bench']);
  const authKey = (await json(['authkeys', 'create', '--user', 'bench', '--reusable', '--expiration', '0'])).key as string;
  const post = (path: string, body: unknown) =>
    fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  for (let i = 0; i < NODES; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, NODES - i) }, (_, j) => post('/api/v1/nodes', { user: 'bench', hostname: `bulk-${i + j}`, nodeKey: generateNodeKey().publicKey })));
  }
  const reader = new SimAgent(server.url, 'reader');
  await reader.register(authKey);
  await reader.connect({ parse: false });
  await reader.waitFor(() => reader.received.length > 0, 10_000, 'netmap');
  const netmapKb = Math.round(reader.received[0]!.bytes / 1024);
  const agents = await Promise.all(Array.from({ length: SOCKETS }, async (_, i) => {
    const a = new SimAgent(server.url, `stalled-${i}`);
    await a.register(authKey);
    return a;
  }));
  await sleep(2000);
  const before = rssMb(server.proc.pid!);
  const sockets = await Promise.all(agents.map(async (a) => StalledSocket.open(server.url, await signMachineToken(a.machine.privateKey))));
  for (let r = 0; r < RESYNCS; r++) {
    for (const s of sockets) s.sendText('{"type":"resync"}');
    await sleep(2);
  }
  await sleep(HOLD_MS);
  const during = rssMb(server.proc.pid!);
  const nodes = (await (await fetch(`${server.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { items: { hostname: string; online: boolean }[] };
  const stillOnline = nodes.items.filter((n) => n.hostname.startsWith('stalled-') && n.online).length;
  for (const s of sockets) s.destroy();
  await sleep(SETTLE_MS);
  const after = rssMb(server.proc.pid!);
  reader.close();
  const result = { nodes: NODES, netmapKb, sockets: SOCKETS, resyncsEach: RESYNCS, rssMb: { before, during, after }, stalledStillConnected: stillOnline };
  console.log(JSON.stringify(result));
  const out = resolve(dirname(fileURLToPath(import.meta.url)), 'results/slow-reader.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ benchmark: 'slow-reader', date: new Date().toISOString(), machine: machine(), result }, null, 2) + '\n');
  console.log('wrote bench/results/slow-reader.json');
} finally {
  await server.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
}
