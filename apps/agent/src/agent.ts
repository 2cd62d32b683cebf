/**
 * The daemon's core: joins (register, interactive login), keeps the control session, feeds
 * netmaps into the engine, persists what a restart needs, and answers status. The local API and
 * the CLI are thin layers over this class.
 */
import { hostname as osHostname, platform, release } from 'node:os';
import { nodeKeyFingerprint } from '@weft/crypto';
import { NetmapMessage, type Peer, type Region, type SelfNode } from '@weft/protocol';
import { AgentError } from './agent-error.js';
import { AgentErrorCode } from './cli/exit-codes.js';
import { controlRequest, logout as logoutFromServer, normaliseServerUrl, register } from './control-client.js';
import { ControlError } from './control-error.js';
import { ControlSession, type Final } from './control-session.js';
import { localEndpoints } from './endpoints.js';
import { Engine, type OpenDevice } from './engine.js';
import type { CommandRunner } from './firewall/exec.js';
import type { WireFilter } from './firewall/filter.js';
import { Firewall, FirewallError } from './firewall/firewall.js';
import type { Logger } from './log.js';
import { Netmap } from './netmap.js';
import { runNetcheck, type NetcheckReport } from './netcheck.js';
import type { NetcheckVerdict } from './netcheck-verdict.js';
import { PeerPaths } from './peer-paths.js';
import { RelayPath } from './relay-path.js';
import { defaultHome, EMBEDDED_REGION_ID, hasRelay, nextHome, NO_HOME, type HomeState } from './home-relay.js';
import { checkPeers, type SkippedPeer } from './server-message.js';
import type { Keys, Phase, StateStore } from './state-store.js';
import { peerStatus, type PathInfo, type Status } from './status.js';
import { LinkReporter } from './link-reporter.js';
import { agentMetrics } from './metrics.js';
import { runChecks, type DoctorReport } from './doctor/checks.js';
import { gather } from './doctor/gather.js';
import { MtuProber } from './mtu-probe.js';
import type { BackendChoice } from '@weft/wg';
import {
  ENDPOINT_REFRESH_MS, LINK_CHECK_MS, LINK_OBSERVE_MS, LOGIN_POLL_MS, NETCHECK_BLOCKED_REFRESH_MS, NETCHECK_FIRST_DELAY_MS, NETCHECK_REFRESH_MS, PERSIST_DEBOUNCE_MS,
  RECONNECT_BACKOFF, RESUME_WAIT_MS,
} from './tunables.js';
import { backoffDelay } from './backoff.js';
import { loadTrust, plainHttpWarning, type Trust } from './tls-trust.js';


export interface AgentOptions {
  store: StateStore;
  openDevice: OpenDevice;
  interfaceName: string;
  backend: BackendChoice;
  listenPort: number;
  mtu: number;
  /** Adaptive MTU (mtu-probe.ts): the interface MTU follows the paths in use; false = `mtu` stays (--mtu). */
  adaptiveMtu?: boolean;
  log: Logger;
  /** Peers carried over the relay whatever their handshakes say (WEFT_RELAY_PEERS); absent = none forced. */
  forceRelay?: (peer: Peer) => boolean;
  /** Handshake age that makes a link with traffic attempted stale (WEFT_STALE_HANDSHAKE_S); default 180 s. */
  staleHandshakeS?: number;
  /** For tests. */
  loginPollMs?: number;
  /** For tests: runs nft and conntrack (default: the real binaries on PATH). */
  firewallRunner?: CommandRunner;
  hostname?: () => string;
}

export interface UpRequest {
  server?: string;
  authKey?: string;
  hostname?: string;
  /** Extra CA (PEM file, absolute path) the https server's certificate is verified against; kept with the server URL. */
  caFile?: string;
}

export type UpEvent =
  | { type: 'login'; url: string; code: string; expiresAt: string; approval?: 'admin'; fingerprint?: string }
  | { type: 'registered'; node: SelfNode };

export interface LogoutResult {
  /** The server deleted the node, or answered that it had no such node. */
  serverNotified: boolean;
  /** Why the server was not told; null when it was. */
  serverError: string | null;
}

interface Waiter { resolve: () => void; reject: (err: Error) => void }

