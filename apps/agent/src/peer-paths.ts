/**
 * Keeps each peer on a path: reads WireGuard's handshakes every PATH_CHECK_INTERVAL_MS, asks
 * `shouldRelay` (path-choice.ts) about every peer that is still direct, and moves the ones it
 * names onto the relay (RelayPath socket + the engine's endpoint override). Peers that leave the
 * netmap are released. Runs while the control session does.
 */
import type { NodePublicKey } from '@weft/crypto';
import type { Peer } from '@weft/protocol';
import type { Engine } from './engine.js';
import type { Logger } from './log.js';
import { shouldRelay } from './path-choice.js';
import type { RelayPath } from './relay-path.js';
import { PATH_CHECK_INTERVAL_MS } from './tunables.js';

export interface PeerPathsOptions {
  engine: () => Engine | undefined;
  peers: () => readonly Peer[];
  relay: RelayPath;
  forced: (peer: Peer) => boolean;
  log: Logger;
}

export class PeerPaths {
  /** Per direct peer: its endpoint as last seen and since when (ms). */
  private readonly since = new Map<string, { endpoint: string | undefined; at: number }>();
  private readonly relayed = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: PeerPathsOptions) {}

  start(): void {
    if (this.timer) return;
    this.opts.relay.start();
    this.timer = setInterval(() => void this.check(), PATH_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops deciding and drops every relayed path (the engine forgets the overrides too). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.opts.relay.stop();
    this.relayed.clear();
    this.since.clear();
    this.opts.engine()?.clearRelayed();
  }

  isRelayed(nodeKey: string): boolean {
    return this.relayed.has(nodeKey);
  }

  /** The relay opened a socket for a peer that relayed to us first: point WireGuard at it too. */
  inbound(nodeKey: NodePublicKey, endpoint: string): void {
    const peer = this.opts.peers().find((p) => p.nodeKey === nodeKey);
    const engine = this.opts.engine();
    if (!peer || !engine) return;
    this.relayed.add(nodeKey);
    void engine.setRelayEndpoint(peer, endpoint).catch((err: Error) => this.opts.log('warn', 'pointing WireGuard at the relay failed', { peer: peer.name, error: err.message }));
  }

  /** One round of decisions (the timer calls this; tests may too). */
  check(now = Date.now()): Promise<void> {
    this.checking ??= this.decide(now).finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async decide(now: number): Promise<void> {
    const engine = this.opts.engine();
    if (!engine?.up) return;
    const peers = this.opts.peers();
    const present = new Set(peers.map((p) => p.nodeKey));
    for (const key of [...this.relayed]) {
      if (!present.has(key)) {
        this.relayed.delete(key);
        this.opts.relay.release(key);
      }
    }
    for (const key of [...this.since.keys()]) if (!present.has(key)) this.since.delete(key);
    let stats;
    try {
      stats = await engine.stats();
    } catch (err) {
      this.opts.log('debug', 'reading handshakes for path choice failed', { error: (err as Error).message });
      return;
    }
    for (const peer of peers) {
      if (this.relayed.has(peer.nodeKey)) continue;
      const endpoint = peer.endpoints[0];
      const seen = this.since.get(peer.nodeKey);
      if (!seen || seen.endpoint !== endpoint) this.since.set(peer.nodeKey, { endpoint, at: now });
      const facts = {
        forced: this.opts.forced(peer),
        sinceMs: now - (this.since.get(peer.nodeKey)!.at),
        lastHandshake: stats.get(peer.nodeKey as NodePublicKey)?.lastHandshake ?? null,
      };
      if (!shouldRelay(facts)) continue;
      this.relayed.add(peer.nodeKey);
      try {
        const local = await this.opts.relay.open(peer.nodeKey as NodePublicKey);
        await engine.setRelayEndpoint(peer, local);
        this.opts.log('info', 'peer moved to the relay', { peer: peer.name, reason: facts.forced ? 'forced by WEFT_RELAY_PEERS' : 'no handshake on its direct endpoint' });
      } catch (err) {
        this.relayed.delete(peer.nodeKey);
        this.opts.log('warn', 'moving a peer to the relay failed', { peer: peer.name, error: (err as Error).message });
      }
    }
  }
}
