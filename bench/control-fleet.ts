/**
 * The simulated fleet for `npm run bench:control`, run as its own process (forked by control.ts)
 * so the agents' CPU is not the server's. Real WebSocket clients, real keys, real registration
 * and machine-token handshake. Talks to the parent over IPC.
 */
import { SimAgent, now } from '../test-support/sim-agent.js';

type Cmd =
  | { cmd: 'register'; url: string; authKey: string; count: number; concurrency: number }
  | { cmd: 'connect'; concurrency: number }
  | { cmd: 'track-removal'; nodeId: number; deleted: number[]; timeoutMs: number }
  | { cmd: 'closed' }
  /** Closes every socket, forgets what was received, and drops the agents of deleted nodes (before a server restart). */
  | { cmd: 'disconnect'; drop: number[] }
  | { cmd: 'exit' };

let agents: SimAgent[] = [];
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
      await pool(agents, m.concurrency, async (a) => void (await a.register(m.authKey)));
      send({ ok: 'register', ms: now() - t0 });
    } else if (m.cmd === 'connect') {
      const t0 = now();
      const netmapMs: number[] = [];
      let netmapBytes = 0;
      await pool(agents, m.concurrency, async (a) => {
        const start = now();
        await a.connect({ parse: false });
        await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 300_000, 'netmap');
        const nm = a.received.find((r) => r.msg.type === 'netmap')!;
        netmapMs.push(nm.at - start);
        netmapBytes = Math.max(netmapBytes, nm.bytes);
      });
      send({ ok: 'connect', ms: now() - t0, netmapMs, netmapBytes, open: agents.filter((a) => a.closed === null).length });
    } else if (m.cmd === 'closed') {
      const codes: Record<string, number> = {};
      for (const a of agents) if (a.closed) codes[a.closed.code] = (codes[a.closed.code] ?? 0) + 1;
      send({ ok: 'closed', codes });
    } else if (m.cmd === 'track-removal') {
      // Every agent except the deleted one must see a delta removing it; report the last arrival.
      const gone = new Set([m.nodeId, ...m.deleted]);
      const affected = agents.filter((a) => !gone.has(a.self!.id) && a.closed === null);
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
      send({
        ok: 'track-removal',
        affected: affected.length,
        received: arrivals.length,
        lastAt: Math.max(...arrivals),
        missing: missing.slice(0, 5).map((a) => ({ id: a.self!.id, closed: a.closed, lastSeq: a.received.at(-1)?.msg.seq, messages: a.received.length })),
      });
    } else if (m.cmd === 'disconnect') {
      const drop = new Set(m.drop);
      await Promise.all(agents.map((a) => a.closed === null && a.socket ? new Promise<void>((resolve) => { a.socket!.once('close', () => resolve()); a.close(); }) : undefined));
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
