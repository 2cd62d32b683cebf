/**
 * The simulated fleet for `npm run bench:control`, run as its own process (forked by control.ts)
 * so the agents' CPU is not the server's. Real WebSocket clients, real keys, real registration
 * and machine-token handshake. Talks to the parent over IPC.
 */
import { backoffDelay, RECONNECT_BACKOFF } from '../apps/agent/src/backoff.js';
import { SimAgent, now } from '../test-support/sim-agent.js';

type Cmd =
  /** `authKeys[i]` (when given) is agent i's key, else `authKey` for all. */
  | { cmd: 'register'; url: string; authKey: string; authKeys?: string[]; count: number; concurrency: number }
  /** `parse`: keep peers (a policy bench checks views; netmaps are small then). */
  | { cmd: 'connect'; concurrency: number; parse?: boolean }
  /** `affected`: the node ids that must see the removal (absent = every other agent). */
  | { cmd: 'track-removal'; nodeId: number; deleted: number[]; timeoutMs: number; affected?: number[] }
  /** Arms, then waits until every `expect` node got a non-patch delta and has exactly those peers; counts deltas to anyone else. */
  | { cmd: 'track-delta'; expect: Record<number, number[]>; timeoutMs: number }
  /**
   * Every agent at once, retrying with the agent's reconnect backoff until it has a netmap or a
   * resume (a reconnect storm). `resume`: each sends the revision it holds, as the real agent does.
   */
  | { cmd: 'storm'; parse?: boolean; resume?: boolean; timeoutMs: number }
  | { cmd: 'arm' }
  | { cmd: 'closed' }
  /** Closes every socket, forgets what was received, and drops the agents of deleted nodes (before a server restart). */
  | { cmd: 'disconnect'; drop: number[] }
  | { cmd: 'exit' };

/** The agents ask for compressed netmaps as the real agent does; BENCH_DEFLATE=0 = agents that predate them. */
const deflate = process.env.BENCH_DEFLATE !== '0';

let agents: SimAgent[] = [];
/** Per agent, how many messages it had when the parent last armed a tracker. */
const armed = new Map<SimAgent, number>();
const send = (m: unknown) => process.send!(m);

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

