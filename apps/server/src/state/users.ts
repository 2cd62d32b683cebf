/**
 * Users and their lifecycle: active -> suspended (reversible) -> offboarded (final). Suspend and
 * offboard cut every device of the user off in one transaction (out of every netmap, sockets
 * closed, refused at the door) and revoke the user's auth keys. API keys have no owner in the
 * schema (they belong to the deployment), so none are revoked here. Offboarding keeps the user
 * row, marked, so the audit history keeps naming someone that still exists and the name is not
 * handed to a different person; `delete` offboards first and then removes the row.
 */
import { randomUUID } from 'node:crypto';
import type { CreateUser, User, UserOperation } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, isUniqueViolation, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import { userDto, userStatus } from './dto.js';

/** A user named by numeric id or by name. */
export type UserRef = number | string;

export const userWhere = (ref: UserRef) => (typeof ref === 'number' ? { id: ref } : { name: ref });

export async function findUserOrThrow(tx: Tx, ref: UserRef) {
  const user = await tx.user.findUnique({ where: userWhere(ref) });
  if (!user) throw new ApiError(Errors.userNotFound, `no user ${typeof ref === 'number' ? `with id ${ref}` : `named "${ref}"`}; list them with: weft-server users list`);
  return user;
}

export const userSuspended = (name: string) =>
  new ApiError(Errors.userSuspended, `user ${name} is suspended; an admin can resume them with: weft-server users resume ${name}`);

const userOffboarded = (name: string) => new ApiError(Errors.userOffboarded, `user ${name} was offboarded; that is final`);

/** A user that may get new devices and keys: not suspended, not offboarded. */
export async function usableUserOrThrow(tx: Tx, ref: UserRef) {
  const user = await findUserOrThrow(tx, ref);
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
   * Cuts every device of the user off (kept, out of every netmap, refused at the door) and revokes
   * their auth keys. Resume brings the devices back; the revoked keys stay revoked.
   */
  async suspend(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const { user, cut } = await this.ctx.prisma.$transaction(async (tx) => {
      const before = await lockUser(tx, ref);
      if (before.offboardedAt) throw userOffboarded(before.name);
      if (before.suspendedAt) return { user: before, cut: { nodes: [], authKeys: [] } satisfies Cut };
      const user = await tx.user.update({ where: { id: before.id }, data: { suspendedAt: new Date() } });
      const nodes = await tx.node.findMany({ where: { userId: user.id }, select: { id: true, name: true }, orderBy: { id: 'asc' } });
      const authKeys = await revokeAuthKeys(tx, user.id);
      await audit(tx, actor, 'user.suspend', `user:${user.name}`, { nodes, authKeys, apiKeys: 'API keys have no owner; none revoked' }, {
        groupId, before: { status: userStatus(before) }, after: { status: userStatus(user) },
      });
      return { user, cut: { nodes, authKeys } satisfies Cut };
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
      return { user, nodes };
    }, TX_OPTIONS);
    if (nodes.length) this.ctx.emit({ kind: 'nodes-upserted', nodeIds: nodes.map((n) => n.id) });
    return { user: userDto(user), nodes, authKeys: [], groupId };
  }

  /**
   * Final: deletes every device of the user (peers drop them, their sockets close with NodeDeleted),
   * revokes their auth keys, and marks the user offboarded (the row stays).
   */
  async offboard(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const { user, cut } = await this.ctx.prisma.$transaction(async (tx) => {
      const r = await this.offboardIn(tx, actor, ref, groupId);
      return { user: r.user, cut: r.cut };
    }, TX_OPTIONS);
    if (cut.nodes.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds: cut.nodes.map((n) => n.id) });
    return { user: userDto(user), ...cut, groupId };
  }

  /** Offboards (unless already offboarded) and removes the user row; both events share a group id. */
  async delete(actor: Actor, ref: UserRef): Promise<UserOperation> {
    const groupId = randomUUID();
    const { user, cut } = await this.ctx.prisma.$transaction(async (tx) => {
      const r = await this.offboardIn(tx, actor, ref, groupId);
      await tx.user.delete({ where: { id: r.user.id } });
      await audit(tx, actor, 'user.delete', `user:${r.user.name}`, undefined, { groupId, before: { status: userStatus(r.user) } });
      return r;
    }, TX_OPTIONS);
    if (cut.nodes.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds: cut.nodes.map((n) => n.id) });
    return { user: userDto(user), ...cut, groupId };
  }

  private async offboardIn(tx: Tx, actor: Actor, ref: UserRef, groupId: string) {
    const before = await lockUser(tx, ref);
    if (before.offboardedAt) return { user: before, cut: { nodes: [], authKeys: [] } satisfies Cut };
    const nodes = await tx.node.findMany({ where: { userId: before.id }, select: { id: true, name: true, ipv4: true, nodeKey: true }, orderBy: { id: 'asc' } });
    await tx.node.deleteMany({ where: { userId: before.id } });
    const authKeys = await revokeAuthKeys(tx, before.id);
    const user = await tx.user.update({ where: { id: before.id }, data: { offboardedAt: new Date() } });
    await audit(tx, actor, 'user.offboard', `user:${user.name}`, { nodes, authKeys, apiKeys: 'API keys have no owner; none revoked' }, {
      groupId, before: { status: userStatus(before) }, after: { status: userStatus(user) },
    });
    return { user, cut: { nodes: nodes.map(({ id, name }) => ({ id, name })), authKeys } satisfies Cut };
  }
}

/** Revokes the user's auth keys that are not revoked yet; returns those. */
async function revokeAuthKeys(tx: Tx, userId: number) {
  const keys = await tx.authKey.findMany({ where: { userId, revokedAt: null }, select: { id: true, prefix: true }, orderBy: { id: 'asc' } });
  if (keys.length) await tx.authKey.updateMany({ where: { id: { in: keys.map((k) => k.id) } }, data: { revokedAt: new Date() } });
  return keys;
}
