import { constantTimeEqual, generateSecret, hashSecret, secretPrefix } from '@weft/crypto';
import type { AuthKey, CreateAuthKey, CreatedAuthKey } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, type Actor, type StateContext, type Tx } from './context.js';
import { authKeyDto } from './dto.js';
import { assertMayTag } from './tag-owners.js';
import { usableUserOrThrow } from './users.js';

const DEFAULT_EXPIRY_S = 3600;

export class AuthKeys {
  constructor(private readonly ctx: StateContext) {}

  async create(actor: Actor, input: CreateAuthKey): Promise<CreatedAuthKey> {
    const secret = generateSecret('auth');
    const expiresIn = input.expiresIn ?? DEFAULT_EXPIRY_S;
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const user = await usableUserOrThrow(tx, input.user);
      // Judged now, for the actor creating the key: nodes joining with it later get its tags unchecked.
      if (actor.type !== 'system' && input.tags?.length) await assertMayTag(tx, actor, [...new Set(input.tags)].sort());
      const k = await tx.authKey.create({
        data: {
          prefix: secret.prefix,
          hash: secret.hash,
          userId: user.id,
          reusable: input.reusable ?? false,
          ephemeral: input.ephemeral ?? false,
          tags: input.tags ?? [],
          preApproved: input.preApproved ?? false,
          expiresAt: expiresIn === 0 ? null : new Date(Date.now() + expiresIn * 1000),
        },
        include: { user: { select: { name: true } } },
      });
      await audit(tx, actor, 'authkey.create', `authkey:${k.prefix}`, { user: user.name, reusable: k.reusable, ephemeral: k.ephemeral, tags: k.tags, preApproved: k.preApproved });
      return k;
    });
    return { ...authKeyDto(row), key: secret.key };
  }

  async list(): Promise<AuthKey[]> {
    const rows = await this.ctx.prisma.authKey.findMany({ orderBy: { id: 'asc' }, include: { user: { select: { name: true } } } });
    return rows.map(authKeyDto);
  }

  async revoke(actor: Actor, id: number): Promise<AuthKey> {
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const k = await tx.authKey.findUnique({ where: { id } });
      if (!k) throw new ApiError(Errors.authKeyNotFound, `no auth key with id ${id}`);
      const updated = await tx.authKey.update({ where: { id }, data: { revokedAt: k.revokedAt ?? new Date() }, include: { user: { select: { name: true } } } });
      await audit(tx, actor, 'authkey.revoke', `authkey:${k.prefix}`);
      return updated;
    });
    return authKeyDto(row);
  }

  /**
   * The key row a presented key names, read without a lock (a join reads it before locking the
   * owner's row: user, then key); null when the prefix matches none. `consume` checks it.
   */
  async find(tx: Tx, presented: string) {
    const prefix = secretPrefix('auth', presented);
    return prefix ? tx.authKey.findUnique({ where: { prefix } }) : null;
  }

  /** Whether `presented` is the auth key with id `id` (the key a node joined with), read without a lock. */
  async isKey(presented: string, id: number): Promise<boolean> {
    const prefix = secretPrefix('auth', presented);
    const k = prefix ? await this.ctx.prisma.authKey.findUnique({ where: { prefix }, select: { id: true, hash: true } }) : null;
    return k !== null && k.id === id && constantTimeEqual(k.hash, hashSecret(presented));
  }

  /**
   * Checks a presented key against its row (`find`) and consumes one use, inside the caller's
   * transaction. Throws the precise reason a person can act on (invalid, expired, used, revoked).
   */
  async consume(tx: Tx, presented: string, k: Awaited<ReturnType<AuthKeys['find']>>) {
    if (!k || !constantTimeEqual(k.hash, hashSecret(presented))) {
      throw new ApiError(Errors.authKeyInvalid, 'the auth key is not valid; create one with: weft-server authkeys create --user NAME');
    }
    if (k.revokedAt) throw new ApiError(Errors.authKeyRevoked, `auth key ${k.prefix} was revoked; create a new one`);
    if (k.expiresAt && k.expiresAt.getTime() <= Date.now()) throw new ApiError(Errors.authKeyExpired, `auth key ${k.prefix} expired at ${k.expiresAt.toISOString()}; create a new one`);
    // Conditional update so two concurrent joins cannot both spend a single-use key, and a revoke
    // that committed after the read (which took no lock) still refuses this join.
    const spent = await tx.authKey.updateMany({ where: { id: k.id, revokedAt: null, ...(k.reusable ? {} : { usedCount: 0 }) }, data: { usedCount: { increment: 1 } } });
    if (spent.count === 0) {
      const now = await tx.authKey.findUnique({ where: { id: k.id }, select: { revokedAt: true } });
      if (!now || now.revokedAt) throw new ApiError(Errors.authKeyRevoked, `auth key ${k.prefix} was revoked; create a new one`);
      throw new ApiError(Errors.authKeyUsed, `single-use auth key ${k.prefix} was already used; create a new one or use --reusable`);
    }
    return k;
  }
}
