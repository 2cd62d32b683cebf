/**
 * `GET /api/v1/relay/region` (WebSocket): where a standalone `weft-relay` (another relay region)
 * joins this server. The relay holds the deployment's relay mesh secret (`relay_mesh_secret`,
 * `weft-server relay-secret` prints it) and dials here with a mesh token; this one socket then
 * carries, both ways:
 *
 * - binary messages: relay mesh frames (@weft/relay relay-mesh.ts), so a node homed on the
 *   standalone relay and one homed here (or on another standalone relay) reach each other: this
 *   server's relay forwards to the region and the region forwards to this server;
 * - text messages: the authority protocol (JSON, RegionMessage below), by which the relay asks this
 *   server who a client is (the client's machine token, checked exactly as `/api/v1/relay` checks
 *   it) and learns whom each of its clients may relay to (`peersOf`: netmap peers under the policy),
 *   pushed again after every change that can alter it, and a cut-off (node deleted, expired,
 *   suspended, key rotated) the moment the mapper applies it, so offboarding cuts relayed traffic
 *   on a standalone relay as fast as on the embedded one.
 *
 * Authentication is mutual: the relay's token is verified before the upgrade (401 problem+json
 * otherwise), and the server's first message (`hello`) carries a token of its own, so a relay
 * that dialed the wrong place (or a man in the middle without the secret) is told nothing.
 * A machine token is forwarded to this server as the client sent it: the relay is trusted as far
 * as holding the mesh secret trusts it (it could forward any packet a replica could).
 */
import type { FastifyInstance } from 'fastify';
import type WebSocket from 'ws';
import { keyBytes, type NodePublicKey } from '@weft/crypto';
import { CloseCode } from '@weft/protocol';
import { meshToken, RelayClose, verifyMeshToken, type RelayServer } from '@weft/relay';
import { ApiError, Errors, problemBody } from '../errors.js';
import type { Mapper } from '../mapper/mapper.js';
import type { State } from '../state/index.js';
import { MESH_TOKEN_MAX_SKEW_MS, REGION_PEERS_PUSH_DELAY_MS } from '../tunables.js';
import { authenticateMachine } from './socket-auth.js';

export const RELAY_REGION_PATH = '/api/v1/relay/region';

/**
 * The authority protocol (text frames, one JSON object each).
 * relay -> server:
 *   { type: 'auth', id, authorization }     who is this client? (its Authorization header)
 *   { type: 'left', nodeId }                the relay no longer holds this node
 * server -> relay:
 *   { type: 'hello', replica, token }       the server's mesh id, and a mesh token naming it
 *   { type: 'auth', id, ok: true, nodeId, nodeKey (hex), peers }   or
 *   { type: 'auth', id, ok: false, problem }                        (RFC 7807 body, status inside)
 *   { type: 'peers', nodeId, peers }        whom nodeId may relay to now (node ids)
 *   { type: 'cut', nodeId, code, reason }   close this node's relay socket now
 */
export type RegionToServer = { type: 'auth'; id: number; authorization: string } | { type: 'left'; nodeId: number };
export type ServerToRegion =
  | { type: 'hello'; replica: string; token: string }
  | { type: 'auth'; id: number; ok: true; nodeId: number; nodeKey: string; peers: number[] }
  | { type: 'auth'; id: number; ok: false; problem: ReturnType<typeof problemBody> }
  | { type: 'peers'; nodeId: number; peers: number[] }
  | { type: 'cut'; nodeId: number; code: number; reason: string };

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export interface RelayRegionOptions {
  state: State;
  mapper: Mapper;
  relay: RelayServer;
  secret: Buffer;
  /**
   * This server's mesh id (what it names itself in `hello`): this process's own (the change hub's
   * origin), since every replica behind one address has the same server URL and a region linked
   * to several replicas must tell them apart.
   */
  selfReplica: string;
  log: Log;
}

