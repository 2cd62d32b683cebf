/**
 * The mapper turns change descriptors into netmaps and deltas for the nodes they affect.
 *
 * It keeps every node's peer view in memory (one serialized JSON string per node, in chunks), so a
 * change costs one serialization plus one small message per affected session: per-node cost grows
 * with that node's peers, never with the tailnet squared. Structural changes (join, delete,
 * expire, rename) go out at once; patches (online, endpoints) are coalesced for a window that grows
 * with the fleet (`patchWindowMs`) so a storm of connects does not become a storm of messages.
 *
 * Visibility: with no access policy stored, every live node (not expired, its user not suspended)
 * sees every other, from one shared list. With a policy, `PolicyNetmaps` keeps one shared list per
 * view class (nodes that see the same peers) and each node's packet filter; node changes update
 * the views incrementally and a policy change rebuilds them, and either way only the sessions
 * whose view or filter changed are sent anything. Patches never recompute a view.
 */
import type { FastifyBaseLogger } from 'fastify';
import { parsePolicy, PolicyRejected, type Policy, type ViewClass } from '@weft/policy';
import { CloseCode, PROTOCOL_VERSION, type NatVerdict, type Peer, type PeerPatch, type ResponderPeer } from '@weft/protocol';
import { peerEndpointsHash } from '@weft/crypto';
import type { MapperMetrics, NodeStateCounts } from '../metrics.js';
import type { Change, PresenceChange } from '../state/changes.js';
import { isExpired, peerDto, selfDto, type NodeWithUser } from '../state/index.js';
import { SharedList } from './shared-list.js';
import { liveNode, PolicyNetmaps, type Outgoing } from './policy-views.js';
import { Session, type ResyncOutcome } from './session.js';
import { DELTA_SEND_SLICE, NETMAP_TURN_MS, NETMAPS_IN_FLIGHT } from '../tunables.js';
import { NetmapGate } from './netmap-gate.js';
import { CompactResumeParts } from './compact-resume.js';
import type { PeerChunks } from './peer-chunks.js';

/** The parts of a list with no peers (a node in no view class). */
const EMPTY_RESUME = new CompactResumeParts([]);

interface Entry {
  row: NodeWithUser;
  peer: Peer;
  /** `peer` serialized, while the node is visible. */
  json?: string;
  /** peerEndpointsHash of `peer` (computed when a compact resume first needs it; cleared when its endpoints change). */
  ep?: bigint;
}

export interface MapperOptions {
  loadRows: (ids?: number[]) => Promise<NodeWithUser[]>;
  /** The active access policy's text; null = none stored: every node sees every node. Absent = always null. */
  loadPolicy?: () => Promise<string | null>;
  /** Groups the directory defines (SCIM), usable in the policy as its own (state/policy-inputs.ts); absent = none. */
  loadDirectoryGroups?: () => Promise<Map<string, string[]>>;
  log: FastifyBaseLogger;
  patchIntervalMs?: number;
  /** Most deltas sent per turn of the event loop; absent = DELTA_SEND_SLICE (tests make it small). */
  deltaSendSlice?: number;
  /** Most full netmaps (and resumes) being written at once; absent = NETMAPS_IN_FLIGHT (tests make it 1). */
  netmapsInFlight?: number;
  /** Absent = nothing measured. */
  metrics?: MapperMetrics;
  /** Sent in every netmap as `wgResponders`; absent = none. */
  responders?: ResponderPeer[];
}

/** What the agent's upgrade request said (socket-route.ts). */
export interface AttachOptions {
  /** JSON of the netmap's `regions` for this agent; absent = none listed. */
  regionsJson?: string;
  /** The revision the agent holds, already checked as a NetmapRevision; absent = none. */
  heldRevision?: string;
  /** The endpoints revision of the peers it holds (NETMAP_ENDPOINTS_HEADER: it reads the compact resume); absent = none. */
  heldEndpoints?: string;
  /** It reads netmaps and resumes as binary raw deflate (NETMAP_ENCODING_HEADER). */
  deflate?: boolean;
}

/** Close code and reason for sockets bound to a node key the node has since rotated (4409, as for a replaced connection). */
export const RELAY_KEY_ROTATED = { code: 4409, reason: 'node key changed; reconnect' } as const;

