/**
 * How a replica learns of changes made on the others: it follows the change outbox
 * (@weft/db outbox.ts) from the last id it applied. It reads on every NOTIFY hint, when the bus
 * reconnects, and every CHANGE_CATCH_UP_INTERVAL_MS, so a lost hint delays a change by at most
 * that interval and never loses it. Rows this replica wrote are skipped (the hub applied them at
 * commit) but still advance its position. A replica whose position fell out of the retention
 * window (the rows it needs were pruned) reloads everything instead. With metrics on, each change
 * from another replica is timed from its append to being handed to the mapper (bus lag).
 */
import type { FastifyBaseLogger } from 'fastify';
import { parseOutboxHint, type ChangeBus, type Outbox } from '@weft/db';
import type { Change } from './state/changes.js';
import { CHANGE_CATCH_UP_BATCH, CHANGE_CATCH_UP_INTERVAL_MS, CHANGE_PRUNE_INTERVAL_MS, CHANGE_RETENTION_MS } from './tunables.js';

export interface FollowerTimings {
  catchUpIntervalMs?: number;
  retentionMs?: number;
  pruneIntervalMs?: number;
  /** Tests only: act as if every NOTIFY were lost, so only the timer and reconnects deliver. */
  ignoreHints?: boolean;
}

export interface FollowerTarget {
  apply(change: Change): Promise<void>;
  resyncAll(): Promise<void>;
}

/** Every change kind a replica applies; typed so that a new kind in changes.ts fails to compile until listed. */
const KNOWN: Record<Change['kind'], true> = {
  'nodes-upserted': true,
  'nodes-removed': true,
  'nodes-expired': true,
  'nodes-suspended': true,
  'nodes-patched': true,
  presence: true,
  nat: true,
  'policy-changed': true,
};
const KINDS = new Set<string>(Object.keys(KNOWN));

export class OutboxFollower {
  /** Every change up to this id has been applied (or was this replica's own). */
  private last = 0;
  private reading: Promise<void> | null = null;
  private again = false;
  private target: FollowerTarget | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly bus: ChangeBus,
    private readonly origin: string,
    private readonly log: FastifyBaseLogger,
    private readonly timings: FollowerTimings = {},
    /** Seconds from a change's append on another replica to this one applying it; absent = not measured. */
    private readonly onLag?: (seconds: number) => void,
  ) {}

  /** Takes the current head as the starting point: call before the mapper loads its rows. */
  async start(): Promise<void> {
    this.last = await this.outbox.head();
  }

  /** The id this replica has applied up to (tests, status). */
  get position(): number {
    return this.last;
  }

  connect(target: FollowerTarget): void {
    this.target = target;
    if (!this.timings.ignoreHints) this.unsubscribe.push(this.bus.subscribe((payload) => this.hinted(payload)));
    this.unsubscribe.push(this.bus.onReconnect(() => void this.catchUp()));
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.timings.catchUpIntervalMs ?? CHANGE_CATCH_UP_INTERVAL_MS, () => void this.catchUp());
    const retentionMs = this.timings.retentionMs ?? CHANGE_RETENTION_MS;
    every(this.timings.pruneIntervalMs ?? CHANGE_PRUNE_INTERVAL_MS, () => {
      this.outbox.prune(retentionMs).catch((err: unknown) => this.log.warn({ err }, 'failed to prune the change outbox'));
    });
    // Whatever committed between start() and now.
    void this.catchUp();
  }

  /**
   * Reads until caught up. Calls during a read make it read once more rather than run beside it.
   * Never rejects: a failed read is logged and the next trigger tries again from the same place.
   */
  catchUp(): Promise<void> {
    if (this.closed || !this.target) return Promise.resolve();
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    const target = this.target;
    const run = async () => {
      do {
        this.again = false;
        while (await this.readPage(target)) {
          /* a full page: there may be more */
        }
      } while (this.again && !this.closed);
    };
    this.reading = run()
      .catch((err: unknown) => this.log.warn({ err, position: this.last }, 'failed to read the change outbox; retrying on the next hint or timer'))
      .finally(() => (this.reading = null));
    return this.reading;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unsubscribe) u();
  }

  /** One page from `last`; true if it was full. */
  private async readPage(target: FollowerTarget): Promise<boolean> {
    const from = this.last;
    const { head, rows, now } = await this.outbox.after(from, CHANGE_CATCH_UP_BATCH);
    const readAt = Date.now();
    // Ids are gap-free (outbox.ts), so a missing `from + 1` was pruned before this replica read it.
    if (rows.length ? rows[0]!.id !== from + 1 : head > from) {
      this.log.warn({ position: from, head }, 'this replica fell behind the change outbox retention; reloading every node');
      this.last = head;
      await target.resyncAll();
      return false;
    }
    let applied: Promise<void> | null = null;
    for (const row of rows) {
      this.last = row.id;
      if (row.origin === this.origin) continue;
      const change = row.payload as Change;
      if (typeof change !== 'object' || change === null || !KINDS.has(change.kind)) {
        this.log.error({ id: row.id }, 'skipping an unknown change in the outbox');
        continue;
      }
      // Database clock up to the read, this process's clock after it: no cross-replica skew.
      if (this.onLag) this.onLag((now - row.createdAt + (Date.now() - readAt)) / 1000);
      // The mapper applies in call order; waiting for the last one bounds how far ahead we read.
      applied = target.apply(change);
    }
    await applied;
    return rows.length === CHANGE_CATCH_UP_BATCH;
  }

  private hinted(payload: string): void {
    const hint = parseOutboxHint(payload);
    if (!hint || hint.seq <= this.last) return;
    // Our own next change, already applied at commit: nothing to read.
    if (hint.origin === this.origin && hint.seq === this.last + 1 && !this.reading) {
      this.last = hint.seq;
      return;
    }
    void this.catchUp();
  }
}
