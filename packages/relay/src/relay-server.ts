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
 *   that sent to it is told at once. A client of version 4 on that was told a peer is not
 *   connected is told PEER_PRESENT once that peer connects (here or to a linked relay), so it can
 *   send again what it sent into the void (a handshake initiation at join) without waiting.
 * - A bad frame closes only that client (RelayClose.BadFrame with the reason).
 * - Batches (relay-frame.ts, version 3): a client that sent CLIENT_INFO gets what arrives for it
 *   within one event-loop turn as one RECV_BATCH message (flushed at setImmediate), counted in
 *   the queue bound while it waits; an older client gets one RECV_PACKET per packet, as before.
 *   A SEND_BATCH is forwarded entry by entry, each as a SEND_PACKET would be.
 * - Keepalive: a ping every `pingIntervalMs`; a client that answered nothing for two is cut off.
 * - UDP (relay-udp.ts), once the embedder attaches a UDP socket (`attachUdp`): every client gets a
 *   ticket in SERVER_INFO; a client that bound its UDP address with it receives its packets there
 *   (no TCP under the relayed flow), whichever way the sender sent them, and may send there too.
 *   A binding not refreshed for `udpBindingTtlMs` lapses and the client's packets go back to its
 *   WebSocket; so does one whose client sends a packet over its WebSocket (it does that only once
 *   its own UDP stopped being answered), until its next BIND. The queue bound does not apply to UDP: the kernel's socket buffer is the queue, and
 *   a full one drops (ENOBUFS / EAGAIN), newest first, like a router.
 * - Mesh (relay-mesh.ts), for replicas behind one address: `addMeshLink` gives the relay a link
 *   it sends on (it announces its clients there); `receiveMesh` takes what another replica sent
 *   on a link the embedder authenticated. A packet to a key that is not connected here but was
 *   announced by another replica is forwarded to that replica (if `mayRelay` allows the pair),
 *   which delivers it to its client; queue bounds apply to mesh links as to clients.
 */
import {
  BATCH_ENTRY_HEADER_BYTES, BatchWriter, encodePeerGone, encodePeerPresent, encodeServerInfo, FRAME_CLIENT_INFO, FRAME_RECV_BATCH, FRAME_RECV_PACKET, FRAME_SEND_BATCH, KEY_BYTES, MAX_BATCH_PACKET_BYTES,
  MAX_PACKET_BYTES, PeerGoneReason, readClientFrame, RELAY_VERSION_BATCH, RELAY_VERSION_PRESENT, RelayClose,
} from './relay-frame.js';
import { randomBytes } from 'node:crypto';
import type { StunServer } from './stun-server.js';
import {
  bindMacValid, encodeBind, readBindHeader, UDP_BIND, UDP_BIND_ACK, UDP_ID_BYTES, UDP_RECV, UDP_SECRET_BYTES, UDP_SEND, UDP_SEND_HEADER_BYTES,
} from './relay-udp.js';
import { encodeAbsent, encodeForward, encodePresent, MESH_ABSENT, MESH_FORWARD, MESH_PRESENT, readMeshFrame } from './relay-mesh.js';
import { RELAY_PING_INTERVAL_MS, RELAY_QUEUE_BYTES, RELAY_UDP_BINDING_TTL_MS } from './tunables.js';

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
  /** PEER_GONE frames sent, and PEER_PRESENT frames. */
  peerGoneSent: number;
  peerPresentSent: number;
  /** Clients closed for a bad frame, and for missed keepalives. */
  badFrames: number;
  timeouts: number;
  /** Client connections accepted in total. */
  accepted: number;
  /** RECV_BATCH messages sent, and SEND_BATCH messages received (each more than one packet). */
  batchesSent: number;
  batchesReceived: number;
  /**
   * The UDP side: binds accepted and refused (in total, and by reason: not a BIND, no session with
   * that id, a sequence number not above the last, a wrong MAC), packets and their payload bytes in
   * and out, datagrams from no bound client (dropped unanswered), bindings dropped because the
   * client sent over its WebSocket.
   */
  udp: {
    binds: number; bindsRefused: number; bindsRefusedBy: { malformed: number; unknownSession: number; replayed: number; badMac: number };
    packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number; unbound: number; unbinds: number;
  };
  /**
   * The mesh: packets forwarded to other replicas and delivered from them, dropped on arrival (not
   * here, not allowed, too big, queue full; a full link on the way out is `dropped.queueFull`), bad mesh frames, and links into this replica the embedder
   * refused at authentication (it counts those: the relay authenticates nothing).
   */
  mesh: { forwardedOut: number; deliveredIn: number; dropped: number; badFrames: number; linksRefused: number };
}

