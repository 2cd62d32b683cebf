/**
 * STUN messages (RFC 8489 §5, §14): parsing a datagram without ever throwing, and encoding.
 *
 * Header (20 bytes), then attributes, each padded to a multiple of 4 bytes:
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |0 0|     STUN Message Type     |         Message Length        |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                   Magic Cookie (0x2112A442)                   |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                  Transaction ID (96 bits)                     |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |         Attribute Type        |   Attribute Length (no pad)   |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |                 Value (variable) ... padding to 4             |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Message type, 14 bits: method M11..M0 interleaved with class bits C1 C0:
 *     M11 M10 M9 M8 M7 C1 M6 M5 M4 C0 M3 M2 M1 M0
 *
 * Message Length counts the bytes after the header, padding included. A message whose bytes 4..7
 * are not the magic cookie comes from an RFC 3489 client: its transaction ID is those 16 bytes.
 */
import { crc32 } from 'node:zlib';
import {
  ATTR_FINGERPRINT,
  ATTR_MESSAGE_INTEGRITY,
  ATTRIBUTE_HEADER_LENGTH,
  FINGERPRINT_LENGTH,
  FINGERPRINT_XOR,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  MESSAGE_INTEGRITY_LENGTH,
  TRANSACTION_ID_LENGTH,
} from './stun-constants.js';
import { messageIntegrity } from './stun-integrity.js';

export interface StunAttribute {
  type: number;
  /** The value without padding (a view into the datagram). */
  value: Buffer;
  /** Where the attribute's 4-byte header starts in the message. */
  offset: number;
}

export interface StunMessage {
  method: number;
  /** CLASS_REQUEST, CLASS_INDICATION, CLASS_SUCCESS_RESPONSE or CLASS_ERROR_RESPONSE. */
  cls: number;
  /** False for an RFC 3489 message (no magic cookie). */
  cookie: boolean;
  /** 12 bytes; 16 for an RFC 3489 message (bytes 4..19). */
  transactionId: Buffer;
  /** In the order they came. */
  attributes: StunAttribute[];
  /** Index in `attributes` of MESSAGE-INTEGRITY, or -1. */
  integrityIndex: number;
  /** FINGERPRINT was present (and, when the message has the cookie, checked: a bad one fails the parse). */
  fingerprint: boolean;
  /** The whole datagram. */
  raw: Buffer;
}

export type ParseResult = { ok: true; message: StunMessage } | { ok: false; reason: string };

/** (method, class) -> the 14-bit message type. */
export function messageType(method: number, cls: number): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 0b01) << 4) | ((cls & 0b10) << 7);
}

/** The 14-bit message type -> [method, class]. */
export function splitMessageType(type: number): [method: number, cls: number] {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = ((type >> 4) & 0b01) | ((type >> 7) & 0b10);
  return [method, cls];
}

const pad4 = (n: number) => (n + 3) & ~3;

/**
 * Reads a datagram as a STUN message. Never throws: anything that is not a well-formed message
 * (short, first bits set, a length that disagrees with the datagram, an attribute running past
 * the end, a FINGERPRINT that is wrong or not last) comes back as `{ ok: false, reason }`.
 */
export function parseMessage(raw: Buffer): ParseResult {
  if (raw.length < HEADER_LENGTH) return { ok: false, reason: `${raw.length} bytes, shorter than the ${HEADER_LENGTH}-byte header` };
  const type = raw.readUInt16BE(0);
  if (type & 0xc000) return { ok: false, reason: 'the first two bits are not zero' };
  const length = raw.readUInt16BE(2);
  if (length % 4 !== 0) return { ok: false, reason: `message length ${length} is not a multiple of 4` };
  if (HEADER_LENGTH + length !== raw.length) return { ok: false, reason: `message length ${length} but ${raw.length - HEADER_LENGTH} bytes follow the header` };
  const cookie = raw.readUInt32BE(4) === MAGIC_COOKIE;
  const [method, cls] = splitMessageType(type);

  const attributes: StunAttribute[] = [];
  let integrityIndex = -1;
  let fingerprint = false;
  let at = HEADER_LENGTH;
  while (at < raw.length) {
    if (fingerprint) return { ok: false, reason: 'an attribute follows FINGERPRINT' };
    if (raw.length - at < ATTRIBUTE_HEADER_LENGTH) return { ok: false, reason: `attribute header truncated at byte ${at}` };
    const attrType = raw.readUInt16BE(at);
    const attrLength = raw.readUInt16BE(at + 2);
    const start = at + ATTRIBUTE_HEADER_LENGTH;
    if (start + pad4(attrLength) > raw.length) return { ok: false, reason: `attribute 0x${attrType.toString(16).padStart(4, '0')} at byte ${at} says ${attrLength} bytes, past the end of the message` };
    const value = raw.subarray(start, start + attrLength);
    if (cookie && attrType === ATTR_MESSAGE_INTEGRITY && integrityIndex < 0) {
      if (attrLength !== MESSAGE_INTEGRITY_LENGTH) return { ok: false, reason: `MESSAGE-INTEGRITY of ${attrLength} bytes` };
      integrityIndex = attributes.length;
    }
    if (cookie && attrType === ATTR_FINGERPRINT) {
      if (attrLength !== FINGERPRINT_LENGTH) return { ok: false, reason: `FINGERPRINT of ${attrLength} bytes` };
      if (value.readUInt32BE(0) !== fingerprintOf(raw, at)) return { ok: false, reason: 'FINGERPRINT does not match' };
      fingerprint = true;
    }
    attributes.push({ type: attrType, value, offset: at });
    at = start + pad4(attrLength);
  }
  const transactionId = cookie ? raw.subarray(8, 8 + TRANSACTION_ID_LENGTH) : raw.subarray(4, HEADER_LENGTH);
  return { ok: true, message: { method, cls, cookie, transactionId, attributes, integrityIndex, fingerprint, raw } };
}

