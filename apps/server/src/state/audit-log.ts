/**
 * Reading the audit log (writing is `audit()` in context.ts, inside each write's transaction).
 * Pages are ordered by id and cut by an id cursor; because events commit in id order (the audit
 * lock), a reader that pages from `after` sees every event exactly once, however many are being
 * written meanwhile.
 */
import type { AuditEvent as DbAuditEvent, Prisma } from '@weft/db';
import type { AuditEvent, AuditPage, AuditQuery } from '@weft/protocol';
import { audit, type Actor, type StateContext } from './context.js';

const DEFAULT_PAGE = 100;

export class AuditLog {
  constructor(private readonly ctx: StateContext) {}

  /** An event that is not a state change of its own (a backup taken), in its own transaction. */
  async record(actor: Actor, action: string, target: string | null, detail?: Record<string, unknown>): Promise<void> {
    await this.ctx.prisma.$transaction((tx) => audit(tx, actor, action, target, detail));
  }

  async list(q: AuditQuery): Promise<AuditPage> {
    const limit = q.limit ?? DEFAULT_PAGE;
    const at: Prisma.DateTimeFilter = {};
    if (q.since) at.gte = new Date(q.since);
    if (q.until) at.lt = new Date(q.until);
    const rows = await this.ctx.prisma.auditEvent.findMany({
      where: {
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.action ? { action: { startsWith: q.action } } : {}),
        ...(q.target ? { target: q.target } : {}),
        ...(q.since || q.until ? { at } : {}),
        ...(q.after ? { id: { gt: BigInt(q.after) } } : {}),
      },
      orderBy: { id: 'asc' },
      take: limit + 1,
    });
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map(auditDto);
    return { items, next: more ? items.at(-1)!.id : null };
  }
}

export function auditDto(e: DbAuditEvent): AuditEvent {
  return {
    id: e.id.toString(),
    at: e.at.toISOString(),
    actor: e.actor,
    actorType: e.actorType,
    actorId: e.actorId,
    actorName: e.actorName,
    origin: e.origin,
    action: e.action,
    target: e.target,
    ip: e.ip,
    groupId: e.groupId,
    before: e.before ?? null,
    after: e.after ?? null,
    detail: e.detail ?? null,
  };
}
