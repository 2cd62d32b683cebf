/**
 * Relay frames: what travels in the binary WebSocket messages of `GET /api/v1/relay`. Protocol
 * constants only (the server's knobs are in tunables.ts). One frame per WebSocket message; most
 * frames are laid out as:
 *
 *    0        1                                 33
 *    +--------+---------------------------------+----------------------------+
 *    |  type  |  node key (32 bytes, X25519)    |  body (0..MAX_PACKET_BYTES) |
 *    +--------+---------------------------------+----------------------------+
 *
 * - SEND_PACKET (client -> server): key = the destination's node key, body = one packet.
 * - RECV_PACKET (server -> client): key = the sender's node key, stamped by the server from the
 *   sender's authenticated identity (a client never names its own source), body = the packet.
 * - PEER_GONE (server -> client): key = a peer the client sent to, body = 1 byte PeerGoneReason.
 *   Sent once per peer, not per packet, until a packet to that peer is forwarded again.
 * - SERVER_INFO (server -> client, the first frame): key = the client's own node key as the
 *   server authenticated it, body = version (1 byte) + the server's packet limit (u32 BE), then,
 *   when the relay also serves UDP, the client's UDP ticket (relay-udp.ts; version 2 on). A reader
 *   ignores bytes after the ones it knows, so a version 1 client simply does not use UDP.
 *
 * - CLIENT_INFO (client -> server, version 3 on): 2 bytes, type + the client's frame version. A
 *   client sends it once SERVER_INFO says version 3 or later; from then on the server may send it
 *   RECV_BATCH. (So an older client never gets a batch, and an older server never sees this.)
 * - SEND_BATCH (client -> server) and RECV_BATCH (server -> client), version 3 on: type, then one
 *   entry or more, each laid out as
 *
 *    +---------------------------------+---------------+---------------------------+
 *    |  node key (32 bytes)            |  length (u16) |  packet (length bytes)    |
 *    +---------------------------------+---------------+---------------------------+
 *
 *   with the key as in SEND_PACKET (destination) and RECV_PACKET (sender) respectively. Packets
 *   that leave within one event-loop turn travel as one WebSocket message: what a WebSocket costs
 *   per message (header, mask, parse, event) is paid once for the lot, as DERP's buffered TCP
 *   writer does. A batch must be well formed as a whole (entries that end exactly at its end), or
 *   nothing of it is forwarded.
 *
 * - PEER_PRESENT (server -> client, version 4 on): key = a peer this client was told PEER_GONE
 *   (not connected) that has connected since (here, or to a relay linked to this one), no body.
 *   Sent once, to a client whose CLIENT_INFO said version 4 or later, so it can send again at once
 *   what it sent into the void (the handshake initiation of a pair that joined at the same moment:
 *   WireGuard would retry it only after RekeyTimeout, 5 s).
 *
 * Anything else from a client (text messages, short frames, a server-only type, an unknown type)
 * is a protocol error that closes that client with RelayClose.BadFrame and a reason.
 */

import { encodeTicket, readTicket, type UdpTicket } from './relay-udp.js';

/** Where the embedded relay listens on the control server's HTTP(S) port (WebSocket upgrade). */
export const RELAY_HTTP_PATH = '/api/v1/relay';

export const FRAME_SEND_PACKET = 0x01;
export const FRAME_RECV_PACKET = 0x02;
export const FRAME_PEER_GONE = 0x03;
export const FRAME_SERVER_INFO = 0x04;
export const FRAME_SEND_BATCH = 0x05;
export const FRAME_RECV_BATCH = 0x06;
export const FRAME_CLIENT_INFO = 0x07;
export const FRAME_PEER_PRESENT = 0x08;

/**
 * The relay frame format's version, carried in SERVER_INFO. 1 (2026-12-01): the four frames above.
 * 2 (2026-12-01): SERVER_INFO may carry a UDP ticket (relay-udp.ts).
 * 3 (2026-12-03): CLIENT_INFO, SEND_BATCH and RECV_BATCH.
 * 4 (2026-12-04): PEER_PRESENT.
 */
export const RELAY_VERSION = 4;
/** The first version with batches (and CLIENT_INFO). */
export const RELAY_VERSION_BATCH = 3;
/** The first version whose clients take PEER_PRESENT. */
export const RELAY_VERSION_PRESENT = 4;

export const KEY_BYTES = 32;
/** type + key. */
export const FRAME_HEADER_BYTES = 1 + KEY_BYTES;
/** Largest packet a frame may carry (DERP's limit too): any UDP datagram WireGuard sends fits. */
export const MAX_PACKET_BYTES = 64 * 1024;
/** Largest WebSocket message a relay endpoint must accept. */
export const MAX_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_PACKET_BYTES;
/** A batch entry's header: key + u16 length. */
export const BATCH_ENTRY_HEADER_BYTES = KEY_BYTES + 2;
/** Largest packet a batch entry carries (its u16 length); a bigger one travels in a frame of its own. */
export const MAX_BATCH_PACKET_BYTES = 0xffff;
/**
 * Largest batch a sender builds (type byte and entries), within MAX_FRAME_BYTES so every relay
 * endpoint accepts it: a packet that would take a batch past it starts the next one.
 */
