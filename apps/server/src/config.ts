/**
 * Server configuration: defaults, then a JSON config file, then `WEFT_*` environment variables,
 * then flags. Validated once; a bad value fails start-up with a message naming the key and where
 * it came from.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { Region } from '@weft/protocol';
import { parseListenAddress } from '@weft/relay';
import { z } from 'zod';
import { EMBEDDED_REGION_ID } from './regions.js';
import { loadTlsPair, TlsPairError } from './tls.js';
import { MAX_PENDING_LOGINS } from './tunables.js';
import type { OidcSettings } from './web/oidc.js';

function isProxySpec(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !isIP(addr!)) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(addr!) === 4 ? 32 : 128));
}

/** An identity provider's URL: https, or http on a loopback host (a provider on this machine, tests). */
const IdpUrl = z.string().url('must be a URL such as https://accounts.example.com').refine((v) => {
  const u = new URL(v);
  return u.protocol === 'https:' || (u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname));
}, 'must be https:// (http:// only on localhost)');

const NameList = z.array(z.string().min(1).max(256)).max(1000).default([]);

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/;

/** `stunListen`: `HOST:PORT` for the STUN service (UDP), or `off`. */
const StunListen = z.string().superRefine((v, ctx) => {
  if (v === 'off') return;
  try {
    parseListenAddress(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message}, or off` });
  }
});

export const ServerConfig = z.strictObject({
  /** host:port the HTTP server listens on. */
  listen: z.string().regex(HOST_PORT, 'must be HOST:PORT, e.g. 0.0.0.0:8080'),
  /**
   * UDP host:port of the STUN service (RFC 8489 Binding: agents learn their public address), or
   * `off`. `[::]:3478` answers IPv4 and IPv6; port 0 picks a free port (tests).
   */
  stunListen: StunListen.default('0.0.0.0:3478'),
  /**
   * More relay/STUN regions for netmaps (standalone `weft-relay`s), config file only, e.g.
   * `[{"id": 2, "code": "fra", "name": "Frankfurt", "stun": ["relay-fra.example.com:3478"]}]`.
   * The embedded STUN service is region 1 (unless stunListen is off); ids and codes are unique.
   */
  regions: z.array(Region).max(31).default([]),
  /**
   * The embedded packet relay (WebSocket `GET /api/v1/relay` on the main port): `on` or `off`.
   * Off, nodes without a direct path to each other cannot reach each other.
   */
  relay: z.enum(['on', 'off'], { message: 'must be on or off' }).default('on'),
  /**
   * Replicas behind one address (HA): the URL the other replicas reach this one's relay at
   * (its own address, not the balancer's), and theirs (config file, or WEFT_RELAY_MESH_PEERS with
   * comma-separated URLs). Each replica links to
   * every peer's `/api/v1/relay/mesh` (authenticated with the `relay_mesh_secret` setting they all
   * share through the database), so nodes whose relay sockets are on different replicas still
   * relay to each other. Both unset = a single server: no mesh.
   */
  relayMeshUrl: z.string().url('must be a URL such as http://10.0.0.11:8080').optional(),
  relayMeshPeers: z.array(z.string().url('must be a URL such as http://10.0.0.12:8080')).max(64).default([]),
  /** Directory for the embedded database and the admin socket. */
  dataDir: z.string().min(1),
  /** postgres:// URL; absent = embedded PGlite in dataDir. */
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres://').optional(),
  /** URL agents and browsers use to reach this server; used in login links. */
  serverUrl: z.string().url('must be a URL such as https://weft.example.com').optional(),
  /** Log level. Each HTTP request is logged at debug. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  /** `json` (one object a line, for collectors) or `pretty` (readable lines); absent = pretty on a terminal, else json. */
  logFormat: z.enum(['json', 'pretty']).optional(),
  /** Seconds an interactive login waits for approval. */
  loginTimeout: z.number().int().positive().default(600),
  /** Seconds an ephemeral node may stay disconnected before it is deleted. */
  ephemeralTimeout: z.number().int().positive().default(60),
  /** Most devices waiting for interactive approval at once; more are answered 429. */
  maxPendingLogins: z.number().int().positive().max(1_000_000).default(MAX_PENDING_LOGINS),
  /**
   * Reverse proxies (addresses or CIDRs, or "loopback") whose X-Forwarded-For names the client.
   * Empty (the default) = the TCP peer is the client and X-Forwarded-For is ignored: believing it
   * from anyone would let a caller pick the address it is rate-limited under.
   */
  trustedProxies: z.array(z.string().refine(isProxySpec, 'must be an IP address, a CIDR such as 10.0.0.0/8, or "loopback"')).max(64).default([]),
  /** host:port of a separate plain-HTTP listener serving Prometheus metrics at /metrics; absent = none. */
  metricsListen: z.string().regex(HOST_PORT, 'must be HOST:PORT, e.g. 127.0.0.1:9090').optional(),
  /**
   * Bearer token that may read /metrics on the main port; absent = the main port has no /metrics.
   * Config file or environment only (a flag would show in `ps`).
   */
  metricsToken: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').max(512).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII with no spaces').optional(),
  /**
   * PEM certificate chain (leaf first) for HTTPS and WSS on `listen`; with `tlsKey`. Absent = plain
   * HTTP (behind a TLS-terminating proxy, or on a trusted network). Reloaded when the file changes.
   */
  tlsCert: z.string().min(1).optional(),
  /** PEM private key of `tlsCert`. Reloaded when the file changes. */
  tlsKey: z.string().min(1).optional(),
  // ---- sign-in with an OIDC provider (web/oidc.ts); all absent = local accounts only ----
  /** The issuer URL exactly as the provider's id_tokens name it; discovery is read from `<issuer>/.well-known/openid-configuration`. */
  oidcIssuer: IdpUrl.optional(),
  oidcClientId: z.string().min(1).max(512).optional(),
  /** The client secret, from the environment (WEFT_OIDC_CLIENT_SECRET) only; or oidcClientSecretFile. Absent both = a public client (PKCE). */
  oidcClientSecret: z.string().min(1).max(4096).optional(),
  /** A file holding the client secret (its first line); keeps it out of the config file and the environment. */
  oidcClientSecretFile: z.string().min(1).optional(),
  /** Where the provider sends browsers back; absent = `<serverUrl>/auth/oidc/callback`. Register this URL at the provider. */
  oidcRedirectUrl: z.string().url('must be a URL such as https://weft.example.com/auth/oidc/callback').optional(),
  oidcScopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token')).max(32).default(['openid', 'email', 'profile'])
    .refine((s) => s.includes('openid'), 'must include "openid"'),
  /** The id_token claim with the user's groups: `groups`, a namespaced name such as `https://example.com/groups`, or a dotted path such as `realm_access.roles`. */
  oidcGroupsClaim: z.string().min(1).max(256).default('groups'),
  /** Only emails in these domains may sign in (empty = any). Lists combine with AND. */
  oidcAllowedDomains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a domain such as example.com')).max(1000).default([]),
  /** Only these emails (or subjects) may sign in (empty = any). */
  oidcAllowedUsers: NameList,
  /** Only members of one of these provider groups may sign in (empty = any). */
  oidcAllowedGroups: NameList,
  /** Members of these provider groups are admins of this server. */
  oidcAdminGroups: NameList,
}).superRefine((c, ctx) => {
  const ids = new Set<number>();
  const codes = new Set<string>();
  c.regions.forEach((r, i) => {
    if (r.id === EMBEDDED_REGION_ID && c.stunListen !== 'off') {
      ctx.addIssue({ code: 'custom', path: ['regions', i, 'id'], message: `id ${EMBEDDED_REGION_ID} is the embedded STUN service's region; use another id (or set stunListen to off)` });
    }
    if (ids.has(r.id)) ctx.addIssue({ code: 'custom', path: ['regions', i, 'id'], message: `id ${r.id} is used twice` });
    if (codes.has(r.code)) ctx.addIssue({ code: 'custom', path: ['regions', i, 'code'], message: `code "${r.code}" is used twice` });
    ids.add(r.id);
    codes.add(r.code);
  });
  if (c.relayMeshPeers.length > 0 && c.relayMeshUrl === undefined) {
    ctx.addIssue({ code: 'custom', path: ['relayMeshUrl'], message: 'is needed with relayMeshPeers (the URL the other replicas reach this one at)' });
  }
  if (c.relayMeshPeers.length > 0 && c.relay === 'off') {
    ctx.addIssue({ code: 'custom', path: ['relayMeshPeers'], message: 'needs the relay on (relay is off)' });
  }
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    const missing = c.tlsCert === undefined ? 'tlsCert' : 'tlsKey';
    ctx.addIssue({ code: 'custom', path: [missing], message: `is needed too: HTTPS takes both tls-cert and tls-key` });
  }
  const oidcKeys = (['oidcIssuer', 'oidcClientId', 'oidcClientSecret', 'oidcClientSecretFile', 'oidcRedirectUrl'] as const).filter((k) => c[k] !== undefined);
  if (oidcKeys.length && (c.oidcIssuer === undefined || c.oidcClientId === undefined)) {
    ctx.addIssue({ code: 'custom', path: [c.oidcIssuer === undefined ? 'oidcIssuer' : 'oidcClientId'], message: `is needed with ${oidcKeys.join(', ')} (OIDC needs at least oidcIssuer and oidcClientId)` });
  }
  if (c.oidcClientSecret !== undefined && c.oidcClientSecretFile !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['oidcClientSecretFile'], message: 'set either the client secret (WEFT_OIDC_CLIENT_SECRET) or a file holding it, not both' });
  }
  if (c.metricsListen !== undefined && c.metricsListen === c.listen) {
    ctx.addIssue({ code: 'custom', path: ['metricsListen'], message: `must differ from "listen" (${c.listen}); to serve metrics on the main port set metricsToken instead` });
  }
});
export type ServerConfig = z.infer<typeof ServerConfig>;

