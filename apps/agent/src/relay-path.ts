/**
 * The relayed data path on this node. WireGuard stays the only thing that speaks to peers; for a
 * relayed peer it is pointed at a UDP socket of ours on 127.0.0.1 (one per relayed peer), and this
 * class carries the datagrams both ways over one WebSocket to this node's home relay (the control
 * server's, or a standalone region's: `retarget`):
 *
 *   WireGuard --udp--> 127.0.0.1:P (peer X's socket) --frame to X's node key--> relay
 *   relay --frame from X's node key--> X's socket --udp--> 127.0.0.1:<WireGuard's listen port>
 *
 * Only datagrams from WireGuard's own port are forwarded (another local process cannot use our
 * relay socket as an open proxy). Direct peers never pass through here. A packet from a peer with
 * no socket yet (it relays to us before we chose to relay to it) gets one, and `onInbound` points
 * WireGuard at it, so both directions end up on the relay. Like a DERP home region, the relay
 * socket is held from `start` to `stop` whether or not any peer is relayed yet, so a peer that
 * cannot reach us directly can always reach us there; it reconnects with backoff.
 *
 * With `transport: 'udp'` (WEFT_RELAY_TRANSPORT=udp; the default is the WebSocket, which measured
 * faster: tunables.ts RELAY_TRANSPORT_DEFAULT), UDP first and the WebSocket as the fallback: when the relay's greeting carries a UDP ticket
 * (@weft/relay relay-udp.ts), a UDP socket to the relay's UDP port (the server's STUN port, at the
 * server URL's host) is bound with it. While the relay acknowledges our binds, packets go there and
 * the relay sends ours there, so a relayed WireGuard flow does not run inside TCP; when UDP is
 * blocked (no bind-ack), or the acks stop, packets go over the WebSocket, which stays open.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import WebSocket from 'ws';
import { signMachineToken, type MachinePrivateKey, type NodePublicKey } from '@weft/crypto';
import { looksLikeInitiation, MAX_FRAME_BYTES, MESSAGE_INITIATION_SIZE, MESSAGE_INITIATION_TYPE, PeerGoneReason, RELAY_HTTP_PATH, RelayClient, RelayUdpClient, type UdpTicket } from '@weft/relay';
import { backoffDelay } from './backoff.js';
import type { Logger } from './log.js';
import {
  CONNECT_TIMEOUT_MS, REKEY_TIMEOUT_MS, RELAY_RECONNECT_BACKOFF, RELAY_TRANSPORT_DEFAULT, RELAY_UDP_BIND_INTERVAL_MS, RELAY_UDP_BIND_RETRY_MS, RELAY_UDP_BUFFER_BYTES, RELAY_UDP_DEAD_AFTER_MS, EARLY_PACKET_PEERS, EARLY_PACKET_TTL_MS, EARLY_PACKETS_PER_PEER,
} from './tunables.js';

export interface RelayPathOptions {
  serverUrl: string;
  machineKey: MachinePrivateKey;
  log: Logger;
  /** WireGuard's UDP listen port on this host (undefined while the interface is down). */
  wireguardPort: () => Promise<number | undefined>;
  /** Whether a packet from `nodeKey` that has no local socket yet should get one (it is a netmap peer). */
  acceptFrom: (nodeKey: NodePublicKey) => boolean;
  /** A socket was opened for `nodeKey` because it sent first: point WireGuard at `endpoint`. */
  onInbound: (nodeKey: NodePublicKey, endpoint: string) => void;
  /** Relay over UDP when the relay offers it (`udp`), or over the WebSocket only. Default: relayTransport(process.env). */
  transport?: 'udp' | 'websocket';
}

/**
 * `WEFT_RELAY_TRANSPORT` (`udp` or `websocket`), else RELAY_TRANSPORT_DEFAULT (see there for why).
 * Any other value is an error naming the variable and what it takes.
 */
export function relayTransport(env: NodeJS.ProcessEnv): 'udp' | 'websocket' {
  const v = env.WEFT_RELAY_TRANSPORT;
  if (v === undefined || v === '') return RELAY_TRANSPORT_DEFAULT;
  if (v === 'udp' || v === 'websocket') return v;
  throw new Error(`WEFT_RELAY_TRANSPORT: "${v}" is not udp or websocket`);
}

