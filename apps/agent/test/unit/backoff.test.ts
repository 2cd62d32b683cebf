import { describe, expect, it } from 'vitest';
import { RECONNECT_BACKOFF, backoffCeiling, backoffDelay } from '../../src/backoff.js';
import { classifyClose, classifyRefusal } from '../../src/control-session.js';

describe('reconnect backoff', () => {
  it('ceiling doubles from 250 ms and caps at 30 s', () => {
    const ceilings = Array.from({ length: 12 }, (_, i) => backoffCeiling(i, RECONNECT_BACKOFF));
    expect(ceilings.slice(0, 8)).toEqual([250, 500, 1000, 2000, 4000, 8000, 16000, 30000]);
    expect(ceilings.slice(8).every((c) => c === 30_000)).toBe(true);
    expect(backoffCeiling(10_000, RECONNECT_BACKOFF)).toBe(30_000);
  });

  it('full jitter: every delay is within [0, ceiling)', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, RECONNECT_BACKOFF);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(backoffCeiling(attempt, RECONNECT_BACKOFF));
      }
    }
    expect(backoffDelay(3, { ...RECONNECT_BACKOFF, random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { ...RECONNECT_BACKOFF, random: () => 0.999999 })).toBe(1999);
  });
});

describe('close codes', () => {
  it('stops for deleted and expired, retries unauthorized once, reconnects for the rest', () => {
    expect(classifyClose(4403)).toBe('revoked');
    expect(classifyClose(4401)).toBe('unauthorized');
    expect(classifyClose(4410)).toBe('expired');
    expect(classifyClose(4426)).toBe('upgrade-required');
    for (const code of [1000, 1001, 1006, 1009, 1011, 4400]) expect(classifyClose(code)).toBe('reconnect');
  });

  it('classifies refused upgrades by problem code first', () => {
    expect(classifyRefusal(403, 'node_deleted')).toBe('revoked');
    expect(classifyRefusal(401, undefined)).toBe('unauthorized');
    expect(classifyRefusal(403, 'node_expired')).toBe('expired');
    expect(classifyRefusal(410, 'node_expired')).toBe('expired');
    expect(classifyRefusal(401, 'machine_unauthorized')).toBe('unauthorized');
    expect(classifyRefusal(410, undefined)).toBe('expired');
    expect(classifyRefusal(429, 'rate_limited')).toBe('reconnect');
    expect(classifyRefusal(503, undefined)).toBe('reconnect');
    expect(classifyRefusal(502, 'whatever')).toBe('reconnect');
  });

  it('keeps a suspended device retrying: a 403 user_suspended is lifted by resume, not final', () => {
    expect(classifyRefusal(403, 'user_suspended')).toBe('reconnect');
    expect(classifyClose(4423)).toBe('reconnect');
  });
});
