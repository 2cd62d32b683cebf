import { describe, expect, it } from 'vitest';
import { ResyncLimiter } from '../../src/mapper/resync-limiter.js';

describe('resync limiter', () => {
  it('answers a burst at once, then books one turn per interval', () => {
    const l = new ResyncLimiter(3, 5000);
    expect([l.take(0), l.take(0), l.take(0)]).toEqual([0, 0, 0]);
    // The fourth waits a full interval, the fifth (booked before the fourth was sent) two.
    expect(l.take(0)).toBe(5000);
    expect(l.take(0)).toBe(10_000);
  });

  it('refills with time, never beyond the burst', () => {
    const l = new ResyncLimiter(3, 5000);
    for (let i = 0; i < 3; i++) l.take(0);
    expect(l.take(2500)).toBe(2500);
    expect(l.take(2500 + 5000 * 100)).toBe(0);
    expect([l.take(500_000 + 2500), l.take(500_000 + 2500)]).toEqual([0, 0]);
    expect(l.take(500_000 + 2500)).toBe(5000);
  });

  it('counts requests since the last netmap, folded ones included', () => {
    const l = new ResyncLimiter(3, 5000);
    l.take(0);
    l.fold();
    l.fold();
    expect(l.unanswered()).toBe(3);
    l.answered();
    expect(l.unanswered()).toBe(0);
  });
});
