/**
 * Keeps each peer on a path (the rules are path-choice.ts's): reads WireGuard's handshakes and
 * counters every PATH_CHECK_INTERVAL_MS; carries a new peer over the relay at once (RelayPath
 * socket + the engine's path override); hole-punches in the pair's slots while the pair is in
 * use; moves a punched peer to its direct endpoint; falls back to the relay when a direct path
 * stops answering. Peers that leave the netmap are released. Runs while the control session does.
 *
 * This class decides only "relay or direct, and when to try": how the relay carries packets is
 * RelayPath's.
 */
import type { NodePublicKey } from '@weft/crypto';
import type { NatVerdict, Peer } from '@weft/protocol';
import type { PeerStats } from '@weft/wg';
import { initiatesTo, type Engine } from './engine.js';
import type { Logger } from './log.js';
import {
  directDead, inSeconds, inUse, natReason, pairOffsetMs, probeCandidates, probeSlot, sessionCurrent, shouldRelay, TrafficWatch,
} from './path-choice.js';
import type { RelayPath } from './relay-path.js';
import {
  DIRECT_DEAD_MS, IN_USE_WINDOW_MS, PATH_CHECK_INTERVAL_MS, PROBE_KEEPALIVE_S, PROBE_WINDOW_MS, RELAY_KICK_MS, RELAY_KICKS, RELAY_UNREACHABLE_GRACE_MS,
  PARK_AFTER_SILENCE_MS, PROBES_WHEN_IDLE, FALLBACK_QUIET_MS, STREAM_PROBE_DEFER_MAX_MS, RELAY_DOWN_DIRECT_MS, REKEY_TIMEOUT_MS,
} from './tunables.js';

/** Why an idle pair that was direct is on the relay now. */
const IDLE_REASON = 'idle: relayed until traffic starts (an idle pair sends nothing), then direct is tried again';
/** Why a peer is tried directly although it has no session: said in `weft status` while it lasts. */
const UNREACHABLE_BY_RELAY = 'the relay cannot reach the peer (not connected to this relay server): trying its direct endpoints';

export interface PeerPathsOptions {
  engine: () => Engine | undefined;
  peers: () => readonly Peer[];
  relay: RelayPath;
  forced: (peer: Peer) => boolean;
  /** This node's key (the one-initiator rule), undefined before the first netmap. */
  selfKey: () => string | undefined;
  /** This node's public IP as the server sees its WireGuard (reflexive endpoint), if known. */
  selfPublicIp: () => string | undefined;
  /**
   * This node's last netcheck verdict (undefined = none yet): with the peer's (`Peer.nat`), why a
   * direct path is unlikely, in words (path-choice.ts `natReason`).
   */
  selfNat?: () => NatVerdict | undefined;
  /** True while punching cannot work from here (UDP blocked): no probes, they would only lose packets. */
  punchingHopeless?: () => boolean;
  log: Logger;
  /** Wall clock (ms); tests may pin it. */
  now?: () => number;
}

type Mode = 'relay' | 'direct' | 'probe';

interface Probe {
  candidates: string[];
  index: number;
  windowEndsAt: number;
  rx0: number;
  startedAt: number;
}

interface PathState {
  mode: Mode;
  /** When the current path (relay or direct) began; a probe keeps the relay's. */
  since: number;
  /** Failed probes in a row (the backoff). */
  failures: number;
  nextProbeAt: number | null;
  probe: Probe | undefined;
  watch: TrafficWatch;
  /** The peer's candidates when last looked at: new ones restart the backoff. */
  candidatesKey: string;
  /** Why the current path is not direct, in words; null when direct. */
  reason: string | null;
  /** When WireGuard was last made to handshake afresh over the relay (no handshake yet). */
  kickedAt: number;
  kicks: number;
  /**
   * No hole punch before this (ms): a pair that just fell back from a dead direct path runs on the
   * relay first, so the probe window's lost packets do not add to the fallback's (0 = none).
   */
  quietUntil: number;
  /**
   * Moved to the relay because it went idle on its direct path: no punching until traffic
   * starts (then at once, in the first 1 s slot), so an idle pair sends nothing.
   */
  parked: boolean;
  /** The direct endpoint a parked pair was on: it goes back there if the relay goes away. */
  parkedFrom?: string;
  /** Since when its due probe has waited for a pause in a stream (unset: it has not). */
  deferredSince?: number;
  /**
   * This host roamed while the relay was down (it reconnects at once): the direct path goes to
   * the relay as soon as the relay is back, whatever the counters say. Replies that arrived just
   * before the move would otherwise count as an answer, and after it WireGuard's sends from the
   * vanished address may not count as sent, so the silence rule alone can miss it for good.
   */
  roamed: boolean;
}

