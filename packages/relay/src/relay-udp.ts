/**
 * The packet relay over UDP: the same packets, addressed by the same node keys, in datagrams to the
 * relay's UDP port (the STUN port) instead of WebSocket frames, so a relayed WireGuard flow is not
 * carried inside TCP. UDP is an addition to a WebSocket session, never a replacement: the session
 * authenticates the client (its machine token) and hands it a ticket in SERVER_INFO; the ticket
 * authenticates its UDP address; a client whose UDP does not work keeps using the WebSocket.
 *
 * Ticket (SERVER_INFO body after version and packet limit, only when the relay serves UDP):
 *   udp port (u16 BE) | session id (8 random bytes) | session secret (32 random bytes)
 *
 * Datagrams (first byte 0xA1..0xA4: never STUN, whose first two bits are 0, nor WireGuard, 1..4):
 *   BIND      client -> relay  A1 | id (8) | seq (u64 BE) | mac (16)      = 33 bytes
 *   BIND_ACK  relay -> client  A2 | id (8) | seq (u64 BE) | mac (16)      = 33 bytes
 *   SEND      client -> relay  A3 | id (8) | destination node key (32) | packet
 *   RECV      relay -> client  A4 | sender node key (32) | packet
 *
 * mac = the first 16 bytes of HMAC-SHA256(secret, the 17 bytes before it). A BIND whose mac is
 * right and whose seq is above the last one accepted for that id binds the id to the datagram's
 * source address and port (a NAT that moved the client just rebinds it); a replayed BIND is
 * refused. SEND is accepted only from the bound address with its id; RECV goes only to a bound
 * address. A packet the client sends over its WebSocket unbinds it (a client falls back to the
 * WebSocket only when its binds go unanswered), so its packets come back over the WebSocket too. No amplification: nothing at all is sent to a source that did not prove the secret,
 * and a BIND_ACK is exactly as long as the BIND it answers. SEND carries no per-packet mac (as
 * TURN's ChannelData does not): an on-path observer could inject packets from the bound address,
 * which is no more than it can do to any UDP flow, and WireGuard drops what its keys did not seal.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A node key's length (relay-frame.ts's KEY_BYTES; not imported from there, which imports this). */
const KEY_BYTES = 32;

export const UDP_BIND = 0xa1;
export const UDP_BIND_ACK = 0xa2;
export const UDP_SEND = 0xa3;
export const UDP_RECV = 0xa4;

export const UDP_ID_BYTES = 8;
export const UDP_SECRET_BYTES = 32;
export const UDP_MAC_BYTES = 16;
/** BIND and BIND_ACK length. */
export const UDP_BIND_BYTES = 1 + UDP_ID_BYTES + 8 + UDP_MAC_BYTES;
/** SEND header: type + id + destination key. */
export const UDP_SEND_HEADER_BYTES = 1 + UDP_ID_BYTES + KEY_BYTES;
/** RECV header: type + sender key (the WebSocket RECV_PACKET layout with another first byte). */
export const UDP_RECV_HEADER_BYTES = 1 + KEY_BYTES;
/** The ticket appended to SERVER_INFO's body. */
export const UDP_TICKET_BYTES = 2 + UDP_ID_BYTES + UDP_SECRET_BYTES;

export interface UdpTicket {
  port: number;
  id: Buffer;
  secret: Buffer;
}

/** Whether a datagram on the shared STUN port is a relay datagram (cheap first-byte test). */
export function isRelayDatagram(msg: Buffer): boolean {
  const t = msg[0];
  return t === UDP_BIND || t === UDP_SEND;
}

export function encodeTicket(t: UdpTicket): Buffer {
  const out = Buffer.allocUnsafe(UDP_TICKET_BYTES);
  out.writeUInt16BE(t.port, 0);
  t.id.copy(out, 2);
  t.secret.copy(out, 2 + UDP_ID_BYTES);
  return out;
}

/** The ticket in `body` (SERVER_INFO's bytes after the first 5), or undefined when there is none. */
export function readTicket(body: Buffer): UdpTicket | undefined {
  if (body.length < UDP_TICKET_BYTES) return undefined;
  const port = body.readUInt16BE(0);
  if (port === 0) return undefined;
  return { port, id: Buffer.from(body.subarray(2, 2 + UDP_ID_BYTES)), secret: Buffer.from(body.subarray(2 + UDP_ID_BYTES, UDP_TICKET_BYTES)) };
}

function mac(secret: Buffer, head: Buffer): Buffer {
  return createHmac('sha256', secret).update(head).digest().subarray(0, UDP_MAC_BYTES);
}

/** A BIND (type UDP_BIND) or BIND_ACK (UDP_BIND_ACK) for `id` with sequence number `seq`. */
export function encodeBind(type: typeof UDP_BIND | typeof UDP_BIND_ACK, id: Buffer, secret: Buffer, seq: bigint): Buffer {
  const out = Buffer.allocUnsafe(UDP_BIND_BYTES);
  out[0] = type;
  id.copy(out, 1);
  out.writeBigUInt64BE(seq, 1 + UDP_ID_BYTES);
  mac(secret, out.subarray(0, UDP_BIND_BYTES - UDP_MAC_BYTES)).copy(out, UDP_BIND_BYTES - UDP_MAC_BYTES);
  return out;
}

export type ReadBind = { ok: true; id: Buffer; seq: bigint } | { ok: false; reason: string };

/** The id and seq of a BIND/BIND_ACK of `type`, without checking its mac (the id says whose secret). */
export function readBindHeader(msg: Buffer, type: number): ReadBind {
  if (msg.length !== UDP_BIND_BYTES) return { ok: false, reason: `bind datagram of ${msg.length} bytes, not ${UDP_BIND_BYTES}` };
  if (msg[0] !== type) return { ok: false, reason: 'not a bind datagram of that type' };
  return { ok: true, id: msg.subarray(1, 1 + UDP_ID_BYTES), seq: msg.readBigUInt64BE(1 + UDP_ID_BYTES) };
}

/** Whether a BIND/BIND_ACK's mac is the one `secret` gives (constant time). */
export function bindMacValid(msg: Buffer, secret: Buffer): boolean {
  if (msg.length !== UDP_BIND_BYTES) return false;
  return timingSafeEqual(mac(secret, msg.subarray(0, UDP_BIND_BYTES - UDP_MAC_BYTES)), msg.subarray(UDP_BIND_BYTES - UDP_MAC_BYTES));
}

/** The 41-byte SEND header for `id` to `dst`: precomputed per peer, sent before each packet. */
export function encodeSendHeader(id: Buffer, dst: Uint8Array): Buffer {
  if (dst.length !== KEY_BYTES) throw new RangeError(`destination key must be ${KEY_BYTES} bytes`);
  const out = Buffer.allocUnsafe(UDP_SEND_HEADER_BYTES);
  out[0] = UDP_SEND;
  id.copy(out, 1);
  out.set(dst, 1 + UDP_ID_BYTES);
  return out;
}

/** A RECV datagram's sender and packet (views), or undefined when it is not one. */
export function readRecv(msg: Buffer): { from: Buffer; packet: Buffer } | undefined {
  if (msg.length < UDP_RECV_HEADER_BYTES || msg[0] !== UDP_RECV) return undefined;
  return { from: msg.subarray(1, UDP_RECV_HEADER_BYTES), packet: msg.subarray(UDP_RECV_HEADER_BYTES) };
}