interface Relayed {
  nodeKey: NodePublicKey;
  keyBytes: Buffer;
  socket: dgram.Socket;
  endpoint: string;
}

/** The relay WebSocket URL of a relay (the control server's, or a region's) at base URL `serverUrl` (http(s) or ws(s)). */
export function relayUrl(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + RELAY_HTTP_PATH;
  return url.toString();
}

export class RelayPath {
  private readonly byKey = new Map<string, Relayed>();
  private readonly opening = new Map<string, Promise<Relayed>>();
  /** Stopped until `start`. */
  private ws: WebSocket | undefined;
  private client: RelayClient | undefined;
  private ready = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private wgPort: number | undefined;
  /** The UDP side of the current relay session, once its ticket came (undefined: WebSocket only). */
  private udp: RelayUdpClient | undefined;
  /** The address `udp` sends to (the server host, resolved). */
  private udpHost: string | undefined;
  private portQuery: Promise<void> | undefined;
  /** `toRelay` by transport: `toRelayUdp` of them went over UDP. */
  readonly counters = { toRelay: 0, toRelayUdp: 0, fromRelay: 0, dropped: 0, heldForProbe: 0, keptEarly: 0 };
  /** Peers being hole-punched: what the relay brings from them is not handed to WireGuard (see `hold`). */
  private readonly held = new Set<string>();
  /** When (ms, wall clock) the relay last brought a handshake initiation from a peer: `lastInitiation`. */
  private readonly initiations = new Map<string, number>();
  /**
   * Peers the relay said it cannot reach (PEER_GONE: not connected to this relay, e.g. on another
   * replica with no relay mesh, or not allowed), until a packet from them comes over the relay or
   * the relay session starts again. PeerPaths then aims at the peer directly instead.
   */
  private readonly unreachable = new Set<string>();
  /**
   * What a peer relayed before this node could hand it to WireGuard (its netmap entry or the
   * interface not there yet: the pair's first initiation, typically), kept EARLY_PACKET_TTL_MS
   * for `deliverEarly`; without it that initiation is lost and the pair waits for a retry.
   */
  private readonly early = new Map<string, { at: number; packets: Buffer[] }>();
  /**
   * The last handshake initiation WireGuard sent each peer over the relay, until the peer's
   * response comes back that way: sent again when the relay says the peer has just connected
   * (PEER_PRESENT), since it went into the void if the peer was not there yet.
   */
  private readonly unanswered = new Map<string, { at: number; packet: Buffer }>();

  private readonly useUdp: boolean;

  /** The base URL of the relay this node is homed on (the control server's until `retarget`). */
  private base: string;

  constructor(private readonly opts: RelayPathOptions) {
    this.useUdp = (opts.transport ?? relayTransport(process.env)) === 'udp';
    this.base = opts.serverUrl;
  }

  /** The relay this session goes to (its base URL). */
  get target(): string {
    return this.base;
  }

  /**
   * Home on the relay at base URL `url` from now on (a region's relay, or the control server's):
   * the session moves there at once; peers' local sockets stay, so WireGuard notices nothing.
   */
  retarget(url: string): void {
    if (url === this.base) return;
    this.base = url;
    this.reconnectNow();
  }

  /** The relay told this session it cannot carry packets to `nodeKey` (and nothing came from it since). */
  cannotReach(nodeKey: string): boolean {
    return this.unreachable.has(keyId(nodeKey));
  }

  /**
   * When (ms, wall clock) the relay last brought a WireGuard handshake initiation from `nodeKey`:
   * the peer is making a new session (a restarted daemon's fresh WireGuard, or its rekey), so a
   * handshake before it may be of a session the peer no longer holds. Undefined = none.
   */
  lastInitiation(nodeKey: string): number | undefined {
    return this.initiations.get(keyId(nodeKey));
  }

  /** Connected to the relay and greeted by it. */
  get connected(): boolean {
    return this.ready;
  }

