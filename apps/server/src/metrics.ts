/**
 * The server's Prometheus metrics (prom-client), one registry per app. Hot paths never touch
 * prom-client per message: the mapper and sessions add to plain numbers (`SendStats`), the abuse
 * limiter counts refusals in plain numbers, and the gauges read the mapper's in-memory table when
 * scraped. Only events that are rare per second (a change applied, an HTTP request, a database
 * query) observe a histogram directly.
 *
 * Other parts (the relay and STUN server) add their own collectors to `registry`, or use
 * `counterFrom` to expose counters they already keep as plain numbers.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { RelayServer, StunCounters, WgResponderCounters } from '@weft/relay';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PrismaClient, StatementCount } from '@weft/db';
import type { LinkStore } from './links.js';
import type { Change } from './state/changes.js';

/**
 * Bytes and messages written to agent sockets; plain numbers, added to by every send.
 * `netmapsFlushed` / `lastNetmapFlushedAt` (epoch ms): full netmaps and resumes (a connection's
 * first message either way) whose last byte the kernel has taken, so the server's own side of a reconnect storm can be timed apart from the readers.
 */
export interface SendStats { netmaps: number; netmapBytes: number; resumes: number; resumeBytes: number; deltas: number; deltaBytes: number; netmapsFlushed: number; lastNetmapFlushedAt: number }

/** What the mapper reports: sends (plain numbers) and each change it applied. */
export interface MapperMetrics {
  sent: SendStats;
  /** `seconds` from the change reaching the mapper to its messages written to the sockets. */
  applied(kind: Change['kind'], seconds: number): void;
}

export interface NodeStateCounts { online: number; offline: number; expired: number }

/** The parts of the server the scrape-time gauges read. */
export interface MetricSources {
  nodeStates: () => NodeStateCounts;
  sessions: () => number;
  rateLimitRefusals: () => Record<string, number>;
}

