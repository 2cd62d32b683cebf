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

function isProxySpec(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !isIP(addr!)) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(addr!) === 4 ? 32 : 128));
}

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
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    const missing = c.tlsCert === undefined ? 'tlsCert' : 'tlsKey';
    ctx.addIssue({ code: 'custom', path: [missing], message: `is needed too: HTTPS takes both tls-cert and tls-key` });
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
};

const FLAG_KEYS: Record<string, keyof ServerConfig> = {
  '--listen': 'listen',
  '--stun-listen': 'stunListen',
  '--relay': 'relay',
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
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') {
      raw[key] = v;
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
