/**
 * REST bodies for `/api/v1`. Every response schema here is an allowlist: what is not named does
 * not leave the server.
 */
import { z } from 'zod';
import { Endpoint, Hostname, NodeKeyText, Tag, Timestamp } from './common.js';
import { Id, text } from './fields.js';

/** User names: lowercase login-like names, also used in node names and policy. */
export const UserName = text().regex(/^[a-z0-9][a-z0-9._@-]{0,63}$/, 'must be 1-64 of a-z 0-9 . _ @ - starting with a letter or digit');

export const User = z.object({
  id: z.number().int(),
  name: UserName,
  displayName: z.string().nullable(),
  email: z.string().nullable(),
  createdAt: Timestamp,
  /**
   * `active`; `suspended` (devices cut off and refused at the door until resumed); `offboarded`
   * (final: devices deleted, auth keys revoked, the row kept for history). Since the suspend work.
   */
  status: z.enum(['active', 'suspended', 'offboarded']),
  /** When the user was suspended; null while active. */
  suspendedAt: Timestamp.nullable(),
  /** When the user was offboarded; null unless offboarded. */
  offboardedAt: Timestamp.nullable(),
});
export type User = z.infer<typeof User>;
export type UserStatus = User['status'];

/**
 * Reply of suspend / resume / offboard / delete: the user after the operation and what it did.
 * `nodes` lists the devices cut off (suspend, offboard) or let back (resume); `authKeys` the auth
 * keys revoked by this operation (keys already revoked are not repeated). API keys have no owner,
 * so none are revoked. `groupId` names the operation's audit events.
 */
export const UserOperation = z.object({
  user: User,
  nodes: z.array(z.object({ id: z.number().int(), name: z.string() })),
  authKeys: z.array(z.object({ id: z.number().int(), prefix: z.string() })),
  groupId: z.string(),
});
export type UserOperation = z.infer<typeof UserOperation>;

export const CreateUser = z.strictObject({
  name: UserName,
  displayName: text().min(1).max(128).optional(),
  email: text().email().max(254).optional(),
});
export type CreateUser = z.infer<typeof CreateUser>;

export const Node = z.object({
  id: z.number().int(),
  /** Unique DNS label within the deployment. */
  name: z.string(),
  /** Hostname the device reported. */
  hostname: z.string(),
  user: z.string(),
  ipv4: z.string(),
  ipv6: z.string(),
  nodeKey: NodeKeyText,
  tags: z.array(z.string()),
  ephemeral: z.boolean(),
  online: z.boolean(),
  /** Absent = never connected. */
  lastSeen: Timestamp.nullable(),
  expiresAt: Timestamp.nullable(),
  expired: z.boolean(),
  endpoints: z.array(Endpoint),
  createdAt: Timestamp,
});
export type Node = z.infer<typeof Node>;

/**
 * Registers a node-less peer (a phone or router running the official WireGuard app) by its public
 * key only. Whoever made the key pair keeps the private key; the server never sees it.
 */
export const CreateNode = z.strictObject({
  user: UserName,
  /** Hostname to derive the node name from, e.g. "alice-phone". */
  hostname: Hostname,
  nodeKey: NodeKeyText,
  tags: z.array(Tag).max(32).default([]),
});
export type CreateNode = z.input<typeof CreateNode>;

export const RenameNode = z.strictObject({
  name: text().min(1).max(63),
});

/** Ids in paths: 1..2^31-1 (see `Id`). */
export const IdParam = z.strictObject({ id: Id });

/** A user in a path: by id or by name. */
export const UserRefParam = z.strictObject({ user: z.union([Id, UserName]) });

/** A pending login's short code in a path ("ABCD-EFGH"; case and separators are forgiven). */
export const CodeParam = z.strictObject({ code: text().min(4).max(16) });

export const AuthKey = z.object({
  id: z.number().int(),
  /** Visible, non-secret part; the full key is shown once at creation. */
  prefix: z.string(),
  user: z.string(),
  reusable: z.boolean(),
  ephemeral: z.boolean(),
  tags: z.array(z.string()),
  expiresAt: Timestamp.nullable(),
  usedCount: z.number().int(),
  revoked: z.boolean(),
  createdAt: Timestamp,
});
export type AuthKey = z.infer<typeof AuthKey>;

export const CreateAuthKey = z.strictObject({
  user: UserName,
  reusable: z.boolean().default(false),
  ephemeral: z.boolean().default(false),
  tags: z.array(Tag).max(32).default([]),
  /** Seconds until the key expires; absent = 1 hour; 0 = never. */
  expiresIn: z.number().int().min(0).max(10 * 365 * 86400).optional(),
});
export type CreateAuthKey = z.input<typeof CreateAuthKey>;

/** Returned once, at creation: carries the secret. */
export const CreatedAuthKey = AuthKey.extend({ key: z.string() });
export type CreatedAuthKey = z.infer<typeof CreatedAuthKey>;

export const ApiScope = z.enum(['admin', 'read']);
export type ApiScope = z.infer<typeof ApiScope>;

export const ApiKey = z.object({
  id: z.number().int(),
  prefix: z.string(),
  scopes: z.array(ApiScope),
  description: z.string().nullable(),
  expiresAt: Timestamp.nullable(),
  lastUsedAt: Timestamp.nullable(),
  revoked: z.boolean(),
  createdAt: Timestamp,
});
export type ApiKey = z.infer<typeof ApiKey>;

