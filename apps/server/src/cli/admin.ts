/**
 * `weft-server users|nodes|authkeys|apikeys ...`: the admin CLI. Human tables by default, `--json`
 * for scripts. Exit codes: 0 ok, 1 the server refused (problem shown), 2 usage, 3 server unreachable.
 */
import { resolve } from 'node:path';
import type { ApiKey, AuthKey, CreatedApiKey, CreatedAuthKey, Node, PendingLogin, User } from '@weft/protocol';
import { adminSocketPath } from '../local-socket.js';
import { parseArgs, parseDuration, UsageError, type Parsed } from './args.js';
import { call, ProblemError, ServerUnreachable, type Target } from './client.js';
import { addPeer } from './add-peer.js';
import { ago, table } from './table.js';

export const ExitCode = { Ok: 0, Refused: 1, Usage: 2, Unreachable: 3 } as const;

const COMMON_STRING = ['data-dir', 'socket', 'server', 'api-key'];
const COMMON_BOOL = ['json', 'help'];

export const ADMIN_USAGE = `Admin commands (reach a running server through <data-dir>/weft-server.sock, or any server with --server URL --api-key KEY):
  weft-server users list | create NAME [--display-name TEXT] [--email ADDR] | get NAME | delete NAME
  weft-server nodes list | get ID | delete ID | expire ID | rename ID NAME | pending | approve CODE [--user NAME]
  weft-server nodes add-peer HOSTNAME --user NAME [--tags tag:a] [--out FILE.conf] [--qr-png FILE.png]
      (a node-less peer such as a phone: prints a wg-quick config and a QR code for the WireGuard app)
  weft-server authkeys list | create --user NAME [--reusable] [--ephemeral] [--tags tag:a,tag:b] [--expiration 1h|0] | revoke ID
  weft-server apikeys list | create --scopes admin|read[,..] [--description TEXT] [--expiration 90d|0] | revoke ID
Common flags: --json  --data-dir DIR (default ./data, env WEFT_DATA_DIR)  --socket PATH  --server URL (env WEFT_SERVER)  --api-key KEY (env WEFT_API_KEY)`;

type Out = (s: string) => void;

export async function admin(argv: string[], out: Out = (s) => process.stdout.write(s + '\n'), err: Out = (s) => process.stderr.write(s + '\n')): Promise<number> {
  try {
    return await run(argv, out);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`weft-server: ${e.message}\n\n${ADMIN_USAGE}`);
      return ExitCode.Usage;
    }
    if (e instanceof ServerUnreachable) {
      err(`weft-server: ${e.message}`);
      return ExitCode.Unreachable;
    }
    if (e instanceof ProblemError) {
      err(`weft-server: ${e.problem.detail ?? e.problem.title} (${e.problem.code})`);
      for (const f of e.problem.errors ?? []) err(`  ${f.path}: ${f.message}`);
      return ExitCode.Refused;
    }
    throw e;
  }
}

function targetOf(p: Parsed): Target {
  const server = str(p, 'server') ?? process.env.WEFT_SERVER;
  if (server) {
    const apiKey = str(p, 'api-key') ?? process.env.WEFT_API_KEY;
    if (!apiKey) throw new UsageError('--server needs --api-key (or WEFT_API_KEY); create one with: weft-server apikeys create --scopes admin');
    return { url: server, apiKey };
  }
  return { socketPath: str(p, 'socket') ?? adminSocketPath(resolve(str(p, 'data-dir') ?? process.env.WEFT_DATA_DIR ?? './data')) };
}

const str = (p: Parsed, name: string) => {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};

function arg(p: Parsed, i: number, what: string): string {
  const v = p.positional[i];
  if (v === undefined) throw new UsageError(`missing ${what}`);
  return v;
}

function id(p: Parsed, i: number): number {
  const v = arg(p, i, 'ID');
  if (!/^\d+$/.test(v)) throw new UsageError(`ID must be a number, got "${v}"`);
  return Number(v);
}

