/**
 * `npm run bench:join` — how fast a node joins, and what the Weft-managed tunnel costs.
 *
 * Lab: hosts server, a, b on one bridged LAN (e2e/lab). b joins once and stays. Then, ITERATIONS
 * times, a fresh node in a (new state dir, so new keys and a new registration) runs
 * `weft up --auth-key`; the clock starts when `weft up` is started and stops at the first ping reply
 * from b's tunnel address (a prober in a pings in a tight loop from before the start). The daemon
 * is already running: this times the join, not Node's start-up. Each joined node is deleted again.
 * `join.phases` says where the time went, from the timestamps in the daemon's and server's logs.
 *
 * Throughput: iperf3 TCP a -> b through the Weft tunnel and through a hand-configured wireguard-go
 * pair (same hosts, same MTU, same run), interleaved ROUNDS times; ratio = median Weft / median
 * baseline.
 *
 * Writes bench/results/join.json. The baseline half needs only wireguard-go; if the Weft half cannot
 * run, the file says why (`pending`) and the exit code is 1.
 *
 * Adaptive MTU (`adaptiveMtu`): iperf3 TCP a -> b through Weft with the agents adaptive (no --mtu:
 * the MTU the probes chose, 1420 on this 1500 LAN) against the same agents pinned at --mtu 1280,
 * same run, alternating MTU_ROUNDS times (each switch restarts both daemons on the same nodes);
 * ratio = median adaptive / median 1280.
 *
 * Env: BENCH_JOIN_ITERATIONS (default 20), BENCH_IPERF_SECONDS (8), BENCH_IPERF_ROUNDS (9): throughput swings 15-20% between runs on a shared 2-core machine, so more, longer rounds.
 * BENCH_MTU_ROUNDS (3). BENCH_JOIN_PARTS=mtu runs only the adaptive-MTU part and replaces that key
 * in the existing join.json (the join and baseline rows stay as they were measured, with their date).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, iperf3, requireBinaries, startWgPair, type Host, type IperfResult, type WgPair } from '../e2e/lab/index.js';
import { WeftAgent, WeftServer } from '../e2e/lab/weft.js';
import { joinPhases, type Phases } from './lib/join-phases.js';
import { machine } from './lib/machine.js';
import { median, percentile, round } from './lib/stats.js';

const ITERATIONS = Number(process.env.BENCH_JOIN_ITERATIONS ?? 20);
const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_IPERF_ROUNDS ?? 9);
const MTU_ROUNDS = Number(process.env.BENCH_MTU_ROUNDS ?? 3);
const ONLY_MTU = process.env.BENCH_JOIN_PARTS === 'mtu';
/** The agent's default; the baseline uses the same so the ratio compares like with like. */
const MTU = 1280;
const JOIN_TARGET_MS = 1000;
const RATIO_TARGET = 0.95;
/** Per join: give up on an iteration after this long without a reply. */
const JOIN_TIMEOUT_MS = 30_000;

const OUT = fileURLToPath(new URL('./results/join.json', import.meta.url));

interface JoinSample {
  /** `weft up` started -> first ping reply from b through the tunnel. */
  firstReplyMs: number;
  /** `weft up` started -> `weft up` exited 0. */
  upReturnedMs: number;
  /** `weft up` started -> each step in the daemon's and the server's logs (lib/join-phases.ts). */
  phases: Phases;
}

const log = (msg: string) => process.stderr.write(`[bench:join] ${msg}\n`);

/**
 * Pings `target` from `host` in a tight loop until the first reply; prints REPLY then. Bounded:
 * at most JOIN_TIMEOUT_MS worth of attempts. Started before the clock so its own start-up is free.
 */
function startProber(host: Host, target: string, i: number) {
  const attempts = Math.ceil(JOIN_TIMEOUT_MS / 10);
  const script = `echo PROBING; i=0; while [ $i -lt ${attempts} ]; do ping -n -q -c 1 -W 0.2 ${target} >/dev/null 2>&1 && { echo REPLY; exit 0; }; sleep 0.005; i=$((i+1)); done; echo GAVE_UP; exit 1`;
  return host.spawn('sh', ['-c', script], { logName: `prober-${i}` });
}

