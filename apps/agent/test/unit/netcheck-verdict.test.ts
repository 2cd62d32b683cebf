import { describe, expect, it } from 'vitest';
import { median, preferRegion, regionLatencies, verdict, type TargetResult } from '../../src/netcheck-verdict.js';
import { REGION_SWITCH } from '../../src/tunables.js';

const answer = (regionId: number, destination: string, mapped: string, localPort = 41641, rttsMs = [5]): TargetResult => {
  const [address, port] = mapped.split(':');
  return { regionId, stun: destination, destination, family: 4, localPort, mapped: { address: address!, port: Number(port) }, rttsMs, error: null };
};
const silent = (regionId: number, destination: string): TargetResult => ({ regionId, stun: destination, destination, family: 4, localPort: 41641, mapped: null, rttsMs: [], error: 'no STUN Binding response' });

describe('netcheck verdict', () => {
  it('endpoint-independent: one mapping for two destinations, port kept', () => {
    const v = verdict([answer(1, '10.0.0.1:3478', '203.0.113.5:41641'), answer(2, '10.0.0.2:3478', '203.0.113.5:41641')]);
    expect(v).toEqual({ udp: true, ipv4: { address: '203.0.113.5', port: 41641 }, ipv6: null, mappingVariesByDestination: false, portPreserved: true });
  });

  it('endpoint-dependent: a different port per destination (another port of the same server counts)', () => {
    const v = verdict([answer(1, '10.0.0.1:3478', '203.0.113.5:1001'), answer(2, '10.0.0.1:3479', '203.0.113.5:1002')]);
    expect(v.mappingVariesByDestination).toBe(true);
    expect(v.portPreserved).toBe(false);
  });

  it('one destination listed twice says nothing about the mapping', () => {
    const v = verdict([answer(1, '10.0.0.1:3478', '203.0.113.5:41641'), answer(2, '10.0.0.1:3478', '203.0.113.5:41641')]);
    expect(v.mappingVariesByDestination).toBeNull();
  });

  it('nothing answered: UDP no, everything else unknown', () => {
    expect(verdict([silent(1, '10.0.0.1:3478'), silent(2, '10.0.0.2:3478')])).toEqual({ udp: false, ipv4: null, ipv6: null, mappingVariesByDestination: null, portPreserved: null });
  });

  it('region latency is the median over all its answers; silent regions have none', () => {
    const regions = [{ id: 1, code: 'a', name: 'A', stun: [] }, { id: 2, code: 'b', name: 'B', stun: [] }];
    const l = regionLatencies(regions, [answer(1, 'x:1', '1.1.1.1:1', 1, [9, 1, 5]), answer(1, 'y:1', '1.1.1.1:1', 1, [7]), silent(2, 'z:1')]);
    expect(l).toEqual([{ id: 1, latencyMs: 6 }, { id: 2, latencyMs: null }]);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([])).toBeNull();
  });
});

describe('preferRegion (hysteresis)', () => {
  it('with no current region: the lowest latency, ties to the lower id, none when nothing answered', () => {
    expect(preferRegion([{ id: 2, latencyMs: 30 }, { id: 1, latencyMs: 40 }], null)).toBe(2);
    expect(preferRegion([{ id: 2, latencyMs: 30 }, { id: 1, latencyMs: 30 }], null)).toBe(1);
    expect(preferRegion([{ id: 1, latencyMs: null }], null)).toBeNull();
  });

  it(`keeps the current region unless another is better by ${REGION_SWITCH.minGainRatio * 100}% and ${REGION_SWITCH.minGainMs} ms`, () => {
    // 20% better but only 4 ms: stays.
    expect(preferRegion([{ id: 1, latencyMs: 20 }, { id: 2, latencyMs: 16 }], 1)).toBe(1);
    // 10 ms better but only 10%: stays.
    expect(preferRegion([{ id: 1, latencyMs: 100 }, { id: 2, latencyMs: 90 }], 1)).toBe(1);
    // Both margins: switches.
    expect(preferRegion([{ id: 1, latencyMs: 100 }, { id: 2, latencyMs: 80 }], 1)).toBe(2);
    // Near-equal regions alternating in order do not flap.
    let current: number | null = null;
    for (const [a, b] of [[20, 21], [22, 19], [20, 18], [19, 21]] as const) current = preferRegion([{ id: 1, latencyMs: a }, { id: 2, latencyMs: b }], current);
    expect(current).toBe(1);
  });

  it('leaves a current region that stopped answering, and a current id no longer listed', () => {
    expect(preferRegion([{ id: 1, latencyMs: null }, { id: 2, latencyMs: 50 }], 1)).toBe(2);
    expect(preferRegion([{ id: 2, latencyMs: 50 }], 7)).toBe(2);
  });
});
