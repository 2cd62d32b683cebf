/**
 * `npm run bench:control`: one real `weft-server` (embedded PGlite, the default) against a fleet of
 * simulated agents in a separate process, at 1,000 and 10,000 nodes (override: BENCH_SIZES=500,2000).
 * BENCH_BACKENDS=pglite,postgres picks the storage (Postgres: a throwaway local cluster). A run of
 * some sizes or backends replaces those rows in the results file and keeps the others.
 * Measures: time to connect all; full-netmap latency; delta propagation p50/p99 from a REST node
 * delete to the last affected agent receiving the removal; server RSS per connected node, read
 * after the server has idled for BENCH_SETTLE_MS (30 s) and also 3 s after the connect storm.
 * BENCH_POLICY=teams runs under the realistic access policy of bench/lib/control-policy.ts (every
 * node sees 99 peers; stored with PUT /api/v1/policy) and also times
 * a one-rule policy change to the last affected agent, checking every affected agent's view and
 * that no other agent was sent anything. Rows are kept per (nodes, backend, policy).
 * Also per phase: SQL statements per registration and per delete (`weft_db_statements_total`, round
 * trips, BEGIN and COMMIT included; null for a server without it) and the server's event-loop delay
 * during the delete phase (prom-client's monitorEventLoopDelay gauges, reset by each scrape).
 * BENCH_SERVER_BIN runs another checkout's server (e.g. main's) for a same-run baseline.
 * The fleet asks for compressed netmaps (NETMAP_ENCODING_HEADER) as the real agent does, so netmap
 * bytes are what went on the wire; BENCH_DEFLATE=0 makes it a fleet of agents that predate them.
 * Writes bench/results/control.json with the machine noted.
 */
import { spawn } from 'node:child_process';
import { adminCli, forkFleet } from './lib/server-process.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir, release } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, SERVER_BIN } from '../apps/server/test/support/process.js';
import { startPostgres } from '../test-support/postgres.js';
import { now } from '../test-support/sim-agent.js';
import { compile, parsePolicy, prepareNodes, type Compiled } from '../packages/policy/src/index.js';
import { teamPlan, type TeamPlan } from './lib/control-policy.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
/** "pglite" (the embedded default), "postgres" (a throwaway local cluster), or both. */
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',') as ('pglite' | 'postgres')[];
const DELETES = Number(process.env.BENCH_DELETES ?? 40);
/** "teams": the realistic policy (bench/lib/control-policy.ts); absent = none (every node sees every node). */
const POLICY = process.env.BENCH_POLICY === 'teams' ? 'teams' : 'none';
const POLICY_ROUNDS = Number(process.env.BENCH_POLICY_ROUNDS ?? 4);
/**
 * BENCH_STORM=1: after the first connect, restart the server and time every agent reconnecting at
 * once with the agent's backoff, as cold agents (no revision sent: a full netmap each); then
 * restart again and time it with every agent sending the revision it holds (a resume each, unless
 * the list changed). BENCH_STORM_RESUME=0 leaves the second storm out, BENCH_STORM_COLD=0 the
 * first (the resuming agents then hold the revision of their connect's netmap).
 */
const STORM = process.env.BENCH_STORM === '1';
const STORM_COLD = STORM && process.env.BENCH_STORM_COLD !== '0';
const STORM_RESUME = STORM && process.env.BENCH_STORM_RESUME !== '0';
/** How long the server idles before an RSS reading counts as settled. */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Extra Node flags for the server process, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const here = import.meta.dirname;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;
const round1 = round;
/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 1/100 s). */
const cpuSec = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

/** The send counters from the server's /metrics (metrics.ts SendStats). */
/** The server to measure; another checkout's bin/weft-server.mjs for a baseline. */
const SERVER = process.env.BENCH_SERVER_BIN ?? SERVER_BIN;