export class Mapper {
  private readonly entries = new Map<number, Entry>();
  /** Node id by WireGuard public key (hex, no prefix): who sent a handshake initiation, per packet without the database. */
  private readonly byKey = new Map<string, number>();
  /** Node id by machine key: the agent door (socket-auth.ts) finds a connecting node here, not in the database. */
  private readonly byMachine = new Map<string, number>();
  /** The list every node sees while no policy is stored (kept under a policy too, for when it goes). */
  private readonly list = new SharedList();
  /**
   * Each connected node's netcheck verdict (`nat` message), in memory on the replica its session
   * is on only: not stored, not carried to other replicas (their peers see `nat` absent).
   */
  private readonly nats = new Map<number, NatVerdict>();
  /**
   * Per node, the verdict each replica's session reported and when (key '' = this replica's,
   * others from `nat` changes): `nats` holds the one reported last. A session ending removes only
   * its own replica's, and the report time, not the arrival, decides which is newest, so whatever
   * order changes arrive in (the outbox can bring an older verdict from the replica a node left
   * after it reported here), a node that moved keeps its new verdict.
   */
  private readonly natBy = new Map<number, Map<string, { nat: NatVerdict; at: number }>>();
  /** Per list (the shared one, or a view class's), its compact resume parts and the list generation they are of. */
  private readonly compactCache = new WeakMap<PeerChunks, { generation: number; parts: CompactResumeParts }>();
  private readonly sessions = new Map<number, Session>();
  private queue: Promise<void> = Promise.resolve();
  /** Deltas waiting to be sent, in order (see `deliver`); `outPos` is the next of `outJobs[0]`. */
  private outJobs: (readonly [Session, string])[][] = [];
  private outPos = 0;
  private outDone: Promise<void> = Promise.resolve();
  private outResolve: (() => void) | null = null;
  private pendingPatches = new Map<number, PeerPatch>();
  /** When each pending patch was last recorded, on the `patchClock`. */
  private pendingAt = new Map<number, number>();
  /** Counts patches recorded; a session's netmap holds every patch recorded up to its mark. */
  private patchClock = 0;
  private readonly netmapMark = new WeakMap<Session, number>();
  /**
   * Under a policy, the sessions attached here by view class, so a patch window visits only the
   * classes it touches and their sessions, never every session. Kept up to date by attach and
   * detach; null after anything that may move nodes between classes (rebuilt at the next flush).
   */
  private byClass: Map<ViewClass, Set<Session>> | null = null;
  private readonly classOfSession = new WeakMap<Session, ViewClass>();
  private patchTimer: NodeJS.Timeout | null = null;
  private readonly patchIntervalMs: number;
  private readonly sendSlice: number;
  private readonly gate: NetmapGate;
  /** Null while no policy is stored (allow all: the shared list alone). */
  private policy: PolicyNetmaps | null = null;
  /** The policy text (and directory groups) last read (to skip reloads that change nothing), and the policy in force. */
  private policyText: string | null = null;
  private inForce: Policy | null = null;
  /** `,"wgResponders":[...]` for every netmap (the same for every node), or ''. */
  private readonly respondersJson: string;
  private readonly cutOffListeners: ((nodeId: number, code: number, reason: string) => void)[] = [];
  private readonly visibilityListeners: (() => void)[] = [];

  constructor(private readonly opts: MapperOptions) {
    this.patchIntervalMs = opts.patchIntervalMs ?? 200;
    this.sendSlice = opts.deltaSendSlice ?? DELTA_SEND_SLICE;
    this.gate = new NetmapGate(opts.netmapsInFlight ?? NETMAPS_IN_FLIGHT, NETMAP_TURN_MS);
    this.respondersJson = opts.responders?.length ? `,"wgResponders":${JSON.stringify(opts.responders)}` : '';
  }

  async init(): Promise<void> {
    this.byClass = null;
    const [rows, { text, groups, key }] = await Promise.all([this.opts.loadRows(), this.loadPolicySource()]);
    this.byKey.clear();
    this.byMachine.clear();
    for (const row of rows) {
      const e = this.setEntry(row);
      if (visible(row)) e.json = JSON.stringify(e.peer);
    }
    this.list.reset([...this.entries.values()].filter((e) => e.json !== undefined).map((e) => [e.peer, e.json!]));
    const policy = text === null ? null : this.parse(text, groups);
    this.policyText = key;
    // Fail closed: a policy that cannot be read keeps the one in force, or lets nobody reach anybody.
    if (policy !== undefined) this.inForce = policy;
    else this.inForce ??= DENY_ALL;
    this.policy = this.inForce ? this.buildViews(this.inForce) : null;
    this.byClass = null;
  }

  /** The ids node `id` may see now (tests compare this with a from-scratch compile). */
  peersOf(id: number): number[] {
    if (this.policy) return this.policy.peersOf(id);
    return this.entries.get(id)?.json === undefined ? [] : [...this.entries.values()].filter((e) => e.json !== undefined && e.row.id !== id).map((e) => e.row.id).sort((a, b) => a - b);
  }

  /** The policy text and the directory's groups, and one key for both (a reload that changes neither does nothing). */
  private async loadPolicySource(): Promise<{ text: string | null; groups: Map<string, string[]>; key: string | null }> {
    const [text, groups] = await Promise.all([
      this.opts.loadPolicy ? this.opts.loadPolicy() : Promise.resolve(null),
      this.opts.loadDirectoryGroups ? this.opts.loadDirectoryGroups() : Promise.resolve(new Map<string, string[]>()),
    ]);
    return { text, groups, key: text === null ? null : groups.size ? `${text}\0${JSON.stringify([...groups])}` : text };
  }

  /** A stored policy was accepted when it was set; one that no longer parses is logged and not applied. */
  private parse(text: string, directoryGroups: Map<string, string[]>): Policy | null | undefined {
    try {
      // A directory group deleted since the policy was set is empty (its members lose what it granted).
      return parsePolicy(text, { directoryGroups, missingGroupsEmpty: true });
    } catch (err) {
      if (!(err instanceof PolicyRejected)) throw err;
      this.opts.log.error({ errors: err.errors.map((e) => e.message) }, 'the stored access policy does not parse; keeping the one in force');
      return undefined;
    }
  }

