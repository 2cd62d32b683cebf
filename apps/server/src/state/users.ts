import type { CreateUser, User } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, isUniqueViolation, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import { userDto } from './dto.js';

/** A user named by numeric id or by name. */
export type UserRef = number | string;

export const userWhere = (ref: UserRef) => (typeof ref === 'number' ? { id: ref } : { name: ref });

export async function findUserOrThrow(tx: Tx, ref: UserRef) {
  const user = await tx.user.findUnique({ where: userWhere(ref) });
  if (!user) throw new ApiError(Errors.userNotFound, `no user ${typeof ref === 'number' ? `with id ${ref}` : `named "${ref}"`}; list them with: weft-server users list`);
  return user;
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

  /** Deletes the user, their auth keys and every node they own; peers drop those nodes at once. */
  async delete(actor: Actor, ref: UserRef): Promise<User> {
    const { user, nodeIds } = await this.ctx.prisma.$transaction(async (tx) => {
      const user = await findUserOrThrow(tx, ref);
      const nodes = await tx.node.findMany({ where: { userId: user.id }, select: { id: true } });
      await tx.node.deleteMany({ where: { userId: user.id } });
      await tx.user.delete({ where: { id: user.id } });
      await audit(tx, actor, 'user.delete', `user:${user.name}`, { nodes: nodes.map((n) => n.id) });
      if (nodes.length) await this.ctx.record(tx, { kind: 'nodes-removed', nodeIds: nodes.map((n) => n.id) });
      return { user, nodeIds: nodes.map((n) => n.id) };
    }, TX_OPTIONS);
    if (nodeIds.length) this.ctx.emit({ kind: 'nodes-removed', nodeIds });
    return userDto(user);
  }
}
