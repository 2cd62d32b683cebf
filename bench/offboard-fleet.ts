/**
 * The simulated fleet for `npm run bench:offboard`, its own process (forked by offboard.ts) so the
 * agents' CPU is not the server's. Real WebSocket clients, registration and machine tokens.
 */
import { SimAgent, now } from '../test-support/sim-agent.js';

type Cmd =
  | { cmd: 'fleet'; url: string; authKey: string; count: number }
  | { cmd: 'victims'; url: string; authKey: string; count: number; tag: string }
  | { cmd: 'track'; nodeIds: number[]; timeoutMs: number }
  | { cmd: 'exit' };

let fleet: SimAgent[] = [];
const victims: SimAgent[] = [];
const send = (m: unknown) => process.send!(m);

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

const removes = (a: SimAgent, id: number) => a.received.some((r) => (r.msg.remove as number[] | undefined)?.includes(id));

process.on('message', async (m: Cmd) => {
  try {
    if (m.cmd === 'fleet') {
      fleet = Array.from({ length: m.count }, (_, i) => new SimAgent(m.url, `peer-${i}`));
      await pool(fleet, 32, async (a) => void (await a.register(m.authKey)));
      await pool(fleet, 64, async (a) => {
        await a.connect({ parse: false });
        await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 300_000, 'netmap');
      });
      send({ ok: 'fleet', open: fleet.filter((a) => a.closed === null).length });
    } else if (m.cmd === 'victims') {
      const made = Array.from({ length: m.count }, (_, i) => new SimAgent(m.url, `${m.tag}-${i}`));
      for (const v of made) {
        await v.register(m.authKey);
        await v.connect({ parse: false });
      }
      victims.push(...made);
      const ids = made.map((v) => v.self!.id);
      // Every peer has them before anything is removed.
      await Promise.all(fleet.map((a) => a.waitFor(() => ids.every((id) => a.peers.has(id)), 60_000, 'victims upserted')));
      send({ ok: 'victims', ids });
    } else if (m.cmd === 'track') {
      // When the last fleet agent has seen every one of nodeIds removed; victims' own close codes.
      const arrivals: number[] = [];
      let missed = 0;
      await Promise.all(fleet.map((a) => new Promise<void>((resolve) => {
        const check = () => m.nodeIds.every((id) => removes(a, id));
        const done = () => {
          a.onMessage = null;
          clearTimeout(timer);
          arrivals.push(a.received.at(-1)!.at);
          resolve();
        };
        const timer = setTimeout(() => {
          a.onMessage = null;
          missed++;
          resolve();
        }, m.timeoutMs);
        if (check()) {
          clearTimeout(timer);
          const at = Math.max(...m.nodeIds.map((id) => a.received.find((r) => (r.msg.remove as number[] | undefined)?.includes(id))!.at));
          arrivals.push(at);
          return resolve();
        }
        a.onMessage = () => void (check() && done());
      })));
      const mine = victims.filter((v) => m.nodeIds.includes(v.self!.id));
      await Promise.all(mine.map((v) => v.waitFor(() => v.closed !== null, 5_000, 'victim closed').catch(() => undefined)));
      const closed = mine.map((v) => v.closed?.code ?? null);
      send({ ok: 'track', lastAt: Math.max(...arrivals), received: arrivals.length, missed, closed, at: now() });
    } else if (m.cmd === 'exit') {
      for (const a of [...fleet, ...victims]) a.close();
      setTimeout(() => process.exit(0), 200);
    }
  } catch (err) {
    send({ error: (err as Error).stack ?? String(err) });
  }
});
send({ ok: 'ready' });
