/**
 * Agent <-> server messages: registration over HTTP, then one WebSocket per node at `/agent/v1`.
 *
 * Connection: the agent opens `GET /agent/v1` with `Authorization: Bearer <jwt>`, where the JWT is
 * EdDSA-signed by the node's machine key (see `MachineTokenClaims`). The server replies with one
 * `netmap` message, then `delta` messages. Every server message carries `seq`; seq grows by exactly
 * one per message on a connection, starting at 1 with the netmap. A gap means the agent missed a
 * message: it sends `resync` and the server answers with a fresh `netmap`.
 *
 * Resume (since protocol 1, 2026-12-02, optional on both sides): netmaps and deltas may carry the
 * `revision` of the peer list they leave the agent holding. An agent that holds one sends it on
 * reconnect in the NETMAP_REVISION_HEADER of the upgrade request (and, since the compact resume,
 * NETMAP_ENDPOINTS_HEADER); when the server's list for it (under an access policy: its view's) has
 * that revision, the first message is a `resume` (the agent keeps its peers, with their volatile
 * fields replaced) instead of the whole list. Anything else (no header, a stale, unknown or
 * malformed revision, an access policy in force for an agent that sent no endpoints revision)
 * gets the full `netmap`, so an older agent or server is served as before.
 *
 * Compressed netmaps (optional on both sides): an agent that sends NETMAP_ENCODING_HEADER with
 * the value NETMAP_ENCODING_DEFLATE may be sent its `netmap` and `resume` as one binary WebSocket
 * message holding a raw deflate stream (RFC 1951, no zlib or gzip wrapper) whose inflated bytes
 * are exactly the JSON text the message would otherwise be. Deltas stay text. An agent that does
 * not send the header gets text messages only.
 */
import { z } from 'zod';
import { Cidr, Endpoint, Hostname, IPv4Address, IPv6Address, MachineKeyText, MAX_ENDPOINTS, NodeKeyText, Timestamp } from './common.js';
import { INT4_MAX, text } from './fields.js';

/** Claims of the short-lived JWT an agent signs with its machine key on every request. */
export const MachineTokenClaims = z.object({
  /** Machine public key, "mkey:<hex>". Must match the key that verifies the signature. */
  sub: MachineKeyText,
  /** Always MACHINE_TOKEN_AUDIENCE. */
  aud: z.string(),
  /** Seconds since the epoch; at most MACHINE_TOKEN_CLOCK_SKEW_S ahead of the server's clock. */
  iat: z.number().int(),
  /** At or after iat, and at most MACHINE_TOKEN_MAX_AGE_S after it. */
  exp: z.number().int(),
  /** Optional; if present, between iat and exp. */
  nbf: z.number().int().optional(),
  /** Agent's protocol version. */
  pv: z.number().int(),
});
export type MachineTokenClaims = z.infer<typeof MachineTokenClaims>;

/** Longest lifetime (exp - iat) the server accepts for a machine token. */
export const MACHINE_TOKEN_MAX_AGE_S = 120;

/**
 * Clock skew the server tolerates between an agent's clock and its own, in seconds: a token may be
 * issued (iat, nbf) at most this far in the server's future and is accepted this long after exp.
 * Nothing else stretches a token's life: exp >= iat, exp - iat <= MACHINE_TOKEN_MAX_AGE_S, and an
 * nbf, if present, lies between iat and exp. So a token is accepted for at most
 * MAX_AGE + 2 x SKEW seconds of server time, never longer. Five minutes is Kerberos's default
 * skew: machines without good NTP drift by tens of seconds, and a refused token at the WebSocket
 * (4401) ends in the agent treating itself as revoked. A device whose clock is further off is
 * refused with a reason naming its clock.
 */
export const MACHINE_TOKEN_CLOCK_SKEW_S = 300;

/**
 * `POST /agent/v1/register`, authorised by a machine token. With `authKey`, the node joins at once.
 * Without it, the server starts (or continues) an interactive login and answers `pending` with a
 * URL and short code; the agent polls with the same body until `registered`.
 * A machine key that is already registered gets its existing node back (restart, re-up).
 */
