import { afterEach, describe, expect, it, vi } from 'vitest';
import { NetmapGate } from '../../src/mapper/netmap-gate.js';

describe('NetmapGate', () => {
  it('writes at most cap netmaps at once; the rest start in arrival order as places free up', () => {
    const gate = new NetmapGate(2, 10_000);
    const started: number[] = [];
    const done = new Map<number, () => void>();
    for (let i = 0; i < 5; i++) gate.admit((d) => (started.push(i), done.set(i, d)));
    expect(started).toEqual([0, 1]);
    expect(gate.queued).toBe(3);
    done.get(1)!();
    expect(started).toEqual([0, 1, 2]);
    done.get(1)!(); // twice frees one place only
    expect(started).toEqual([0, 1, 2]);
    done.get(0)!();
    done.get(2)!();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(gate.inFlight).toBe(2);
  });

  it('a netmap that is never written (its session closed while waiting) frees its place at once, for many in a row', () => {
    const gate = new NetmapGate(1, 10_000);
    let first: (() => void) | undefined;
    gate.admit((d) => (first = d));
    const started: number[] = [];
    for (let i = 0; i < 50_000; i++) gate.admit((d) => (i < 49_999 ? d() : started.push(i)));
    first!();
    expect(started).toEqual([49_999]);
    expect(gate.queued).toBe(0);
    expect(gate.inFlight).toBe(1);
  });

  describe('a netmap that never leaves', () => {
    afterEach(() => void vi.useRealTimers());

    it('gives its place back after the timeout, so readers that never read cannot hold every place', () => {
      vi.useFakeTimers();
      const gate = new NetmapGate(1, 10_000);
      const started: number[] = [];
      gate.admit(() => started.push(0)); // never done
      gate.admit((d) => (started.push(1), d()));
      vi.advanceTimersByTime(9_999);
      expect(started).toEqual([0]);
      vi.advanceTimersByTime(1);
      expect(started).toEqual([0, 1]);
      expect(gate.inFlight).toBe(0);
    });
  });
});
