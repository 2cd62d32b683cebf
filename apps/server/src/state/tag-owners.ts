/**
 * The stored policy's `tagOwners` applied to a write that gives tags: `PUT /api/v1/nodes/:id/tags`
 * (`Nodes.setTags`), a node created with tags (`Nodes.createExternal`) and an auth key carrying
 * tags (`AuthKeys.create`, judged for the actor creating the key; a node joining with the key gets
 * its tags without a new check). A tag the policy does not define is `tag_unknown`, one the actor
 * does not own `tag_not_owned`; the caller's transaction then writes nothing.
 */
import { parsePolicy, PolicyRejected, tagRefusal, type Policy, type TagApplier } from '@weft/policy';
import { ApiError, Errors } from '../errors.js';
import type { Actor, Tx } from './context.js';
import { policyLogin } from './dto.js';

/** The stored policy's verdict on `actor` applying `tags`; throws the refusal. */
export async function assertMayTag(tx: Tx, actor: Actor, tags: string[]): Promise<void> {
  const row = await tx.policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true, text: true } });
  if (!row) throw new ApiError(Errors.tagUnknown, `no access policy is stored, so no tag is defined (${tags.join(', ')}); define tags in the policy's tagOwners first (weft-server policy set)`);
  let policy: Policy;
  try {
    policy = parsePolicy(row.text);
  } catch (err) {
    if (!(err instanceof PolicyRejected)) throw err;
    throw new ApiError(Errors.tagUnknown, `the stored policy v${row.version} no longer parses, so its tagOwners cannot be read: ${err.errors[0]?.message ?? 'rejected'}`);
  }
  let who: TagApplier | null = null;
  if (actor.type === 'user') {
    const user = await tx.user.findUnique({ where: { id: Number(actor.id) }, select: { name: true } });
    who = { login: policyLogin(user ?? { name: actor.name ?? '?' }), admin: true };
  }
  const refusal = tagRefusal(policy, tags, who);
  if (refusal) throw new ApiError(refusal.reason === 'unknown' ? Errors.tagUnknown : Errors.tagNotOwned, refusal.message, { errors: [{ path: 'tags', message: refusal.message }] });
}
