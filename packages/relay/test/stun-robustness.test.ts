/**
 * Malformed input: every datagram comes back as malformed (never a throw, never an answer), and
 * random bytes and random mutations of valid messages never throw out of the parser or answerBinding.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerBinding, encodeBindingRequest, fingerprintOf, parseMessage } from '../src/index.js';
import { SAMPLE_IPV6_RESPONSE, SAMPLE_REQUEST } from './rfc5769.js';

const from = { address: '192.0.2.1', port: 1234 };
const SOFTWARE = Buffer.from('weft');
const request = () => encodeBindingRequest(Buffer.from('0102030405060708090a0b0c', 'hex'));
const mutate = (buf: Buffer, f: (b: Buffer) => void) => {
  const b = Buffer.from(buf);
  f(b);
  return b;
};

/** A request whose (correct) FINGERPRINT is followed by SOFTWARE. */
function fingerprintThenSoftware(): Buffer {
  const base = request();
  const b = Buffer.concat([base, Buffer.from('80220004' + '77656674', 'hex')]);
  b.writeUInt16BE(b.length - 20, 2);
  b.writeUInt32BE(fingerprintOf(b, base.length - 8), base.length - 4);
  return b;
}

describe('malformed datagrams are dropped with a reason', () => {
  it.each([
    ['empty', Buffer.alloc(0), /shorter than the 20-byte header/],
    ['truncated header', request().subarray(0, 19), /shorter than the 20-byte header/],
    ['truncated message (length says more)', request().subarray(0, request().length - 4), /but 4 bytes follow the header/],
    ['trailing bytes after the message', Buffer.concat([request(), Buffer.alloc(4)]), /message length 8 but 12 bytes/],
    ['length not a multiple of 4', mutate(request(), (b) => b.writeUInt16BE(7, 2)), /not a multiple of 4/],
    ['first two bits set (not STUN: e.g. RTP, ChannelData)', mutate(request(), (b) => (b[0] = 0x40)), /first two bits/],
    ['attribute longer than the message (huge attribute length)', mutate(request(), (b) => b.writeUInt16BE(0xfff0, 22)), /past the end of the message/],
    ['attribute header cut short', Buffer.concat([mutate(Buffer.alloc(20), (b) => { b.writeUInt16BE(1, 0); b.writeUInt16BE(4, 2); b.writeUInt32BE(0x2112a442, 4); }), Buffer.from([0x80, 0x22, 0, 0])]).subarray(0, 22), /shorter|follow the header/],
    ['bad FINGERPRINT', mutate(request(), (b) => (b[b.length - 1]! ^= 1)), /FINGERPRINT does not match/],
    ['FINGERPRINT not last (even a correct one)', fingerprintThenSoftware(), /follows FINGERPRINT/],
    ['FINGERPRINT of the wrong size', mutate(request(), (b) => b.writeUInt16BE(0, 22)), /FINGERPRINT of 0 bytes|past the end/],
    ['a changed byte under the FINGERPRINT of the RFC 5769 response', mutate(SAMPLE_IPV6_RESPONSE, (b) => (b[30]! ^= 1)), /FINGERPRINT does not match/],
    ['MESSAGE-INTEGRITY of the wrong size', mutate(SAMPLE_REQUEST, (b) => b.writeUInt16BE(0x10, 20 + 20 + 8 + 12 + 16 + 2)), /MESSAGE-INTEGRITY of 16 bytes/],
  ])('%s', (_n, datagram, reason) => {
    const p = parseMessage(datagram);
    expect(p.ok).toBe(false);
    expect(!p.ok && p.reason).toMatch(reason);
    expect(answerBinding(datagram, from, SOFTWARE)).toEqual({ kind: 'malformed', reason: !p.ok ? p.reason : '' });
  });

  it('a wrong magic cookie on anything but a Binding request is dropped', () => {
    const ind = mutate(request(), (b) => {
      b.writeUInt16BE(0x0011, 0); // Binding indication
      b[4]! ^= 1;
    });
    expect(answerBinding(ind, from, SOFTWARE)).toEqual({ kind: 'malformed', reason: 'no magic cookie and not a Binding request' });
  });

  it('a wrong magic cookie on a Binding request is an RFC 3489 request: answered without XOR-MAPPED-ADDRESS, the cookie bytes echoed', () => {
    const req = mutate(request().subarray(0, 20), (b) => {
      b.writeUInt16BE(0, 2);
      b[4]! ^= 1;
    });
    const a = answerBinding(req, from, SOFTWARE);
    expect(a.kind).toBe('success');
    if (a.kind === 'success') expect(a.response.subarray(4, 20).equals(req.subarray(4, 20))).toBe(true);
  });
});

describe('never throws', () => {
  it('random datagrams (with and without a STUN-looking header)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, stunish) => {
        const b = Buffer.from(bytes);
        if (stunish && b.length >= 8) {
          b[0]! &= 0x3f;
          b.writeUInt16BE((b.length - 20) & 0xfffc, 2);
          b.writeUInt32BE(0x2112a442, 4);
        }
        const a = answerBinding(b, from, SOFTWARE);
        expect(['success', 'error', 'ignored', 'malformed']).toContain(a.kind);
      }),
      { numRuns: 3000 },
    );
  });

  it('random byte flips and truncations of valid messages', () => {
    const seeds = [request(), SAMPLE_REQUEST, SAMPLE_IPV6_RESPONSE];
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), fc.nat(), (seed, flips, cut) => {
        const b = Buffer.from(seed);
        for (const [at, x] of flips) b[at % b.length]! ^= x;
        const d = b.subarray(0, b.length - (cut % 8));
        expect(() => answerBinding(d, from, SOFTWARE)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('random addresses of the peer are answered or rejected by the encoder, never by a crash in the server', () => {
    // A peer address from the socket is always an IP; make sure both families survive a random transaction ID.
    for (let i = 0; i < 200; i++) {
      const req = encodeBindingRequest(randomBytes(12));
      expect(answerBinding(req, { address: `2001:db8::${i.toString(16)}`, port: i }, SOFTWARE).kind).toBe('success');
    }
  });
});
