/** What every part of the write path shares: the database, the change sink, settings, the audit log. */
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '@weft/db';
import type { Change, ChangeSink } from './changes.js';

export type Tx = Prisma.TransactionClient;

/** Writes `change` to the change outbox inside `tx` (hub.ts). */
export type ChangeRecorder = (tx: Tx, change: Change) => Promise<void>;

/**
 * Where a change came from: REST with an API key, the browser (a web session: the sign-in pages,
 * the approval page, the web UI), the admin socket (the CLI), an agent, the server itself, a SCIM
 * provisioning client (`/scim/v2` with a SCIM token).
 */
export type Origin = 'api' | 'ui' | 'cli' | 'agent' | 'system' | 'scim';

/** Who did it, for the audit log (docs/design.md "Identity": every event names one principal). */
export interface Actor {
  /** `user`: a person signed in to a web session; `anonymous`: nobody yet (a failed sign-in). */
  type: 'apikey' | 'scim-token' | 'local-socket' | 'node' | 'authkey' | 'user' | 'anonymous' | 'system';
  /** The principal's row id (API key id, node id, user id), when it has one. */
  id?: string;
  /** Key prefix, node name, user name. */
  name?: string;
  origin: Origin;
  /** Source address of the request; absent for the admin socket and the system. */
  ip?: string;
}

export const SYSTEM: Actor = { type: 'system', origin: 'system' };

/** The actor as one label, as `audit_events.actor` always held it: "apikey:<prefix>", "node:<id>", "system". */
export function actorLabel(a: Actor): string {
  if (a.type === 'system' || a.type === 'local-socket' || a.type === 'anonymous') return a.type;
  if (a.type === 'node') return `node:${a.id ?? a.name ?? '?'}`;
  return `${a.type}:${a.name ?? a.id ?? '?'}`;
}

export interface StateContext {
  prisma: PrismaClient;
  /**
   * Every write that emits a change records it first, inside its transaction and as the last
   * statement there (the outbox that other replicas follow), then emits it after the commit.
   */
  record: ChangeRecorder;
  emit: ChangeSink;
  /** Deployment ULA /48, e.g. "fd12:3456:789a::/48". */
  ulaPrefix: string;
  /** Base URL for login links. */
  serverUrl: string;
  loginTimeoutS: number;
  /** Most unexpired pending logins the deployment holds at once; more are refused with 429. */
  maxPendingLogins: number;
}

/** Long enough for 200 registrations queued on the allocation lock. */
export const TX_OPTIONS = { maxWait: 60_000, timeout: 60_000 } as const;

/** Arbitrary constant naming the commit-order lock (audit log and change outbox) in pg_advisory_xact_lock. */
const COMMIT_ORDER_LOCK = 0x77656661;

/**
 * Takes the commit-order lock, held to commit; taking it again in the same transaction is free.
 *
 * Two things serialise writers from a late statement to their commit: the audit log (this lock,
 * so event ids commit in id order) and the change outbox (the row lock on `change_seq`, taken by
 * `ctx.record`, @weft/db outbox.ts). Taken in different orders by two transactions they would
 * deadlock (A holds this lock and waits for `change_seq`, B the reverse). So there is one order,
 * enforced here rather than by convention: this lock always comes first. `audit()` takes it
 * before its insert, and the hub's `record` takes it before appending to the outbox, so every
 * transaction that holds `change_seq` already held this lock when it asked for `change_seq`,
 * whether it audited or not and whichever of audit and record it did first. The write paths also
 * keep the documented shape (audit, then record as the last statement), so the lock is held only
 * for those inserts and the commit.
 */
export async function lockCommitOrder(tx: Tx): Promise<void> {
  if (holdingCommitOrder.has(tx)) return;
  await tx.$executeRawUnsafe(COMMIT_ORDER_LOCK_SQL);
  holdingCommitOrder.add(tx);
}