  /** How packets to the relay go now: `udp`, `websocket`, or null while not connected. */
  get transport(): 'udp' | 'websocket' | null {
    if (!this.ready) return null;
    return this.udp?.usable ? 'udp' : 'websocket';
  }

  /** The same, with the relay's address when over UDP (what adaptive MTU sizes relayed paths by). */
  get route(): { transport: 'udp'; host: string } | { transport: 'websocket' } | null {
    const t = this.transport;
    if (t === null) return null;
    return t === 'udp' && this.udpHost ? { transport: 'udp', host: this.udpHost } : { transport: 'websocket' };
  }

  endpointOf(nodeKey: string): string | undefined {
    return this.byKey.get(keyId(nodeKey))?.endpoint;
  }

  /** Starts carrying `nodeKey` over the relay; resolves to the local endpoint to give WireGuard. */
  async open(nodeKey: NodePublicKey): Promise<string> {
    return (await this.socketFor(nodeKey)).endpoint;
  }

  /** Connects to the relay and stays connected (reconnecting) until `stop`. */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /**
   * While a peer is hole-punched (PeerPaths), packets the relay brings from it are dropped, not
   * handed to WireGuard: WireGuard roams to wherever an authenticated packet last came from, and a
   * straggler from the relay socket would turn the probe's packets back onto the relay.
   */
  hold(nodeKey: string, on: boolean): void {
    if (on) this.held.add(keyId(nodeKey));
    else this.held.delete(keyId(nodeKey));
  }

  /**
   * Hands WireGuard what `nodeKey` relayed before it could be delivered; PeerPaths calls this
   * once WireGuard has the peer aimed at its relay socket.
   */
  deliverEarly(nodeKey: string): void {
    const id = keyId(nodeKey);
    const e = this.early.get(id);
    const r = this.byKey.get(id);
    if (!e || !r) return;
    if (this.wgPort === undefined) {
      this.refreshPort();
      return;
    }
    this.early.delete(id);
    if (Date.now() - e.at > EARLY_PACKET_TTL_MS) return;
    for (const p of e.packets) {
      this.counters.fromRelay++;
      r.socket.send(p, this.wgPort, '127.0.0.1');
    }
  }

  private stashEarly(id: string, packet: Buffer): void {
    const now = Date.now();
    for (const [k, v] of this.early) if (now - v.at > EARLY_PACKET_TTL_MS) this.early.delete(k);
    let e = this.early.get(id);
    if (!e) {
      if (this.early.size >= EARLY_PACKET_PEERS) {
        this.counters.dropped++;
        return;
      }
      e = { at: now, packets: [] };
      this.early.set(id, e);
    }
    if (e.packets.length >= EARLY_PACKETS_PER_PEER) {
      e.packets.shift();
      this.counters.dropped++;
    }
    e.packets.push(Buffer.from(packet));
    this.counters.keptEarly++;
  }

  /** Stops carrying `nodeKey` (peer removed): its socket is closed. */
  release(nodeKey: string): void {
    const r = this.byKey.get(keyId(nodeKey));
    if (!r) return;
    this.byKey.delete(keyId(nodeKey));
    this.udp?.forget(r.keyBytes);
    this.held.delete(keyId(nodeKey));
    this.initiations.delete(keyId(nodeKey));
    this.unanswered.delete(keyId(nodeKey));
    r.socket.close();
  }

  /**
   * A direct path just died (NAT mapping flushed, most likely): the NAT's mapping to the relay's
   * UDP port may be gone with it, and the relay would keep sending to it. Relay over the
   * WebSocket until a fresh UDP bind is answered.
   */
  udpSuspect(): void {
    this.udp?.rebindNow();
  }

