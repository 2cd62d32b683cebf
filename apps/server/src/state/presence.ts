/**
 * Presence: whether a node is online, kept per replica session so that a replica that dies stops
 * counting its nodes.
 *
 * - Every server process registers a row in `replicas` (id = its change-hub origin) and beats it
 *   with database time; one whose beat is older than REPLICA_DEAD_AFTER_MS is dead.
 * - An agent socket is a `node_sessions` row (node, replica). A node is online while it has at
 *   least one; `nodes.online` caches that and is written in the same transaction as the sessions,
 *   with `presence_seq` bumped, so the mapper can drop an online patch that arrives out of order.
 * - Any replica's sweep deletes dead replicas with their sessions and recomputes their nodes. On
 *   the embedded database only one process can run, so at start-up every other row is a
 *   predecessor: it is treated as a replica that just stopped beating and swept after a grace
 *   (SOLE_RESTART_GRACE_MS), so agents that reconnect within it never go offline.
 * - A replica that stops gracefully (SIGTERM: a restart, a rolling upgrade) stamps its row with
 *   `keep_sessions_until` = now + that grace. Sweeps keep a stamped replica's sessions until then
 *   even though it no longer beats, so its agents, reconnecting to another replica or to its own
 *   successor on Postgres, stay online throughout and no peer hears of them. A crash leaves no
 *   stamp and is swept after REPLICA_DEAD_AFTER_MS as before. The cost: a node that goes away
 *   together with a gracefully stopped replica shows offline only after the grace.
 *
 * Every writer locks the replica row, then the node rows in id order, then changes sessions, and
 * only then (in a later statement, so a fresh snapshot under READ COMMITTED) recomputes `online`
 * from the sessions. A node that moved from replica A to B is therefore never marked offline when
 * A's stale session closes: A's recompute sees B's session, or B's own write comes after A's.
 *
 * Writes are level-triggered: connect/disconnect only record what this replica holds and mark the
 * node dirty; one writer per replica drains the dirty set in batches, writing what is true when it
 * runs, so a disconnect and a reconnect racing each other cannot land in the wrong order.
 */
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { PRESENCE_BATCH, PRESENCE_COALESCE_MS, PRESENCE_RETRY_MS } from '../tunables.js';
import type { Change, PresenceChange } from './changes.js';
import { audit, SYSTEM, TX_OPTIONS, type StateContext, type Tx } from './context.js';

type Log = Pick<FastifyBaseLogger, 'warn' | 'error'>;

/** Node names listed in one audit event; the count is always complete. */
const AUDIT_NAMES = 50;

interface PresenceRow { id: number; name: string; online: boolean; lastSeen: Date; seq: number }

export class Presence {
  /** Nodes with an agent socket on this replica. */
  private readonly local = new Set<number>();
  private readonly dirty = new Set<number>();
  private draining: Promise<void> | null = null;
  private stopped = false;
  /** Embedded database: until it fires, a predecessor's sessions are kept (see `start`). */
  private grace: NodeJS.Timeout | null = null;
  private readonly host = `${hostname()}/${process.pid}`;

  constructor(
    private readonly ctx: StateContext,
    readonly replicaId: string,
    private readonly log: Log,
  ) {}

  /**
   * Registers this replica and sweeps. `sole` (the embedded database, one process at a time):
   * every other replica row is a predecessor, swept with its sessions `graceMs` from now whatever
   * its last beat (a downtime longer than the dead-after bound must not sweep it sooner). A node
   * that reconnects meanwhile has a session here too, so it stays online and no peer hears of it.
   */
  async start(opts: { sole: boolean; deadAfterMs: number; graceMs?: number }): Promise<void> {
    await this.ctx.prisma.replica.createMany({ data: [{ id: this.replicaId, host: this.host }], skipDuplicates: true });
    const graceMs = opts.graceMs ?? 0;
    if (opts.sole && graceMs > 0) {
      this.grace = setTimeout(() => {
        this.sweep(opts.deadAfterMs, { everyOther: true })
          .catch((err: unknown) => this.log.warn({ err }, "failed to sweep the predecessor's sessions; the heartbeat sweep retries"))
          .finally(() => (this.grace = null));
      }, graceMs);
      this.grace.unref();
    }
    await this.sweep(opts.deadAfterMs, { everyOther: opts.sole && graceMs <= 0 });
  }

  /** This replica now holds a socket of `nodeId`. */
  connected(nodeId: number): void {
    this.local.add(nodeId);
    this.markDirty(nodeId);
  }

  /** This replica no longer holds a socket of `nodeId` (call once the last one closed). */
  disconnected(nodeId: number): void {
    this.local.delete(nodeId);
    this.markDirty(nodeId);
  }

  /**
   * Stamps this replica's row. If another replica declared it dead meanwhile (a stall longer than
   * the dead-after bound) the row and its sessions are gone: register again and rewrite them.
   */
  async beat(): Promise<void> {
    const n = await this.ctx.prisma.$executeRaw`UPDATE replicas SET heartbeat_at = now() WHERE id = ${this.replicaId}`;
    if (n > 0) return;
    this.log.warn({ replica: this.replicaId, sessions: this.local.size }, 'this replica was declared dead (missed heartbeats); registering again');
    await this.ctx.prisma.replica.createMany({ data: [{ id: this.replicaId, host: this.host }], skipDuplicates: true });
    for (const id of this.local) this.markDirty(id);
  }

