/**
 * The users and nodes a policy is judged against, from the database, in @weft/policy's input
 * shape. A user's policy login is their name when it holds an "@" (alice@example.com), else the
 * name with a bare "@" (alice@), Headscale's form for a user without a domain: policy selectors
 * need the "@" to tell users from hosts. Every node counts, suspended or expired ones too: what
 * the policy means does not change when a device is cut off, and a `tests` entry naming it must
 * not start failing because of that.
 */
import { PolicyRejected, prepareNodes, type NodesInput, type Prepared } from '@weft/policy';
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