  private buildViews(policy: Policy): PolicyNetmaps {
    return new PolicyNetmaps(policy, [...this.entries.values()].filter((e) => e.json !== undefined).map((e) => e.row), (id) => this.entries.get(id)?.json, this.policy, (id) => this.list.hashOf(id));
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  /** Nodes by state from the in-memory table (metrics read this at every scrape, not the database). */
  nodeStates(): NodeStateCounts {
    const out = { online: 0, offline: 0, expired: 0 };
    for (const { row } of this.entries.values()) {
      if (isExpired(row)) out.expired++;
      else if (row.online) out.online++;
      else out.offline++;
    }
    return out;
  }

  /**
   * Changes are applied strictly in order. If one cannot be applied (the database failed to
   * answer), the mapper reloads everything and resends full netmaps rather than drift.
   */
  apply(change: Change): Promise<void> {
    const metrics = this.opts.metrics;
    const t0 = metrics ? performance.now() : 0;
    this.queue = this.queue
      .then(async () => {
        // One turn of the event loop first: the write that emitted this change answers its caller
        // (a REST DELETE) before the fan-out to every session runs, which at 10,000 sessions costs
        // more than the write itself. Order is kept: the queue is still one chain.
        await new Promise<void>((r) => setImmediate(r));
        await this.applyNow(change);
        await this.outDone;
        if (change.kind !== 'presence' && change.kind !== 'nodes-patched') for (const fn of this.visibilityListeners) fn();
        metrics?.applied(change.kind, (performance.now() - t0) / 1000);
      })
      .catch((err: unknown) => {
        this.opts.log.error({ err, change: change.kind }, 'mapper failed to apply a change; resyncing every session');
        return this.resyncAll();
      })
      .catch((err: unknown) => this.opts.log.error({ err }, 'mapper resync failed'));
    return this.queue;
  }

  /** Reloads every node and sends every session a fresh netmap (after missed changes). */
  resyncAll(): Promise<void> {
    const run = async () => {
      const before = [...this.entries.keys()];
      this.entries.clear();
      await this.init();
      for (const s of this.sessions.values()) {
        if (this.entries.has(s.nodeId)) this.sendNetmap(s);
        else s.close(CloseCode.NodeDeleted, 'node deleted');
      }
      for (const id of before) if (!this.entries.has(id)) for (const fn of this.cutOffListeners) fn(id, CloseCode.NodeDeleted, 'node deleted');
    };
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  /** Waits until every change enqueued so far is applied. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * A node's socket authenticated (`row` was just read from the database): replaces any older
   * session of that node and sends the netmap, or a resume when `heldRevision` (what the agent
   * says it holds, already checked as a NetmapRevision) is its list's revision now. `heldEndpoints`
   * (NETMAP_ENDPOINTS_HEADER, checked the same way): the agent reads the compact resume, which is
   * also what makes a resume possible under a policy (it carries the packet filter).
   */
  attach(row: NodeWithUser, socket: import('ws').WebSocket, opts: AttachOptions = {}): Session | null {
    const { regionsJson, heldRevision, heldEndpoints } = opts;
    const nodeId = row.id;
    // Authenticated before a suspension this replica has applied since: refuse like the door would.
    if (this.entries.get(nodeId)?.row.user.suspendedAt) {
      socket.close(CloseCode.UserSuspended, 'user suspended');
      return null;
    }
    if (!this.entries.has(nodeId)) {
      // The change that created it has not reached this replica yet: take the fresher row.
      const e = this.setEntry(row);
      if (visible(row)) {
        e.json = JSON.stringify(e.peer);
        this.list.set(e.peer, e.json, false);
        // Its own view only; others learn of it when its change arrives.
        this.policy?.views.upsert(liveNode(row));
        this.byClass = null;
      }
    }
    const older = this.sessions.get(nodeId);
    older?.close(4409, 'replaced by a newer connection');
    const session = new Session(nodeId, socket, this.opts.metrics?.sent, regionsJson, opts.deflate);
    this.sessions.set(nodeId, session);
    if (older) this.unindex(older);
    this.index(session);
    // Resume or netmap is decided when its turn comes: the list may change while it waits.
    this.admit(session, () => {
      if (heldRevision === undefined) this.writeNetmap(session);
      else if (heldEndpoints !== undefined && heldRevision === this.revisionFor(nodeId)) this.sendCompactResume(session, heldEndpoints);
      else if (heldEndpoints === undefined && !this.policy && heldRevision === this.list.revision) this.sendResume(session);
      else this.writeNetmap(session);
    });
    return session;
  }

  /**
   * Whether the relay may carry packets from `srcNodeId` to `dstNodeId`: only between nodes that
   * are peers in each other's netmap (with an access policy, a pair it makes visible). Asked per
   * packet, so it reads memory only.
   */
  mayRelay(srcNodeId: number, dstNodeId: number): boolean {
    if (srcNodeId === dstNodeId) return false;
    const src = this.entries.get(srcNodeId);
    const dst = this.entries.get(dstNodeId);
    if (src === undefined || dst === undefined || !visible(src.row) || !visible(dst.row)) return false;
    // Under a policy, only a pair the policy makes peers (either side may reach the other).
    return !this.policy || this.policy.sees(srcNodeId, dstNodeId);
  }

  /**
   * Why the mapper has cut this node off (expired, user suspended), as the close code its control
   * socket got; null for a live node or one this replica has not heard of yet.
   */
  cutOff(nodeId: number): { code: number; reason: string } | null {
    const row = this.entries.get(nodeId)?.row;
    if (!row) return null;
    if (row.user.suspendedAt) return { code: CloseCode.UserSuspended, reason: 'user suspended' };
    if (isExpired(row)) return { code: CloseCode.NodeExpired, reason: 'node key expired' };
    return null;
  }

  /**
   * `fn` is called for each node the mapper cuts off (deleted, expired, suspended) with the close
   * code its control socket got, so the node's other sockets (the relay's) close with it; and with
   * RELAY_KEY_ROTATED when the node's key changed (its control socket stays: only sockets bound
   * to the old key close).
   */
  onCutOff(fn: (nodeId: number, code: number, reason: string) => void): void {
    this.cutOffListeners.push(fn);
  }

  /**
   * `fn` is called after each change that may change who sees whom (nodes added, removed, cut off,
   * a policy change), so a standalone relay's copy of `peersOf` can be refreshed.
   */
  onVisibilityChange(fn: () => void): void {
    this.visibilityListeners.push(fn);
  }

  isAttached(nodeId: number): boolean {
    return this.sessions.has(nodeId);
  }

  detach(session: Session): void {
    if (this.sessions.get(session.nodeId) === session) this.sessions.delete(session.nodeId);
    this.unindex(session);
  }

  private index(session: Session): void {
    const cls = this.byClass && this.policy?.views.classOf(session.nodeId);
    if (!cls) return;
    this.classOfSession.set(session, cls);
    let set = this.byClass!.get(cls);
    if (!set) this.byClass!.set(cls, (set = new Set()));
    set.add(session);
  }

  private unindex(session: Session): void {
    const cls = this.classOfSession.get(session);
    if (cls) this.byClass?.get(cls)?.delete(session);
  }

  /** The sessions here by view class (rebuilt from every session after a change that may move nodes between classes). */
  private sessionsByClass(policy: PolicyNetmaps): Map<ViewClass, Set<Session>> {
    if (this.byClass) return this.byClass;
    this.byClass = new Map();
    for (const s of this.sessions.values()) {
      const cls = policy.views.classOf(s.nodeId);
      if (!cls) continue;
      this.classOfSession.set(s, cls);
      let set = this.byClass.get(cls);
      if (!set) this.byClass.set(cls, (set = new Set()));
      set.add(s);
    }
    return this.byClass;
  }

  /** The agent asked for a fresh netmap: coalesced and rate limited by the session. */
  resync(session: Session): ResyncOutcome {
    return session.requestNetmap(() => this.sendNetmap(session));
  }

  /** Sends the session a fresh netmap when its turn comes (NetmapGate). */
  sendNetmap(session: Session): void {
    this.admit(session, () => this.writeNetmap(session));
  }

  /**
   * Holds the session until fewer than NETMAPS_IN_FLIGHT netmaps are being written, then runs
   * `write` (its netmap or resume); its place frees when that has left for the kernel. A session
   * that ended or was replaced while it waited is skipped. One already waiting gets the netmap
   * made when its turn comes; one whose netmap is still leaving has its place and writes at once
   * (its queue bound, not the gate, limits what a reader that does not read can be sent).
   */
  private admit(session: Session, write: () => void): void {
    if (session.waiting) return;
    if (session.netmapInFlight) return write();
    session.hold();
    this.gate.admit((done) => {
      if (!session.closed && this.sessions.get(session.nodeId) === session) write();
      session.afterNetmap(done);
    });
  }

  private writeNetmap(session: Session): void {
    const entry = this.entries.get(session.nodeId);
    if (!entry) return;
    session.resetSeq();
    this.netmapMark.set(session, this.patchClock);
    const self = `,"protocolVersion":${PROTOCOL_VERSION},"self":${JSON.stringify(selfDto(entry.row))}`;
    const regions = session.regionsJson ? `,"regions":${session.regionsJson}` : '';
    if (!this.policy) {
      // The revision right after seq: a reader that counts netmaps finds it in the first bytes.
      session.sendList('netmap', `,"revision":"${this.list.revision}"${self},"peers":[`, this.list.peers, `]${regions}${this.respondersJson}}`);
      return;
    }
    const { peers, filter } = this.policy.netmap(session.nodeId);
    const head = `,"revision":"${this.policy.revisionOf(session.nodeId)}"${self},"peers":[`;
    session.sendList('netmap', head, peers, `]${regions}${this.respondersJson},"packetFilter":${filter}}`);
  }

  /** The revision of the list a netmap for node `id` sends now (its view class's under a policy). */
  private revisionFor(id: number): string {
    return this.policy ? this.policy.revisionOf(id) : this.list.revision;
  }

  /**
   * The agent holds its list as it is now and reads the compact form: every peer's online, nat
   * and lastSeen by position (a character and a number each), endpoints only when the agent's
   * endpoints revision is not the list's, and the packet filter under a policy. One pass over the
   * node's list; it replaces a netmap, so it holds every patch recorded so far (the same mark).
   */
  private sendCompactResume(session: Session, heldEndpoints: string): void {
    const id = session.nodeId;
    const entry = this.entries.get(id)!;
    const cut = this.compactParts(id).except(id);
    session.resetSeq();
    this.netmapMark.set(session, this.patchClock);
    const eps = cut.endpointsRevision === heldEndpoints ? '' : `,"endpoints":[${cut.endpoints()}]`;
    const regions = session.regionsJson ? `,"regions":${session.regionsJson}` : '';
    const filter = this.policy ? `,"packetFilter":${this.policy.filterJson(id)}` : '';
    session.sendText('resume', `,"revision":"${this.revisionFor(id)}","protocolVersion":${PROTOCOL_VERSION},"self":${JSON.stringify(selfDto(entry.row))},"presence":${cut.presence}${eps}${regions}${this.respondersJson}${filter}}`);
  }

  /**
   * The compact resume's parts of the list node `id`'s netmap is made from (the shared list, or
   * its view class's), made once per version of that list (compact-resume.ts): in a storm every
   * resuming agent of a list is cut from the same parts.
   */
  private compactParts(id: number): CompactResumeParts {
    const chunks = this.policy ? this.policy.listChunksOf(id) : this.list.peers;
    if (!chunks) return EMPTY_RESUME;
    const held = this.compactCache.get(chunks);
    if (held && held.generation === chunks.generation) return held.parts;
    const peers: { peer: Peer; endpointsHash: bigint }[] = [];
    for (const x of chunks.idList) {
      const e = this.entries.get(x);
      if (!e) continue; // never: the list holds entries only
      peers.push({ peer: e.peer, endpointsHash: (e.ep ??= peerEndpointsHash(x, e.peer.endpoints)) });
    }
    const parts = new CompactResumeParts(peers);
    this.compactCache.set(chunks, { generation: chunks.generation, parts });
    return parts;
  }

  /**
   * The agent holds the list as it is now (its revision matched): the volatile fields of every
   * peer instead of the whole list, from their own cached chunks. It replaces a netmap, so it
   * holds every patch recorded so far (the same mark).
   */
  private sendResume(session: Session): void {
    const entry = this.entries.get(session.nodeId)!;
    session.resetSeq();
    this.netmapMark.set(session, this.patchClock);
    const head = `,"revision":"${this.list.revision}","protocolVersion":${PROTOCOL_VERSION},"self":${JSON.stringify(selfDto(entry.row))},"patch":[`;
    const regions = session.regionsJson ? `,"regions":${session.regionsJson}` : '';
    session.sendList('resume', head, this.list.volatile, `]${regions}${this.respondersJson}}`);
  }

  /** `,"revision":"R"` for a delta whose receivers hold the list as it is now; '' when that cannot be said. */
  private deltaRevisionField(): string {
    const r = this.list.deltaRevision;
    return r === null ? '' : `,"revision":"${r}"`;
  }

  /**
   * The live node (not expired, its user not suspended) whose WireGuard public key this is (hex),
   * from memory: called for every handshake initiation the responder authenticates.
   */
  nodeByWgKey(keyHex: string): NodeWithUser | undefined {
    const id = this.byKey.get(keyHex);
    const e = id === undefined ? undefined : this.entries.get(id);
    return e && visible(e.row) ? e.row : undefined;
  }

  /**
   * The node with this machine key as this replica knows it (every change applied so far; call
   * after `settled()`), or undefined when it knows none: a node whose change has not reached this
   * replica yet, so the caller asks the database. Connecting agents are looked up here, so a
   * reconnect storm costs no query per connection.
   */
  nodeByMachineKey(machineKey: string): NodeWithUser | undefined {
    const id = this.byMachine.get(machineKey);
    const e = id === undefined ? undefined : this.entries.get(id);
    return e && e.row.machineKey === machineKey ? e.row : undefined;
  }

  private setEntry(row: NodeWithUser): Entry {
    const prev = this.entries.get(row.id);
    if (prev && prev.row.nodeKey !== row.nodeKey) this.byKey.delete(wgKeyHex(prev.row.nodeKey));
    if (prev?.row.machineKey && prev.row.machineKey !== row.machineKey) this.byMachine.delete(prev.row.machineKey);
    const nat = this.nats.get(row.id);
    const e: Entry = { row, peer: nat ? { ...peerDto(row), nat } : peerDto(row) };
    this.entries.set(row.id, e);
    this.byKey.set(wgKeyHex(row.nodeKey), row.id);
    if (row.machineKey) this.byMachine.set(row.machineKey, row.id);
    return e;
  }

  private deleteEntry(id: number): void {
    const e = this.entries.get(id);
    if (e && this.byKey.get(wgKeyHex(e.row.nodeKey)) === id) this.byKey.delete(wgKeyHex(e.row.nodeKey));
    if (e?.row.machineKey && this.byMachine.get(e.row.machineKey) === id) this.byMachine.delete(e.row.machineKey);
    this.entries.delete(id);
  }

  /** Closes every session (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const s of this.sessions.values()) s.close(code, reason);
    this.sessions.clear();
    this.byClass = null;
  }

  private async applyNow(change: Change): Promise<void> {
    // Anything but a patch may move nodes between view classes (also while it awaits the database).
    const moves = change.kind !== 'presence' && change.kind !== 'nodes-patched';
    if (moves) this.byClass = null;
    try {
      await this.applyChange(change);
    } finally {
      if (moves) this.byClass = null;
    }
  }

  private async applyChange(change: Change): Promise<void> {
    switch (change.kind) {
      case 'nodes-upserted':
        return this.upserted(change.nodeIds);
      case 'nodes-removed':
        return this.removed(change.nodeIds, CloseCode.NodeDeleted, 'node deleted');
      case 'nodes-expired':
        return this.removed(change.nodeIds, CloseCode.NodeExpired, 'node key expired');
      case 'nodes-suspended':
        return this.removed(change.nodeIds, CloseCode.UserSuspended, 'user suspended');
      case 'nodes-patched':
        if (change.reflexive) this.reflexiveSet(change.reflexive);
        return this.patched(change.patches);
      case 'presence': {
        // Online before and after: only lastSeen moved, which means nothing to a peer while the
        // node is online (the REST API and the database keep it), so nobody is patched.
        const newer = change.nodes.filter((n) => {
          const stillOnline = n.online && this.entries.get(n.id)?.row.online === true;
          return this.newerPresence(n) && !stillOnline;
        });
        this.patched(newer.map(({ id, online, lastSeen }) => ({ id, online, lastSeen })));
        // Offline everywhere (its replica may have died before saying so): a verdict from elsewhere goes too.
        const stale = newer.filter((n) => !n.online && this.natBy.has(n.id) && !this.isAttached(n.id));
        for (const n of stale) this.natBy.delete(n.id);
        this.natsSet(stale.map((n) => ({ id: n.id, nat: null })));
        return;
      }
      case 'nat':
        return this.natsFrom(change.origin, change.nodes);
      case 'policy-changed':
        return this.policyChanged();
    }
  }

  /**
   * Updates the views in place when a few rules changed (`PolicyNetmaps.update`); otherwise
   * rebuilds them from the new policy and sends each session the difference between what it saw
   * and what it sees now (one body per pair of old and new class), and its new filter.
   */
  private async policyChanged(): Promise<void> {
    const { text, groups, key } = await this.loadPolicySource();
    if (key === this.policyText) return;
    this.policyText = key;
    const policy = text === null ? null : this.parse(text, groups);
    if (policy === undefined) return;
    const old = this.policy;
    // A few rules changed: in place, deltas only to the sessions the changed rules reach.
    const inPlace = old && policy ? old.update(policy, this.sessions.keys(), this.list.deltaRevision !== null) : null;
    if (inPlace) {
      this.inForce = policy;
      this.sendAll(inPlace);
      return;
    }
    const next = policy ? this.buildViews(policy) : null;
    const pairs = new Map<string, { upsert: number[]; remove: number[]; revision: string; body: string }>();
    const out: Outgoing = new Map();
    let all: number[] | undefined;
    const everyone = () => (all ??= [...this.entries.values()].filter((e) => e.json !== undefined).map((e) => e.row.id));
    const json = (x: number) => this.entries.get(x)!.json;
    // What each receiver's list is afterwards: its new class's (or the shared list's) revision.
    const sayRevision = this.list.deltaRevision !== null;
    const body = (upsert: number[], remove: number[], revision: string | null) =>
      `${upsert.length ? `,"upsert":[${upsert.map(json).join(',')}]` : ''}${remove.length ? `,"remove":${JSON.stringify(remove)}` : ''}${sayRevision && revision !== null && (upsert.length || remove.length) ? `,"revision":"${revision}"` : ''}}`;
    for (const s of this.sessions.values()) {
      const id = s.nodeId;
      if (this.entries.get(id)?.json === undefined) continue;
      const oldCls = old?.views.classOf(id);
      const newCls = next?.views.classOf(id);
      const key = `${oldCls?.id ?? 'all'} ${newCls?.id ?? 'all'}`;
      let pair = pairs.get(key);
      if (!pair) {
        const before = oldCls ? oldCls.view : null;
        const after = newCls ? newCls.view : null;
        const has = (v: ReadonlyMap<number, number> | null, x: number) => (v ? v.has(x) : this.entries.get(x)?.json !== undefined);
        const upsert = (after ? [...after.keys()] : everyone()).filter((x) => !has(before, x)).sort((x, y) => x - y);
        const remove = (before ? [...before.keys()] : everyone()).filter((x) => !has(after, x)).sort((x, y) => x - y);
        const revision = next ? next.revisionOf(id) : this.list.revision;
        pairs.set(key, (pair = { upsert, remove, revision, body: body(upsert, remove, revision) }));
      }
      // Shared by every session of the pair, unless the node is in its own lists.
      let rest = pair.upsert.includes(id) || pair.remove.includes(id) ? body(pair.upsert.filter((x) => x !== id), pair.remove.filter((x) => x !== id), pair.revision) : pair.body;
      const filterBefore = old ? old.filterJson(id) : null;
      const filterAfter = next ? next.filterJson(id) : null;
      if (filterBefore !== filterAfter) rest = `${rest.slice(0, -1)},"packetFilter":${filterAfter ?? 'null'}}`;
      if (rest !== '}') out.set(id, rest);
    }
    this.policy = next;
    this.inForce = policy;
    this.sendAll(out);
  }

  private sendAll(out: Outgoing): void {
    const items: (readonly [Session, string])[] = [];
    for (const [id, rest] of out) {
      const s = this.sessions.get(id);
      if (s) items.push([s, rest]);
    }
    this.deliver(items);
  }

  /**
   * Sends each session its delta, DELTA_SEND_SLICE per turn of the event loop: the rest after a
   * setImmediate, so the database's queries and REST responses interleave with a fan-out to every
   * session. Every delta goes through here, behind those still queued, so each session gets them
   * in the order the mapper made them. A session detached meanwhile is skipped.
   */
  private deliver(items: (readonly [Session, string])[]): void {
    if (!items.length) return;
    if (!this.outJobs.length && items.length <= this.sendSlice) {
      for (const [s, rest] of items) s.send('delta', rest);
      return;
    }
    this.outJobs.push(items);
    if (this.outResolve) return;
    this.outDone = new Promise<void>((r) => (this.outResolve = r));
    this.drainOut();
  }

  private drainOut(): void {
    let budget = this.sendSlice;
    while (this.outJobs.length && budget > 0) {
      const job = this.outJobs[0]!;
      while (this.outPos < job.length && budget-- > 0) {
        const [s, rest] = job[this.outPos++]!;
        if (this.sessions.get(s.nodeId) === s) s.send('delta', rest);
      }
      if (this.outPos >= job.length) {
        this.outJobs.shift();
        this.outPos = 0;
      }
    }
    if (this.outJobs.length) {
      setImmediate(() => this.drainOut());
      return;
    }
    const done = this.outResolve;
    this.outResolve = null;
    done?.();
  }

  /** Presence writes reach replicas out of commit order: only a higher `seq` than the row's counts. */
  private newerPresence(n: PresenceChange): boolean {
    const e = this.entries.get(n.id);
    if (!e || n.seq <= e.row.presenceSeq) return false;
    e.row = { ...e.row, presenceSeq: n.seq };
    return true;
  }

  private async upserted(ids: number[]): Promise<void> {
    const rows = await this.opts.loadRows(ids);
    const upsert: Peer[] = [];
    const gone: number[] = [];
    for (const row of rows) {
      const before = this.entries.get(row.id);
      // A rotated node key: the relay stamps packets with the key it authenticated, so that socket must go.
      if (before && before.row.nodeKey !== row.nodeKey) for (const fn of this.cutOffListeners) fn(row.id, RELAY_KEY_ROTATED.code, RELAY_KEY_ROTATED.reason);
      const e = this.setEntry(row);
      const peer = e.peer;
      if (visible(row)) {
        e.json = JSON.stringify(peer);
        this.list.set(peer, e.json, true);
        this.policy?.views.upsert(liveNode(row));
        upsert.push(peer);
      } else {
        this.list.delete(row.id);
        gone.push(row.id);
      }
      const own = this.sessions.get(row.id);
      if (own) this.deliver([[own, `,"self":${JSON.stringify(selfDto(row))}}`]]);
    }
    const found = new Set(rows.map((r) => r.id));
    for (const id of ids) if (!found.has(id)) gone.push(id);
    if (this.policy) this.sendAll(this.policy.collect(new Set(upsert.map((p) => p.id)), this.sessions.keys(), this.list.deltaRevision !== null));
    // With removals to follow, the list after this upsert is not the list now: no revision.
    else if (upsert.length) this.broadcast(`,"upsert":${JSON.stringify(upsert)}${gone.length ? '' : this.deltaRevisionField()}}`, new Set(upsert.map((p) => p.id)));
    if (gone.length) await this.removed(gone, CloseCode.NodeDeleted, 'node deleted');
  }

  private async removed(ids: number[], code: number, reason: string): Promise<void> {
    const visibleBefore = ids.filter((id) => this.entries.get(id) && visible(this.entries.get(id)!.row));
    for (const id of ids) {
      for (const fn of this.cutOffListeners) fn(id, code, reason);
      this.nats.delete(id);
      this.natBy.delete(id);
      this.sessions.get(id)?.close(code, reason);
      this.sessions.delete(id);
      this.list.delete(id);
      this.policy?.views.remove(id);
      const gone = this.entries.get(id);
      if (gone) delete gone.json;
      if (code === CloseCode.NodeDeleted) this.deleteEntry(id);
      else if (code === CloseCode.UserSuspended) {
        // Suspended: the node still exists; resume upserts it from a fresh row.
        const e = this.entries.get(id);
        if (e) e.row = { ...e.row, user: { ...e.row.user, suspendedAt: e.row.user.suspendedAt ?? new Date() } };
      } else {
        // Expired: keep the row (the node still exists) but mark it so visibility drops it.
        const e = this.entries.get(id);
        if (e && !isExpired(e.row)) e.row = { ...e.row, expiresAt: new Date() };
      }
    }
    if (this.policy) this.sendAll(this.policy.collect(new Set(), this.sessions.keys(), this.list.deltaRevision !== null));
    else if (visibleBefore.length) this.broadcast(`,"remove":${JSON.stringify(visibleBefore)}${this.deltaRevisionField()}}`, new Set(ids));
  }

  /**
   * A node reported its netcheck verdict (null: it disconnected from this replica): kept in memory
   * and sent to its peers as a patch (coalesced like online/endpoints; no view is recomputed).
   * The same verdict again sends nothing. True when this replica's verdict for the node changed
   * (the caller carries it to the other replicas, state/nat.ts).
   */
  natReported(nodeId: number, nat: NatVerdict | null, at: number): boolean {
    const before = this.natBy.get(nodeId)?.get('')?.nat;
    if (nat === null ? before === undefined : before && sameNat(before, nat)) return false;
    this.natsFrom('', [{ id: nodeId, nat, at }]);
    return true;
  }

  /**
   * Verdicts replica `origin` ('' = this one) reported: each replaces that replica's verdict for
   * the node (a null removes it), and peers get the one the node reported last on any replica
   * (a tie goes to the one that arrived last).
   */
  private natsFrom(origin: string, nodes: { id: number; nat: NatVerdict | null; at?: number }[]): void {
    const apply: { id: number; nat: NatVerdict | null }[] = [];
    for (const n of nodes) {
      if (!this.entries.has(n.id)) continue;
      let by = this.natBy.get(n.id);
      if (!by) this.natBy.set(n.id, (by = new Map()));
      by.delete(origin);
      if (n.nat) by.set(origin, { nat: { udp: n.nat.udp, mappingVariesByDestination: n.nat.mappingVariesByDestination }, at: n.at ?? Date.now() });
      let newest: { nat: NatVerdict; at: number } | undefined;
      for (const v of by.values()) if (!newest || v.at >= newest.at) newest = v;
      if (!newest) this.natBy.delete(n.id);
      apply.push({ id: n.id, nat: newest?.nat ?? null });
    }
    this.natsSet(apply);
  }

  /** Sets verdicts and patches peers with the ones that changed (the same verdict again sends nothing); returns those. */
  private natsSet(nodes: { id: number; nat: NatVerdict | null }[]): PeerPatch[] {
    const patches: PeerPatch[] = [];
    for (const { id, nat } of nodes) {
      const before = this.nats.get(id);
      if (nat === null ? before === undefined : before && sameNat(before, nat)) continue;
      if (nat) this.nats.set(id, nat);
      else this.nats.delete(id);
      patches.push({ id, nat: nat ? this.nats.get(id)! : null });
    }
    if (patches.length) this.patched(patches);
    return patches;
  }

  /** A node's own session learns where the server sees its WireGuard port (`self.reflexiveEndpoint`). */
  private reflexiveSet(list: { id: number; endpoint: string }[]): void {
    for (const { id, endpoint } of list) {
      const e = this.entries.get(id);
      if (!e || e.row.reflexiveEndpoint === endpoint) continue;
      e.row = { ...e.row, reflexiveEndpoint: endpoint };
      const s = this.sessions.get(id);
      if (s) this.deliver([[s, `,"self":${JSON.stringify(selfDto(e.row))}}`]]);
    }
  }

  private patched(patches: PeerPatch[]): void {
    for (const p of patches) {
      const e = this.entries.get(p.id);
      if (!e) continue;
      const peer = { ...e.peer, ...p };
      e.peer = peer;
      if (p.endpoints !== undefined) delete e.ep;
      e.row = { ...e.row, ...(p.online !== undefined ? { online: p.online } : {}), ...(p.endpoints ? { endpoints: p.endpoints } : {}), ...(p.lastSeen !== undefined ? { lastSeen: p.lastSeen ? new Date(p.lastSeen) : null } : {}) };
      if (!visible(e.row)) continue;
      e.json = JSON.stringify(peer);
      this.list.set(peer, e.json);
      this.policy?.refresh(p.id);
      const prev = this.pendingPatches.get(p.id);
      this.pendingPatches.set(p.id, prev ? { ...prev, ...p } : p);
      this.pendingAt.set(p.id, ++this.patchClock);
    }
    if (this.pendingPatches.size && !this.patchTimer) {
      this.patchTimer = setTimeout(() => this.flushPatches(), this.patchWindowMs());
      this.patchTimer.unref();
    }
  }

  /**
   * Every flush is one message to every session, so the window grows with the fleet: 200 ms up to
   * 2,000 sessions, then 0.1 ms per session (1 s at 10,000), capped at 2 s. Online and endpoint
   * changes are not worth 50,000 messages a second. `patchIntervalMs` is the floor (the cap
   * applies to the growth only).
   */
  private patchWindowMs(): number {
    return Math.max(this.patchIntervalMs, Math.min(2000, this.sessions.size / 10));
  }

  /** Sends the window's patches now (the window's timer calls it; tests end a window with it). */
  flushPatches(): void {
    if (this.patchTimer) clearTimeout(this.patchTimer);
    this.patchTimer = null;
    const patches = [...this.pendingPatches.values()];
    const at = this.pendingAt;
    this.pendingPatches = new Map();
    this.pendingAt = new Map();
    if (!patches.length) return;
    if (this.policy) return this.flushPolicyPatches(patches, at, this.policy);
    // Every session sees every patched node; one that connected in this window has them in its
    // netmap already (as under a policy). A node is not sent its own patch.
    const b = classPatches(patches, at)!;
    const items: (readonly [Session, string])[] = [];
    for (const s of this.sessions.values()) {
      const rest = this.patchesFor(s, b);
      if (rest !== null) items.push([s, rest]);
    }
    this.deliver(items);
  }

  /**
   * Each session whose view holds a patched node gets one message with all of the window's
   * patches it sees: one body per view class, built from the window's patches once per class, so
   * a session's patch rate is one message per window however many sessions or patches there are.
   * A session whose netmap was sent after the last of them (it connected in this window) already
   * has them all and is sent nothing.
   */
  private flushPolicyPatches(patches: PeerPatch[], at: Map<number, number>, policy: PolicyNetmaps): void {
    const items: (readonly [Session, string])[] = [];
    for (const [cls, members] of this.sessionsByClass(policy)) {
      if (!members.size) continue;
      const b = classPatches(patches.filter((p) => cls.view.has(p.id)), at);
      if (!b) continue;
      for (const s of members) {
        const rest = this.patchesFor(s, b);
        if (rest !== null) items.push([s, rest]);
      }
    }
    this.deliver(items);
  }

  /**
   * What a session is sent of a window's patches: those recorded after its netmap or resume (its
   * mark), never its own. A session that got its netmap or resume before the window opened gets
   * the shared body; one that got it during the window gets only the later patches (a body per
   * distinct suffix, shared by every session with the same one), never what it already holds.
   */
  private patchesFor(s: Session, b: ClassPatches): string | null {
    const mark = this.netmapMark.get(s) ?? -1;
    // The first patch recorded after the mark (patches in recording order).
    let lo = 0;
    let hi = b.byAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b.byAt[mid]!.at <= mark) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= b.byAt.length) return null;
    const own = b.ids.has(s.nodeId) && b.at.get(s.nodeId)! > mark;
    if (lo === 0 && !own) return b.body;
    if (!own) {
      let body = b.suffix.get(lo);
      if (body === undefined) b.suffix.set(lo, (body = `,"patch":${JSON.stringify(b.byAt.slice(lo).map((x) => x.p))}}`));
      return body;
    }
    const rest = b.byAt.slice(lo).filter((x) => x.p.id !== s.nodeId);
    return rest.length ? `,"patch":${JSON.stringify(rest.map((x) => x.p))}}` : null;
  }