export const RegisterRequest = z.strictObject({
  nodeKey: NodeKeyText,
  hostname: Hostname,
  authKey: text().min(1).max(200).optional(),
  /**
   * The device's operating system as the agent reports it (Node's `os.platform()` and
   * `os.release()`, e.g. "linux 6.1.0-18-amd64"), shown on the approval page. Absent = not
   * reported (an older agent). Since protocol 1 (2026-12-01), optional.
   */
  os: text().min(1).max(100).optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

/**
 * What a node's own netcheck (`weft netcheck`) concluded about its network, as it reports it
 * (`nat` message) and as its peers get it (`Peer.nat`), so `weft status` can say why a pair is not
 * direct from both sides ("peer too").
 */
export const NatVerdict = z.strictObject({
  /** Any STUN server answered over UDP: false = UDP to the internet is blocked at that node. */
  udp: z.boolean(),
  /**
   * Its NAT gives the same socket a different public port per destination (endpoint-dependent
   * mapping). Null = not known (fewer than two STUN destinations answered).
   */
  mappingVariesByDestination: z.boolean().nullable(),
});
export type NatVerdict = z.infer<typeof NatVerdict>;

export const SelfNode = z.object({
  id: z.number().int(),
  name: z.string(),
  user: z.string(),
  ipv4: IPv4Address,
  ipv6: IPv6Address,
  nodeKey: NodeKeyText,
  expiresAt: Timestamp.nullable(),
  /**
   * Where the server sees this node's WireGuard port come from (its NAT's public mapping of it):
   * the source of the node's last handshake initiation to a responder in `wgResponders`. Peers get
   * it first in this node's `endpoints`. Absent = not seen yet (or a server before it). Since
   * protocol 1 (2026-12-01), optional.
   */
  reflexiveEndpoint: Endpoint.optional(),
});
export type SelfNode = z.infer<typeof SelfNode>;

export const RegisterResponse = z.discriminatedUnion('status', [
  z.object({ status: z.literal('registered'), node: SelfNode }),
  z.object({
    status: z.literal('pending'),
    /**
     * Page where a person approves this device; with `approval: "admin"`, the admin UI's pending
     * devices page.
     */
    loginUrl: z.string(),
    /**
     * What an admin approves with `weft-server nodes approve CODE`: the login code, or with
     * `approval: "admin"` the node's id (as text).
     */
    code: z.string(),
    /** Until when this login waits; with `approval: "admin"`, the node's key expiry (far future when disabled). */
    expiresAt: Timestamp,
    /**
     * Absent: waits for a person to confirm the device (sign-in). "admin": the device is a node
     * already (its addresses are kept) but the tailnet requires an admin's approval of new devices;
     * it is in no netmap until then. The agent keeps polling with the same body. Since protocol 1
     * (2026-12-01), optional: an older agent shows it as a login (its command line still right).
     */
    approval: z.literal('admin').optional(),
  }),
]);
export type RegisterResponse = z.infer<typeof RegisterResponse>;

/**
 * A peer as the agent needs it to program WireGuard and show status. Addresses, CIDRs and
 * endpoints are checked strictly (address.ts). An agent that gets a peer entry failing this schema
 * skips that one entry (and says so in `weft status`) and applies the rest of the message.
 */
export const Peer = z.object({
  id: z.number().int(),
  name: z.string(),
  user: z.string(),
  nodeKey: NodeKeyText,
  ipv4: IPv4Address,
  ipv6: IPv6Address,
  /** CIDRs routed to this peer: its /32 and /128 today, subnet routes later. */
  allowedIps: z.array(Cidr),
  /** Candidate endpoints, most preferred first, at most MAX_ENDPOINTS. Empty = unknown. */
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS),
  online: z.boolean(),
  lastSeen: Timestamp.nullable(),
  /**
   * The peer's own netcheck verdict as it last reported it (`nat` message) to the server replica
   * it is connected to. Absent or null = not known (not reported, not connected, another replica,
   * or a server before it). Since protocol 1 (2026-12-01), optional.
   */
  nat: NatVerdict.nullable().optional(),
});
export type Peer = z.infer<typeof Peer>;

/** Fields that can change without a full upsert. Absent = unchanged. */
export const PeerPatch = z.object({
  id: z.number().int(),
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS).optional(),
  online: z.boolean().optional(),
  lastSeen: Timestamp.nullable().optional(),
  /** The peer's netcheck verdict changed; null = no longer known (it disconnected). */
  nat: NatVerdict.nullable().optional(),
});
export type PeerPatch = z.infer<typeof PeerPatch>;

