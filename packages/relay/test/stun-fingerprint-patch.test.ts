import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FingerprintPatch } from '../src/stun-fingerprint-patch.js';
import { answerBinding, BindingResponder } from '../src/stun-binding.js';
import { encodeBindingRequest } from '../src/stun-client.js';
import { fingerprintOf } from '../src/stun-message.js';

describe('FingerprintPatch', () => {
  it('equals CRC-32 over the message for random templates changed at random positions', () => {
    for (let round = 0; round < 200; round++) {
      const end = randomInt(1, 80);
      const template = randomBytes(end + randomInt(0, 8));
      const positions = [...new Set(Array.from({ length: randomInt(1, end + 1) }, () => randomInt(0, end)))];
      const patch = new FingerprintPatch(template, end, positions);
      for (let k = 0; k < 20; k++) {
        const message = Buffer.from(template);
        for (const p of positions) if (Math.random() < 0.7) message[p] = randomInt(0, 256);
        expect(patch.of(message)).toBe(fingerprintOf(message, end));
      }
    }
  });

  it('refuses a position outside the fingerprinted bytes', () => {
    expect(() => new FingerprintPatch(Buffer.alloc(40), 40, [8, 40])).toThrow(RangeError);
  });
});

describe('BindingResponder.quick on random requests', () => {
  const software = Buffer.from('weft');
  const responder = new BindingResponder(software);

  it('gives the bytes answerBinding gives, for random transaction IDs, ports and IPv4 peers, bare or with FINGERPRINT', () => {
    for (let i = 0; i < 3000; i++) {
      const txid = randomBytes(12);
      const request = i % 2 ? encodeBindingRequest(txid) : encodeBindingRequest(txid).subarray(0, 20);
      if (i % 2 === 0) request.writeUInt16BE(0, 2); // bare: no attributes
      const address = [0, 0, 0, 0].map(() => randomInt(0, 256)).join('.');
      const from = { address: i % 3 ? address : `::ffff:${address}`, port: randomInt(0, 65536) };
      const want = answerBinding(request, from, software);
      expect(want.kind).toBe('success');
      expect(responder.quick(request, from)?.toString('hex')).toBe((want as { response: Buffer }).response.toString('hex'));
    }
  });

  it('refuses a request whose FINGERPRINT is wrong in any bit of the transaction ID it covers', () => {
    const request = encodeBindingRequest(randomBytes(12));
    for (let bit = 8 * 8; bit < 20 * 8; bit++) {
      const bad = Buffer.from(request);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(responder.quick(bad, { address: '192.0.2.1', port: 1 })).toBeUndefined();
    }
  });
});
