/**
 * The simulated fleet of `npm run bench:links`, its own process: real keys, real machine-token
 * WebSocket handshakes, and `links` reports as the agent's reporter sends them (a full report
 * on connect, then one message per node every 30 s with every link's counters moved, and a few
 * links turning stale). Talks to the parent over IPC.
 */
import type { LinkStat } from '@weft/protocol';
import { SimAgent } from '../test-support/sim-agent.js';

let agents: SimAgent[] = [];
const send = (m: unknown) => process.send!(m);

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

type Cmd =
  | { cmd: 'keys'; count: number }
  | { cmd: 'connect'; url: string; concurrency: number }
  /** `rounds` rounds of `periodMs`, each node sending at its own phase; `staleShare` of nodes turn one link stale per round. */
  | { cmd: 'report'; ids: number[]; links: number; rounds: number; periodMs: number; staleShare: number }
  | { cmd: 'exit' };

process.on('message', async (m: Cmd) => {
  try {
    if (m.cmd === 'keys') {
      agents = Array.from({ length: m.count }, (_, i) => new SimAgent('http://unset', `sim-${i}`));
      send({ ok: 'keys', nodes: agents.map((a) => ({ machineKey: a.machine.publicKey, nodeKey: a.node.publicKey })) });
    } else if (m.cmd === 'connect') {
      const t0 = performance.now();
      await pool(agents, m.concurrency, async (a) => {
        await a.connect({ parse: false, url: m.url });
        await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 120_000, 'netmap');
      });
      send({ ok: 'connect', ms: performance.now() - t0, open: agents.filter((a) => a.closed === null).length });
    } else if (m.cmd === 'report') {
      let bytes = 0;
      let messages = 0;
      const tables = agents.map((_, i) => Array.from({ length: m.links }, (_, j): LinkStat => ({
        peer: m.ids[(i + j + 1) % m.ids.length]!, path: j % 8 === 7 ? 'relay' : 'direct', endpoint: `192.0.2.${(j % 250) + 1}:${41641 + (i % 20_000)}`,
        handshakeAgeS: 20, rxBytes: 10_000 * j, txBytes: 20_000 * j, stale: false,
      })));
      const t0 = performance.now();
      for (let round = 0; round < m.rounds; round++) {
        const roundStart = t0 + round * m.periodMs;
        // Each node at its own phase in the period, as real agents are spread by when they connected.
        const order = agents.map((_, i) => i);
        for (let k = 0; k < order.length; k++) {
          const i = order[k]!;
          const at = roundStart + (k / order.length) * m.periodMs;
          const wait = at - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          const links = tables[i]!;
          for (const l of links) {
            l.rxBytes += 1_234;
            l.txBytes += 2_345;
            l.handshakeAgeS = (l.handshakeAgeS! + 30) % 120;
          }
          if (round > 0 && (i % Math.round(1 / m.staleShare)) === round % Math.round(1 / m.staleShare)) {
            links[0]!.stale = !links[0]!.stale;
            links[0]!.path = links[0]!.stale ? 'none' : 'direct';
          }
          const text = JSON.stringify({ type: 'links', full: round === 0, links });
          agents[i]!.send(text);
          bytes += Buffer.byteLength(text);
          messages++;
        }
      }
      const left = t0 + m.rounds * m.periodMs - performance.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      send({ ok: 'report', bytes, messages, ms: performance.now() - t0, open: agents.filter((a) => a.closed === null).length });
    } else if (m.cmd === 'exit') {
      for (const a of agents) a.close();
      process.exit(0);
    }
  } catch (err) {
    send({ error: (err as Error).stack ?? String(err) });
  }
});
