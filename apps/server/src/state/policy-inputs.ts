/**
 * The users and nodes a policy is judged against, from the database, in @weft/policy's input
 * shape. A user's policy login is their name when it holds an "@" (alice@example.com), else the
 * name with a bare "@" (alice@), Headscale's form for a user without a domain: policy selectors
 * need the "@" to tell users from hosts. Every node counts, suspended or expired ones too: what
 * the policy means does not change when a device is cut off, and a `tests` entry naming it must
 * not start failing because of that.
 */
import { PolicyRejected, prepareNodes, type NodesInput, type Prepared } from '@weft/policy';
import { policyGroupName } from '../scim/resources.js';
import { policyLogin } from './dto.js';
import type { Tx } from './context.js';

export async function loadPolicyInputs(db: Tx): Promise<Prepared> {
  const [users, nodes] = await Promise.all([
    db.user.findMany({ select: { id: true, name: true }, orderBy: { id: 'asc' } }),
    db.node.findMany({ select: { id: true, name: true, tags: true, ipv4: true, ipv6: true, user: { select: { name: true } } }, orderBy: { id: 'asc' } }),
  ]);
  const input: NodesInput = {
    users: users.map((u) => ({ id: u.id, name: u.name, login: policyLogin(u) })),
    nodes: nodes.map((n) => ({
      id: n.id,
      name: n.name,
      user: n.tags.length ? null : policyLogin(n.user),
      tags: n.tags,
      ipv4: n.ipv4,
      ipv6: n.ipv6,
      // Subnet routes arrive with a later issue; no node serves one yet.
      advertisedRoutes: [],
      approvedRoutes: [],
    })),
  };
  try {
    return prepareNodes(input);
  } catch (err) {
    // Only two user names can collide ("bob" and "bob@" share the login bob@); say which.
    if (err instanceof PolicyRejected) throw new Error(`the users and nodes cannot be given to the policy engine: ${err.errors.map((e) => e.message).join('; ')}`, { cause: err });
    throw err;
  }
}

/**
 * The groups the directory defines, for the policy: each SCIM-provisioned group as
 * `group:<displayName>` (scim/resources.ts `policyGroupName`) with its members' policy logins,
 * and each group the identity provider sent at a user's latest OIDC sign-in
 * (`user_identities.groups`, the configured groups claim) cleaned up the same way. Offboarded
 * users are left out. A name from both sources, or two names that clean up to one, is one group
 * with the members of each.
 */
export async function loadDirectoryGroups(db: Tx): Promise<Map<string, string[]>> {
  const [groups, identities] = await Promise.all([
    db.scimGroup.findMany({
      select: { displayName: true, members: { select: { user: { select: { name: true, offboardedAt: true } } } } },
      orderBy: { id: 'asc' },
    }),
    db.userIdentity.findMany({
      where: { user: { offboardedAt: null } },
      select: { userId: true, groups: true, user: { select: { name: true } } },
      orderBy: [{ lastLoginAt: 'desc' }, { id: 'desc' }],
    }),
  ]);
  const out = new Map<string, string[]>();
  const add = (displayName: string, logins: string[]) => {
    const name = policyGroupName(displayName);
    out.set(name, [...new Set([...(out.get(name) ?? []), ...logins])].sort());
  };
  for (const g of groups) add(g.displayName, g.members.filter((m) => m.user.offboardedAt === null).map((m) => policyLogin(m.user)));
  // A user with identities at two providers has the groups of the one they signed in with last.
  const seen = new Set<number>();
  for (const id of identities) {
    if (seen.has(id.userId)) continue;
    seen.add(id.userId);
    for (const g of id.groups) add(g, [policyLogin(id.user)]);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
