/**
 * The change outbox on Postgres: a change's row is written in the same transaction as the change,
 * so it exists exactly when the change committed. Replicas read it in `id` order from where they
 * are; NOTIFY (sent by the same statement, so only at commit) merely wakes them.
 *
 * Why `id` comes from the one-row counter `change_seq` and not a sequence (bigserial): a sequence
 * hands out ids at insert time, so transaction A can take 10 and B 11 and B commit first; a reader
 * that saw 11 and moved past it would never read 10. Updating the counter row takes its row lock
 * until commit, so the next writer gets its id only after the previous one committed (or rolled
 * back, which also rolls the counter back): ids are gap-free and commit in id order, and
 * `WHERE id > last ORDER BY id` never skips a row. The price is that change-writing transactions
 * serialise from their append to their commit, so the append must be the transaction's last
 * statement (it is then held for one round trip plus the commit). A gap-tolerant reader (wait for
 * a hole to fill or time out) would avoid that, but a hole can legitimately stay open for a whole
 * transaction timeout (60 s here), and a gap-free sequence also tells a reader exactly when rows
 * it needed were pruned (the first row after `last` is not `last + 1`).
 *
 * Payloads are opaque JSON: this package knows nothing of what a change means.
 */
import type pg from 'pg';
import { CHANNEL } from './change-bus.js';
import type { Prisma } from './generated/client.js';

export interface OutboxRow {
  id: number;
  /** Who wrote it (the writer's hub origin). */
  origin: string;
  payload: unknown;
  /** When it was appended, ms since the epoch by the database's clock (bus-lag metrics). */
  createdAt: number;
}

/** What `after()` saw, in one snapshot. */
export interface OutboxPage {
  /** The last id handed out when the page was read: every row up to it had committed. */
  head: number;
  rows: OutboxRow[];
  /** The database's clock when the page was read, ms since the epoch: `now - createdAt` is how long a row waited, free of skew between replicas. */
  now: number;
}

/** What a NOTIFY on the change channel carries: only a wake-up, the row is the truth. */
export interface OutboxHint { seq: number; origin: string }

/**
 * One statement: take the next id (row lock on the counter until commit), insert the row, and
 * queue the hint, which Postgres delivers only if and when the transaction commits.
 */
export const APPEND_SQL = `
  WITH s AS (UPDATE change_seq SET last = last + 1 WHERE id = 1 RETURNING last),
       i AS (INSERT INTO changes (id, origin, payload, created_at) SELECT last, $1, $2::jsonb, clock_timestamp() FROM s RETURNING id)
  SELECT i.id::text AS id FROM i
  CROSS JOIN LATERAL (SELECT pg_notify('${CHANNEL}', json_build_object('seq', i.id, 'origin', $1::text)::text)) AS hint`;

const PAGE_SQL = `
  SELECT s.last::text AS head, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now,
         c.id::text AS id, c.origin, c.payload, (extract(epoch FROM c.created_at) * 1000)::float8 AS created_at
  FROM change_seq s
  LEFT JOIN LATERAL (SELECT id, origin, payload, created_at FROM changes WHERE id > $1 ORDER BY id LIMIT $2) c ON true
  WHERE s.id = 1
  ORDER BY c.id`;

export class Outbox {
  constructor(private readonly pool: pg.Pool) {}

  /** Appends `payload` inside `tx`; make it the transaction's last statement. Returns its id. */
  async append(tx: Prisma.TransactionClient, origin: string, payload: unknown): Promise<number> {
    const rows = await tx.$queryRawUnsafe<{ id: string }[]>(APPEND_SQL, origin, JSON.stringify(payload));
    if (rows.length !== 1) throw new Error('change_seq has no row 1: the change_outbox migration did not run');
    return Number(rows[0]!.id);
  }

  /** The last id handed out (committed). */
  async head(): Promise<number> {
    const r = await this.pool.query<{ last: string }>('SELECT last::text AS last FROM change_seq WHERE id = 1');
    return Number(r.rows[0]?.last ?? 0);
  }

  /** Up to `limit` rows after `seq`, in id order, and the head, from one snapshot. */
  async after(seq: number, limit: number): Promise<OutboxPage> {
    const r = await this.pool.query<{ head: string; now: number; id: string | null; origin: string | null; payload: unknown; created_at: number | null }>(PAGE_SQL, [seq, limit]);
    const head = Number(r.rows[0]?.head ?? 0);
    const now = Number(r.rows[0]?.now ?? Date.now());
    const rows = r.rows.filter((x) => x.id !== null).map((x) => ({ id: Number(x.id), origin: x.origin!, payload: x.payload, createdAt: Number(x.created_at) }));
    return { head, rows, now };
  }

  /** Deletes rows older than `olderThanMs` (database time). Returns how many. */
  async prune(olderThanMs: number): Promise<number> {
    const r = await this.pool.query(`DELETE FROM changes WHERE created_at < now() - $1::int * interval '1 millisecond'`, [olderThanMs]);
    return r.rowCount ?? 0;
  }
}

/** Parses a hint; null for anything else on the channel. */
export function parseHint(payload: string): OutboxHint | null {
  try {
    const v = JSON.parse(payload) as Partial<OutboxHint>;
    return typeof v.seq === 'number' && typeof v.origin === 'string' ? { seq: v.seq, origin: v.origin } : null;
  } catch {
    return null;
  }
}