export class Agent {
  private phase: Phase = 'needs-login';
  private serverUrl: string | null = null;
  private caFile: string | null = null;
  private trust: Trust = loadTrust(null);
  private hostname: string | null = null;
  private keys: Keys | undefined;
  private netmap = new Netmap();
  /** The last netmap's packet filter; undefined = none. Deltas do not carry one. */
  private packetFilter: WireFilter | undefined;
  private engine: Engine | undefined;
  private session: ControlSession | undefined;
  private paths: PeerPaths | undefined;
  /** The relayed data path of `paths` (for status: connected, and over which transport). */
  private relayPath: RelayPath | undefined;
  /** Path MTU probing while paths run (mtu-probe.ts). */
  private mtuProber: MtuProber | undefined;
  private online = false;
  private joining = false;
  private login: Status['login'] = null;
  private lastError: Status['lastError'] = null;
  private netmapWaiters: Waiter[] = [];
  private endpointTimer: NodeJS.Timeout | undefined;
  private reapplyTimer: NodeJS.Timeout | undefined;
  private reapplyAttempt = 0;
  private persistTimer: NodeJS.Timeout | undefined;
  private lastEndpoints = '';
  /** Regions of the last netmap (what `weft netcheck` probes); empty until one arrives. */
  private regions: Region[] = [];
  /** The region the last netcheck preferred: kept unless another is clearly better (REGION_SWITCH). */
  private preferredRegion: number | null = null;
  /** The home relay region (home-relay.ts) and the netchecks' hysteresis state. */
  private home: HomeState = NO_HOME;
  /** The last background netcheck's verdict (path reasons, probe gating); undefined = none yet. */
  private lastVerdict: NetcheckVerdict | undefined;
  /** The verdict last sent on this connection (`nat` message, as JSON); '' = none yet. */
  private lastNat = '';
  /** False once the server refused a `nat` message by its type (it predates it). */
  private natReports = true;
  private netcheckTimer: NodeJS.Timeout | undefined;
  /** This host's own addresses when last looked at (roaming watch); undefined = not yet. */
  private linkKey: string | undefined;
  private roamTimer: NodeJS.Timeout | undefined;
  /** Set by shutdown: nothing may open the interface again (a late message or timer). */
  private shutDown = false;
  /** Link stats to the server (`links` messages); null once a server refused them. */
  private linkReporter: LinkReporter | null;
  private linkTimer: NodeJS.Timeout | undefined;
  /** Plain counters for `weft metrics`. */
  readonly counters = { reconnects: 0, netmapsApplied: 0, deltasApplied: 0, controlConnects: 0 };

  constructor(private readonly opts: AgentOptions) {
    this.linkReporter = new LinkReporter({ send: (m) => this.session?.send(m) ?? false, staleAfterS: opts.staleHandshakeS });
  }

  /** Loads state; a node that was running comes back with its last peers and reconnects. */
  async start(): Promise<void> {
    const { store, log } = this.opts;
    await store.init();
    const state = await store.loadState();
    this.phase = state.phase;
    this.serverUrl = state.serverUrl;
    this.caFile = state.caFile;
    try {
      this.trust = loadTrust(this.caFile);
    } catch (err) {
      // The CA file went away: connect anyway, and the certificate error says what to do.
      this.lastError = { code: AgentErrorCode.ServerCertificate, message: (err as Error).message };
      log('error', 'CA file unreadable; verifying the server against the system store only', { caFile: this.caFile, error: (err as Error).message });
    }
    this.hostname = state.hostname;
    if (state.self) {
      const restored = checkPeers(state.peers);
      this.logSkipped('saved state', restored.skipped);
      this.netmap = new Netmap({ self: state.self, peers: restored.peers });
      this.packetFilter = restoredFilter(state.packetFilter);
    }
    log('info', 'daemon state loaded', { phase: this.phase, server: this.serverUrl, peers: state.peers.length });
    if (this.phase === 'running' && this.serverUrl && state.self) {
      await this.ensureKeys();
      await this.resume();
    }
  }

  async shutdown(): Promise<void> {
    this.shutDown = true;
    this.stopSession();
    if (this.persistTimer) await this.persist();
    this.rejectWaiters(new AgentError(AgentErrorCode.Internal, 'daemon is shutting down'));
    await this.engine?.close().catch((err: Error) => this.opts.log('warn', 'closing device failed', { error: err.message }));
  }

  // ---- commands -------------------------------------------------------------------------

  /** `weft up` / `weft login`: join if needed, bring the interface up, wait for a netmap. */
  async up(req: UpRequest, emit: (e: UpEvent) => void, signal: AbortSignal): Promise<void> {
    if (this.joining) throw new AgentError(AgentErrorCode.BadRequest, 'another weft up is already in progress');
    if (this.phase === 'revoked') {
      throw new AgentError(AgentErrorCode.NodeRevoked, 'this node was revoked by an admin (deleted on the server)');
    }
    const requested = req.server ? normaliseServerUrl(req.server) : undefined;
    const registered = this.netmap.self !== undefined && this.phase !== 'needs-login';
    if (registered && requested && this.serverUrl && requested !== this.serverUrl) {
      throw new AgentError(AgentErrorCode.AlreadyRegistered, `this node is registered with ${this.serverUrl}; run weft logout first to join ${requested}`);
    }
    const server = requested ?? this.serverUrl;
    if (!server) throw new AgentError(AgentErrorCode.NotLoggedIn, 'no control server known: weft up needs --server URL the first time');
    if (req.caFile !== undefined) {
      // Read now: a CA file that is missing or holds no certificate is refused before anything changes.
      this.trust = loadTrust(req.caFile);
      if (req.caFile !== this.caFile) {
        this.caFile = req.caFile;
        this.stopSession(); // reconnects below with the new trust
      }
    }
    const warning = plainHttpWarning(server);
    if (warning) this.opts.log('warn', warning);

    this.joining = true;
    this.opts.log('debug', 'up requested', { server, authKey: req.authKey !== undefined });
    try {
      await this.ensureKeys();
      if (!registered || this.phase === 'expired') {
        // wireguard-go starts while the server registers us; a failed join takes it down again.
        const early = this.engine ? undefined : this.engineFor();
        early?.open().catch(() => {}); // an open that fails is retried (and reported) by the first applyFull
        let self: SelfNode;
        try {
          self = await this.register(server, req, emit, signal);
        } catch (err) {
          if (early && this.engine === early) this.engine = undefined;
          await early?.close().catch(() => {});
          throw err;
        }
        emit({ type: 'registered', node: self });
      }
      this.phase = 'running';
      this.lastError = null;
      const saving = this.persist(); // written while the interface comes up
      if (this.session && this.online && this.engine?.up) return await saving; // already up and current
      const hadNetmap = this.netmap.peers.length > 0;
      const fresh = this.waitForNetmap(signal);
      if (!this.session) await this.resume();
      await saving;
      if (hadNetmap && this.engine?.up) {
        // Tunnels are up on the last netmap; do not hang if the server is away.
        await Promise.race([fresh, new Promise<void>((r) => setTimeout(r, RESUME_WAIT_MS).unref())]);
      } else {
        await fresh;
      }
    } finally {
      this.joining = false;
      this.login = null;
    }
  }

