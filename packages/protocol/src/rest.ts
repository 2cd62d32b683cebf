/**
 * REST bodies for `/api/v1`. Every response schema here is an allowlist: what is not named does
 * not leave the server.
 */
import { z } from 'zod';
import { Endpoint, Hostname, NodeKeyText, Tag, Timestamp } from './common.js';
import { Id, INT4_MAX, text } from './fields.js';

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
 * keys revoked by this operation (keys already revoked are not repeated), `apiKeys` likewise the
 * API keys the user owns, `webSessions` how many browser sessions were ended (deleted).
 * `groupId` names the operation's audit events.
 */
export const UserOperation = z.object({
  user: User,
  nodes: z.array(z.object({ id: z.number().int(), name: z.string() })),
  authKeys: z.array(z.object({ id: z.number().int(), prefix: z.string() })),
  apiKeys: z.array(z.object({ id: z.number().int(), prefix: z.string() })),
  webSessions: z.number().int(),
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
  /** Waiting for an admin's approval (`device_approval_required`): in no netmap until `POST /api/v1/nodes/:id/approve`. */
  approvalPending: z.boolean(),
  endpoints: z.array(Endpoint),
  createdAt: Timestamp,
});
export type Node = z.infer<typeof Node>;

/** Most nodes one page of `GET /api/v1/nodes` holds. */
export const MAX_NODE_PAGE = 1000;

/** Columns `GET /api/v1/nodes` sorts by; ties are broken by id, so pages are stable. */
export const NodeSort = z.enum(['id', 'name', 'hostname', 'user', 'ipv4', 'lastSeen', 'createdAt', 'expiresAt', 'online']);
export type NodeSort = z.infer<typeof NodeSort>;

/**
 * `GET /api/v1/nodes` query (since the web UI); all optional. Without `limit` every matching node
 * is returned (what `weft-server nodes list` reads), with it one page cut by `offset`.
 */
export const NodeQuery = z.strictObject({
  /** Case-insensitive substring of the name, hostname, owner, IPv4 or IPv6 address; or exactly one of its tags. */
  q: text().max(200).optional(),
  /** `online`, `offline` (not online, not expired), `expired`, or `pending` (waiting for an admin's approval); absent = all. */
  status: z.enum(['online', 'offline', 'expired', 'pending']).optional(),
  /** Absent = `id`. `lastSeen`/`expiresAt`: never-seen / never-expiring nodes sort last. */
  sort: NodeSort.optional(),
  /** Absent = `asc`. */
  order: z.enum(['asc', 'desc']).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_NODE_PAGE).optional(),
  /** Nodes to skip, for the page after; absent = 0. */
  offset: z.coerce.number().int().min(0).max(2_147_483_647).optional(),
});
export type NodeQuery = z.infer<typeof NodeQuery>;

/**
 * A list of nodes: `items` as before; `total` = how many match the filters (all pages);
 * `next` = the `offset` of the next page, null on the last (or when no `limit` was given).
 */
export const NodePage = z.object({ items: z.array(Node), total: z.number().int().nonnegative(), next: z.number().int().nullable() });
export type NodePage = z.infer<typeof NodePage>;

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

/** `PUT /api/v1/nodes/:id/tags`: the node's whole tag list (empty: its user's again). Each must be defined in the policy's tagOwners. */
export const SetNodeTags = z.strictObject({
  tags: z.array(Tag).max(32),
});
export type SetNodeTags = z.infer<typeof SetNodeTags>;

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
  /** Devices joining with it skip admin approval when `deviceApprovalRequired` is on. */
  preApproved: z.boolean(),
  revoked: z.boolean(),
  createdAt: Timestamp,
});
export type AuthKey = z.infer<typeof AuthKey>;

export const CreateAuthKey = z.strictObject({
  user: UserName,
  reusable: z.boolean().default(false),
  ephemeral: z.boolean().default(false),
  tags: z.array(Tag).max(32).default([]),
  /** Devices joining with this key skip admin approval (when the tailnet requires it); absent = false. */
  preApproved: z.boolean().default(false),
  /** Seconds until the key expires; absent = 1 hour; 0 = never. */
  expiresIn: z.number().int().min(0).max(10 * 365 * 86400).optional(),
});
export type CreateAuthKey = z.input<typeof CreateAuthKey>;

/** Returned once, at creation: carries the secret. */
export const CreatedAuthKey = AuthKey.extend({ key: z.string() });
export type CreatedAuthKey = z.infer<typeof CreatedAuthKey>;

/**
 * `admin` and `read` are for `/api/v1`; `scim` is for `/scim/v2` only, and only alone: a SCIM
 * token can do nothing else, and no other key can do SCIM.
 */