export const MAX_BATCH_BYTES = 32 * 1024;

export const PeerGoneReason = {
  /** The peer has no relay connection to this server. */
  NotConnected: 1,
  /** The peer is connected but this pair may not talk (not in each other's netmap). */
  NotAllowed: 2,
} as const;
export type PeerGoneReason = (typeof PeerGoneReason)[keyof typeof PeerGoneReason];

/** WebSocket close codes of the relay socket (the embedding server adds its own, e.g. node deleted). */
export const RelayClose = {
  /** A frame that is not a valid client frame; the reason says what was wrong. */
  BadFrame: 4400,
  /** A newer relay connection of the same node replaced this one. */
  Replaced: 4409,
  /** Missed keepalives. */
  Timeout: 4408,
  /**
   * A relay region presented the node's token to another replica, which refused it (deleted,
   * expired, suspended): reconnect; the upgrade's refusal then says which.
   */
  Refused: 4401,
} as const;

/** A batch's entries: `offsets[i]` is where entry i's key starts in `data`; its packet follows its header. */
export type BatchEntries = { data: Buffer; offsets: number[] };

export type ClientFrame =
  | { type: typeof FRAME_SEND_PACKET; key: Buffer; body: Buffer }
  | { type: typeof FRAME_SEND_BATCH; entries: BatchEntries }
  | { type: typeof FRAME_CLIENT_INFO; version: number };
export type ServerFrame =
  | { type: typeof FRAME_RECV_PACKET; key: Buffer; body: Buffer }
  | { type: typeof FRAME_RECV_BATCH; entries: BatchEntries }
  | { type: typeof FRAME_PEER_GONE; key: Buffer; reason: PeerGoneReason }
  | { type: typeof FRAME_PEER_PRESENT; key: Buffer }
  | { type: typeof FRAME_SERVER_INFO; key: Buffer; version: number; maxPacketBytes: number; udp?: UdpTicket };

export type ReadFrame<T> = { ok: true; frame: T } | { ok: false; reason: string };

