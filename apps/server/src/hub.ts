/**
 * Where a change goes. The write path records it in the change outbox inside its transaction
 * (`record`, Postgres only) and hands it to this replica's mapper after the commit (`emit`). Other
 * replicas read it from the outbox (outbox-follower.ts), woken by the NOTIFY the append queues.
 *
 * On the embedded database there is no outbox: one process at a time can open it (the data
 * directory is locked), so there is no other replica, and a change costs nothing beyond its own
 * transaction.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ChangeBus, Outbox } from '@weft/db';
import type { Change } from './state/changes.js';
import { lockCommitOrder, type Tx } from './state/context.js';
import type { Mapper } from './mapper/mapper.js';
import { OutboxFollower, type FollowerTimings } from './outbox-follower.js';

export class ChangeHub {
  readonly origin = randomUUID();
  private mapper: Mapper | null = null;
  /** Null on the embedded database. */
  readonly follower: OutboxFollower | null;

  constructor(
    bus: ChangeBus,
    private readonly outbox: Outbox | null,
    log: FastifyBaseLogger,
    timings: FollowerTimings = {},
    /** Called with append-to-apply seconds for each change from another replica; absent = not measured. */
    onBusLag?: (seconds: number) => void,
  ) {
    this.follower = outbox ? new OutboxFollower(outbox, bus, this.origin, log, timings, onBusLag) : null;
  }

  /** Fixes where this replica starts following: call before the mapper loads its rows. */
  async start(): Promise<void> {
    await this.follower?.start();
  }

  /** Starts delivering to `mapper`, from this replica and from the others. */
  connect(mapper: Mapper): void {
    this.mapper = mapper;
    this.follower?.connect(mapper);
  }

  /** True once the server is shutting down. */
  closed = false;

  /**
   * Inside the change's transaction, as its last statement (outbox.ts says why). The commit-order
   * lock comes before the `change_seq` row lock, as in every transaction that audits, so the two
   * never deadlock (state/context.ts `lockCommitOrder`).
   */
  record = async (tx: Tx, change: Change): Promise<void> => {
    if (!this.outbox) return;
    await lockCommitOrder(tx);
    await this.outbox.append(tx, this.origin, change);
  };

  /** After the commit: this replica's mapper applies it at once. */
  emit = (change: Change): void => {
    void this.mapper?.apply(change);
  };

  close(): void {
    this.closed = true;
    this.follower?.close();
  }
}
