/**
 * Hole punching of a relayed pair that is in use (issue 9, the relayed stream in bench:relay-lab
 * and bench:relay-profile): a probe aims WireGuard at the candidate and holds what the relay
 * brings, so the tunnel carries nothing for its window. PeerPaths with the in-memory device and a
 * stand-in relay, as in peer-paths-idle.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { candidate, p2, relayedPair } from './relayed-pair.js';

const setup = () => relayedPair();

describe('hole punching a relayed pair in use', () => {
  it('a probe to a candidate nothing reaches times out, even when WireGuard took in relayed packets as the probe began', async () => {
    const { paths, counters, run, probes, onAim } = await setup();
    await run(250);
    counters.lastHandshake = new Date();
    // The first aim at the candidate: relayed packets still queued in WireGuard's socket are
    // processed just then (the lab: 40 ms of a 130 Mbit/s stream), after the check read the counters.
    let once = true;
    onAim.push((cfg) => {
      if (once && cfg.endpoint === candidate) {
        once = false;
        counters.rxBytes += 20 * 1312;
      }
    });
    for (let i = 0; i < 8 && probes.length === 0; i++) await run(250, 100_000); // to the first slot (1 s)
    expect(probes.length).toBe(1);
    await run(250);
    expect(paths.view(p2.nodeKey)?.via).not.toBe('direct');
    await run(1_000); // the probe window: nothing from the candidate
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining('hole punch timed out') });
  });

  it('a pair in use (pings, a shell) whose punches keep failing is probed ever less often: 9 times in 10 minutes', async () => {
    const { counters, run, probes } = await setup();
    await run(250);
    counters.lastHandshake = new Date();
    await run(600_000, 20_000); // 80 KB/s: in use (an interactive session, pings), not a stream
    const gaps = probes.slice(1).map((t, i) => Math.round((t - probes[i]!) / 1000));
    // 1, 5, 10, 30, 60 s slots, then every 120 s (was every 30 s from the fourth: 22 in 10 minutes).
    expect(probes.length).toBe(9);
    expect(Math.min(...gaps.slice(5))).toBeGreaterThanOrEqual(119);
  });

  it('a pair carrying a stream is probed three times, then only once every 5 minutes while the stream flows; the reason says so', async () => {
    const { paths, counters, run, probes } = await setup();
    await run(250);
    counters.lastHandshake = new Date();
    await run(30_000, 100_000); // 400 KB/s each way
    expect(probes).toHaveLength(3);
    expect(paths.view(p2.nodeKey)?.reason).toMatch(/hole punch timed out; retrying when the stream pauses \(in \d+ s at most\)/);
    await run(570_000, 100_000);
    const gaps = probes.slice(1).map((t, i) => Math.round((t - probes[i]!) / 1000));
    expect(probes).toHaveLength(4);
    expect(gaps[2]).toBeGreaterThanOrEqual(300);
  });

  it('a stream that pauses gets its due probe in the next slot', async () => {
    const { counters, run, probes } = await setup();
    await run(250);
    counters.lastHandshake = new Date();
    await run(60_000, 100_000);
    expect(probes).toHaveLength(3);
    await run(130_000, 100);
    expect(probes.length).toBeGreaterThanOrEqual(4);
  });
});
