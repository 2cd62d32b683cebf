/** The home relay choice (pure): latency with hysteresis, so near-equal regions do not flap. */
import { describe, expect, it } from 'vitest';
import { defaultHome, nextHome, NO_HOME, type HomeState } from '../../src/home-relay.js';

const rule = { minGainMs: 10, minGainRatio: 0.2, confirmations: 2 };
const lat = (pairs: Record<number, number | null>) => Object.entries(pairs).map(([id, latencyMs]) => ({ id: Number(id), latencyMs }));
const run = (start: HomeState, rounds: Record<number, number | null>[]) => rounds.reduce((s, r) => nextHome(s, lat(r), rule), start);

describe('nextHome', () => {
  it('with no home yet takes the fastest region at once (ties to the lower id)', () => {
    expect(nextHome(NO_HOME, lat({ 1: 40, 2: 12, 3: 30 }), rule)).toEqual({ home: 2, challenger: null });
    expect(nextHome(NO_HOME, lat({ 3: 12, 2: 12 }), rule).home).toBe(2);
  });

  it('keeps the home when nothing answered', () => {
    expect(nextHome({ home: 2, challenger: { id: 3, wins: 1 } }, lat({ 2: null, 3: null }), rule)).toEqual({ home: 2, challenger: null });
    expect(nextHome(NO_HOME, [], rule)).toEqual(NO_HOME);
  });

  it('moves only after the same clearly better region wins two netchecks in a row', () => {
    const once = nextHome({ home: 1, challenger: null }, lat({ 1: 50, 2: 20 }), rule);
    expect(once).toEqual({ home: 1, challenger: { id: 2, wins: 1 } });
    expect(nextHome(once, lat({ 1: 50, 2: 20 }), rule)).toEqual({ home: 2, challenger: null });
  });

  it('a win interrupted by a round where the challenger is not clearly better starts over', () => {
    expect(run({ home: 1, challenger: null }, [{ 1: 50, 2: 20 }, { 1: 50, 2: 45 }, { 1: 50, 2: 20 }])).toEqual({ home: 1, challenger: { id: 2, wins: 1 } });
  });

  it('a different challenger each round never moves the home', () => {
    expect(run({ home: 1, challenger: null }, [{ 1: 50, 2: 20, 3: 30 }, { 1: 50, 2: 30, 3: 20 }, { 1: 50, 2: 20, 3: 30 }]).home).toBe(1);
  });

  it('two near-equal regions never flap, however often measured (gain under 10 ms or under 20%)', () => {
    // 18 vs 12: 6 ms better (under 10 ms). 100 vs 85: 15 ms but 15% (under 20%).
    const noisy = Array.from({ length: 20 }, (_, i) => (i % 2 ? { 1: 18, 2: 12 } : { 1: 12, 2: 18 }));
    expect(run({ home: 1, challenger: null }, noisy).home).toBe(1);
    expect(run({ home: 1, challenger: null }, [{ 1: 100, 2: 85 }, { 1: 100, 2: 85 }, { 1: 100, 2: 85 }]).home).toBe(1);
    // 100 vs 79: 21 ms and 21%: moves after two.
    expect(run({ home: 1, challenger: null }, [{ 1: 100, 2: 79 }, { 1: 100, 2: 79 }]).home).toBe(2);
  });

  it('a home that did not answer is left at once for the best that did', () => {
    expect(nextHome({ home: 1, challenger: null }, lat({ 1: null, 2: 80, 3: 60 }), rule)).toEqual({ home: 3, challenger: null });
    expect(nextHome({ home: 9, challenger: null }, lat({ 2: 80 }), rule).home).toBe(2);
  });
});

describe('defaultHome', () => {
  const r = (id: number, relayUrl?: string) => ({ id, code: `r${id}`, name: `R${id}`, stun: [], ...(relayUrl ? { relayUrl } : {}) });
  it('is the embedded region when listed, else the first region with a relay, else none', () => {
    expect(defaultHome([r(2, 'https://r2.example'), r(1)])).toBe(1);
    expect(defaultHome([r(3), r(2, 'https://r2.example')])).toBe(2);
    expect(defaultHome([r(3)])).toBeNull();
  });
});
