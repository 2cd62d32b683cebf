/**
 * Link health over REST: one node's links, and the fleet query ("which links are dead right
 * now": `GET /api/v1/links?state=stale`). Nodes with a session on this replica answer from
 * memory (live); others from their stored row (links.ts says how far behind it may be). The
 * summary (`/api/v1/links/summary`, the dashboard's counts) sums the rows' count columns the same way.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { FleetLinks, IdParam, LinksQuery, LinksSummary, NodeLinksView, Problem } from '@weft/protocol';
import { linkView, type LinkStore } from '../links.js';
import type { AbuseLimits } from '../rate-limit.js';
import type { State } from '../state/index.js';
import type { LinkFilter, StoredLink } from '../state/node-links.js';
import { authenticate } from './auth.js';

const errors = { '4xx': Problem, '5xx': Problem } as const;

const matches = (l: StoredLink, f: LinkFilter | undefined) => !f || (f === 'stale' ? l.stale : l.path === f);

export function linksRoutes(app: FastifyInstance, state: State, limits: AbuseLimits, store: LinkStore): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tag = { tags: ['links'], security: [{ bearer: [] }] };

  r.get('/api/v1/nodes/:id/links', {
    schema: { ...tag, summary: "A node's WireGuard links as its agent last reported them", params: IdParam, response: { 200: NodeLinksView, ...errors } },
  }, async (req) => {
    await authenticate(req, state, limits, 'read');
    const node = await state.nodes.get(req.params.id); // 404 node_not_found
    const live = store.live(node.id);
    const links = live ?? (await state.links.forNode(node.id))?.links;
    const names = await state.links.names((links ?? []).map((l) => l.peer));
    const now = Date.now();
    return { nodeId: node.id, source: live ? 'live' as const : links ? 'stored' as const : 'none' as const, links: (links ?? []).map((l) => linkView(l, now, names.get(l.peer))) };
  });

  r.get('/api/v1/links', {
    schema: { ...tag, summary: 'Links of every online node, e.g. `?state=stale`: the dead ones right now', querystring: LinksQuery, response: { 200: FleetLinks, ...errors } },
  }, async (req) => {
    await authenticate(req, state, limits, 'read');
    const filter = req.query.state;
    const byNode = new Map<number, StoredLink[]>();
    for (const row of await state.links.matching(filter)) byNode.set(row.nodeId, row.links);
    // This replica's sessions are current: they replace what is stored (a link that just went stale
    // is here before its row is written; one that recovered is no longer listed).
    for (const [id, links] of store.liveNodes()) byNode.set(id, links);
    const picked: Array<[number, StoredLink]> = [];
    for (const [nodeId, links] of [...byNode].sort((a, b) => a[0] - b[0])) for (const l of links) if (matches(l, filter)) picked.push([nodeId, l]);
    const names = await state.links.names([...new Set(picked.flatMap(([n, l]) => [n, l.peer]))]);
    const now = Date.now();
    return { items: picked.map(([nodeId, l]) => ({ nodeId, nodeName: names.get(nodeId) ?? null, ...linkView(l, now, names.get(l.peer)) })) };
  });

  r.get('/api/v1/links/summary', {
    schema: { ...tag, summary: 'How many links of online nodes are direct, relayed, without a path and stale right now', response: { 200: LinksSummary, ...errors } },
  }, async (req) => {
    await authenticate(req, state, limits, 'read');
    const live = store.liveCounts();
    const t = await state.links.summary(live.map(([id]) => id));
    for (const [, c] of live) {
      t.direct += c.direct;
      t.relay += c.relay;
      t.none += c.none;
      t.stale += c.stale;
      if (c.direct + c.relay + c.none > 0) t.nodes++;
    }
    return t;
  });
}
