/**
 * `npm run bench:stun`: Binding responses per second of the Weft STUN service (the weft-relay
 * bundle) against Debian coturn's `turnserver --stun-only` (its defaults: a UDP thread per core),
 * on loopback, driven by the same load generator (bench/lib/stun-load.c, one C process with
 * recvmmsg/sendmmsg, reporting its own CPU) in the same run. Each set has one round per server,
 * rotating which goes first so drift in the machine's load falls on each in turn; ratios are
 * taken per set and their median reported.
 *
 * The target is what a production weft-relay runs: `--workers N`, a process per core (the README's
 * advice, as coturn's defaults run a UDP thread per core), with the batched native socket, over
 * coturn's defaults. Also measured: one weft-relay process, one on node:dgram (WEFT_UDP_NATIVE=0:
 * what the addon changed), coturn with relay-threads=1, and a bare Node.js dgram responder (the
 * floor the addon gets under). And each server's own CPU seconds per round (from /proc).
 *
 * Writes bench/results/stun.json with the machine noted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { bindingRequest } from '@weft/relay';
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

async function startWeft(workers = 1, io: 'native' | 'dgram' = 'native'): Promise<{ port: number; proc: ChildProcess; pids: () => number[]; stop: () => Promise<void> }> {
  const port = await freeUdpPort();
  const env = { ...process.env, WEFT_UDP_NATIVE: io === 'native' ? '1' : '0' };
  const proc = spawn(process.execPath, [RELAY_BIN, '--stun-listen', `127.0.0.1:${port}`, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`weft-relay exited ${proc.exitCode}: ${err}`);
    if (/STUN \(udp\) on/.test(err) && (await bindingRequest({ host: '127.0.0.1', port, timeoutMs: 300 }).then(() => true, () => false))) break;
    if (i > 100) throw new Error(`weft-relay did not answer: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Its start-up line names the socket: a native round that fell back to dgram would mislead.
  const want = io === 'native' ? 'batched I/O (recvmmsg/sendmmsg)' : 'node:dgram';
  if (!err.includes(want)) throw new Error(`weft-relay is not on ${want} (did scripts/build.mjs build packages/relay/native?): ${err}`);
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
const NAMES: readonly Name[] = [...(NPROC > 1 ? [WEFT_PER_CORE] : []), 'weft', 'weft-dgram', 'coturn', 'coturn-1-relay-thread', 'node-floor'];
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
const weftDgram = await startWeft(1, 'dgram');
const coturn = await startCoturn();
const coturn1 = await startCoturn({ threads: 1 });
const floor = await startFloor();
const servers: Record<Name, { port: number; pids: number[] }> = {
  weft: { port: weft.port, pids: weft.pids() },
  'weft-dgram': { port: weftDgram.port, pids: weftDgram.pids() },
  ...(weftPerCore ? { [WEFT_PER_CORE]: { port: weftPerCore.port, pids: weftPerCore.pids() } } : {}),
  coturn: { port: coturn.port, pids: [coturn.proc.pid!] },
  'coturn-1-relay-thread': { port: coturn1.port, pids: [coturn1.proc.pid!] },
  'node-floor': { port: floor.port, pids: [floor.proc.pid!] },
};
/** Threads of a server's processes (/proc/PID/task), as it runs: what each side had to spread the load over. */
const threadsOf = (pids: number[]) => pids.reduce((n, pid) => n + readdirSync(`/proc/${pid}/task`).length, 0);
const threads = Object.fromEntries(NAMES.map((n) => [n, threadsOf(servers[n]!.pids)]));
const rounds: Round[] = [];
/** What the target measures: a production weft-relay, a process per core (one where there is one core). */
const TARGET: Name = NAMES.includes(WEFT_PER_CORE) ? WEFT_PER_CORE : 'weft';
/** Ratios of responses per second (or per server CPU-second), one per set. */
const PAIRS_OF: Record<string, [Name, Name, 'responsesPerSecond' | 'responsesPerServerCpuSecond']> = {
  target: [TARGET, 'coturn', 'responsesPerSecond'],
  weftVsCoturn: ['weft', 'coturn', 'responsesPerSecond'],
  weftVsCoturnPerServerCpuSecond: ['weft', 'coturn', 'responsesPerServerCpuSecond'],
  weftVsCoturn1RelayThread: ['weft', 'coturn-1-relay-thread', 'responsesPerSecond'],
  weftVsWeftDgram: ['weft', 'weft-dgram', 'responsesPerSecond'],
  weftDgramVsNodeFloor: ['weft-dgram', 'node-floor', 'responsesPerSecond'],
};
const ratios: Record<string, number[]> = Object.fromEntries(Object.keys(PAIRS_OF).map((k) => [k, []]));
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
    for (const [k, [a, b, what]] of Object.entries(PAIRS_OF)) ratios[k]!.push(set[a]![what] / set[b]![what]);
    console.log(`set ${i + 1}: ${TARGET}/coturn ${ratios.target!.at(-1)!.toFixed(3)}; weft/coturn ${ratios.weftVsCoturn!.at(-1)!.toFixed(3)}; weft/weft-dgram ${ratios.weftVsWeftDgram!.at(-1)!.toFixed(3)}`);
  }
} finally {
  await weft.stop();
  await weftPerCore?.stop();
  await weftDgram.stop();
  await coturn.stop();
  await coturn1.stop();
  await floor.stop();
}