  /** `weft down`: leave the control server and take the link down; stays registered. */
  async down(): Promise<void> {
    if (this.phase !== 'running') return;
    this.phase = 'stopped';
    this.stopSession();
    this.rejectWaiters(new AgentError(AgentErrorCode.Internal, 'weft down was called'));
    await this.engine?.down();
    await this.persist();
    this.opts.log('info', 'down');
  }

  /**
   * `weft logout`: the server deletes the node (POST /agent/v1/logout) and this host forgets it.
   * Local state goes even when the server cannot be reached; `serverError` says why it was not told.
   */
  async logout(): Promise<LogoutResult> {
    this.stopSession(); // first, so the server's close for the deleted node does not race the wipe
    this.rejectWaiters(new AgentError(AgentErrorCode.NotLoggedIn, 'logged out'));
    const result = await this.tellServerLogout();
    clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    await this.engine?.close();
    this.engine = undefined;
    await this.opts.store.wipe();
    this.keys = undefined;
    this.netmap = new Netmap();
    this.packetFilter = undefined;
    this.phase = 'needs-login';
    this.serverUrl = null;
    this.caFile = null;
    this.trust = loadTrust(null);
    this.hostname = null;
    this.lastError = null;
    this.opts.log('info', 'logged out: keys and state removed', { ...result });
    return result;
  }

  private async tellServerLogout(): Promise<LogoutResult> {
    const self = this.netmap.self;
    if (!this.serverUrl || !self) return { serverNotified: false, serverError: 'not registered with a control server' };
    try {
      const keys = await this.ensureKeys();
      const deleted = await logoutFromServer(this.serverUrl, keys.machinePrivateKey, this.trust);
      this.opts.log('info', deleted === null ? 'control server no longer knew this node' : 'control server deleted this node', { id: self.id });
      return { serverNotified: true, serverError: null };
    } catch (err) {
      const message = (err as Error).message;
      this.opts.log('warn', 'could not tell the control server about the logout', { error: message });
      return { serverNotified: false, serverError: message };
    }
  }

  /** `weft doctor`: what this host really holds, judged (src/doctor/). */
  async doctor(): Promise<DoctorReport> {
    const status = await this.status();
    const facts = await gather({
      status,
      localNodeKey: this.keys?.nodePublicKey ?? null,
      netmapAllowedIps: Object.fromEntries(this.netmap.peers.map((p) => [p.nodeKey, p.allowedIps])),
      stalePeers: this.linkReporter ? [...this.linkReporter.staleIds] : [],
      staleAfterS: this.linkReporter?.staleAfterS ?? this.opts.staleHandshakeS,
      serverClock: () => this.serverClock(),
    });
    return runChecks(facts);
  }