process.on('message', async (m: Cmd) => {
  try {
    if (m.cmd === 'register') {
      agents = Array.from({ length: m.count }, (_, i) => new SimAgent(m.url, `sim-${i}`));
      const t0 = now();
      await pool(agents.map((a, i) => [a, i] as const), m.concurrency, async ([a, i]) => void (await a.register(m.authKeys?.[i] ?? m.authKey)));
      send({ ok: 'register', ms: now() - t0 });
    } else if (m.cmd === 'connect') {
      const t0 = now();
      const netmapMs: number[] = [];
      let netmapBytes = 0;
      await pool(agents, m.concurrency, async (a) => {
        const start = now();
        await a.connect({ parse: m.parse ?? false, deflate });
        await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 300_000, 'netmap');
        const nm = a.received.find((r) => r.msg.type === 'netmap')!;
        netmapMs.push(nm.at - start);
        netmapBytes = Math.max(netmapBytes, nm.bytes);
      });
      send({ ok: 'connect', ms: now() - t0, netmapMs, netmapBytes, open: agents.filter((a) => a.closed === null).length });
    } else if (m.cmd === 'storm') {
      const t0 = now();
      const deadline = Date.now() + m.timeoutMs;
      const netmapAt: number[] = [];
      let attempts = 0;
      let resumed = 0;
      const first = (a: SimAgent) => a.received.find((r) => r.msg.type === 'netmap' || r.msg.type === 'resume');
      await Promise.all(agents.map(async (a) => {
        for (let attempt = 0; Date.now() < deadline; attempt++) {
          // As the agent does after losing the server: a full-jitter delay, then a try.
          await new Promise((r) => setTimeout(r, backoffDelay(attempt, RECONNECT_BACKOFF)));
          attempts++;
          const ok = await a.connect({ parse: m.parse ?? false, resume: m.resume ?? false, deflate })
            .then(() => a.waitFor(() => a.closed !== null || first(a) !== undefined, 60_000, 'netmap'))
            .then(() => a.closed === null, () => false);
          if (ok) {
            const got = first(a)!;
            netmapAt.push(got.at - t0);
            if (got.msg.type === 'resume') resumed++;
            return;
          }
          a.close();
        }
      }));
      send({ ok: 'storm', ms: now() - t0, agents: agents.length, connected: netmapAt.length, resumed, attempts, netmapAt });
    } else if (m.cmd === 'closed') {
      const codes: Record<string, number> = {};
      for (const a of agents) if (a.closed) codes[a.closed.code] = (codes[a.closed.code] ?? 0) + 1;
      send({ ok: 'closed', codes });
    } else if (m.cmd === 'track-removal') {
      // Every agent except the deleted one must see a delta removing it; report the last arrival.
      const gone = new Set([m.nodeId, ...m.deleted]);
      const only = m.affected ? new Set(m.affected) : null;
      const affected = agents.filter((a) => !gone.has(a.self!.id) && a.closed === null && (!only || only.has(a.self!.id)));
      const arrivals: number[] = [];
      await Promise.all(affected.map((a) => new Promise<void>((resolve) => {
        const done = (at: number) => {
          a.onMessage = null;
          arrivals.push(at);
          resolve();
        };
        const seen = a.received.find((r) => (r.msg.remove as number[] | undefined)?.includes(m.nodeId));
        if (seen) return done(seen.at);
        const timer = setTimeout(() => {
          a.onMessage = null;
          resolve();
        }, m.timeoutMs);
        a.onMessage = (r) => {
          if ((r.msg.remove as number[] | undefined)?.includes(m.nodeId)) {
            clearTimeout(timer);
            done(r.at);
          }
        };
      })));
      const missing = affected.filter((a) => !a.received.some((r) => (r.msg.remove as number[] | undefined)?.includes(m.nodeId)));
      // Under a policy, nobody else may hear of it.
      const told = only ? agents.filter((a) => !only.has(a.self!.id) && a.received.some((r) => (r.msg.remove as number[] | undefined)?.includes(m.nodeId))).length : 0;
      send({
        ok: 'track-removal',
        affected: affected.length,
        received: arrivals.length,
        unaffectedThatHeard: told,
        lastAt: Math.max(...arrivals),
        missing: missing.slice(0, 5).map((a) => ({ id: a.self!.id, closed: a.closed, lastSeq: a.received.at(-1)?.msg.seq, messages: a.received.length })),
      });
    } else if (m.cmd === 'arm') {
      for (const a of agents) armed.set(a, a.received.length);
      send({ ok: 'arm' });
    } else if (m.cmd === 'track-delta') {
      const substantive = (a: SimAgent) => a.received.slice(armed.get(a) ?? 0).find((r) => r.msg.type !== 'delta' || Object.keys(r.msg).some((k) => k !== 'type' && k !== 'seq' && k !== 'patch'));
      const want = new Map(Object.entries(m.expect).map(([id, peers]) => [Number(id), peers.join()]));
      const targets = agents.filter((a) => want.has(a.self!.id));
      const viewOk = (a: SimAgent) => [...a.peers.keys()].sort((x, y) => x - y).join() === want.get(a.self!.id);
      const deadline = Date.now() + m.timeoutMs;
      while (Date.now() < deadline && !targets.every((a) => substantive(a) && viewOk(a))) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300)); // anything sent to others by mistake arrives meanwhile
      const arrivals = targets.flatMap((a) => substantive(a)?.at ?? []);
      send({
        ok: 'track-delta',
        affected: targets.length,
        received: arrivals.length,
        wrongView: targets.filter((a) => !viewOk(a)).length,
        unaffectedThatHeard: agents.filter((a) => !want.has(a.self!.id) && substantive(a)).length,
        firstAt: Math.min(...arrivals),
        lastAt: Math.max(...arrivals),
      });
    } else if (m.cmd === 'disconnect') {
      const drop = new Set(m.drop);
      await Promise.all(agents.map((a) => a.disconnect()));
      agents = agents.filter((a) => !drop.has(a.self!.id));
      for (const a of agents) {
        a.received.length = 0;
        a.patchesSeen = 0;
      }
      send({ ok: 'disconnect', agents: agents.length });
    } else if (m.cmd === 'exit') {
      for (const a of agents) a.close();
      setTimeout(() => process.exit(0), 200);
    }
  } catch (err) {
    send({ error: (err as Error).stack ?? String(err) });
  }
});
send({ ok: 'ready' });