const med = (s: Name, k: 'responsesPerSecond' | 'responsesPerServerCpuSecond') => Math.round(median(rounds.filter((r) => r.server === s).map((r) => r[k])));
/** The generator's CPU over the round's wall time: well under 1 (one core) means it kept up. */
const generatorShare = (s: Name) => round(median(rounds.filter((r) => r.server === s).map((r) => r.generatorCpuSeconds / r.seconds)), 2);
const summary = (s: Name) => ({ responsesPerSecondMedian: med(s, 'responsesPerSecond'), responsesPerServerCpuSecondMedian: med(s, 'responsesPerServerCpuSecond'), generatorCpuShareMedian: generatorShare(s) });
const stats = (k: string) => ({ median: round(median(ratios[k]!), 3), min: round(Math.min(...ratios[k]!), 3), max: round(Math.max(...ratios[k]!), 3) });
const result = {
  benchmark: 'stun',
  date: new Date().toISOString(),
  loadAvg1mAtStart,
  loadAvg1mAtEnd: machine().loadAvg1m,
  machine: machine({ coturn: ['turnserver', ['--version']] }),
  setup:
    `loopback UDP, 127.0.0.1; weft = the weft-relay bundle, one process (StunServer on the batched native socket: recvmmsg/sendmmsg, packages/relay/native); ${WEFT_PER_CORE} = weft-relay --workers ${NPROC} (SO_REUSEPORT, a process per core: what a production weft-relay runs); weft-dgram = one process on node:dgram (WEFT_UDP_NATIVE=0, the socket before the addon); ` +
    'coturn = turnserver --stun-only with its defaults (net engine 3, a UDP thread per CPU core), Debian package; coturn-1-relay-thread = the same with relay-threads=1; node-floor = bench/lib/node-udp-floor.mjs (one Node.js dgram event loop answering a fixed 48 bytes, no STUN work, not verified as STUN); ' +
    `one load generator process, bench/lib/stun-load.c (C, one thread, recvmmsg/sendmmsg; compiled by the bench with gcc): ${LOAD.sockets} sockets x ${LOAD.window} outstanding 20-byte Binding requests, a request unanswered for ${LOAD.timeoutMs} ms counts as lost and is replaced; the first response on each socket must carry that socket's address and port in XOR-MAPPED-ADDRESS (verified); ` +
    `${PAIRS} sets of ${LOAD.durationMs} ms rounds, one round per server, rotating which goes first. Responses: Weft 48 bytes (XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT; a bare request is answered from BindingResponder's template, stun-binding.ts); coturn its own. ` +
    'serverCpuSeconds: utime+stime of the server processes (all threads) from /proc during the round; generatorCpuSeconds: the generator\'s own (getrusage), generatorCpuShareMedian = that over the round\'s wall time (1 = a whole core).',
  weftPerCore: { processes: TARGET === 'weft' ? 1 : NPROC, ...summary(TARGET) },
  weft: summary('weft'),
  weftDgram: summary('weft-dgram'),
  coturn: summary('coturn'),
  coturn1RelayThread: summary('coturn-1-relay-thread'),
  nodeFloor: { what: 'bench/lib/node-udp-floor.mjs: one Node.js dgram event loop answering a fixed 48 bytes, no STUN work (not verified as STUN): what node:dgram itself does here', ...summary('node-floor') },
  threads: {
    what: 'OS threads of each server process tree (/proc/PID/task) at start: Node.js has libuv/V8 helper threads besides the one event loop that answers; coturn one UDP listener thread per core besides its others',
    ...threads,
  },
  target: {
    what: `${TARGET === 'weft' ? 'weft-relay (one process: one core)' : `weft-relay --workers ${NPROC} (a process per core, as a production weft-relay runs and as coturn's defaults have a UDP listener thread per core)`} / coturn defaults, responses per second, per set; target >= 1.0`,
    ...stats('target'),
    meets: median(ratios.target!) >= 1,
  },
  ratio: {
    what: 'per set, responses per second unless named; median (min..max)',
    weftVsCoturn: stats('weftVsCoturn'),
    weftVsCoturnPerServerCpuSecond: stats('weftVsCoturnPerServerCpuSecond'),
    weftVsCoturn1RelayThread: stats('weftVsCoturn1RelayThread'),
    weftVsWeftDgram: stats('weftVsWeftDgram'),
    weftDgramVsNodeFloor: stats('weftDgramVsNodeFloor'),
  },
  rounds: rounds.map((r) => ({ server: r.server, responsesPerSecond: Math.round(r.responsesPerSecond), lost: r.lost, serverCpuSeconds: round(r.serverCpuSeconds, 2), generatorCpuSeconds: round(r.generatorCpuSeconds, 2), seconds: round(r.seconds, 2), verified: r.verified })),
};
const allVerified = rounds.every((r) => r.verified || r.server === 'node-floor');
console.log(`\n${TARGET}: ${result.target.median} of coturn (sets ${result.target.min}..${result.target.max}): target ${result.target.meets ? 'met' : 'NOT met'}`);
console.log(`weft ${result.weft.responsesPerSecondMedian}/s, ${TARGET} ${result.weftPerCore.responsesPerSecondMedian}/s, weft-dgram ${result.weftDgram.responsesPerSecondMedian}/s, coturn ${result.coturn.responsesPerSecondMedian}/s; generator CPU share (median, 1 = a core): weft ${result.weft.generatorCpuShareMedian}, coturn ${result.coturn.generatorCpuShareMedian}`);
if (!allVerified) console.log('SOME RESPONSES WERE NOT VERIFIED: see rounds');
const file = resolve(import.meta.dirname, 'results/stun.json');
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log('wrote bench/results/stun.json');
