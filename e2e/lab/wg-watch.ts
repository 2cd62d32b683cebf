/**
 * Watching what an agent has programmed, as it changes: a shell loop in the host's namespace polls
 * `wg show IFACE dump` (and, when asked, `nft list table inet weft`) every `intervalMs` and prints
 * a line each time the peer set (or the ruleset) differs from the last poll, stamped with the
 * epoch milliseconds it saw it. The stamp is the machine's clock, the same as the test process's
 * Date.now() (namespaces share it), so "from the REST call returning to the change" is a
 * subtraction. Costs a fork of wg (+ nft) per poll: start it just before what it measures, stop it
 * right after.
 */
import type { LabProcess } from './process.js';
import type { WeftAgent } from './weft.js';

export interface WgSnapshot {
  /** Epoch ms the poll saw this state. */
  at: number;
  /** Base64 public keys of the peers, sorted. */
  peers: string[];
  /** md5 of `nft -s list table inet weft` (stateless: counters left out; the md5 of nothing when there is no table); "" when not watched. */
  nft: string;
}

export interface WgWatch {
  /** Every distinct state seen, oldest first; the first is the state when the watch started. */
  snapshots(): WgSnapshot[];
  /** The first snapshot (at or after `sinceMs`) that satisfies `pred`, else null. */
  first(pred: (s: WgSnapshot) => boolean, sinceMs?: number): WgSnapshot | null;
  /** Resolves with the first snapshot satisfying `pred`; rejects after `timeoutMs`. */
  until(pred: (s: WgSnapshot) => boolean, timeoutMs: number): Promise<WgSnapshot>;
  stop(): Promise<void>;
}

/** Starts the loop and waits for its first line (the state now). */
export async function watchWg(agent: WeftAgent, opts: { intervalMs?: number; nft?: boolean } = {}): Promise<WgWatch> {
  const interval = (opts.intervalMs ?? 10) / 1000;
  const nft = opts.nft ? `$(nft -s list table inet weft 2>/dev/null | md5sum | cut -c1-12)` : '';
  const script = [
    'prev=""',
    'while :; do',
    `  cur="${nft} $(wg show ${agent.iface} dump 2>/dev/null | awk 'NR>1{print $1}' | sort | tr '\\n' ' ')"`,
    '  if [ "$cur" != "$prev" ]; then echo "$(date +%s%3N) $cur"; prev="$cur"; fi',
    `  sleep ${interval}`,
    'done',
  ].join('\n');
  const p: LabProcess = agent.host.spawn('bash', ['-c', script], { logName: `wg-watch-${agent.iface}` });
  await p.waitForLine(/^\d+ /, 10_000);
  const parse = (line: string): WgSnapshot | null => {
    const m = /^(\d+) (.*)$/.exec(line);
    if (!m) return null;
    const fields = m[2]!.trim().split(/\s+/).filter((f) => f !== '');
    const hash = opts.nft ? (fields.shift() ?? '') : '';
    return { at: Number(m[1]), peers: fields.sort(), nft: hash };
  };
  const snapshots = () => p.lines().map(parse).filter((s): s is WgSnapshot => s !== null);
  const first = (pred: (s: WgSnapshot) => boolean, sinceMs = 0) => snapshots().find((s) => s.at >= sinceMs && pred(s)) ?? null;
  return {
    snapshots,
    first,
    async until(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = snapshots().find(pred);
        if (s) return s;
        if (Date.now() > deadline) throw new Error(`wg watch on ${agent.host.name}: no state matched within ${timeoutMs} ms; seen: ${JSON.stringify(snapshots().slice(-5))}`);
        if (!p.running) throw new Error(`wg watch on ${agent.host.name} exited:\n${p.tail(10)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      await p.kill({ graceMs: 500 });
    },
  };
}