/** One scrape as name -> value (unlabelled series only). */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  return new Map([...text.matchAll(/^([a-z_0-9]+) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Statements per write between two scrapes; null for a server that does not count them. */
function statementsPer(a: Map<string, number>, b: Map<string, number>, writes: number): number | null {
  const [x, y] = [a.get('weft_db_statements_total'), b.get('weft_db_statements_total')];
  return x === undefined || y === undefined ? null : round((y - x) / writes);
}

/**
 * Linux: handshakes the kernel dropped because a listening socket's accept queue was full
 * (TcpExtListenOverflows, machine-wide; only this bench listens here meanwhile). null elsewhere.
 */
function listenOverflows(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const head = lines[i]!.split(' ');
      if (head[0] !== 'TcpExt:') continue;
      return Number(lines[i + 1]!.split(' ')[head.indexOf('ListenOverflows')]);
    }
  } catch {
    // not Linux
  }
  return null;
}

async function sentMetrics(port: number): Promise<{ netmapBytes: number; resumeBytes: number; deltaBytes: number; netmapsFlushed: number; lastFlushedAt: number; eventLoopP99Ms: number; eventLoopMaxMs: number }> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    netmapBytes: read('weft_netmap_bytes_sent_total'), resumeBytes: read('weft_resume_bytes_sent_total'), deltaBytes: read('weft_delta_bytes_sent_total'),
    netmapsFlushed: read('weft_netmaps_flushed_total'), lastFlushedAt: read('weft_last_netmap_flushed_timestamp_seconds') * 1000,
    // Since the previous scrape (each scrape resets the histogram).
    eventLoopP99Ms: round(read('nodejs_eventloop_lag_p99_seconds') * 1000), eventLoopMaxMs: round(read('nodejs_eventloop_lag_max_seconds') * 1000),
  };
}