/** A link to another replica's relay that this relay sends on (a `ws` WebSocket it dialed fits). */
export interface RelayMeshLink {
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: true }): void;
}

/** The UDP socket the relay shares (the STUN port): where tickets point and RECV datagrams leave. */
export interface RelayUdpTransport {
  /** The port clients send to (the socket's bound port). */
  readonly port: number;
  send(msg: Buffer, port: number, address: string): void;
}

export interface RelayServerOptions {
  /** Whether `src` may send to `dst` (node ids): asked for every packet, so policy changes apply at once. */
  mayRelay: (srcNodeId: number, dstNodeId: number) => boolean;
  /** Unsent bytes a destination may have queued before newer packets to it are dropped. */
  maxQueueBytes?: number;
  /** Largest packet forwarded (at most MAX_PACKET_BYTES); a bigger one is dropped (`tooBig`). */
  maxPacketBytes?: number;
  pingIntervalMs?: number;
  /** How long a UDP binding lasts without a fresh BIND (checked at each keepalive round). */
  udpBindingTtlMs?: number;
}

class Client {
  /** UDP: this session's id (latin1 map key) and secret, and the bound address once a BIND proved it. */
  udpId: Buffer | undefined;
  udpIdKey = '';
  udpSecret: Buffer | undefined;
  udpAddress: string | undefined;
  udpPort = 0;
  udpSeq = 0n;
  udpBoundAt = 0;
  /** Peers this client was told are gone (keys as latin1 strings), so it is told once. */
  readonly told = new Set<string>();
  /** Clients that sent to this one: told PEER_GONE when it leaves. */
  readonly senders = new Set<Client>();
  alive = true;
  closed = false;
  corked = false;
  /** Set once the client sent CLIENT_INFO (version 3 on): its packets then leave in batches. */
  out: BatchWriter | undefined;
  /** The frame version its CLIENT_INFO named (0 without one). */
  version = 0;
  flushing = false;
  constructor(readonly nodeId: number, readonly key: Buffer, readonly mapKey: string, readonly socket: RelaySocket, readonly stream: RelayStream | undefined) {}
}

/** A mesh peer: another server replica, or a standalone `weft-relay` region linked to this relay. */
export type MeshPeerKind = 'replica' | 'region';

/**
 * Whether what mesh peer `from` (of kind `fromKind`) announced, or a packet toward it, passes
 * through this relay to mesh peer `to` (of kind `toKind`). Replicas link to every other replica,
 * so what one replica holds is never passed replica to replica again; what a region holds goes to
 * every other peer, and what a replica holds goes on to the regions linked here. So a key reaches
 * every relay of the deployment, and a path is at most region -> replica -> replica -> region.
 */
export function passesOn(from: string, fromKind: MeshPeerKind, to: string, toKind: MeshPeerKind): boolean {
  return from !== to && (fromKind === 'region' || toKind === 'region');
}

