/**
 * Users and their lifecycle: active -> suspended (reversible) -> offboarded (final). Suspend and
 * offboard cut every device of the user off in one transaction (out of every netmap, sockets
 * closed, refused at the door), revoke the user's auth keys and the API keys they own
 * (state/api-keys.ts: keys made from the admin socket have no owner and are untouched), and
 * delete their web sessions (a session of a suspended user is also refused on its next request,
 * web-sessions.ts). One audit event names all of it. Offboarding keeps the user
 * row, marked, so the audit history keeps naming someone that still exists and the name is not
 * handed to a different person; `delete` offboards first and then removes the row.
 */
import { randomUUID } from 'node:crypto';
import type { CreateUser, User, UserOperation } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, isUniqueViolation, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import { userDto, userStatus } from './dto.js';
import { revokeOwnedApiKeys } from './api-keys.js';

/** A user named by numeric id or by name. */
export type UserRef = number | string;

export const userWhere = (ref: UserRef) => (typeof ref === 'number' ? { id: ref } : { name: ref });

export async function findUserOrThrow(tx: Tx, ref: UserRef) {
  const user = await tx.user.findUnique({ where: userWhere(ref) });
  if (!user) throw userNotFound(ref);
  return user;
}

const userNotFound = (ref: UserRef) =>
  new ApiError(Errors.userNotFound, `no user ${typeof ref === 'number' ? `with id ${ref}` : `named "${ref}"`}; list them with: weft-server users list`);

export const userSuspended = (name: string) =>
  new ApiError(Errors.userSuspended, `user ${name} is suspended; an admin can resume them with: weft-server users resume ${name}`);

export const userOffboarded = (name: string) => new ApiError(Errors.userOffboarded, `user ${name} was offboarded; that is final`);

/**
 * A user that may get new devices and keys: not suspended, not offboarded. The row is share-locked
 * to the end of the caller's transaction, so a suspend or offboard (which lock it for update)
 * runs wholly before or wholly after: it either refuses this write or sees the device it made.
 * Lock order everywhere: the user row, then their auth keys and nodes.
 */
export async function usableUserOrThrow(tx: Tx, ref: UserRef) {
  return assertUsable(await shareLockUser(tx, ref));
}

/**
 * The lock finds the row too, and the read after it sees what holds once the lock is ours: two
 * statements (a read, the lock and a read again were three; a registration takes this path).
 */
export async function shareLockUser(tx: Tx, ref: UserRef) {
  const [locked] = typeof ref === 'number'
    ? await tx.$queryRaw<{ id: number }[]>`SELECT id FROM users WHERE id = ${ref} FOR SHARE`
    : await tx.$queryRaw<{ id: number }[]>`SELECT id FROM users WHERE name = ${ref} FOR SHARE`;
  if (!locked) throw userNotFound(ref);
  return tx.user.findUniqueOrThrow({ where: { id: locked.id } });
}

export function assertUsable<U extends { name: string; suspendedAt: Date | null; offboardedAt: Date | null }>(user: U): U {
  if (user.offboardedAt) throw userOffboarded(user.name);
  if (user.suspendedAt) throw userSuspended(user.name);
  return user;
}

/** Takes the user's row lock, so two operations on one user run one after the other. */
async function lockUser(tx: Tx, ref: UserRef) {
  const user = await findUserOrThrow(tx, ref);
  await tx.$queryRaw`SELECT id FROM users WHERE id = ${user.id} FOR UPDATE`;
  return tx.user.findUniqueOrThrow({ where: { id: user.id } });
}

type Cut = Omit<UserOperation, 'user' | 'groupId'>;
const NOTHING_CUT: Cut = { nodes: [], authKeys: [], apiKeys: [], webSessions: 0 };

/** What suspend and offboard take away besides devices: keys revoked, sessions deleted. */
async function revokeAccess(tx: Tx, userId: number) {
  const authKeys = await revokeAuthKeys(tx, userId);
  const apiKeys = await revokeOwnedApiKeys(tx, userId);
  const { count: webSessions } = await tx.webSession.deleteMany({ where: { userId } });
  return { authKeys, apiKeys, webSessions };
}

export class Users {
  constructor(private readonly ctx: StateContext) {}

  async create(actor: Actor, input: CreateUser): Promise<User> {
    try {
      const user = await this.ctx.prisma.$transaction(async (tx) => {
        const u = await tx.user.create({ data: { name: input.name, displayName: input.displayName ?? null, email: input.email ?? null } });
        await audit(tx, actor, 'user.create', `user:${u.name}`);
        return u;
      });
      return userDto(user);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError(Errors.userExists, `a user named "${input.name}" already exists`, { cause: err });
      throw err;
    }
  }

  async list(): Promise<User[]> {
    return (await this.ctx.prisma.user.findMany({ orderBy: { id: 'asc' } })).map(userDto);
  }

  async get(ref: UserRef): Promise<User> {
    return userDto(await findUserOrThrow(this.ctx.prisma, ref));
  }

