/**
 * What a Binding server answers to one datagram (RFC 8489 §6.3, §12 for RFC 3489 clients). Pure:
 * the UDP server (stun-server.ts) only sends what this returns and counts it.
 *
 * - A Binding request with the magic cookie: a success response with XOR-MAPPED-ADDRESS,
 *   SOFTWARE and FINGERPRINT.
 * - A Binding request without it (an RFC 3489 client): MAPPED-ADDRESS, the 16-byte transaction
 *   ID (cookie field included) copied back, nothing newer.
 * - A comprehension-required attribute we do not understand: 420 with UNKNOWN-ATTRIBUTES.
 * - Binding indications (keepalives), responses and other methods: nothing (`ignored`).
 * - Anything malformed: nothing (`malformed`, with the reason for debugging).
 *
 * MESSAGE-INTEGRITY in a request is understood and not checked: this server has no credentials,
 * and a Binding request needs none (§9). Attributes after it are ignored, as §14.5 says.
 */
import {
  ATTR_ERROR_CODE,
  ATTR_FINGERPRINT,
  ATTRIBUTE_HEADER_LENGTH,
  FINGERPRINT_LENGTH,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  ATTR_MAPPED_ADDRESS,
  ATTR_MESSAGE_INTEGRITY,
  ATTR_MESSAGE_INTEGRITY_SHA256,
  ATTR_NONCE,
  ATTR_PASSWORD_ALGORITHM,
  ATTR_REALM,
  ATTR_SOFTWARE,
  ATTR_UNKNOWN_ATTRIBUTES,
  ATTR_USERHASH,
  ATTR_USERNAME,
  ATTR_XOR_MAPPED_ADDRESS,
  CLASS_ERROR_RESPONSE,
  CLASS_REQUEST,
  CLASS_SUCCESS_RESPONSE,
  COMPREHENSION_OPTIONAL_MIN,
  ERROR_UNKNOWN_ATTRIBUTE,
  METHOD_BINDING,
} from './stun-constants.js';
import { addressBytes, encodeMappedAddress, writeAddressValue } from './stun-address.js';
import { encodeMessage, fingerprintOf, messageType, parseMessage, type StunMessage } from './stun-message.js';
import { FingerprintPatch } from './stun-fingerprint-patch.js';

/** Comprehension-required attributes RFC 8489 defines: known, though a Binding server uses none. */
const UNDERSTOOD = new Set([
  ATTR_MAPPED_ADDRESS,
  ATTR_USERNAME,
  ATTR_MESSAGE_INTEGRITY,
  ATTR_ERROR_CODE,
  ATTR_UNKNOWN_ATTRIBUTES,
  ATTR_REALM,
  ATTR_NONCE,
  ATTR_MESSAGE_INTEGRITY_SHA256,
  ATTR_PASSWORD_ALGORITHM,
  ATTR_USERHASH,
  ATTR_XOR_MAPPED_ADDRESS,
]);

export type BindingAnswer =
  | { kind: 'success'; response: Buffer }
  | { kind: 'error'; response: Buffer; code: number }
  | { kind: 'ignored' }
  | { kind: 'malformed'; reason: string };

export interface Peer {
  address: string;
  port: number;
}

/** `software`: the SOFTWARE value in responses (RFC 8489 §14.14), or '' for none. */
export function answerBinding(datagram: Buffer, from: Peer, software: Buffer): BindingAnswer {
  const parsed = parseMessage(datagram);
  if (!parsed.ok) return { kind: 'malformed', reason: parsed.reason };
  const m = parsed.message;
  if (m.method !== METHOD_BINDING || m.cls !== CLASS_REQUEST) {
    if (!m.cookie) return { kind: 'malformed', reason: 'no magic cookie and not a Binding request' };
    return { kind: 'ignored' };
  }
  const unknown = unknownRequired(m);
  if (unknown.length) return { kind: 'error', code: ERROR_UNKNOWN_ATTRIBUTE, response: unknownAttributeResponse(m, unknown, software) };

  if (!m.cookie) {
    return {
      kind: 'success',
      response: encodeMessage({ method: METHOD_BINDING, cls: CLASS_SUCCESS_RESPONSE, transactionId: m.transactionId, attributes: [{ type: ATTR_MAPPED_ADDRESS, value: encodeMappedAddress(from.address, from.port) }] }),
    };
  }
  return { kind: 'success', response: encodeBindingSuccess(m.transactionId, from, software) };
}

/**
 * The success response: XOR-MAPPED-ADDRESS, SOFTWARE (unless empty), FINGERPRINT. Written in one
 * pass into one buffer: this is the server's hot path. Byte for byte what encodeMessage writes
 * for the same attributes (a unit test holds it to that).
 */
