/**
 * Adaptive MTU, the I/O part (the search and hysteresis are pure, in mtu.ts). Every agent runs a
 * small UDP responder on its tunnel IPv4, port MTU_PROBE_PORT, that answers a probe with a short
 * ack; Weft's nft table lets that port in (firewall/render.ts). To find the path MTU to a peer,
 * this agent sends probes of N bytes (inner IPv4 packet size) to the peer's responder through the
 * tunnel and takes the largest N acknowledged. Nothing relies on ICMP: a probe too big for the
 * path is dropped somewhere (DF set by the kernel, or a hop that drops big packets) and simply
 * never acked; each size is tried MTU_PROBE_TRIES times so a lost packet is not taken for a limit.
 *
 * A probe of N bytes can only leave through an interface whose MTU is at least N, and wireguard-go
 * pads the plaintext to a multiple of 16 bytes but never beyond the interface MTU: so each probe
 * of N is sent with the interface MTU set to N (the outer packet is then exactly N + 60 on IPv4,
 * N + 80 on IPv6), and the interface goes back to the chosen MTU when the search is over. Why this
 * and not a fixed maximal interface MTU with per-peer MSS clamping: docs/design.md.
 *
 * When: a peer whose pair has a live session (handshake within DIRECT_HANDSHAKE_WINDOW_S) is
 * probed once when first seen (join), again when its endpoint changes (relay <-> direct, the
 * peer roamed) or this host's addresses change (networkChanged), and every MTU_REPROBE_MS while the pair is in use (more than keepalives moved).
 * Idle pairs are never probed. With --mtu (fixed) the interface is never changed: probes only
 * check that the fixed MTU fits each path (what `weft doctor` judges).
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Peer } from '@weft/protocol';
import { UDP_SEND_HEADER_BYTES } from '@weft/relay';
import type { PeerStats } from '@weft/wg';
import type { Engine } from './engine.js';
import type { Logger } from './log.js';
import { inUse, interfaceMtuFor, MtuHysteresis, MtuSearch, probeCeiling } from './mtu.js';
import {
  DIRECT_HANDSHAKE_WINDOW_S, IN_USE_WINDOW_MS, MTU_CHECK_MS, MTU_FLOOR, MTU_PROBE_FIRST_TIMEOUT_MS, MTU_PROBE_MIN_TIMEOUT_MS, MTU_PROBE_PORT,
  MTU_PROBE_TRIES, MTU_REPROBE_MS, MTU_SETTLE_MS,
} from './tunables.js';

const run = promisify(execFile);
const MAGIC = Buffer.from('WMTU');
const PROBE = 0x50; // 'P'
const ACK = 0x41; // 'A'
/** Inner IPv4 header (20) + UDP header (8): a probe of N bytes carries N - 28 bytes of payload. */
const IP_UDP_HEADERS = 28;
/** What a path is recorded as when it moved during its search: never an endpoint, so it is searched again once its endpoint holds. */
const MOVED = '(moved while probing)';

/** What `weft status` shows of a peer's path MTU. */
export interface PeerMtuView {
  /** Largest inner packet size the path carried at the last probe; null = not measured. */
  pathMtu: number | null;
  measuredAt: Date | null;
}

export interface MtuProberOptions {
  /** false (--mtu given): the interface MTU stays as set; probes only check it fits each path. */
  adaptive: boolean;
  engine: () => Engine | undefined;
  peers: () => readonly Peer[];
  selfIpv4: () => string | undefined;
  log: Logger;
  /** For tests; default `ip link set dev NAME mtu N`. */
  setLink?: (name: string, mtu: number) => Promise<void>;
  /** MTU of the device packets to `ip` leave by; default `ip route get` + /sys/class/net. */
  underlayMtu?: (ip: string) => Promise<number | null>;
  /**
   * How relayed peers' packets leave now: over UDP to `host` (each WireGuard datagram gains the
   * relay's UDP header, UDP_SEND_HEADER_BYTES, inside the same underlay packet), over the
   * WebSocket (TCP segments them: no ceiling from the path), or null (no relay).
   */
  relayTransport?: () => { transport: 'udp'; host: string } | { transport: 'websocket' } | null;
}