  /** Sends the same delta body to every session except those of `except`. */
  private broadcast(rest: string, except: Set<number>): void {
    const items: (readonly [Session, string])[] = [];
    for (const s of this.sessions.values()) if (!except.has(s.nodeId)) items.push([s, rest]);
    this.deliver(items);
  }
}

/** A window's patches one view class sees, in the order they were (last) recorded. */
interface ClassPatches {
  ids: Set<number>;
  at: Map<number, number>;
  byAt: { p: PeerPatch; at: number }[];
  /** Every patch (for sessions whose netmap predates the window). */
  body: string;
  /** Bodies of the patches from position i on, built when a session needs one. */
  suffix: Map<number, string>;
}

function classPatches(list: PeerPatch[], at: Map<number, number>): ClassPatches | null {
  if (!list.length) return null;
  const byAt = list.map((p) => ({ p, at: at.get(p.id) ?? Infinity })).sort((x, y) => x.at - y.at);
  return { ids: new Set(list.map((p) => p.id)), at, byAt, body: `,"patch":${JSON.stringify(byAt.map((x) => x.p))}}`, suffix: new Map() };
}

/** In force when the stored policy cannot be read as a policy (it was checked when stored, so never expected). */
const DENY_ALL: Policy = { groups: new Map(), tagOwners: new Map(), rules: [], tests: [], autoApprovers: { routes: [], exitNode: [] } };

/** Whether other nodes see this one at all. */
function visible(row: NodeWithUser): boolean {
  return !isExpired(row) && !row.user.suspendedAt && !row.approvalPending;
}

/** "nodekey:<hex>" -> "<hex>", the form the WireGuard responder looks keys up by. */
const wgKeyHex = (nodeKey: string) => nodeKey.slice('nodekey:'.length);

function sameNat(a: NatVerdict, b: NatVerdict): boolean {
  return a.udp === b.udp && a.mappingVariesByDestination === b.mappingVariesByDestination;
}