  /**
   * Deletes replicas whose last beat is older than `deadAfterMs` (or, with `everyOther`, every
   * replica but this one) with their sessions, and sets `online` right for every node whose cache
   * disagrees with its sessions. Safe on every replica at once. Returns the nodes it changed.
   */
  async sweep(deadAfterMs: number, opts: { everyOther?: boolean } = {}): Promise<number[]> {
    const everyOther = opts.everyOther ?? false;
    // During a sole restart's grace every other row is the predecessor, kept until the grace ends.
    const keepOthers = !everyOther && this.grace !== null;
    const rows = await this.ctx.prisma.$transaction(async (tx) => {
      const dead = await tx.$queryRaw<{ id: string; host: string; heartbeatAt: Date }[]>`
        SELECT id, host, heartbeat_at AS "heartbeatAt" FROM replicas
        WHERE id <> ${this.replicaId} AND (${everyOther}::boolean OR (NOT ${keepOthers}::boolean
          AND heartbeat_at < now() - ${deadAfterMs}::int * interval '1 millisecond'
          AND (keep_sessions_until IS NULL OR keep_sessions_until < now())))
        ORDER BY id FOR UPDATE SKIP LOCKED`;
      const deadIds = dead.map((r) => r.id);
      const held = deadIds.length
        ? (await tx.$queryRaw<{ nodeId: number }[]>`SELECT DISTINCT node_id AS "nodeId" FROM node_sessions WHERE replica_id = ANY(${deadIds}::text[])`).map((r) => r.nodeId)
        : [];
      // Locked before any session changes, in id order like every other presence writer.
      const locked = (
        await tx.$queryRaw<{ id: number }[]>`
          SELECT n.id FROM nodes n
          WHERE n.id = ANY(${held}::int[]) OR n.online <> EXISTS (SELECT 1 FROM node_sessions s WHERE s.node_id = n.id)
          ORDER BY n.id FOR UPDATE`
      ).map((r) => r.id);
      const byReplica = new Map<string, number[]>();
      if (deadIds.length) {
        const gone = await tx.$queryRaw<{ nodeId: number; replicaId: string }[]>`
          DELETE FROM node_sessions WHERE replica_id = ANY(${deadIds}::text[]) RETURNING node_id AS "nodeId", replica_id AS "replicaId"`;
        for (const s of gone) byReplica.set(s.replicaId, [...(byReplica.get(s.replicaId) ?? []), s.nodeId]);
        await tx.$executeRaw`DELETE FROM replicas WHERE id = ANY(${deadIds}::text[])`;
      }
      if (!locked.length && !dead.length) return [];
      // A node left with no session was last seen when its replica last beat, while other replicas
      // were up to take it. After a sole server's restart the downtime does not count against it:
      // an ephemeral node gets its whole timeout from now to come back.
      const lastBeat = everyOther ? null : (dead.reduce<Date | null>((m, r) => (m && m > r.heartbeatAt ? m : r.heartbeatAt), null)?.toISOString() ?? null);
      const changed = locked.length ? await recompute(tx, locked, lastBeat) : [];
      await auditSweep(tx, dead, byReplica, changed);
      if (changed.length) await this.ctx.record(tx, presenceChange(changed));
      return changed;
    }, TX_OPTIONS);
    this.publish(rows);
    return rows.map((r) => r.id);
  }

