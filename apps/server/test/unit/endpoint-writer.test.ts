import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EndpointWriter } from '../../src/agent/endpoint-writer.js';

const INTERVAL = 1000;

describe('EndpointWriter', () => {
  let writes: [number, string[]][];
  let writer: EndpointWriter;
  let fail = false;
  beforeEach(() => {
    vi.useFakeTimers();
    writes = [];
    fail = false;
    writer = new EndpointWriter({
      write: async (id, eps) => {
        writes.push([id, eps]);
        if (fail) throw new Error('db down');
      },
      intervalMs: INTERVAL,
      onError: () => {},
      now: () => Date.now(),
    });
  });
  afterEach(() => vi.useRealTimers());

  const ep = (i: number) => [`192.0.2.${i % 250 + 1}:${1000 + i}`];

  it('a flood of reports from one node is one write at once and one trailing write of the latest', async () => {
    writer.attach(1, []);
    for (let i = 0; i < 10_000; i++) writer.report(1, ep(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([[1, ep(0)]]);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(writes).toEqual([[1, ep(0)], [1, ep(9999)]]);
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(writes).toHaveLength(2);
  });

  it('at most one write per window while reports keep coming', async () => {
    writer.attach(1, []);
    for (let t = 0; t < 100; t++) {
      writer.report(1, ep(t));
      await vi.advanceTimersByTimeAsync(INTERVAL / 10);
    }
    // 100 reports over 10 windows
    expect(writes.length).toBeLessThanOrEqual(11);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(writes.at(-1)).toEqual([1, ep(99)]);
  });

  it('does not write a value equal to what is stored, nor one that returns to it within the window', async () => {
    writer.attach(1, ['192.0.2.1:1000']);
    writer.report(1, ['192.0.2.1:1000']);
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(writes).toEqual([]);
    writer.report(1, ep(5));
    await vi.advanceTimersByTimeAsync(0);
    writer.report(1, ep(6));
    writer.report(1, ep(5)); // back to what was just written
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(writes).toEqual([[1, ep(5)]]);
  });

  it('keeps nodes apart: one node flooding does not delay another', async () => {
    writer.attach(1, []);
    writer.attach(2, []);
    for (let i = 0; i < 50; i++) writer.report(1, ep(i));
    writer.report(2, ep(100));
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([[1, ep(0)], [2, ep(100)]]);
  });

  it('the last session of a node closing flushes its pending value at once', async () => {
    writer.attach(1, []);
    writer.attach(1, []); // a reconnect overlapping the old session
    writer.report(1, ep(1));
    writer.report(1, ep(2));
    await writer.detach(1);
    expect(writes).toEqual([[1, ep(1)]]);
    await writer.detach(1);
    expect(writes).toEqual([[1, ep(1)], [1, ep(2)]]);
    // forgotten: reports for a node with no session are not written
    writer.report(1, ep(3));
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(writes).toHaveLength(2);
  });

  it('closing flushes every node and drops later reports', async () => {
    writer.attach(1, []);
    writer.attach(2, []);
    writer.report(1, ep(1));
    writer.report(1, ep(2));
    writer.report(2, ep(3));
    writer.report(2, ep(4));
    await writer.close();
    expect(writes.filter(([id]) => id === 1).at(-1)).toEqual([1, ep(2)]);
    expect(writes.filter(([id]) => id === 2).at(-1)).toEqual([2, ep(4)]);
    writer.report(1, ep(9));
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(writes.some(([, e]) => e[0] === ep(9)[0])).toBe(false);
  });

  it('a failed write does not stop later ones, and the same value is tried again', async () => {
    writer.attach(1, []);
    fail = true;
    writer.report(1, ep(1));
    await vi.advanceTimersByTimeAsync(0);
    fail = false;
    writer.report(1, ep(1));
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(writes).toEqual([[1, ep(1)], [1, ep(1)]]);
  });
});
