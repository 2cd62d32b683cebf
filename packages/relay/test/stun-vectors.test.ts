/** The codec against RFC 5769's published vectors: parse, FINGERPRINT, MESSAGE-INTEGRITY, addresses, and encoding them back byte for byte. */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  ATTR_FINGERPRINT,
  ATTR_ICE_CONTROLLED,
  ATTR_MESSAGE_INTEGRITY,
  ATTR_PRIORITY,
  ATTR_SOFTWARE,
  ATTR_USERNAME,
  ATTR_XOR_MAPPED_ADDRESS,
  CLASS_ERROR_RESPONSE,
  CLASS_INDICATION,
  CLASS_REQUEST,
  CLASS_SUCCESS_RESPONSE,
  METHOD_BINDING,
  checkMessageIntegrity,
  decodeXorMappedAddress,
  encodeMessage,
  encodeXorMappedAddress,
  getAttribute,
  messageType,
  parseMessage,
  shortTermKey,
  splitMessageType,
  type StunMessage,
} from '../src/index.js';
import { PASSWORD, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE, SAMPLE_REQUEST, TRANSACTION_ID } from './rfc5769.js';

function parsed(buf: Buffer): StunMessage {
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(`expected a message: ${r.reason}`);
  return r.message;
}

describe('RFC 5769 test vectors', () => {
  it('crc32 is CRC-32/ISO-HDLC (the published check value)', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
  });

  it('2.1 sample request: parses, its fingerprint checks, its integrity checks under the password and not under another', () => {
    const m = parsed(SAMPLE_REQUEST);
    expect([m.method, m.cls, m.cookie]).toEqual([METHOD_BINDING, CLASS_REQUEST, true]);
    expect(m.transactionId.equals(TRANSACTION_ID)).toBe(true);
    expect(m.attributes.map((a) => a.type)).toEqual([ATTR_SOFTWARE, ATTR_PRIORITY, ATTR_ICE_CONTROLLED, ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT]);
    expect(getAttribute(m, ATTR_SOFTWARE)?.toString()).toBe('STUN test client');
    expect(getAttribute(m, ATTR_USERNAME)?.toString()).toBe('evtj:h6vY');
    expect(m.fingerprint).toBe(true);
    expect(checkMessageIntegrity(m, shortTermKey(PASSWORD))).toBe(true);
    expect(checkMessageIntegrity(m, shortTermKey('not the password'))).toBe(false);
  });

  it.each([
    ['2.2 IPv4', SAMPLE_IPV4_RESPONSE, { family: 'IPv4', address: '192.0.2.1', port: 32853 }],
    ['2.3 IPv6', SAMPLE_IPV6_RESPONSE, { family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }],
  ] as const)('%s sample response: fingerprint and integrity check, XOR-MAPPED-ADDRESS decodes', (_name, vector, want) => {
    const m = parsed(vector);
    expect([m.method, m.cls]).toEqual([METHOD_BINDING, CLASS_SUCCESS_RESPONSE]);
    expect(m.fingerprint).toBe(true);
    expect(checkMessageIntegrity(m, shortTermKey(PASSWORD))).toBe(true);
    expect(checkMessageIntegrity(m, shortTermKey(PASSWORD + 'x'))).toBe(false);
    expect(decodeXorMappedAddress(getAttribute(m, ATTR_XOR_MAPPED_ADDRESS)!, m.transactionId)).toEqual(want);
  });

  it.each([
    ['2.2 IPv4', SAMPLE_IPV4_RESPONSE, '192.0.2.1'],
    ['2.3 IPv6', SAMPLE_IPV6_RESPONSE, '2001:db8:1234:5678:11:2233:4455:6677'],
  ])('%s sample response: the encoder writes the same bytes (integrity, then fingerprint, lengths adjusted)', (_name, vector, address) => {
    const out = encodeMessage({
      method: METHOD_BINDING,
      cls: CLASS_SUCCESS_RESPONSE,
      transactionId: TRANSACTION_ID,
      attributes: [
        { type: ATTR_SOFTWARE, value: Buffer.from('test vector') },
        { type: ATTR_XOR_MAPPED_ADDRESS, value: encodeXorMappedAddress(address, 32853, TRANSACTION_ID) },
      ],
      integrityKey: shortTermKey(PASSWORD),
      fingerprint: true,
      padding: 0x20,
    });
    expect(out.toString('hex')).toBe(vector.toString('hex'));
  });

  it('2.1 sample request: the encoder writes the same bytes', () => {
    const m = parsed(SAMPLE_REQUEST);
    const before = m.attributes.slice(0, m.integrityIndex).map(({ type, value }) => ({ type, value }));
    const out = encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: TRANSACTION_ID, attributes: before, integrityKey: shortTermKey(PASSWORD), fingerprint: true, padding: 0x20 });
    expect(out.toString('hex')).toBe(SAMPLE_REQUEST.toString('hex'));
  });
});

describe('message type', () => {
  it.each([
    [METHOD_BINDING, CLASS_REQUEST, 0x0001],
    [METHOD_BINDING, CLASS_INDICATION, 0x0011],
    [METHOD_BINDING, CLASS_SUCCESS_RESPONSE, 0x0101],
    [METHOD_BINDING, CLASS_ERROR_RESPONSE, 0x0111],
    [0x003, CLASS_REQUEST, 0x0003], // TURN Allocate
    [0xfff, CLASS_ERROR_RESPONSE, 0x3fff],
  ])('method %i class %i <-> 0x%s', (method, cls, type) => {
    expect(messageType(method, cls)).toBe(type);
    expect(splitMessageType(type)).toEqual([method, cls]);
  });
});