async function joinOnce(server: WeftServer, a: Host, authKey: string, target: string, i: number): Promise<JoinSample> {
  const agent = await WeftAgent.start(a, { stateDir: a.tmpPath(`join-${i}`), mtu: MTU });
  try {
    const prober = startProber(a, target, i);
    await prober.waitForLine(/PROBING/, 5000);
    const serverFrom = server.process.lines().length;
    const t0Epoch = Date.now();
    const t0 = performance.now();
    const reply = prober.waitForLine(/REPLY|GAVE_UP/, JOIN_TIMEOUT_MS).then((m) => {
      if (m.line !== 'REPLY') throw new Error(`join ${i}: no ping reply from ${target} within ${JOIN_TIMEOUT_MS} ms`);
      return performance.now() - t0;
    });
    reply.catch(() => {}); // awaited below; do not let it go unhandled while `up` runs
    const up = await agent.up({ server: server.url, authKey, hostname: `join-${i}`, timeoutMs: JOIN_TIMEOUT_MS });
    const upReturnedMs = performance.now() - t0;
    if (up.code !== 0) throw new Error(`join ${i}: weft up exited ${up.code}: ${up.stderr.trim() || up.stdout.trim()}`);
    const firstReplyMs = await reply;
    await prober.kill({ graceMs: 500 });
    const phases = { ...joinPhases(t0Epoch, agent.process.lines(), server.process.lines().slice(serverFrom)), firstReply: firstReplyMs };
    const id = up.status?.self?.id ?? (await agent.status()).self?.id;
    if (id !== undefined) await server.api.deleteNode(id);
    return { firstReplyMs, upReturnedMs, phases };
  } finally {
    await agent.stop();
  }
}

/** Median ms from the `weft up` start to each logged step, and the medians of the steps between them. */
function phaseSummary(samples: JoinSample[]) {
  const at = (name: string) => samples.map((s) => s.phases[name]).filter((x): x is number => x !== undefined);
  const between = (from: string, to: string) => samples
    .map((s) => (s.phases[from] !== undefined && s.phases[to] !== undefined ? s.phases[to]! - s.phases[from]! : undefined))
    .filter((x): x is number => x !== undefined);
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.phases)))];
  names.sort((x, y) => median(at(x)) - median(at(y)));
  return {
    what: 'median ms after `weft up` started at which the daemon (a) and the server logged each step',
    medianAtMs: Object.fromEntries(names.map((n) => [n, round(median(at(n)))])),
    stepsMedianMs: Object.fromEntries(([
      ['cli start-up + local request (up requested)', 'start', 'upRequested'],
      ['agent: keys, token, request out', 'upRequested', 'serverRegisterIn'],
      ['server: POST /agent/v1/register', 'serverRegisterIn', 'serverRegisterDone'],
      ['agent: registered -> WebSocket upgrade at the server', 'registered', 'serverUpgradeIn'],
      ['server: upgrade -> first netmap at the agent', 'serverUpgradeIn', 'netmapReceived'],
      ['agent: netmap -> peers in WireGuard', 'netmapReceived', 'peersApplied'],
      ['peers in WireGuard -> first ping reply (handshake, prober)', 'peersApplied', 'firstReply'],
    ] as const).map(([label, from, to]) => [label, round(median(from === 'start' ? at(to) : between(from, to)))])),
  };
}

