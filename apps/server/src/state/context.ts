/** What every part of the write path shares: the database, the change sink, settings. */
import type { Prisma, PrismaClient } from '@weft/db';
import type { Change, ChangeSink } from './changes.js';

export type Tx = Prisma.TransactionClient;

/** Writes `change` to the change outbox inside `tx` (hub.ts). */
export type ChangeRecorder = (tx: Tx, change: Change) => Promise<void>;

/** Who did it, for the audit log: "apikey:<prefix>", "local-socket", "node:<id>", "system". */
export type Actor = string;

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

export async function audit(tx: Tx, actor: Actor, action: string, target: string | null, detail?: Record<string, unknown>): Promise<void> {
  await tx.auditEvent.create({ data: { actor, action, target, ...(detail ? { detail: detail as Prisma.InputJsonValue } : {}) } });
}

/**
 * A unique-constraint violation: Prisma's P2002 through the pg adapter, the raw Postgres SQLSTATE
 * 23505 through the PGlite adapter.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: string }).code : undefined;
  return code === 'P2002' || code === '23505';
}
