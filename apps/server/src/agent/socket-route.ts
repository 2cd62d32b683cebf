/**
 * `GET /agent/v1` (WebSocket): one per node. The machine token is checked before the upgrade
 * completes; a deleted node is refused, an expired one told so. Agent messages are small JSON;
 * anything malformed or oversize closes that socket only.
 */
import type { FastifyInstance } from 'fastify';
import { AgentMessage, CloseCode, MAX_AGENT_MESSAGE_BYTES } from '@weft/protocol';
import type { ChangeHub } from '../hub.js';
import type { Mapper } from '../mapper/mapper.js';
import { isExpired, type NodeWithUser, type State } from '../state/index.js';
import { machineKeyFrom } from './register-route.js';

/** Server pings this often; an agent that misses two is dropped. */
const PING_INTERVAL_MS = 15_000;

export function socketRoute(app: FastifyInstance, state: State, mapper: Mapper, hub: ChangeHub): void {
  app.get('/agent/v1', { websocket: true, schema: { hide: true } as object }, async (socket, req) => {
    let node: NodeWithUser | null;
    try {
      const machineKey = await machineKeyFrom(req.headers.authorization);
      node = await state.nodes.byMachineKey(machineKey);
      if (!node) return socket.close(CloseCode.Unauthorized, 'no node has this machine key; run weft up');
      if (isExpired(node)) return socket.close(CloseCode.NodeExpired, 'node key expired; run weft up');
    } catch (err) {
      req.log.info({ err: (err as Error).message }, 'agent refused');
      return socket.close(CloseCode.Unauthorized, 'machine token invalid');
    }
    await mapper.settled();
    const nodeId = node.id;
    const session = mapper.attach(node, socket);
    if (!session) return;
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, PING_INTERVAL_MS);
    socket.on('pong', () => (alive = true));
    state.presence.connected(nodeId);

    socket.on('message', (data, isBinary) => {
      alive = true;
      const msg = isBinary ? null : parse(data.toString());
      if (!msg) return session.close(CloseCode.BadMessage, 'message is not a valid agent message');
      if (msg.type === 'resync') mapper.sendNetmap(session);
      else if (msg.type === 'endpoints') void state.nodes.patch(nodeId, { endpoints: msg.endpoints }).catch((err: unknown) => req.log.error({ err }, 'failed to store endpoints'));
    });
    socket.on('close', () => {
      clearInterval(ping);
      session.closed = true;
      mapper.detach(session);
      // A newer connection of the same node may already have replaced this one. At shutdown the
      // node is not marked offline: it reconnects to another replica or to this one restarted.
      if (!mapper.isAttached(nodeId) && !hub.closed) state.presence.disconnected(nodeId);
    });
  });
}

function parse(text: string): AgentMessage | null {
  if (text.length > MAX_AGENT_MESSAGE_BYTES) return null;
  try {
    const r = AgentMessage.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
