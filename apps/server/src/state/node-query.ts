/**
 * `GET /api/v1/nodes`'s filters, sort and paging as Prisma arguments (the admin UI's devices page
 * at 10,000 nodes: the database searches, sorts and cuts; the server never loads the fleet).
 */
import type { Prisma } from '@weft/db';
import type { NodeQuery, NodeSort } from '@weft/protocol';

export function nodeWhere(q: Pick<NodeQuery, 'q' | 'status'>, now = new Date()): Prisma.NodeWhereInput {
  const and: Prisma.NodeWhereInput[] = [];
  if (q.q) {
    const contains = { contains: q.q, mode: 'insensitive' } as const;
    and.push({ OR: [{ name: contains }, { hostname: contains }, { ipv4: contains }, { ipv6: contains }, { user: { name: contains } }, { tags: { has: q.q } }] });
  }
  if (q.status === 'online') and.push({ online: true });
  if (q.status === 'expired') and.push({ expiresAt: { lte: now } });
  if (q.status === 'pending') and.push({ approvalPending: true });
  if (q.status === 'offline') and.push({ online: false, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] });
  return and.length ? { AND: and } : {};
}

/** The sort column, then id in the same direction: equal keys never swap between pages. */
export function nodeOrderBy(sort: NodeSort = 'id', order: 'asc' | 'desc' = 'asc'): Prisma.NodeOrderByWithRelationInput[] {
  const byId = { id: order } as const;
  switch (sort) {
    case 'id':
      return [byId];
    case 'user':
      return [{ user: { name: order } }, byId];
    case 'lastSeen':
    case 'expiresAt':
      // Never seen / never expiring: last in either direction (they are the least interesting).
      return [{ [sort]: { sort: order, nulls: 'last' } }, byId];
    default:
      return [{ [sort]: order }, byId];
  }
}