async function runOnce(n: number, backend: 'pglite' | 'postgres') {
  const loadAtStart = round(loadavg()[0]!);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const metricsPort = await freePort();
  const pg = backend === 'postgres' ? await startPostgres() : null;
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-')); // after Postgres: a failed start leaves no dir behind
  const plan: TeamPlan | null = POLICY === 'teams' ? teamPlan(n) : null;
  let serverErr = '';
  const startServer = () => {
    const child = spawn(process.execPath, [...SERVER_NODE_ARGS, SERVER, 'serve', '--listen', `127.0.0.1:${port}`, '--stun-listen', 'off', '--metrics-listen', `127.0.0.1:${metricsPort}`, '--data-dir', dataDir, '--log-level', 'warn'], {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: { ...process.env, ...(pg ? { WEFT_DATABASE_URL: pg.url } : {}) },
    });
    child.stderr!.on('data', (d) => (serverErr += d));
    // A server that dies mid-run would leave the fleet retrying for minutes: say why, and stop.
    child.once('exit', (code, signal) => {
      if (stopping.has(child)) return;
      console.error(`[${n}] the server exited during the run (${signal ?? `exit code ${code}`}); the end of its stderr:\n${serverErr.slice(-8000)}`);
      fleet.kill('SIGKILL');
      void pg?.stop().finally(() => process.exit(1));
    });
    return child;
  };
  /** Servers this run stops itself (a restart, the end). */
  const stopping = new Set<ReturnType<typeof spawn>>();
  let server = startServer();
  const ready = async () => {
    for (let t = 0; ; t++) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) return;
      if (t > 900 || server.exitCode !== null) throw new Error(`server did not start:\n${serverErr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const { fleet, ask } = forkFleet(join(here, 'control-fleet.ts'), 8192);
  try {
    await ask(null); // ready
    await ready();
    const admin = (args: string[]) => adminCli(SERVER, dataDir, args);
    const apiKey = (await admin(['apikeys', 'create', '--scopes', 'admin'])).key as string;
    await admin(['users', 'create', 'bench']);
    const authKey = (await admin(['authkeys', 'create', '--user', 'bench', '--reusable', '--expiration', '0'])).key as string;

    const rest = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    /** The stored policy (PUT /api/v1/policy with If-Match on the version in force); returns the new version. */
    let policyVersion = 0;
    const putPolicy = async (text: string): Promise<number> => {
      const res = await fetch(`${url}/api/v1/policy`, {
        method: 'PUT', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'if-match': `"${policyVersion}"` }, body: JSON.stringify({ text }),
      });
      if (!res.ok) throw new Error(`PUT /api/v1/policy: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { version: number }).version;
    };
    let authKeys: string[] | undefined;
    if (plan) {
      const keyFor = new Map<string, string>();
      for (const u of plan.users) {
        await rest('POST', '/api/v1/users', { name: u });
        keyFor.set(u, (await rest('POST', '/api/v1/authkeys', { user: u, reusable: true, expiresIn: 0 })).key);
      }
      // The policy first: it defines the tags (tagOwners) the tagged servers' keys carry.
      policyVersion = await putPolicy(plan.policy);
      for (let k = 0; k < plan.teams; k++) keyFor.set(`tag:svc-${k}`, (await rest('POST', '/api/v1/authkeys', { user: `t${k}u0`, reusable: true, expiresIn: 0, tags: [`tag:svc-${k}`] })).key);
      authKeys = Array.from({ length: n }, (_, i) => {
        const k = plan.keyOf(i);
        return keyFor.get(k.tags[0] ?? k.user)!;
      });
    }
    console.log(`[${n}] registering ${n} nodes${plan ? ` (policy: ${plan.teams} teams)` : ''}...`);
    const cpu0 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
    const regM0 = await scrape(metricsPort);
    const reg = await ask({ cmd: 'register', url, authKey, authKeys, count: n, concurrency: 32 });
    const statementsPerRegistration = statementsPer(regM0, await scrape(metricsPort), n);
    const cpu1 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
    // RSS right after a storm holds garbage V8 has not collected yet; idle for SETTLE_MS, it does.
    const rssAfterRegister = rssKb(server.pid!);
    await sleep(SETTLE_MS);
    const rssIdle = rssKb(server.pid!);
    console.log(`[${n}] registered in ${round(reg.ms / 1000)} s; connecting...`);
    const cpu2 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
    const conn = await ask({ cmd: 'connect', concurrency: 64, parse: !!plan });
    const cpu3 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
    console.log(`[${n}] ${conn.open} connected in ${round(conn.ms / 1000)} s (netmap ${round(conn.netmapBytes / 1024)} KiB); CPU: server ${round(cpu3.server - cpu2.server)} s, fleet ${round(cpu3.fleet - cpu2.fleet)} s`);
    await sleep(3000); // the last online patches go out
    const rssAfterConnect = rssKb(server.pid!);
    await sleep(SETTLE_MS);
    const rssConnected = rssKb(server.pid!);
    console.log(`[${n}] server RSS ${round(rssAfterConnect / 1024)} MiB 3 s after the last connect, ${round(rssConnected / 1024)} MiB after ${SETTLE_MS / 1000} s more`);

    // The reconnect storm: the server restarts and every agent comes back at once, each with the
    // agent's own reconnect backoff (full jitter), until it has its netmap (or resume) again.
    const stormAfterRestart = async (resume: boolean) => {
      stopping.add(server);
      server.kill('SIGTERM');
      if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
      await ask({ cmd: 'disconnect', drop: [] });
      server = startServer();
      await ready();
      const s0 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
      const m0 = await sentMetrics(metricsPort);
      const overflows0 = listenOverflows();
      const stormStart = Date.now();
      // Does the server still answer meanwhile? /healthz every 250 ms from this process (not the fleet's).
      const healthMs: number[] = [];
      let storming = true;
      const probing = (async () => {
        while (storming) {
          const t = now();
          await fetch(`${url}/healthz`).then((res) => res.arrayBuffer(), () => undefined);
          healthMs.push(now() - t);
          await sleep(250);
        }
      })();
      const r = await ask({ cmd: 'storm', parse: !!plan, resume, timeoutMs: 600_000 });
      storming = false;
      await probing;
      const s1 = { server: cpuSec(server.pid!), fleet: cpuSec(fleet.pid!) };
      const m1 = await sentMetrics(metricsPort);
      const overflows1 = listenOverflows();
      const acceptQueueOverflows = overflows0 === null || overflows1 === null ? null : overflows1 - overflows0;
      // The server's own side: from the storm's start until it had handed the last netmap's last
      // byte to the kernel (its metric), apart from the fleet reading and parsing. A fleet that
      // reads slowly fills the socket buffers and holds this back too, so it is an upper bound.
      const serverSideSeconds = m1.lastFlushedAt > stormStart ? round((m1.lastFlushedAt - stormStart) / 1000) : null;
      const bytesSent = { netmaps: m1.netmapBytes - m0.netmapBytes, resumes: m1.resumeBytes - m0.resumeBytes, deltas: m1.deltaBytes - m0.deltaBytes };
      const cpuServer = s1.server - s0.server;
      const first = bytesSent.netmaps + bytesSent.resumes;
      // Patches still landing after the last agent was back (presence writes that queued behind
      // the storm): counted apart, over the next 3 s.
      await sleep(3000);
      const m2 = await sentMetrics(metricsPort);
      const deltaBytesInNext3s = m2.deltaBytes - m1.deltaBytes;
      console.log(`[${n}] reconnect storm after a server restart (${resume ? 'resuming' : 'cold'} agents): ${r.connected}/${r.agents} back in ${round(r.ms / 1000)} s, ${r.resumed} resumed (${r.attempts} attempts; server side ${serverSideSeconds} s); ${round(bytesSent.netmaps / 2 ** 20)} MiB netmaps + ${round(bytesSent.resumes / 2 ** 20)} MiB resumes + ${round(bytesSent.deltas / 2 ** 20)} MiB deltas (+ ${round(deltaBytesInNext3s / 2 ** 20)} MiB in the next 3 s); CPU: server ${round(cpuServer)} s, fleet ${round(s1.fleet - s0.fleet)} s; event-loop delay p99 ${m1.eventLoopP99Ms} ms, max ${m1.eventLoopMaxMs} ms; accept-queue overflows ${acceptQueueOverflows}; /healthz answered in p50 ${round(pct(healthMs, 50))} ms, max ${round(Math.max(...healthMs))} ms`);
      return {
        agentsSentRevision: resume,
        agents: r.agents, connected: r.connected, resumed: r.resumed, seconds: round(r.ms / 1000), attempts: r.attempts,
        netmapAfterMs: { p50: round(pct(r.netmapAt, 50)), p99: round(pct(r.netmapAt, 99)) },
        cpuSeconds: { server: round(cpuServer), fleet: round(s1.fleet - s0.fleet) },
        serverSideSeconds,
        netmapsFlushed: m1.netmapsFlushed - m0.netmapsFlushed,
        bytesSent,
        deltaBytesInNext3s,
        /** The server's event-loop delay over the storm, and handshakes the kernel dropped with its accept queue full. */
        eventLoopDelayMs: { p99: m1.eventLoopP99Ms, max: m1.eventLoopMaxMs },
        acceptQueueOverflows,
        /** /healthz asked every 250 ms through the storm: how long the server took to answer. */
        healthzMs: { probes: healthMs.length, p50: round(pct(healthMs, 50)), p99: round(pct(healthMs, 99)), max: round(Math.max(...healthMs)) },
        /** Server CPU per agent back (ms) and per byte of its first message, netmap or resume (ns). */
        serverCpuPerNetmapMs: r.connected ? round((cpuServer * 1000) / r.connected) : null,
        serverCpuPerNetmapByteNs: first ? round((cpuServer * 1e9) / first) : null,
        loadAvg1m: round(loadavg()[0]!),
      };
    };
    const storm = STORM_COLD ? await stormAfterRestart(false) : undefined;
    const stormResuming = STORM_RESUME ? await stormAfterRestart(true) : undefined;

    const nodes = (await rest('GET', '/api/v1/nodes')) as { items: ListedNode[] };
    const victims = nodes.items.slice(-DELETES).map((x) => x.id);
    const views = plan ? compiledViews(plan.policy, nodes.items) : null;
    const fromRequest: number[] = [];
    const fromReturn: number[] = [];
    /** The DELETE request alone: sent to response read (the write committed; nobody told yet, or some). */
    const requestMs: number[] = [];
    let missed = 0;
    let unaffectedHeard = 0;
    const deleted: number[] = [];
    const delM0 = await scrape(metricsPort); // also resets the event-loop delay histogram
    for (const id of victims) {
      const affected = views ? [...views.peers].filter(([viewer, peers]) => peers.includes(id) && !deleted.includes(viewer)).map(([viewer]) => viewer) : undefined;
      const tracking = ask({ cmd: 'track-removal', nodeId: id, deleted, timeoutMs: 15_000, affected });
      deleted.push(id);
      await new Promise((r) => setTimeout(r, 50)); // tracker armed
      const t0 = now();
      const res = await fetch(`${url}/api/v1/nodes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
      const t1 = now();
      if (res.status !== 200) throw new Error(`delete ${id}: ${res.status}`);
      const r = await tracking;
      missed += r.affected - r.received;
      unaffectedHeard += r.unaffectedThatHeard ?? 0;
      if (r.missing.length) console.log(`[${n}] delete ${id}: ${r.affected - r.received} agents missed it, e.g. ${JSON.stringify(r.missing)}`);
      requestMs.push(t1 - t0);
      fromRequest.push(r.lastAt - t0);
      fromReturn.push(r.lastAt - t1);
    }
    const delM1 = await scrape(metricsPort);
    const eventLoop = (q: string) => round((delM1.get(`nodejs_eventloop_lag_${q}_seconds`) ?? NaN) * 1000);
    const eventLoopDelayMs = { p50: eventLoop('p50'), p99: eventLoop('p99'), max: eventLoop('max') };
    const statementsPerDelete = statementsPer(delM0, delM1, victims.length);
    console.log(`[${n}] delete phase: ${statementsPerDelete} statements per delete (presence and sweeps included), event-loop delay ${JSON.stringify(eventLoopDelayMs)} ms`);
    console.log(`[${n}] DELETE /api/v1/nodes/:id request p50 ${round(pct(requestMs, 50))} ms, p99 ${round(pct(requestMs, 99))} ms; last agent told p99 ${round(pct(fromRequest, 99))} ms after the request`);
    // A one-rule policy change (added, then removed, alternately), to the last affected agent.
    let policyChange: Record<string, unknown> | undefined;
    if (plan) {
      const left = ((await rest('GET', '/api/v1/nodes')) as { items: ListedNode[] }).items;
      let current = plan.policy;
      const rounds: { affected: number; ms: number; putMs: number; firstMs: number; missed: number; wrongView: number; unaffectedThatHeard: number }[] = [];
      for (let round = 0; round < POLICY_ROUNDS; round++) {
        const next = current === plan.policy ? plan.policyPlusOneRule : plan.policy;
        const before = compiledViews(current, left);
        const after = compiledViews(next, left);
        const expect: Record<number, number[]> = {};
        for (const [id, peers] of after.peers) if (peers.join() !== before.peers.get(id)!.join() || after.rules.get(id) !== before.rules.get(id)) expect[id] = peers;
        await ask({ cmd: 'arm' });
        const t0 = now();
        policyVersion = await putPolicy(next);
        const putMs = round1(now() - t0);
        const r = await ask({ cmd: 'track-delta', expect, timeoutMs: 15_000 });
        rounds.push({ affected: r.affected, ms: round1(r.lastAt - t0), putMs, firstMs: round1(r.firstAt - t0), missed: r.affected - r.received, wrongView: r.wrongView, unaffectedThatHeard: r.unaffectedThatHeard });
        console.log(`[${n}] policy change ${round + 1}: ${r.affected} affected nodes, PUT answered after ${putMs} ms, first delta ${round1(r.firstAt - t0)} ms, last ${round1(r.lastAt - t0)} ms after the change; wrong views ${r.wrongView}, others told ${r.unaffectedThatHeard}`);
        current = next;
      }
      policyChange = {
        change: 'one rule added or removed (group:team-0 -> tag:svc-1:443), alternately; from the PUT /api/v1/policy request to the last affected agent receiving its delta (putMs: to the PUT response; firstMs: to the first affected agent)',
        rounds,
        deliveredToAllAffectedMs: { p50: round1(pct(rounds.map((x) => x.ms), 50)), max: round1(Math.max(...rounds.map((x) => x.ms))) },
      };
    }
    const closed = (await ask({ cmd: 'closed' })).codes;
    const result = {
      nodes: n,
      backend,
      policy: POLICY === 'teams' ? `teams: ${plan!.teams} teams of ${n >= 100 ? 100 : n} nodes (10 users x 5 devices + 50 tagged servers), 99 peers per node` : 'none',
      measuredAt: new Date().toISOString(),
      agentSocketsClosedByCode: closed,
      registerAllSeconds: round(reg.ms / 1000),
      statementsPerRegistration,
      connectAllSeconds: round(conn.ms / 1000),
      // Where the time goes: CPU seconds each process used in the phase, against its wall time (a loaded machine shows as CPU well under wall x cores).
      cpuSeconds: {
        register: { wall: round(reg.ms / 1000), server: round(cpu1.server - cpu0.server), fleet: round(cpu1.fleet - cpu0.fleet) },
        connect: { wall: round(conn.ms / 1000), server: round(cpu3.server - cpu2.server), fleet: round(cpu3.fleet - cpu2.fleet) },
      },
      loadAvg1mAtConnect: round(loadavg()[0]!),
      loadAvg1m: { start: loadAtStart, end: round(loadavg()[0]!) },
      netmapBytes: conn.netmapBytes,
      netmapLatencyMs: { p50: round(pct(conn.netmapMs, 50)), p99: round(pct(conn.netmapMs, 99)) },
      deltaPropagationMs: {
        deletes: victims.length,
        fromRequestSent: { p50: round(pct(fromRequest, 50)), p99: round(pct(fromRequest, 99)), max: round(Math.max(...fromRequest)) },
        fromResponseReturned: { p50: round(pct(fromReturn, 50)), p99: round(pct(fromReturn, 99)) },
        deleteRequestMs: { p50: round(pct(requestMs, 50)), p99: round(pct(requestMs, 99)), max: round(Math.max(...requestMs)) },
        /** SQL statements (round trips) per delete over the phase, anything else the server did meanwhile included. */
        statementsPerDelete,
        /** The server's event-loop delay over the delete phase (monitorEventLoopDelay, 10 ms resolution). */
        eventLoopDelayMs,
        agentsThatMissedARemoval: missed,
        ...(plan ? { agentsNotSeeingItThatWereTold: unaffectedHeard } : {}),
      },
      ...(policyChange ? { policyChange } : {}),
      ...(storm ? { reconnectStormAfterRestart: storm } : {}),
      ...(stormResuming ? { reconnectStormAfterRestartResuming: stormResuming } : {}),
      serverRss: {
        settleSeconds: SETTLE_MS / 1000,
        afterRegisteringMiB: round(rssAfterRegister / 1024),
        idleWithNodesMiB: round(rssIdle / 1024),
        threeSecondsAfterConnectingAllMiB: round(rssAfterConnect / 1024),
        connectedMiB: round(rssConnected / 1024),
        perConnectedNodeKiB: round(rssConnected / n),
        perConnectedNodeThreeSecondsAfterConnectingAllKiB: round(rssAfterConnect / n),
        perConnectionKiB: round((rssConnected - rssIdle) / n),
      },
    };
    console.log(JSON.stringify(result, null, 2));
    return result;
  } finally {
    fleet.send({ cmd: 'exit' });
    stopping.add(server);
    server.kill('SIGTERM');
    if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
    await pg?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const measured: Awaited<ReturnType<typeof runOnce>>[] = [];
for (const backend of BACKENDS) for (const n of SIZES) measured.push(await runOnce(n, backend));
// A run of some sizes or backends replaces those rows and keeps the others from earlier runs.
const file = resolve(here, 'results/control.json');
const earlier: { nodes: number; backend: string; policy?: string }[] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).results ?? [] : [];
const policyOf = (r: { policy?: string }) => (r.policy ?? 'none').split(':')[0]!;
const results = [
  ...earlier.filter((e) => !measured.some((m) => m.nodes === e.nodes && m.backend === e.backend && policyOf(m) === policyOf(e))),
  ...measured,
].sort((a, b) => a.backend.localeCompare(b.backend) || policyOf(a).localeCompare(policyOf(b)) || a.nodes - b.nodes);
const out = {
  benchmark: 'control',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version },
  setup: 'one weft-server process (embedded PGlite, or Postgres 15 in its own processes) + one fleet process of simulated agents, loopback; every node sees every other where policy is none; rows with policy teams run under bench/lib/control-policy.ts (99 peers per node) and time a one-rule policy change (policyChange). serverRss is the weft-server process only (for PGlite that includes the database); perConnectedNodeKiB is read after the server idled settleSeconds with every agent connected.',
  targets: { propagationP99Ms: 1000, deleteRequestP99Ms: 50, stormWithNetmapSeconds: 60, rssPerNodeKiB: 50, connectAllUnderPolicySeconds: 30, policyChangeDeliveredMs: 1000 },
  results,
};
mkdirSync(resolve(here, 'results'), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log('wrote bench/results/control.json');
process.exit(0);

interface ListedNode { id: number; name: string; user: string; tags: string[]; ipv4: string; ipv6: string; expired: boolean }

/** Per node id, from a from-scratch compile: its peers (ids, ascending) and its rules as text. */
function compiledViews(policy: string, listed: ListedNode[]): { peers: Map<number, number[]>; rules: Map<number, string> } {
  const live = listed.filter((x) => !x.expired);
  const logins = [...new Set(live.map((x) => x.user))];
  const prepared = prepareNodes({
    users: logins.map((u, i) => ({ id: i + 1, name: u, login: `${u}@` })),
    nodes: live.map((x) => ({ id: x.id, name: x.name, user: x.tags.length ? null : `${x.user}@`, tags: x.tags, ipv4: x.ipv4, ipv6: x.ipv6, advertisedRoutes: [], approvedRoutes: [] })),
  });
  const compiled: Compiled = compile(parsePolicy(policy), prepared).compiled;
  const idOf = new Map(live.map((x) => [x.name, x.id]));
  const peers = new Map<number, number[]>();
  const rules = new Map<number, string>();
  for (const x of live) {
    const v = compiled.nodes[x.name]!;
    peers.set(x.id, v.peers.map((p) => idOf.get(p)!).sort((a, b) => a - b));
    rules.set(x.id, JSON.stringify(v.rules));
  }
  return { peers, rules };
}
