/**
 * Local accounts: a user with a password, for signing in to the web pages without an identity
 * provider (first start, or a break-glass admin). A user with a password is an admin. The
 * password is hashed with scrypt (@weft/crypto password.ts) and set only through
 * `weft-server admin set-password`, which reads it from a terminal or stdin, never from argv.
 */
import { hashPassword, UNMATCHABLE_PASSWORD_HASH, verifyPassword } from '@weft/crypto';
import { ApiError, Errors } from '../errors.js';
import { audit, isUniqueViolation, TX_OPTIONS, type Actor, type StateContext } from './context.js';
import { assertUsable } from './users.js';

export class LocalAccounts {
  constructor(private readonly ctx: StateContext) {}

  /**
   * Sets `userName`'s password, creating the user if there is none (the first admin). Ends the
   * user's password sessions: whoever knew the old password is signed out.
   */
  async setPassword(actor: Actor, userName: string, password: string): Promise<{ user: string; created: boolean }> {
    const passwordHash = await hashPassword(password);
    try {
      return await this.ctx.prisma.$transaction(async (tx) => {
        let user = await tx.user.findUnique({ where: { name: userName } });
        const created = !user;
        if (user) {
          await tx.$queryRaw`SELECT id FROM users WHERE id = ${user.id} FOR UPDATE`;
          assertUsable(user);
        } else {
          user = await tx.user.create({ data: { name: userName } });
        }
        await tx.localCredential.upsert({ where: { userId: user.id }, create: { userId: user.id, passwordHash }, update: { passwordHash, updatedAt: new Date() } });
        const ended = await tx.webSession.deleteMany({ where: { userId: user.id, method: 'password' } });
        if (created) await audit(tx, actor, 'user.create', `user:${user.name}`, { by: 'set-password' });
        await audit(tx, actor, 'user.set-password', `user:${user.name}`, { sessionsEnded: ended.count });
        return { user: user.name, created };
      }, TX_OPTIONS);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError(Errors.userExists, `a user named "${userName}" was created at the same time; run the command again`, { cause: err });
      throw err;
    }
  }

  /** Is there any local account? (The first-start hint says how to make one.) */
  async any(): Promise<boolean> {
    return (await this.ctx.prisma.localCredential.count()) > 0;
  }

  /**
   * The user if `password` is theirs and they may sign in; else why not, in words safe to show
   * (an unknown name and a wrong password read the same, and cost the same scrypt).
   */
  async verify(name: string, password: string): Promise<{ id: number; name: string } | { refused: string; reason: string }> {
    const user = await this.ctx.prisma.user.findUnique({ where: { name }, include: { localCredential: true } });
    const ok = await verifyPassword(password, user?.localCredential?.passwordHash ?? UNMATCHABLE_PASSWORD_HASH);
    if (!user || !user.localCredential) return { refused: 'wrong user name or password', reason: 'no such local account' };
    if (!ok) return { refused: 'wrong user name or password', reason: 'wrong password' };
    if (user.offboardedAt || user.suspendedAt) return { refused: `user ${user.name} is ${user.offboardedAt ? 'offboarded' : 'suspended'}`, reason: user.offboardedAt ? 'offboarded' : 'suspended' };
    return { id: user.id, name: user.name };
  }
}