interface PeerState {
  pathMtu: number | null;
  measuredAt: number | null;
  /** The WireGuard endpoint when last measured: another one is another path. */
  measuredEndpoint: string | null;
  /** The endpoint at the previous tick: a path is probed only once its endpoint held a tick (not during a hole punch's window). */
  seenEndpoint: string | null;
  lastBytes: number | null;
  lastProbeBytes: number;
  /** Probe and ack bytes this agent added to the pair (counted out of "in use"). */
  probeBytes: number;
  activeAt: number | null;
}

export const ipLinkSetMtu = async (name: string, mtu: number) => {
  await run('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu)], { timeout: 5_000 });
};

export async function deviceMtuToward(ip: string): Promise<number | null> {
  try {
    const out = await run('ip', ['-j', ...(ip.includes(':') ? ['-6'] : []), 'route', 'get', ip], { timeout: 5_000 });
    const dev = (JSON.parse(out.stdout) as Array<{ dev?: string }>)[0]?.dev;
    if (!dev || !/^[A-Za-z0-9_.@-]{1,15}$/.test(dev)) return null;
    return Number((await readFile(`/sys/class/net/${dev}/mtu`, 'utf8')).trim()) || null;
  } catch {
    return null;
  }
}

/**
 * What identifies the path to a peer: WireGuard's endpoint, and for a relayed peer (its endpoint
 * is the local relay socket) the relay's transport too, since UDP and the WebSocket carry
 * different sizes through the same socket.
 */
function pathKey(endpoint: string | null, relayed: boolean, relay: ReturnType<NonNullable<MtuProberOptions['relayTransport']>> | undefined): string | null {
  if (endpoint === null || !relayed || !relay) return endpoint;
  return `${endpoint} via ${relay.transport === 'udp' ? `udp ${relay.host}` : 'websocket'}`;
}

const endpointHost = (e: string) => e.slice(0, e.lastIndexOf(':')).replace(/^\[|\]$/g, '');
const bare = (a: string) => a.split('/')[0]!;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class MtuProber {
  private readonly state = new Map<string, PeerState>();
  private timer: NodeJS.Timeout | undefined;
  private responder: Socket | undefined;
  private prober: Socket | undefined;
  private boundTo: string | undefined;
  private busy = false;
  private stopped = false;
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  private hysteresis: MtuHysteresis | undefined;
  /** Counts networkChanged() calls: a search that spans one measured a path that is gone. */
  private networkGen = 0;

  constructor(private readonly opts: MtuProberOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), MTU_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.closeSockets();
  }

  /**
   * This host's own addresses changed (roaming, another uplink): every path is another one even
   * where the peer's endpoint is the same, so each pair with a session is probed again.
   */
  networkChanged(): void {
    this.networkGen++;
    for (const st of this.state.values()) st.measuredEndpoint = '(network changed)';
  }

  view(nodeKey: string): PeerMtuView {
    const s = this.state.get(nodeKey);
    return { pathMtu: s?.pathMtu ?? null, measuredAt: s?.measuredAt ? new Date(s.measuredAt) : null };
  }

  private closeSockets(): void {
    this.responder?.close();
    this.prober?.close();
    this.responder = undefined;
    this.prober = undefined;
    this.boundTo = undefined;
  }

  /** Responder and probe socket on this node's tunnel IPv4 (again when it changed); false while the address is not there yet. */
  private async bind(ip: string): Promise<boolean> {
    if (this.boundTo === ip && this.responder && this.prober) return true;
    this.closeSockets();
    const open = (port: number, onMessage: (msg: Buffer, rinfo: { address: string; port: number }) => void) => new Promise<Socket>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.on('message', onMessage);
      s.bind(port, ip, () => {
        s.off('error', reject);
        s.on('error', (err) => this.opts.log('debug', 'MTU probe socket error', { error: err.message }));
        resolve(s);
      });
    });
    try {
      this.responder = await open(MTU_PROBE_PORT, (msg, rinfo) => {
        if (msg.length < 9 || !msg.subarray(0, 4).equals(MAGIC) || msg[4] !== PROBE) return;
        // A short ack (never larger than the probe: nothing to amplify), naming the probe and its size.
        const ack = Buffer.alloc(11);
        MAGIC.copy(ack);
        ack[4] = ACK;
        msg.copy(ack, 5, 5, 9);
        ack.writeUInt16BE(Math.min(msg.length + IP_UDP_HEADERS, 0xffff), 9);
        this.responder?.send(ack, rinfo.port, rinfo.address);
      });
      this.prober = await open(0, (msg) => {
        if (msg.length < 9 || !msg.subarray(0, 4).equals(MAGIC) || msg[4] !== ACK) return;
        this.waiting.get(msg.readUInt32BE(5))?.();
      });
      this.boundTo = ip;
      return true;
    } catch (err) {
      this.opts.log('debug', 'MTU probe sockets not bound yet', { ip, error: (err as Error).message });
      this.closeSockets();
      return false;
    }
  }

  /** One probe of `size` bytes (inner IPv4) to `ip`'s responder, up to MTU_PROBE_TRIES times: the round trip (ms) when acked, else null. */
  private async probe(ip: string, size: number, st: PeerState, timeoutMs: number): Promise<number | null> {
    const payload = Buffer.alloc(size - IP_UDP_HEADERS);
    MAGIC.copy(payload);
    payload[4] = PROBE;
    for (let attempt = 0; attempt < MTU_PROBE_TRIES; attempt++) {
      const id = this.nextId++ >>> 0;
      payload.writeUInt32BE(id, 5);
      const sent = Date.now();
      const acked = new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          this.waiting.delete(id);
          resolve(null);
        }, timeoutMs);
        this.waiting.set(id, () => {
          clearTimeout(t);
          this.waiting.delete(id);
          resolve(Date.now() - sent);
        });
      });
      // What WireGuard adds to the pair's counters: the probe and the ack, each with 32 bytes of WireGuard.
      st.probeBytes += size + 32 + 39 + 32;
      this.prober?.send(payload, MTU_PROBE_PORT, ip, (err) => {
        if (err) this.waiting.get(id) && this.opts.log('debug', 'MTU probe not sent', { size, error: err.message });
      });
      const rtt = await acked;
      if (rtt !== null) return rtt;
      if (this.stopped) return null;
    }
    return null;
  }

  /** One check of every peer (start() runs it every MTU_CHECK_MS; tests call it directly). */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    const engine = this.opts.engine();
    const self = this.opts.selfIpv4();
    if (!engine?.up || !self) return;
    this.busy = true;
    try {
      if (!(await this.bind(bare(self)))) return;
      this.hysteresis ??= new MtuHysteresis(engine.mtu);
      const stats = await engine.stats();
      const now = Date.now();
      const peers = this.opts.peers();
      const keys = new Set(peers.map((p) => p.nodeKey));
      for (const k of this.state.keys()) if (!keys.has(k)) this.state.delete(k);
      let candidate: { peer: Peer; st: PeerState; stats: PeerStats } | undefined;
      for (const peer of peers) {
        const s = stats.get(peer.nodeKey as never);
        const st = this.state.get(peer.nodeKey) ?? { pathMtu: null, measuredAt: null, measuredEndpoint: null, seenEndpoint: null, lastBytes: null, lastProbeBytes: 0, probeBytes: 0, activeAt: null };
        this.state.set(peer.nodeKey, st);
        if (!s) continue;
        const bytes = s.rxBytes + s.txBytes;
        if (st.lastBytes !== null && inUse(bytes - st.lastBytes, st.probeBytes - st.lastProbeBytes)) st.activeAt = now;
        st.lastBytes = bytes;
        st.lastProbeBytes = st.probeBytes;
        const path = this.pathOf(engine, peer, s);
        const settled = st.seenEndpoint === path;
        st.seenEndpoint = path;
        // An idle pair (PeerPaths' one "in use", engine.isIdle) is never probed, even when its
        // endpoint changed: parking it on the relay must not cost it packets.
        if (!live(s, now) || !settled || candidate || engine.isIdle(peer.nodeKey)) continue;
        const joined = st.measuredAt === null;
        const pathChanged = st.measuredEndpoint !== path;
        const due = st.activeAt !== null && now - st.activeAt < IN_USE_WINDOW_MS && st.measuredAt !== null && now - st.measuredAt >= MTU_REPROBE_MS;
        if (joined || pathChanged || due) candidate = { peer, st, stats: s };
      }
      if (candidate) await this.search(engine, candidate.peer, candidate.st, candidate.stats);
      // Every path with a live session counts, measured ones only (an unmeasured one is probed next).
      const paths = peers.map((p) => ({ s: stats.get(p.nodeKey as never), st: this.state.get(p.nodeKey) }))
        .filter((x) => x.s && live(x.s, now) && x.st?.pathMtu != null).map((x) => x.st!.pathMtu!);
      const set = this.hysteresis.update(interfaceMtuFor(paths), Date.now());
      if (this.opts.adaptive) await this.setMtu(engine, this.hysteresis.current, set !== null);
    } catch (err) {
      this.opts.log('warn', 'path MTU probing failed', { error: (err as Error).message });
    } finally {
      this.busy = false;
    }
  }

  private async setMtu(engine: Engine, mtu: number, changed: boolean): Promise<void> {
    const before = engine.mtu;
    await engine.setMtu(mtu, this.opts.setLink ?? ipLinkSetMtu);
    if (changed && before !== mtu) this.opts.log('info', 'interface MTU set from the paths in use', { mtu, before });
  }

  private async search(engine: Engine, peer: Peer, st: PeerState, s: PeerStats): Promise<void> {
    const endpoint = this.pathOf(engine, peer, s);
    const gen = { network: this.networkGen, aimed: engine.pathChanges(peer.nodeKey) }; // before the first await: as of the stats `s` came from
    const underlay = await this.underlayOf(engine, peer, s.endpoint ?? null);
    // Fixed MTU: nothing above the interface MTU can be sent, so the search stops there.
    const ceiling = this.opts.adaptive ? probeCeiling(underlay) : Math.max(MTU_FLOOR, Math.min(probeCeiling(underlay), engine.mtu));
    const search = new MtuSearch(ceiling);
    const ip = bare(peer.ipv4);
    const started = Date.now();
    // The floor first, at the interface MTU as it is (never below the floor): is there a responder, and how far is it?
    const rtt = await this.probe(ip, MTU_FLOOR, st, MTU_PROBE_FIRST_TIMEOUT_MS);
    if (rtt === null) {
      if (await this.pathMoved(engine, peer, st, endpoint, gen)) return;
      if (!this.stopped) this.opts.log('debug', 'no answer to the path MTU probe at the floor; path left unmeasured', { peer: peer.name, endpoint });
      st.measuredEndpoint = endpoint; // asked again on the next path change or reprobe, not every tick
      st.measuredAt = Date.now();
      return;
    }
    const timeoutMs = Math.min(MTU_PROBE_FIRST_TIMEOUT_MS, Math.max(MTU_PROBE_MIN_TIMEOUT_MS, 3 * rtt + 200));
    try {
      for (let size = search.next(); size !== null && !this.stopped; size = search.next()) {
        if (this.opts.adaptive && engine.mtu !== size) {
          await engine.setMtu(size, this.opts.setLink ?? ipLinkSetMtu);
          await sleep(MTU_SETTLE_MS);
        }
        search.record(size, (await this.probe(ip, size, st, timeoutMs)) !== null);
      }
    } finally {
      // Back to the MTU every path in use carries (the caller then applies this probe's result).
      if (this.opts.adaptive && this.hysteresis) await engine.setMtu(Math.min(this.hysteresis.current, Math.max(search.result, MTU_FLOOR)) , this.opts.setLink ?? ipLinkSetMtu);
    }
    if (this.stopped || await this.pathMoved(engine, peer, st, endpoint, gen)) return;
    const before = st.pathMtu;
    st.pathMtu = search.result;
    st.measuredAt = Date.now();
    st.measuredEndpoint = endpoint;
    this.opts.log(before === search.result ? 'debug' : 'info', 'path MTU measured', {
      peer: peer.name, pathMtu: search.result, before, endpoint, underlay, probes: search.probed.length, rttMs: rtt, timeoutMs, ms: Date.now() - started,
    });
  }

  private pathOf(engine: Engine, peer: Peer, s: PeerStats | undefined): string | null {
    return pathKey(s?.endpoint ?? null, engine.relayEndpointOf(peer.nodeKey) !== undefined, this.opts.relayTransport?.());
  }

  /**
   * The MTU a path's WireGuard datagrams must fit in: the device toward a direct peer's endpoint;
   * for a relayed peer over UDP, the device toward the relay less the relay's header (else every
   * full-size packet would leave as two IP fragments: 1420 + 32 + 41 + 28 > 1500); over the
   * WebSocket, none (null: the ceiling).
   */
  private async underlayOf(engine: Engine, peer: Peer, endpoint: string | null): Promise<number | null> {
    const underlay = this.opts.underlayMtu ?? deviceMtuToward;
    if (engine.relayEndpointOf(peer.nodeKey) === undefined) return endpoint ? underlay(endpointHost(endpoint)) : null;
    const relay = this.opts.relayTransport?.();
    if (relay?.transport !== 'udp') return null;
    const mtu = await underlay(relay.host);
    return mtu === null ? null : mtu - UDP_SEND_HEADER_BYTES;
  }

  /**
   * Whether the path to `peer` moved while it was being searched: this host's network changed, or
   * WireGuard's endpoint for it is no longer `endpoint` (PeerPaths moved it to or from the relay).
   * The probes then measured some mix of two paths, so nothing is recorded but MOVED, and the
   * next tick at which the endpoint has held searches it again. Without this, a host that moved
   * behind a smaller hop had its search begin on the old direct endpoint and run over the relay:
   * the relay's 1420 was recorded against that endpoint, and when the pair went direct to it
   * again, through the hop, nothing searched it again (a CI failure of e2e/mtu.test.ts). Nor may
   * the peer have been aimed anywhere meanwhile (`Engine.pathChanges`): a hole punch's window, or
   * a relay kick, ends on the endpoint it began from, but the probes sent during it went to a
   * candidate that may not answer, and a search that lost them all recorded the floor, 1280.
   */
  private async pathMoved(engine: Engine, peer: Peer, st: PeerState, endpoint: string | null, gen: { network: number; aimed: number }): Promise<boolean> {
    const now = this.pathOf(engine, peer, (await engine.stats()).get(peer.nodeKey as never));
    if (gen.network === this.networkGen && gen.aimed === engine.pathChanges(peer.nodeKey) && now === endpoint) return false;
    st.measuredEndpoint = MOVED;
    this.opts.log('debug', 'the path moved during its MTU search; searched again once it holds', { peer: peer.name, endpoint, now });
    return true;
  }
}

function live(s: PeerStats, now: number): boolean {
  return s.lastHandshake !== undefined && s.lastHandshake !== null && now - s.lastHandshake.getTime() <= DIRECT_HANDSHAKE_WINDOW_S * 1000;
}
