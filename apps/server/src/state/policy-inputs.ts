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
 * `group:<displayName>` (scim/resources.ts `policyGroupName`) with its members' policy logins
 * (offboarded users left out). Two display names that clean up to one name share the group.
 * Identity-provider groups from OIDC sign-in (`user_identities.groups`) are not fed here yet.
 */
export async function loadDirectoryGroups(db: Tx): Promise<Map<string, string[]>> {
  const groups = await db.scimGroup.findMany({
    select: { displayName: true, members: { select: { user: { select: { name: true, offboardedAt: true } } } } },
    orderBy: { id: 'asc' },
  });
  const out = new Map<string, string[]>();
  for (const g of groups) {
    const name = policyGroupName(g.displayName);
    const logins = g.members.filter((m) => m.user.offboardedAt === null).map((m) => policyLogin(m.user));
    out.set(name, [...new Set([...(out.get(name) ?? []), ...logins])].sort());
  }
  return out;
}