/** Encodes a frame header and body into one buffer (one copy of the body). */
export function encodeFrame(type: number, key: Uint8Array, body: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw new RangeError(`relay frame key must be ${KEY_BYTES} bytes, not ${key.length}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out[0] = type;
  out.set(key, 1);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

export function encodePeerGone(key: Uint8Array, reason: PeerGoneReason): Buffer {
  return encodeFrame(FRAME_PEER_GONE, key, Uint8Array.of(reason));
}

export function encodePeerPresent(key: Uint8Array): Buffer {
  return encodeFrame(FRAME_PEER_PRESENT, key, new Uint8Array(0));
}

export function encodeServerInfo(key: Uint8Array, maxPacketBytes: number, udp?: UdpTicket): Buffer {
  const head = Buffer.alloc(5);
  head[0] = RELAY_VERSION;
  head.writeUInt32BE(maxPacketBytes, 1);
  return encodeFrame(FRAME_SERVER_INFO, key, udp ? Buffer.concat([head, encodeTicket(udp)]) : head);
}

export function encodeClientInfo(version = RELAY_VERSION): Buffer {
  return Buffer.of(FRAME_CLIENT_INFO, version);
}

/**
 * Checks a batch (`data` = type byte, then entries) and returns where each entry starts, or why it
 * is not one: no entry, or an entry whose header or packet runs past the end.
 */
export function readBatch(data: Buffer): { ok: true; entries: BatchEntries } | { ok: false; reason: string } {
  const offsets: number[] = [];
  let o = 1;
  while (o < data.length) {
    if (o + BATCH_ENTRY_HEADER_BYTES > data.length) return { ok: false, reason: `relay batch entry ${offsets.length + 1} at byte ${o} is cut short in its header` };
    const len = data.readUInt16BE(o + KEY_BYTES);
    if (o + BATCH_ENTRY_HEADER_BYTES + len > data.length) return { ok: false, reason: `relay batch entry ${offsets.length + 1} says ${len} bytes but only ${data.length - o - BATCH_ENTRY_HEADER_BYTES} follow` };
    offsets.push(o);
    o += BATCH_ENTRY_HEADER_BYTES + len;
  }
  if (offsets.length === 0) return { ok: false, reason: 'relay batch with no entry' };
  return { ok: true, entries: { data, offsets } };
}

/** Entry `i` of a batch read by readBatch: its key and packet, views into the batch (no copy). */
export function batchEntry(b: BatchEntries, i: number): { key: Buffer; body: Buffer } {
  const o = b.offsets[i]!;
  const len = b.data.readUInt16BE(o + KEY_BYTES);
  return { key: b.data.subarray(o, o + KEY_BYTES), body: b.data.subarray(o + BATCH_ENTRY_HEADER_BYTES, o + BATCH_ENTRY_HEADER_BYTES + len) };
}

/**
 * Builds batches of packets, each with its key, in the order added. `add` returns a finished
 * batch when the packet would take the one being built past MAX_BATCH_BYTES (the packet then
 * starts the next); `take` ends the one being built. A batch of one entry is handed out as the
 * single-packet frame `singleType` (what an older reader knows, and one copy less).
 */
export class BatchWriter {
  private keys: Uint8Array[] = [];
  private bodies: Uint8Array[] = [];
  private bytes = 1;

  constructor(private readonly batchType: number, private readonly singleType: number) {}

  /** Bytes of packets waiting (what a queue bound must count). */
  get pendingBytes(): number {
    return this.bytes - 1 - this.keys.length * BATCH_ENTRY_HEADER_BYTES;
  }

  get size(): number {
    return this.keys.length;
  }

  add(key: Uint8Array, body: Uint8Array): Buffer | undefined {
    if (body.length > MAX_BATCH_PACKET_BYTES) throw new RangeError(`a batch entry carries at most ${MAX_BATCH_PACKET_BYTES} bytes, not ${body.length}`);
    const grow = BATCH_ENTRY_HEADER_BYTES + body.length;
    const full = this.keys.length > 0 && this.bytes + grow > MAX_BATCH_BYTES ? this.take() : undefined;
    this.keys.push(key);
    this.bodies.push(body);
    this.bytes += grow;
    return full;
  }

  take(): Buffer | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const out = n === 1 ? encodeFrame(this.singleType, this.keys[0]!, this.bodies[0]!) : Buffer.allocUnsafe(this.bytes);
    if (n > 1) {
      out[0] = this.batchType;
      let o = 1;
      for (let i = 0; i < n; i++) {
        const body = this.bodies[i]!;
        out.set(this.keys[i]!, o);
        out.writeUInt16BE(body.length, o + KEY_BYTES);
        out.set(body, o + BATCH_ENTRY_HEADER_BYTES);
        o += BATCH_ENTRY_HEADER_BYTES + body.length;
      }
    }
    this.keys = [];
    this.bodies = [];
    this.bytes = 1;
    return out;
  }
}

/** Reads a frame a client sent. The key and body are views into `data` (no copy). */
export function readClientFrame(data: Buffer, isBinary: boolean): ReadFrame<ClientFrame> {
  if (!isBinary) return { ok: false, reason: 'relay frames are binary WebSocket messages' };
  const type = data[0];
  if (type === FRAME_SEND_BATCH) {
    const b = readBatch(data);
    return b.ok ? { ok: true, frame: { type, entries: b.entries } } : b;
  }
  if (type === FRAME_CLIENT_INFO) {
    if (data.length !== 2) return { ok: false, reason: `client-info frame of ${data.length} bytes (it is 2: type and version)` };
    return { ok: true, frame: { type, version: data[1]! } };
  }
  if (data.length < FRAME_HEADER_BYTES) return { ok: false, reason: `relay frame of ${data.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header` };
  if (type !== FRAME_SEND_PACKET) return { ok: false, reason: `relay frame type 0x${type!.toString(16).padStart(2, '0')} is not one a client sends` };
  return { ok: true, frame: { type, key: data.subarray(1, FRAME_HEADER_BYTES), body: data.subarray(FRAME_HEADER_BYTES) } };
}

/** Reads a frame the server sent (the client side). */
export function readServerFrame(data: Buffer): ReadFrame<ServerFrame> {
  if (data[0] === FRAME_RECV_BATCH) {
    const b = readBatch(data);
    return b.ok ? { ok: true, frame: { type: FRAME_RECV_BATCH, entries: b.entries } } : b;
  }
  if (data.length < FRAME_HEADER_BYTES) return { ok: false, reason: `relay frame of ${data.length} bytes is shorter than its header` };
  const type = data[0]!;
  const key = data.subarray(1, FRAME_HEADER_BYTES);
  const body = data.subarray(FRAME_HEADER_BYTES);
  switch (type) {
    case FRAME_RECV_PACKET:
      return { ok: true, frame: { type, key, body } };
    case FRAME_PEER_GONE: {
      const reason = body[0];
      if (body.length !== 1 || (reason !== PeerGoneReason.NotConnected && reason !== PeerGoneReason.NotAllowed)) return { ok: false, reason: 'peer-gone frame without a known reason byte' };
      return { ok: true, frame: { type, key, reason } };
    }
    case FRAME_PEER_PRESENT:
      if (body.length !== 0) return { ok: false, reason: `peer-present frame with ${body.length} bytes of body (it has none)` };
      return { ok: true, frame: { type, key } };
    case FRAME_SERVER_INFO:
      if (body.length < 5) return { ok: false, reason: 'server-info frame is shorter than 5 bytes of body' };
      {
        const udp = readTicket(body.subarray(5));
        return { ok: true, frame: { type, key, version: body[0]!, maxPacketBytes: body.readUInt32BE(1), ...(udp ? { udp } : {}) } };
      }
    default:
      return { ok: false, reason: `relay frame type 0x${type.toString(16).padStart(2, '0')} is not one a server sends` };
  }
}