  /** The server's Date header (GET /healthz) and the round trip, for the clock check. */
  private async serverClock(): Promise<{ date: Date; rttMs: number } | { error: string }> {
    if (!this.serverUrl) return { error: 'no control server configured' };
    const t0 = Date.now();
    try {
      const res = await controlRequest(`${this.serverUrl}/healthz`, { method: 'GET', headers: {}, signal: AbortSignal.timeout(5_000) }, this.trust);
      await res.arrayBuffer();
      const date = res.headers.get('date');
      if (!date) return { error: 'the server sent no Date header' };
      return { date: new Date(date), rttMs: Date.now() - t0 };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** `weft metrics`: the status plus the daemon's counters, as Prometheus series. */
  async metrics(): Promise<ReturnType<typeof agentMetrics>> {
    return agentMetrics(await this.status(), { ...this.counters, linkReports: this.linkReporter?.reports ?? 0 });
  }

  async status(): Promise<Status> {
    const now = new Date();
    let stats = new Map();
    let listenPort: number | null = null;
    try {
      if (this.engine?.up) {
        stats = await this.engine.stats();
        listenPort = (await this.engine.listenPort()) ?? null;
      }
    } catch (err) {
      this.opts.log('warn', 'reading WireGuard stats failed', { error: (err as Error).message });
    }
    const self = this.netmap.self;
    const startingUp = this.joining || (this.phase === 'running' && !this.engine?.up);
    return {
      version: 1,
      state: this.login ? 'needs-login' : startingUp && this.phase !== 'revoked' && this.phase !== 'expired' ? 'starting' : this.phase,
      online: this.online,
      server: this.serverUrl,
      controlChannel: {
        scheme: this.serverUrl ? (this.serverUrl.startsWith('https:') ? 'https' : 'http') : null,
        caFile: this.caFile,
        warning: plainHttpWarning(this.serverUrl),
      },
      self: self ? { ...self, machineKey: this.keys?.machinePublicKey ?? null } : null,
      interface: {
        name: this.engine?.deviceInfo?.name ?? this.opts.interfaceName,
        backend: this.engine?.deviceInfo?.backend ?? null,
        up: this.engine?.up ?? false,
        listenPort,
        mtu: this.engine?.mtu ?? this.opts.mtu,
        mtuMode: this.opts.adaptiveMtu ? 'adaptive' : 'fixed',
      },
      login: this.login,
      lastError: this.lastError,
      firewall: this.engine?.firewallStatus ?? { state: 'off', rules: 0, skippedRules: [], error: null },
      ...(this.relayPath ? { relay: { connected: this.relayPath.connected, transport: this.relayPath.transport, region: this.relayRegion() } } : {}),
      peers: this.phase === 'revoked' ? [] : this.netmap.peers.map((p) => ({
        ...peerStatus(p, stats.get(p.nodeKey), now, this.engine?.relayEndpointOf(p.nodeKey), this.pathInfo(p.nodeKey)),
        pathMtu: this.mtuProber?.view(p.nodeKey).pathMtu ?? null,
      })),
      skippedPeers: this.phase === 'revoked' ? [] : this.netmap.skipped,
    };
  }

  /** `weft netcheck`: probes the netmap's STUN servers from this host. */
  async netcheck(): Promise<NetcheckReport> {
    if (!this.netmap.self) throw new AgentError(AgentErrorCode.NotLoggedIn, 'this node has not joined a mesh yet');
    const withStun = this.regions.filter((r) => r.stun.length > 0);
    if (withStun.length === 0) {
      throw new AgentError(AgentErrorCode.NoRegions, this.online ? 'the control server lists no STUN server (STUN off and no regions configured)' : 'no netmap with regions yet: the control server is not connected');
    }
    const report = await runNetcheck(withStun, { current: this.preferredRegion });
    if (report.preferredRegion !== null) this.preferredRegion = report.preferredRegion;
    this.chooseHome(report);
    return { ...report, homeRegion: this.homeRegion() };
  }

  // ---- joining --------------------------------------------------------------------------

  private async register(server: string, req: UpRequest, emit: (e: UpEvent) => void, signal: AbortSignal): Promise<SelfNode> {
    const hostname = req.hostname ?? this.hostname ?? reportableHostname((this.opts.hostname ?? osHostname)());
    const body = { nodeKey: this.keys!.nodePublicKey, hostname, os: reportableOs(), ...(req.authKey && { authKey: req.authKey }) };
    let lastCode: string | undefined;
    for (;;) {
      if (signal.aborted) throw new AgentError(AgentErrorCode.Internal, 'weft up was cancelled');
      let res;
      try {
        res = await register(server, this.keys!.machinePrivateKey, body, this.trust, signal);
      } catch (err) {
        if (signal.aborted) throw new AgentError(AgentErrorCode.Internal, 'weft up was cancelled');
        throw this.translate(err);
      }
      if (res.status === 'registered') {
        this.serverUrl = server;
        this.hostname = hostname;
        this.login = null;
        this.netmap = new Netmap({ self: res.node, peers: this.netmap.self?.id === res.node.id ? this.netmap.peers : [] });
        this.opts.log('info', 'registered', { node: res.node.name, ipv4: res.node.ipv4, ipv6: res.node.ipv6 });
        return res.node;
      }
      // The person compares this with the approval page's; an admin's approval has no page to compare.
      const fingerprint = res.approval ? {} : { fingerprint: nodeKeyFingerprint(this.keys!.nodePublicKey) };
      this.login = { url: res.loginUrl, code: res.code, expiresAt: res.expiresAt, ...(res.approval ? { approval: res.approval } : {}), ...fingerprint };
      const shown = `${res.approval ?? 'person'}:${res.code}`;
      if (shown !== lastCode) {
        lastCode = shown;
        this.opts.log('info', res.approval === 'admin' ? 'waiting for an admin to approve this device' : 'waiting for login approval', { url: res.loginUrl, code: res.code });
        emit({ type: 'login', ...this.login });
      }
      await sleep(this.opts.loginPollMs ?? LOGIN_POLL_MS, signal);
    }
  }

  private translate(err: unknown): Error {
    if (err instanceof ControlError) {
      const code = err.code === 'node_deleted' ? AgentErrorCode.NodeRevoked : err.code;
      this.lastError = { code, message: err.message };
      return new AgentError(code, err.message, { cause: err });
    }
    return err as Error;
  }

  // ---- control session ------------------------------------------------------------------

  private startSession(): void {
    if (this.session || !this.serverUrl || !this.keys) return;
    const log = this.opts.log;
    this.netmap.resetConnection();
    this.session = new ControlSession({
      serverUrl: this.serverUrl,
      machineKey: this.keys.machinePrivateKey,
      trust: this.trust,
      log,
      heldRevision: () => this.netmap.revision,
      heldEndpoints: () => this.netmap.endpointsRevision,
      events: {
        onOpen: () => {
          if (this.lastError?.code === AgentErrorCode.ServerCertificate) this.lastError = null;
          this.netmap.resetConnection();
          this.lastEndpoints = '';
          this.lastNat = '';
          this.linkReporter?.reset();
          this.counters.controlConnects++;
        },
        onMessage: (msg, skipped) => void this.onServerMessage(msg, skipped),
        onDisconnect: (reason, retryInMs) => {
          if (this.online) log('warn', 'control connection lost; tunnels keep running on the last netmap', { reason });
          this.online = false;
          this.counters.reconnects++;
          // A server that predates `links` refuses the message by its type ("type: Invalid
          // discriminator value. Expected 'endpoints' | 'resync'"): stop sending them.
          // The same for `nat` (newer than `links`): blamed first when this connection sent one.
          if (reason.startsWith('closed 4400 type: Invalid discriminator')) {
            if (this.natReports && this.lastNat !== '') {
              this.natReports = false;
              log('warn', 'the control server does not take netcheck reports; not sending them', { reason });
            } else if (this.linkReporter) {
              this.linkReporter = null;
              log('warn', 'the control server does not take link reports; not sending them', { reason });
            }
          }
          log('info', 'reconnecting to control server', { reason, retryInMs });
        },
        onCertificateError: (message, hint) => {
          this.lastError = { code: AgentErrorCode.ServerCertificate, message: `${message}. ${hint}` };
        },
        onFinal: (final, reason) => void this.onFinal(final, reason).catch((err: Error) => log('error', 'handling the end of the control session failed', { error: err.message })),
      },
    });
    this.session.start();
    this.startPaths();
    this.endpointTimer = setInterval(() => void this.reportEndpoints(), ENDPOINT_REFRESH_MS);
    this.endpointTimer.unref();
    clearInterval(this.linkTimer);
    this.linkTimer = setInterval(() => void this.reportLinks(), LINK_OBSERVE_MS);
    this.linkTimer.unref();
  }

  /** Feeds the link reporter the peers as `weft status` shows them; it decides what to send. */
  private async reportLinks(): Promise<void> {
    if (!this.online || !this.linkReporter || !this.engine?.up) return;
    try {
      const st = await this.status();
      this.linkReporter?.observe(st.peers);
    } catch (err) {
      this.opts.log('debug', 'link report skipped', { error: (err as Error).message });
    }
  }

  /**
   * Background netcheck while paths run: what this node's network does to UDP says why a peer is
   * relayed, and whether hole punching can work at all. Every NETCHECK_REFRESH_MS, and every
   * NETCHECK_BLOCKED_REFRESH_MS while UDP is blocked, so a block lifted is noticed within seconds;
   * when UDP comes back, relayed peers are punched at once.
   */
  private scheduleNetcheck(delayMs: number): void {
    clearTimeout(this.netcheckTimer);
    this.netcheckTimer = setTimeout(() => void this.backgroundNetcheck(), delayMs);
    this.netcheckTimer.unref();
  }

  private async backgroundNetcheck(): Promise<void> {
    if (!this.paths) return;
    const withStun = this.regions.filter((r) => r.stun.length > 0);
    if (withStun.length > 0) {
      try {
        const report = await runNetcheck(withStun, { current: this.preferredRegion });
        this.chooseHome(report);
        const wasBlocked = this.lastVerdict?.udp === false;
        this.lastVerdict = report;
        this.reportNat();
        if (wasBlocked && report.udp) {
          this.opts.log('info', 'UDP works again: punching relayed peers now');
          this.paths?.retryNow();
        }
      } catch (err) {
        this.opts.log('debug', 'background netcheck failed', { error: (err as Error).message });
      }
    }
    if (!this.paths) return;
    if (withStun.length === 0) this.scheduleNetcheck(NETCHECK_FIRST_DELAY_MS); // no netmap (regions) yet
    else this.scheduleNetcheck(this.lastVerdict?.udp === false ? NETCHECK_BLOCKED_REFRESH_MS : NETCHECK_REFRESH_MS);
  }

  /**
   * Roaming: this host's own IPv4 addresses, every LINK_CHECK_MS. When they change, the control
   * and relay connections are made again at once (they may be bound to an address that is gone),
   * direct peers go to the relay, the server's responders get a fresh initiation (so the server
   * learns the new public mapping), and the endpoints and netcheck are redone.
   */
  private async watchLink(): Promise<void> {
    const key = localEndpoints(0, { interfaceName: this.engine?.deviceInfo?.name ?? this.opts.interfaceName, addresses: this.netmap.self ? [this.netmap.self.ipv4] : [] }).join(',');
    const before = this.linkKey;
    this.linkKey = key;
    if (before === undefined || before === key || !this.paths) return;
    this.opts.log('info', 'this host\'s addresses changed: reconnecting and re-punching', { before, now: key });
    this.session?.reconnectNow('local addresses changed');
    this.mtuProber?.networkChanged();
    await this.paths.networkChanged();
    await this.engine?.refreshResponders().catch((err: Error) => this.opts.log('warn', 're-adding the responders failed', { error: err.message }));
    this.lastVerdict = undefined;
    this.scheduleNetcheck(NETCHECK_FIRST_DELAY_MS);
  }


  /** What peer-paths says of a peer's path, with the relay region's code. */
  private pathInfo(nodeKey: string): PathInfo | undefined {
    const v = this.paths?.view(nodeKey);
    return v && { ...v, region: this.relayRegion() };
  }

  /**
   * The region whose relay carries relayed peers: the home region, else (none chosen yet) the
   * control server's own (the embedded region, else the netmap's first region, else "server").
   */
  private relayRegion(): string {
    return this.homeRegion()?.code ?? this.regions.find((r) => r.id === EMBEDDED_REGION_ID)?.code ?? this.regions[0]?.code ?? 'server';
  }

  private homeRegion(): { id: number; code: string } | null {
    const r = this.regions.find((g) => g.id === this.home.home && hasRelay(g));
    return r ? { id: r.id, code: r.code } : null;
  }

  /**
   * The home relay after a netcheck: by latency among regions with a relay, with hysteresis
   * (home-relay.ts); a change moves the relay session to the new region's relay at once.
   */
  private chooseHome(report: NetcheckReport): void {
    const relayed = new Set(this.regions.filter(hasRelay).map((r) => r.id));
    if (this.home.home !== null && !relayed.has(this.home.home)) this.home = { home: defaultHome(this.regions), challenger: null };
    const before = this.home.home;
    this.home = nextHome(this.home, report.regions.filter((g) => relayed.has(g.id)).map((g) => ({ id: g.id, latencyMs: g.latencyMs })));
    if (this.home.home !== before) this.applyHome();
  }

  /** Points the relay session at the home region's relay (the control server's for the embedded region). */
  private applyHome(): void {
    const region = this.regions.find((g) => g.id === this.home.home);
    const url = !region || region.id === EMBEDDED_REGION_ID ? this.serverUrl : region.relayUrl;
    if (!url || !this.relayPath) return;
    this.opts.log('info', 'home relay', { region: region?.code ?? 'server', url });
    this.relayPath.retarget(url);
  }

  /** Path choice and the relayed data path run while the control session does. */
  private startPaths(): void {
    if (this.paths || !this.serverUrl || !this.keys) return;
    const relay = new RelayPath({
      serverUrl: this.serverUrl,
      machineKey: this.keys.machinePrivateKey,
      log: this.opts.log,
      wireguardPort: async () => (this.engine?.up ? this.engine.listenPort() : undefined),
      acceptFrom: (nodeKey) => this.netmap.peers.some((p) => p.nodeKey === nodeKey),
      onInbound: (nodeKey, endpoint) => this.paths?.inbound(nodeKey, endpoint),
    });
    this.relayPath = relay;
    this.applyHome();
    this.paths = new PeerPaths({
      engine: () => this.engine,
      peers: () => this.netmap.peers,
      relay,
      forced: this.opts.forceRelay ?? (() => false),
      selfKey: () => this.netmap.self?.nodeKey,
      selfPublicIp: () => {
        const e = this.netmap.self?.reflexiveEndpoint;
        return e ? e.slice(0, e.lastIndexOf(':')).replace(/^\[|\]$/g, '') : undefined;
      },
      selfNat: () => this.lastVerdict,
      punchingHopeless: () => this.lastVerdict?.udp === false,
      log: this.opts.log,
    });
    this.paths.start();
    this.mtuProber = new MtuProber({
      adaptive: this.opts.adaptiveMtu === true,
      engine: () => this.engine,
      peers: () => this.netmap.peers,
      selfIpv4: () => this.netmap.self?.ipv4,
      relayTransport: () => this.relayPath?.route ?? null,
      log: this.opts.log,
    });
    this.mtuProber.start();
    this.scheduleNetcheck(NETCHECK_FIRST_DELAY_MS);
    this.linkKey = undefined;
    this.roamTimer = setInterval(() => void this.watchLink(), LINK_CHECK_MS);
    this.roamTimer.unref();
  }

  private stopPaths(): void {
    clearTimeout(this.netcheckTimer);
    this.netcheckTimer = undefined;
    clearInterval(this.roamTimer);
    this.roamTimer = undefined;
    this.paths?.stop();
    this.paths = undefined;
    this.relayPath = undefined;
    this.mtuProber?.stop();
    this.mtuProber = undefined;
  }

  private stopSession(): void {
    clearTimeout(this.reapplyTimer);
    this.reapplyTimer = undefined;
    this.stopPaths();
    this.session?.stop();
    this.session = undefined;
    clearInterval(this.endpointTimer);
    clearInterval(this.linkTimer);
    this.online = false;
  }

  private async onServerMessage(msg: Parameters<Netmap['apply']>[0], skipped: SkippedPeer[] = []): Promise<void> {
    const change = this.netmap.apply(msg, skipped);
    if (change.kind === 'full' && msg.type !== 'delta') this.regions = msg.regions ?? [];
    if (change.kind === 'full' || change.kind === 'delta') this.logSkipped(change.kind === 'full' ? 'netmap' : `delta ${msg.seq}`, change.skipped);
    try {
      switch (change.kind) {
        case 'resync':
          this.opts.log('warn', 'asking for a full netmap', { reason: change.reason });
          this.session?.send({ type: 'resync' });
          return;
        case 'ignored':
          return;
        case 'full':
          if (this.phase !== 'running') return;
          this.opts.log('debug', 'netmap received', { peers: change.peers.length });
          // A resume carries the filter as a netmap does (absent = allow all).
          if (msg.type !== 'delta') this.packetFilter = msg.packetFilter;
          const firewallError = await this.engineFor().applyFull(change.self, change.peers, this.packetFilter, change.responders).then(
            () => undefined,
            (err: Error) => {
              if (err instanceof FirewallError) return err;
              throw err;
            },
          );
          this.online = true;
          this.counters.netmapsApplied++;
          this.lastError = null;
          this.session?.markHealthy();
          await this.persist();
          if (firewallError) this.firewallFailed(firewallError);
          else this.resolveWaiters();
          await this.reportEndpoints();
          this.reportNat();
          return;
        case 'delta': {
          if (this.phase !== 'running') return;
          // A policy change: the delta's filter is the one in force from now on (reapply, restart).
          if (change.packetFilter !== undefined) this.packetFilter = change.packetFilter ?? undefined;
          const firewallError = await this.engineFor().applyChange(change, this.netmap.self!).then(
            () => undefined,
            (err: Error) => {
              if (err instanceof FirewallError) return err;
              throw err;
            },
          );
          this.counters.deltasApplied++;
          this.persistSoon();
          if (firewallError) this.firewallFailed(firewallError);
          return;
        }
      }
    } catch (err) {
      const message = `programming WireGuard failed: ${(err as Error).message}`;
      this.opts.log('error', message);
      this.lastError = { code: AgentErrorCode.DeviceError, message };
      this.rejectWaiters(new AgentError(AgentErrorCode.DeviceError, message));
      this.scheduleReapply();
    }
  }

  /**
   * The packet filter could not be put in force: said in `weft status`, tried again with the
   * rest of the netmap. `weft up` fails only when no peer could be configured because of it.
   */
  private firewallFailed(err: FirewallError): void {
    this.opts.log('error', err.message);
    this.lastError = { code: AgentErrorCode.FirewallError, message: err.message };
    if (this.engine?.firewallStatus?.state === 'blocked') this.rejectWaiters(new AgentError(AgentErrorCode.FirewallError, err.message));
    else this.resolveWaiters();
    this.scheduleReapply();
  }

  /**
   * WireGuard could not be programmed (device busy, wireguard-go missing...): try the whole
   * current netmap again with backoff, so a transient failure does not leave the node half-up
   * until the next reconnect.
   */
  private scheduleReapply(): void {
    // A netmap whose programming failed while the daemon shut down must not retry afterwards.
    if (this.reapplyTimer || this.shutDown) return;
    const delay = backoffDelay(this.reapplyAttempt++, { baseMs: 1000, capMs: RECONNECT_BACKOFF.capMs }) + 500;
    this.reapplyTimer = setTimeout(() => {
      this.reapplyTimer = undefined;
      const self = this.netmap.self;
      if (this.phase !== 'running' || !self || this.shutDown) return;
      this.engineFor().applyFull(self, this.netmap.peers, this.packetFilter, this.netmap.responders).then(() => {
        this.reapplyAttempt = 0;
        this.lastError = null;
        this.opts.log('info', 'WireGuard programmed after an earlier failure', { peers: this.netmap.peers.length });
        if (this.session?.connected) {
          this.online = true;
          this.resolveWaiters();
        }
      }, (err: Error) => {
        this.opts.log('warn', err instanceof FirewallError ? 'the packet filter failed again' : 'programming WireGuard failed again', { error: err.message });
        if (err instanceof FirewallError) this.lastError = { code: AgentErrorCode.FirewallError, message: err.message };
        this.scheduleReapply();
      });
    }, delay);
    this.reapplyTimer.unref();
  }

  private async onFinal(final: Final, reason: string): Promise<void> {
    const log = this.opts.log;
    this.session = undefined;
    this.online = false;
    clearInterval(this.endpointTimer);
    clearInterval(this.linkTimer);
    this.stopPaths();
    if (final === 'upgrade-required') {
      this.lastError = { code: 'upgrade_required', message: `control server requires a newer weft (${reason})` };
      log('error', this.lastError.message);
      this.rejectWaiters(new AgentError('upgrade_required', this.lastError.message));
      return;
    }
    this.phase = final;
    const err = final === 'revoked'
      ? new AgentError(AgentErrorCode.NodeRevoked, `this node was revoked by an admin (${reason})`)
      : new AgentError(AgentErrorCode.NodeExpired, `this node's key expired (${reason})`);
    this.lastError = { code: err.code, message: err.message };
    log('error', err.message, { final });
    this.rejectWaiters(err);
    await this.engine?.close().catch((e: Error) => log('warn', 'removing interface failed', { error: e.message }));
    this.engine = undefined;
    if (final === 'revoked') this.netmap = new Netmap(this.netmap.self && { self: this.netmap.self, peers: [] });
    await this.persist();
  }

  /**
   * Tells the server this node's netcheck verdict (peers' `weft status` reasons say "peer too"):
   * after each connection's netmap and whenever a netcheck changes it; nothing before the first.
   */
  private reportNat(): void {
    const v = this.lastVerdict;
    if (!v || !this.natReports || !this.online) return;
    const nat = { udp: v.udp, mappingVariesByDestination: v.mappingVariesByDestination };
    const key = JSON.stringify(nat);
    if (key === this.lastNat) return;
    if (this.session?.send({ type: 'nat', nat })) {
      this.lastNat = key;
      this.opts.log('info', 'reported netcheck verdict', nat);
    }
  }

  private async reportEndpoints(): Promise<void> {
    if (!this.online || !this.engine?.up) return;
    const port = await this.engine.listenPort();
    if (!port) return;
    const self = this.netmap.self;
    const endpoints = localEndpoints(port, {
      interfaceName: this.engine.deviceInfo?.name ?? this.opts.interfaceName,
      addresses: self ? [self.ipv4] : [],
    });
    const key = endpoints.join(',');
    if (key === this.lastEndpoints) return;
    if (this.session?.send({ type: 'endpoints', endpoints })) {
      this.lastEndpoints = key;
      this.opts.log('info', 'reported endpoints', { endpoints });
    }
  }

  // ---- helpers --------------------------------------------------------------------------

  /** One warning per malformed peer entry: the rest of the message was applied without it. */
  private logSkipped(from: string, skipped: SkippedPeer[]): void {
    for (const s of skipped) {
      this.opts.log('warn', `skipped peer ${s.id ?? '?'}: ${s.reason}`, { from, id: s.id, reason: s.reason });
    }
  }

  private async ensureKeys(): Promise<Keys> {
    this.keys ??= await this.opts.store.loadOrCreateKeys();
    return this.keys;
  }

  private engineFor(): Engine {
    if (this.shutDown) throw new AgentError(AgentErrorCode.Internal, 'daemon is shutting down');
    this.engine ??= new Engine({
      openDevice: this.opts.openDevice,
      interfaceName: this.opts.interfaceName,
      backend: this.opts.backend,
      privateKey: this.keys!.nodePrivateKey,
      listenPort: this.opts.listenPort,
      mtu: this.opts.mtu,
      log: this.opts.log,
      firewall: new Firewall({ interfaceName: this.opts.interfaceName, log: this.opts.log, run: this.opts.firewallRunner }),
    });
    return this.engine;
  }

  /**
   * Interface up on the last netmap and the control connection opening, at the same time: the
   * engine queue applies the server's netmap after the restored one whatever arrives first.
   * Without last peers (a fresh join) only the device is opened: addresses with no peer behind
   * them would blackhole the first packets, so the server's netmap configures the interface.
   */
  private async resume(): Promise<void> {
    if (this.netmap.peers.length === 0) {
      this.engineFor().open().catch(() => {}); // a failure is retried and reported by the netmap's applyFull
      this.startSession();
      return;
    }
    const restoring = this.applyLastNetmap();
    this.startSession();
    await restoring;
  }

  /** Interface up on the persisted netmap, before the server has said anything. */
  private async applyLastNetmap(): Promise<void> {
    const self = this.netmap.self;
    const engine = this.engineFor();
    if (!self) return;
    const peers = this.netmap.peers;
    try {
      await engine.applyFull(self, peers, this.packetFilter, this.netmap.responders);
      this.opts.log('info', 'restored last netmap', { peers: peers.length });
    } catch (err) {
      const firewall = err instanceof FirewallError;
      const message = firewall ? (err as Error).message : `bringing the interface up failed: ${(err as Error).message}`;
      this.lastError = { code: firewall ? AgentErrorCode.FirewallError : AgentErrorCode.DeviceError, message };
      this.opts.log('error', message);
      this.scheduleReapply();
    }
  }

  private waitForNetmap(signal: AbortSignal): Promise<void> {
    this.engineFor();
    const waiting = new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.netmapWaiters.push(waiter);
      signal.addEventListener('abort', () => {
        this.netmapWaiters = this.netmapWaiters.filter((w) => w !== waiter);
        reject(new AgentError(AgentErrorCode.Internal, 'weft up was cancelled'));
      }, { once: true });
    });
    // `up` may stop waiting (resume timeout) before this settles; a later rejection is not an error.
    waiting.catch(() => {});
    return waiting;
  }

