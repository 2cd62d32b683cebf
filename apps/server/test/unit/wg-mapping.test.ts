/**
 * WgMapping's write coalescing (the cryptography is packages/relay's): a node's authenticated
 * initiations become at most one reflexive-endpoint write per window, the latest value wins, and
 * a value the node already has (mapper memory) is never written. Real initiations from the test
 * initiator; a fake mapper and fake timers.
 */
import { generateKeyPairSync } from 'node:crypto';
import { responderKey } from '@weft/relay';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildInitiation } from '../../../../test-support/wg-initiator.js';
import { endpointOf, WgMapping } from '../../src/wg-mapping.js';
import type { NodeWithUser } from '../../src/state/index.js';

const INTERVAL = 1000;
const raw = () => new Uint8Array(generateKeyPairSync('x25519').privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16));
const key = responderKey(raw());
const nodePriv = raw();
const silent = { debug: () => {}, warn: () => {} };

describe('WgMapping', () => {
  let writes: [number, string][];
  let row: Partial<NodeWithUser> & { id: number; reflexiveEndpoint: string | null };
  let mapping: WgMapping;
  beforeEach(() => {
    vi.useFakeTimers();
    writes = [];
    row = { id: 7, reflexiveEndpoint: null };
    mapping = new WgMapping({
      key,
      mapper: { nodeByWgKey: () => row as NodeWithUser },
      write: async (id, endpoint) => {
        writes.push([id, endpoint]);
      },
      intervalMs: INTERVAL,
      log: silent,
    });
  });
  afterEach(() => vi.useRealTimers());

  /** A fresh initiation (timestamps must grow) from the node. */
  const initiation = () => {
    vi.advanceTimersByTime(20);
    return buildInitiation(nodePriv, key.publicKey, Date.now());
  };
  const from = (port: number) => ({ address: '198.51.100.7', port });

  it('the first sighting is written at once; a flood from one node is then one trailing write of the latest', async () => {
    mapping.receive(initiation(), from(1000));
    for (let p = 1001; p < 1050; p++) mapping.receive(initiation(), from(p));
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([[7, '198.51.100.7:1000']]);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(writes).toEqual([[7, '198.51.100.7:1000'], [7, '198.51.100.7:1049']]);
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(writes).toHaveLength(2);
    expect(mapping.counters.accepted).toBe(50);
  });

  it('an endpoint the node already has is not written (every ~5 s initiation of a quiet node costs no write)', async () => {
    row.reflexiveEndpoint = '198.51.100.7:1000';
    for (let i = 0; i < 5; i++) mapping.receive(initiation(), from(1000));
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(writes).toEqual([]);
    expect(mapping.activeCount).toBe(0);
  });

  it('a value that returns to the written one within the window is not written again; the entry goes after its window', async () => {
    mapping.receive(initiation(), from(1000));
    mapping.receive(initiation(), from(2000));
    mapping.receive(initiation(), from(1000));
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(writes).toEqual([[7, '198.51.100.7:1000']]);
    expect(mapping.activeCount).toBe(0);
  });

  it('refused initiations write nothing', async () => {
    const replayed = initiation();
    mapping.receive(replayed, from(1000));
    await vi.advanceTimersByTimeAsync(INTERVAL);
    mapping.receive(replayed, from(3000));
    mapping.receive(Buffer.alloc(148), from(3000));
    await vi.advanceTimersByTimeAsync(2 * INTERVAL);
    expect(writes).toEqual([[7, '198.51.100.7:1000']]);
    expect(mapping.counters).toMatchObject({ accepted: 1, replayed: 1, malformed: 1 });
  });

  it('endpointOf: IPv4 on a dual-stack socket, IPv6 in brackets, zone ids refused', () => {
    expect(endpointOf({ address: '::ffff:203.0.113.5', port: 41641 })).toBe('203.0.113.5:41641');
    expect(endpointOf({ address: '2001:db8::1', port: 41641 })).toBe('[2001:db8::1]:41641');
    expect(endpointOf({ address: 'fe80::1%eth0', port: 41641 })).toBeNull();
  });
});
