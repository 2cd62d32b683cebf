/** What the Binding server answers (answerBinding, pure): success, RFC 3489 clients, 420, and silence for the rest. */
import { describe, expect, it } from 'vitest';
import {
  ATTR_CHANGE_REQUEST,
  ATTR_ERROR_CODE,
  ATTR_FINGERPRINT,
  ATTR_MAPPED_ADDRESS,
  ATTR_PRIORITY,
  ATTR_SOFTWARE,
  ATTR_UNKNOWN_ATTRIBUTES,
  ATTR_USERNAME,
  ATTR_XOR_MAPPED_ADDRESS,
  CLASS_ERROR_RESPONSE,
  CLASS_INDICATION,
  CLASS_REQUEST,
  CLASS_SUCCESS_RESPONSE,
  METHOD_BINDING,
  addressBytes,
  addressText,
  answerBinding,
  BindingResponder,
  encodeBindingSuccess,
  encodeXorMappedAddress,
  decodeMappedAddress,
  decodeXorMappedAddress,
  encodeBindingRequest,
  encodeMessage,
  getAttribute,
  parseMessage,
  readBindingResponse,
  type StunMessage,
} from '../src/index.js';
import { SAMPLE_REQUEST } from './rfc5769.js';

const SOFTWARE = Buffer.from('weft');
const txid = Buffer.from('0102030405060708090a0b0c', 'hex');

function response(datagram: Buffer, from = { address: '198.51.100.7', port: 40001 }): StunMessage {
  const a = answerBinding(datagram, from, SOFTWARE);
  if (a.kind !== 'success' && a.kind !== 'error') throw new Error(`expected an answer, got ${JSON.stringify(a)}`);
  const p = parseMessage(a.response);
  if (!p.ok) throw new Error(p.reason);
  return p.message;
}

describe('answerBinding', () => {
  it.each([
    ['IPv4', '198.51.100.7', 40001, '198.51.100.7', 'IPv4'],
    ['IPv6', '2001:db8::7', 443, '2001:db8::7', 'IPv6'],
    ['IPv4 seen on a dual-stack socket', '::ffff:198.51.100.7', 3478, '198.51.100.7', 'IPv4'],
  ])('a Binding request from %s gets XOR-MAPPED-ADDRESS of the sender, SOFTWARE and a FINGERPRINT', (_n, address, port, want, family) => {
    const m = response(encodeBindingRequest(txid), { address, port });
    expect([m.method, m.cls]).toEqual([METHOD_BINDING, CLASS_SUCCESS_RESPONSE]);
    expect(m.transactionId.equals(txid)).toBe(true);
    expect(decodeXorMappedAddress(getAttribute(m, ATTR_XOR_MAPPED_ADDRESS)!, txid)).toEqual({ family, address: want, port });
    expect(getAttribute(m, ATTR_SOFTWARE)?.toString()).toBe('weft');
    expect(m.fingerprint).toBe(true);
    expect(m.attributes.at(-1)!.type).toBe(ATTR_FINGERPRINT);
  });

  it('the client reads the answer back (readBindingResponse)', () => {
    const a = answerBinding(encodeBindingRequest(txid), { address: '203.0.113.9', port: 5 }, SOFTWARE);
    expect(a.kind === 'success' && readBindingResponse(a.response, txid)).toEqual({ family: 'IPv4', address: '203.0.113.9', port: 5 });
    expect(a.kind === 'success' && readBindingResponse(a.response, Buffer.alloc(12))).toBeUndefined();
  });

  it('an RFC 3489 request (no magic cookie) gets MAPPED-ADDRESS only, with its 16-byte transaction ID echoed', () => {
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);
    Buffer.from('00112233445566778899aabbccddeeff', 'hex').copy(req, 4);
    const m = response(req);
    expect(m.cookie).toBe(false);
    expect(m.cls).toBe(CLASS_SUCCESS_RESPONSE);
    expect(m.transactionId.toString('hex')).toBe('00112233445566778899aabbccddeeff');
    expect(m.attributes.map((a) => a.type)).toEqual([ATTR_MAPPED_ADDRESS]);
    expect(decodeMappedAddress(getAttribute(m, ATTR_MAPPED_ADDRESS)!)).toEqual({ family: 'IPv4', address: '198.51.100.7', port: 40001 });
  });

  it('an unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES listing each once (the RFC 5769 request: PRIORITY is ICE)', () => {
    const m = response(SAMPLE_REQUEST);
    expect(m.cls).toBe(CLASS_ERROR_RESPONSE);
    const code = getAttribute(m, ATTR_ERROR_CODE)!;
    expect([code[2], code[3], code.subarray(4).toString()]).toEqual([4, 20, 'Unknown Attribute']);
    expect(getAttribute(m, ATTR_UNKNOWN_ATTRIBUTES)!.toString('hex')).toBe('0024');
    expect(m.fingerprint).toBe(true);

    const two = encodeMessage({
      method: METHOD_BINDING,
      cls: CLASS_REQUEST,
      transactionId: txid,
      attributes: [ATTR_CHANGE_REQUEST, 0x7777, ATTR_CHANGE_REQUEST, ATTR_USERNAME, 0xc001].map((type) => ({ type, value: Buffer.alloc(4) })),
    });
    expect(getAttribute(response(two), ATTR_UNKNOWN_ATTRIBUTES)!.toString('hex')).toBe('00037777');
    const answer = answerBinding(two, { address: '192.0.2.1', port: 1 }, SOFTWARE);
    expect(answer.kind).toBe('error');
    expect(() => readBindingResponse((answer as { response: Buffer }).response, txid)).toThrow(/420: Unknown Attribute/);
  });

  it('unknown comprehension-optional attributes are ignored', () => {
    const req = encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: txid, attributes: [{ type: 0x8fff, value: Buffer.from('x') }], fingerprint: true });
    expect(response(req).cls).toBe(CLASS_SUCCESS_RESPONSE);
  });

  it.each([
    ['a Binding indication (keepalive)', encodeMessage({ method: METHOD_BINDING, cls: CLASS_INDICATION, transactionId: txid, attributes: [] })],
    ['a Binding success response', encodeMessage({ method: METHOD_BINDING, cls: CLASS_SUCCESS_RESPONSE, transactionId: txid, attributes: [] })],
    ['a TURN Allocate request', encodeMessage({ method: 0x003, cls: CLASS_REQUEST, transactionId: txid, attributes: [{ type: ATTR_PRIORITY, value: Buffer.alloc(4) }] })],
  ])('%s gets no answer', (_n, datagram) => {
    expect(answerBinding(datagram, { address: '192.0.2.1', port: 1 }, SOFTWARE)).toEqual({ kind: 'ignored' });
  });

  it('SOFTWARE is left out when configured empty', () => {
    const a = answerBinding(encodeBindingRequest(txid), { address: '192.0.2.1', port: 1 }, Buffer.alloc(0));
    expect(a.kind).toBe('success');
    const m = parseMessage((a as { response: Buffer }).response);
    expect(m.ok && m.message.attributes.map((x) => x.type)).toEqual([ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT]);
  });
});

