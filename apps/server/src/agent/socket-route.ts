/**
 * `GET /agent/v1` (WebSocket): one per node. The machine token is checked before the upgrade
 * (socket-auth.ts): a bad token or unknown node gets 401, an expired node 410, as problem+json.
 * Agent messages are small JSON; anything malformed or oversize closes that socket only.
 */
import type { FastifyInstance } from 'fastify';
import type WebSocket from 'ws';
import { CloseCode, NETMAP_ENCODING_DEFLATE, NETMAP_ENCODING_HEADER, NETMAP_ENDPOINTS_HEADER, NETMAP_REVISION_HEADER, NetmapRevision } from '@weft/protocol';
import type { ChangeHub } from '../hub.js';
import { LinkReportError, type LinkStore } from '../links.js';
import type { Mapper } from '../mapper/mapper.js';
import type { Regions } from '../regions.js';
import type { State } from '../state/index.js';
import { AGENT_TURN_SLICE_MS, ENDPOINT_WRITE_INTERVAL_MS, PING_INTERVAL_MS } from '../tunables.js';
import { readAgentMessage } from './agent-message.js';
import { EndpointWriter } from './endpoint-writer.js';
import { agentNode, authenticateAgent } from './socket-auth.js';
import { Turns } from './turns.js';

export function socketRoute(app: FastifyInstance, state: State, mapper: Mapper, hub: ChangeHub, links: LinkStore, regions?: Regions): void {
  const endpoints = new EndpointWriter({
    write: (nodeId, list) => state.nodes.patch(nodeId, { endpoints: list }),
    intervalMs: ENDPOINT_WRITE_INTERVAL_MS,
    onError: (nodeId, err) => app.log.error({ err, nodeId }, 'failed to store endpoints'),
  });
  app.addHook('onClose', () => endpoints.close());
  const turns = new Turns(AGENT_TURN_SLICE_MS);
  app.get('/agent/v1', {
    websocket: true,
    schema: { hide: true } as object,
    preValidation: async (req) => {
      await turns.turn();
      return authenticateAgent(state, req, mapper);
    },
  }, async (socket, req) => {
    const node = agentNode(req);
    if (!node) return socket.close(CloseCode.Unauthorized, 'machine token invalid');
    // Listeners go on before the first await: ws emits what arrives at once, and a message an
    // agent sent while the mapper was still busy would otherwise be lost (an endpoint report the
    // agent does not repeat until its addresses change again).
    const early: Array<[WebSocket.RawData, boolean]> = [];
    const hold = (data: WebSocket.RawData, isBinary: boolean) => early.push([data, isBinary]);
    socket.on('message', hold);
    await mapper.settled();
    socket.off('message', hold);
    const nodeId = node.id;
    const session = mapper.attach(node, socket, {
      regionsJson: regions?.jsonFor(req.hostname),
      heldRevision: heldRevision(req.headers[NETMAP_REVISION_HEADER]),
      heldEndpoints: heldRevision(req.headers[NETMAP_ENDPOINTS_HEADER]),
      deflate: req.headers[NETMAP_ENCODING_HEADER] === NETMAP_ENCODING_DEFLATE,
    });
    if (!session) return;
    endpoints.attach(nodeId, node.endpoints);
    links.attach(nodeId);
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, PING_INTERVAL_MS);
    socket.on('pong', () => (alive = true));
    state.presence.connected(nodeId);

    const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
      alive = true;
      if (session.closed) return;
      const read = readAgentMessage(data, isBinary);
      if (!read.ok) return session.close(read.code, read.reason);
      const msg = read.msg;
      if (msg.type === 'resync') mapper.resync(session);
      else if (msg.type === 'endpoints') endpoints.report(nodeId, msg.endpoints);
      else if (msg.type === 'nat') {
        const at = Date.now();
        if (mapper.natReported(nodeId, msg.nat, at)) state.nat.reported(nodeId, msg.nat, at);
      }
      else if (msg.type === 'links') {
        try {
          links.report(nodeId, msg);
        } catch (err) {
          if (err instanceof LinkReportError) return session.close(CloseCode.BadMessage, err.message);
          throw err;
        }
      }
    };
    socket.on('message', onMessage);
    for (const [data, isBinary] of early) onMessage(data, isBinary);
    socket.on('close', () => {
      clearInterval(ping);
      session.closed = true;
      mapper.detach(session);
      void endpoints.detach(nodeId);
      void links.detach(nodeId);
      // A newer connection of the same node may already have replaced this one. At shutdown the
      // node is not marked offline: it reconnects to another replica or to this one restarted.
      if (!mapper.isAttached(nodeId)) {
        // Its netcheck verdict is this connection's: peers stop seeing it (a reconnect reports it again).
        const at = Date.now();
        const natCleared = mapper.natReported(nodeId, null, at);
        if (!hub.closed) {
          if (natCleared) state.nat.reported(nodeId, null, at);
          state.presence.disconnected(nodeId);
        }
      }
    });
  });
}

/**
 * The peer-list revision the agent says it holds; undefined when it sent none, or anything but
 * one well-formed revision (it then gets the full netmap, as an agent that sent none would).
 */
function heldRevision(header: string | string[] | undefined): string | undefined {
  const r = NetmapRevision.safeParse(header);
  return r.success ? r.data : undefined;
}
