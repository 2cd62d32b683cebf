/**
 * The packet relay of a standalone `weft-relay` region: @weft/relay's RelayServer (the same one
 * weft-server embeds) on this process's own HTTP port (`GET /api/v1/relay`, WebSocket) and on the
 * STUN port (UDP), joined to the control server by one authenticated link per server URL it is
 * given, one per replica (`GET <server>/api/v1/relay/region`, apps/server/src/agent/relay-region.ts
 * has the protocol):
 *
 * - a client is let in only when a server, asked over a link, says its machine token proves a
 *   live node (the refusal is the server's own problem+json, with its status). The token is then
 *   presented on every other link too, so every replica pushes that node's peer sets and cut-offs;
 *   a refusal there cuts the node. With no link up, clients are refused (503, retryable) and the
 *   ones connected are closed: a relay that cannot hear revocations must not carry packets. One
 *   link down while another is up changes nothing a client sees;
 * - packets pass only between pairs every linked replica's peer set allows (netmap peers under the
 *   policy; a replica that has not answered yet for a node has no say), refreshed by the servers
 *   after each change, and a cut from any replica closes the node at once;
 * - relay mesh frames travel on one link at a time, the primary: the region announces its clients
 *   there and takes the announcements it hears there. Announcing on every link would make a loop
 *   of region and replicas, each passing the others' announcements on. What the other links
 *   announce is kept, so when the primary's replica goes the next link takes over at once, with
 *   its announcements as it last heard them (see docs/design.md, "Relay regions").
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import {
  encodePresent, MAX_FRAME_BYTES, MESH_ABSENT, MESH_FORWARD, MESH_PRESENT, meshToken, parseListenAddress, readMeshFrame, RELAY_HTTP_PATH, RelayClose, RelayServer,
  relayOverStunPort, verifyMeshToken, type RelayMeshLink, type StunServer,
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
  /** The control server's URL (http(s)://...), or one per replica: a link to each. */
  serverUrls: string[];
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

const unavailable = (detail: string): ServerMsg => ({ type: 'auth', id: 0, ok: false, problem: problem(503, 'relay_unavailable', 'The relay cannot reach its control server', detail, true) });

/** One link to one control server URL (a replica): its socket, and what it said. */
class ServerLink {
  ws: WebSocket | undefined;
  /** The replica's mesh id, once its hello proved the secret. */
  replica: string | undefined;
  meshLink: RelayMeshLink | undefined;
  /** What the replica announced on this link (PRESENT minus ABSENT): key (latin1) -> node id. */
  readonly announced = new Map<string, number>();
  readonly pending = new Map<number, (msg: ServerMsg) => void>();
  attempt = 0;
  timer: NodeJS.Timeout | undefined;

  constructor(readonly url: string) {}

  get linked(): boolean {
    return this.replica !== undefined && this.ws?.readyState === WebSocket.OPEN;
  }
}

export class RegionRelay {
  readonly relay: RelayServer;
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
  private readonly links: ServerLink[];
  /** The link mesh frames travel on (see the file comment). */
  private primary: ServerLink | undefined;
  /** Whom each node here may relay to, as each linked replica last said. */
  private readonly peers = new Map<number, Map<ServerLink, Set<number>>>();
  /** Nodes with an open relay socket here: how many (a reconnect overlaps the old one's close), and the token they presented. */
  private readonly held = new Map<number, { sockets: number; authorization: string }>();
  private nextId = 1;
  private stopped = false;

  private constructor(private readonly opts: RegionRelayOptions) {
    this.links = [...new Set(opts.serverUrls)].map((u) => new ServerLink(u));
    this.relay = new RelayServer({ mayRelay: (a, b) => this.mayRelay(a, b) });
    if (opts.stun) relayOverStunPort(this.relay, opts.stun);
    this.http = createServer((req, res) => {
      const health = req.url === '/healthz';
      const body = JSON.stringify(health ? { ok: this.linked, links: this.links.map((l) => ({ server: l.url, linked: l.linked, primary: l === this.primary })) } : problem(404, 'not_found', 'No such resource', `weft-relay serves ${RELAY_HTTP_PATH} (WebSocket) and /healthz`, false));
      res.writeHead(health ? (this.linked ? 200 : 503) : 404, { 'content-type': health ? 'application/json' : 'application/problem+json' }).end(body);
    });
    this.http.on('upgrade', (req, socket, head) => void this.upgrade(req, socket, head));
  }

  static async start(opts: RegionRelayOptions): Promise<RegionRelay> {
    if (!opts.serverUrls.length) throw new Error('a relay region needs at least one control server URL');
    const r = new RegionRelay(opts);
    const { host, port } = parseListenAddress(opts.listen);
    await new Promise<void>((resolve, reject) => {
      r.http.once('error', reject);
      r.http.listen(port, host, () => {
        r.http.off('error', reject);
        resolve();
      });
    });
    for (const l of r.links) r.dial(l);
    return r;
  }

