/**
 * The packet relay of a standalone `weft-relay` region: @weft/relay's RelayServer (the same one
 * weft-server embeds) on this process's own HTTP port (`GET /api/v1/relay`, WebSocket) and on the
 * STUN port (UDP), joined to the control server by one authenticated link
 * (`GET <server>/api/v1/relay/region`, apps/server/src/agent/relay-region.ts has the protocol):
 *
 * - a client is let in only when the server, asked over the link, says its machine token proves a
 *   live node (the refusal is the server's own problem+json, with its status); with no link to
 *   the server, clients are refused (503, retryable) and the ones connected are closed: a relay
 *   that cannot hear revocations must not go on carrying packets;
 * - packets pass only between pairs the server's peer sets allow (netmap peers under the policy),
 *   refreshed by the server after each change and cut at once when it cuts a node off;
 * - the link also carries relay mesh frames both ways, so nodes homed here reach nodes homed on the
 *   server (and through it nobody else: see docs/design.md, "Relay regions").
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import {
  MAX_FRAME_BYTES, parseListenAddress, RELAY_HTTP_PATH, RelayClose, RelayServer, relayOverStunPort, verifyMeshToken, meshToken, type StunServer,
} from '@weft/relay';

export const RELAY_REGION_PATH = '/api/v1/relay/region';

/** How long a client's upgrade waits for the server's answer before it is refused (503). */
export const AUTH_TIMEOUT_MS = 5000;
/** The server's hello token is accepted this far from this relay's clock. */
export const HELLO_MAX_SKEW_MS = 5 * 60_000;
/** A lost link to the server is redialled after this, doubling up to the max. */
export const RECONNECT_MIN_MS = 250;
export const RECONNECT_MAX_MS = 10_000;

type Problem = { status: number; code: string; title: string; detail?: string; retryable: boolean; type?: string };
type ServerMsg =
  | { type: 'hello'; replica: string; token: string }
  | { type: 'auth'; id: number; ok: true; nodeId: number; nodeKey: string; peers: number[] }
  | { type: 'auth'; id: number; ok: false; problem: Problem }
  | { type: 'peers'; nodeId: number; peers: number[] }
  | { type: 'cut'; nodeId: number; code: number; reason: string };

export interface RegionRelayOptions {
  /** HTTP host:port for the relay's WebSocket. */
  listen: string;
  /** The control server's URL (http(s)://...). */
  serverUrl: string;
  /** The deployment's relay mesh secret (32 bytes). */
  secret: Buffer;
  /** This relay's name in the mesh (1-64 of A-Z a-z 0-9 _ -). */
  replicaId: string;
  /** The STUN server whose UDP port also carries the relay's UDP (absent: WebSocket only). */
  stun?: StunServer;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

function problem(status: number, code: string, title: string, detail: string, retryable: boolean): Problem {
  return { type: `https://weft.dev/problems/${code}`, title, status, code, detail, retryable };
}

export class RegionRelay {
  readonly relay: RelayServer;
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
  /** Whom each node here may relay to, as the server last said. */
  private readonly peers = new Map<number, Set<number>>();
  /** Open relay sockets per node (a reconnect overlaps the old one's close). */
  private readonly sockets = new Map<number, number>();
  private link: WebSocket | undefined;
  private serverReplica: string | undefined;
  private readonly pending = new Map<number, (msg: ServerMsg) => void>();
  private nextId = 1;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private meshLink: { readonly bufferedAmount: number; send(d: Buffer, o: { binary: true }): void } | undefined;

  private constructor(private readonly opts: RegionRelayOptions) {
    this.relay = new RelayServer({ mayRelay: (a, b) => this.mayRelay(a, b) });
    if (opts.stun) relayOverStunPort(this.relay, opts.stun);
    this.http = createServer((req, res) => {
      const body = JSON.stringify(req.url === '/healthz' ? { ok: this.linked } : problem(404, 'not_found', 'No such resource', `weft-relay serves ${RELAY_HTTP_PATH} (WebSocket) and /healthz`, false));
      res.writeHead(req.url === '/healthz' ? (this.linked ? 200 : 503) : 404, { 'content-type': req.url === '/healthz' ? 'application/json' : 'application/problem+json' }).end(body);
    });
    this.http.on('upgrade', (req, socket, head) => void this.upgrade(req, socket, head));
  }

  static async start(opts: RegionRelayOptions): Promise<RegionRelay> {
    const r = new RegionRelay(opts);
    const { host, port } = parseListenAddress(opts.listen);
    await new Promise<void>((resolve, reject) => {
      r.http.once('error', reject);
      r.http.listen(port, host, () => {
        r.http.off('error', reject);
        resolve();
      });
    });
    r.dial();
    return r;
  }

  /** Linked to the control server (and authenticated both ways). */
  get linked(): boolean {
    return this.serverReplica !== undefined && this.link?.readyState === WebSocket.OPEN;
  }

