/**
 * The relay mesh between replicas (HA; @weft/relay relay-mesh.ts has the frames and the token):
 * with several weft-server replicas behind one address, a node's relay socket lands on any of
 * them, and two nodes on different replicas still relay to each other.
 *
 * - `GET /api/v1/relay/mesh` (WebSocket): another replica's link into this one. Refused before the
 *   upgrade with 401 machine_unauthorized problem+json unless `Authorization: Bearer <mesh token>`
 *   verifies under the mesh secret (the `relay_mesh_secret` setting, made once and shared by every
 *   replica through the database) within MESH_TOKEN_MAX_SKEW_MS. Frames on it are only read.
 * - `RelayMeshDialer`: this replica's links out, one to each peer replica URL (config
 *   `relayMeshPeers`), each with a fresh token naming this replica (`relayMeshUrl`, the URL other
 *   replicas reach it at); the relay only sends on these. Reconnects with backoff.
 *
 * A replica's id in the mesh is derived from its mesh URL, so every replica computes the same id
 * for a peer from its configured URL as that peer puts in its own token.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { MAX_FRAME_BYTES, meshToken, RelayClose, verifyMeshToken, type RelayServer } from '@weft/relay';
import { ApiError, Errors } from '../errors.js';
import { MESH_RECONNECT_MAX_MS, MESH_RECONNECT_MIN_MS, MESH_TOKEN_MAX_SKEW_MS } from '../tunables.js';

export const RELAY_MESH_PATH = '/api/v1/relay/mesh';

/** The mesh id of the replica whose mesh URL is `url` (normalised by URL parsing). */
export function meshReplicaId(url: string): string {
  return createHash('sha256').update(new URL(url).toString()).digest('base64url').slice(0, 22);
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export function relayMeshRoute(app: FastifyInstance, relay: RelayServer, secret: Buffer, log: Log): void {
  app.get(RELAY_MESH_PATH, {
    websocket: true,
    schema: { hide: true } as object,
    preValidation: async (req) => {
      const auth = req.headers.authorization;
      const token = auth?.startsWith('Bearer ') ? auth.slice(7) : '';
      const check = verifyMeshToken(secret, token, Date.now(), MESH_TOKEN_MAX_SKEW_MS);
      if (!check.ok) {
        relay.counters.mesh.linksRefused++;
        throw new ApiError(Errors.machineUnauthorized, `relay mesh: ${check.reason}`);
      }
      (req as { meshReplica?: string }).meshReplica = check.replicaId;
    },
  }, (socket, req) => {
    const replica = (req as { meshReplica?: string }).meshReplica!;
    log.info({ replica }, 'relay mesh: a replica linked in');
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const reason = isBinary ? relay.receiveMesh(replica, data) : 'mesh frames are binary';
      if (reason) socket.close(RelayClose.BadFrame, reason);
    });
    socket.on('close', () => relay.forgetReplica(replica));
  });
}

export interface RelayMeshDialerOptions {
  relay: RelayServer;
  secret: Buffer;
  /** This replica's mesh URL (what the peers have in their `relayMeshPeers`). */
  selfUrl: string;
  peers: string[];
  log: Log;
}

/** Keeps one link open to each peer replica; the relay sends on them. */
export class RelayMeshDialer {
  private readonly selfId: string;
  private readonly sockets = new Map<string, WebSocket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly opts: RelayMeshDialerOptions) {
    this.selfId = meshReplicaId(opts.selfUrl);
    for (const peer of opts.peers) if (meshReplicaId(peer) !== this.selfId) this.dial(peer, 0);
  }

  /** Peer URLs with an open link. */
  get linked(): string[] {
    return [...this.sockets.entries()].filter(([, ws]) => ws.readyState === WebSocket.OPEN).map(([u]) => u);
  }

  close(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const ws of this.sockets.values()) ws.close(1001, 'replica shutting down');
  }

  private dial(peer: string, attempt: number): void {
    if (this.stopped) return;
    const url = new URL(peer);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = url.pathname.replace(/\/+$/, '') + RELAY_MESH_PATH;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${meshToken(this.opts.secret, this.selfId, Date.now())}` }, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES + 64 });
    this.sockets.set(peer, ws);
    const peerId = meshReplicaId(peer);
    const link = { get bufferedAmount() { return ws.bufferedAmount; }, send: (d: Buffer, o: { binary: true }) => ws.send(d, o) };
    ws.on('open', () => {
      attempt = 0;
      this.opts.log.info({ peer }, 'relay mesh: linked to a replica');
      this.opts.relay.addMeshLink(peerId, link);
    });
    ws.on('unexpected-response', (_req, res) => {
      this.opts.log.warn({ peer, status: res.statusCode }, 'relay mesh: the replica refused the link (same relayMeshSecret? same clock?)');
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      this.opts.relay.removeMeshLink(peerId, link);
      if (this.sockets.get(peer) === ws) this.sockets.delete(peer);
      if (this.stopped) return;
      const delay = Math.min(MESH_RECONNECT_MAX_MS, MESH_RECONNECT_MIN_MS * 2 ** attempt);
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.dial(peer, attempt + 1);
      }, delay);
      t.unref();
      this.timers.add(t);
    });
  }
}
