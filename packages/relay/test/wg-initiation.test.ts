/**
 * Handshake initiations captured from a real wireguard-go (fixtures/capture-wg-initiation.sh:
 * one peer = the responder key, persistent keepalive 25 s, no allowed IPs) are opened and
 * authenticated to the sender's static key; every corruption, a wrong responder key, replays,
 * unknown keys and clock skew are refused with their reason, and nothing throws.
 */
import { readFileSync } from 'node:fs';
import { blake2s } from '@noble/hashes/blake2.js';
import { x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INITIATION_EPHEMERAL_OFFSET, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, MAC_SIZE, MESSAGE_INITIATION_SIZE } from '../src/wg-constants.js';
import { looksLikeInitiation, openInitiation, responderKey, tai64nToUnixMs } from '../src/wg-initiation.js';
import { WgResponder } from '../src/wg-responder.js';

interface Capture {
  capturedWith: string;
  responderPrivateKey: string;
  responderPublicKey: string;
  initiatorPrivateKey: string;
  initiatorPublicKey: string;
  initiatorListenPort: number;
  packets: { atMs: number; fromPort: number; hex: string }[];
}
const capture = JSON.parse(readFileSync(new URL('./fixtures/wg-initiation-capture.json', import.meta.url), 'utf8')) as Capture;
const b64 = (s: string) => Buffer.from(s, 'base64');
const key = responderKey(b64(capture.responderPrivateKey));
const packets = capture.packets.map((p) => Buffer.from(p.hex, 'hex'));
const first = packets[0]!;
const initiatorKey = b64(capture.initiatorPublicKey);
const mutate = (buf: Buffer, f: (b: Buffer) => void) => {
  const b = Buffer.from(buf);
  f(b);
  return b;
};
/** mac1 recomputed after a change, so the check under test is the one behind mac1. */
const remac = (b: Buffer) => {
  b.set(blake2s(b.subarray(0, INITIATION_MAC1_OFFSET), { key: key.mac1Key, dkLen: MAC_SIZE }), INITIATION_MAC1_OFFSET);
  return b;
};
const flip = (at: number) => (b: Buffer) => {
  b[at] = b[at]! ^ 0x01;
};

describe('initiations captured from wireguard-go', () => {
  it('the fixture is what the capture says: the responder key pair matches and there are several packets', () => {
    expect(Buffer.from(key.publicKey).toString('base64')).toBe(capture.responderPublicKey);
    expect(Buffer.from(x25519.getPublicKey(b64(capture.initiatorPrivateKey))).toString('base64')).toBe(capture.initiatorPublicKey);
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of capture.packets) expect(p.fromPort).toBe(capture.initiatorListenPort);
  });

  it('every captured initiation opens to the initiator static key, with timestamps in send order', () => {
    let prev: Buffer | undefined;
    for (const p of packets) {
      expect(looksLikeInitiation(p)).toBe(true);
      const opened = openInitiation(key, p);
      if (!opened.ok) throw new Error(`refused: ${opened.reason}`);
      expect(opened.initiatorKey.equals(initiatorKey)).toBe(true);
      if (prev) expect(Buffer.compare(opened.timestamp, prev)).toBe(1);
      prev = opened.timestamp;
    }
  });

  it('TAI64N decodes to wall time: gaps between timestamps match gaps between arrivals', () => {
    const times = packets.map((p) => {
      const o = openInitiation(key, p);
      if (!o.ok) throw new Error(o.reason);
      return tai64nToUnixMs(o.timestamp);
    });
    // Data, not a timing of our code: wireguard-go whitens the nanoseconds to ~16.8 ms steps.
    for (let i = 1; i < times.length; i++) expect(Math.abs(times[i]! - times[0]! - (capture.packets[i]!.atMs - capture.packets[0]!.atMs))).toBeLessThan(250);
    expect(times[0]).toBeGreaterThan(Date.UTC(2026, 0, 1));
  });
});

