/**
 * The DERP-style packet relay's core: forwards packets between authenticated clients by
 * destination node key. It owns no listener and no authentication: whoever embeds it (weft-server's
 * `GET /api/v1/relay`) upgrades the WebSocket after checking the client's machine token, then hands
 * the socket here with the node id and node key it proved, and says through `mayRelay` which pairs
 * may talk.
 *
 * - The sender's key in every RECV_PACKET is the one the embedder authenticated, never one the
 *   client wrote.
 * - Bounded queues, drop newest: a packet whose frame would take the destination's unsent bytes
 *   (the WebSocket's bufferedAmount) past `maxQueueBytes` is dropped and counted (`queueFull`).
 *   WireGuard packets are datagrams: dropping the newest lets the inner TCP back off, as a full
 *   router queue would, and costs nothing to the packets already queued.
 * - Drops are counted by reason; a sender is told PEER_GONE once per peer (not connected, or not
 *   allowed) until a packet to that peer is forwarded again. When a client goes away, every client
 *   that sent to it is told at once.
 * - A bad frame closes only that client (RelayClose.BadFrame with the reason).
 * - Keepalive: a ping every `pingIntervalMs`; a client that answered nothing for two is cut off.
 */
import {
  encodePeerGone, encodeServerInfo, FRAME_RECV_PACKET, KEY_BYTES, MAX_PACKET_BYTES, PeerGoneReason, readClientFrame, RelayClose,
} from './relay-frame.js';
import { RELAY_PING_INTERVAL_MS, RELAY_QUEUE_BYTES } from './tunables.js';

/** The part of a `ws` WebSocket the relay uses (ws's WebSocket satisfies it as is). */
export interface RelaySocket {
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: true }, cb?: (err?: Error) => void): void;
  ping(): void;
  close(code: number, reason: string): void;
  terminate(): void;
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): unknown;
  on(event: 'pong', fn: () => void): unknown;
  on(event: 'close', fn: () => void): unknown;
}

/** The TCP socket under a RelaySocket (net.Socket fits): corked while a burst of packets is written to it. */
export interface RelayStream {
  cork(): void;
  uncork(): void;
}

export interface RelayCounters {
  /** Packets forwarded and their bytes (payload only). */
  packetsForwarded: number;
  bytesForwarded: number;
  /** Packets not forwarded, by reason. */
  dropped: { noSuchPeer: number; notAllowed: number; queueFull: number; tooBig: number };
  /** PEER_GONE frames sent. */
  peerGoneSent: number;
  /** Clients closed for a bad frame, and for missed keepalives. */
  badFrames: number;
  timeouts: number;
  /** Client connections accepted in total. */
  accepted: number;
}

export interface RelayServerOptions {
  /** Whether `src` may send to `dst` (node ids): asked for every packet, so policy changes apply at once. */
  mayRelay: (srcNodeId: number, dstNodeId: number) => boolean;
  /** Unsent bytes a destination may have queued before newer packets to it are dropped. */
  maxQueueBytes?: number;
  /** Largest packet forwarded (at most MAX_PACKET_BYTES); a bigger one is dropped (`tooBig`). */
  maxPacketBytes?: number;
  pingIntervalMs?: number;
}

class Client {
  /** Peers this client was told are gone (keys as latin1 strings), so it is told once. */
  readonly told = new Set<string>();
  /** Clients that sent to this one: told PEER_GONE when it leaves. */
  readonly senders = new Set<Client>();
  alive = true;
  closed = false;
  corked = false;
  constructor(readonly nodeId: number, readonly key: Buffer, readonly mapKey: string, readonly socket: RelaySocket, readonly stream: RelayStream | undefined) {}
}

export class RelayServer {
  readonly counters: RelayCounters = {
    packetsForwarded: 0, bytesForwarded: 0, dropped: { noSuchPeer: 0, notAllowed: 0, queueFull: 0, tooBig: 0 }, peerGoneSent: 0, badFrames: 0, timeouts: 0, accepted: 0,
  };
  private readonly byKey = new Map<string, Client>();
  private readonly byNode = new Map<number, Client>();
  private readonly maxQueueBytes: number;
  private readonly maxPacketBytes: number;
  private readonly pinger: NodeJS.Timeout;
  private corked: Client[] = [];
  private readonly uncorkAll = () => {
    const list = this.corked;
    this.corked = [];
    for (const c of list) {
      c.corked = false;
      c.stream!.uncork();
    }
  };