const ENV_KEYS: Record<string, keyof ServerConfig> = {
  WEFT_LISTEN: 'listen',
  WEFT_STUN_LISTEN: 'stunListen',
  WEFT_RELAY: 'relay',
  WEFT_RELAY_MESH_URL: 'relayMeshUrl',
  WEFT_RELAY_MESH_PEERS: 'relayMeshPeers',
  WEFT_DATA_DIR: 'dataDir',
  WEFT_DATABASE_URL: 'databaseUrl',
  DATABASE_URL: 'databaseUrl',
  WEFT_SERVER_URL: 'serverUrl',
  WEFT_LOG_LEVEL: 'logLevel',
  WEFT_LOG_FORMAT: 'logFormat',
  WEFT_METRICS_LISTEN: 'metricsListen',
  WEFT_METRICS_TOKEN: 'metricsToken',
  WEFT_TLS_CERT: 'tlsCert',
  WEFT_TLS_KEY: 'tlsKey',
  WEFT_OIDC_ISSUER: 'oidcIssuer',
  WEFT_OIDC_CLIENT_ID: 'oidcClientId',
  WEFT_OIDC_CLIENT_SECRET: 'oidcClientSecret',
  WEFT_OIDC_CLIENT_SECRET_FILE: 'oidcClientSecretFile',
  WEFT_OIDC_REDIRECT_URL: 'oidcRedirectUrl',
  WEFT_OIDC_GROUPS_CLAIM: 'oidcGroupsClaim',
};

