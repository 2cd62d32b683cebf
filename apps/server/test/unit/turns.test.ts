import { describe, expect, it } from 'vitest';
import { Turns } from '../../src/agent/turns.js';

/** Holds the thread for `ms`, as a connection's token check and netmap do. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('Turns', () => {
  it('an idle queue lets a caller in at once', async () => {
    const t = new Turns(10);
    let inside = false;
    const p = t.turn().then(() => (inside = true));
    expect(t.queued).toBe(0);
    await p;
    expect(inside).toBe(true);
  });

  it('a burst of callers, each arriving on its own callback and working 2 ms, is let in in arrival order, and a timer runs before the burst is through', async () => {
    const t = new Turns(10);
    const events: string[] = [];
    const done: Promise<void>[] = [];
    setTimeout(() => events.push('timer'), 0);
    // Each caller arrives on its own macrotask, as each connection does in libuv's poll phase.
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 50; i++) {
        setImmediate(() => {
          done.push(t.turn().then(() => {
            busy(2);
            events.push(`c${i}`);
          }));
          if (i === 49) resolve();
        });
      }
    });
    expect(t.queued).toBeGreaterThan(0);
    await Promise.all(done);
    const callers = events.filter((e) => e !== 'timer');
    expect(callers).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
    // Without turns, all 50 run inside one check phase (100 ms) before the timer.
    expect(events.indexOf('timer')).toBeLessThan(events.length - 1);
    expect(t.queued).toBe(0);
  });
});