  constructor(private readonly opts: RelayServerOptions) {
    this.maxQueueBytes = opts.maxQueueBytes ?? RELAY_QUEUE_BYTES;
    this.maxPacketBytes = Math.min(opts.maxPacketBytes ?? MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    this.pinger = setInterval(() => this.pingAll(), opts.pingIntervalMs ?? RELAY_PING_INTERVAL_MS);
    this.pinger.unref();
  }

  get clientCount(): number {
    return this.byNode.size;
  }

  /** Whether node `nodeId` has a relay connection here. */
  isConnected(nodeId: number): boolean {
    return this.byNode.has(nodeId);
  }

  /**
   * Serves an authenticated client: `nodeKey` is the 32-byte node key the embedder proved for
   * `nodeId`. An older connection of the same node is closed (Replaced). `stream`, the TCP socket
   * under it, lets the relay write a burst of packets to it in one system call.
   */
  accept(socket: RelaySocket, nodeId: number, nodeKey: Uint8Array, stream?: RelayStream): void {
    if (nodeKey.length !== KEY_BYTES) throw new RangeError(`node key must be ${KEY_BYTES} bytes`);
    const key = Buffer.from(nodeKey);
    const client = new Client(nodeId, key, key.toString('latin1'), socket, stream);
    const old = this.byNode.get(nodeId);
    if (old) this.drop(old, RelayClose.Replaced, 'replaced by a newer relay connection');
    // Another node with the same key (a key reused across nodes) must not capture its packets.
    const sameKey = this.byKey.get(client.mapKey);
    if (sameKey) this.drop(sameKey, RelayClose.Replaced, 'another node connected with this node key');
    this.byKey.set(client.mapKey, client);
    this.byNode.set(nodeId, client);
    this.counters.accepted++;
    socket.on('message', (data, isBinary) => this.onMessage(client, data, isBinary));
    socket.on('pong', () => (client.alive = true));
    socket.on('close', () => this.forget(client));
    socket.send(encodeServerInfo(key, this.maxPacketBytes), { binary: true });
  }

  /** Closes a node's relay connection (the embedder's node was deleted, expired or suspended). */
  closeNode(nodeId: number, code: number, reason: string): void {
    const c = this.byNode.get(nodeId);
    if (c) this.drop(c, code, reason);
  }

  /** Closes every client and stops the keepalive timer. */
  close(code: number, reason: string): void {
    clearInterval(this.pinger);
    for (const c of [...this.byNode.values()]) this.drop(c, code, reason);
  }

  private onMessage(src: Client, data: Buffer, isBinary: boolean): void {
    if (src.closed) return;
    src.alive = true;
    const read = readClientFrame(data, isBinary);
    if (!read.ok) {
      this.counters.badFrames++;
      return this.drop(src, RelayClose.BadFrame, read.reason);
    }
    const { key, body } = read.frame;
    if (body.length > this.maxPacketBytes) {
      this.counters.dropped.tooBig++;
      return;
    }
    const dstKey = key.toString('latin1');
    const dst = this.byKey.get(dstKey);
    if (!dst || dst === src) {
      this.counters.dropped.noSuchPeer++;
      return this.tellGone(src, key, dstKey, PeerGoneReason.NotConnected);
    }
    if (!this.opts.mayRelay(src.nodeId, dst.nodeId)) {
      this.counters.dropped.notAllowed++;
      return this.tellGone(src, key, dstKey, PeerGoneReason.NotAllowed);
    }
    if (dst.socket.bufferedAmount + body.length > this.maxQueueBytes) {
      this.counters.dropped.queueFull++;
      return;
    }
    // The received message becomes the forwarded one in place: same length, type and key rewritten
    // (the key to the sender's authenticated one), so a packet is never copied on its way through.
    data[0] = FRAME_RECV_PACKET;
    src.key.copy(data, 1);
    // Packets that arrive in one read are mostly emitted in one tick: corked until the tick ends,
    // they leave in one writev instead of one system call each.
    if (dst.stream && !dst.corked) {
      dst.corked = true;
      dst.stream.cork();
      if (this.corked.push(dst) === 1) process.nextTick(this.uncorkAll);
    }
    dst.socket.send(data, { binary: true });
    dst.senders.add(src);
    if (src.told.size) src.told.delete(dstKey);
    this.counters.packetsForwarded++;
    this.counters.bytesForwarded += body.length;
  }

  private tellGone(src: Client, key: Buffer, mapKey: string, reason: PeerGoneReason): void {
    if (src.told.has(mapKey)) return;
    src.told.add(mapKey);
    this.counters.peerGoneSent++;
    src.socket.send(encodePeerGone(key, reason), { binary: true });
  }

  private pingAll(): void {
    for (const c of this.byNode.values()) {
      if (!c.alive) {
        this.counters.timeouts++;
        this.drop(c, RelayClose.Timeout, 'missed keepalives');
        continue;
      }
      c.alive = false;
      c.socket.ping();
    }
  }

  /** Closes a client now: forgotten at once, socket destroyed if the close does not complete. */
  private drop(c: Client, code: number, reason: string): void {
    if (c.closed) return;
    this.forget(c);
    c.socket.close(code, reason);
    // ws waits 30 s for the peer's close frame; a relay peer that does not read must not hold buffers that long.
    setTimeout(() => c.socket.terminate(), 1000).unref();
  }

  private forget(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    if (this.byNode.get(c.nodeId) === c) this.byNode.delete(c.nodeId);
    if (this.byKey.get(c.mapKey) === c) this.byKey.delete(c.mapKey);
    for (const s of c.senders) {
      if (s.closed) continue;
      s.senders.delete(c);
      this.tellGone(s, c.key, c.mapKey, PeerGoneReason.NotConnected);
    }
    c.senders.clear();
  }
}