const FLAG_KEYS: Record<string, keyof ServerConfig> = {
  '--listen': 'listen',
  '--stun-listen': 'stunListen',
  '--relay': 'relay',
  '--relay-mesh-url': 'relayMeshUrl',
  '--data-dir': 'dataDir',
  '--database-url': 'databaseUrl',
  '--server-url': 'serverUrl',
  '--log-level': 'logLevel',
  '--log-format': 'logFormat',
  '--metrics-listen': 'metricsListen',
  '--tls-cert': 'tlsCert',
  '--tls-key': 'tlsKey',
};

export class ConfigError extends Error {}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Builds the config from `--config FILE`, env and flags; throws ConfigError naming the bad key. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig {
  const raw: Record<string, unknown> = { listen: '127.0.0.1:8080', dataDir: './data' };
  const source: Record<string, string> = {};
  const flags = parseFlags(argv);

  const file = flags.get('--config') ?? env.WEFT_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${file} must hold a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      raw[k] = v;
      source[k] = `config file ${file}`;
    }
  }
  // A secret written into the config file is one `cat` or backup away from anyone: environment or a file of its own.
  if (source.oidcClientSecret) throw new ConfigError(`"oidc-client-secret" (${source.oidcClientSecret}): put the secret in a file of its own (oidcClientSecretFile) or the environment (WEFT_OIDC_CLIENT_SECRET), not in the config file`);
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') {
      // The one list a variable carries: comma-separated URLs.
      raw[key] = key === 'relayMeshPeers' ? v.split(',').map((u) => u.trim()).filter(Boolean) : v;
      source[key] = `environment variable ${name}`;
    }
  }
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const v = flags.get(flag);
    if (v !== undefined) {
      raw[key] = v;
      source[key] = `flag ${flag}`;
    }
  }
  const result = ServerConfig.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const where = source[key] ?? 'config';
      return i.code === 'unrecognized_keys'
        ? `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')} in ${where}`
        : `"${kebab(key)}" (${where}): ${key === 'regions' && i.path.length > 1 ? `regions${i.path.slice(1).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ` : ''}${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config = { ...result.data, dataDir: resolve(result.data.dataDir) };
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    config.tlsCert = resolve(config.tlsCert);
    config.tlsKey = resolve(config.tlsKey);
    checkTlsPair(config.tlsCert, config.tlsKey, source);
  }
  if (config.oidcClientSecretFile !== undefined) {
    try {
      config.oidcClientSecret = readFileSync(config.oidcClientSecretFile, 'utf8').split(/\r?\n/)[0]!.trim();
    } catch (err) {
      throw new ConfigError(`"oidc-client-secret-file" (${source.oidcClientSecretFile}): cannot read ${config.oidcClientSecretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!config.oidcClientSecret) throw new ConfigError(`"oidc-client-secret-file" (${source.oidcClientSecretFile}): ${config.oidcClientSecretFile} is empty`);
  }
  return config;
}