export function encodeBindingSuccess(transactionId: Buffer, to: Peer, software: Buffer): Buffer {
  const ip = addressBytes(to.address);
  if (!ip) throw new RangeError(`not an IP address: ${to.address}`);
  const softwareLength = software.length ? ATTRIBUTE_HEADER_LENGTH + ((software.length + 3) & ~3) : 0;
  const fingerprintAt = HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH + 4 + ip.length + softwareLength;
  const out = Buffer.allocUnsafe(fingerprintAt + ATTRIBUTE_HEADER_LENGTH + FINGERPRINT_LENGTH);
  out.writeUInt16BE(messageType(METHOD_BINDING, CLASS_SUCCESS_RESPONSE), 0);
  out.writeUInt16BE(out.length - HEADER_LENGTH, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(out, 8);
  let at = HEADER_LENGTH;
  out.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, at);
  out.writeUInt16BE(4 + ip.length, at + 2);
  at += ATTRIBUTE_HEADER_LENGTH + writeAddressValue(out, at + ATTRIBUTE_HEADER_LENGTH, ip, to.port, transactionId);
  if (software.length) {
    out.writeUInt16BE(ATTR_SOFTWARE, at);
    out.writeUInt16BE(software.length, at + 2);
    software.copy(out, at + ATTRIBUTE_HEADER_LENGTH);
    out.fill(0, at + ATTRIBUTE_HEADER_LENGTH + software.length, at + softwareLength);
    at += softwareLength;
  }
  out.writeUInt16BE(ATTR_FINGERPRINT, at);
  out.writeUInt16BE(FINGERPRINT_LENGTH, at + 2);
  out.writeUInt32BE(fingerprintOf(out, at), at + ATTRIBUTE_HEADER_LENGTH);
  return out;
}

/**
 * The server's hot path for the request nearly every client sends: a Binding request with the
 * magic cookie and no attribute but (optionally) a FINGERPRINT that checks out, from an IPv4 peer. The response (what answerBinding gives
 * for it, byte for byte: a unit test holds it to that) is a template made once per server with
 * the transaction ID, the XORed port and address and the FINGERPRINT written in (the FINGERPRINTs
 * of request and response by table, stun-fingerprint-patch.ts): no parse, no attribute list, no
 * intermediate buffers, no CRC pass. Anything else gets `undefined`, and answerBinding decides.
 */
export class BindingResponder {
  private readonly template: Buffer;
  private readonly fingerprintAt: number;
  private readonly fingerprint: FingerprintPatch;
  /** A request's FINGERPRINT: its header is fixed but for the transaction ID. */
  private readonly requestFingerprint: FingerprintPatch;

  constructor(software: Buffer) {
    this.template = encodeBindingSuccess(Buffer.alloc(TRANSACTION_ID_BYTES), { address: '0.0.0.0', port: 0 }, software);
    this.fingerprintAt = this.template.length - ATTRIBUTE_HEADER_LENGTH - FINGERPRINT_LENGTH;
    this.fingerprint = new FingerprintPatch(this.template, this.fingerprintAt, PER_ANSWER_BYTES);
    this.requestFingerprint = new FingerprintPatch(encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: Buffer.alloc(TRANSACTION_ID_BYTES), attributes: [], fingerprint: true }), HEADER_LENGTH, TRANSACTION_ID_AT);
  }

  /** The length of every quick() answer. */
  get answerLength(): number {
    return this.template.length;
  }

  /** The success response to `datagram` from `from`, when it is a bare Binding request from an IPv4 peer; else undefined. */
  quick(datagram: Buffer, from: Peer): Buffer | undefined {
    if (!this.isBare(datagram)) return undefined;
    const text = from.address;
    const start = text.charCodeAt(0) === 58 /* ':' */ ? (text.startsWith('::ffff:') ? 7 : -1) : 0;
    if (start < 0) return undefined;
    const out = Buffer.from(this.template);
    if (!writeXorIpv4(text, start, out, XOR_ADDRESS_AT)) return undefined;
    this.finish(datagram, from.port, out, 0);
    return out;
  }

  /**
   * quick() for the batched socket (stun-server.ts), which has the peer's IPv4 address as a
   * number, not text: writes the answer into `out` at `at` (answerLength bytes must fit) instead
   * of a new buffer. Returns its length, or 0 where quick() would return undefined.
   */
  quickInto(datagram: Buffer, ipv4: number, port: number, out: Buffer, at: number): number {
    if (!this.isBare(datagram)) return 0;
    this.template.copy(out, at);
    out.writeInt32BE(ipv4 ^ MAGIC_COOKIE, at + XOR_ADDRESS_AT);
    this.finish(datagram, port, out, at);
    return this.template.length;
  }

  /** A Binding request with the cookie and no attribute but a right FINGERPRINT, if any. */
  private isBare(datagram: Buffer): boolean {
    // 00 01 00 LL (Binding request) then the cookie; LL = 0 (bare) or 8 (FINGERPRINT only, and right).
    const n = datagram.length;
    if ((n !== HEADER_LENGTH && n !== BARE_WITH_FINGERPRINT) || datagram[0] !== 0 || datagram[1] !== 1 || datagram[2] !== 0 || datagram[3] !== n - HEADER_LENGTH || datagram.readUInt32BE(4) !== MAGIC_COOKIE) return false;
    return n === HEADER_LENGTH || (datagram.readUInt16BE(HEADER_LENGTH) === ATTR_FINGERPRINT && datagram.readUInt16BE(HEADER_LENGTH + 2) === FINGERPRINT_LENGTH && datagram.readUInt32BE(HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH) === this.requestFingerprint.of(datagram));
  }

  /** The transaction ID, the XORed port and the FINGERPRINT into the answer at `out[at]` (its address already in). */
  private finish(datagram: Buffer, port: number, out: Buffer, at: number): void {
    // The transaction ID as three words: cheaper than a copy() call for 12 bytes.
    out.writeInt32BE(datagram.readInt32BE(8), at + 8);
    out.writeInt32BE(datagram.readInt32BE(12), at + 12);
    out.writeInt32BE(datagram.readInt32BE(16), at + 16);
    out.writeUInt16BE((port ^ (MAGIC_COOKIE >>> 16)) & 0xffff, at + XOR_ADDRESS_AT - 2);
    out.writeUInt32BE(this.fingerprint.of(out, at), at + this.fingerprintAt + ATTRIBUTE_HEADER_LENGTH);
  }
}