export const ApiScope = z.enum(['admin', 'read', 'scim']);
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
  /** The user who created it (revoked when they are suspended or offboarded); null when made from the admin socket. */
  owner: z.string().nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

export const CreateApiKey = z.strictObject({
  scopes: z.array(ApiScope).min(1).max(2).refine((s) => !s.includes('scim') || s.every((x) => x === 'scim'), { message: 'the scim scope cannot be combined with another scope: a SCIM token does SCIM only' }),
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
  /** The OS the agent reported ("linux 6.1.0-18-amd64"); null = not reported (an older agent). */
  os: z.string().nullable(),
  nodeKey: NodeKeyText,
  /** The node key's short fingerprint ("1a2b-3c4d-5e6f-7a8b"), as `weft login` prints it (@weft/crypto nodeKeyFingerprint). */
  fingerprint: z.string(),
  expiresAt: Timestamp,
  approved: z.boolean(),
});
export type PendingLogin = z.infer<typeof PendingLogin>;

/** Longest default node key expiry an admin may set, in days (and the longest one extension). */
export const MAX_NODE_KEY_EXPIRY_DAYS = 180;

const expiryDays = (field: string) =>
  z.number({ error: `${field} must be a whole number of days, 1-${MAX_NODE_KEY_EXPIRY_DAYS}` })
    .int(`${field} must be a whole number of days, 1-${MAX_NODE_KEY_EXPIRY_DAYS}`)
    .min(1, `${field} must be 1-${MAX_NODE_KEY_EXPIRY_DAYS} days`)
    .max(MAX_NODE_KEY_EXPIRY_DAYS, `${field} must be 1-${MAX_NODE_KEY_EXPIRY_DAYS} days`);

/** `GET /api/v1/settings`: the tailnet's settings (each one its default until an admin sets it). */
export const TailnetSettings = z.object({
  /** A node's key expires this many days after it joins or renews (1-180; default 180). */
  nodeKeyExpiryDays: expiryDays('nodeKeyExpiryDays'),
  /**
   * When true, a new device (confirmed by a person, or joined with an auth key not marked
   * pre-approved) waits for an admin's approval before it is in any netmap. Default false.
   */
  deviceApprovalRequired: z.boolean(),
});
export type TailnetSettings = z.infer<typeof TailnetSettings>;

/** `PATCH /api/v1/settings`: the fields to change; absent = unchanged. */
export const TailnetSettingsPatch = z.strictObject({
  nodeKeyExpiryDays: expiryDays('nodeKeyExpiryDays').optional(),
  deviceApprovalRequired: z.boolean({ error: 'deviceApprovalRequired must be true or false' }).optional(),
});
export type TailnetSettingsPatch = z.infer<typeof TailnetSettingsPatch>;

/**
 * `POST /api/v1/nodes/:id/expiry`: exactly one of `disabled` (true: the key never expires; false:
 * it expires the default number of days from now) or `extendDays` (days added to the later of now
 * and the current expiry; an expired node comes back at once).
 */
export const NodeExpiryChange = z.union([
  z.strictObject({ disabled: z.boolean() }),
  z.strictObject({ extendDays: expiryDays('extendDays') }),
], { error: 'give exactly one of {"disabled": true|false} or {"extendDays": 1-180}' });
export type NodeExpiryChange = z.infer<typeof NodeExpiryChange>;

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
  /**
   * For validation errors: which fields were wrong and why. `line` and `col` (1-based) say where in
   * a text field, such as a rejected policy's `text`; absent for other fields. Since the policy store.
   */
  errors: z.array(z.object({ path: z.string(), message: z.string(), line: z.number().int().optional(), col: z.number().int().optional() })).optional(),
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

// ---- Access policy (`/api/v1/policy`) ----

/** Longest policy text accepted, in UTF-16 code units (a 1,000-rule policy is about 150 KB). */
export const MAX_POLICY_CHARS = 1024 * 1024;

/** Most versions one history page holds. */
export const MAX_POLICY_HISTORY_PAGE = 100;

/** Who wrote a policy version, as the audit log names actors. */
export const PolicyAuthor = z.object({
  /** One label, as the audit log's `actor`: "apikey:<prefix>", "local-socket". */
  label: z.string(),
  /** "apikey", "local-socket", "system". */
  type: z.string(),
  /** The API key's id, when it was one. */
  id: z.string().nullable(),
  /** The key prefix, or "local-socket". */
  name: z.string().nullable(),
  /** "api", "cli" (the admin socket), "system". */
  origin: z.string(),
});
export type PolicyAuthor = z.infer<typeof PolicyAuthor>;

