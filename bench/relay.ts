/**
 * `npm run bench:relay`: two clients exchanging packets through a relay on loopback, at 64- and
 * 1280-byte packets, through (1) Weft's relay (a real `weft-server`, WebSocket `/api/v1/relay`),
 * (2) the same relay over UDP (the ticket from each WebSocket session, bound on the server's STUN
 * port, as the agent does when UDP works), (3) Debian coturn's TURN relay with the clients on TCP
 * and (4) on UDP (allocations, a permission and a channel each; ChannelData). Same load generator, same run, one process for the
 * clients and the relay in its own.
 *
 * The workload per system and size: client A keeps WINDOW packets in flight to B; B echoes each
 * back; A sends a new one per echo (both directions loaded, no unbounded queue). Packets/s counts
 * relayed packets (both directions); Mbit/s is packets/s x size. Then with one packet in flight:
 * the round trip A -> relay -> B -> relay -> A, p50/p99. Relay CPU is the relay process's own
 * user+system time over the throughput phase, per second of wall time; memory its RSS (and peak).
 * Ratios are Weft / coturn for the same size. Writes bench/results/relay.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { adminCli } from './lib/server-process.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, SERVER_BIN } from '../apps/server/test/support/process.js';
import { keyBytes } from '@weft/crypto';
import { RelayUdpClient, type UdpTicket } from '@weft/relay';
import { RelayPeer } from '../test-support/relay-peer.js';
import { SimAgent } from '../test-support/sim-agent.js';
import { freeUdpPort, requireCoturn } from '../test-support/coturn.js';
import { machine } from './lib/machine.js';
import { percentile, round } from './lib/stats.js';
import { TurnClient } from './lib/turn-client.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const SIZES = [64, 1280];
const WINDOW = Number(process.env.BENCH_RELAY_WINDOW ?? 256);
const THROUGHPUT_MS = Number(process.env.BENCH_RELAY_SECONDS ?? 5) * 1000;
const LATENCY_MS = 2000;
const ROUNDS = Number(process.env.BENCH_RELAY_ROUNDS ?? 3);
/** A packet not echoed this long (UDP; or four smoothed round trips, if longer) is counted lost and its slot refilled. */
const LOST_AFTER_MS = 200;

/** Two endpoints of a relay: A sends to B, B to A. */
interface Pair {
  name: string;
  /** Packets can be lost on the way (UDP): the window is refilled when echoes stop. */
  lossy: boolean;
  pid: number;
  sendA(p: Buffer): void;
  sendB(p: Buffer): void;
  onA(fn: (p: Buffer) => void): void;
  onB(fn: (p: Buffer) => void): void;
  close(): Promise<void>;
}

const CLK_TCK = 100;
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
function memKiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]), hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1]) };
}
const nowNs = () => process.hrtime.bigint();

interface Result {
  packetsPerS: number;
  mbitPerS: number;
  lostPct: number;
  rttP50Ms: number;
  rttP99Ms: number;
  relayCpuPerS: number;
  /** Relay CPU per relayed packet: steadier than packets/s on a machine whose other load takes the cores. */
  relayCpuUsPerPacket: number;
  relayRssMiB: number;
  relayPeakRssMiB: number;
  /** CPU of the load generator (both clients, this process) per second: near 1 = it, not the relay, was the limit. */
  clientCpuPerS: number;
}