/** Latency buckets in seconds, 0.5 ms to 10 s: control-plane work, not bulk transfer. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly sent: SendStats = { netmaps: 0, netmapBytes: 0, resumes: 0, resumeBytes: 0, deltas: 0, deltaBytes: 0, netmapsFlushed: 0, lastNetmapFlushedAt: 0 };
  private readonly changesApplied: Counter<'kind'>;
  private readonly applyToSend: Histogram<'kind'>;
  private readonly busLag: Histogram;
  private readonly dbQuery: Histogram<'model' | 'operation'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status' | 'status_class'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private sources: MetricSources | null = null;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const self = this;
    new Gauge({
      name: 'weft_nodes', help: 'Nodes known to this replica by state (online: has a session on some replica; expired: key expired).',
      labelNames: ['state'], registers,
      collect() {
        const s = self.sources?.nodeStates();
        if (!s) return;
        this.set({ state: 'online' }, s.online);
        this.set({ state: 'offline' }, s.offline);
        this.set({ state: 'expired' }, s.expired);
      },
    });
    new Gauge({
      name: 'weft_sessions', help: 'Agent sessions (WebSockets) connected to this replica.', registers,
      collect() { this.set(self.sources?.sessions() ?? 0); },
    });
    this.counterFrom('weft_netmaps_sent_total', 'Full netmaps written to agent sockets.', () => this.sent.netmaps);
    this.counterFrom('weft_netmap_bytes_sent_total', 'Bytes of full netmaps written to agent sockets.', () => this.sent.netmapBytes);
    this.counterFrom('weft_resumes_sent_total', 'Resumes (an agent holding the current peer list: volatile fields only) written to agent sockets instead of full netmaps.', () => this.sent.resumes);
    this.counterFrom('weft_resume_bytes_sent_total', 'Bytes of resumes written to agent sockets.', () => this.sent.resumeBytes);
    this.counterFrom('weft_netmaps_flushed_total', 'Full netmaps and resumes whose last byte the kernel has taken (written out of this process).', () => this.sent.netmapsFlushed);
    new Gauge({
      name: 'weft_last_netmap_flushed_timestamp_seconds', help: 'When the last full netmap finished leaving this process for the kernel (Unix seconds; 0 = none yet).', registers,
      collect() { this.set(self.sent.lastNetmapFlushedAt / 1000); },
    });
    this.counterFrom('weft_deltas_sent_total', 'Delta messages written to agent sockets.', () => this.sent.deltas);
    this.counterFrom('weft_delta_bytes_sent_total', 'Bytes of delta messages written to agent sockets.', () => this.sent.deltaBytes);
    this.counterFrom('weft_rate_limit_refusals_total', 'Requests refused with 429 by a per-address limit.', () => self.sources?.rateLimitRefusals() ?? {}, 'limit');
    this.changesApplied = new Counter({ name: 'weft_changes_applied_total', help: 'Change descriptors the mapper applied, by kind.', labelNames: ['kind'], registers });
    this.applyToSend = new Histogram({
      name: 'weft_change_apply_to_send_seconds',
      help: "From a change reaching this replica's mapper to its messages written to the agent sockets (patch kinds: to entering the coalescing window).",
      labelNames: ['kind'], buckets: LATENCY_BUCKETS, registers,
    });
    this.busLag = new Histogram({
      name: 'weft_change_bus_lag_seconds',
      help: "From a change's append to the outbox on another replica to this replica handing it to its mapper (database clock to the read, then this process's).",
      buckets: LATENCY_BUCKETS, registers,
    });
    this.dbQuery = new Histogram({
      name: 'weft_db_query_duration_seconds', help: 'Prisma operations, by model and operation (raw queries: model "raw").',
      labelNames: ['model', 'operation'], buckets: LATENCY_BUCKETS, registers,
    });
    this.httpRequests = new Counter({
      name: 'weft_http_requests_total', help: 'HTTP requests answered, by route pattern (unmatched: no route) and status.',
      labelNames: ['method', 'route', 'status', 'status_class'], registers,
    });
    this.httpDuration = new Histogram({
      name: 'weft_http_request_duration_seconds', help: 'HTTP request handling time, by route pattern.',
      labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers,
    });
  }

  /** Connects the scrape-time gauges to the running app. */
  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  /** What the mapper is handed. */
  readonly mapper: MapperMetrics = {
    sent: this.sent,
    applied: (kind, seconds) => {
      this.changesApplied.inc({ kind });
      this.applyToSend.observe({ kind }, seconds);
    },
  };

  private tlsGauge: Gauge | null = null;

  /**
   * The served certificate's not-after as `weft_tls_certificate_not_after_seconds` (Unix seconds),
   * so an alert (or `weft-server doctor`) can say how long is left; called again on each reload.
   * Absent when the server serves plain HTTP.
   */
  tlsCertificate(notAfter: Date): void {
    this.tlsGauge ??= new Gauge({
      name: 'weft_tls_certificate_not_after_seconds', help: 'Not-after of the TLS certificate this replica serves, in Unix seconds.', registers: [this.registry],
    });
    this.tlsGauge.set(Math.floor(notAfter.getTime() / 1000));
  }

  busReceived(lagSeconds: number): void {
    this.busLag.observe(Math.max(0, lagSeconds));
  }

  /**
   * A counter whose value another part keeps as a plain number (or one per label value), read
   * at scrape time: the hook for the relay and STUN counters.
   */
  counterFrom(name: string, help: string, read: () => number | Record<string, number>, labelName?: string): Counter {
    return new Counter({
      name, help, labelNames: labelName ? [labelName] : [], registers: [this.registry],
      collect() {
        const v = read();
        this.reset();
        if (typeof v === 'number') this.inc(v);
        else for (const [label, n] of Object.entries(v)) this.inc({ [labelName!]: label }, n);
      },
    });
  }

  /** The embedded STUN service's counters (packages/relay StunServer.counters), read at scrape time. */
  /** The WireGuard responder's initiation counters (wg-mapping.ts) as one series by result. */
  wgResponder(c: Readonly<WgResponderCounters>): void {
    this.counterFrom('weft_wg_initiations_total', 'WireGuard handshake initiations on the responder port, by result (accepted: authenticated, fresh, from a known node).', () => ({
      accepted: c.accepted, malformed: c.malformed, bad_mac1: c.badMac1, unauthenticated: c.unauthenticated, unknown_key: c.unknownKey, replayed: c.replayed, clock_skew: c.clockSkew, rate_limited: c.rateLimited,
    }), 'result');
  }

  stun(counters: Readonly<StunCounters>): void {
    this.counterFrom('weft_stun_requests_total', 'STUN Binding requests answered (success or error response).', () => counters.requests);
    this.counterFrom('weft_stun_responses_total', 'STUN Binding success responses sent.', () => counters.responses);
    this.counterFrom('weft_stun_error_responses_total', 'STUN error responses sent.', () => counters.errorResponses);
    this.counterFrom('weft_stun_malformed_total', 'Datagrams on the STUN port that were not valid STUN (dropped).', () => counters.malformed);
    this.counterFrom('weft_stun_ignored_total', 'Valid STUN messages that need no answer (indications, responses; dropped).', () => counters.ignored);
  }

  /** The embedded packet relay's counters (plain numbers in RelayServer.counters), read at scrape time. */
  relay(relay: Pick<RelayServer, 'counters' | 'clientCount' | 'meshLinkCount'>): void {
    const c = relay.counters;
    new Gauge({
      name: 'weft_relay_clients', help: 'Relay clients (WebSockets on /api/v1/relay) connected to this replica.', registers: [this.registry],
      collect() { this.set(relay.clientCount); },
    });
    this.counterFrom('weft_relay_packets_forwarded_total', 'Packets the relay forwarded.', () => c.packetsForwarded);
    this.counterFrom('weft_relay_bytes_forwarded_total', 'Packet bytes the relay forwarded (payload, no frame headers).', () => c.bytesForwarded);
    this.counterFrom('weft_relay_packets_dropped_total', 'Packets the relay dropped, by reason (no_such_peer, not_allowed, queue_full, too_big).', () => ({
      no_such_peer: c.dropped.noSuchPeer, not_allowed: c.dropped.notAllowed, queue_full: c.dropped.queueFull, too_big: c.dropped.tooBig,
    }), 'reason');
    this.counterFrom('weft_relay_peer_gone_sent_total', 'Peer-gone frames sent (once per sender and unreachable peer).', () => c.peerGoneSent);
    this.counterFrom('weft_relay_peer_present_sent_total', 'Peer-present frames sent (a peer a client was told is not connected connected).', () => c.peerPresentSent);
    this.counterFrom('weft_relay_clients_closed_total', 'Relay clients closed by the relay, by reason (bad_frame, timeout).', () => ({ bad_frame: c.badFrames, timeout: c.timeouts }), 'reason');
    this.counterFrom('weft_relay_connections_total', 'Relay client connections accepted.', () => c.accepted);
    // UDP on the STUN port (relay-udp.ts) and the mesh between replicas (relay-mesh.ts): aggregates, no label per client or replica.
    const u = c.udp;
    this.counterFrom('weft_relay_udp_binds_total', 'Relay UDP BINDs, by result (accepted; refused: malformed, unknown_session, replayed, bad_mac).', () => ({
      accepted: u.binds, malformed: u.bindsRefusedBy.malformed, unknown_session: u.bindsRefusedBy.unknownSession, replayed: u.bindsRefusedBy.replayed, bad_mac: u.bindsRefusedBy.badMac,
    }), 'result');
    this.counterFrom('weft_relay_udp_packets_total', 'Relayed packets over UDP, by direction (in: from a bound client; out: to one).', () => ({ in: u.packetsIn, out: u.packetsOut }), 'direction');
    this.counterFrom('weft_relay_udp_bytes_total', 'Payload bytes of relayed packets over UDP, by direction.', () => ({ in: u.bytesIn, out: u.bytesOut }), 'direction');
    this.counterFrom('weft_relay_udp_unbound_total', 'Relay datagrams from no bound client (dropped unanswered).', () => u.unbound);
    this.counterFrom('weft_relay_udp_unbinds_total', 'UDP bindings dropped because the client sent over its WebSocket.', () => u.unbinds);
    new Gauge({
      name: 'weft_relay_mesh_links', help: 'Relay mesh links this replica sends on (one per peer replica it is linked to).', registers: [this.registry],
      collect() { this.set(relay.meshLinkCount); },
    });
    this.counterFrom('weft_relay_mesh_packets_total', 'Packets relayed across the mesh, by direction (to_replica: forwarded to a peer replica; from_replica: delivered here from one).', () => ({
      to_replica: c.mesh.forwardedOut, from_replica: c.mesh.deliveredIn,
    }), 'direction');
    this.counterFrom('weft_relay_mesh_packets_dropped_total', 'Packets from a peer replica dropped on arrival (destination not here or not allowed, too big, or its queue full; a full link queue on the way out counts as queue_full in weft_relay_packets_dropped_total).', () => c.mesh.dropped);
    this.counterFrom('weft_relay_mesh_bad_frames_total', 'Invalid frames on mesh links into this replica (the link is closed).', () => c.mesh.badFrames);
    this.counterFrom('weft_relay_mesh_links_refused_total', 'Mesh links into this replica refused at authentication (bad, stale or missing mesh token).', () => c.mesh.linksRefused);
  }

  /**
   * Link health from the agents' reports, summed over the sessions on this replica (sum over
   * replicas in PromQL): links by path and the stale ones. Aggregates only, never a label per link.
   */
  links(store: Pick<LinkStore, 'totals' | 'counters'>): void {
    new Gauge({
      name: 'weft_links', help: 'WireGuard links reported by agents connected to this replica, by path.', labelNames: ['path'], registers: [this.registry],
      collect() {
        const t = store.totals();
        this.set({ path: 'direct' }, t.direct);
        this.set({ path: 'relay' }, t.relay);
        this.set({ path: 'none' }, t.none);
      },
    });
    new Gauge({
      name: 'weft_links_stale', help: 'Reported links whose handshake is older than 3 minutes while traffic is attempted (dead), on this replica.', registers: [this.registry],
      collect() { this.set(store.totals().stale); },
    });
    this.counterFrom('weft_link_reports_total', 'Link report messages applied.', () => store.counters.reports);
    this.counterFrom('weft_link_rows_written_total', 'node_links rows written (batched).', () => store.counters.rowsWritten);
  }

  /** Counts and times every HTTP request by its route pattern (`/api/v1/nodes/:id`), never the raw URL. */
  instrumentHttp(app: FastifyInstance): void {
    app.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url ?? 'unmatched';
      const method = KNOWN_METHODS.has(req.method) ? req.method : 'other';
      const status = reply.statusCode;
      this.httpRequests.inc({ method, route, status: String(status), status_class: `${Math.floor(status / 100)}xx` });
      this.httpDuration.observe({ method, route }, reply.elapsedTime / 1000);
      done();
    });
  }

  /** Every SQL statement the Prisma client sent, BEGIN and COMMIT included (round trips: @weft/db statement-count.ts). */
  statements(count: StatementCount): void {
    this.counterFrom('weft_db_statements_total', 'SQL statements the Prisma client sent, BEGIN and COMMIT included (each one a round trip).', () => count.statements);
  }

  /** The same client, timing every operation (the extension runs inside interactive transactions too). */
  instrumentPrisma(prisma: PrismaClient): PrismaClient {
    const hist = this.dbQuery;
    return prisma.$extends({
      query: {
        async $allOperations({ model, operation, args, query }) {
          const end = hist.startTimer({ model: model ?? 'raw', operation });
          try {
            return await query(args);
          } finally {
            end();
          }
        },
      },
    }) as unknown as PrismaClient;
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * A bearer-token check for `/metrics` on the main port. Only a SHA-256 of the token is kept, and
 * digests are compared in constant time (equal length whatever the caller sent).
 */
export function tokenChecker(token: string): (authorization: string | undefined) => boolean {
  const want = createHash('sha256').update(token).digest();
  return (authorization) => {
    const m = /^Bearer (.+)$/i.exec(authorization ?? '');
    const got = createHash('sha256').update(m?.[1] ?? '').digest();
    return timingSafeEqual(want, got) && m !== null;
  };
}
