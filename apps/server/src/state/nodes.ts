import type { MachinePublicKey } from '@weft/crypto';
import { EndpointsMessage, isTagName, parseEndpoint, TAG_RULE, type CreateNode, type Node, type NodeExpiryChange, type NodePage, type NodeQuery, type PeerPatch, type RegisterRequest, type RegisterResponse } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { insertNode, lockAllocation } from './allocate.js';
import type { AuthKeys } from './auth-keys.js';
import { audit, isRecordNotFound, isUniqueViolation, SYSTEM, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import type { Change } from './changes.js';
import { awaitingAdmin, isExpired, nodeDto, peerEndpoints, policyLogin, selfDto, withUser, type NodeWithUser } from './dto.js';
import type { LoginAdmission, Logins } from './logins.js';
import { nodeOrderBy, nodeWhere } from './node-query.js';
import { assertMayTag } from './tag-owners.js';
import { DAY_MS, type TailnetSettingsStore } from './tailnet-settings.js';
import { assertUsable, shareLockUser, usableUserOrThrow, userSuspended } from './users.js';


export class Nodes {
  constructor(
    private readonly ctx: StateContext,
    private readonly authKeys: AuthKeys,
    private readonly logins: Logins,
    private readonly settings: TailnetSettingsStore,
  ) {}

  async list(): Promise<Node[]> {
    return (await this.ctx.prisma.node.findMany({ orderBy: { id: 'asc' }, include: withUser })).map(nodeDto);
  }

  /** Filtered, sorted; one page when `limit` is given, else every match (node-query.ts). */
  async page(q: NodeQuery): Promise<NodePage> {
    const where = nodeWhere(q);
    const offset = q.offset ?? 0;
    // One snapshot for the count and the rows: a total that agrees with the page it came with.
    const [total, rows] = await this.ctx.prisma.$transaction([
      this.ctx.prisma.node.count({ where }),
      this.ctx.prisma.node.findMany({ where, orderBy: nodeOrderBy(q.sort, q.order), include: withUser, skip: offset, ...(q.limit ? { take: q.limit } : {}) }),
    ]);
    const end = offset + rows.length;
    return { items: rows.map(nodeDto), total, next: q.limit && end < total ? end : null };
  }

  async get(id: number): Promise<Node> {
    return nodeDto(await this.row(id));
  }

  /** Rows for the mapper: every node, or just `ids`. */
  async rows(ids?: number[]): Promise<NodeWithUser[]> {
    return this.ctx.prisma.node.findMany({ where: ids ? { id: { in: ids } } : {}, include: withUser, orderBy: { id: 'asc' } });
  }

  async byMachineKey(machineKey: MachinePublicKey): Promise<NodeWithUser | null> {
    return this.ctx.prisma.node.findUnique({ where: { machineKey }, include: withUser });
  }

  /** Inside a transaction pass `tx`: PGlite has one connection, so a query beside it would wait forever. */
  private async row(id: number, db: Tx = this.ctx.prisma): Promise<NodeWithUser> {
    const n = await db.node.findUnique({ where: { id }, include: withUser });
    if (!n) throw new ApiError(Errors.nodeNotFound, `no node with id ${id}; list them with: weft-server nodes list`);
    return n;
  }

  /**
   * A device joins (or comes back). Proof of the machine key was checked by the caller.
   * - Known machine key, not expired, no auth key: returns the existing node (restart, re-up).
   * - Auth key: joins at once (a known, expired machine is renewed in place).
   * - Neither: interactive login, answered `pending` until a person approves it.
   * - A node waiting for an admin's approval (`device_approval_required`) is answered `pending`
   *   with `approval: "admin"` on every path, until `approve`.
   */
  async register(machineKey: MachinePublicKey, req: RegisterRequest, admitLogin?: LoginAdmission, origin: { ip?: string } = {}): Promise<RegisterResponse> {
    const existing = await this.byMachineKey(machineKey);
    if (existing?.user.suspendedAt) throw userSuspended(existing.user.name);
    // A device waiting for (or just given) an admin's approval polls with the body it joined with:
    // the auth key it already spent on this node is a poll, not a new join (spending a single-use
    // key again would refuse it as used).
    const polling = existing !== null && req.authKey !== undefined && existing.authKeyId !== null && existing.nodeKey === req.nodeKey
      && !isExpired(existing) && (await this.authKeys.isKey(req.authKey, existing.authKeyId));
    if (existing && (!req.authKey || polling) && !isExpired(existing)) {
      // An approved login that the agent has not collected yet is done with now.
      await this.ctx.prisma.pendingLogin.deleteMany({ where: { machineKey } });
      if (existing.nodeKey !== req.nodeKey) {
        const updated = await this.ctx.prisma.$transaction(async (tx) => {
          const n = await tx.node.update({ where: { id: existing.id }, data: { nodeKey: req.nodeKey }, include: withUser });
          await audit(tx, { type: 'node', id: String(n.id), name: n.name, origin: 'agent', ...(origin.ip ? { ip: origin.ip } : {}) }, 'node.rotate-key', `node:${n.name}`);
          await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
          return n;
        });
        this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [updated.id] });
        return updated.approvalPending ? awaitingAdmin(this.ctx.serverUrl, updated) : { status: 'registered', node: selfDto(updated) };
      }
      return existing.approvalPending ? awaitingAdmin(this.ctx.serverUrl, existing) : { status: 'registered', node: selfDto(existing) };
    }
    if (!req.authKey) return this.logins.startOrPoll(machineKey, req, admitLogin);

    const authKey = req.authKey;
    try {
      const node = await this.ctx.prisma.$transaction(async (tx) => {
        // The owner's row first (lock order: user, then key): a suspend or offboard running now
        // either refuses this join or sees its node.
        const found = await this.authKeys.find(tx, authKey);
        const owner = found ? await shareLockUser(tx, found.userId) : null;
        const key = await this.authKeys.consume(tx, authKey, found);
        if (owner) assertUsable(owner);
        if (existing) {
          // Renewal of a known machine: same node, same addresses, fresh key and expiry (a node
          // whose expiry an admin disabled keeps it disabled).
          const expiresAt = existing.expiresAt === null ? null : await this.settings.expiryFromNow(tx);
          const n = await tx.node.update({
            where: { id: existing.id },
            data: { nodeKey: req.nodeKey, hostname: req.hostname, expiresAt, expiryHandledAt: null, userId: key.userId, authKeyId: key.id },
            include: withUser,
          });
          await audit(tx, { type: 'authkey', id: String(key.id), name: key.prefix, origin: 'agent', ...(origin.ip ? { ip: origin.ip } : {}) }, 'node.renew', `node:${n.name}`);
          await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
          return n;
        }
        const settings = await this.settings.get(tx);
        await lockAllocation(tx);
        const approvalPending = settings.deviceApprovalRequired && !key.preApproved;
        const n = await insertNode(this.ctx, tx, {
          userId: key.userId,
          hostname: req.hostname,
          nodeKey: req.nodeKey,
          machineKey,
          tags: key.tags,
          ephemeral: key.ephemeral,
          authKeyId: key.id,
          expiresAt: new Date(Date.now() + settings.nodeKeyExpiryDays * DAY_MS),
          approvalPending,
        });
        await audit(tx, { type: 'authkey', id: String(key.id), name: key.prefix, origin: 'agent', ...(origin.ip ? { ip: origin.ip } : {}) }, 'node.register', `node:${n.name}`, { ipv4: n.ipv4, user: n.user.name, ...(approvalPending ? { approvalPending } : {}) });
        await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
        return n;
      }, TX_OPTIONS);
      this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
      return node.approvalPending ? awaitingAdmin(this.ctx.serverUrl, node) : { status: 'registered', node: selfDto(node) };
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError(Errors.invalidRequest, 'that node key is already registered to another machine', { cause: err });
      throw err;
    }
  }

  /** A node-less peer: public key only, no machine key, no agent. Its peers see it at once. */
  async createExternal(actor: Actor, input: CreateNode): Promise<Node> {
    try {
      const node = await this.ctx.prisma.$transaction(async (tx) => {
        const user = await usableUserOrThrow(tx, input.user);
        // Tags given at creation pass the same tagOwners check as setTags, before anything is written.
        if (actor.type !== 'system' && input.tags?.length) await assertMayTag(tx, actor, [...new Set(input.tags)].sort());
        await lockAllocation(tx);
        const n = await insertNode(this.ctx, tx, {
          userId: user.id,
          hostname: input.hostname,
          nodeKey: input.nodeKey,
          machineKey: null,
          tags: input.tags ?? [],
          ephemeral: false,
          authKeyId: null,
          expiresAt: null,
        });
        await audit(tx, actor, 'node.create-external', `node:${n.name}`, { user: user.name, ipv4: n.ipv4 });
        await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
        return n;
      }, TX_OPTIONS);
      this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
      return nodeDto(node);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError(Errors.invalidRequest, 'that node key is already registered', { cause: err });
      throw err;
    }
  }

  async delete(actor: Actor, id: number): Promise<Node> {
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      // DELETE ... RETURNING, then its user: two statements (with `include`, Prisma reads the node
      // and its user before the delete, three).
      const row = await tx.node.delete({ where: { id } }).catch((err: unknown) => {
        if (isRecordNotFound(err)) throw new ApiError(Errors.nodeNotFound, `no node with id ${id}; list them with: weft-server nodes list`, { cause: err });
        throw err;
      });
      const n: NodeWithUser = { ...row, user: await tx.user.findUniqueOrThrow({ where: { id: row.userId }, select: withUser.user.select }) };
      await audit(tx, actor, 'node.delete', `node:${n.name}`, { user: n.user.name, ipv4: n.ipv4 });
      await this.ctx.record(tx, { kind: 'nodes-removed', nodeIds: [n.id] });
      return n;
    });
    this.ctx.emit({ kind: 'nodes-removed', nodeIds: [node.id] });
    return nodeDto(node);
  }

  async expire(actor: Actor, id: number): Promise<Node> {
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      await this.row(id, tx);
      const now = new Date();
      const n = await tx.node.update({ where: { id }, data: { expiresAt: now, expiryHandledAt: now }, include: withUser });
      await audit(tx, actor, 'node.expire', `node:${n.name}`);
      await this.ctx.record(tx, { kind: 'nodes-expired', nodeIds: [n.id] });
      return n;
    });
    this.ctx.emit({ kind: 'nodes-expired', nodeIds: [node.id] });
    return nodeDto(node);
  }

  /**
   * An admin approves a device waiting for approval: it enters every netmap through the normal
   * upsert, and its agent (polling registration) goes on. Approving one that waits for nothing is
   * refused, naming its state, and changes nothing.
   */
  async approve(actor: Actor, id: number): Promise<Node> {
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await this.row(id, tx);
      if (!before.approvalPending) throw new ApiError(Errors.nodeNotPending, `node ${before.name} (id ${id}) is not waiting for approval; see the waiting ones with: weft-server nodes pending`);
      const n = await tx.node.update({ where: { id }, data: { approvalPending: false }, include: withUser });
      await audit(tx, actor, 'node.admin-approve', `node:${n.name}`, { user: n.user.name, ipv4: n.ipv4 }, { before: { approvalPending: true }, after: { approvalPending: false } });
      await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
      return n;
    });
    this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
    return nodeDto(node);
  }

  /**
   * Disables a node's key expiry, turns it back on (the default from now), or extends it by
   * `extendDays` from the later of now and its current expiry. A node that was expired is live
   * again at once (peers get it back through the normal upsert); audited with before and after.
   */
  async setExpiry(actor: Actor, id: number, change: NodeExpiryChange): Promise<Node> {
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await this.row(id, tx);
      let expiresAt: Date | null;
      if ('disabled' in change) expiresAt = change.disabled ? null : await this.settings.expiryFromNow(tx);
      else expiresAt = new Date(Math.max(Date.now(), before.expiresAt?.getTime() ?? Date.now()) + change.extendDays * DAY_MS);
      const n = await tx.node.update({ where: { id }, data: { expiresAt, expiryHandledAt: null }, include: withUser });
      const iso = (d: Date | null) => (d ? d.toISOString() : null);
      await audit(tx, actor, 'disabled' in change ? (change.disabled ? 'node.expiry-disable' : 'node.expiry-enable') : 'node.expiry-extend', `node:${n.name}`,
        'extendDays' in change ? { extendDays: change.extendDays } : undefined,
        { before: { expiresAt: iso(before.expiresAt), expired: isExpired(before) }, after: { expiresAt: iso(n.expiresAt), expired: isExpired(n) } });
      await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
      return n;
    });
    this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
    return nodeDto(node);
  }

  /**
   * Cuts off every node whose key expiry has passed and that was not cut off for it yet: one
   * conditional UPDATE claims them (`expiry_handled_at` set), so with several replicas sweeping at
   * once each node is claimed, audited and announced by exactly one. Returns the ids claimed here.
   */
  async sweepExpired(now = new Date()): Promise<number[]> {
    const claimed = await this.ctx.prisma.$transaction(async (tx) => {
      const rows = await tx.node.updateManyAndReturn({
        where: { expiresAt: { lte: now }, expiryHandledAt: null },
        data: { expiryHandledAt: now },
        select: { id: true, name: true, expiresAt: true },
      });
      if (!rows.length) return [];
      rows.sort((a, b) => a.id - b.id);
      for (const n of rows) await audit(tx, SYSTEM, 'node.expire', `node:${n.name}`, { reason: 'key expiry', expiresAt: n.expiresAt?.toISOString() ?? null });
      await this.ctx.record(tx, { kind: 'nodes-expired', nodeIds: rows.map((n) => n.id) });
      return rows.map((n) => n.id);
    }, TX_OPTIONS);
    if (claimed.length) this.ctx.emit({ kind: 'nodes-expired', nodeIds: claimed });
    return claimed;
  }

  async rename(actor: Actor, id: number, name: string): Promise<Node> {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
      throw new ApiError(Errors.invalidRequest, 'name must be a DNS label: 1-63 of a-z, 0-9 and "-", not starting or ending with "-"', {
        errors: [{ path: 'name', message: 'not a DNS label' }],
      });
    }
    try {
      const node = await this.ctx.prisma.$transaction(async (tx) => {
        const before = await this.row(id, tx);
        const n = await tx.node.update({ where: { id }, data: { name }, include: withUser });
        await audit(tx, actor, 'node.rename', `node:${before.name}`, { to: name });
        await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
        return n;
      });
      this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
      return nodeDto(node);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError(Errors.nameTaken, `another node is already named "${name}"`, { cause: err });
      throw err;
    }
  }

  /**
   * Replaces a node's tags (sorted, deduplicated; empty = owned by its user again). A tagged node
   * is no longer its user's in the access policy, so this can move it between views (the mapper
   * recomputes from the node change, sending deltas only to the nodes whose view changed).
   *
   * The stored policy decides which tags exist: each must be defined in its tagOwners (with no
   * policy stored none is), and a person (a web session: only admins write) must be one of the
   * tag's owners; an API key or the admin socket may apply any defined tag. SYSTEM, the server's
   * own callers, is not asked. Refused: nothing written, nothing audited.
   */
  async setTags(actor: Actor, id: number, tags: string[]): Promise<Node> {
    const bad = tags.find((t) => !isTagName(t));
    if (bad !== undefined) {
      throw new ApiError(Errors.invalidRequest, `tag ${JSON.stringify(bad)} must look like ${TAG_RULE}`, {
        errors: [{ path: 'tags', message: 'not a tag' }],
      });
    }
    const sorted = [...new Set(tags)].sort();
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await this.row(id, tx);
      if (actor.type !== 'system' && sorted.length) await assertMayTag(tx, actor, sorted);
      const n = await tx.node.update({ where: { id }, data: { tags: sorted }, include: withUser });
      await audit(tx, actor, 'node.tags', `node:${before.name}`, { before: before.tags, after: sorted });
      await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
      return n;
    });
    this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
    return nodeDto(node);
  }

  /**
   * Deletes ephemeral nodes that have been offline longer than `olderThanS` (CI runners and other
   * short-lived machines that never log out). Safe on every replica at once.
   */
  async reapEphemeral(olderThanS: number): Promise<number[]> {
    const cutoff = new Date(Date.now() - olderThanS * 1000);
    const stale = { ephemeral: true, online: false, OR: [{ lastSeen: { lt: cutoff } }, { lastSeen: null, createdAt: { lt: cutoff } }] };
    const ids = await this.ctx.prisma.$transaction(async (tx) => {
      const nodes = await tx.node.findMany({ where: stale, select: { id: true, name: true } });
      if (!nodes.length) return [];
      await tx.node.deleteMany({ where: { id: { in: nodes.map((n) => n.id) }, ...stale } });
      for (const n of nodes) await audit(tx, SYSTEM, 'node.delete-ephemeral', `node:${n.name}`);
      await this.ctx.record(tx, { kind: 'nodes-removed', nodeIds: nodes.map((n) => n.id) });
      return nodes.map((n) => n.id);
    });
    if (ids.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds: ids });
    return ids;
  }

  /**
   * Endpoints: telemetry from the agent channel, not audited (online is state/presence.ts).
   * Endpoints are checked here too, whoever calls: a bad one stored would reach every peer.
   */
  async patch(id: number, data: { endpoints: string[] }): Promise<void> {
    const checked = EndpointsMessage.shape.endpoints.safeParse(data.endpoints);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new ApiError(Errors.invalidRequest, `endpoints${issue.path.map((p) => `[${String(p)}]`).join('')}: ${issue.message}`);
    }
    const lastSeen = new Date();
    const patch = await this.ctx.prisma.$transaction(async (tx) => {
      const rows = await tx.node.updateManyAndReturn({ where: { id }, data: { ...data, lastSeen }, select: { endpoints: true, reflexiveEndpoint: true } });
      if (!rows.length) return null;
      // Peers get the reflexive endpoint too: the patch carries the merged list.
      const patch: PeerPatch = { id, endpoints: peerEndpoints(rows[0]!), lastSeen: lastSeen.toISOString() };
      await this.ctx.record(tx, { kind: 'nodes-patched', patches: [patch] });
      return patch;
    });
    if (!patch) return;
    this.ctx.emit({ kind: 'nodes-patched', patches: [patch] });
  }

  /**
   * The node's reflexive endpoint: where the server saw its WireGuard port come from (an
   * authenticated handshake initiation to the responder key, apps/server/src/wg-mapping.ts).
   * Telemetry like endpoints, not audited. Peers get it first in the node's endpoints, the node
   * itself in `self.reflexiveEndpoint`.
   */
  async setReflexive(id: number, endpoint: string): Promise<void> {
    if (!parseEndpoint(endpoint).ok) throw new ApiError(Errors.invalidRequest, `reflexive endpoint ${JSON.stringify(endpoint)} is not "ip:port"`);
    const change = await this.ctx.prisma.$transaction(async (tx) => {
      const rows = await tx.node.updateManyAndReturn({ where: { id }, data: { reflexiveEndpoint: endpoint }, select: { endpoints: true, reflexiveEndpoint: true } });
      if (!rows.length) return null;
      const change: Change = { kind: 'nodes-patched', patches: [{ id, endpoints: peerEndpoints(rows[0]!) }], reflexive: [{ id, endpoint }] };
      await this.ctx.record(tx, change);
      return change;
    });
    if (change) this.ctx.emit(change);
  }
}
