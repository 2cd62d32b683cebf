/**
 * The `node_links` table: each node's last link report. Telemetry like presence, not a state
 * change: no audit event and no outbox entry (nothing in a netmap depends on it). Written in
 * batches by apps/server/src/links.ts at a bounded rate; read by the REST routes of any replica.
 */
import type { LinkCounts } from '../links.js';
import type { StateContext } from './context.js';

/** One stored link: what the agent sent, and when this server got it (ms since the epoch). */
export interface StoredLink {
  peer: number;
  path: 'direct' | 'relay' | 'none';
  endpoint: string | null;
  handshakeAgeS: number | null;
  rxBytes: number;
  txBytes: number;
  stale: boolean;
  receivedAt: number;
}

export interface LinkRow {
  nodeId: number;
  links: StoredLink[];
  direct: number;
  relay: number;
  none: number;
  stale: number;
  updatedAt: Date;
}

export type LinkFilter = 'stale' | 'direct' | 'relay' | 'none';

export class NodeLinks {
  constructor(private readonly ctx: StateContext) {}

  /** One statement for the whole batch; rows of nodes deleted meanwhile are left out. */
  async upsert(rows: LinkRow[]): Promise<void> {
    if (rows.length === 0) return;
    const json = JSON.stringify(rows.map((r) => ({ node_id: r.nodeId, links: r.links, direct: r.direct, relay: r.relay, none: r.none, stale: r.stale, updated_at: r.updatedAt.toISOString() })));
    await this.ctx.prisma.$executeRawUnsafe(
      `INSERT INTO node_links (node_id, links, direct, relay, "none", stale, updated_at)
       SELECT x.node_id, x.links, x.direct, x.relay, x."none", x.stale, x.updated_at
       FROM jsonb_to_recordset($1::jsonb) AS x(node_id int, links jsonb, direct int, relay int, "none" int, stale int, updated_at timestamptz)
       JOIN nodes n ON n.id = x.node_id
       ON CONFLICT (node_id) DO UPDATE SET links = EXCLUDED.links, direct = EXCLUDED.direct, relay = EXCLUDED.relay,
         "none" = EXCLUDED."none", stale = EXCLUDED.stale, updated_at = EXCLUDED.updated_at`,
      json,
    );
  }

  async forNode(nodeId: number): Promise<LinkRow | null> {
    const r = await this.ctx.prisma.nodeLinks.findUnique({ where: { nodeId } });
    return r ? { nodeId: r.nodeId, links: r.links as unknown as StoredLink[], direct: r.direct, relay: r.relay, none: r.none, stale: r.stale, updatedAt: r.updatedAt } : null;
  }

  /** Rows of online nodes that hold at least one link matching `filter` (all rows of online nodes when absent). */
  async matching(filter: LinkFilter | undefined): Promise<LinkRow[]> {
    const where = filter ? { [filter]: { gt: 0 } } : {};
    const rows = await this.ctx.prisma.nodeLinks.findMany({ where: { ...where, node: { online: true } }, orderBy: { nodeId: 'asc' } });
    return rows.map((r) => ({ nodeId: r.nodeId, links: r.links as unknown as StoredLink[], direct: r.direct, relay: r.relay, none: r.none, stale: r.stale, updatedAt: r.updatedAt }));
  }

  /**
   * Link counts summed over online nodes from the stored rows, leaving out `except` (the nodes
   * whose live counts the caller adds instead): one aggregate over the per-row count columns,
   * never the JSON of the links, so it stays cheap at 10,000 nodes.
   */
  async summary(except: number[]): Promise<LinkCounts & { nodes: number }> {
    const [r] = await this.ctx.prisma.$queryRawUnsafe<Array<LinkCounts & { nodes: number }>>(
      `SELECT coalesce(sum(l.direct), 0)::int AS direct, coalesce(sum(l.relay), 0)::int AS relay,
         coalesce(sum(l."none"), 0)::int AS "none", coalesce(sum(l.stale), 0)::int AS stale,
         (count(*) FILTER (WHERE l.direct + l.relay + l."none" > 0))::int AS nodes
       FROM node_links l JOIN nodes n ON n.id = l.node_id
       WHERE n.online AND NOT (l.node_id = ANY($1::int[]))`,
      except,
    );
    return r!;
  }

  /** Names of nodes by id, for the REST answers. */
  async names(ids: number[]): Promise<Map<number, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.ctx.prisma.node.findMany({ where: { id: { in: ids } }, select: { id: true, name: true } });
    return new Map(rows.map((r) => [r.id, r.name]));
  }
}