/** Most relay/STUN regions a netmap lists, and most STUN addresses per region. */
export const MAX_REGIONS = 32;
export const MAX_REGION_STUN = 8;

/**
 * `HOST:PORT` of a STUN service (UDP): a DNS name, a dotted quad, or `[ipv6]`; port 1-65535.
 * Names are resolved by the agent.
 */
export const StunAddress = text()
  .max(262)
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([1-9]\d{0,4})$/, 'must be HOST:PORT, e.g. stun.example.com:3478, 192.0.2.1:3478 or [2001:db8::1]:3478')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port must be 1-65535');

/**
 * A relay region the server publishes (DERP's region, in Tailscale's terms): where a node measures
 * latency and its NAT's behaviour (`weft netcheck`), and, once the relay lands, relays through.
 */
export const Region = z.object({
  /** Stable number, unique in the list; what a node remembers as its preferred region. */
  id: z.number().int().min(1).max(65_535),
  /** Short lower-case code for displays, e.g. "fra"; unique in the list. */
  code: text().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be 1-32 of a-z 0-9 - (starting with a letter or digit)'),
  /** Human name, e.g. "Frankfurt". */
  name: text().min(1).max(100),
  /** STUN services of the region, tried in order; empty = none (relay only). */
  stun: z.array(StunAddress).max(MAX_REGION_STUN),
  /** The region's relay (wss://...). Absent = the region has no relay (STUN only). */
  relayUrl: z.string().url().max(2048).optional(),
});
export type Region = z.infer<typeof Region>;
/**
 * One packet-filter rule for traffic arriving at this node over the tunnel (Tailscale's FilterRule
 * by JSON name; the shape `weft-server policy compile` prints). A packet is allowed when some rule
 * has its source in `srcIPs`, its destination address and port in one of `dstPorts`, and its
 * protocol in `protos`.
 */
export const FilterRule = z.object({
  /** Source addresses, CIDRs or `a-b` ranges, IPv4 first, ascending; `["*"]` = any address. */
  srcIPs: z.array(z.string()),
  /** Destinations on this node: an address or CIDR (or `*`) and a port range `first-last`. */
  dstPorts: z.array(z.object({ ip: z.string(), ports: z.string() })),
  /** IANA protocol numbers, ascending. */
  protos: z.array(z.number().int().min(0).max(255)),
});
export type FilterRule = z.infer<typeof FilterRule>;

/**
 * A server-side WireGuard key that never answers. The agent adds it as a WireGuard peer (endpoint,
 * persistent keepalive, no allowed IPs, so no traffic is ever routed to it) and never shows it as
 * a peer. Its WireGuard then sends handshake initiations from its own port to `endpoint`, and the
 * server learns from their source how the node's NAT maps that port (`SelfNode.reflexiveEndpoint`).
 */
export const ResponderPeer = z.object({
  /** The responder's X25519 public key, in the same text form as node keys. */
  publicKey: NodeKeyText,
  /** The server's UDP port for it (the STUN port), "ip:port". */
  endpoint: Endpoint,
});
export type ResponderPeer = z.infer<typeof ResponderPeer>;

/** At most this many responders in a netmap. */
export const MAX_WG_RESPONDERS = 4;