/** What `weft status` shows of a peer's path. */
export interface PathView {
  via: 'relay' | 'direct';
  since: Date;
  reason: string | null;
  /** This host's relay socket for the peer, when it has one. */
  relayEndpoint?: string;
}

export class PeerPaths {
  private readonly states = new Map<string, PathState>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  /** When the relay was first seen not connected (this clock); undefined while it is. */
  private relayDownAt: number | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: PeerPathsOptions) {
    this.now = opts.now ?? Date.now;
  }

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
    this.states.clear();
    this.opts.engine()?.clearRelayed();
    this.opts.engine()?.clearIdle();
  }

  isRelayed(nodeKey: string): boolean {
    const m = this.states.get(nodeKey)?.mode;
    return m === 'relay' || m === 'probe';
  }

  /** Something changed for the better (UDP came back): every relayed peer is punched in its next 1 s slot. */
  retryNow(): void {
    for (const st of this.states.values()) {
      if (st.mode !== 'relay') continue;
      st.failures = 0;
      st.nextProbeAt = null;
    }
  }

  /**
   * This host's addresses changed (roamed): every direct path is presumed dead (the NAT mappings
   * it stood on belong to the old network) and moves to the relay now, to be punched again.
   */
  async networkChanged(): Promise<void> {
    this.opts.relay.reconnectNow();
    const engine = this.opts.engine();
    if (!engine?.up || !this.opts.relay.connected) {
      // Not connected yet (reconnectNow above): the regular checks move them once the relay is back.
      for (const st of this.states.values()) if (st.mode === 'direct') st.roamed = true;
      return;
    }
    for (const peer of this.opts.peers()) {
      const st = this.states.get(peer.nodeKey);
      if (!st || st.mode === 'relay') continue;
      try {
        await this.roamedToRelay(engine, peer, st);
      } catch (err) {
        this.opts.log('warn', 'moving a peer to the relay failed', { peer: peer.name, error: (err as Error).message });
      }
    }
  }

  /** The path as `weft status` shows it; undefined = not decided yet (the netmap endpoint). */
  view(nodeKey: string): PathView | undefined {
    const st = this.states.get(nodeKey);
    if (!st) return undefined;
    const relayEndpoint = this.opts.relay.endpointOf(nodeKey);
    return { via: st.mode === 'direct' ? 'direct' : 'relay', since: new Date(st.since), reason: this.reasonOf(st, this.opts.peers().find((p) => p.nodeKey === nodeKey)), ...(relayEndpoint && { relayEndpoint }) };
  }

  /** The relay opened a socket for a peer that relayed to us first: point WireGuard at it too. */
  inbound(nodeKey: NodePublicKey, endpoint: string): void {
    const peer = this.opts.peers().find((p) => p.nodeKey === nodeKey);
    const engine = this.opts.engine();
    if (!peer || !engine) return;
    const st = this.states.get(nodeKey);
    if (st?.mode === 'probe') return; // held: the probe decides
    if (st && st.mode === 'direct') this.toRelayState(st, 'the peer could not reach this node directly');
    else if (!st) this.states.set(nodeKey, this.fresh('relay', 'relayed at once while a direct path is tried'));
    void engine.setRelayEndpoint(peer, endpoint).then(() => this.opts.relay.deliverEarly(nodeKey), (err: Error) => this.opts.log('warn', 'pointing WireGuard at the relay failed', { peer: peer.name, error: err.message }));
  }

  /** One round of decisions (the timer calls this; tests may too). */
  check(): Promise<void> {
    this.checking ??= this.decide(this.now()).finally(() => (this.checking = undefined));
    return this.checking;
  }

  private fresh(mode: Mode, reason: string | null): PathState {
    // A pair that just appeared is about to be used: in use from now (TrafficWatch).
    return { mode, since: this.now(), failures: 0, nextProbeAt: null, probe: undefined, watch: new TrafficWatch(this.now()), candidatesKey: '', reason, kickedAt: this.now(), kicks: 0, quietUntil: 0, parked: false, roamed: false };
  }

  /** Starts a new path (relay or direct) from scratch: backoff, probe and silence forgotten. */
  private enter(st: PathState, mode: 'relay' | 'direct', reason: string | null): void {
    st.mode = mode;
    st.since = this.now();
    st.failures = 0;
    st.nextProbeAt = null;
    st.probe = undefined;
    st.reason = reason;
    st.parked = false;
    st.roamed = false;
    st.watch.reset();
  }

  /** The one "in use" (path-choice.ts `inUse`): punching and keepalive both follow it. */
  private inUse(st: PathState, now: number): boolean {
    return inUse(st.watch.lastUseAt, now, IN_USE_WINDOW_MS);
  }

  /** Whether the pair carried a stream within the last two checks (path-choice.ts `TrafficWatch.lastStreamAt`). */
  private streaming(st: PathState, now: number): boolean {
    return st.watch.lastStreamAt !== null && now - st.watch.lastStreamAt <= 2 * PATH_CHECK_INTERVAL_MS;
  }

  private toRelayState(st: PathState, reason: string): void {
    this.enter(st, 'relay', reason);
  }

  private reasonOf(st: PathState, peer: Peer | undefined): string | null {
    if (st.mode === 'direct') return st.reason; // shown only while the peer has no direct session (status.ts)
    if (st.mode === 'probe') return `trying a direct path now (hole punch to ${st.probe?.candidates[st.probe.index] ?? '?'})`;
    const parts: string[] = [];
    const nat = natReason(this.opts.selfNat?.(), peer?.nat);
    if (nat) parts.push(nat);
    if (st.reason) parts.push(st.reason);
    if (st.nextProbeAt !== null && st.failures > 0) {
      const idle = !this.inUse(st, this.now());
      const now = this.now();
      if (idle) parts.push('idle: direct is tried again when traffic starts');
      else if (st.deferredSince !== undefined) parts.push(`retrying when the stream pauses (in ${inSeconds(st.deferredSince + STREAM_PROBE_DEFER_MAX_MS - now)} at most)`);
      else parts.push(`retrying in ${inSeconds(st.nextProbeAt - now)}`);
    }
    return parts.join('; ') || null;
  }

  private async decide(now: number): Promise<void> {
    const engine = this.opts.engine();
    if (!engine?.up) return;
    if (this.opts.relay.connected) this.relayDownAt = undefined;
    else this.relayDownAt ??= now;
    const peers = this.opts.peers();
    const present = new Set(peers.map((p) => p.nodeKey));
    for (const key of [...this.states.keys()]) {
      if (!present.has(key)) {
        this.states.delete(key);
        this.opts.relay.release(key);
      }
    }
    let stats: Map<NodePublicKey, PeerStats>;
    try {
      stats = await engine.stats();
    } catch (err) {
      this.opts.log('debug', 'reading handshakes for path choice failed', { error: (err as Error).message });
      return;
    }
    for (const peer of peers) {
      try {
        await this.decidePeer(engine, peer, stats.get(peer.nodeKey as NodePublicKey), now);
        // Keepalive only while the pair is in use: an idle pair costs no packets (the node's own
        // NAT mapping is kept by its responder keepalive and the relay's UDP bind, not by peers).
        const st = this.states.get(peer.nodeKey);
        if (st) await engine.setIdle(peer, !this.inUse(st, now));
      } catch (err) {
        this.opts.log('warn', 'choosing a path for a peer failed', { peer: peer.name, error: (err as Error).message });
      }
    }
  }

  /** This host roamed: the direct path stood on the old network's NAT mappings; relayed now, punched again after the quiet time. */
  private async roamedToRelay(engine: Engine, peer: Peer, st: PathState): Promise<void> {
    await this.moveToRelay(engine, peer, false);
    this.toRelayState(st, 'this node\'s network changed');
    st.quietUntil = this.now() + FALLBACK_QUIET_MS;
    this.opts.log('info', 'peer moved to the relay', { peer: peer.name, reason: 'this node\'s network changed' });
  }

  private async moveToRelay(engine: Engine, peer: Peer, recreate: boolean): Promise<void> {
    const local = await this.opts.relay.open(peer.nodeKey as NodePublicKey);
    // The peer began a handshake over the relay just now (it relayed to us first: `inbound`, or
    // on the socket this node opened for it): WireGuard may have answered it, and its session is
    // the peer's. Removing the peer to start afresh would lose it, and the fresh peer's
    // initiation, sent within 20 ms of the lost one, is one the other side drops as a flood
    // (wireguard-go's HandshakeInitationRate): the pair then waits for a relay kick (1.5 s) or
    // RekeyTimeout (5 s). As the responder, WireGuard has no handshake time to show for it until
    // the peer's first data packet, so the counters alone cannot tell.
    if (recreate && this.peerHandshaking(peer.nodeKey)) recreate = false;
    this.opts.relay.hold(peer.nodeKey, false);
    await engine.setPath(peer, { endpoint: local, relay: true }, { recreate });
    this.opts.relay.deliverEarly(peer.nodeKey);
  }

  /** The relay brought a handshake initiation from the peer less than RekeyTimeout ago. */
  private peerHandshaking(nodeKey: string): boolean {
    const at = this.opts.relay.lastInitiation(nodeKey);
    return at !== undefined && this.now() - at < REKEY_TIMEOUT_MS;
  }

  private async decidePeer(engine: Engine, peer: Peer, s: PeerStats | undefined, now: number): Promise<void> {
    const relay = this.opts.relay;
    const key = peer.nodeKey;
    const selfKey = this.opts.selfKey();
    const initiator = selfKey !== undefined && initiatesTo(selfKey, key);
    let st = this.states.get(key);
    const relayLocal = relay.endpointOf(key);
    const onRelaySocket = s?.endpoint !== undefined && s?.endpoint !== null && s.endpoint === relayLocal;

    if (!st) {
      if (this.opts.forced(peer)) {
        if (!relay.connected) return;
        await this.moveToRelay(engine, peer, !s?.lastHandshake && initiator);
        this.states.set(key, this.fresh('relay', 'relayed: WEFT_RELAY_PEERS forces it'));
        this.opts.log('info', 'peer moved to the relay', { peer: peer.name, reason: 'forced by WEFT_RELAY_PEERS' });
        return;
      }
      if (s?.lastHandshake && s.endpoint && !onRelaySocket) {
        // Already talking directly (the netmap endpoint answered before we looked): keep it.
        const fresh = this.fresh('direct', null);
        fresh.watch.observe(s, now);
        this.states.set(key, fresh);
        return;
      }
      if (!relay.connected) {
        this.states.set(key, this.fresh('direct', 'the relay is not connected'));
        return;
      }
      // Relayed at once; direct is tried once the pair has a session (a probe then only needs keepalives).
      await this.moveToRelay(engine, peer, !s?.lastHandshake && initiator);
      this.states.set(key, this.fresh('relay', 'relayed at once while a direct path is tried'));
      this.opts.log('info', 'peer relayed at once', { peer: peer.name });
      return;
    }

    const moved = s ? st.watch.observe(s, now) : { rx: 0, tx: 0 };
    // The peer's last new handshake over the relay (a restarted daemon's, typically): a session
    // from before it may be one the peer no longer holds (path-choice.ts `sessionCurrent`).
    const newSessionAt = relay.lastInitiation(key) ?? 0;
    const candidates = probeCandidates(peer.endpoints, this.opts.selfPublicIp());
    const candidatesKey = candidates.join(',');
    if (candidatesKey !== st.candidatesKey) {
      // New candidates (the peer roamed, or its reflexive endpoint was learned): start over.
      st.candidatesKey = candidatesKey;
      st.failures = 0;
      if (st.mode === 'relay') st.nextProbeAt = null;
    }
    const offset = selfKey ? pairOffsetMs(selfKey, key) : 0;

    switch (st.mode) {
      case 'direct': {
        if (!relay.connected) return;
        if (st.roamed) {
          await this.roamedToRelay(engine, peer, st);
          return;
        }
        if (onRelaySocket) {
          // The peer's packets now come over the relay (it fell back): WireGuard roamed there.
          await this.moveToRelay(engine, peer, false);
          this.toRelayState(st, 'the peer fell back to the relay');
          st.quietUntil = now + FALLBACK_QUIET_MS;
          this.opts.log('info', 'peer back on the relay', { peer: peer.name, reason: 'the peer fell back' });
          return;
        }
        if (!s?.lastHandshake && !relay.cannotReach(key) && shouldRelay({ forced: false, sinceMs: now - st.since, lastHandshake: null })) {
          await this.moveToRelay(engine, peer, initiator);
          this.toRelayState(st, 'no handshake on its direct endpoint');
          this.opts.log('info', 'peer moved to the relay', { peer: peer.name, reason: 'no handshake on its direct endpoint' });
          return;
        }
        if (directDead(st.watch.unansweredSince, now, DIRECT_DEAD_MS)) {
          relay.udpSuspect();
          await this.moveToRelay(engine, peer, false);
          this.toRelayState(st, 'the direct path stopped answering (NAT mapping gone or the network changed)');
          st.quietUntil = now + FALLBACK_QUIET_MS;
          this.opts.log('info', 'peer moved to the relay', { peer: peer.name, reason: 'direct path stopped answering' });
          return;
        }
        if (!this.inUse(st, now) && st.watch.lastRxAt !== null && now - st.watch.lastRxAt >= PARK_AFTER_SILENCE_MS) {
          // Idle, and the peer went quiet too: keepalive is off (decide), so the NAT mappings this
          // path stands on will lapse and a first packet sent direct could be lost. On the relay it
          // gets through at once, and the pair is punched again as soon as traffic starts.
          await this.moveToRelay(engine, peer, false);
          this.toRelayState(st, IDLE_REASON);
          st.parked = true;
          st.parkedFrom = s?.endpoint ?? undefined;
          this.opts.log('info', 'peer idle: parked on the relay', { peer: peer.name });
        }
        return;
      }
      case 'relay': {
        if (this.opts.forced(peer)) return;
        if (!relay.connected && this.relayDownAt !== undefined && now - this.relayDownAt >= RELAY_DOWN_DIRECT_MS) {
          // The relay went away (server down or restarting): a relayed pair carries nothing now.
          // Back to the direct endpoint that worked when it was parked for idleness, or else the
          // peer's own endpoints: the session goes on there if the peer is reachable, and a pair
          // that is not loses nothing. When the relay is back, a path that does not answer
          // moves back to it (the direct case: no handshake, or a dead direct path).
          const parkedFrom = st.parked ? st.parkedFrom : undefined;
          await engine.setPath(peer, parkedFrom ? { endpoint: parkedFrom, relay: false } : null);
          this.enter(st, 'direct', parkedFrom ? null : 'the relay is not connected: trying the peer directly');
          this.opts.log('info', parkedFrom ? 'parked peer back on its direct endpoint' : 'relayed peer aimed directly', { peer: peer.name, reason: 'the relay is not connected' });
          return;
        }
        // WireGuard roamed off the relay socket: the peer's initiation reached this node directly.
        // The answering side shows no handshake until the peer's first data packet, so until then
        // the pair looks unconnected; recreating the peer (below) would lose the session.
        const reachedDirectly = s?.endpoint != null && !onRelaySocket;
        if (!s?.lastHandshake && relay.cannotReach(key) && now - st.since >= RELAY_UNREACHABLE_GRACE_MS && !reachedDirectly) {
          // The relay cannot carry this pair (the peer is on another replica with no relay mesh,
          // or not connected): a relayed path would never handshake, so aim at the peer directly
          // and stay there until the relay carries something from it. Not at once: a peer that
          // joins together with this node is "not connected" for the moment it takes to dial.
          await engine.setPath(peer, null, { recreate: initiator });
          this.enter(st, 'direct', UNREACHABLE_BY_RELAY);
          this.opts.log('info', 'peer aimed directly', { peer: peer.name, reason: 'the relay cannot reach it' });
          return;
        }
        if (s?.lastHandshake && s.endpoint && !onRelaySocket && relayLocal !== undefined) {
          // WireGuard roamed off the relay socket: the peer's punch reached us directly. Answer at
          // once on that path, so the peer's probe hears back within its window.
          await this.confirmDirect(engine, peer, s.endpoint);
          this.toDirect(st, peer, s.endpoint, 'the peer reached this node directly');
          return;
        }
        if (!s?.lastHandshake && initiator && peer.online && st.kicks < RELAY_KICKS && now - st.kickedAt >= RELAY_KICK_MS && !this.peerHandshaking(key) && !reachedDirectly) {
          // The first initiation over the relay can be lost (the peer's relay socket or interface
          // was not up yet); WireGuard would retry only after RekeyTimeout (5 s). A fresh peer
          // handshakes at once; there is no session to lose. Not while the peer's own handshake
          // is under way, over the relay or directly: that one makes the session.
          st.kickedAt = now;
          st.kicks++;
          await this.moveToRelay(engine, peer, true);
          this.opts.log('debug', 'no handshake over the relay yet: handshaking again', { peer: peer.name });
          return;
        }
        // A session the peer may have forgotten is no session: wait for the one it is making now,
        // over the relay, rather than punch with keepalives it cannot read.
        if (!s || !sessionCurrent(s.lastHandshake, newSessionAt) || candidates.length === 0) return;
        if (this.opts.punchingHopeless?.()) {
          st.nextProbeAt = null;
          return;
        }
        if (now < st.quietUntil) return;
        st.nextProbeAt ??= probeSlot(now, st.failures, offset);
        if (now < st.nextProbeAt) return;
        // An idle pair stops punching only after PROBES_WHEN_IDLE tries: the two sides may learn
        // at different moments that a direct path could work now (a block lifted: each finds out
        // by its own netcheck), and a side that probed alone must still meet the other's slot.
        // A pair parked on the relay because it went idle is not punched until traffic starts.
        if ((st.failures >= PROBES_WHEN_IDLE || st.parked) && !this.inUse(st, now)) {
          st.nextProbeAt = probeSlot(now, st.failures, offset);
          return;
        }
        // Three probes failed and nothing changed since: a stream flowing now would lose more to
        // the next one (its windows aim WireGuard away from the relay) than it is likely to gain.
        // It waits for a pause in the stream, for a while (STREAM_PROBE_DEFER_MAX_MS).
        if (st.failures >= PROBES_WHEN_IDLE && this.streaming(st, now) && now - (st.deferredSince ??= now) < STREAM_PROBE_DEFER_MAX_MS) {
          st.nextProbeAt = probeSlot(now, st.failures, offset);
          return;
        }
        st.deferredSince = undefined;
        st.mode = 'probe';
        st.probe = { candidates, index: 0, windowEndsAt: now + PROBE_WINDOW_MS, rx0: s.rxBytes, startedAt: now };
        relay.hold(key, true);
        await this.aim(engine, peer, candidates[0]!);
        st.probe.rx0 = await this.rxNow(engine, peer, st.probe.rx0);
        this.opts.log('debug', 'hole punch started', { peer: peer.name, candidate: candidates[0], attempt: st.failures + 1 });
        return;
      }
      case 'probe': {
        const probe = st.probe!;
        if (s && s.endpoint && !onRelaySocket && s.rxBytes - probe.rx0 > 0 && moved.rx >= 0) {
          relay.hold(key, false);
          await this.confirmDirect(engine, peer, s.endpoint);
          this.toDirect(st, peer, s.endpoint, `hole punch to ${probe.candidates[probe.index]} succeeded`);
          return;
        }
        if (newSessionAt >= probe.startedAt) {
          // The peer began a new session over the relay mid-probe (RelayPath hands a held pair's
          // handshakes to WireGuard all the same): its data follows there, and the probe's session
          // may be one it forgot. Back to the relay at once (no failure: nothing was learned of the path).
          await this.moveToRelay(engine, peer, false);
          this.toRelayState(st, 'the peer began a new session: a direct path is tried once it is up');
          this.opts.log('info', 'hole punch abandoned', { peer: peer.name, reason: 'the peer began a new session over the relay' });
          return;
        }
        if (now < probe.windowEndsAt) return;
        if (probe.index + 1 < probe.candidates.length) {
          probe.index++;
          probe.windowEndsAt = now + PROBE_WINDOW_MS;
          await this.aim(engine, peer, probe.candidates[probe.index]!);
          probe.rx0 = await this.rxNow(engine, peer, s?.rxBytes ?? probe.rx0);
          return;
        }
        st.failures++;
        await this.moveToRelay(engine, peer, false);
        st.mode = 'relay';
        st.probe = undefined;
        st.nextProbeAt = probeSlot(now, st.failures, offset);
        st.reason = 'hole punch timed out';
        st.watch.reset();
        this.opts.log('info', 'hole punch timed out', { peer: peer.name, failures: st.failures, retryInMs: st.nextProbeAt - now });
        return;
      }
    }
  }

  /**
   * WireGuard's received bytes from `peer` now (`fallback` when it cannot say). A probe counts what
   * arrives from here on: what WireGuard took in before the aim (relayed packets still queued in
   * its socket when the probe began, processed after this check read the counters) is no answer
   * from the candidate. Counted from the check's earlier reading, they made a probe to an endpoint
   * nothing could reach "succeed" in the lab, and the stream sat on a dead direct path until the
   * 2 s dead-path check moved it back.
   */
  private async rxNow(engine: Engine, peer: Peer, fallback: number): Promise<number> {
    try {
      return (await engine.stats()).get(peer.nodeKey as NodePublicKey)?.rxBytes ?? fallback;
    } catch {
      return fallback;
    }
  }

  /** Aims WireGuard at `endpoint` and makes it send at once: keepalive off, then on (wireguard-go sends one when it turns on). */
  private async aim(engine: Engine, peer: Peer, endpoint: string): Promise<void> {
    await engine.setPath(peer, { endpoint, relay: false, keepaliveS: 0 });
    await engine.setPath(peer, { endpoint, relay: false, keepaliveS: PROBE_KEEPALIVE_S });
  }

  /**
   * Settles on `endpoint` as the direct path, sending one keepalive there first: the other side
   * may still be in its probe window, and hears from us only when we send.
   */
  private async confirmDirect(engine: Engine, peer: Peer, endpoint: string): Promise<void> {
    await this.aim(engine, peer, endpoint);
    await engine.setPath(peer, { endpoint, relay: false });
  }

  private toDirect(st: PathState, peer: Peer, endpoint: string, why: string): void {
    this.enter(st, 'direct', null);
    this.opts.log('info', 'peer direct', { peer: peer.name, endpoint, why });
  }
}
