/**
 * A direct pair whose host roams while its relay connection is being made again (agent.ts
 * `watchLink` reconnects the relay at once, so `networkChanged` usually finds it down). CI saw
 * nat-lab (i) stall 11.5 s: the first check after the move counted replies that had arrived
 * just before it as an answer, and WireGuard's later sends from the vanished address did not
 * count as sent, so the direct path never looked dead and only the peer's own fallback (about
 * 5 s) brought traffic back. The pair must go to the relay as soon as the relay is back.
 */
import { describe, expect, it } from 'vitest';
import { STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';
import { candidate, p2, relayedPair } from './relayed-pair.js';

async function directPair() {
  const relay = stubRelay();
  const pair = await relayedPair(relay);
  pair.counters.lastHandshake = new Date(pair.now());
  expect(pair.endpoint()).toBe(candidate);
  /** One 250 ms check with `rx`/`tx` bytes moved since the last. */
  const step = async (rx: number, tx: number) => {
    pair.counters.rxBytes += rx;
    pair.counters.txBytes += tx;
    await pair.run(250);
  };
  for (let i = 0; i < 4; i++) await step(500, 500); // a ping stream, answered
  expect(pair.paths.view(p2.nodeKey)?.via).toBe('direct');
  return { ...pair, relay, step };
}

describe('a direct pair when this host roams', () => {
  it('goes to the relay once the relay is back, even if replies from before the move arrive after it', async () => {
    const { paths, relay, step, endpoint } = await directPair();
    relay.connected = false; // watchLink's reconnectNow
    await paths.networkChanged();
    await step(500, 0); // replies sent before the move, read in the first check after it
    await step(0, 0); // sends from the old address fail: not counted
    expect(paths.view(p2.nodeKey)?.via).toBe('direct'); // no relay to go to yet
    relay.connected = true;
    await step(0, 0);
    expect(endpoint()).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining('network changed') });
  });

  it('with the relay up, moves at once', async () => {
    const { paths, endpoint } = await directPair();
    await paths.networkChanged();
    expect(endpoint()).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)?.via).toBe('relay');
  });
});