/** One throughput phase then one latency phase at `size` bytes. */
async function measure(pair: Pair, size: number): Promise<Result> {
  let echoes = 0;
  let sent = 0;
  let window = WINDOW;
  let rtts: number[] | null = null;
  let seq = 0;
  /** Packets in flight: sequence number -> when sent (ms). */
  const inflight = new Map<number, number>();
  const packet = (): Buffer => {
    const p = Buffer.alloc(size);
    p.writeBigUInt64BE(nowNs(), 0);
    p.writeUInt32BE(seq, 8);
    inflight.set(seq++, Date.now());
    return p;
  };
  const fill = () => {
    while (inflight.size < window) {
      sent++;
      pair.sendA(packet());
    }
  };
  pair.onB((p) => pair.sendB(p));
  /** Smoothed round trip under load (ms): the loss timeout follows it, so a slow (loaded) machine's late echoes are not taken for losses. */
  let srtt = 0;
  pair.onA((p) => {
    const s = p.readUInt32BE(8);
    const at = inflight.get(s);
    if (at === undefined) return; // late, already counted lost and replaced
    inflight.delete(s);
    const rtt = Date.now() - at;
    srtt = srtt ? 0.95 * srtt + 0.05 * rtt : rtt;
    echoes++;
    if (rtts) rtts.push(Number(nowNs() - p.readBigUInt64BE(0)) / 1e6);
    fill();
  });
  // A packet lost (UDP) never comes back: after LOST_AFTER_MS its slot sends a new one (as the STUN
  // load generator does), so one loss costs one slot for that long, not the whole window's flow.
  const refill = setInterval(() => {
    if (!pair.lossy) return;
    const before = Date.now() - Math.max(LOST_AFTER_MS, 4 * srtt);
    for (const [s, at] of inflight) {
      if (at >= before) break; // in send order
      inflight.delete(s);
    }
    fill();
  }, 20);
  try {
    // Warm-up, then the measured run.
    fill();
    await new Promise((r) => setTimeout(r, 500));
    const e0 = echoes;
    const s0 = sent;
    const c0 = cpuSeconds(pair.pid);
    const u0 = process.cpuUsage();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, THROUGHPUT_MS));
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSeconds(pair.pid) - c0;
    const u = process.cpuUsage(u0);
    const got = echoes - e0;
    const out = sent - s0;
    // Latency: drain, then one packet in flight.
    window = 0;
    await new Promise((r) => setTimeout(r, 300));
    rtts = [];
    window = 1;
    inflight.clear();
    fill();
    await new Promise((r) => setTimeout(r, LATENCY_MS));
    window = 0;
    await new Promise((r) => setTimeout(r, 200));
    const mem = memKiB(pair.pid);
    const pps = (2 * got) / wall;
    return {
      packetsPerS: Math.round(pps),
      mbitPerS: round((pps * size * 8) / 1e6, 1),
      lostPct: round(out > 0 ? Math.max(0, (100 * (out - got)) / out) : 0, 2),
      rttP50Ms: round(percentile(rtts, 50), 3),
      rttP99Ms: round(percentile(rtts, 99), 3),
      relayCpuPerS: round(cpu / wall, 3),
      relayCpuUsPerPacket: round((cpu * 1e6) / (2 * got), 2),
      relayRssMiB: round(mem.rss / 1024, 1),
      relayPeakRssMiB: round(mem.hwm / 1024, 1),
      clientCpuPerS: round((u.user + u.system) / 1e6 / wall, 3),
    };
  } finally {
    clearInterval(refill);
  }
}

// ---- Weft ---------------------------------------------------------------------------------

