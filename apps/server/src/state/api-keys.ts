import { constantTimeEqual, generateSecret, hashSecret, secretPrefix } from '@weft/crypto';
import type { ApiKey, ApiScope, CreateApiKey, CreatedApiKey } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, type Actor, type StateContext, type Tx } from './context.js';
import { apiKeyDto } from './dto.js';

export interface ApiPrincipal { id: number; prefix: string; scopes: ApiScope[]; ownerId: number | null }

const withOwner = { owner: { select: { name: true } } } as const;

/**
 * Whose key a new key is: a signed-in user's; the owner of the API key that makes it (so a key
 * cannot outlive its maker's offboarding by minting another); nobody's from the admin socket
 * (the CLI on the server host) or the server itself.
 */
async function ownerOf(tx: Tx, actor: Actor): Promise<number | null> {
  if (actor.type === 'user' && actor.id) return Number(actor.id);
  if (actor.type === 'apikey' && actor.id) return (await tx.apiKey.findUnique({ where: { id: Number(actor.id) }, select: { ownerId: true } }))?.ownerId ?? null;
  return null;
}

/** lastUsedAt is written at most this often per key, so reads do not become writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

export class ApiKeys {
  constructor(private readonly ctx: StateContext) {}

  async create(actor: Actor, input: CreateApiKey): Promise<CreatedApiKey> {
    const secret = generateSecret('api');
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const ownerId = await ownerOf(tx, actor);
      const k = await tx.apiKey.create({
        include: withOwner,
        data: {
          ownerId,
          prefix: secret.prefix,
          hash: secret.hash,
          scopes: [...new Set(input.scopes)],
          description: input.description ?? null,
          expiresAt: input.expiresIn ? new Date(Date.now() + input.expiresIn * 1000) : null,
        },
      });
      await audit(tx, actor, 'apikey.create', `apikey:${k.prefix}`, { scopes: k.scopes, owner: k.owner?.name ?? null });
      return k;
    });
    return { ...apiKeyDto(row), key: secret.key };
  }

  /** Every key, SCIM tokens (scope `scim`) included. */
  async list(): Promise<ApiKey[]> {
    return (await this.ctx.prisma.apiKey.findMany({ include: withOwner, orderBy: { id: 'asc' } })).map(apiKeyDto);
  }

  async revoke(actor: Actor, id: number): Promise<ApiKey> {
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const k = await tx.apiKey.findUnique({ where: { id } });
      if (!k) throw new ApiError(Errors.apiKeyNotFound, `no API key with id ${id}`);
      const updated = await tx.apiKey.update({ where: { id }, include: withOwner, data: { revokedAt: k.revokedAt ?? new Date() } });
      await audit(tx, actor, 'apikey.revoke', `apikey:${k.prefix}`);
      return updated;
    });
    return apiKeyDto(row);
  }

  /**
   * The principal for a presented bearer key, or why it is refused, in one line. Only a key that
   * matches nothing is `unknown` (a guess); expired and revoked keys were real, so saying which
   * tells the holder nothing new.
   */
  async authenticate(presented: string): Promise<ApiPrincipal | { refused: string; unknown: boolean }> {
    const prefix = secretPrefix('api', presented);
    if (!prefix) return { refused: 'the bearer token is not shaped like an API key (weft-api-<12 hex>-<32 characters>)', unknown: true };
    const k = await this.ctx.prisma.apiKey.findUnique({ where: { prefix }, include: { owner: { select: { name: true, suspendedAt: true, offboardedAt: true } } } });
    if (!k || !constantTimeEqual(k.hash, hashSecret(presented))) return { refused: 'the API key is not valid', unknown: true };
    if (k.revokedAt) return { refused: `API key ${k.prefix} was revoked`, unknown: false };
    if (k.expiresAt && k.expiresAt.getTime() <= Date.now()) return { refused: `API key ${k.prefix} expired at ${k.expiresAt.toISOString()}`, unknown: false };
    // Suspend and offboard revoke the owner's keys in their transaction; refusing here as well
    // keeps a suspended or offboarded user's key dead whatever else changed the row.
    if (k.owner && (k.owner.suspendedAt || k.owner.offboardedAt)) return { refused: `API key ${k.prefix} belongs to ${k.owner.name}, who is ${k.owner.offboardedAt ? 'offboarded' : 'suspended'}`, unknown: false };
    if (!k.lastUsedAt || Date.now() - k.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      await this.ctx.prisma.apiKey.update({ where: { id: k.id }, data: { lastUsedAt: new Date() } });
    }
    return { id: k.id, prefix: k.prefix, scopes: k.scopes as ApiScope[], ownerId: k.ownerId };
  }
}

/** Revokes the API keys `userId` owns that are not revoked yet (inside a suspend or offboard); returns those. */
export async function revokeOwnedApiKeys(tx: Tx, userId: number) {
  const keys = await tx.apiKey.findMany({ where: { ownerId: userId, revokedAt: null }, select: { id: true, prefix: true }, orderBy: { id: 'asc' } });
  if (keys.length) await tx.apiKey.updateMany({ where: { id: { in: keys.map((k) => k.id) } }, data: { revokedAt: new Date() } });
  return keys;
}
