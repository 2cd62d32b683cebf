/**
 * One relayed pair under PeerPaths for the hole-punching tests (peer-paths-probe,
 * peer-paths-reconnect): the in-memory device, a stand-in relay, peer 2 and a clock the test moves.
 */
import type { NodePublicKey } from '@weft/crypto';
import type { PeerConfig, PeerStats } from '@weft/wg';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { PROBE_KEEPALIVE_S } from '../../src/tunables.js';
import { fakeEngine, peer, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';

export const p2 = peer(2);
/** The peer's one direct candidate (nothing answers it unless a test says so). */
export const candidate = p2.endpoints[0]!;

export async function relayedPair(relay = stubRelay()) {
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  let now = 1_000_000;
  const paths = new PeerPaths({
    engine: () => engine, peers: () => [p2], relay, forced: () => false,
    selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => false,
    log: silentLogger, now: () => now,
  });
  /** WireGuard's counters and last handshake for the peer, as `wg show` would report them. */
  const counters = { rxBytes: 0, txBytes: 0, lastHandshake: null as Date | null };
  device.stats = async (): Promise<PeerStats[]> => [{
    publicKey: p2.nodeKey as NodePublicKey, endpoint: device.peers.get(p2.nodeKey)?.endpoint ?? null, ...counters,
  }];
  /** Each time WireGuard is aimed at the candidate with the probe's keepalive: one probe. */
  const probes: number[] = [];
  /** Called on every peer configuration WireGuard is given. */
  const onAim: ((cfg: PeerConfig) => void)[] = [];
  const upsert = device.upsertPeer.bind(device);
  device.upsertPeer = async (cfg: PeerConfig) => {
    await upsert(cfg);
    if (cfg.endpoint === candidate && cfg.persistentKeepalive === PROBE_KEEPALIVE_S) probes.push(now);
    for (const f of onAim) f(cfg);
  };
  const endpoint = () => device.peers.get(p2.nodeKey)?.endpoint;
  /** Moves the clock in 250 ms checks; `traffic` bytes go both ways each check while the pair is on the relay (a probe holds it). */
  const run = async (ms: number, traffic = 0) => {
    for (let t = 0; t < ms; t += 250) {
      now += 250;
      if (paths.view(p2.nodeKey)?.via === 'relay' && endpoint() === STUB_RELAY_SOCKET) {
        counters.rxBytes += traffic;
        counters.txBytes += traffic;
      }
      await paths.check();
    }
  };
  return { device, paths, counters, probes, onAim, endpoint, run, now: () => now };
}