async function startWeft(): Promise<{ pair: Pair; udpPair: Pair; stop: () => Promise<void> }> {
  const port = await freePort();
  const stunPort = await freeUdpPort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-relay-'));
  const server = spawn(process.execPath, [SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--stun-listen', `127.0.0.1:${stunPort}`, '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d) => (err = (err + d).slice(-10_000)));
  const stop = async () => {
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (let t = 0; ; t++) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) break;
      if (t > 900 || server.exitCode !== null) throw new Error(`weft-server did not start:\n${err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const admin = (args: string[]) => adminCli(SERVER_BIN, dataDir, args);
    await admin(['users', 'create', 'bench']);
    const authKey = (await admin(['authkeys', 'create', '--user', 'bench', '--reusable', '--expiration', '0'])).key as string;
    // c and d are the UDP pair: a node bound over UDP receives there, so it cannot also be a WebSocket-only client.
    const [a, b, c, d] = [new SimAgent(url, 'bench-a'), new SimAgent(url, 'bench-b'), new SimAgent(url, 'bench-c'), new SimAgent(url, 'bench-d')];
    for (const n of [a, b, c, d]) {
      await n.register(authKey);
      await n.connect();
      await n.waitFor(() => n.received.some((r) => r.msg.type === 'netmap'), 30_000, 'netmap');
    }
    const [ra, rb] = [await RelayPeer.open(url, a.machine.privateKey), await RelayPeer.open(url, b.machine.privateKey)];
    ra.keep = rb.keep = false;
    const pair: Pair = {
      name: 'weft',
      lossy: false,
      pid: server.pid!,
      sendA: (p) => ra.send(b.node.publicKey, p),
      sendB: (p) => rb.send(a.node.publicKey, p),
      onA: (fn) => (ra.onPacket = (_from, p) => fn(p)),
      onB: (fn) => (rb.onPacket = (_from, p) => fn(p)),
      close: async () => {
        ra.close();
        rb.close();
        a.close();
        b.close();
      },
    };
    const [rc, rd] = [await RelayPeer.open(url, c.machine.privateKey), await RelayPeer.open(url, d.machine.privateKey)];
    rc.keep = rd.keep = false;
    // The same two sessions over UDP: each binds with its own session's ticket.
    const udpHandlers: { a: (p: Buffer) => void; b: (p: Buffer) => void } = { a: () => {}, b: () => {} };
    const udp = async (peer: RelayPeer, side: 'a' | 'b') => {
      const ticket = (peer.info as unknown as { udp?: UdpTicket }).udp;
      if (!ticket) throw new Error('weft-server sent no UDP ticket (is STUN on?)');
      const u = await RelayUdpClient.open({ ticket, host: '127.0.0.1', bindIntervalMs: 10_000, retryMs: 100, deadAfterMs: 60_000, bufferBytes: 4 * 1024 * 1024, onPacket: (_from, p) => udpHandlers[side](p) });
      for (let t = 0; !u.usable; t++) {
        if (t > 100) throw new Error('the relay did not answer the UDP bind');
        await new Promise((r) => setTimeout(r, 50));
      }
      return u;
    };
    const [ua, ub] = [await udp(rc, 'a'), await udp(rd, 'b')];
    const [ka, kb] = [keyBytes(c.node.publicKey), keyBytes(d.node.publicKey)];
    const udpPair: Pair = {
      name: 'weft-udp',
      lossy: true,
      pid: server.pid!,
      sendA: (p) => ua.send(kb, p),
      sendB: (p) => ub.send(ka, p),
      onA: (fn) => (udpHandlers.a = fn),
      onB: (fn) => (udpHandlers.b = fn),
      close: async () => {
        ua.close();
        ub.close();
        rc.close();
        rd.close();
        c.close();
        d.close();
      },
    };
    return { pair, udpPair, stop: async () => { await udpPair.close(); await pair.close(); await stop(); } };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---- coturn -------------------------------------------------------------------------------

async function startTurn(): Promise<{ proc: ChildProcess; port: number; stop: () => Promise<void> }> {
  requireCoturn();
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-turn-'));
  const port = await freeUdpPort();
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(conf, [
    'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', `listening-port=${port}`, 'min-port=49152', 'max-port=65535',
    'lt-cred-mech', 'user=bench:bench-secret', 'realm=bench', 'allow-loopback-peers', 'no-tls', 'no-dtls', 'no-cli',
    `userdb=${join(dir, 'turndb')}`, `pidfile=${join(dir, 'turnserver.pid')}`, 'log-file=stdout', 'simple-log', 'no-stdout-log', '',
  ].join('\n'));
  const proc = spawn('turnserver', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const c = await Promise.race([
      TurnClient.connect('tcp', '127.0.0.1', port, 'bench', 'bench-secret').catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), 1000)),
    ]);
    if (c) {
      c.close();
      break;
    }
    if (i > 30 || proc.exitCode !== null) {
      await stop();
      throw new Error('turnserver did not answer an Allocate');
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return { proc, port, stop };
}

async function turnPair(turn: { proc: ChildProcess; port: number }, transport: 'tcp' | 'udp'): Promise<Pair> {
  const a = await TurnClient.connect(transport, '127.0.0.1', turn.port, 'bench', 'bench-secret');
  const b = await TurnClient.connect(transport, '127.0.0.1', turn.port, 'bench', 'bench-secret');
  await a.bind(b.relayed);
  await b.bind(a.relayed);
  return {
    name: `coturn-${transport}`,
    lossy: transport === 'udp',
    pid: turn.proc.pid!,
    sendA: (p) => a.send(p),
    sendB: (p) => b.send(p),
    onA: (fn) => (a.onData = fn),
    onB: (fn) => (b.onData = fn),
    close: async () => {
      a.close();
      b.close();
    },
  };
}

// ---- run ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadAvg1mAtStart = machine().loadAvg1m;
  const weft = await startWeft();
  // The relay's RSS is weft-server's whole process (embedded database included): its idle value with
  // the two nodes connected is the baseline the traffic adds to.
  const weftIdle = memKiB(weft.pair.pid);
  const turn = await startTurn().catch((e: Error) => {
    console.error(`coturn part skipped: ${e.message}`);
    return null;
  });
  const runs: Record<string, Record<number, Result[]>> = {};
  const record = (name: string, size: number, r: Result) => {
    ((runs[name] ??= {})[size] ??= []).push(r);
    console.log(`${name.padEnd(11)} ${String(size).padStart(4)} B: ${r.packetsPerS} pkt/s, ${r.mbitPerS} Mbit/s, lost ${r.lostPct}%, rtt p50 ${r.rttP50Ms} ms p99 ${r.rttP99Ms} ms, relay cpu ${r.relayCpuPerS}/s (${r.relayCpuUsPerPacket} us/pkt), clients cpu ${r.clientCpuPerS}/s, rss ${r.relayRssMiB} MiB`);
  };
  try {
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      for (const size of SIZES) {
        // Rotating order inside a round: a load spike on the shared machine does not always hit the same system.
        const order = ['weft', 'coturn-tcp', 'weft-udp', 'coturn-udp'];
        for (const name of round_ % 2 ? order.reverse() : order) {
          if (name === 'weft') record(name, size, await measure(weft.pair, size));
          else if (name === 'weft-udp') record(name, size, await measure(weft.udpPair, size));
          else if (turn) {
            const pair = await turnPair(turn, name === 'coturn-tcp' ? 'tcp' : 'udp');
            try {
              record(name, size, await measure(pair, size));
            } finally {
              await pair.close();
            }
          }
        }
      }
    }
  } finally {
    await weft.stop();
    await turn?.stop();
  }

  const best = (name: string, size: number): Result | undefined => {
    const rs = runs[name]?.[size];
    if (!rs?.length) return undefined;
    // The median round by packets/s stands for the system (a noisy round neither flatters nor hurts it).
    return [...rs].sort((x, y) => x.packetsPerS - y.packetsPerS)[Math.floor((rs.length - 1) / 2)];
  };
  // Per round, Weft over coturn for the same transport: the two measured minutes apart at most,
  // so the shared machine's load at that moment is in both (a median of medians is not paired).
  const paired = (a: string, b: string, size: number) => {
    const xs = runs[a]?.[size] ?? [];
    const ys = runs[b]?.[size] ?? [];
    const rs = xs.slice(0, ys.length).map((x, i) => x.packetsPerS / ys[i]!.packetsPerS).sort((p, q) => p - q);
    if (!rs.length) return null;
    return { median: round(rs[Math.floor((rs.length - 1) / 2)]!, 2), min: round(rs[0]!, 2), max: round(rs.at(-1)!, 2), rounds: rs.length };
  };
  const summary: Record<string, unknown> = {};
  for (const size of SIZES) {
    const w = best('weft', size);
    const wu = best('weft-udp', size);
    const t = best('coturn-tcp', size);
    const u = best('coturn-udp', size);
    summary[`${size}B`] = {
      weft: w, weftUdp: wu ?? null, coturnTcp: t ?? null, coturnUdp: u ?? null,
      ratios: {
        packetsPerSWeftUdpOverCoturnUdp: wu && u ? round(wu.packetsPerS / u.packetsPerS, 2) : null,
        cpuPerPacketWeftUdpOverCoturnUdp: wu && u ? round(wu.relayCpuUsPerPacket / u.relayCpuUsPerPacket, 2) : null,
        packetsPerSWeftOverCoturnTcp: w && t ? round(w.packetsPerS / t.packetsPerS, 2) : null,
        packetsPerSWeftOverCoturnUdp: w && u ? round(w.packetsPerS / u.packetsPerS, 2) : null,
        rttP50WeftOverCoturnTcp: w && t ? round(w.rttP50Ms / t.rttP50Ms, 2) : null,
        cpuPerPacketWeftOverCoturnTcp: w && t ? round(w.relayCpuUsPerPacket / t.relayCpuUsPerPacket, 2) : null,
        cpuPerPacketWeftOverCoturnUdp: w && u ? round(w.relayCpuUsPerPacket / u.relayCpuUsPerPacket, 2) : null,
      },
      pairedPacketsPerS: {
        what: 'packets/s per round, Weft / coturn on the same transport (rounds back to back), the verdict: target >= 1.0',
        weftOverCoturnTcp: paired('weft', 'coturn-tcp', size),
        weftUdpOverCoturnUdp: paired('weft-udp', 'coturn-udp', size),
      },
    };
  }
  const out = {
    benchmark: 'relay',
    date: new Date().toISOString(),
    loadAvg1mAtStart,
    /** machine.loadAvg1m is the load at the end. */
    machine: machine({ coturn: ['turnserver', ['--version']] }),
    workload: { sizes: SIZES, window: WINDOW, throughputSeconds: THROUGHPUT_MS / 1000, latencySeconds: LATENCY_MS / 1000, rounds: ROUNDS,
      note: `A keeps WINDOW packets in flight to B, B echoes each (over UDP, a packet not echoed within ${LOST_AFTER_MS} ms or 4 smoothed round trips, whichever is longer, counts as lost and its slot sends another); packets/s counts relayed packets both ways; RTT is A->relay->B->relay->A with one packet in flight. Weft: weft-server (embedded PGlite, bundle) with two real WebSocket relay clients (weft: @weft/relay's RelayClient, as the agent uses it, so packets sent within one event-loop turn leave as one SEND_BATCH message and the server answers in RECV_BATCHes, relay frame version 3), and the same two sessions bound over UDP on its STUN port (weft-udp); coturn: turnserver (lt-cred-mech, its default threads) with a TURN client per side (Allocate, CreatePermission, ChannelBind, ChannelData).` },
    weftServerIdleRssMiB: round(weftIdle.rss / 1024, 1),
    summary,
    rounds: runs,
  };
  writeFileSync(join(here, 'results/relay.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(summary, null, 2));
}

await main();