const COMMIT_ORDER_LOCK_SQL = `SELECT pg_advisory_xact_lock(${COMMIT_ORDER_LOCK})`;

/**
 * Transactions that hold the commit-order lock already: asking again would be free for the lock
 * but not for the round trip (one statement per write on Postgres, the audit's lock again before
 * `ctx.record`). A transaction client lives as long as its transaction, so the set forgets it.
 */
const holdingCommitOrder = new WeakSet<Tx>();

export interface AuditExtra {
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  /** Shared by the events of one operation; a fresh one per event when absent. */
  groupId?: string;
}

/**
 * Appends one event inside the caller's transaction. Events are written under the commit-order
 * lock (`lockCommitOrder`), taken by the insert's own statement unless the transaction holds it, and held to commit, so ids become
 * visible in id order: a reader paging by id (`GET /api/v1/audit`) never passes over an event
 * that commits later with a smaller id. Every write path calls this at the end of its transaction,
 * followed only by its `ctx.record` calls, so the lock is held only for those inserts and the
 * commit; no row lock may be taken after it.
 */
export async function audit(tx: Tx, actor: Actor, action: string, target: string | null, detail?: Record<string, unknown>, extra: AuditExtra = {}): Promise<void> {
  const json = (v: Record<string, unknown> | undefined) => (v ? JSON.stringify(v) : null);
  const row = [
    actorLabel(actor), actor.type, actor.id ?? null, actor.name ?? null, actor.origin, actor.ip ?? null,
    action, target, extra.groupId ?? randomUUID(), json(detail), json(extra.before), json(extra.after),
  ];
  if (holdingCommitOrder.has(tx)) await tx.$executeRawUnsafe(AUDIT_INSERT_SQL, ...row);
  else {
    await tx.$executeRawUnsafe(LOCKED_AUDIT_INSERT_SQL, ...row);
    holdingCommitOrder.add(tx);
  }
  if (action === TEST_STOP_IN_TX) stopInsideTransaction();
}

/** `at` is UTC in a timestamp without zone, as Prisma writes it; the id comes from its sequence. */
const AUDIT_COLUMNS = `(at, actor, actor_type, actor_id, actor_name, origin, ip, action, target, group_id, detail, before, after)`;
const AUDIT_VALUES = `(clock_timestamp() AT TIME ZONE 'UTC')::timestamp(3), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb`;
const AUDIT_INSERT_SQL = `INSERT INTO audit_events ${AUDIT_COLUMNS} VALUES (${AUDIT_VALUES})`;

/**
 * The insert with the commit-order lock in one statement (one round trip, not two). The row is
 * selected from the materialised lock, so its id (nextval, in the insert's projection) is taken
 * only once the lock is held.
 */
const LOCKED_AUDIT_INSERT_SQL = `WITH l AS MATERIALIZED (${COMMIT_ORDER_LOCK_SQL}) INSERT INTO audit_events ${AUDIT_COLUMNS} SELECT ${AUDIT_VALUES} FROM l`;

/**
 * Tests only: `WEFT_TEST_STOP_IN_TX=<audit action>` makes the first write with that action stop
 * the whole process (SIGSTOP to itself) right after its audit insert, holding the commit-order
 * lock inside an open transaction: the replica-stall hazard, on cue. The test sends SIGCONT.
 */
const TEST_STOP_IN_TX = process.env.WEFT_TEST_STOP_IN_TX || undefined;
let testStopped = false;
function stopInsideTransaction(): void {
  if (testStopped) return;
  testStopped = true;
  process.kill(process.pid, 'SIGSTOP');
}

/**
 * A unique-constraint violation: Prisma's P2002 through the pg adapter, the raw Postgres SQLSTATE
 * 23505 through the PGlite adapter.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: string }).code : undefined;
  return code === 'P2002' || code === '23505';
}

/** Prisma's P2025: the row a delete or update named does not exist. */
export function isRecordNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2025';
}
