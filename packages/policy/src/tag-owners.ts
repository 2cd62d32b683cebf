/**
 * Who may apply a tag, as Tailscale's `tagOwners` says: an owner entry is a user's login, a group
 * (its members), `autogroup:member` (any user of the tailnet), `autogroup:admin` / `autogroup:owner`
 * (a user with the admin role: Weft has one admin role, so both name it), or another tag (nodes
 * carrying it may tag themselves: never a user, so it grants a person nothing).
 */
import type { Policy } from './model.js';

export interface TagApplier { login: string; admin: boolean }

export interface TagRefusal { reason: 'unknown' | 'not-owner'; tag: string; message: string }

/** Why `who` (null: not a person, e.g. an API key) may not apply `tags` under `policy`, or null when every one is theirs to apply. */
export function tagRefusal(policy: Policy, tags: readonly string[], who: TagApplier | null): TagRefusal | null {
  for (const tag of tags) {
    const owners = policy.tagOwners.get(tag);
    if (!owners) return { reason: 'unknown', tag, message: `tag "${tag}" is not defined in the policy's tagOwners (defined: ${[...policy.tagOwners.keys()].sort().join(', ') || 'none'})` };
    if (who && !owners.some((o) => owns(policy, o, who))) return { reason: 'not-owner', tag, message: `${who.login} is not an owner of tag "${tag}" in the policy's tagOwners (owners: ${owners.join(', ') || 'none'})` };
  }
  return null;
}

function owns(policy: Policy, owner: string, who: TagApplier): boolean {
  if (owner === who.login) return true;
  if (owner.startsWith('group:')) return (policy.groups.get(owner) ?? []).includes(who.login);
  if (owner === 'autogroup:member') return true;
  if (owner === 'autogroup:admin' || owner === 'autogroup:owner') return who.admin;
  return false;
}
