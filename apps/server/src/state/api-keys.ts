import { constantTimeEqual, generateSecret, hashSecret, secretPrefix } from '@weft/crypto';
import type { ApiKey, ApiScope, CreateApiKey, CreatedApiKey } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { audit, type Actor, type StateContext } from './context.js';
import { apiKeyDto } from './dto.js';

export interface ApiPrincipal { id: number; prefix: string; scopes: ApiScope[] }

/** lastUsedAt is written at most this often per key, so reads do not become writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

export class ApiKeys {
  constructor(private readonly ctx: StateContext) {}

  async create(actor: Actor, input: CreateApiKey): Promise<CreatedApiKey> {
    const secret = generateSecret('api');
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const k = await tx.apiKey.create({
        data: {
          prefix: secret.prefix,
          hash: secret.hash,
          scopes: [...new Set(input.scopes)],
          description: input.description ?? null,
          expiresAt: input.expiresIn ? new Date(Date.now() + input.expiresIn * 1000) : null,
        },
      });
      await audit(tx, actor, 'apikey.create', `apikey:${k.prefix}`, { scopes: k.scopes });
      return k;
    });
    return { ...apiKeyDto(row), key: secret.key };
  }

  async list(): Promise<ApiKey[]> {
    return (await this.ctx.prisma.apiKey.findMany({ orderBy: { id: 'asc' } })).map(apiKeyDto);
  }

  async revoke(actor: Actor, id: number): Promise<ApiKey> {
    const row = await this.ctx.prisma.$transaction(async (tx) => {
      const k = await tx.apiKey.findUnique({ where: { id } });
      if (!k) throw new ApiError(Errors.apiKeyNotFound, `no API key with id ${id}`);
      const updated = await tx.apiKey.update({ where: { id }, data: { revokedAt: k.revokedAt ?? new Date() } });
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
    const k = await this.ctx.prisma.apiKey.findUnique({ where: { prefix } });
    if (!k || !constantTimeEqual(k.hash, hashSecret(presented))) return { refused: 'the API key is not valid', unknown: true };
    if (k.revokedAt) return { refused: `API key ${k.prefix} was revoked`, unknown: false };
    if (k.expiresAt && k.expiresAt.getTime() <= Date.now()) return { refused: `API key ${k.prefix} expired at ${k.expiresAt.toISOString()}`, unknown: false };
    if (!k.lastUsedAt || Date.now() - k.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      await this.ctx.prisma.apiKey.update({ where: { id: k.id }, data: { lastUsedAt: new Date() } });
    }
    return { id: k.id, prefix: k.prefix, scopes: k.scopes as ApiScope[] };
  }
}