async function throughput(a: Host, b: Host, pair: WgPair, weftTarget: string | null) {
  const baseline: IperfResult[] = [];
  const weft: IperfResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    baseline.push(await iperf3(a, b, pair.b.tunnelIp, { seconds: IPERF_SECONDS }));
    log(`round ${r + 1}/${ROUNDS} baseline ${(baseline.at(-1)!.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
    if (weftTarget) {
      weft.push(await iperf3(a, b, weftTarget, { seconds: IPERF_SECONDS }));
      log(`round ${r + 1}/${ROUNDS} weft     ${(weft.at(-1)!.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
    }
  }
  const summary = (runs: IperfResult[]) => ({
    mbitPerSecond: runs.map((x) => round(x.bitsPerSecond / 1e6)),
    medianMbitPerSecond: round(median(runs.map((x) => x.bitsPerSecond)) / 1e6),
    retransmits: runs.map((x) => x.retransmits),
  });
  const ratio = weft.length > 0 ? median(weft.map((x) => x.bitsPerSecond)) / median(baseline.map((x) => x.bitsPerSecond)) : null;
  return {
    tool: 'iperf3 TCP, one stream, a -> b, first second omitted (slow start)',
    secondsPerRun: IPERF_SECONDS,
    rounds: ROUNDS,
    mtu: MTU,
    baseline: { what: 'hand-configured wireguard-go pair (wg set, ip addr)', ...summary(baseline) },
    weft: weft.length > 0 ? { what: 'Weft-managed tunnel (agent daemon, wireguard-go backend)', ...summary(weft) } : null,
    ratio: ratio === null ? null : round(ratio, 3),
    ratioTarget: RATIO_TARGET,
    meetsTarget: ratio === null ? null : ratio >= RATIO_TARGET,
  };
}

/**
 * Weft at the MTU adaptive MTU chose against Weft pinned at 1280: both daemons restarted on the
 * same nodes (state dirs) for each switch, alternating, so the two halves share the machine's
 * state of the moment.
 */
async function mtuThroughput(a: Host, b: Host, server: WeftServer, authKey: string) {
  const dirs = { a: a.tmpPath('mtu-node-a'), b: b.tmpPath('mtu-node-b') };
  let agents: WeftAgent[] = [];
  const start = async (mtu: number | undefined) => {
    for (const ag of agents) await ag.stop();
    agents = [];
    for (const [h, host] of [['a', a], ['b', b]] as const) {
      const ag = await WeftAgent.start(host, { stateDir: dirs[h], ...(mtu !== undefined && { mtu }) });
      agents.push(ag);
      await ag.upOk({ server: server.url, authKey, hostname: `mtu-${h}` });
    }
    const target = (await agents[1]!.status()).self!.ipv4.split('/')[0]!;
    // Until both sides are at their MTU and see each other direct (adaptive: the probes are done).
    const want = mtu ?? 1420;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await Promise.all(agents.map((x) => x.status()));
      if (st.every((x) => x.interface.mtu === want && x.peers.some((p) => p.path === 'direct' && (mtu !== undefined || p.pathMtu === want)))) break;
      if (Date.now() > deadline) throw new Error(`agents did not settle at MTU ${want}: ${st.map((x) => x.interface.mtu).join(', ')}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    return target;
  };
  const adaptive: IperfResult[] = [];
  const fixed: IperfResult[] = [];
  let chosen = 0;
  try {
    for (let r = 0; r < MTU_ROUNDS; r++) {
      const t1 = await start(undefined);
      chosen = (await agents[0]!.status()).interface.mtu;
      adaptive.push(await iperf3(a, b, t1, { seconds: IPERF_SECONDS }));
      log(`mtu round ${r + 1}/${MTU_ROUNDS} adaptive (${chosen}) ${(adaptive.at(-1)!.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
      const t2 = await start(1280);
      fixed.push(await iperf3(a, b, t2, { seconds: IPERF_SECONDS }));
      log(`mtu round ${r + 1}/${MTU_ROUNDS} fixed 1280 ${(fixed.at(-1)!.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
    }
  } finally {
    for (const ag of agents) await ag.stop();
  }
  const summary = (runs: IperfResult[]) => ({
    mbitPerSecond: runs.map((x) => round(x.bitsPerSecond / 1e6)),
    medianMbitPerSecond: round(median(runs.map((x) => x.bitsPerSecond)) / 1e6),
    retransmits: runs.map((x) => x.retransmits),
  });
  return {
    what: 'iperf3 TCP a -> b through Weft: agents adaptive (MTU from the path probes) vs the same agents pinned at --mtu 1280, alternating, same run',
    secondsPerRun: IPERF_SECONDS,
    rounds: MTU_ROUNDS,
    underlayMtu: 1500,
    chosenMtu: chosen,
    adaptive: summary(adaptive),
    fixed1280: summary(fixed),
    ratio: round(median(adaptive.map((x) => x.bitsPerSecond)) / median(fixed.map((x) => x.bitsPerSecond)), 3),
  };
}

/** BENCH_JOIN_PARTS=mtu: the adaptive-MTU rows alone, written into the existing join.json. */
async function mainMtuOnly(): Promise<number> {
  requireBinaries(['iperf3']);
  const started = new Date();
  const loadAtStart = machine().loadAvg1m;
  const lab = await Lab.create({ name: 'bench', hosts: ['server', 'a', 'b'] });
  try {
    const server = await WeftServer.start(lab);
    const authKey = await server.authKey('bench');
    const result = await mtuThroughput(lab.hosts.a, lab.hosts.b, server, authKey);
    const prev = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as Record<string, unknown>) : { benchmark: 'join' };
    prev.adaptiveMtu = { date: started.toISOString(), loadAvg1mAtStart: loadAtStart, machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], iperf3: ['iperf3', ['--version']] }), ...result };
    writeFileSync(OUT, JSON.stringify(prev, null, 2) + '\n');
    log(`wrote adaptiveMtu into ${OUT}`);
    return 0;
  } catch (err) {
    lab.printLogTails(25);
    throw err;
  } finally {
    await lab.cleanup();
  }
}

async function main(): Promise<number> {
  if (ONLY_MTU) return mainMtuOnly();
  requireBinaries(['iperf3']);
  const started = new Date();
  const loadAtStart = machine().loadAvg1m;
  const pending: string[] = [];
  const lab = await Lab.create({ name: 'bench', hosts: ['server', 'a', 'b'] });
  const { a, b } = lab.hosts;
  let joinResult: Record<string, unknown> | null = null;
  let tput: Awaited<ReturnType<typeof throughput>> | null = null;
  let mtuResult: Awaited<ReturnType<typeof mtuThroughput>> | null = null;
  let mtuServer: { server: WeftServer; authKey: string } | null = null;
  let failed = false;
  try {
    const pair = await startWgPair(a, b, { mtu: MTU });

    let weftTarget: string | null = null;
    try {
      const server = await WeftServer.start(lab);
      const authKey = await server.authKey('bench');
      mtuServer = { server, authKey };
      const bAgent = await WeftAgent.start(b, { mtu: MTU });
      const bStatus = await bAgent.upOk({ server: server.url, authKey, hostname: 'bench-b' });
      const target = bStatus.self?.ipv4 ?? (await bAgent.tunnelIp());
      if (!target) throw new Error('b joined but reports no tunnel IPv4');

      // What a bare `weft` invocation costs (Node + tsx start-up): part of every join below.
      const startup: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const r = await bAgent.cli(['version']);
        if (r.code !== 0) throw new Error(`weft version exited ${r.code}: ${r.stderr}`);
        startup.push(performance.now() - t);
      }

      const samples: JoinSample[] = [];
      for (let i = 0; i < ITERATIONS; i++) {
        const s = await joinOnce(server, a, authKey, target, i);
        samples.push(s);
        log(`join ${i + 1}/${ITERATIONS}: first reply ${s.firstReplyMs.toFixed(0)} ms, weft up returned ${s.upReturnedMs.toFixed(0)} ms`);
      }
      const first = samples.map((s) => s.firstReplyMs);
      const upRet = samples.map((s) => s.upReturnedMs);
      joinResult = {
        what: '`weft up --auth-key` started -> first ping reply through the tunnel (daemon already running, fresh node each time)',
        iterations: ITERATIONS,
        samplesMs: first.map((x) => round(x)),
        medianMs: round(median(first)),
        p95Ms: round(percentile(first, 95)),
        upReturned: { medianMs: round(median(upRet)), p95Ms: round(percentile(upRet, 95)) },
        cliStartup: { what: '`weft version` run to exit: the CLI start-up included in every join (bundle from dist/ when current, else tsx)', medianMs: round(median(startup)) },
        phases: phaseSummary(samples),
        targetMs: JOIN_TARGET_MS,
        meetsTarget: median(first) < JOIN_TARGET_MS,
      };

      // The node measured for throughput stays joined.
      const aAgent = await WeftAgent.start(a, { mtu: MTU });
      await aAgent.upOk({ server: server.url, authKey, hostname: 'bench-a' });
      weftTarget = target;
    } catch (err) {
      failed = true;
      const msg = err instanceof Error ? err.message : String(err);
      const lines = msg.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{') && !l.startsWith('#') && !/^\s+at /.test(l));
      pending.push(`Weft half did not run: ${lines.slice(0, 3).join(' | ')}`);
      log(`Weft half failed, measuring the baseline only:\n${msg}`);
      lab.printLogTails(25);
    }
    tput = await throughput(a, b, pair, weftTarget);
    if (mtuServer && weftTarget) {
      try {
        mtuResult = await mtuThroughput(a, b, mtuServer.server, mtuServer.authKey);
      } catch (err) {
        failed = true;
        pending.push(`adaptive MTU part did not run: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  } catch (err) {
    failed = true;
    lab.printLogTails(25);
    throw err;
  } finally {
    const out = {
      benchmark: 'join',
      date: started.toISOString(),
      complete: !failed,
      pending,
      loadAvg1mAtStart: loadAtStart,
      machine: machine({ 'wireguard-go': ['wireguard-go', ['--version']], iperf3: ['iperf3', ['--version']] }),
      lab: { hosts: ['server', 'a', 'b'], link: 'veth pairs on one Linux bridge, each host its own network namespace', wgBackend: 'userspace (wireguard-go)' },
      join: joinResult ?? { pending: 'needs the Weft server and agent (see pending)' },
      throughput: tput,
      adaptiveMtu: mtuResult ?? { pending: 'needs the Weft half (see pending)' },
    };
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');
    log(`wrote ${OUT}`);
    await lab.cleanup();
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench:join] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
