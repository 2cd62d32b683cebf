/** What every part of the write path shares: the database, the change sink, settings, the audit log. */
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '@weft/db';
import type { ChangeSink } from './changes.js';

export type Tx = Prisma.TransactionClient;

/** Where a change came from: REST with an API key, the admin socket (the CLI), an agent, the server itself. */
export type Origin = 'api' | 'cli' | 'agent' | 'system';

/** Who did it, for the audit log (docs/design.md "Identity": every event names one principal). */
export interface Actor {
  type: 'apikey' | 'local-socket' | 'node' | 'authkey' | 'system';
  /** The principal's row id (API key id, node id), when it has one. */
  id?: string;
  /** Key prefix, node name. */
  name?: string;
  origin: Origin;
  /** Source address of the request; absent for the admin socket and the system. */
  ip?: string;
}

export const SYSTEM: Actor = { type: 'system', origin: 'system' };

/** The actor as one label, as `audit_events.actor` always held it: "apikey:<prefix>", "node:<id>", "system". */
export function actorLabel(a: Actor): string {
  if (a.type === 'system' || a.type === 'local-socket') return a.type;
  if (a.type === 'node') return `node:${a.id ?? a.name ?? '?'}`;
  return `${a.type}:${a.name ?? a.id ?? '?'}`;
}

export interface StateContext {
  prisma: PrismaClient;
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

/** Arbitrary constant naming the audit log's commit-order lock in pg_advisory_xact_lock. */
const AUDIT_ORDER_LOCK = 0x77656661;

export interface AuditExtra {
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  /** Shared by the events of one operation; a fresh one per event when absent. */
  groupId?: string;
}

/**
 * Appends one event inside the caller's transaction. Events are written under a transaction-level
 * lock taken just before the insert and held to commit, so ids become visible in id order: a
 * reader paging by id (`GET /api/v1/audit`) never passes over an event that commits later with a
 * smaller id. Every write path calls this last in its transaction, so the lock is held only for
 * the insert and the commit.
 */
export async function audit(tx: Tx, actor: Actor, action: string, target: string | null, detail?: Record<string, unknown>, extra: AuditExtra = {}): Promise<void> {
  await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${AUDIT_ORDER_LOCK})`);
  const json = (v: Record<string, unknown> | undefined) => (v ? (v as Prisma.InputJsonValue) : undefined);
  await tx.auditEvent.create({
    data: {
      actor: actorLabel(actor),
      actorType: actor.type,
      actorId: actor.id ?? null,
      actorName: actor.name ?? null,
      origin: actor.origin,
      ip: actor.ip ?? null,
      action,
      target,
      groupId: extra.groupId ?? randomUUID(),
      detail: json(detail),
      before: json(extra.before),
      after: json(extra.after),
    },
  });
}

/**
 * A unique-constraint violation: Prisma's P2002 through the pg adapter, the raw Postgres SQLSTATE
 * 23505 through the PGlite adapter.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: string }).code : undefined;
  return code === 'P2002' || code === '23505';
}