/**
 * `GET /api/v1/policy`: the policy in force; its `version` is also the ETag (`"3"`), which a PUT
 * sends back as If-Match. With none stored, `default` is true, `version` 0 and `text` null: every
 * node may reach every node.
 */
export const ActivePolicy = z.object({
  version: z.number().int().nonnegative(),
  /** True when no policy is stored and the built-in default is in force (every node reaches every node). */
  default: z.boolean(),
  /** The policy as written (HuJSON, comments kept); null for the default. */
  text: z.string().nullable(),
  /** When this version was written; null for the default. */
  createdAt: Timestamp.nullable(),
  author: PolicyAuthor.nullable(),
  /** The version whose text this one restored (a rollback); null otherwise. */
  restoredFrom: z.number().int().nullable(),
});
export type ActivePolicy = z.infer<typeof ActivePolicy>;

/** Reply of PUT and rollback: the policy in force after the request. */
export const PolicyWrite = ActivePolicy.extend({
  /** False when the text was the active one already: nothing was written, no version added. */
  changed: z.boolean(),
  /** Unified diff from the previous version ("" when unchanged). */
  diff: z.string(),
});
export type PolicyWrite = z.infer<typeof PolicyWrite>;

/** `PUT /api/v1/policy` (with If-Match) and `POST /api/v1/policy/check`. */
export const PolicyText = z.strictObject({
  /** The whole policy: HuJSON (JSON with comments and trailing commas), Tailscale's language. */
  text: text().max(MAX_POLICY_CHARS),
});
export type PolicyText = z.infer<typeof PolicyText>;

/** One reason a policy was rejected: where (1-based line and column of `text`) and what, in plain words. */
export const PolicyProblem = z.object({ line: z.number().int(), col: z.number().int(), message: z.string() });
export type PolicyProblem = z.infer<typeof PolicyProblem>;

/**
 * Headers of PUT and rollback. If-Match is the version the edit was made from, as GET sent it in
 * ETag (`"3"`). Required: 428 without it, 412 when it is not the active version. Other headers pass.
 */
export const IfMatchHeaders = z.object({
  'if-match': text().max(100).optional().describe('The policy version the edit was made from, as GET /api/v1/policy sent it in ETag ("3"). Required: 428 without it, 412 when it is not the active version.'),
});

/** `POST /api/v1/policy/check`: the verdict on a policy against the current users and nodes; nothing is written. */
export const PolicyCheck = z.object({
  /** True when a PUT of this text would be accepted (now: nodes change). */
  valid: z.boolean(),
  /** Every problem, in text order; empty when valid. */
  errors: z.array(PolicyProblem),
  /** How many nodes it was judged against. */
  nodes: z.number().int(),
  /** How many `tests` entries it holds (all passed when valid). */
  tests: z.number().int(),
});
export type PolicyCheck = z.infer<typeof PolicyCheck>;

/** A stored version, as `GET /api/v1/policy/versions/:version` returns it. */
export const PolicyVersion = z.object({
  version: z.number().int().positive(),
  text: z.string(),
  /** Unified diff from the previous version's text (from empty text for version 1). */
  diff: z.string(),
  createdAt: Timestamp,
  author: PolicyAuthor,
  restoredFrom: z.number().int().nullable(),
});
export type PolicyVersion = z.infer<typeof PolicyVersion>;

/** A version in the history: everything but the text (`/versions/:version` has it). */
export const PolicyHistoryItem = PolicyVersion.omit({ text: true }).extend({
  /** Lines added and removed by `diff`. */
  added: z.number().int(),
  removed: z.number().int(),
});
export type PolicyHistoryItem = z.infer<typeof PolicyHistoryItem>;

/** `GET /api/v1/policy/history`: newest first. */
export const PolicyHistoryQuery = z.strictObject({
  /** Only versions older than this: the previous page's `next`. */
  before: Id.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_POLICY_HISTORY_PAGE).optional(),
});
export type PolicyHistoryQuery = z.infer<typeof PolicyHistoryQuery>;

/** `next`: pass as `before` for the next (older) page; null when this page reached version 1. */
export const PolicyHistoryPage = z.object({ items: z.array(PolicyHistoryItem), next: z.number().int().nullable() });
export type PolicyHistoryPage = z.infer<typeof PolicyHistoryPage>;

export const PolicyVersionParam = z.strictObject({ version: Id });

/** `POST /api/v1/policy/rollback` (with If-Match): makes a new version with that version's text. */
export const RollbackPolicy = z.strictObject({ version: z.number().int().min(1).max(INT4_MAX) });
export type RollbackPolicy = z.infer<typeof RollbackPolicy>;