/** Unreadable files, a non-certificate or a key of another certificate stop start-up naming the key and its source. */
function checkTlsPair(cert: string, key: string, source: Record<string, string>): void {
  try {
    loadTlsPair(cert, key);
  } catch (err) {
    if (!(err instanceof TlsPairError)) throw err;
    const where = (k: 'tlsCert' | 'tlsKey') => `"${kebab(k)}" (${source[k] ?? 'config'})`;
    const named = err.file === 'cert' ? where('tlsCert') : err.file === 'key' ? where('tlsKey') : `${where('tlsCert')} and ${where('tlsKey')}`;
    throw new ConfigError(`invalid configuration:\n  ${named}: ${err.message}`);
  }
}

/** The OIDC settings for the app, or undefined when no provider is configured. */
export function oidcSettings(c: ServerConfig, serverUrl: string): OidcSettings | undefined {
  if (c.oidcIssuer === undefined || c.oidcClientId === undefined) return undefined;
  return {
    issuer: c.oidcIssuer,
    clientId: c.oidcClientId,
    ...(c.oidcClientSecret !== undefined ? { clientSecret: c.oidcClientSecret } : {}),
    redirectUrl: c.oidcRedirectUrl ?? `${serverUrl.replace(/\/$/, '')}/auth/oidc/callback`,
    scopes: c.oidcScopes,
    groupsClaim: c.oidcGroupsClaim,
    allowedDomains: c.oidcAllowedDomains,
    allowedUsers: c.oidcAllowedUsers,
    allowedGroups: c.oidcAllowedGroups,
    adminGroups: c.oidcAdminGroups,
  };
}

/** `--flag value` and `--flag=value`; unknown flags are an error. */
function parseFlags(argv: string[]): Map<string, string> {
  const known = new Set([...Object.keys(FLAG_KEYS), '--config']);
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (!known.has(name)) throw new ConfigError(`unknown flag ${name} (known: ${[...known].join(', ')})`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag ${name} needs a value`);
    out.set(name, value);
  }
  return out;
}