describe('encodeBindingSuccess (the hot path)', () => {
  it.each([
    ['IPv4', '203.0.113.200', 65535, SOFTWARE],
    ['IPv6', '2001:db8:1234:5678:11:2233:4455:6677', 32853, SOFTWARE],
    ['IPv4 on a dual-stack socket', '::ffff:10.0.0.1', 1, Buffer.from('a longer software name, padded')],
    ['no SOFTWARE', '192.0.2.1', 3478, Buffer.alloc(0)],
  ])('%s: the same bytes as encodeMessage', (_n, address, port, software) => {
    const want = encodeMessage({
      method: METHOD_BINDING,
      cls: CLASS_SUCCESS_RESPONSE,
      transactionId: txid,
      attributes: [{ type: ATTR_XOR_MAPPED_ADDRESS, value: encodeXorMappedAddress(address, port, txid) }, ...(software.length ? [{ type: ATTR_SOFTWARE, value: software }] : [])],
      fingerprint: true,
    });
    expect(encodeBindingSuccess(txid, { address, port }, software).toString('hex')).toBe(want.toString('hex'));
  });
});

describe('BindingResponder.quick (the template for bare requests)', () => {
  const responder = new BindingResponder(SOFTWARE);
  const bare = encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: txid, attributes: [] });
  const withFingerprint = encodeBindingRequest(txid);
  const badFingerprint = Buffer.from(withFingerprint);
  badFingerprint[27]! ^= 1;

  it.each([
    ['IPv4', '203.0.113.200', 65535, bare],
    ['IPv4, low port and address', '1.0.0.0', 1, bare],
    ['IPv4 on a dual-stack socket', '::ffff:10.0.0.1', 3478, bare],
    ['a request with FINGERPRINT', '192.0.2.44', 51820, withFingerprint],
  ])('%s: the same bytes answerBinding gives', (_n, address, port, request) => {
    expect(request.length).toBe(request === bare ? 20 : 28);
    const want = answerBinding(request, { address, port }, SOFTWARE);
    expect(want.kind).toBe('success');
    expect(responder.quick(request, { address, port })?.toString('hex')).toBe((want as { response: Buffer }).response.toString('hex'));
  });

  it.each([
    ['IPv4', '203.0.113.200', 65535, bare],
    ['a request with FINGERPRINT', '192.0.2.44', 51820, withFingerprint],
  ])('quickInto (the batched socket), %s: the same bytes at the offset it is given, nothing else touched', (_n, address, port, request) => {
    const out = Buffer.alloc(200, 0xee);
    const ipv4 = Buffer.from(address.split('.').map(Number)).readUInt32BE(0);
    const n = responder.quickInto(request, ipv4, port, out, 37);
    expect(n).toBe(responder.answerLength);
    expect(out.subarray(37, 37 + n).toString('hex')).toBe(responder.quick(request, { address, port })!.toString('hex'));
    expect(out.subarray(0, 37).every((b) => b === 0xee) && out.subarray(37 + n).every((b) => b === 0xee)).toBe(true);
  });

  it('quickInto leaves what quick() would leave to answerBinding (0)', () => {
    expect(responder.quickInto(badFingerprint, 0x7f000001, 3478, Buffer.alloc(100), 0)).toBe(0);
    expect(responder.quickInto(bare.subarray(0, 19), 0x7f000001, 3478, Buffer.alloc(100), 0)).toBe(0);
  });

  it('two requests in a row each get their own transaction ID and address (the template is not shared state)', () => {
    const other = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');
    const first = responder.quick(bare, { address: '192.0.2.1', port: 1000 })!;
    const second = responder.quick(encodeBindingRequest(other), { address: '198.51.100.9', port: 2000 })!;
    expect(readBindingResponse(first, txid)).toMatchObject({ address: '192.0.2.1', port: 1000 });
    expect(readBindingResponse(second, other)).toMatchObject({ address: '198.51.100.9', port: 2000 });
  });

  it.each([
    ['an IPv6 peer', bare, '2001:db8::7'],
    ['an address that is not a dotted quad', bare, '1.2.3'],
    ['a leading zero', bare, '01.2.3.4'],
    ['a request with attributes', encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: txid, attributes: [{ type: ATTR_USERNAME, value: Buffer.from('u') }] }), '192.0.2.1'],
    ['an RFC 3489 request (no cookie)', Buffer.concat([Buffer.from('00010000', 'hex'), Buffer.alloc(16, 7)]), '192.0.2.1'],
    ['an indication', encodeMessage({ method: METHOD_BINDING, cls: CLASS_INDICATION, transactionId: txid, attributes: [] }), '192.0.2.1'],
    ['a truncated header', bare.subarray(0, 19), '192.0.2.1'],
    ['a FINGERPRINT that does not match', badFingerprint, '192.0.2.1'],
    ['SOFTWARE where FINGERPRINT would be', encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: txid, attributes: [{ type: ATTR_SOFTWARE, value: Buffer.from('abcd') }] }), '192.0.2.1'],
  ])('%s: left to answerBinding (undefined)', (_n, datagram, address) => {
    expect(responder.quick(datagram, { address, port: 3478 })).toBeUndefined();
  });
});

describe('addressBytes', () => {
  it.each([
    ['192.0.2.1', 'c0000201'],
    ['0.0.0.0', '00000000'],
    ['255.255.255.255', 'ffffffff'],
    ['::ffff:192.0.2.1', 'c0000201'],
    ['::ffff:c000:0201', 'c0000201'],
    ['::1', '00000000000000000000000000000001'],
    ['2001:db8::', '20010db8000000000000000000000000'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001'],
  ])('%s -> %s', (text, hex) => {
    expect(addressBytes(text)?.toString('hex')).toBe(hex);
  });

  it.each(['256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '', '::ffff:1.2.3', '2001:db8::g'])('%j is not an address', (text) => {
    expect(addressBytes(text)).toBeUndefined();
  });

  it('agrees with node:net on random dotted quads and their round trip', () => {
    for (let i = 0; i < 2000; i++) {
      const parts = [0, 0, 0, 0].map(() => Math.floor(Math.random() * 256));
      const text = parts.join('.');
      expect([...addressBytes(text)!]).toEqual(parts);
      expect(addressText(addressBytes(text)!)).toBe(text);
    }
  });
});