/**
 * The content revision of a peer list: 32 lower-case hex digits, a hash over every listed node's
 * stable fields (id, name, user, nodeKey, addresses, allowedIps; the list includes the receiving
 * node itself; under an access policy the list is the node's view, the node included when its
 * view holds it). Volatile fields (endpoints, online, lastSeen, nat) are left out: they change by
 * the thousand in a reconnect storm and travel as patches. Derived from content only, so it is the
 * same after a server restart and on every replica.
 */
export const NetmapRevision = z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lower-case hex digits');

/**
 * Request header of `GET /agent/v1`: the revision of the peer list the agent holds (the last
 * `revision` it was sent). Absent = none held. A malformed value is ignored (full netmap).
 */
export const NETMAP_REVISION_HEADER = 'weft-netmap-revision';

/**
 * Request header of `GET /agent/v1`, sent with NETMAP_REVISION_HEADER: the endpoints revision of
 * the peers the agent holds (@weft/crypto `endpointsRevision`: a sum of per-peer hashes over id and
 * endpoints, computed by the agent from what it holds). It also says the agent reads the compact
 * resume (`presence`, `endpoints`, `packetFilter`); without it a server resumes only without a
 * policy and in the older form (`patch`). Since protocol 1 (2026-12-02), optional. A malformed
 * value counts as absent.
 */
export const NETMAP_ENDPOINTS_HEADER = 'weft-netmap-endpoints';

/**
 * A compact resume's per-peer state, one character each: online (7 codes apart) and the netcheck
 * verdict. Index = (online ? 7 : 0) + nat, where nat 0 = not known (the peer entry has no `nat`),
 * then udp false / true, each with mappingVariesByDestination null, false, true.
 */
const RESUME_STATE_BASE = 'a'.charCodeAt(0);
export function resumeStateChar(online: boolean, nat: NatVerdict | null | undefined): string {
  const n = nat ? 1 + (nat.udp ? 3 : 0) + (nat.mappingVariesByDestination === null ? 0 : nat.mappingVariesByDestination ? 2 : 1) : 0;
  return String.fromCharCode(RESUME_STATE_BASE + (online ? 7 : 0) + n);
}

/** The inverse of resumeStateChar; null for a character that is not a state. */
export function resumeStateOf(c: string): { online: boolean; nat: NatVerdict | null } | null {
  const i = c.charCodeAt(0) - RESUME_STATE_BASE;
  if (c.length !== 1 || !(i >= 0 && i < 14)) return null;
  const n = i % 7;
  const nat = n === 0 ? null : { udp: n >= 4, mappingVariesByDestination: [null, false, true][(n - 1) % 3]! };
  return { online: i >= 7, nat };
}

/**
 * A compact resume's volatile fields, positional: entry i is the agent's i-th peer in id order
 * (the revision matched, so the agent holds exactly the server's list; `state.length` is the
 * number of peers, and an agent holding another count asks for a resync).
 */
export const ResumePresence = z.object({
  /** Epoch milliseconds that `lastSeen` counts from. */
  base: z.number().int(),
  /** One resumeStateChar per peer. */
  state: z.string().regex(/^[a-n]*$/, 'must be state characters a-n'),
  /** Per peer: lastSeen as milliseconds after `base` (an ISO timestamp with milliseconds); null = none. */
  lastSeen: z.array(z.number().int().nullable()),
});
export type ResumePresence = z.infer<typeof ResumePresence>;

/**
 * Request header of `GET /agent/v1`: the agent reads netmaps and resumes sent as binary messages
 * of raw deflate (see the top of this file). Any value but NETMAP_ENCODING_DEFLATE is ignored.
 */
export const NETMAP_ENCODING_HEADER = 'weft-netmap-encoding';
export const NETMAP_ENCODING_DEFLATE = 'deflate';