async function run(argv: string[], out: Out): Promise<number> {
  const [noun, verb = 'list', ...rest] = argv;
  const extra = {
    users: { string: ['display-name', 'email'], boolean: [] as string[] },
    nodes: { string: ['user', 'tags', 'out', 'qr-png'], boolean: [] },
    authkeys: { string: ['user', 'tags', 'expiration'], boolean: ['reusable', 'ephemeral'] },
    apikeys: { string: ['scopes', 'description', 'expiration'], boolean: [] },
  }[noun as 'users'];
  if (!extra) throw new UsageError(`unknown command "${noun ?? ''}"`);
  const p = parseArgs(rest, { string: [...COMMON_STRING, ...extra.string], boolean: [...COMMON_BOOL, ...extra.boolean] });
  if (p.flags.has('help') || verb === 'help') {
    out(ADMIN_USAGE);
    return ExitCode.Ok;
  }
  const t = targetOf(p);
  const json = p.flags.has('json');
  const show = (value: unknown, human: () => string) => out(json ? JSON.stringify(value, null, 2) : human());
  const key = `${noun} ${verb}`;

  switch (key) {
    case 'users list': {
      const { items } = await call<{ items: User[] }>(t, 'GET', '/api/v1/users');
      show(items, () => table(['ID', 'NAME', 'DISPLAY NAME', 'EMAIL', 'CREATED'], items.map((u) => [u.id, u.name, u.displayName, u.email, u.createdAt])));
      break;
    }
    case 'users create': {
      const u = await call<User>(t, 'POST', '/api/v1/users', { name: arg(p, 0, 'NAME'), displayName: str(p, 'display-name'), email: str(p, 'email') });
      show(u, () => `Created user ${u.name} (id ${u.id}). Next: weft-server authkeys create --user ${u.name}`);
      break;
    }
    case 'users get': {
      const u = await call<User>(t, 'GET', `/api/v1/users/${encodeURIComponent(arg(p, 0, 'NAME'))}`);
      show(u, () => table(['ID', 'NAME', 'DISPLAY NAME', 'EMAIL', 'CREATED'], [[u.id, u.name, u.displayName, u.email, u.createdAt]]));
      break;
    }
    case 'users delete': {
      const u = await call<User>(t, 'DELETE', `/api/v1/users/${encodeURIComponent(arg(p, 0, 'NAME'))}`);
      show(u, () => `Deleted user ${u.name} and all of their nodes and auth keys.`);
      break;
    }
    case 'nodes list': {
      const { items } = await call<{ items: Node[] }>(t, 'GET', '/api/v1/nodes');
      show(items, () => table(['ID', 'NAME', 'USER', 'IPV4', 'IPV6', 'STATUS', 'LAST SEEN'], items.map((n) => [n.id, n.name, n.user, n.ipv4, n.ipv6, n.expired ? 'expired' : n.online ? 'online' : 'offline', n.online ? 'now' : ago(n.lastSeen)])));
      break;
    }
    case 'nodes get': {
      const n = await call<Node>(t, 'GET', `/api/v1/nodes/${id(p, 0)}`);
      show(n, () => Object.entries(n).map(([k, v]) => `${k.padEnd(10)} ${Array.isArray(v) ? v.join(', ') || '-' : String(v ?? '-')}`).join('\n'));
      break;
    }
    case 'nodes delete': {
      const n = await call<Node>(t, 'DELETE', `/api/v1/nodes/${id(p, 0)}`);
      show(n, () => `Deleted node ${n.name} (${n.ipv4}); every peer has been told to drop it.`);
      break;
    }
    case 'nodes expire': {
      const n = await call<Node>(t, 'POST', `/api/v1/nodes/${id(p, 0)}/expire`);
      show(n, () => `Expired node ${n.name}; it must log in again.`);
      break;
    }
    case 'nodes rename': {
      const n = await call<Node>(t, 'POST', `/api/v1/nodes/${id(p, 0)}/rename`, { name: arg(p, 1, 'NAME') });
      show(n, () => `Renamed node ${n.id} to ${n.name}.`);
      break;
    }
    case 'nodes add-peer': {
      const user = str(p, 'user');
      if (!user) throw new UsageError('nodes add-peer needs --user NAME');
      const out = await addPeer(t, { hostname: arg(p, 0, 'HOSTNAME'), user, tags: str(p, 'tags')?.split(',').filter(Boolean) ?? [], out: str(p, 'out'), qrPng: str(p, 'qr-png') });
      show({ node: out.node, config: out.config }, () =>
        `${out.config}\n${out.qr}\nAdded ${out.node.name} (${out.node.ipv4}) for ${out.node.user}. Scan the code in the WireGuard app` +
        `${str(p, 'out') ? ` or import ${str(p, 'out')}` : ''}.\nThis is the only copy of its private key: it was made here and the server never saw it.` +
        `\nThe config lists the nodes that exist now; to reach nodes that join later, export a new one.`);
      break;
    }
    case 'nodes pending': {
      const { items } = await call<{ items: PendingLogin[] }>(t, 'GET', '/api/v1/logins');
      show(items, () => table(['CODE', 'HOSTNAME', 'EXPIRES'], items.map((l) => [l.code, l.hostname, l.expiresAt])));
      break;
    }
    case 'nodes approve': {
      const code = arg(p, 0, 'CODE');
      let user = str(p, 'user');
      if (!user) {
        const { items } = await call<{ items: User[] }>(t, 'GET', '/api/v1/users');
        if (items.length !== 1) throw new UsageError(items.length === 0 ? 'there are no users yet: weft-server users create NAME' : 'which user owns this device? pass --user NAME');
        user = items[0]!.name;
      }
      const n = await call<Node>(t, 'POST', `/api/v1/logins/${encodeURIComponent(code)}/approve`, { user });
      show(n, () => `Approved: ${n.name} (${n.ipv4}) joined as ${n.user}.`);
      break;
    }
    case 'authkeys list': {
      const { items } = await call<{ items: AuthKey[] }>(t, 'GET', '/api/v1/authkeys');
      show(items, () => table(['ID', 'PREFIX', 'USER', 'REUSABLE', 'EPHEMERAL', 'USED', 'EXPIRES', 'STATE', 'TAGS'], items.map((k) => [k.id, k.prefix, k.user, k.reusable ? 'yes' : 'no', k.ephemeral ? 'yes' : 'no', k.usedCount, k.expiresAt ?? 'never', keyState(k), k.tags.join(',')])));
      break;
    }
    case 'authkeys create': {
      const user = str(p, 'user');
      if (!user) throw new UsageError('authkeys create needs --user NAME');
      const exp = str(p, 'expiration');
      const k = await call<CreatedAuthKey>(t, 'POST', '/api/v1/authkeys', {
        user,
        reusable: p.flags.has('reusable'),
        ephemeral: p.flags.has('ephemeral'),
        tags: str(p, 'tags')?.split(',').filter(Boolean) ?? [],
        ...(exp !== undefined ? { expiresIn: parseDuration(exp) } : {}),
      });
      show(k, () => `${k.key}\n\nAuth key for ${k.user} (${k.reusable ? 'reusable' : 'single use'}${k.ephemeral ? ', ephemeral' : ''}, expires ${k.expiresAt ?? 'never'}).\nThis is the only time the key is shown. Join a device with:\n  weft up --server URL --auth-key ${k.key}`);
      break;
    }
    case 'authkeys revoke': {
      const k = await call<AuthKey>(t, 'DELETE', `/api/v1/authkeys/${id(p, 0)}`);
      show(k, () => `Revoked auth key ${k.prefix}.`);
      break;
    }
    case 'apikeys list': {
      const { items } = await call<{ items: ApiKey[] }>(t, 'GET', '/api/v1/apikeys');
      show(items, () => table(['ID', 'PREFIX', 'SCOPES', 'DESCRIPTION', 'LAST USED', 'EXPIRES', 'STATE'], items.map((k) => [k.id, k.prefix, k.scopes.join(','), k.description, ago(k.lastUsedAt), k.expiresAt ?? 'never', k.revoked ? 'revoked' : 'active'])));
      break;
    }
    case 'apikeys create': {
      const scopes = str(p, 'scopes');
      if (!scopes) throw new UsageError('apikeys create needs --scopes admin or --scopes read');
      const exp = str(p, 'expiration');
      const k = await call<CreatedApiKey>(t, 'POST', '/api/v1/apikeys', {
        scopes: scopes.split(',').filter(Boolean),
        description: str(p, 'description'),
        ...(exp !== undefined ? { expiresIn: parseDuration(exp) } : {}),
      });
      show(k, () => `${k.key}\n\nAPI key with scopes ${k.scopes.join(', ')}. This is the only time it is shown.\nUse it as: Authorization: Bearer ${k.prefix}-...`);
      break;
    }
    case 'apikeys revoke': {
      const k = await call<ApiKey>(t, 'DELETE', `/api/v1/apikeys/${id(p, 0)}`);
      show(k, () => `Revoked API key ${k.prefix}.`);
      break;
    }
    default:
      throw new UsageError(`unknown command "${key}"`);
  }
  return ExitCode.Ok;
}

function keyState(k: AuthKey): string {
  if (k.revoked) return 'revoked';
  if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return 'expired';
  if (!k.reusable && k.usedCount > 0) return 'used';
  return 'valid';
}