export function relayRegionRoute(app: FastifyInstance, opts: RelayRegionOptions): void {
  const { state, mapper, relay, secret, log } = opts;
  /** Open region links, each with the nodes it holds. */
  const links = new Set<{ socket: WebSocket; nodes: Set<number> }>();
  const send = (socket: WebSocket, msg: ServerToRegion) => {
    if (socket.readyState === 1) socket.send(JSON.stringify(msg));
  };
  mapper.onCutOff((nodeId, code, reason) => {
    for (const l of links) if (l.nodes.has(nodeId)) send(l.socket, { type: 'cut', nodeId, code, reason });
  });
  // Visibility changes come in bursts (a policy change, a batch of joins): one push per burst.
  let pushTimer: NodeJS.Timeout | undefined;
  mapper.onVisibilityChange(() => {
    if (pushTimer || links.size === 0) return;
    pushTimer = setTimeout(() => {
      pushTimer = undefined;
      for (const l of links) for (const nodeId of l.nodes) send(l.socket, { type: 'peers', nodeId, peers: mapper.peersOf(nodeId) });
    }, REGION_PEERS_PUSH_DELAY_MS);
    pushTimer.unref();
  });

  app.get(RELAY_REGION_PATH, {
    websocket: true,
    schema: { hide: true } as object,
    preValidation: async (req) => {
      const auth = req.headers.authorization;
      const check = verifyMeshToken(secret, auth?.startsWith('Bearer ') ? auth.slice(7) : '', Date.now(), MESH_TOKEN_MAX_SKEW_MS);
      if (!check.ok) {
        relay.counters.mesh.linksRefused++;
        throw new ApiError(Errors.machineUnauthorized, `relay region: ${check.reason}`);
      }
      (req as { regionReplica?: string }).regionReplica = check.replicaId;
    },
  }, (socket, req) => {
    const replica = (req as { regionReplica?: string }).regionReplica!;
    const link = { socket, nodes: new Set<number>() };
    links.add(link);
    log.info({ replica }, 'relay region: a standalone relay joined');
    send(socket, { type: 'hello', replica: opts.selfReplica, token: meshToken(secret, opts.selfReplica, Date.now()) });
    const meshLink = { get bufferedAmount() { return socket.bufferedAmount; }, send: (d: Buffer, o: { binary: true }) => socket.send(d, o) };
    relay.addMeshLink(replica, meshLink, 'region');
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const bad = relay.receiveMesh(replica, data, 'region');
        if (bad) socket.close(RelayClose.BadFrame, bad);
        return;
      }
      let msg: RegionToServer;
      try {
        msg = JSON.parse(data.toString('utf8')) as RegionToServer;
      } catch {
        return socket.close(RelayClose.BadFrame, 'authority message is not JSON');
      }
      if (msg.type === 'left' && Number.isInteger(msg.nodeId)) link.nodes.delete(msg.nodeId);
      else if (msg.type === 'auth' && Number.isInteger(msg.id) && typeof msg.authorization === 'string') void answerAuth(link, msg.id, msg.authorization);
      else socket.close(RelayClose.BadFrame, 'unknown authority message');
    });
    socket.on('close', () => {
      links.delete(link);
      relay.removeMeshLink(replica, meshLink);
      relay.forgetReplica(replica);
      log.info({ replica }, 'relay region: a standalone relay left');
    });
  });

  async function answerAuth(link: { socket: WebSocket; nodes: Set<number> }, id: number, authorization: string): Promise<void> {
    try {
      const node = await authenticateMachine(state, authorization, mapper);
      // As at /api/v1/relay: a cut-off applied while this was asked has fired already.
      await mapper.settled();
      const refused = mapper.cutOff(node.id);
      if (refused) throw new ApiError(refused.code === CloseCode.NodeExpired ? Errors.nodeExpired : Errors.userSuspended, refused.reason);
      link.nodes.add(node.id);
      send(link.socket, { type: 'auth', id, ok: true, nodeId: node.id, nodeKey: Buffer.from(keyBytes(node.nodeKey as NodePublicKey)).toString('hex'), peers: mapper.peersOf(node.id) });
    } catch (err) {
      const def = err instanceof ApiError ? err.def : Errors.internal;
      send(link.socket, { type: 'auth', id, ok: false, problem: problemBody(def, err instanceof ApiError ? err.detail : undefined) });
    }
  }
}
