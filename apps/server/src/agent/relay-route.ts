/**
 * `GET /api/v1/relay` (WebSocket, binary frames of @weft/relay's relay-frame.ts): the embedded
 * DERP-style relay on the server's own HTTP(S) port, so a node whose network lets only TCP to the
 * server out still reaches its peers. Authenticated exactly like `/agent/v1`, before the upgrade
 * (socket-auth.ts: 401 bad token or unknown node, 410 expired, 403 suspended, as problem+json);
 * the node key the relay stamps on this client's packets is the one stored for the node the
 * machine token proved. Which pairs may talk is the mapper's `mayRelay`; a node the mapper cuts off
 * (deleted, expired, suspended) loses its relay socket with the same close code as its control one.
 *
 * Socket sizing: ws turns Nagle off (setNoDelay) on every socket it upgrades; the TCP buffers are
 * left to Linux's autotuning (tcp_rmem / tcp_wmem, up to several MB), since fixing SO_SNDBUF or
 * SO_RCVBUF would switch autotuning off for the socket. The relay's own queue bound per client
 * (RELAY_QUEUE_BYTES, 4 MiB) sits above a relayed flow's bandwidth-delay product.
 */
import type { FastifyInstance } from 'fastify';
import { keyBytes, type NodePublicKey } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { RELAY_HTTP_PATH, type RelayServer } from '@weft/relay';
import type { Mapper } from '../mapper/mapper.js';
import type { State } from '../state/index.js';
import { agentNode, authenticateAgent } from './socket-auth.js';

export function relayRoute(app: FastifyInstance, state: State, mapper: Mapper, relay: RelayServer): void {
  mapper.onCutOff((nodeId, code, reason) => relay.closeNode(nodeId, code, reason));
  app.get(RELAY_HTTP_PATH, {
    websocket: true,
    schema: { hide: true } as object,
    preValidation: (req) => authenticateAgent(state, req, mapper),
  }, async (socket, req) => {
    const node = agentNode(req);
    if (!node) return socket.close(CloseCode.Unauthorized, 'machine token invalid');
    // A deletion, expiry or suspension applied while this socket was upgrading has already fired
    // its cut-off: wait for the mapper, then refuse a node it no longer lets relay.
    await mapper.settled();
    const refused = mapper.cutOff(node.id);
    if (refused) return socket.close(refused.code, refused.reason);
    relay.accept(socket, node.id, keyBytes(node.nodeKey as NodePublicKey), req.raw.socket);
  });
}
