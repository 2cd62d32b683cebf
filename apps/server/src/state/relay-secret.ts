/**
 * The relay mesh's shared secret (32 bytes, base64 in the `relay_mesh_secret` setting): replicas
 * and standalone relays (`weft-relay --mesh-secret-file`) authenticate each other with it. Made by
 * whichever replica asks first, then read by all. Never logged, never in an audit row.
 */
import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '@weft/db';
import { audit, type Actor, type Tx } from './context.js';

export const RELAY_MESH_SETTING = 'relay_mesh_secret';

/** The secret, made now if the deployment has none yet; `created` says which. */
async function ensure(db: Tx | PrismaClient): Promise<{ secret: Buffer; created: boolean }> {
  const made = await db.setting.createMany({ data: [{ key: RELAY_MESH_SETTING, value: randomBytes(32).toString('base64') }], skipDuplicates: true });
  const row = await db.setting.findUniqueOrThrow({ where: { key: RELAY_MESH_SETTING } });
  const secret = Buffer.from(row.value, 'base64');
  if (secret.length !== 32) throw new Error(`setting ${RELAY_MESH_SETTING} does not hold a 32-byte secret (base64)`);
  return { secret, created: made.count > 0 };
}

export async function relayMeshSecret(prisma: PrismaClient): Promise<Buffer> {
  return (await ensure(prisma)).secret;
}

/**
 * The secret for an operator (`weft-server relay-secret`), made exactly as a starting server would
 * if there is none yet. Audited as `relay.secret_export` (relay secret exported), with whether it
 * was made now; never the secret.
 */
export async function exportRelayMeshSecret(prisma: PrismaClient, actor: Actor): Promise<Buffer> {
  return prisma.$transaction(async (tx) => {
    const { secret, created } = await ensure(tx);
    await audit(tx, actor, 'relay.secret_export', null, { created });
    return secret;
  });
}
