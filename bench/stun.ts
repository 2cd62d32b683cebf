/**
 * `npm run bench:stun`: Binding responses per second of the Weft STUN service (the weft-relay
 * bundle, one Node process) against Debian coturn's `turnserver --stun-only` (its defaults: a
 * UDP thread per core), on loopback, driven by the same load generator (bench/lib/stun-load.ts)
 * in the same run. Rounds alternate between the two (weft first, then coturn first) so drift in
 * the machine's load falls on both; the ratio is taken per pair and its median reported.
 * Also the servers' own CPU seconds per round (from /proc), which a loaded machine skews less,
 * and (Node >= 22.12) weft-relay with a process per core, as coturn runs a thread per core.
 *
 * Writes bench/results/stun.json with the machine noted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { bindingRequest, reusePortSupported } from '@weft/relay';
import { startCoturn, freeUdpPort } from '../test-support/coturn.js';
import { machine } from './lib/machine.js';
import { median, round } from './lib/stats.js';
import { runLoad, type LoadResult } from './lib/stun-load.js';

const PAIRS = Number(process.env.BENCH_STUN_PAIRS ?? 6);
const LOAD = { sockets: Number(process.env.BENCH_STUN_SOCKETS ?? 16), window: Number(process.env.BENCH_STUN_WINDOW ?? 16), durationMs: Number(process.env.BENCH_STUN_ROUND_MS ?? 3000), timeoutMs: 200 };
const RELAY_BIN = resolve(import.meta.dirname, '../apps/relay/bin/weft-relay.mjs');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** utime + stime of processes (all their threads), in seconds. */
function cpuSeconds(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  }
  return total;
}