  /**
   * Cuts every device of the user off (kept, out of every netmap, refused at the door), revokes
   * their auth keys and API keys and deletes their web sessions. Resume brings the devices back;
   * the revoked keys stay revoked and the person signs in again.
   */
  async suspend(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const { user, cut } = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await lockUser(tx, ref);
      if (before.offboardedAt) throw userOffboarded(before.name);
      if (before.suspendedAt) return { user: before, cut: NOTHING_CUT };
      const user = await tx.user.update({ where: { id: before.id }, data: { suspendedAt: new Date() } });
      const access = await revokeAccess(tx, user.id);
      const nodes = await tx.node.findMany({ where: { userId: user.id }, select: { id: true, name: true }, orderBy: { id: 'asc' } });
      await audit(tx, actor, 'user.suspend', `user:${user.name}`, { nodes, ...access }, {
        groupId, before: { status: userStatus(before) }, after: { status: userStatus(user) },
      });
      if (nodes.length) await this.ctx.record(tx, { kind: 'nodes-suspended', nodeIds: nodes.map((n) => n.id) });
      return { user, cut: { nodes, ...access } satisfies Cut };
    }, TX_OPTIONS);
    if (cut.nodes.length) this.ctx.emit({ kind: 'nodes-suspended', nodeIds: cut.nodes.map((n) => n.id) });
    return { user: userDto(user), ...cut, groupId };
  }

  /** Lets a suspended user's devices back: they reconnect and every peer sees them again. */
  async resume(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const { user, nodes } = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await lockUser(tx, ref);
      if (before.offboardedAt) throw userOffboarded(before.name);
      if (!before.suspendedAt) return { user: before, nodes: [] };
      const user = await tx.user.update({ where: { id: before.id }, data: { suspendedAt: null } });
      const nodes = await tx.node.findMany({ where: { userId: user.id }, select: { id: true, name: true }, orderBy: { id: 'asc' } });
      await audit(tx, actor, 'user.resume', `user:${user.name}`, { nodes }, {
        groupId, before: { status: userStatus(before) }, after: { status: userStatus(user) },
      });
      if (nodes.length) await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: nodes.map((n) => n.id) });
      return { user, nodes };
    }, TX_OPTIONS);
    if (nodes.length) this.ctx.emit({ kind: 'nodes-upserted', nodeIds: nodes.map((n) => n.id) });
    return { user: userDto(user), ...NOTHING_CUT, nodes, groupId };
  }

  /**
   * Final: deletes every device of the user (peers drop them, their sockets close with NodeDeleted),
   * revokes their auth keys and API keys, deletes their web sessions, and marks the user
   * offboarded (the row stays).
   */
  async offboard(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const r = await this.ctx.prisma.$transaction(async (tx) => {
      const r = await offboardIn(tx, ref);
      if (r.changed) await auditOffboard(tx, actor, r, groupId);
      if (r.nodes.length) await this.ctx.record(tx, { kind: 'nodes-removed', nodeIds: r.nodes.map((n) => n.id) });
      return r;
    }, TX_OPTIONS);
    if (r.nodes.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds: r.nodes.map((n) => n.id) });
    return { user: userDto(r.user), nodes: r.nodes.map(({ id, name }) => ({ id, name })), authKeys: r.authKeys, apiKeys: r.apiKeys, webSessions: r.webSessions, groupId };
  }

  /** Offboards (unless already offboarded) and removes the user row; both events share a group id. */
  async delete(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const r = await this.ctx.prisma.$transaction(async (tx) => {
      const r = await offboardIn(tx, ref);
      await tx.user.delete({ where: { id: r.user.id } });
      // Audited, then recorded, last: the commit-order lock is held to commit, and no row lock may
      // be taken after it (context.ts `lockCommitOrder`).
      if (r.changed) await auditOffboard(tx, actor, r, groupId);
      await audit(tx, actor, 'user.delete', `user:${r.user.name}`, undefined, { groupId, before: { status: userStatus(r.user) } });
      if (r.nodes.length) await this.ctx.record(tx, { kind: 'nodes-removed', nodeIds: r.nodes.map((n) => n.id) });
      return r;
    }, TX_OPTIONS);
    if (r.nodes.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds: r.nodes.map((n) => n.id) });
    return { user: userDto(r.user), nodes: r.nodes.map(({ id, name }) => ({ id, name })), authKeys: r.authKeys, apiKeys: r.apiKeys, webSessions: r.webSessions, groupId };
  }
}

/**
 * The writes of an offboard, without its audit event. Keys are revoked before the nodes are
 * listed: a registration holding one of the keys finishes first, and its node is then deleted too.
 */
async function offboardIn(tx: Tx, ref: UserRef) {
  const before = await lockUser(tx, ref);
  if (before.offboardedAt) return { before, user: before, ...NOTHING_CUT, changed: false };
  const access = await revokeAccess(tx, before.id);
  const nodes = await tx.node.findMany({ where: { userId: before.id }, select: { id: true, name: true, ipv4: true, nodeKey: true }, orderBy: { id: 'asc' } });
  await tx.node.deleteMany({ where: { id: { in: nodes.map((n) => n.id) } } });
  const user = await tx.user.update({ where: { id: before.id }, data: { offboardedAt: new Date() } });
  return { before, user, nodes, ...access, changed: true };
}

async function auditOffboard(tx: Tx, actor: Actor, r: Awaited<ReturnType<typeof offboardIn>>, groupId: string) {
  await audit(tx, actor, 'user.offboard', `user:${r.user.name}`, { nodes: r.nodes, authKeys: r.authKeys, apiKeys: r.apiKeys, webSessions: r.webSessions }, {
    groupId, before: { status: userStatus(r.before) }, after: { status: userStatus(r.user) },
  });
}

/** Revokes the user's auth keys that are not revoked yet; returns those. */
async function revokeAuthKeys(tx: Tx, userId: number) {
  const keys = await tx.authKey.findMany({ where: { userId, revokedAt: null }, select: { id: true, prefix: true }, orderBy: { id: 'asc' } });
  if (keys.length) await tx.authKey.updateMany({ where: { id: { in: keys.map((k) => k.id) } }, data: { revokedAt: new Date() } });
  return keys;
}