  address(): { address: string; port: number } {
    return this.http.address() as { address: string; port: number };
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.relay.close(1001, 'relay shutting down');
    this.link?.close(1001, 'relay shutting down');
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private mayRelay(a: number, b: number): boolean {
    return a !== b && (this.peers.get(a)?.has(b) === true || this.peers.get(b)?.has(a) === true);
  }

  private refuse(socket: Duplex, p: Problem): void {
    const body = JSON.stringify(p);
    socket.end(`HTTP/1.1 ${p.status} ${p.title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    if (new URL(req.url ?? '/', 'http://x').pathname !== RELAY_HTTP_PATH) return this.refuse(socket, problem(404, 'not_found', 'No such resource', `the relay is at ${RELAY_HTTP_PATH}`, false));
    const authorization = req.headers.authorization;
    if (!authorization) return this.refuse(socket, problem(401, 'machine_unauthorized', 'Machine token invalid', 'send Authorization: Bearer <machine token>', false));
    const answer = await this.ask(authorization);
    if (answer.type !== 'auth') return;
    if (!answer.ok) return this.refuse(socket, answer.problem);
    const { nodeId, nodeKey, peers } = answer;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // The link may have dropped while the client upgraded: then nothing may be carried for it.
      if (!this.linked) return ws.close(1013, 'relay lost its control server');
      this.peers.set(nodeId, new Set(peers));
      this.sockets.set(nodeId, (this.sockets.get(nodeId) ?? 0) + 1);
      ws.on('close', () => {
        const left = (this.sockets.get(nodeId) ?? 1) - 1;
        if (left > 0) return void this.sockets.set(nodeId, left);
        this.sockets.delete(nodeId);
        this.peers.delete(nodeId);
        this.sendLink({ type: 'left', nodeId });
      });
      this.relay.accept(ws, nodeId, Buffer.from(nodeKey, 'hex'), req.socket);
    });
  }

  /** Asks the server who presents `authorization`; a refusal when there is no link or no answer in time. */
  private ask(authorization: string): Promise<ServerMsg> {
    const unavailable = (detail: string): ServerMsg => ({ type: 'auth', id: 0, ok: false, problem: problem(503, 'relay_unavailable', 'The relay cannot reach its control server', detail, true) });
    if (!this.linked) return Promise.resolve(unavailable('this relay is not linked to its control server; try again shortly'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        resolve(unavailable('the control server did not answer in time'));
      }, AUTH_TIMEOUT_MS);
      this.pending.set(id, (msg) => {
        clearTimeout(t);
        resolve(msg);
      });
      this.sendLink({ type: 'auth', id, authorization });
    });
  }

  private sendLink(msg: object): void {
    if (this.link?.readyState === WebSocket.OPEN) this.link.send(JSON.stringify(msg));
  }

  private dial(): void {
    if (this.stopped) return;
    const url = new URL(this.opts.serverUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = url.pathname.replace(/\/+$/, '') + RELAY_REGION_PATH;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${meshToken(this.opts.secret, this.opts.replicaId, Date.now())}` }, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES + 64 });
    this.link = ws;
    ws.on('unexpected-response', (_req, res) => {
      this.opts.log.warn({ server: this.opts.serverUrl, status: res.statusCode }, 'the control server refused this relay (same relay mesh secret? clocks in step?)');
      ws.terminate();
    });
    ws.on('error', (err) => this.opts.log.warn({ server: this.opts.serverUrl, error: err.message }, 'link to the control server failed'));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (!this.serverReplica) return ws.close(RelayClose.BadFrame, 'mesh frame before hello');
        const bad = this.relay.receiveMesh(this.serverReplica, data);
        if (bad) ws.close(RelayClose.BadFrame, bad);
        return;
      }
      let msg: ServerMsg;
      try {
        msg = JSON.parse(data.toString('utf8')) as ServerMsg;
      } catch {
        return ws.close(RelayClose.BadFrame, 'authority message is not JSON');
      }
      this.onServer(ws, msg);
    });
    ws.on('close', () => {
      if (this.link !== ws) return;
      this.link = undefined;
      if (this.serverReplica) {
        if (this.meshLink) this.relay.removeMeshLink(this.serverReplica, this.meshLink);
        this.relay.forgetReplica(this.serverReplica);
        this.opts.log.warn({ server: this.opts.serverUrl }, 'lost the control server: closing relay clients until it is back');
      }
      this.serverReplica = undefined;
      this.meshLink = undefined;
      // Fail closed: without the link no revocation can arrive.
      this.peers.clear();
      for (const nodeId of this.sockets.keys()) this.relay.closeNode(nodeId, 1013, 'relay lost its control server');
      for (const [, done] of this.pending) done({ type: 'auth', id: 0, ok: false, problem: problem(503, 'relay_unavailable', 'The relay cannot reach its control server', 'the link to the control server closed', true) });
      this.pending.clear();
      if (this.stopped) return;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.dial(), delay);
      this.timer.unref();
    });
  }

  private onServer(ws: WebSocket, msg: ServerMsg): void {
    if (msg.type === 'hello') {
      const check = verifyMeshToken(this.opts.secret, msg.token, Date.now(), HELLO_MAX_SKEW_MS);
      if (!check.ok || check.replicaId !== msg.replica) {
        this.opts.log.warn({ server: this.opts.serverUrl, reason: check.ok ? 'names another replica' : check.reason }, 'the control server did not prove the relay mesh secret; not linking');
        return ws.close(RelayClose.BadFrame, 'hello token invalid');
      }
      this.serverReplica = msg.replica;
      this.attempt = 0;
      const link = { get bufferedAmount() { return ws.bufferedAmount; }, send: (d: Buffer, o: { binary: true }) => ws.send(d, o) };
      this.meshLink = link;
      this.relay.addMeshLink(msg.replica, link);
      this.opts.log.info({ server: this.opts.serverUrl }, 'linked to the control server');
      return;
    }
    if (!this.serverReplica) return ws.close(RelayClose.BadFrame, 'message before hello');
    if (msg.type === 'auth') {
      const done = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      done?.(msg);
    } else if (msg.type === 'peers') {
      if (this.peers.has(msg.nodeId)) this.peers.set(msg.nodeId, new Set(msg.peers));
    } else if (msg.type === 'cut') {
      this.peers.delete(msg.nodeId);
      this.relay.closeNode(msg.nodeId, msg.code, msg.reason);
    }
  }
}