export class RelayServer {
  readonly counters: RelayCounters = {
    packetsForwarded: 0, bytesForwarded: 0, dropped: { noSuchPeer: 0, notAllowed: 0, queueFull: 0, tooBig: 0 }, peerGoneSent: 0, peerPresentSent: 0, badFrames: 0, timeouts: 0, accepted: 0, batchesSent: 0, batchesReceived: 0,
    udp: { binds: 0, bindsRefused: 0, bindsRefusedBy: { malformed: 0, unknownSession: 0, replayed: 0, badMac: 0 }, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, unbound: 0, unbinds: 0 },
    mesh: { forwardedOut: 0, deliveredIn: 0, dropped: 0, badFrames: 0, linksRefused: 0 },
  };
  /** Mesh: links this relay sends on, by replica id; keys other replicas announced, with their node id and replica. */
  private readonly meshLinks = new Map<string, RelayMeshLink>();
  /** What each mesh peer is: another server replica (full mesh among replicas) or a standalone region. */
  private readonly meshKinds = new Map<string, MeshPeerKind>();
  private readonly remote = new Map<string, { replica: string; nodeId: number; via: MeshPeerKind }>();
  private readonly byUdpId = new Map<string, Client>();
  private udp: RelayUdpTransport | undefined;
  private readonly udpTtlMs: number;
  private readonly byKey = new Map<string, Client>();
  private readonly byNode = new Map<number, Client>();
  /** Keys clients of version 4 on were told are not connected, with those clients: told PEER_PRESENT when the key connects. */
  private readonly watching = new Map<string, Set<Client>>();
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

  private flushing: Client[] = [];
  private readonly flushAll = () => {
    const list = this.flushing;
    this.flushing = [];
    for (const c of list) {
      c.flushing = false;
      if (!c.closed) this.sendOut(c, c.out?.take());
    }
  };