/**
 * The most bytes a compressed netmap may inflate to: what `ws` accepts for a text message by
 * default (100 MiB), so a compressed netmap may be as large as a text one, and a deflate bomb
 * (a few KB inflating to gigabytes) is refused at this size.
 */
export const MAX_INFLATED_NETMAP_BYTES = 100 * 1024 * 1024;

export const NetmapMessage = z.object({
  type: z.literal('netmap'),
  seq: z.number().int(),
  /**
   * The revision of `peers` (see NetmapRevision); sent first after seq. Absent = none (an older
   * server; before the compact resume also under an access policy): the agent holds no revision.
   * Since protocol 1 (2026-12-02), optional.
   */
  revision: NetmapRevision.optional(),
  protocolVersion: z.number().int(),
  self: SelfNode,
  /** Every peer this node may see, sorted by id (with an access policy, only those it may see). */
  peers: z.array(Peer),
  /**
   * Relay/STUN regions, sorted by id (protocol 1, optional: a server that predates regions, or
   * has STUN off and no regions configured, sends none). Absent = none known; only a netmap
   * carries them, so a node learns changes on its next netmap (reconnect or resync).
   */
  regions: z.array(Region).max(MAX_REGIONS).optional(),
  /**
   * Since protocol 1 (2026-12-01), optional: the packet filter for traffic arriving at this node,
   * from the access policy. Absent = no policy is stored: allow all (what every earlier server
   * meant). Present and empty = nothing may reach this node.
   */
  packetFilter: z.array(FilterRule).optional(),
  /**
   * Responder keys to add as WireGuard peers (see ResponderPeer). Absent or empty = none: the agent
   * removes any it added. Since protocol 1 (2026-12-01), optional so older agents ignore it.
   */
  wgResponders: z.array(ResponderPeer).max(MAX_WG_RESPONDERS).optional(),
});
export type NetmapMessage = z.infer<typeof NetmapMessage>;

/**
 * Changes since the previous message. Applied in this order: remove, upsert, patch.
 * Absent = nothing of that kind.
 */
export const DeltaMessage = z.object({
  type: z.literal('delta'),
  seq: z.number().int(),
  /**
   * The revision of the peer list once this delta is applied. Absent on a delta with `upsert` or
   * `remove`: the agent no longer knows its list's revision and forgets the one it held. A delta
   * with neither (patches, self, packetFilter) leaves the held revision as it was. Since
   * protocol 1 (2026-12-02), optional.
   */
  revision: NetmapRevision.optional(),
  /** Peers added or changed in a way that needs reprogramming (key, addresses). */
  upsert: z.array(Peer).optional(),
  /** Peer ids no longer visible. */
  remove: z.array(z.number().int()).optional(),
  patch: z.array(PeerPatch).optional(),
  /** This node itself changed (renamed, expiry, reflexive endpoint). */
  self: SelfNode.optional(),
  /**
   * Since protocol 1 (2026-12-01): the packet filter changed and this replaces it whole (see
   * NetmapMessage.packetFilter). Absent = unchanged; null = no policy any more: allow all.
   */
  packetFilter: z.array(FilterRule).nullable().optional(),
});
export type DeltaMessage = z.infer<typeof DeltaMessage>;

/**
 * The first message of a connection that resumed (the agent sent the revision the server's list
 * has): seq 1, like a netmap, and it replaces a netmap. The agent keeps the peers it holds (their
 * stable fields are what `revision` says) and takes their volatile fields from `patch` (the older
 * form, to an agent that sent no NETMAP_ENDPOINTS_HEADER, never under a policy) or from
 * `presence` and `endpoints` (the compact form); everything else is as in a netmap (`self`,
 * `regions`, `wgResponders`, `packetFilter`). Only an agent that sent NETMAP_REVISION_HEADER is
 * ever sent one. Since protocol 1 (2026-12-02).
 */
