/**
 * Relay frames: what travels in the binary WebSocket messages of `GET /api/v1/relay`. Protocol
 * constants only (the server's knobs are in tunables.ts). One frame per WebSocket message:
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

/**
 * The relay frame format's version, carried in SERVER_INFO. 1 (2026-12-01): the four frames above.
 * 2 (2026-12-01): SERVER_INFO may carry a UDP ticket (relay-udp.ts).
 */
export const RELAY_VERSION = 2;

export const KEY_BYTES = 32;
/** type + key. */
export const FRAME_HEADER_BYTES = 1 + KEY_BYTES;
/** Largest packet a frame may carry (DERP's limit too): any UDP datagram WireGuard sends fits. */
export const MAX_PACKET_BYTES = 64 * 1024;
/** Largest WebSocket message a relay endpoint must accept. */
export const MAX_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_PACKET_BYTES;

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

export type ClientFrame = { type: typeof FRAME_SEND_PACKET; key: Buffer; body: Buffer };
export type ServerFrame =
  | { type: typeof FRAME_RECV_PACKET; key: Buffer; body: Buffer }
  | { type: typeof FRAME_PEER_GONE; key: Buffer; reason: PeerGoneReason }
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

export function encodeServerInfo(key: Uint8Array, maxPacketBytes: number, udp?: UdpTicket): Buffer {
  const head = Buffer.alloc(5);
  head[0] = RELAY_VERSION;
  head.writeUInt32BE(maxPacketBytes, 1);
  return encodeFrame(FRAME_SERVER_INFO, key, udp ? Buffer.concat([head, encodeTicket(udp)]) : head);
}

/** Reads a frame a client sent. The key and body are views into `data` (no copy). */
export function readClientFrame(data: Buffer, isBinary: boolean): ReadFrame<ClientFrame> {
  if (!isBinary) return { ok: false, reason: 'relay frames are binary WebSocket messages' };
  if (data.length < FRAME_HEADER_BYTES) return { ok: false, reason: `relay frame of ${data.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header` };
  const type = data[0]!;
  if (type !== FRAME_SEND_PACKET) return { ok: false, reason: `relay frame type 0x${type.toString(16).padStart(2, '0')} is not one a client sends` };
  return { ok: true, frame: { type, key: data.subarray(1, FRAME_HEADER_BYTES), body: data.subarray(FRAME_HEADER_BYTES) } };
}

/** Reads a frame the server sent (the client side). */
export function readServerFrame(data: Buffer): ReadFrame<ServerFrame> {
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
