/** Database rows to wire shapes. The only place that decides what of a row leaves the server. */
import type { ApiKey as DbApiKey, AuthKey as DbAuthKey, Node as DbNode, User as DbUser } from '@weft/db';
import { MAX_ENDPOINTS, parseEndpoint, type ApiKey, type AuthKey, type Node, type Peer, type RegisterResponse, type SelfNode, type User, type UserStatus } from '@weft/protocol';

/** Every node row is read with its owner's name and suspension (the mapper and the door read both). */
export const withUser = { user: { select: { name: true, email: true, suspendedAt: true } } } as const;

export type NodeWithUser = DbNode & { user: Pick<DbUser, 'name' | 'suspendedAt'> & Partial<Pick<DbUser, 'email'>> };

/**
 * The login an access policy names a user by, the same for the mapper and for the policy store
 * (state/policy-inputs.ts): the user's name when it holds an "@" (alice@example.com), else `name@`
 * (Headscale's form for a user without a domain). Never the contact `email` field: it is not
 * verified, and access must not follow an unverified field (docs/design.md, "Access policy").
 */
export function policyLogin(u: { name: string }): string {
  return u.name.includes('@') ? u.name : `${u.name}@`;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Stored endpoints as they may leave the server. Reports are checked strictly before they are
 * stored; this also keeps out rows written before that check (999.999.999.999:99999 was
 * accepted once), so no peer is ever sent an endpoint its agent would refuse.
 */
export function sendableEndpoints(stored: string[]): string[] {
  return stored.filter((e) => parseEndpoint(e).ok).slice(0, MAX_ENDPOINTS);
}

/**
 * What peers get as a node's endpoints: the reflexive one first (where the node's own WireGuard
 * port was seen from outside: the one that works across NATs), then the local candidates the
 * agent reported, without a repeat (no NAT: the two are the same).
 */
export function peerEndpoints(n: Pick<DbNode, 'endpoints' | 'reflexiveEndpoint'>): string[] {
  const reflexive = typeof n.reflexiveEndpoint === 'string' && parseEndpoint(n.reflexiveEndpoint).ok ? [n.reflexiveEndpoint] : [];
  return sendableEndpoints([...reflexive, ...n.endpoints.filter((e) => e !== n.reflexiveEndpoint)]);
}

export const isExpired = (n: Pick<DbNode, 'expiresAt'>, now = Date.now()) => n.expiresAt !== null && n.expiresAt.getTime() <= now;

export function userDto(u: DbUser): User {
  return {
    id: u.id,
    name: u.name,
    displayName: u.displayName,
    email: u.email,
    createdAt: u.createdAt.toISOString(),
    status: userStatus(u),
    suspendedAt: iso(u.suspendedAt),
    offboardedAt: iso(u.offboardedAt),
  };
}

export function userStatus(u: Pick<DbUser, 'suspendedAt' | 'offboardedAt'>): UserStatus {
  return u.offboardedAt ? 'offboarded' : u.suspendedAt ? 'suspended' : 'active';
}

export function nodeDto(n: NodeWithUser): Node {
  return {
    id: n.id,
    name: n.name,
    hostname: n.hostname,
    user: n.user.name,
    ipv4: n.ipv4,
    ipv6: n.ipv6,
    nodeKey: n.nodeKey,
    tags: n.tags,
    ephemeral: n.ephemeral,
    online: n.online,
    lastSeen: iso(n.lastSeen),
    expiresAt: iso(n.expiresAt),
    expired: isExpired(n),
    approvalPending: n.approvalPending,
    endpoints: peerEndpoints(n),
    createdAt: n.createdAt.toISOString(),
  };
}

export function selfDto(n: NodeWithUser): SelfNode {
  const reflexive = typeof n.reflexiveEndpoint === 'string' && parseEndpoint(n.reflexiveEndpoint).ok ? { reflexiveEndpoint: n.reflexiveEndpoint } : {};
  return { id: n.id, name: n.name, user: n.user.name, ipv4: n.ipv4, ipv6: n.ipv6, nodeKey: n.nodeKey, expiresAt: iso(n.expiresAt), ...reflexive };
}

/** Far enough ahead to read as "no deadline" where a timestamp is required (a node whose expiry is disabled). */
const NO_DEADLINE = new Date('9999-12-31T00:00:00.000Z');

/**
 * What registration answers for a node waiting for an admin's approval: `pending` with
 * `approval: "admin"`; the code is the node's id, as `weft-server nodes approve ID` takes it.
 */
export function awaitingAdmin(serverUrl: string, n: NodeWithUser): RegisterResponse {
  return { status: 'pending', approval: 'admin', code: String(n.id), loginUrl: `${serverUrl}/pending`, expiresAt: (n.expiresAt ?? NO_DEADLINE).toISOString() };
}

export function peerDto(n: NodeWithUser): Peer {
  return {
    id: n.id,
    name: n.name,
    user: n.user.name,
    nodeKey: n.nodeKey,
    ipv4: n.ipv4,
    ipv6: n.ipv6,
    allowedIps: [`${n.ipv4}/32`, `${n.ipv6}/128`],
    endpoints: peerEndpoints(n),
    online: n.online,
    lastSeen: iso(n.lastSeen),
  };
}

export function authKeyDto(k: DbAuthKey & { user: Pick<DbUser, 'name'> }): AuthKey {
  return {
    id: k.id,
    prefix: k.prefix,
    user: k.user.name,
    reusable: k.reusable,
    ephemeral: k.ephemeral,
    tags: k.tags,
    expiresAt: iso(k.expiresAt),
    usedCount: k.usedCount,
    preApproved: k.preApproved,
    revoked: k.revokedAt !== null,
    createdAt: k.createdAt.toISOString(),
  };
}

export function apiKeyDto(k: DbApiKey & { owner: Pick<DbUser, 'name'> | null }): ApiKey {
  return {
    id: k.id,
    prefix: k.prefix,
    scopes: k.scopes as ApiKey['scopes'],
    description: k.description,
    expiresAt: iso(k.expiresAt),
    lastUsedAt: iso(k.lastUsedAt),
    revoked: k.revokedAt !== null,
    createdAt: k.createdAt.toISOString(),
    owner: k.owner?.name ?? null,
  };
}