/** The first attribute of a type, or undefined. */
export function getAttribute(message: StunMessage, type: number): Buffer | undefined {
  for (const a of message.attributes) if (a.type === type) return a.value;
  return undefined;
}

/** RFC 8489 §14.7: CRC-32 of the message before the FINGERPRINT attribute at `offset`, XOR "STUN". */
export function fingerprintOf(message: Buffer, offset: number): number {
  return (crc32(message.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
}

export interface EncodeOptions {
  method: number;
  cls: number;
  /** 12 bytes, or 16 to answer an RFC 3489 client (written over the cookie's place). */
  transactionId: Buffer;
  attributes: { type: number; value: Buffer }[];
  /** Appends MESSAGE-INTEGRITY under this key (short-term: the password's bytes). */
  integrityKey?: Buffer;
  /** Appends FINGERPRINT (last). */
  fingerprint?: boolean;
  /** The byte attribute padding is filled with (§14: any value; RFC 5769 uses spaces). Default 0. */
  padding?: number;
}

/** Builds a message. Throws RangeError for a transaction ID that is not 12 or 16 bytes or a message over 64 KiB. */
export function encodeMessage(o: EncodeOptions): Buffer {
  const classic = o.transactionId.length === 16;
  if (!classic && o.transactionId.length !== TRANSACTION_ID_LENGTH) throw new RangeError(`transaction ID of ${o.transactionId.length} bytes`);
  let size = HEADER_LENGTH;
  for (const a of o.attributes) size += ATTRIBUTE_HEADER_LENGTH + pad4(a.value.length);
  const integrityAt = size;
  if (o.integrityKey) size += ATTRIBUTE_HEADER_LENGTH + MESSAGE_INTEGRITY_LENGTH;
  const fingerprintAt = size;
  if (o.fingerprint) size += ATTRIBUTE_HEADER_LENGTH + FINGERPRINT_LENGTH;
  if (size - HEADER_LENGTH > 0xffff) throw new RangeError(`message of ${size} bytes`);

  const buf = Buffer.alloc(size);
  buf.writeUInt16BE(messageType(o.method, o.cls), 0);
  if (!classic) buf.writeUInt32BE(MAGIC_COOKIE, 4);
  o.transactionId.copy(buf, classic ? 4 : 8);
  let at = HEADER_LENGTH;
  for (const a of o.attributes) {
    buf.writeUInt16BE(a.type, at);
    buf.writeUInt16BE(a.value.length, at + 2);
    a.value.copy(buf, at + ATTRIBUTE_HEADER_LENGTH);
    if (o.padding) buf.fill(o.padding, at + ATTRIBUTE_HEADER_LENGTH + a.value.length, at + ATTRIBUTE_HEADER_LENGTH + pad4(a.value.length));
    at += ATTRIBUTE_HEADER_LENGTH + pad4(a.value.length);
  }
  if (o.integrityKey) {
    // The length field covers the message up to the end of MESSAGE-INTEGRITY while it is computed.
    buf.writeUInt16BE(integrityAt + ATTRIBUTE_HEADER_LENGTH + MESSAGE_INTEGRITY_LENGTH - HEADER_LENGTH, 2);
    buf.writeUInt16BE(ATTR_MESSAGE_INTEGRITY, integrityAt);
    buf.writeUInt16BE(MESSAGE_INTEGRITY_LENGTH, integrityAt + 2);
    messageIntegrity(buf.subarray(0, integrityAt), o.integrityKey).copy(buf, integrityAt + ATTRIBUTE_HEADER_LENGTH);
  }
  buf.writeUInt16BE(size - HEADER_LENGTH, 2);
  if (o.fingerprint) {
    buf.writeUInt16BE(ATTR_FINGERPRINT, fingerprintAt);
    buf.writeUInt16BE(FINGERPRINT_LENGTH, fingerprintAt + 2);
    buf.writeUInt32BE(fingerprintOf(buf, fingerprintAt), fingerprintAt + ATTRIBUTE_HEADER_LENGTH);
  }
  return buf;
}