  /** This host's addresses changed (roamed): the relay socket may be bound to one that is gone; connect again at once. */
  reconnectNow(): void {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = undefined;
    this.client = undefined;
    this.ready = false;
    this.attempt = 0;
    // The old session's UDP ticket dies with it (its close handler no longer runs for it).
    this.closeUdp();
    ws?.terminate();
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.byKey.values()) r.socket.close();
    this.byKey.clear();
    this.held.clear();
    this.early.clear();
    this.disconnect();
  }

  private async socketFor(nodeKey: NodePublicKey): Promise<Relayed> {
    const id = keyId(nodeKey);
    const have = this.byKey.get(id);
    if (have) return have;
    let pending = this.opening.get(id);
    if (!pending) {
      pending = this.bind(nodeKey).finally(() => this.opening.delete(id));
      this.opening.set(id, pending);
    }
    return pending;
  }

  private async bind(nodeKey: NodePublicKey): Promise<Relayed> {
    this.wgPort = (await this.opts.wireguardPort()) ?? this.wgPort;
    // Every send goes to 127.0.0.1 (WireGuard's port): `literal` skips dgram's per-datagram dns.lookup.
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RELAY_UDP_BUFFER_BYTES, sendBufferSize: RELAY_UDP_BUFFER_BYTES, lookup: literal });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const r: Relayed = { nodeKey, keyBytes: Buffer.from(keyId(nodeKey), 'hex'), socket, endpoint: `127.0.0.1:${socket.address().port}` };
    socket.on('error', (err) => this.opts.log('warn', 'relay socket error', { peer: nodeKey, error: err.message }));
    socket.on('message', (msg, rinfo) => {
      if (this.wgPort === undefined) {
        // Bound before the interface was up: learn WireGuard's port, then judge this packet. It is
        // the pair's first initiation, typically (a restarted daemon's first ping); dropped, the
        // pair would wait for a relay kick (1.5 s) or RekeyTimeout (5 s).
        void this.refreshPort().then(() => this.toRelay(r, msg, rinfo));
        return;
      }
      this.toRelay(r, msg, rinfo);
    });
    this.byKey.set(keyId(nodeKey), r);
    this.opts.log('info', 'relaying peer', { peer: nodeKey, endpoint: r.endpoint });
    return r;
  }

  /**
   * WireGuard's port, asked again: a socket opened for a peer that relayed to us before the
   * interface was configured had none, and without it nothing would ever pass (found in the NAT lab:
   * a pair whose first relayed packet beat the netmap never handshook).
   */
  private refreshPort(): Promise<void> {
    this.portQuery ??= this.opts.wireguardPort().then(
      (port) => {
        if (port !== undefined) this.wgPort = port;
      },
      () => {},
    ).finally(() => (this.portQuery = undefined));
    return this.portQuery;
  }

  /** A datagram from a peer's relay socket: sent over the relay if WireGuard's own port sent it. */
  private toRelay(r: Relayed, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.port !== this.wgPort || rinfo.address !== '127.0.0.1') {
      this.counters.dropped++;
      return;
    }
    if (msg[0] === MESSAGE_INITIATION_TYPE && msg.length === MESSAGE_INITIATION_SIZE) this.unanswered.set(keyId(r.nodeKey), { at: Date.now(), packet: Buffer.from(msg) });
    this.send(r, msg);
  }

  /** Sends `msg` to `r`'s peer over the relay: its UDP side while that is answered, else the WebSocket. */
  private send(r: Relayed, msg: Buffer): void {
    const udp = this.udp;
    let via: 'udp' | 'websocket' | 'dropped';
    if (udp && this.ready && udp.usable) {
      udp.send(r.keyBytes, msg);
      this.counters.toRelay++;
      this.counters.toRelayUdp++;
      via = 'udp';
    } else if (this.client && this.ready && this.client.send(r.keyBytes, msg)) {
      this.counters.toRelay++;
      via = 'websocket';
    } else {
      this.counters.dropped++;
      via = 'dropped';
    }
    if (wireguardHandshake(msg)) this.opts.log('debug', 'relay: handshake out', { peer: r.nodeKey, type: handshakeName(msg), via });
  }

  private fromRelay(from: Buffer, packet: Buffer): void {
    const id = from.toString('hex');
    this.unreachable.delete(id);
    if (packet[0] === MESSAGE_RESPONSE_TYPE) this.unanswered.delete(id);
    if (looksLikeInitiation(packet)) {
      this.initiations.set(id, Date.now());
      // The peer begins a new session over the relay (a restarted daemon, typically): its data
      // follows on this path, so the hold ends now rather than at PeerPaths' next check, which
      // abandons the probe (`lastInitiation`). Held until then, a first ping would be dropped.
      this.held.delete(id);
    }
    // A handshake is never held: dropped, WireGuard would retry it only after RekeyTimeout (5 s).
    if (this.held.has(id) && !wireguardHandshake(packet)) {
      this.counters.heldForProbe++;
      return;
    }
    const r = this.byKey.get(id);
    if (wireguardHandshake(packet)) this.opts.log('debug', 'relay: handshake in', { peer: `nodekey:${id}`, type: handshakeName(packet), to: r ? (this.wgPort === undefined ? 'kept until the interface is up' : 'wireguard') : 'a new relay socket' });
    if (r) {
      if (this.wgPort === undefined) {
        // A socket made before the interface was up: learn the port now; the packet waits for deliverEarly.
        this.refreshPort();
        this.stashEarly(id, packet);
        return;
      }
      this.counters.fromRelay++;
      r.socket.send(packet, this.wgPort, '127.0.0.1');
      return;
    }
    const nodeKey = `nodekey:${from.toString('hex')}` as NodePublicKey;
    if (!this.opts.acceptFrom(nodeKey)) {
      // Not (yet) a peer here: its netmap entry may be on the way. Kept for a moment, bounded.
      this.stashEarly(id, packet);
      return;
    }
    // The peer relays to us first: make its socket, aim WireGuard at it, deliver this packet.
    const copy = Buffer.from(packet);
    void this.socketFor(nodeKey).then((made) => {
      this.opts.onInbound(nodeKey, made.endpoint);
      if (this.wgPort === undefined) {
        this.stashEarly(id, copy);
        return;
      }
      made.socket.send(copy, this.wgPort, '127.0.0.1');
    }, (err: Error) => this.opts.log('warn', 'could not open a relay socket', { peer: nodeKey, error: err.message }));
  }

  private connect(): void {
    if (this.ws || this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const log = this.opts.log;
    void signMachineToken(this.opts.machineKey).then((token) => {
      if (this.stopped || this.ws) return;
      const ws = new WebSocket(relayUrl(this.base), {
        headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, handshakeTimeout: CONNECT_TIMEOUT_MS,
        // RFC 6455 masking protects intermediaries from bytes a browser script chose (§10.3); this
        // client is no browser, and ws skips the per-byte XOR for an all-zero mask.
        generateMask: (mask: Buffer) => void mask.fill(0),
      });
      this.ws = ws;
      this.client = new RelayClient(ws, {
        onPacket: (from, packet) => this.fromRelay(from, packet),
        onServerInfo: (info) => {
          this.ready = true;
          this.attempt = 0;
          // A new relay session: what the last one could not reach may be reachable now.
          this.unreachable.clear();
          log('info', 'relay connected', { url: relayUrl(this.base), udpPort: info.udp?.port ?? null });
          if (info.udp && this.useUdp) void this.openUdp(ws, info.udp);
        },
        onPeerPresent: (key) => this.peerPresent(key.toString('hex')),
        onPeerGone: (key, reason) => {
          this.unreachable.add(key.toString('hex'));
          log('info', 'relay: peer unreachable', { peer: `nodekey:${key.toString('hex')}`, reason: reason === PeerGoneReason.NotAllowed ? 'not allowed' : 'not connected' });
        },
        onProtocolError: (reason) => log('warn', 'relay protocol error', { reason }),
      });
      ws.on('unexpected-response', (_req, res) => {
        log('warn', 'relay refused the connection', { status: res.statusCode });
        ws.terminate();
      });
      ws.on('error', (err) => log('debug', 'relay socket error', { error: err.message }));
      ws.on('close', (code, reason) => {
        if (this.ws !== ws) return;
        this.ws = undefined;
        this.client = undefined;
        this.ready = false;
        this.closeUdp();
        if (this.stopped) return;
        const delay = backoffDelay(this.attempt++, RELAY_RECONNECT_BACKOFF);
        log('info', 'relay disconnected; reconnecting', { code, reason: reason.toString(), retryInMs: delay });
        this.reconnectTimer = setTimeout(() => this.connect(), delay);
        this.reconnectTimer.unref();
      });
    }, (err: Error) => log('error', 'signing the relay token failed', { error: err.message }));
  }

  /** Binds UDP to the relay with the session's ticket, at the address the server URL's host resolves to. */
  private async openUdp(ws: WebSocket, ticket: UdpTicket): Promise<void> {
    const log = this.opts.log;
    const hostname = new URL(this.base).hostname.replace(/^\[|\]$/g, '');
    let host: string;
    try {
      host = isIP(hostname) ? hostname : (await lookup(hostname)).address;
    } catch (err) {
      log('warn', 'relay over UDP: cannot resolve the server host; staying on the WebSocket', { host: hostname, error: (err as Error).message });
      return;
    }
    let udp: RelayUdpClient;
    try {
      udp = await RelayUdpClient.open({
        ticket, host, bufferBytes: RELAY_UDP_BUFFER_BYTES, bindIntervalMs: RELAY_UDP_BIND_INTERVAL_MS, retryMs: RELAY_UDP_BIND_RETRY_MS, deadAfterMs: RELAY_UDP_DEAD_AFTER_MS,
        onPacket: (from, packet) => this.fromRelay(from, packet),
        onUsable: (usable) => log('info', usable ? 'relay over UDP' : 'relay over UDP stopped answering; relaying over the WebSocket', { relay: `${host}:${ticket.port}` }),
      });
    } catch (err) {
      log('warn', 'relay over UDP: cannot open a UDP socket; staying on the WebSocket', { error: (err as Error).message });
      return;
    }
    // The session ended (or was replaced) while the socket opened: its ticket is void.
    if (this.ws !== ws || this.stopped) return udp.close();
    this.udp = udp;
    this.udpHost = host;
  }

  /**
   * The relay says the peer `id` (hex) connected after it had said it was not connected. An
   * initiation WireGuard sent it since and that is still unanswered was dropped on the way:
   * sent again now, it is answered at once, where WireGuard would resend only after RekeyTimeout
   * (5 s). The same bytes: WireGuard still waits for the response to them, and a peer that did
   * get them ignores the copy (its timestamp is not newer).
   */
  private peerPresent(id: string): void {
    this.unreachable.delete(id);
    const u = this.unanswered.get(id);
    const r = this.byKey.get(id);
    if (!u || !r || Date.now() - u.at >= REKEY_TIMEOUT_MS) return;
    this.send(r, u.packet);
    this.opts.log('info', 'relay: peer connected; handshake initiation sent again', { peer: r.nodeKey });
  }

  private closeUdp(): void {
    this.udp?.close();
    this.udp = undefined;
  }

  private disconnect(): void {
    this.closeUdp();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this.client = undefined;
    this.ready = false;
    ws?.close(1000, 'relay path stopped');
  }
}

/** A dgram `lookup` for sockets that only ever send to an IPv4 literal: hands it straight back (no dns.lookup, no deferred tick). */
const literal = ((address: string, _opts: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, address, 4)) as unknown as dgram.SocketOptions['lookup'];

/** The hex of a node key, with or without its "nodekey:" prefix. */
function keyId(nodeKey: string): string {
  return nodeKey.slice(nodeKey.indexOf(':') + 1);
}

/** WireGuard's handshake response and cookie reply (message types 2 and 3; 1 initiation, 4 data). */
const MESSAGE_RESPONSE_TYPE = 2;
const MESSAGE_COOKIE_REPLY_TYPE = 3;

/** What a handshake message is, for the log. */
function handshakeName(packet: Uint8Array): string {
  return packet[0] === MESSAGE_INITIATION_TYPE ? 'initiation' : packet[0] === MESSAGE_COOKIE_REPLY_TYPE ? 'cookie reply' : 'response';
}

/** A WireGuard handshake message (initiation, response or cookie reply), not data. */
export function wireguardHandshake(packet: Uint8Array): boolean {
  const type = packet[0] ?? 0;
  return type >= MESSAGE_INITIATION_TYPE && type <= MESSAGE_COOKIE_REPLY_TYPE;
}
