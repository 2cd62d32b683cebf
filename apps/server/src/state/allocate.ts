/**
 * Creating a node row: tunnel addresses and a unique name. Runs inside a transaction that first
 * takes a Postgres advisory lock, so allocation is serialised across every replica sharing the
 * database; the unique indexes on ipv4_int, ipv6 and name are the backstop.
 */
import type { DbNodeCreate } from './node-create.js';
import { ApiError, Errors } from '../errors.js';
import { intToIpv4, ipv6For, IPV4_FIRST, IPV4_LAST } from './addresses.js';
import type { StateContext, Tx } from './context.js';
import { withUser } from './dto.js';
import { sanitizeHostname, uniqueName } from './hostname.js';

/** Arbitrary constant naming Weft's allocation lock in pg_advisory_xact_lock. */
const ALLOCATION_LOCK = 0x77656674; // "weft"

export async function lockAllocation(tx: Tx): Promise<void> {
  await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${ALLOCATION_LOCK})`);
}

async function nextIpv4(tx: Tx): Promise<number> {
  const top = await tx.node.findFirst({ orderBy: { ipv4Int: 'desc' }, select: { ipv4Int: true } });
  const next = top ? top.ipv4Int + 1 : IPV4_FIRST;
  if (next <= IPV4_LAST) return next;
  // The top of the range is used: take the lowest gap left by deleted nodes.
  const rows = await tx.$queryRawUnsafe<{ free: number }[]>(
    `SELECT n.ipv4_int + 1 AS free FROM nodes n
       WHERE n.ipv4_int + 1 <= $1 AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.ipv4_int = n.ipv4_int + 1)
       ORDER BY 1 LIMIT 1`,
    IPV4_LAST,
  );
  const low = await tx.node.findFirst({ where: { ipv4Int: IPV4_FIRST }, select: { id: true } });
  if (!low) return IPV4_FIRST;
  if (!rows[0]) throw new ApiError(Errors.addressesExhausted, 'every address in 100.64.0.0/10 is in use');
  return Number(rows[0].free);
}

async function freeName(tx: Tx, hostname: string): Promise<string> {
  const base = sanitizeHostname(hostname);
  if (!(await tx.node.findUnique({ where: { name: base }, select: { id: true } }))) return base;
  // Taken: look only at "<base>-<n>" names, not every name sharing the prefix.
  const suffixed = await tx.node.findMany({ where: { name: { startsWith: `${base.slice(0, 60)}-` } }, select: { name: true } });
  const pattern = /-\d+$/;
  return uniqueName(base, new Set([base, ...suffixed.map((n) => n.name).filter((n) => pattern.test(n))]));
}

/** Inserts a node with fresh addresses and a unique name. Caller holds the allocation lock. */
export async function insertNode(ctx: StateContext, tx: Tx, data: DbNodeCreate) {
  const ipv4Int = await nextIpv4(tx);
  return tx.node.create({
    data: {
      ...data,
      name: await freeName(tx, data.hostname),
      ipv4Int,
      ipv4: intToIpv4(ipv4Int),
      ipv6: ipv6For(ctx.ulaPrefix, ipv4Int),
    },
    include: withUser,
  });
}