  constructor(private readonly opts: RelayServerOptions) {
    this.maxQueueBytes = opts.maxQueueBytes ?? RELAY_QUEUE_BYTES;
    this.maxPacketBytes = Math.min(opts.maxPacketBytes ?? MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    this.udpTtlMs = opts.udpBindingTtlMs ?? RELAY_UDP_BINDING_TTL_MS;
    this.pinger = setInterval(() => this.pingAll(), opts.pingIntervalMs ?? RELAY_PING_INTERVAL_MS);
    this.pinger.unref();
  }

  get clientCount(): number {
    return this.byNode.size;
  }

  /** Mesh links this relay sends on (one per peer replica it is linked to). */
  get meshLinkCount(): number {
    return this.meshLinks.size;
  }

  /**
   * Serves the relay over UDP too, on `transport` (feed it the socket's relay datagrams with
   * `receiveUdp`). Clients that connect from now on get a ticket.
   */
  attachUdp(transport: RelayUdpTransport): void {
    this.udp = transport;
  }

  /** Whether node `nodeId`'s packets currently go to a bound UDP address. */
  udpBound(nodeId: number): boolean {
    return this.byNode.get(nodeId)?.udpAddress !== undefined;
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
    if (this.udp) {
      client.udpId = randomBytes(UDP_ID_BYTES);
      client.udpIdKey = client.udpId.toString('latin1');
      client.udpSecret = randomBytes(UDP_SECRET_BYTES);
      this.byUdpId.set(client.udpIdKey, client);
    }
    const ticket = this.udp && client.udpId && client.udpSecret ? { port: this.udp.port, id: client.udpId, secret: client.udpSecret } : undefined;
    socket.send(encodeServerInfo(key, this.maxPacketBytes, ticket), { binary: true });
    if (this.meshLinks.size) {
      const present = encodePresent(key, nodeId);
      for (const link of this.meshLinks.values()) link.send(present, { binary: true });
    }
    this.tellPresent(client.mapKey, key, nodeId);
  }

  /**
   * Sends on `link` to mesh peer `replicaId` (a server replica, or a standalone region: `kind`)
   * from now on (replacing an older link), starting with every client held here and every remote
   * key this relay passes on to a peer of that kind (`passesOn`).
   */
  addMeshLink(replicaId: string, link: RelayMeshLink, kind: MeshPeerKind = 'replica'): void {
    this.meshLinks.set(replicaId, link);
    this.meshKinds.set(replicaId, kind);
    for (const c of this.byNode.values()) link.send(encodePresent(c.key, c.nodeId), { binary: true });
    for (const [k, r] of this.remote) {
      if (this.byKey.has(k) || !passesOn(r.replica, r.via, replicaId, kind)) continue;
      link.send(encodePresent(Buffer.from(k, 'latin1'), r.nodeId), { binary: true });
    }
  }

  /** Sends `frame` (about a key mesh peer `from`, of kind `via`, holds) on every link it passes on to. */
  private passOn(from: string, via: MeshPeerKind, frame: Buffer): void {
    for (const [id, link] of this.meshLinks) if (passesOn(from, via, id, this.meshKinds.get(id) ?? 'replica')) link.send(frame, { binary: true });
  }

  /** The link to `replicaId` closed: packets for its clients wait for a new one (they are dropped until then). */
  removeMeshLink(replicaId: string, link: RelayMeshLink): void {
    if (this.meshLinks.get(replicaId) === link) {
      this.meshLinks.delete(replicaId);
      this.meshKinds.delete(replicaId);
    }
  }

  /**
   * A frame replica `replicaId` sent on a link the embedder authenticated. Returns a reason when it
   * is not a valid mesh frame (the embedder closes that link), undefined otherwise.
   */
  receiveMesh(replicaId: string, data: Buffer, kind: MeshPeerKind = 'replica'): string | undefined {
    const read = readMeshFrame(data);
    if (!read.ok) {
      this.counters.mesh.badFrames++;
      return read.reason;
    }
    const f = read.frame;
    if (f.type === MESH_PRESENT) {
      const k = f.key.toString('latin1');
      this.remote.set(k, { replica: replicaId, nodeId: f.nodeId, via: kind });
      // A client held here wins over what a peer says of the same key (its own PRESENT went out).
      if (!this.byKey.has(k)) {
        this.passOn(replicaId, kind, data);
        this.tellPresent(k, f.key, f.nodeId);
      }
    } else if (f.type === MESH_ABSENT) {
      const k = f.key.toString('latin1');
      const r = this.remote.get(k);
      if (r?.replica === replicaId) {
        this.remote.delete(k);
        if (!this.byKey.has(k)) this.passOn(replicaId, r.via, data);
      }
    } else if (f.type === MESH_FORWARD) {
      const dstKey = f.dst.toString('latin1');
      const dst = this.byKey.get(dstKey);
      const bodyLength = f.tail.length - 1 - KEY_BYTES;
      if (!dst) return this.transit(replicaId, kind, dstKey, f.srcNodeId, data, bodyLength);
      if (bodyLength > this.maxPacketBytes || !this.opts.mayRelay(f.srcNodeId, dst.nodeId) || !this.deliver(dst, f.tail.subarray(1, 1 + KEY_BYTES), f.tail, bodyLength)) {
        this.counters.mesh.dropped++;
        return undefined;
      }
      this.counters.mesh.deliveredIn++;
      this.counters.packetsForwarded++;
      this.counters.bytesForwarded += bodyLength;
    }
    return undefined;
  }

  /**
   * A FORWARD from mesh peer `from` for a key not held here: sent on toward the peer that
   * announced the key when that is a hop `passesOn` allows (so a packet crosses at most
   * region -> replica -> replica -> region, and never goes back where it came from), and this
   * relay's own `mayRelay` allows the pair; dropped otherwise.
   */
  private transit(from: string, fromKind: MeshPeerKind, dstKey: string, srcNodeId: number, data: Buffer, bodyLength: number): undefined {
    const far = this.remote.get(dstKey);
    const link = far && this.meshLinks.get(far.replica);
    if (!far || !link || bodyLength > this.maxPacketBytes || !passesOn(far.replica, far.via, from, fromKind) || link.bufferedAmount + bodyLength > this.maxQueueBytes || !this.opts.mayRelay(srcNodeId, far.nodeId)) {
      this.counters.mesh.dropped++;
      return undefined;
    }
    link.send(data, { binary: true });
    this.counters.mesh.forwardedOut++;
    this.counters.packetsForwarded++;
    this.counters.bytesForwarded += bodyLength;
    return undefined;
  }

  /** Mesh peer `replicaId`'s link to us closed (or it died): forget every key it announced, and tell whom it was passed on to. */
  forgetReplica(replicaId: string): void {
    for (const [k, r] of this.remote) {
      if (r.replica !== replicaId) continue;
      this.remote.delete(k);
      if (!this.byKey.has(k)) this.passOn(replicaId, r.via, encodeAbsent(Buffer.from(k, 'latin1')));
    }
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
    const f = read.frame;
    if (f.type === FRAME_CLIENT_INFO) {
      src.version = f.version;
      if (f.version >= RELAY_VERSION_BATCH) src.out ??= new BatchWriter(FRAME_RECV_BATCH, FRAME_RECV_PACKET);
      return;
    }
    // A client sends over its WebSocket only while its UDP does not work (relay-udp-client's
    // `usable`): its packets come back that way too, at once rather than when the binding lapses.
    if (src.udpAddress !== undefined) {
      src.udpAddress = undefined;
      src.udpPort = 0;
      this.counters.udp.unbinds++;
    }
    if (f.type !== FRAME_SEND_BATCH) return this.forwardChecked(src, f.key, data, f.body.length);
    this.counters.batchesReceived++;
    for (const o of f.entries.offsets) {
      if (src.closed) break;
      const len = data.readUInt16BE(o + KEY_BYTES);
      // The entry seen in the RECV layout, from its key's second byte: that byte stands for the
      // type, the rest of the key and the length (33 bytes) for the key; then the packet.
      this.forwardChecked(src, data.subarray(o, o + KEY_BYTES), data.subarray(o + 1, o + BATCH_ENTRY_HEADER_BYTES + len), len);
    }
  }

  private forwardChecked(src: Client, key: Buffer, frame: Buffer, bodyLength: number): void {
    if (bodyLength > this.maxPacketBytes) {
      this.counters.dropped.tooBig++;
      return;
    }
    this.forward(src, key, frame, bodyLength);
  }

  /**
   * A datagram from the relay's UDP socket whose first byte is a relay type (isRelayDatagram).
   * BIND binds (answered with a BIND_ACK of the same length); SEND from a bound address forwards.
   * Anything else, or from an address that proved nothing, is dropped without an answer.
   */
  receiveUdp(msg: Buffer, from: { address: string; port: number }): void {
    const udp = this.udp;
    if (!udp) return;
    if (msg[0] === UDP_BIND) {
      const head = readBindHeader(msg, UDP_BIND);
      const c = head.ok ? this.byUdpId.get(head.id.toString('latin1')) : undefined;
      const refused: keyof RelayCounters['udp']['bindsRefusedBy'] | undefined = !head.ok ? 'malformed'
        : !c || c.closed || !c.udpSecret ? 'unknownSession'
        : head.seq <= c.udpSeq ? 'replayed'
        : !bindMacValid(msg, c.udpSecret) ? 'badMac' : undefined;
      if (refused || !head.ok || !c?.udpSecret) {
        this.counters.udp.bindsRefused++;
        this.counters.udp.bindsRefusedBy[refused ?? 'malformed']++;
        return;
      }
      c.udpSeq = head.seq;
      c.udpAddress = from.address;
      c.udpPort = from.port;
      c.udpBoundAt = Date.now();
      this.counters.udp.binds++;
      udp.send(encodeBind(UDP_BIND_ACK, c.udpId!, c.udpSecret, head.seq), from.port, from.address);
      return;
    }
    if (msg[0] !== UDP_SEND || msg.length < UDP_SEND_HEADER_BYTES) {
      this.counters.udp.unbound++;
      return;
    }
    const src = this.byUdpId.get(msg.toString('latin1', 1, 1 + UDP_ID_BYTES));
    if (!src || src.closed || src.udpPort !== from.port || src.udpAddress !== from.address) {
      this.counters.udp.unbound++;
      return;
    }
    this.counters.udp.packetsIn++;
    const bodyLength = msg.length - UDP_SEND_HEADER_BYTES;
    this.counters.udp.bytesIn += bodyLength;
    if (bodyLength > this.maxPacketBytes) {
      this.counters.dropped.tooBig++;
      return;
    }
    // msg[UDP_ID_BYTES..] has the RECV layout's length: type byte, then the key, then the body.
    const frame = msg.subarray(UDP_ID_BYTES);
    this.forward(src, frame.subarray(1, 1 + KEY_BYTES), frame, bodyLength);
  }

  /**
   * Forwards `data` (type byte | destination key `key` | body of `bodyLength`, which it may rewrite
   * in place to the RECV layout with the sender's authenticated key) from `src` to the key's client.
   * `key` may share bytes with `data`'s: it is read before `data` is written.
   */
  private forward(src: Client, key: Buffer, data: Buffer, bodyLength: number): void {
    const dstKey = key.toString('latin1');
    const dst = this.byKey.get(dstKey);
    if (!dst || dst === src) {
      const far = dst ? undefined : this.remote.get(dstKey);
      const link = far && this.meshLinks.get(far.replica);
      if (far && link) return this.forwardToReplica(src, key, dstKey, far.nodeId, link, data, bodyLength);
      this.counters.dropped.noSuchPeer++;
      return this.tellGone(src, key, dstKey, PeerGoneReason.NotConnected);
    }
    if (!this.opts.mayRelay(src.nodeId, dst.nodeId)) {
      this.counters.dropped.notAllowed++;
      return this.tellGone(src, key, dstKey, PeerGoneReason.NotAllowed);
    }
    if (!this.deliver(dst, src.key, data, bodyLength)) {
      this.counters.dropped.queueFull++;
      return;
    }
    dst.senders.add(src);
    if (src.told.size) this.untell(src, dstKey);
    this.counters.packetsForwarded++;
    this.counters.bytesForwarded += bodyLength;
  }

  private forwardToReplica(src: Client, key: Buffer, dstKey: string, dstNodeId: number, link: RelayMeshLink, data: Buffer, bodyLength: number): void {
    if (!this.opts.mayRelay(src.nodeId, dstNodeId)) {
      this.counters.dropped.notAllowed++;
      return this.tellGone(src, key, dstKey, PeerGoneReason.NotAllowed);
    }
    if (link.bufferedAmount + bodyLength > this.maxQueueBytes) {
      this.counters.dropped.queueFull++;
      return;
    }
    link.send(encodeForward(key, src.nodeId, src.key, data.subarray(data.length - bodyLength)), { binary: true });
    if (src.told.size) this.untell(src, dstKey);
    this.counters.mesh.forwardedOut++;
    this.counters.packetsForwarded++;
    this.counters.bytesForwarded += bodyLength;
  }

  /**
   * Sends the packet at the end of `data` (RECV layout: a type byte and a key to be set, then the
   * body) from the sender with key `srcKey` to `dst`: over UDP when it is bound; else into its
   * batch when it takes batches; else its WebSocket. False when its queue is full. Sent as is,
   * the received message becomes the forwarded one in place (same length, type and key rewritten),
   * so a packet is never copied on its way through; a batch copies it once.
   */
  private deliver(dst: Client, srcKey: Buffer, data: Buffer, bodyLength: number): boolean {
    if (dst.udpAddress !== undefined && this.udp) {
      srcKey.copy(data, 1);
      data[0] = UDP_RECV;
      this.udp.send(data, dst.udpPort, dst.udpAddress);
      this.counters.udp.packetsOut++;
      this.counters.udp.bytesOut += bodyLength;
      return true;
    }
    const out = dst.out;
    if (out && dst.socket.bufferedAmount + out.pendingBytes + bodyLength > this.maxQueueBytes) return false;
    if (out && bodyLength <= MAX_BATCH_PACKET_BYTES) {
      this.sendOut(dst, out.add(srcKey, data.subarray(data.length - bodyLength)));
      if (!dst.flushing) {
        dst.flushing = true;
        if (this.flushing.push(dst) === 1) setImmediate(this.flushAll);
      }
      return true;
    }
    // Too big for a batch entry: what waits goes first, then this in a frame of its own.
    this.sendOut(dst, out?.take());
    if (dst.socket.bufferedAmount + bodyLength > this.maxQueueBytes) return false;
    srcKey.copy(data, 1);
    data[0] = FRAME_RECV_PACKET;
    // Packets that arrive in one read are mostly emitted in one tick: corked until the tick ends,
    // they leave in one writev instead of one system call each.
    if (dst.stream && !dst.corked) {
      dst.corked = true;
      dst.stream.cork();
      if (this.corked.push(dst) === 1) process.nextTick(this.uncorkAll);
    }
    dst.socket.send(data, { binary: true });
    return true;
  }

  /** Sends what a client's BatchWriter handed out (a batch, or a single frame), if anything. */
  private sendOut(c: Client, frame: Buffer | undefined): void {
    if (!frame) return;
    if (frame[0] === FRAME_RECV_BATCH) this.counters.batchesSent++;
    c.socket.send(frame, { binary: true });
  }

  private tellGone(src: Client, key: Buffer, mapKey: string, reason: PeerGoneReason): void {
    if (src.told.has(mapKey)) return;
    src.told.add(mapKey);
    this.counters.peerGoneSent++;
    src.socket.send(encodePeerGone(key, reason), { binary: true });
    if (reason !== PeerGoneReason.NotConnected || src.version < RELAY_VERSION_PRESENT) return;
    let w = this.watching.get(mapKey);
    if (!w) this.watching.set(mapKey, (w = new Set()));
    w.add(src);
  }

  /** A packet from `src` to `mapKey` got through: a later absence is told again. */
  private untell(src: Client, mapKey: string): void {
    if (!src.told.delete(mapKey)) return;
    const w = this.watching.get(mapKey);
    if (w?.delete(src) && w.size === 0) this.watching.delete(mapKey);
  }

  /** `key` (node `nodeId`) connected, here or to a linked relay: whoever was told it was not hears it is now. */
  private tellPresent(mapKey: string, key: Buffer, nodeId: number): void {
    const w = this.watching.get(mapKey);
    if (!w) return;
    this.watching.delete(mapKey);
    let frame: Buffer | undefined;
    for (const s of w) {
      s.told.delete(mapKey);
      // Told only where a packet would be forwarded now: presence is not news to a pair that may not talk.
      if (s.closed || !this.opts.mayRelay(s.nodeId, nodeId)) continue;
      this.counters.peerPresentSent++;
      s.socket.send((frame ??= encodePeerPresent(key)), { binary: true });
    }
  }

  private pingAll(): void {
    const lapsed = Date.now() - this.udpTtlMs;
    for (const c of this.byNode.values()) {
      if (c.udpAddress !== undefined && c.udpBoundAt < lapsed) {
        c.udpAddress = undefined;
        c.udpPort = 0;
      }
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
    for (const k of c.told) {
      const w = this.watching.get(k);
      if (w?.delete(c) && w.size === 0) this.watching.delete(k);
    }
    if (this.byNode.get(c.nodeId) === c) this.byNode.delete(c.nodeId);
    if (this.byKey.get(c.mapKey) === c) this.byKey.delete(c.mapKey);
    if (c.udpId && this.byUdpId.get(c.udpIdKey) === c) this.byUdpId.delete(c.udpIdKey);
    c.udpAddress = undefined;
    if (this.meshLinks.size && this.byKey.get(c.mapKey) === undefined) {
      const absent = encodeAbsent(c.key);
      for (const link of this.meshLinks.values()) link.send(absent, { binary: true });
      // The node may be on another relay already (it moved): that peer's PRESENT is passed on again after the ABSENT.
      const r = this.remote.get(c.mapKey);
      if (r) this.passOn(r.replica, r.via, encodePresent(c.key, r.nodeId));
    }
    for (const s of c.senders) {
      if (s.closed) continue;
      s.senders.delete(c);
      this.tellGone(s, c.key, c.mapKey, PeerGoneReason.NotConnected);
    }
    c.senders.clear();
  }
}

/** Serves `relay` over UDP on `stun`'s socket too (the STUN port): relay datagrams go to the relay, the rest stay STUN. */
export function relayOverStunPort(relay: RelayServer, stun: StunServer): void {
  relay.attachUdp({ port: stun.address().port, send: (msg, port, address) => stun.send(msg, port, address) });
  stun.relay = (msg, from) => relay.receiveUdp(msg, from);
}