  /** Waits until every connect and disconnect recorded so far is written. */
  async settled(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Stops writing (shutdown). Sessions stay until a sweep by a restarted or another replica; with
   * `keepSessionsMs` (a graceful stop) the row is stamped so that no sweep takes them sooner than
   * that from now, whatever the dead-after bound.
   */
  async stop(opts: { keepSessionsMs?: number } = {}): Promise<void> {
    this.stopped = true;
    if (this.grace) clearTimeout(this.grace);
    this.grace = null;
    await this.draining;
    const keepMs = Math.round(opts.keepSessionsMs ?? 0);
    if (keepMs <= 0) return;
    try {
      await this.ctx.prisma.$executeRaw`UPDATE replicas SET keep_sessions_until = now() + ${keepMs}::int * interval '1 millisecond' WHERE id = ${this.replicaId}`;
    } catch (err) {
      this.log.warn({ err }, "could not mark this replica as stopped gracefully; its sessions are swept as a crashed replica's");
    }
  }

  private markDirty(nodeId: number): void {
    this.dirty.add(nodeId);
    if (this.draining || this.stopped) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      if (this.dirty.size && !this.stopped) this.markDirty(this.dirty.values().next().value!);
    });
  }

  private async drain(): Promise<void> {
    // Others marked in the next moments join this batch (a storm: few large transactions).
    await new Promise((r) => setTimeout(r, PRESENCE_COALESCE_MS));
    while (this.dirty.size && !this.stopped) {
      const ids = [...this.dirty].slice(0, PRESENCE_BATCH);
      for (const id of ids) this.dirty.delete(id);
      try {
        this.publish(await this.write(ids));
      } catch (err) {
        for (const id of ids) this.dirty.add(id);
        this.log.warn({ err, nodes: ids.length }, 'failed to record node presence; retrying');
        await new Promise((r) => setTimeout(r, PRESENCE_RETRY_MS));
      }
    }
  }

  /** Makes the sessions of `ids` on this replica match `local`, and recomputes those nodes. */
  private async write(ids: number[]): Promise<PresenceRow[]> {
    return this.ctx.prisma.$transaction(async (tx) => {
      // Held until commit: a sweeper cannot delete this replica halfway through.
      let mine = await tx.$queryRaw<unknown[]>`SELECT 1 FROM replicas WHERE id = ${this.replicaId} FOR KEY SHARE`;
      if (!mine.length) {
        // Swept while alive: every session this replica holds must be written again.
        await tx.replica.createMany({ data: [{ id: this.replicaId, host: this.host }], skipDuplicates: true });
        mine = await tx.$queryRaw<unknown[]>`SELECT 1 FROM replicas WHERE id = ${this.replicaId} FOR KEY SHARE`;
        ids = [...new Set([...ids, ...this.local])];
      }
      const locked = (await tx.$queryRaw<{ id: number }[]>`SELECT id FROM nodes WHERE id = ANY(${ids}::int[]) ORDER BY id FOR UPDATE`).map((r) => r.id);
      if (!locked.length) return [];
      const present = locked.filter((id) => this.local.has(id));
      const absent = locked.filter((id) => !this.local.has(id));
      if (present.length) await tx.nodeSession.createMany({ data: present.map((nodeId) => ({ nodeId, replicaId: this.replicaId })), skipDuplicates: true });
      if (absent.length) await tx.nodeSession.deleteMany({ where: { replicaId: this.replicaId, nodeId: { in: absent } } });
      const rows = await recompute(tx, locked, null, { always: true });
      if (rows.length) await this.ctx.record(tx, presenceChange(rows));
      return rows;
    }, TX_OPTIONS);
  }

  private publish(rows: PresenceRow[]): void {
    if (rows.length) this.ctx.emit(presenceChange(rows));
  }
}

function presenceChange(rows: PresenceRow[]): Change {
  const nodes: PresenceChange[] = rows.map((r) => ({ id: r.id, online: r.online, lastSeen: r.lastSeen.toISOString(), seq: r.seq }));
  return { kind: 'presence', nodes };
}

/**
 * Sets `online` of the locked nodes `ids` from their sessions, bumping `presence_seq`. A separate
 * statement from the locking one, so it sees every session committed before the locks were won.
 * `always`: also the nodes whose value did not change (a connect or disconnect refreshes lastSeen).
 * A node going offline without `always` was last seen at `lastBeat` (its dead replica's last beat;
 * null = now).
 */
async function recompute(tx: Tx, ids: number[], lastBeat: string | null, opts: { always?: boolean } = {}): Promise<PresenceRow[]> {
  const always = opts.always ?? false;
  return tx.$queryRaw<PresenceRow[]>`
    UPDATE nodes n SET
      online = x.has,
      last_seen = CASE WHEN ${always}::boolean OR x.has THEN now() AT TIME ZONE 'UTC'
                       ELSE GREATEST(n.last_seen, COALESCE(${lastBeat}::timestamptz, now()) AT TIME ZONE 'UTC') END,
      presence_seq = n.presence_seq + 1
    FROM (SELECT m.id, EXISTS (SELECT 1 FROM node_sessions s WHERE s.node_id = m.id) AS has FROM nodes m WHERE m.id = ANY(${ids}::int[])) x
    WHERE n.id = x.id AND (${always}::boolean OR n.online <> x.has)
    RETURNING n.id, n.name, n.online, n.last_seen AT TIME ZONE 'UTC' AS "lastSeen", n.presence_seq AS seq`;
}

/** One `replica.expire` per dead replica, and one `node.presence-repair` for any other fix. */
async function auditSweep(tx: Tx, dead: { id: string; host: string; heartbeatAt: Date }[], byReplica: Map<string, number[]>, changed: PresenceRow[]): Promise<void> {
  const names = (rows: PresenceRow[]) => ({ count: rows.length, names: rows.slice(0, AUDIT_NAMES).map((r) => r.name) });
  const explained = new Set<number>();
  for (const r of dead) {
    const held = new Set(byReplica.get(r.id) ?? []);
    const offline = changed.filter((c) => held.has(c.id) && !c.online);
    for (const c of offline) explained.add(c.id);
    await audit(tx, SYSTEM, 'replica.expire', `replica:${r.id}`, { host: r.host, lastHeartbeat: r.heartbeatAt.toISOString(), sessions: held.size, offline: names(offline) });
  }
  const rest = changed.filter((c) => !explained.has(c.id));
  if (rest.length) {
    await audit(tx, SYSTEM, 'node.presence-repair', null, { online: names(rest.filter((c) => c.online)), offline: names(rest.filter((c) => !c.online)) });
  }
}