export const ResumeMessage = z.object({
  type: z.literal('resume'),
  seq: z.number().int(),
  /** The revision the agent sent, which the server's list has. */
  revision: NetmapRevision,
  protocolVersion: z.number().int(),
  self: SelfNode,
  /**
   * The older form: every listed peer's volatile fields as they are now (all of endpoints,
   * online, lastSeen and nat, null = not known), sorted by id.
   */
  patch: z.array(PeerPatch).optional(),
  /** The compact form: every peer's online, nat and lastSeen, by position (see ResumePresence). */
  presence: ResumePresence.optional(),
  /**
   * With `presence`: every peer's endpoints by position. Absent = the endpoints revision the agent
   * sent is the server's (keep the endpoints held).
   */
  endpoints: z.array(z.array(Endpoint).max(MAX_ENDPOINTS)).optional(),
  regions: z.array(Region).max(MAX_REGIONS).optional(),
  wgResponders: z.array(ResponderPeer).max(MAX_WG_RESPONDERS).optional(),
  /** As in a netmap: the packet filter (present whenever a policy is in force); absent = allow all. */
  packetFilter: z.array(FilterRule).optional(),
});
export type ResumeMessage = z.infer<typeof ResumeMessage>;

export const ServerMessage = z.discriminatedUnion('type', [NetmapMessage, DeltaMessage, ResumeMessage]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/**
 * A server message with its peer entries (`peers`, `upsert`, `patch`) left unparsed, for a reader
 * that checks them one at a time against Peer / PeerPatch: an agent skips a malformed entry and
 * applies the rest, rather than dropping the whole message.
 */
export const ServerMessageEnvelope = z.discriminatedUnion('type', [
  NetmapMessage.extend({ peers: z.array(z.unknown()), wgResponders: z.array(z.unknown()).optional() }),
  DeltaMessage.extend({ upsert: z.array(z.unknown()).optional(), patch: z.array(z.unknown()).optional() }),
  ResumeMessage.extend({ patch: z.array(z.unknown()).optional(), wgResponders: z.array(z.unknown()).optional() }),
]);

/**
 * Agent reports its endpoint candidates (replaces the previous list), most preferred first, at
 * most MAX_ENDPOINTS. One malformed endpoint refuses the whole message: the server closes the
 * socket with BadMessage and a reason naming the entry, and stores nothing. The server coalesces
 * reports (latest wins), so a burst costs it one write.
 */
export const EndpointsMessage = z.strictObject({
  type: z.literal('endpoints'),
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS),
});

/** Agent saw a seq gap or lost state: server replies with a full netmap. */
export const ResyncMessage = z.strictObject({ type: z.literal('resync') });

/** Most links one `links` message carries; a longer report is split over several messages. */
export const MAX_LINKS_PER_MESSAGE = 64;
/** Most links the server keeps per node (an agent reports at most this many: stale ones first). */
export const MAX_LINKS_PER_NODE = 256;

/**
 * One WireGuard link from the reporting node to a peer, as the agent's `weft status` sees it.
 * `stale`: the handshake is older than LINK_STALE_AFTER_S (or there never was one in that long)
 * while the tx counter grew: traffic is attempted without a session, i.e. the link is dead.
 */
export const LinkStat = z.strictObject({
  /** The peer's node id (Peer.id). */
  peer: z.number().int().min(1).max(INT4_MAX),
  path: z.enum(['direct', 'relay', 'none']),
  /** Where WireGuard sends to now; null = unknown. */
  endpoint: Endpoint.nullable(),
  /** Seconds from the latest handshake to when the agent sent this; null = never. */
  handshakeAgeS: z.number().int().min(0).max(10 * 365 * 86_400).nullable(),
  /** WireGuard's byte counters: past 2^31 within hours, so kept in the JSON report (never an int4 column). */
  rxBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  txBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  stale: z.boolean(),
});
export type LinkStat = z.infer<typeof LinkStat>;

/** Handshake age after which a link whose tx still grows is `stale` (WireGuard's rekey is 2 min). */
export const LINK_STALE_AFTER_S = 180;

