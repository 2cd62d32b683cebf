/**
 * The follower's bookkeeping over an in-memory outbox (the Postgres side is in
 * test/integration/outbox.test.ts): what it applies, skips, and when it reloads everything.
 */
import { describe, expect, it } from 'vitest';
import type { ChangeBus, Outbox, OutboxPage, OutboxRow } from '@weft/db';
import { OutboxFollower } from '../../src/outbox-follower.js';
import type { Change } from '../../src/state/changes.js';
import { CHANGE_CATCH_UP_BATCH } from '../../src/tunables.js';

const quiet = { warn: () => {}, error: () => {}, info: () => {} } as never;

class MemoryOutbox {
  rows: OutboxRow[] = [];
  head = 0;
  reads = 0;
  /** The fake database's clock, ms since the epoch. */
  clock = 1_700_000_000_000;
  append(origin: string, change: Change): void {
    this.rows.push({ id: ++this.head, origin, payload: change, createdAt: this.clock });
  }
  prune(throughId: number): void {
    this.rows = this.rows.filter((r) => r.id > throughId);
  }
  asOutbox(): Outbox {
    return {
      head: async () => this.head,
      after: async (seq: number, limit: number): Promise<OutboxPage> => {
        this.reads++;
        return { head: this.head, rows: this.rows.filter((r) => r.id > seq).slice(0, limit), now: this.clock };
      },
      prune: async () => 0,
    } as unknown as Outbox;
  }
}

class MemoryBus {
  handlers: ((p: string) => void)[] = [];
  asBus(): ChangeBus {
    return {
      publish: async () => {},
      subscribe: (h) => (this.handlers.push(h), () => {}),
      onReconnect: () => () => {},
    };
  }
  hint(seq: number, origin: string): void {
    for (const h of this.handlers) h(JSON.stringify({ seq, origin }));
  }
}

function setup() {
  const store = new MemoryOutbox();
  const bus = new MemoryBus();
  const applied: Change[] = [];
  const lags: number[] = [];
  let resyncs = 0;
  const follower = new OutboxFollower(store.asOutbox(), bus.asBus(), 'me', quiet, { catchUpIntervalMs: 3_600_000, pruneIntervalMs: 3_600_000 }, (s) => lags.push(s));
  const target = { apply: async (c: Change) => void applied.push(c), resyncAll: async () => void resyncs++ };
  return { store, bus, applied, lags, follower, target, resyncs: () => resyncs };
}

const removed = (id: number): Change => ({ kind: 'nodes-removed', nodeIds: [id] });

describe('OutboxFollower', () => {
  it('applies other replicas\' changes in id order and skips its own, advancing past them', async () => {
    const t = setup();
    await t.follower.start();
    t.store.append('other', removed(1));
    t.store.append('me', removed(2));
    t.store.append('other', removed(3));
    t.follower.connect(t.target);
    await t.follower.catchUp();
    expect(t.applied).toEqual([removed(1), removed(3)]);
    expect(t.follower.position).toBe(3);
    expect(t.resyncs()).toBe(0);
  });

  it('reports bus lag in seconds from the row\'s created_at by the database clock, for other replicas\' rows only', async () => {
    const t = setup();
    await t.follower.start();
    t.store.append('other', removed(1));
    t.store.append('me', removed(2));
    t.store.clock += 2_500;
    t.follower.connect(t.target);
    await t.follower.catchUp();
    expect(t.lags).toHaveLength(1);
    // 2.5 s by the database clock, plus this process's (tiny) time from the read to the apply.
    expect(t.lags[0]!).toBeGreaterThanOrEqual(2.5);
    expect(t.lags[0]!).toBeLessThan(1_000); // seconds, not milliseconds
  });

  it('starts from the head it saw at start: older changes are in what the mapper loaded', async () => {
    const t = setup();
    t.store.append('other', removed(1));
    await t.follower.start();
    t.follower.connect(t.target);
    await t.follower.catchUp();
    expect(t.applied).toEqual([]);
  });

  it('reads a backlog longer than one page to the end', async () => {
    const t = setup();
    await t.follower.start();
    for (let i = 0; i < CHANGE_CATCH_UP_BATCH + 5; i++) t.store.append('other', removed(i));
    t.follower.connect(t.target);
    await t.follower.catchUp();
    expect(t.applied).toHaveLength(CHANGE_CATCH_UP_BATCH + 5);
    expect(t.follower.position).toBe(CHANGE_CATCH_UP_BATCH + 5);
  });

  it('reloads everything when the rows after its position were pruned', async () => {
    const t = setup();
    await t.follower.start();
    t.follower.connect(t.target);
    await t.follower.catchUp();
    t.store.append('other', removed(1));
    t.store.append('other', removed(2));
    t.store.append('other', removed(3));
    t.store.prune(2);
    await t.follower.catchUp();
    expect(t.resyncs()).toBe(1);
    expect(t.applied).toEqual([]);
    expect(t.follower.position).toBe(3);
  });

  it('reloads everything when every row after its position was pruned', async () => {
    const t = setup();
    await t.follower.start();
    t.follower.connect(t.target);
    await t.follower.catchUp();
    t.store.append('other', removed(1));
    t.store.prune(1);
    await t.follower.catchUp();
    expect(t.resyncs()).toBe(1);
  });

  it('takes its own next hint without reading, and reads on anyone else\'s', async () => {
    const t = setup();
    await t.follower.start();
    t.follower.connect(t.target);
    await t.follower.catchUp();
    const reads = t.store.reads;
    t.store.append('me', removed(1));
    t.bus.hint(1, 'me');
    expect(t.follower.position).toBe(1);
    expect(t.store.reads).toBe(reads);
    t.store.append('other', removed(2));
    t.bus.hint(2, 'other');
    await t.follower.catchUp();
    expect(t.applied).toEqual([removed(2)]);
    expect(t.follower.position).toBe(2);
  });

  it('reads past a hint of its own that skips ahead (it missed one in between)', async () => {
    const t = setup();
    await t.follower.start();
    t.follower.connect(t.target);
    await t.follower.catchUp();
    t.store.append('other', removed(1));
    t.store.append('me', removed(2));
    t.bus.hint(2, 'me');
    await t.follower.catchUp();
    expect(t.applied).toEqual([removed(1)]);
    expect(t.follower.position).toBe(2);
  });
});