describe('refusals, each with its reason', () => {
  it.each([
    ['one byte short', first.subarray(0, MESSAGE_INITIATION_SIZE - 1), 'size'],
    ['one byte long', Buffer.concat([first, Buffer.of(0)]), 'size'],
    ['empty', Buffer.alloc(0), 'size'],
    ['a STUN Binding request', Buffer.from('000100002112a442' + '0102030405060708090a0b0c', 'hex'), 'size'],
    ['type 2 (response)', mutate(first, (b) => (b[0] = 2)), 'type'],
    ['reserved byte set', mutate(first, (b) => (b[2] = 1)), 'type'],
    ['sender index changed (mac1 covers it)', mutate(first, flip(5)), 'mac1'],
    ['ephemeral changed, mac1 not fixed', mutate(first, flip(20)), 'mac1'],
    ['encrypted static changed, mac1 not fixed', mutate(first, flip(60)), 'mac1'],
    ['timestamp changed, mac1 not fixed', mutate(first, flip(100)), 'mac1'],
    ['mac1 changed', mutate(first, flip(INITIATION_MAC1_OFFSET + 3)), 'mac1'],
    ['ephemeral changed, mac1 recomputed', remac(mutate(first, flip(20))), 'static'],
    ['ephemeral a low-order point (all zeros), mac1 recomputed', remac(mutate(first, (b) => b.fill(0, 8, 40))), 'ephemeral'],
    ['encrypted static changed, mac1 recomputed', remac(mutate(first, flip(45))), 'static'],
    ['static tag changed, mac1 recomputed', remac(mutate(first, flip(80))), 'static'],
    ['encrypted timestamp changed, mac1 recomputed', remac(mutate(first, flip(90))), 'timestamp'],
    ['timestamp tag changed, mac1 recomputed', remac(mutate(first, flip(110))), 'timestamp'],
  ] as const)('%s: %s', (_what, msg, reason) => {
    expect(openInitiation(key, msg)).toEqual({ ok: false, reason });
  });

  it('the sender index is covered by mac1 only (Noise does not authenticate it): changed with mac1 recomputed, it still opens', () => {
    const opened = openInitiation(key, remac(mutate(first, flip(5))));
    expect(opened.ok && opened.initiatorKey.equals(initiatorKey)).toBe(true);
  });

  it('mac2 is not checked (no cookie is ever handed out): a changed mac2 still opens', () => {
    expect(openInitiation(key, mutate(first, flip(INITIATION_MAC2_OFFSET))).ok).toBe(true);
  });

  it('a different responder key refuses at mac1', () => {
    const other = responderKey(x25519.utils.randomSecretKey());
    expect(openInitiation(other, first)).toEqual({ ok: false, reason: 'mac1' });
  });

  it('a different responder private key with the right public key would not decrypt (mac1 is public)', () => {
    const other = responderKey(x25519.utils.randomSecretKey());
    const forged = { ...other, publicKey: key.publicKey, hash0: key.hash0, mac1Key: key.mac1Key };
    expect(openInitiation(forged, first)).toEqual({ ok: false, reason: 'static' });
  });

  it('random bytes and random mutations never throw and never authenticate', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
        expect(openInitiation(key, bytes).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      // Ephemeral, static and timestamp: everything Noise authenticates (the sender index only mac1 covers).
      fc.property(fc.integer({ min: INITIATION_EPHEMERAL_OFFSET, max: INITIATION_MAC1_OFFSET - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        expect(openInitiation(key, remac(mutate(first, (b) => (b[at] = b[at]! ^ x)))).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('WgResponder: known keys, replays, clock skew, counters', () => {
  const atOf = (p: Buffer) => {
    const o = openInitiation(key, p);
    if (!o.ok) throw new Error(o.reason);
    return tai64nToUnixMs(o.timestamp);
  };
  const clock = { now: atOf(first) };
  const make = (known = true) =>
    new WgResponder({ key, lookup: (k) => (known && k.equals(initiatorKey) ? 'node-1' : undefined), now: () => clock.now });

  it('accepts a fresh initiation from a known key and names the initiator', () => {
    const r = make();
    expect(r.receive(first)).toEqual({ ok: true, initiator: 'node-1', initiatorKey });
    expect(r.counters.accepted).toBe(1);
  });

  it('refuses the same initiation a second time (replay) and an older one after a newer one', () => {
    const r = make();
    clock.now = atOf(packets[1]!);
    expect(r.receive(packets[1]!).ok).toBe(true);
    expect(r.receive(packets[1]!)).toEqual({ ok: false, reason: 'replayed' });
    expect(r.receive(first)).toEqual({ ok: false, reason: 'replayed' });
    expect(r.counters).toMatchObject({ accepted: 1, replayed: 2 });
    clock.now = atOf(packets[2]!);
    expect(r.receive(packets[2]!).ok).toBe(true);
  });

  it('refuses an authenticated initiation from a key nobody holds, and remembers nothing for it', () => {
    const r = make(false);
    expect(r.receive(first)).toEqual({ ok: false, reason: 'unknown-key' });
    expect(r.counters.unknownKey).toBe(1);
    expect(r.rememberedKeys).toBe(0);
  });

  it('refuses a timestamp outside the skew window either way (bounds a replay after a restart)', () => {
    const r = new WgResponder({ key, lookup: () => 'n', maxClockSkewMs: 60_000, now: () => clock.now });
    clock.now = atOf(first) + 61_000;
    expect(r.receive(first)).toEqual({ ok: false, reason: 'clock-skew' });
    clock.now = atOf(first) - 61_000;
    expect(r.receive(first)).toEqual({ ok: false, reason: 'clock-skew' });
    expect(r.counters.clockSkew).toBe(2);
  });

  it('counts each kind of junk under its own counter', () => {
    const r = make();
    clock.now = atOf(first);
    r.receive(Buffer.alloc(10));
    r.receive(mutate(first, flip(INITIATION_MAC1_OFFSET)));
    r.receive(remac(mutate(first, flip(45))));
    expect(r.counters).toEqual({ accepted: 0, malformed: 1, badMac1: 1, unauthenticated: 1, unknownKey: 0, replayed: 0, clockSkew: 0, rateLimited: 0 });
  });

  it('limits initiations that pass mac1 per source and in total before any Diffie-Hellman; junk without mac1 spends nothing; tokens come back with time', () => {
    clock.now = atOf(first);
    const r = new WgResponder({ key, lookup: () => undefined, perSource: { perSecond: 1, burst: 2 }, total: { perSecond: 1, burst: 3 }, now: () => clock.now });
    for (let i = 0; i < 10; i++) r.receive(mutate(first, flip(INITIATION_MAC1_OFFSET)), '198.51.100.1'); // bad mac1: free
    expect(r.receive(first, '198.51.100.1').ok).toBe(false);
    expect(r.receive(first, '198.51.100.1')).toEqual({ ok: false, reason: 'unknown-key' });
    expect(r.receive(first, '198.51.100.1')).toEqual({ ok: false, reason: 'rate-limited' }); // source over its burst
    expect(r.receive(first, '198.51.100.2')).toEqual({ ok: false, reason: 'unknown-key' }); // another source: total has one left
    expect(r.receive(first, '198.51.100.3')).toEqual({ ok: false, reason: 'rate-limited' }); // total over its burst
    expect(r.counters).toMatchObject({ badMac1: 10, unknownKey: 3, rateLimited: 2 });
    clock.now += 1000;
    expect(r.receive(first, '198.51.100.1')).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('a wall clock that steps back does not drain the rate limits', () => {
    clock.now = atOf(first);
    const r = new WgResponder({ key, lookup: () => undefined, perSource: { perSecond: 1, burst: 2 }, total: { perSecond: 1, burst: 2 }, now: () => clock.now });
    expect(r.receive(first, '198.51.100.1')).toEqual({ ok: false, reason: 'unknown-key' });
    clock.now -= 60_000;
    expect(r.receive(first, '198.51.100.1')).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('forgets keys whose last timestamp left the window, so replay memory stays bounded', () => {
    const r = new WgResponder({ key, lookup: () => 'n', maxClockSkewMs: 60_000, now: () => clock.now });
    clock.now = atOf(first);
    expect(r.receive(first).ok).toBe(true);
    expect(r.rememberedKeys).toBe(1);
    clock.now = atOf(first) + 30_000;
    r.receive(Buffer.alloc(1));
    expect(r.rememberedKeys).toBe(1); // still inside the window: a replay must still be caught
    clock.now = atOf(first) + 61_000 + 60_000;
    r.receive(Buffer.alloc(1)); // any datagram after the sweep interval sweeps
    expect(r.rememberedKeys).toBe(0);
  });
});

describe('the test initiator (test-support/wg-initiator.ts) builds what wireguard-go builds', () => {
  it('its initiation opens with the same code to its key and time', async () => {
    const { buildInitiation, publicKeyOf } = await import('../../../test-support/wg-initiator.js');
    const initiator = x25519.utils.randomSecretKey();
    const at = Date.UTC(2026, 11, 1, 12, 0, 0, 500);
    const opened = openInitiation(key, buildInitiation(initiator, key.publicKey, at));
    if (!opened.ok) throw new Error(opened.reason);
    expect(opened.initiatorKey.equals(publicKeyOf(initiator))).toBe(true);
    expect(tai64nToUnixMs(opened.timestamp)).toBe(at);
  });
});