  /** Linked to at least one control server replica (and authenticated both ways). */
  get linked(): boolean {
    return this.links.some((l) => l.linked);
  }

  address(): { address: string; port: number } {
    return this.http.address() as { address: string; port: number };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.relay.close(1001, 'relay shutting down');
    for (const l of this.links) {
      clearTimeout(l.timer);
      l.ws?.close(1001, 'relay shutting down');
    }
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  /** A pair passes when either side's sets all have the other (one set per replica that answered for it). */
  private mayRelay(a: number, b: number): boolean {
    return a !== b && (this.allows(a, b) || this.allows(b, a));
  }

  private allows(a: number, b: number): boolean {
    const sets = this.peers.get(a);
    if (!sets?.size) return false;
    for (const s of sets.values()) if (!s.has(b)) return false;
    return true;
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
    const via = this.primary?.linked ? this.primary : this.links.find((l) => l.linked);
    const answer = via ? await this.ask(via, authorization) : unavailable('this relay is not linked to its control server; try again shortly');
    if (answer.type !== 'auth') return;
    if (!answer.ok) return this.refuse(socket, answer.problem);
    const { nodeId, peers } = answer;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // The link may have dropped while the client upgraded: then nothing may be carried for it.
      if (!via!.linked) return ws.close(1013, 'relay lost its control server');
      const sets = this.peers.get(nodeId) ?? new Map<ServerLink, Set<number>>();
      sets.set(via!, new Set(peers));
      this.peers.set(nodeId, sets);
      const h = this.held.get(nodeId);
      this.held.set(nodeId, { sockets: (h?.sockets ?? 0) + 1, authorization });
      ws.on('close', () => {
        const left = (this.held.get(nodeId)?.sockets ?? 1) - 1;
        if (left > 0) return void this.held.set(nodeId, { ...this.held.get(nodeId)!, sockets: left });
        this.held.delete(nodeId);
        this.peers.delete(nodeId);
        for (const l of this.links) this.sendLink(l, { type: 'left', nodeId });
      });
      this.relay.accept(ws, nodeId, Buffer.from(answer.nodeKey, 'hex'), req.socket);
      for (const l of this.links) if (l !== via && l.linked) void this.present(l, nodeId, authorization);
    });
  }

  /**
   * Presents a held node's token on `link` too, so that replica pushes its peer sets and cut-offs.
   * A refusal (deleted, expired, suspended) cuts the node: every replica must agree it may relay.
   */
  private async present(link: ServerLink, nodeId: number, authorization: string): Promise<void> {
    const answer = await this.ask(link, authorization);
    if (answer.type !== 'auth' || this.held.get(nodeId)?.authorization !== authorization) return;
    if (answer.ok) {
      if (answer.nodeId !== nodeId) return this.cut(nodeId, RelayClose.Refused, 'the replicas disagree on who this node is');
      if (link.linked) this.peers.get(nodeId)?.set(link, new Set(answer.peers));
    } else if (answer.problem.status !== 503) {
      this.cut(nodeId, RelayClose.Refused, `a replica refused this node: ${answer.problem.code}`.slice(0, 120));
    }
  }

  private cut(nodeId: number, code: number, reason: string): void {
    this.peers.delete(nodeId);
    this.relay.closeNode(nodeId, code, reason);
  }

  /** Asks `link`'s server who presents `authorization`; a refusal when the link is down or no answer comes in time. */
  private ask(link: ServerLink, authorization: string): Promise<ServerMsg> {
    if (!link.linked) return Promise.resolve(unavailable('this relay is not linked to its control server; try again shortly'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        link.pending.delete(id);
        resolve(unavailable('the control server did not answer in time'));
      }, AUTH_TIMEOUT_MS);
      link.pending.set(id, (msg) => {
        clearTimeout(t);
        resolve(msg);
      });
      this.sendLink(link, { type: 'auth', id, authorization });
    });
  }

  private sendLink(link: ServerLink, msg: object): void {
    if (link.ws?.readyState === WebSocket.OPEN && link.replica) link.ws.send(JSON.stringify(msg));
  }

  private dial(link: ServerLink): void {
    if (this.stopped) return;
    const url = new URL(link.url);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = url.pathname.replace(/\/+$/, '') + RELAY_REGION_PATH;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${meshToken(this.opts.secret, this.opts.replicaId, Date.now())}` }, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES + 64 });
    link.ws = ws;
    ws.on('unexpected-response', (_req, res) => {
      this.opts.log.warn({ server: link.url, status: res.statusCode }, 'the control server refused this relay (same relay mesh secret? clocks in step?)');
      ws.terminate();
    });
    ws.on('error', (err) => this.opts.log.warn({ server: link.url, error: err.message }, 'link to the control server failed'));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (!link.replica) return ws.close(RelayClose.BadFrame, 'mesh frame before hello');
        const bad = this.onMesh(link, data);
        if (bad) ws.close(RelayClose.BadFrame, bad);
        return;
      }
      let msg: ServerMsg;
      try {
        msg = JSON.parse(data.toString('utf8')) as ServerMsg;
      } catch {
        return ws.close(RelayClose.BadFrame, 'authority message is not JSON');
      }
      this.onServer(link, ws, msg);
    });
    ws.on('close', () => {
      if (link.ws !== ws) return;
      link.ws = undefined;
      const replica = link.replica;
      const meshLink = link.meshLink;
      link.replica = undefined;
      link.meshLink = undefined;
      link.announced.clear();
      for (const [, done] of link.pending) done(unavailable('the link to the control server closed'));
      link.pending.clear();
      for (const sets of this.peers.values()) sets.delete(link);
      if (replica) {
        if (this.primary === link) {
          this.primary = undefined;
          if (meshLink) this.relay.removeMeshLink(replica, meshLink);
          this.relay.forgetReplica(replica);
        }
        const left = this.links.find((l) => l.linked);
        if (left) {
          this.opts.log.warn({ server: link.url, still: left.url }, 'lost a link to the control server; relaying through the others');
          if (!this.primary) this.makePrimary(left);
        } else {
          this.opts.log.warn({ server: link.url }, 'lost the control server: closing relay clients until it is back');
          // Fail closed: with no link, no revocation can arrive.
          this.peers.clear();
          for (const nodeId of this.held.keys()) this.relay.closeNode(nodeId, 1013, 'relay lost its control server');
        }
      }
      if (this.stopped) return;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** link.attempt++);
      link.timer = setTimeout(() => this.dial(link), delay);
      link.timer.unref();
    });
  }

  /** Mesh frames go out on `link` from now on, and what it announced is what the relay knows of the others. */
  private makePrimary(link: ServerLink): void {
    this.primary = link;
    this.relay.addMeshLink(link.replica!, link.meshLink!);
    for (const [k, nodeId] of link.announced) this.relay.receiveMesh(link.replica!, encodePresent(Buffer.from(k, 'latin1'), nodeId));
    this.opts.log.info({ server: link.url }, 'relay mesh frames now travel on this link');
  }

  /** A mesh frame from `link`: recorded; acted on when `link` is the primary (a FORWARD from any link is delivered here). */
  private onMesh(link: ServerLink, data: Buffer): string | undefined {
    const read = readMeshFrame(data);
    if (!read.ok) return read.reason;
    const f = read.frame;
    if (f.type === MESH_PRESENT) link.announced.set(f.key.toString('latin1'), f.nodeId);
    else if (f.type === MESH_ABSENT) link.announced.delete(f.key.toString('latin1'));
    if (link === this.primary || f.type === MESH_FORWARD) return this.relay.receiveMesh(link.replica!, data);
    return undefined;
  }

  private onServer(link: ServerLink, ws: WebSocket, msg: ServerMsg): void {
    if (msg.type === 'hello') {
      const check = verifyMeshToken(this.opts.secret, msg.token, Date.now(), HELLO_MAX_SKEW_MS);
      if (!check.ok || check.replicaId !== msg.replica) {
        this.opts.log.warn({ server: link.url, reason: check.ok ? 'names another replica' : check.reason }, 'the control server did not prove the relay mesh secret; not linking');
        return ws.close(RelayClose.BadFrame, 'hello token invalid');
      }
      if (this.links.some((l) => l !== link && l.replica === msg.replica)) {
        this.opts.log.warn({ server: link.url, replica: msg.replica }, 'this URL reached a replica another link already has; retrying');
        return ws.close(1013, 'replica already linked');
      }
      link.replica = msg.replica;
      link.attempt = 0;
      link.meshLink = { get bufferedAmount() { return ws.bufferedAmount; }, send: (d: Buffer, o: { binary: true }) => ws.send(d, o) };
      this.opts.log.info({ server: link.url }, 'linked to the control server');
      if (!this.primary) this.makePrimary(link);
      for (const [nodeId, h] of this.held) void this.present(link, nodeId, h.authorization);
      return;
    }
    if (!link.replica) return ws.close(RelayClose.BadFrame, 'message before hello');
    if (msg.type === 'auth') {
      const done = link.pending.get(msg.id);
      link.pending.delete(msg.id);
      done?.(msg);
    } else if (msg.type === 'peers') {
      const sets = this.peers.get(msg.nodeId);
      if (sets?.has(link)) sets.set(link, new Set(msg.peers));
    } else if (msg.type === 'cut') {
      this.cut(msg.nodeId, msg.code, msg.reason);
    }
  }
}