/**
 * Agent reports its links (since 2026-12-01). A server that predates it closes the socket with
 * BadMessage naming `type`; the agent then stops reporting for the daemon's life.
 * `full`: this message starts a whole report (the server forgets links not in it or in the
 * messages that follow with `full` false); otherwise only the links that changed, and `removed`
 * peers. Sent at most every LINK_REPORT_INTERVAL_MS when only counters moved, and soon after a
 * link's path or stale flag changes. A malformed entry refuses the message (BadMessage), like
 * `endpoints`, and stores nothing.
 */
export const LinksMessage = z.strictObject({
  type: z.literal('links'),
  full: z.boolean(),
  links: z.array(LinkStat).max(MAX_LINKS_PER_MESSAGE),
  removed: z.array(z.number().int().min(1).max(INT4_MAX)).max(MAX_LINKS_PER_NODE).optional(),
});
export type LinksMessage = z.infer<typeof LinksMessage>;

/**
 * Agent reports its netcheck verdict (since 2026-12-01): once per connection after its first
 * netcheck, then whenever the verdict changes. The server keeps the latest per node in memory
 * while the node is connected to it and patches it into peers' netmaps (`Peer.nat`). A malformed
 * message closes the socket with BadMessage and stores nothing. A server that predates it closes
 * the socket with BadMessage naming `type`; the agent then stops sending it for the daemon's life.
 */
export const NatMessage = z.strictObject({
  type: z.literal('nat'),
  nat: NatVerdict,
});
export type NatMessage = z.infer<typeof NatMessage>;

export const AgentMessage = z.discriminatedUnion('type', [EndpointsMessage, ResyncMessage, LinksMessage, NatMessage]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** Largest agent->server WebSocket message the server reads; larger closes the socket. */
export const MAX_AGENT_MESSAGE_BYTES = 16 * 1024;

/** WebSocket close codes the server uses on `/agent/v1` (4000-4999 are application codes). */
export const CloseCode = {
  /** Message was not valid JSON or not a valid AgentMessage; the close reason says what was wrong. */
  BadMessage: 4400,
  /** Machine token missing, malformed, or not signed by a registered machine key. */
  Unauthorized: 4401,
  /** Node was deleted: do not reconnect; the agent tears its interface down. */
  NodeDeleted: 4403,
  /** Node key expired: re-authenticate. */
  NodeExpired: 4410,
  /**
   * The node's user was suspended: reconnect with backoff; the upgrade is refused with 403
   * `user_suspended` until an admin resumes the user. Protocol 1 agents that predate it treat
   * any unknown code as "reconnect", which is what it asks.
   */
  UserSuspended: 4423,
  /** Agent protocol version too old. */
  UpgradeRequired: 4426,
  /** Server is shutting down; reconnect with backoff. */
  GoingAway: 1001,
  /** Message larger than MAX_AGENT_MESSAGE_BYTES. */
  TooBig: 1009,
  /** The agent fell behind reading (too much queued for it): reconnect with backoff and resync. */
  TryAgainLater: 1013,
} as const;

/** Sent as the HTTP status / problem code when the server refuses an agent at the door. */
export const RegisterErrorCode = {
  AuthKeyInvalid: 'auth_key_invalid',
  AuthKeyExpired: 'auth_key_expired',
  AuthKeyUsed: 'auth_key_used',
  AuthKeyRevoked: 'auth_key_revoked',
  NodeDeleted: 'node_deleted',
  NodeExpired: 'node_expired',
  LoginExpired: 'login_expired',
  /** 403: the node's user is suspended; keep retrying with backoff, it lifts when resumed. */
  UserSuspended: 'user_suspended',
} as const;

/** `aud` of every machine token. */
export const MACHINE_TOKEN_AUDIENCE = 'weft-control';

/** `POST /agent/v1/logout` (machine token): the calling device's node is deleted. */
export const LogoutResponse = z.object({
  /** Id of the node that was deleted. */
  deleted: z.number().int(),
});
export type LogoutResponse = z.infer<typeof LogoutResponse>;
