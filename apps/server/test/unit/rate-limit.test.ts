import { describe, expect, it } from 'vitest';
import { AbuseLimits, RateLimiter, sourceKey } from '../../src/rate-limit.js';

function limiter(o: { burst?: number; perSecond?: number; maxKeys?: number } = {}) {
  let t = 1_000_000;
  const l = new RateLimiter({ burst: o.burst ?? 3, perSecond: o.perSecond ?? 0.5, maxKeys: o.maxKeys ?? 100, now: () => t });
  return { l, advance: (ms: number) => (t += ms) };
}

describe('token bucket per source address', () => {
  it('allows a burst, then refuses with the seconds until the next token', () => {
    const { l } = limiter({ burst: 3, perSecond: 0.5 });
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([0, 0, 0]);
    expect(l.take('a')).toBe(2);
    expect(l.retryAfter('a')).toBe(2);
    expect(l.take('b')).toBe(0);
  });

  it('refills at its rate, never above the burst', () => {
    const { l, advance } = limiter({ burst: 2, perSecond: 1 });
    l.take('a');
    l.take('a');
    advance(1000);
    expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBe(1);
    advance(60_000);
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([0, 0, 1]);
  });

  it('retryAfter spends nothing', () => {
    const { l } = limiter({ burst: 1 });
    expect(l.retryAfter('a')).toBe(0);
    expect(l.retryAfter('a')).toBe(0);
    expect(l.take('a')).toBe(0);
    expect(l.retryAfter('a')).toBeGreaterThan(0);
  });

  it('its table stays bounded under address spraying, forgetting the least recently seen', () => {
    const { l } = limiter({ burst: 1, maxKeys: 50 });
    l.take('keep');
    for (let i = 0; i < 10_000; i++) {
      l.take(`10.0.${i >> 8}.${i & 255}`);
      if (i % 10 === 0) l.take('keep'); // seen recently: stays remembered (and limited)
    }
    expect(l.size).toBe(50);
    expect(l.retryAfter('keep')).toBeGreaterThan(0);
  });
});

describe('sourceKey', () => {
  it('keys IPv4 by address, IPv4-mapped as IPv4, IPv6 by /64', () => {
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey(undefined)).toBe('unknown');
  });
});

describe('sign-in limits', () => {
  it('failed sign-ins count per address and per account; checking spends nothing; a refusal is counted', () => {
    let t = 0;
    const limits = new AbuseLimits({ signInFailureBurst: 2, signInFailurePerSecond: 1 / 60, now: () => t });
    limits.signInFailed('192.0.2.1', 'Root');
    limits.signInFailed('192.0.2.2', 'root');
    // The account (case-insensitive) is spent, from a third address too; another account there is not.
    expect(() => limits.checkSignIn('192.0.2.3', 'root')).toThrow(/too many failed sign-ins/);
    expect(() => limits.checkSignIn('192.0.2.3', 'alice')).not.toThrow();
    expect(limits.refusals.signIn).toBe(1);
    t += 60_000;
    expect(() => limits.checkSignIn('192.0.2.3', 'root')).not.toThrow();
  });

  it('OIDC sign-ins started are limited per address', () => {
    const limits = new AbuseLimits({ now: () => 0 });
    for (let i = 0; i < 20; i++) limits.admitOidcStart('192.0.2.9');
    expect(() => limits.admitOidcStart('192.0.2.9')).toThrow(/too many sign-ins started/);
    expect(() => limits.admitOidcStart('192.0.2.10')).not.toThrow();
  });
});
