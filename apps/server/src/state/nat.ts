/**
 * Netcheck verdicts (`nat` agent message) carried to the other replicas. A verdict is telemetry
 * of the node's current connection, held in memory by every replica's mapper (no column): the
 * replica holding the session applies it at once (Mapper.natReported), and this records it in the
 * change outbox as a `nat` change so the others apply it too (they never recompute a view for
 * it: it is a patch). Verdicts reported together share one transaction (NAT_COALESCE_MS), the
 * newest per node winning; nothing is emitted here, since this replica's mapper has it already.
 * Not audited (telemetry, like endpoints). docs/design.md ("NAT verdict across replicas") has why
 * the outbox rather than a row.
 */
import type { NatVerdict } from '@weft/protocol';
import { NAT_COALESCE_MS, NAT_RETRY_MS } from '../tunables.js';
import type { StateContext } from './context.js';

type Log = { warn(obj: object, msg: string): void };

export class NatVerdicts {
  private readonly pending = new Map<number, { nat: NatVerdict | null; at: number }>();
  private draining: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly ctx: StateContext,
    /** This replica's name in the changes (the origin a null is matched against). */
    readonly origin: string,
    private readonly log: Log,
  ) {}

  /** Node `nodeId`'s verdict on this replica changed at `at` (null: its session here ended). */
  reported(nodeId: number, nat: NatVerdict | null, at: number): void {
    if (this.stopped) return;
    this.pending.set(nodeId, { nat, at });
    if (!this.draining) this.draining = this.drain().finally(() => (this.draining = null));
  }

  /** Waits until every verdict reported so far is written (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stop(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    await new Promise((r) => setTimeout(r, NAT_COALESCE_MS));
    while (this.pending.size && !this.stopped) {
      const nodes = [...this.pending].map(([id, { nat, at }]) => ({ id, nat, at }));
      this.pending.clear();
      try {
        await this.ctx.prisma.$transaction((tx) => this.ctx.record(tx, { kind: 'nat', origin: this.origin, nodes }));
      } catch (err) {
        // A newer verdict reported meanwhile wins over the failed one.
        for (const n of nodes) if (!this.pending.has(n.id)) this.pending.set(n.id, { nat: n.nat, at: n.at });
        this.log.warn({ err, nodes: nodes.length }, 'failed to record netcheck verdicts for the other replicas; retrying');
        await new Promise((r) => setTimeout(r, NAT_RETRY_MS));
      }
    }
  }
}