  private resolveWaiters(): void {
    const waiters = this.netmapWaiters;
    this.netmapWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.netmapWaiters;
    this.netmapWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /**
   * Deltas can come in bursts; the last netmap on disk only has to be recent, not exact (a
   * restart resyncs anyway), so they are saved at most once per PERSIST_DEBOUNCE_MS.
   */
  private persistSoon(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.persist().catch((err: Error) => this.opts.log('warn', 'saving state failed', { error: err.message }));
    }, PERSIST_DEBOUNCE_MS);
  }

  private persist(): Promise<void> {
    clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    const self = this.netmap.self ?? null;
    return this.opts.store.saveState({
      phase: this.phase,
      serverUrl: this.serverUrl,
      caFile: this.caFile,
      hostname: this.hostname,
      self,
      peers: this.netmap.peers as Peer[],
      ...(this.packetFilter && { packetFilter: this.packetFilter }),
    });
  }
}

/**
 * A filter read back from state.json is checked like one from the wire; one that does not parse
 * becomes an empty filter (nothing allowed in) rather than none (everything allowed).
 */
function restoredFilter(saved: unknown): WireFilter | undefined {
  if (saved === undefined) return undefined;
  const r = NetmapMessage.shape.packetFilter.safeParse(saved);
  return r.success ? r.data : [];
}

/** The OS hostname in the shape RegisterRequest accepts (printable ASCII, 1-253); the server sanitises further. */
export function reportableHostname(raw: string): string {
  return raw.replace(/[^\x20-\x7e]/g, '-').slice(0, 253) || 'weft-node';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/** The OS as the approval page shows it ("linux 6.1.0-18-amd64"), within the protocol's 100 characters. */
export function reportableOs(): string {
  return `${platform()} ${release()}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}