async function startWeft(workers = 1): Promise<{ port: number; proc: ChildProcess; pids: () => number[]; stop: () => Promise<void> }> {
  const port = await freeUdpPort();
  const proc = spawn(process.execPath, [RELAY_BIN, '--stun-listen', `127.0.0.1:${port}`, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`weft-relay exited ${proc.exitCode}: ${err}`);
    if (/STUN \(udp\) on/.test(err) && (await bindingRequest({ host: '127.0.0.1', port, timeoutMs: 300 }).then(() => true, () => false))) break;
    if (i > 100) throw new Error(`weft-relay did not answer: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The worker processes are the relay's children: their CPU counts too.
  const pids = () => [proc.pid!, ...readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
  return {
    port,
    proc,
    pids,
    stop: () => new Promise<void>((r) => {
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    }),
  };
}

const NPROC = availableParallelism();
/** weft-relay with a process per core (as coturn has a UDP thread per core), where this Node can share a port. */
const WEFT_PER_CORE = `weft-${NPROC}-processes`;
type Name = string;
const NAMES: readonly Name[] = ['weft', ...(reusePortSupported() && NPROC > 1 ? [WEFT_PER_CORE] : []), 'coturn', 'coturn-1-relay-thread', 'node-floor'];
/** bench/lib/node-udp-floor.mjs: a fixed answer from one Node.js event loop, no STUN work (its responses are not verified STUN). */
const FLOOR_BIN = resolve(import.meta.dirname, 'lib/node-udp-floor.mjs');

async function startFloor(): Promise<{ port: number; proc: ChildProcess; stop: () => Promise<void> }> {
  const port = await freeUdpPort();
  const proc = spawn(process.execPath, [FLOOR_BIN, String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((ok, fail) => {
    proc.stderr!.on('data', (d) => /STUN \(udp\) on/.test(String(d)) && ok());
    proc.once('exit', (code) => fail(new Error(`node-udp-floor exited ${code}`)));
  });
  return { port, proc, stop: () => new Promise<void>((r) => { proc.once('exit', () => r()); proc.kill('SIGTERM'); }) };
}

interface Round extends LoadResult {
  server: Name;
  serverCpuSeconds: number;
  responsesPerServerCpuSecond: number;
}

async function round1(server: Name, port: number, pids: number[]): Promise<Round> {
  const c0 = cpuSeconds(pids);
  const r = await runLoad({ host: '127.0.0.1', port, ...LOAD });
  const serverCpuSeconds = cpuSeconds(pids) - c0;
  const out = { server, ...r, serverCpuSeconds, responsesPerServerCpuSecond: r.received / Math.max(serverCpuSeconds, 1e-9) };
  console.log(`${server.padEnd(22)} ${Math.round(r.responsesPerSecond).toString().padStart(7)} responses/s  lost ${r.lost}  server CPU ${serverCpuSeconds.toFixed(2)} s (${Math.round(out.responsesPerServerCpuSecond)}/CPU-s)  generator CPU ${r.generatorCpuSeconds.toFixed(2)} s of ${r.seconds.toFixed(2)}${r.verified ? '' : '  RESPONSE NOT VERIFIED'}`);
  return out;
}

const loadAvg1mAtStart = machine().loadAvg1m;
const weft = await startWeft();
const weftPerCore = NAMES.includes(WEFT_PER_CORE) ? await startWeft(NPROC) : undefined;
const coturn = await startCoturn();
const coturn1 = await startCoturn({ threads: 1 });
const floor = await startFloor();
const servers: Record<Name, { port: number; pids: number[] }> = {
  weft: { port: weft.port, pids: weft.pids() },
  ...(weftPerCore ? { [WEFT_PER_CORE]: { port: weftPerCore.port, pids: weftPerCore.pids() } } : {}),
  coturn: { port: coturn.port, pids: [coturn.proc.pid!] },
  'coturn-1-relay-thread': { port: coturn1.port, pids: [coturn1.proc.pid!] },
  'node-floor': { port: floor.port, pids: [floor.proc.pid!] },
};
/** Threads of a server's processes (/proc/PID/task), as it runs: what each side had to spread the load over. */
const threadsOf = (pids: number[]) => pids.reduce((n, pid) => n + readdirSync(`/proc/${pid}/task`).length, 0);
const threads = Object.fromEntries(NAMES.map((n) => [n, threadsOf(servers[n]!.pids)]));
const rounds: Round[] = [];
const ratios: number[] = [];
const cpuRatios: number[] = [];
const ratios1: number[] = [];
const ratiosPerCore: number[] = [];
const floorRatios: number[] = [];
try {
  // Warm-up for each (JIT, caches), not recorded.
  for (const n of NAMES) await runLoad({ host: '127.0.0.1', port: servers[n]!.port, ...LOAD, durationMs: 1000 });
  for (let i = 0; i < PAIRS; i++) {
    // Rotate who goes first, so drift in the machine's load falls on each in turn.
    const order = [...NAMES.slice(i % NAMES.length), ...NAMES.slice(0, i % NAMES.length)];
    const set: Partial<Record<Name, Round>> = {};
    for (const n of order) {
      const r = await round1(n, servers[n]!.port, servers[n]!.pids);
      set[n] = r;
      rounds.push(r);
    }
    ratios.push(set.weft!.responsesPerSecond / set.coturn!.responsesPerSecond);
    cpuRatios.push(set.weft!.responsesPerServerCpuSecond / set.coturn!.responsesPerServerCpuSecond);
    ratios1.push(set.weft!.responsesPerSecond / set['coturn-1-relay-thread']!.responsesPerSecond);
    floorRatios.push(set.weft!.responsesPerSecond / set['node-floor']!.responsesPerSecond);
    if (set[WEFT_PER_CORE]) ratiosPerCore.push(set[WEFT_PER_CORE].responsesPerSecond / set.coturn!.responsesPerSecond);
    console.log(`set ${i + 1}: weft/coturn ${ratios.at(-1)!.toFixed(3)} (per server CPU-second ${cpuRatios.at(-1)!.toFixed(3)}); weft/coturn-1-relay-thread ${ratios1.at(-1)!.toFixed(3)}${set[WEFT_PER_CORE] ? `; ${WEFT_PER_CORE}/coturn ${ratiosPerCore.at(-1)!.toFixed(3)}` : ''}`);
  }
} finally {
  await weft.stop();
  await weftPerCore?.stop();
  await coturn.stop();
  await coturn1.stop();
  await floor.stop();
}

const med = (s: Name, k: 'responsesPerSecond' | 'responsesPerServerCpuSecond') => Math.round(median(rounds.filter((r) => r.server === s).map((r) => r[k])));
const summary = (s: Name) => ({ responsesPerSecondMedian: med(s, 'responsesPerSecond'), responsesPerServerCpuSecondMedian: med(s, 'responsesPerServerCpuSecond') });
const result = {
  benchmark: 'stun',
  date: new Date().toISOString(),
  loadAvg1mAtStart,
  loadAvg1mAtEnd: machine().loadAvg1m,
  machine: machine({ coturn: ['turnserver', ['--version']] }),
  setup:
    'loopback UDP; Weft = the weft-relay bundle (one Node.js process, StunServer, one event loop); weft-N-processes = weft-relay --workers N (N = nproc, SO_REUSEPORT; only on Node >= 22.12); coturn = turnserver --stun-only with its defaults (net engine 3, a UDP thread per CPU core), Debian package; coturn-1-relay-thread = the same with relay-threads=1; node-floor = bench/lib/node-udp-floor.mjs (one Node.js event loop answering a fixed 48 bytes: no STUN work: what Node.js costs per datagram); ' +
    `one load generator process (bench/lib/stun-load.ts): ${LOAD.sockets} sockets x ${LOAD.window} outstanding 20-byte Binding requests, a request unanswered for ${LOAD.timeoutMs} ms counts as lost and is replaced; ` +
    `${PAIRS} sets of ${LOAD.durationMs} ms rounds, one round per server, rotating which goes first. Responses: Weft 48 bytes (XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT; a bare request is answered from BindingResponder's template, stun-binding.ts); coturn its own. ` +
    'serverCpuSeconds: utime+stime of the server process (all threads) from /proc during the round.',
  weft: summary('weft'),
  ...(weftPerCore ? { weftPerCore: { processes: NPROC, ...summary(WEFT_PER_CORE) } } : {}),
  coturn: summary('coturn'),
  coturn1RelayThread: summary('coturn-1-relay-thread'),
  nodeFloor: { what: 'bench/lib/node-udp-floor.mjs: one Node.js event loop answering a fixed 48 bytes, no STUN work (not verified as STUN): what Node.js itself does here', ...summary('node-floor') },
  threads: {
    what: 'OS threads of each server process tree (/proc/PID/task) at start: Node.js has libuv/V8 helper threads besides the one event loop that answers; coturn one UDP listener thread per core besides its others',
    ...threads,
  },
  target: ratiosPerCore.length
    ? {
        what: `weft-relay with ${NPROC} processes (one event loop each, as coturn's defaults have a UDP listener thread per core) / coturn defaults, responses per second per set; target >= 1.0`,
        median: round(median(ratiosPerCore), 3),
        min: round(Math.min(...ratiosPerCore), 3),
        max: round(Math.max(...ratiosPerCore), 3),
        meets: median(ratiosPerCore) >= 1,
      }
    : null,
  ratio: {
    what: 'weft (one process, one event loop) / coturn (defaults) responses per second, per set',
    median: round(median(ratios), 3),
    min: round(Math.min(...ratios), 3),
    max: round(Math.max(...ratios), 3),
    perServerCpuSecondMedian: round(median(cpuRatios), 3),
    vsCoturn1RelayThreadMedian: round(median(ratios1), 3),
    vsNodeFloorMedian: round(median(floorRatios), 3),
    ...(ratiosPerCore.length ? { perCoreProcessesVsCoturnMedian: round(median(ratiosPerCore), 3), perCoreProcessesVsCoturnMin: round(Math.min(...ratiosPerCore), 3), perCoreProcessesVsCoturnMax: round(Math.max(...ratiosPerCore), 3) } : {}),
  },
  rounds: rounds.map((r) => ({ server: r.server, responsesPerSecond: Math.round(r.responsesPerSecond), lost: r.lost, serverCpuSeconds: round(r.serverCpuSeconds, 2), generatorCpuSeconds: round(r.generatorCpuSeconds, 2), seconds: round(r.seconds, 2), verified: r.verified })),
};
if (ratiosPerCore.length) console.log(`\n${WEFT_PER_CORE}: ${result.ratio.perCoreProcessesVsCoturnMedian} of coturn`);
console.log(`\nweft ${result.weft.responsesPerSecondMedian}/s, coturn ${result.coturn.responsesPerSecondMedian}/s: ratio ${result.ratio.median} (sets ${result.ratio.min}..${result.ratio.max}); per server CPU-second ${result.ratio.perServerCpuSecondMedian}; vs coturn relay-threads=1 ${result.ratio.vsCoturn1RelayThreadMedian}`);
const file = resolve(import.meta.dirname, 'results/stun.json');
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log('wrote bench/results/stun.json');