const TRANSACTION_ID_BYTES = 12;
/** A Binding request whose one attribute is FINGERPRINT (what encodeBindingRequest and most clients send). */
const BARE_WITH_FINGERPRINT = HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH + FINGERPRINT_LENGTH;
/** Where XOR-MAPPED-ADDRESS's address sits in a success response (header, attribute header, family and port). */
const XOR_ADDRESS_AT = HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH + 4;
const TRANSACTION_ID_AT = range(HEADER_LENGTH - TRANSACTION_ID_BYTES, HEADER_LENGTH);
/** The template's bytes that differ per answer: the transaction ID, then the XORed port and IPv4 address. */
const PER_ANSWER_BYTES = [...TRANSACTION_ID_AT, ...range(XOR_ADDRESS_AT - 2, XOR_ADDRESS_AT + 4)];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Dotted-quad `text` from `from` -> its 4 bytes XORed with the cookie at `out[at]`; false (out partly written) when it is not exactly one. */
function writeXorIpv4(text: string, from: number, out: Buffer, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = from; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[at + part] = value ^ ((MAGIC_COOKIE >>> (24 - 8 * part)) & 0xff);
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3 || (digits === 1 && value === 0)) return false;
      value = value * 10 + (c - 48);
      if (value > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Comprehension-required types we do not understand, once each, in the order they came (none after MESSAGE-INTEGRITY). */
export function unknownRequired(m: StunMessage): number[] {
  const out: number[] = [];
  const end = m.integrityIndex >= 0 ? m.integrityIndex : m.attributes.length;
  for (let i = 0; i < end; i++) {
    const t = m.attributes[i]!.type;
    if (t < COMPREHENSION_OPTIONAL_MIN && !UNDERSTOOD.has(t) && !out.includes(t)) out.push(t);
  }
  return out;
}

/**
 * ERROR-CODE (RFC 8489 §14.8): 21 zero bits, class (hundreds, 3 bits), number (0-99, 8 bits),
 * then a UTF-8 reason phrase.
 *
 *     |           Reserved, should be 0         |Class|     Number    |
 *     |      Reason Phrase (variable)                                ..
 */
export function encodeErrorCode(code: number, reason: string): Buffer {
  const phrase = Buffer.from(reason, 'utf8');
  const out = Buffer.alloc(4 + phrase.length);
  out[2] = Math.floor(code / 100);
  out[3] = code % 100;
  phrase.copy(out, 4);
  return out;
}

/** UNKNOWN-ATTRIBUTES (§14.9): a list of 16-bit types. */
export function encodeUnknownAttributes(types: number[]): Buffer {
  const out = Buffer.alloc(types.length * 2);
  types.forEach((t, i) => out.writeUInt16BE(t, i * 2));
  return out;
}

function unknownAttributeResponse(m: StunMessage, unknown: number[], software: Buffer): Buffer {
  const attributes = [
    { type: ATTR_ERROR_CODE, value: encodeErrorCode(ERROR_UNKNOWN_ATTRIBUTE, 'Unknown Attribute') },
    { type: ATTR_UNKNOWN_ATTRIBUTES, value: encodeUnknownAttributes(unknown) },
  ];
  if (m.cookie && software.length) attributes.push({ type: ATTR_SOFTWARE, value: software });
  return encodeMessage({ method: METHOD_BINDING, cls: CLASS_ERROR_RESPONSE, transactionId: m.transactionId, attributes, fingerprint: m.cookie });
}