/**
 * `POST /api/v1/policy/explain`: may `src` reach `dst`, judged by the active policy. Each is an IP
 * address, `tag:NAME`, a node name, or a user's name or login (their untagged nodes); a bare name
 * is a node first, `node:NAME` and `user:NAME` choose.
 */
export const ExplainRequest = z.strictObject({
  src: text().min(1).max(300),
  dst: text().min(1).max(300),
  /** Absent: any port (the reply lists the ports allowed). Not for protocols without ports. */
  port: z.number().int().min(0).max(65535).optional(),
  /** tcp (the default), udp, icmp, another name, or an IANA number. */
  proto: text().min(1).max(20).optional(),
});
export type ExplainRequest = z.infer<typeof ExplainRequest>;

const RulePos = z.object({
  line: z.number().int(),
  col: z.number().int(),
  /** That line of the policy, trimmed. */
  text: z.string(),
});

const ExplainEndpoint = z.object({
  input: z.string(),
  kind: z.enum(['ip', 'node', 'user', 'tag']),
  /** The node name, user login, tag, or address it was taken to be. */
  name: z.string(),
  addresses: z.array(z.string()),
});

export const Explanation = z.object({
  /** The policy version judged by (0 = the default). */
  version: z.number().int().nonnegative(),
  /** True when every (source, destination) address pair of a family is allowed. */
  allowed: z.boolean(),
  /** True when no policy is stored: allowed by the default, no rule named. */
  default: z.boolean(),
  src: ExplainEndpoint,
  dst: ExplainEndpoint,
  port: z.number().int().nullable(),
  /** The rule that allows the first allowed pair; null when none does or for the default. */
  rule: RulePos.nullable(),
  pairs: z.array(z.object({
    src: z.string(),
    dst: z.string(),
    /** IANA protocol number checked. */
    proto: z.number().int(),
    allowed: z.boolean(),
    /** Every rule that allows this pair, in policy order. */
    rules: z.array(RulePos),
    /** Without a port: the ports allowed ("22", "80-90", "*"). */
    ports: z.array(z.string()).optional(),
    note: z.string().optional(),
  })),
});
export type Explanation = z.infer<typeof Explanation>;
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

// ---- Link health (`/api/v1/nodes/:id/links`, `/api/v1/links`, `/api/v1/links/summary`) ----

/** One WireGuard link from a node to a peer, as its agent last reported it. */
export const LinkView = z.object({
  peerId: z.number().int(),
  /** Null = the peer is gone. */
  peerName: z.string().nullable(),
  path: z.enum(['direct', 'relay', 'none']),
  endpoint: z.string().nullable(),
  /** Handshake older than 3 minutes while traffic is attempted: the link is dead. */
  stale: z.boolean(),
  /** As of this answer (the agent's age plus the time since its report); null = never. */
  handshakeAgeSeconds: z.number().int().nullable(),
  lastHandshake: z.string().nullable(),
  rxBytes: z.number().int(),
  txBytes: z.number().int(),
  /** When the server got this link's latest figures. */
  reportedAt: z.string(),
});
export type LinkView = z.infer<typeof LinkView>;

export const NodeLinksView = z.object({
  nodeId: z.number().int(),
  /**
   * live: from the session on the replica that answered (current); stored: the node's last stored
   * report (at most 30 s behind for paths and stale flags, 5 minutes for counters; the node may be
   * on another replica or offline); none: no report yet.
   */
  source: z.enum(['live', 'stored', 'none']),
  links: z.array(LinkView),
});
export type NodeLinksView = z.infer<typeof NodeLinksView>;

export const LinksQuery = z.strictObject({
  /** Only links in this state (`stale`: dead right now); absent = every reported link. */
  state: z.enum(['stale', 'direct', 'relay', 'none']).optional(),
});

export const FleetLinks = z.object({
  /** Links of online nodes, by node id then peer id. */
  items: z.array(LinkView.extend({ nodeId: z.number().int(), nodeName: z.string().nullable() })),
});
export type FleetLinks = z.infer<typeof FleetLinks>;

/**
 * `GET /api/v1/links/summary`: how many links of online nodes are direct, relayed, without a
 * path and stale right now (the dashboard's counts, without listing 10,000 nodes' links).
 * `nodes` = online nodes that reported at least one link; 0 = no reports yet.
 */
export const LinksSummary = z.object({
  direct: z.number().int(),
  relay: z.number().int(),
  none: z.number().int(),
  stale: z.number().int(),
  nodes: z.number().int(),
});
export type LinksSummary = z.infer<typeof LinksSummary>;