export const CreateApiKey = z.strictObject({
  scopes: z.array(ApiScope).min(1).max(2),
  description: text().max(200).optional(),
  /** Seconds until the key expires; absent or 0 = never. */
  expiresIn: z.number().int().min(0).max(10 * 365 * 86400).optional(),
});
export type CreateApiKey = z.input<typeof CreateApiKey>;

export const CreatedApiKey = ApiKey.extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

export const ApprovePendingLogin = z.strictObject({
  /** User the approved device will belong to. */
  user: UserName,
});

export const PendingLogin = z.object({
  code: z.string(),
  hostname: z.string(),
  nodeKey: NodeKeyText,
  expiresAt: Timestamp,
  approved: z.boolean(),
});
export type PendingLogin = z.infer<typeof PendingLogin>;

/** `GET /api/v1/server`: what a client needs to print commands that reach this server. */
export const ServerInfo = z.object({
  /** The URL agents and browsers use (the server's `serverUrl`), without a trailing slash. */
  serverUrl: z.string(),
  /** The server's release, from its package.json (display only; never branched on). */
  version: z.string(),
  /** The agent protocol version this server speaks (version.ts). */
  protocolVersion: z.number().int(),
});
export type ServerInfo = z.infer<typeof ServerInfo>;

/** `GET /api/v1/status`: facts about the fleet as this replica sees it (fleet facts need an API key; `/readyz` says only ready or not). */
export const ReplicaStatus = z.object({
  /** Agents with an open control socket to this replica (not the whole fleet when there are several). */
  connectedNodes: z.number().int().nonnegative(),
});
export type ReplicaStatus = z.infer<typeof ReplicaStatus>;

/** RFC 7807 problem details; `code` is stable and safe to branch on. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  code: z.string(),
  detail: z.string().optional(),
  retryable: z.boolean(),
  /** For validation errors: which fields were wrong and why. */
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

/** One audit event. Fields added later are null on events written before they existed. */
export const AuditEvent = z.object({
  /** Increasing, and rows commit in id order: the paging cursor. A string: it is a bigint. */
  id: z.string(),
  at: Timestamp,
  /** The actor as one label, e.g. "apikey:weft-api-0123456789ab", "user:ada" (a web session), "local-socket", "anonymous" (a refused sign-in), "system". */
  actor: z.string(),
  /** "apikey", "user", "local-socket", "node", "authkey", "anonymous", "system". */
  actorType: z.string().nullable(),
  actorId: z.string().nullable(),
  actorName: z.string().nullable(),
  /** "api", "ui" (a web session: the sign-in and approval pages, the web UI), "cli" (the admin socket), "agent", "system". */
  origin: z.string().nullable(),
  /** "<noun>.<verb>", e.g. "user.suspend". */
  action: z.string(),
  /** "<kind>:<name>", e.g. "user:alice", "node:laptop". */
  target: z.string().nullable(),
  ip: z.string().nullable(),
  groupId: z.string().nullable(),
  before: z.unknown().nullable(),
  after: z.unknown().nullable(),
  detail: z.unknown().nullable(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

/** Most events one page holds. */
export const MAX_AUDIT_PAGE = 1000;

/** `GET /api/v1/audit` filters; all optional, combined with AND. */
export const AuditQuery = z.strictObject({
  /** Exact actor label. */
  actor: text().max(200).optional(),
  /** Action prefix: "user." or "user.suspend". */
  action: text().max(100).optional(),
  /** Exact target: "user:alice". */
  target: text().max(300).optional(),
  /** Events at or after this time (ISO 8601). */
  since: z.iso.datetime({ offset: true }).optional(),
  /** Events before this time. */
  until: z.iso.datetime({ offset: true }).optional(),
  /** Only events with an id greater than this: the previous page's `next`. */
  after: z.string().regex(/^\d{1,18}$/, 'must be an event id (digits)').optional(),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).optional(),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

/**
 * A page of events, oldest first. `next`: pass as `after` for the next page; null when this page
 * reached the newest event committed so far (ask again later with the last id for more).
 */
export const AuditPage = z.object({ items: z.array(AuditEvent), next: z.string().nullable() });
export type AuditPage = z.infer<typeof AuditPage>;

export const List = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

/**
 * `PUT /api/v1/users/:user/password`: sets a local account's password (what `weft-server admin
 * set-password` sends over the admin socket). Creates the user when there is none. Since 0.1.
 */
export const SetPassword = z.strictObject({
  /** 12 to 1024 characters. Hashed with scrypt at once; never stored or logged as sent. */
  password: text().min(12, 'must be at least 12 characters').max(1024),
});
export type SetPassword = z.infer<typeof SetPassword>;

export const PasswordSet = z.object({
  user: UserName,
  /** True when this request created the user. */
  created: z.boolean(),
});
export type PasswordSet = z.infer<typeof PasswordSet>;

/**
 * `GET /auth/session` (and the JSON answer of `POST /auth/login`): the signed-in browser session.
 * The session id itself is only in the HttpOnly cookie.
 */
export const WebSession = z.object({
  user: z.object({ id: z.number().int(), name: z.string() }),
  /** `admin` (a local account, or a member of an admin group at the identity provider) or `member`. */
  role: z.enum(['admin', 'member']),
  /** How the session was signed in: `password` (local account) or `oidc`. */
  method: z.enum(['password', 'oidc']),
  /** Send as the `X-CSRF-Token` header on every state-changing request made with the cookie. */
  csrfToken: z.string(),
  /** The session ends then, however active. */
  expiresAt: Timestamp,
  /** ... or then, unless a request comes first. */
  idleExpiresAt: Timestamp,
});
export type WebSession = z.infer<typeof WebSession>;
