/**
 * `weft-server users|nodes|authkeys|apikeys|audit|settings ...`: the admin CLI. Human tables by default, `--json`
 * for scripts. Exit codes: 0 ok, 1 the server refused (problem shown), 2 usage (or a local file that
 * cannot be written), 3 server unreachable.
 */
import { resolve } from 'node:path';
import type { ApiKey, AuthKey, CreatedApiKey, CreatedAuthKey, Node, PasswordSet, PendingLogin, ServerInfo, TailnetSettings, User, UserOperation } from '@weft/protocol';
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import { adminSocketPath } from '../local-socket.js';
import { addPeer } from './add-peer.js';
import { auditExport, auditList, type Stdout } from './audit.js';
import { ownerOf, ttyPrompt, type Prompt } from './approve-owner.js';
import { parseArgs, parseDuration, UsageError, type Parsed } from './args.js';
import { call, ProblemError, ServerUnreachable, type Target } from './client.js';
import { ADMIN_USAGE, NOUN_USAGE, nounUsage, type Noun } from './help.js';
import { API_KEY_PLACEHOLDER, reachFlags, shellWord } from './hints.js';
import { readPassword } from './password-input.js';
import { settingsPatch, settingsText } from './settings.js';
import { ago, table } from './table.js';

export const ExitCode = { Ok: 0, Refused: 1, Usage: 2, Unreachable: 3 } as const;

export const COMMON_STRING = ['data-dir', 'socket', 'server', 'api-key'];
export const COMMON_BOOL = ['json', 'help'];

type Out = (s: string) => void;

const EXTRA_FLAGS: Record<Noun, { string: string[]; boolean: string[] }> = {
  users: { string: ['display-name', 'email'], boolean: ['yes'] },
  audit: { string: ['since', 'until', 'action', 'actor', 'target', 'limit'], boolean: [] },
  nodes: { string: ['user', 'tags', 'out', 'qr-png', 'extend'], boolean: ['disable', 'enable'] },
  authkeys: { string: ['user', 'tags', 'expiration'], boolean: ['reusable', 'ephemeral', 'pre-approved'] },
  apikeys: { string: ['scopes', 'description', 'expiration'], boolean: [] },
  scim: { string: ['description', 'expiration'], boolean: [] },
  admin: { string: ['user'], boolean: [] },
  settings: { string: [], boolean: [] },
};

const isNoun = (s: string | undefined): s is Noun => s !== undefined && Object.hasOwn(NOUN_USAGE, s);

/**
 * Runs one admin command. Human output goes through terminalSafeLines on its way out: names,
 * descriptions and problem details came from the server and may hold terminal escapes. `--json`
 * output is written exactly as received.
 */
export async function admin(argv: string[], out: Out = (s) => process.stdout.write(s + '\n'), err: Out = (s) => process.stderr.write(s + '\n'), io: Prompt = ttyPrompt, stdout: Stdout = process.stdout): Promise<number> {
  const safeErr = (s: string) => err(terminalSafeLines(s));
  try {
    return await run(argv, out, io, stdout);
  } catch (e) {
    if (e instanceof UsageError) {
      const noun = isNoun(argv[0]) ? argv[0] : undefined;
      safeErr(`weft-server: ${e.message}\n\n${noun ? nounUsage(noun) : ADMIN_USAGE}`);
      return ExitCode.Usage;
    }
    if (e instanceof ServerUnreachable) {
      safeErr(`weft-server: ${e.message}`);
      return ExitCode.Unreachable;
    }
    if (e instanceof ProblemError) {
      safeErr(`weft-server: ${e.problem.detail ?? e.problem.title} (${e.problem.code})`);
      for (const f of e.problem.errors ?? []) safeErr(`  ${f.path}: ${f.message}`);
      return ExitCode.Refused;
    }
    if (e instanceof Error && 'syscall' in e && 'path' in e) {
      // A local file named on the command line (--out, --qr-png): the input is what is wrong.
      safeErr(`weft-server: ${e.message}`);
      return ExitCode.Usage;
    }
    throw e;
  }
}

/** The server this command line names: --server/--api-key (or WEFT_SERVER/WEFT_API_KEY), else the admin socket. */
export function targetOf(p: Parsed): Target {
  const server = str(p, 'server') ?? process.env.WEFT_SERVER;
  if (server) {
    const apiKey = str(p, 'api-key') ?? process.env.WEFT_API_KEY;
    if (!apiKey) throw new UsageError('--server needs --api-key (or WEFT_API_KEY); on the server host, create one with: weft-server apikeys create --scopes admin --data-dir DIR');
    if (apiKey === API_KEY_PLACEHOLDER) {
      throw new UsageError(`--api-key ${API_KEY_PLACEHOLDER} in a printed command stands for your API key: put the key there, or export WEFT_API_KEY=... and leave --api-key out`);
    }
    return { url: server, apiKey };
  }
  return { socketPath: str(p, 'socket') ?? adminSocketPath(resolve(str(p, 'data-dir') ?? process.env.WEFT_DATA_DIR ?? './data')) };
}

/** Flags for printed next steps: the ones this command line used to reach its server. */
function reachOf(p: Parsed): string {
  const remote = Boolean(str(p, 'server') ?? process.env.WEFT_SERVER);
  return reachFlags({ server: str(p, 'server'), socket: str(p, 'socket'), dataDir: str(p, 'data-dir'), apiKeyFlag: remote && str(p, 'api-key') !== undefined });
}

export const str = (p: Parsed, name: string) => {
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

/** A node by its name (or its numeric id). */
async function nodeIdOf(t: Parameters<typeof call>[0], ref: string): Promise<number> {
  if (/^\d+$/.test(ref)) return Number(ref);
  const { items } = await call<{ items: Node[] }>(t, 'GET', `/api/v1/nodes?q=${encodeURIComponent(ref)}`);
  const hit = items.find((n) => n.name === ref);
  if (!hit) throw new UsageError(`no node is named "${ref}"; list them with: weft-server nodes list`);
  return hit.id;
}

async function run(argv: string[], out: Out, io: Prompt, stdout: Stdout): Promise<number> {
  const [noun, ...afterNoun] = argv;
  if (!isNoun(noun)) throw new UsageError(`unknown command "${noun ?? ''}" (commands: serve, users, nodes, authkeys, apikeys, scim, audit, settings, admin, policy, backup, restore, db, relay-secret, doctor, --help, --version)`);
  // `nodes --json` and `nodes --help` are `nodes list ...`: a flag is not a verb.
  const [verb, ...rest] = afterNoun[0] === undefined || afterNoun[0].startsWith('-') ? ['list', ...afterNoun] : afterNoun;
  if (verb === 'help' || rest.includes('--help') || rest.includes('-h')) {
    out(nounUsage(noun));
    return ExitCode.Ok;
  }
  const extra = EXTRA_FLAGS[noun];
  const p = parseArgs(rest, { string: [...COMMON_STRING, ...extra.string], boolean: [...COMMON_BOOL, ...extra.boolean] });
  const t = targetOf(p);
  const json = p.flags.has('json');
  const show = (value: unknown, human: () => string) => out(json ? JSON.stringify(value, null, 2) : terminalSafeLines(human()));
  const reach = reachOf(p);
  const key = `${noun} ${verb}`;

  switch (key) {
    case 'users list': {
      const { items } = await call<{ items: User[] }>(t, 'GET', '/api/v1/users');
      show(items, () => table(['ID', 'NAME', 'DISPLAY NAME', 'EMAIL', 'STATUS', 'CREATED'], items.map((u) => [u.id, u.name, u.displayName, u.email, u.status, u.createdAt])));
      break;
    }
    case 'users suspend':
    case 'users resume':
    case 'users offboard': {
      const name = arg(p, 0, 'NAME');
      if (verb === 'offboard') await confirm(p, io, `Offboard ${name}? Every device of ${name} is deleted and their auth keys revoked; this cannot be undone.`);
      const r = await call<UserOperation>(t, 'POST', `/api/v1/users/${encodeURIComponent(name)}/${verb}`);
      show(r, () => operationText(String(verb), r));
      break;
    }
    case 'users create': {
      const u = await call<User>(t, 'POST', '/api/v1/users', { name: arg(p, 0, 'NAME'), displayName: str(p, 'display-name'), email: str(p, 'email') });
      show(u, () => `Created user ${u.name} (id ${u.id}). Next, an auth key for their devices:\n  weft-server authkeys create --user ${u.name}${reach}`);
      break;
    }
    case 'users get': {
      const u = await call<User>(t, 'GET', `/api/v1/users/${encodeURIComponent(arg(p, 0, 'NAME'))}`);
      show(u, () => table(['ID', 'NAME', 'DISPLAY NAME', 'EMAIL', 'STATUS', 'CREATED'], [[u.id, u.name, u.displayName, u.email, u.status, u.createdAt]]));
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
    case 'nodes expiry': {
      const nodeId = id(p, 0);
      const extend = str(p, 'extend');
      const chosen = [p.flags.has('disable'), p.flags.has('enable'), extend !== undefined].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError('nodes expiry ID needs exactly one of --disable, --enable, --extend DAYS');
      let body;
      if (extend !== undefined) {
        const m = /^(\d+)d?$/.exec(extend);
        if (!m) throw new UsageError(`--extend takes a number of days (1-180), got "${extend}"`);
        body = { extendDays: Number(m[1]) };
      } else body = { disabled: p.flags.has('disable') };
      const n = await call<Node>(t, 'POST', `/api/v1/nodes/${nodeId}/expiry`, body);
      show(n, () => `Node ${n.name}: ${n.expiresAt ? `key expires ${n.expiresAt}` : 'key expiry disabled (never expires)'}.`);
      break;
    }
    case 'settings get': {
      const st = await call<TailnetSettings>(t, 'GET', '/api/v1/settings');
      show(st, () => settingsText(st));
      break;
    }
    case 'settings set': {
      const st = await call<TailnetSettings>(t, 'PATCH', '/api/v1/settings', settingsPatch(arg(p, 0, 'KEY'), arg(p, 1, 'VALUE')));
      show(st, () => `Saved.\n${settingsText(st)}`);
      break;
    }
    case 'nodes rename': {
      const n = await call<Node>(t, 'POST', `/api/v1/nodes/${id(p, 0)}/rename`, { name: arg(p, 1, 'NAME') });
      show(n, () => `Renamed node ${n.id} to ${n.name}.`);
      break;
    }
    case 'nodes tag': {
      const ref = arg(p, 0, 'NAME');
      const list = arg(p, 1, 'TAGS');
      const tags = list === '-' ? [] : list.split(',').map((x) => x.trim()).filter(Boolean);
      const n = await call<Node>(t, 'PUT', `/api/v1/nodes/${await nodeIdOf(t, ref)}/tags`, { tags });
      show(n, () => (n.tags.length ? `Tagged node ${n.name} ${n.tags.join(', ')}; it is no longer ${n.user}'s in the access policy.` : `Removed every tag from node ${n.name}; it is ${n.user}'s again.`));
      break;
    }
    case 'nodes add-peer': {
      const user = str(p, 'user');
      if (!user) throw new UsageError('nodes add-peer needs --user NAME');
      const file = str(p, 'out');
      const png = str(p, 'qr-png');
      const r = await addPeer(t, { hostname: arg(p, 0, 'HOSTNAME'), user, tags: str(p, 'tags')?.split(',').filter(Boolean) ?? [], out: file, qrPng: png });
      const added = `Added ${r.node.name} (${r.node.ipv4}) for ${r.node.user}.`;
      const later = 'The config lists the nodes that exist now; to reach nodes that join later, export a new one.';
      if (file) {
        // The private key is in the file only: neither the config nor its QR code reaches stdout.
        show({ node: r.node, out: resolve(file), ...(png ? { qrPng: resolve(png) } : {}) }, () =>
          `${added}\nIts wg-quick config, with the only copy of its private key, is in ${resolve(file)} (mode 0600).` +
          `${png ? `\nThe same config as a QR code for the WireGuard app is in ${resolve(png)} (mode 0600).` : ''}` +
          `\nImport the file in the WireGuard app, then delete it.\n${later}`);
      } else {
        show({ node: r.node, config: r.config, ...(png ? { qrPng: resolve(png) } : {}) }, () =>
          `${r.config}\n${r.qr}\n${added} Scan the code in the WireGuard app.\n` +
          `This is the only copy of its private key: it was made here and the server never saw it.\n${later}`);
      }
      break;
    }
    case 'nodes pending': {
      const { items } = await call<{ items: PendingLogin[] }>(t, 'GET', '/api/v1/logins');
      const waiting = (await call<{ items: Node[] }>(t, 'GET', '/api/v1/nodes?status=pending')).items;
      // --json keeps its shape (the pending logins) and adds the nodes waiting for an admin.
      if (json) {
        out(JSON.stringify({ logins: items, awaitingApproval: waiting }, null, 2));
        break;
      }
      const parts: string[] = [];
      if (items.length) parts.push(`Waiting for sign-in (approve with: weft-server nodes approve CODE):\n${table(['CODE', 'HOSTNAME', 'OS', 'FINGERPRINT', 'EXPIRES'], items.map((l) => [l.code, l.hostname, l.os ?? '-', l.fingerprint, l.expiresAt]))}`);
      if (waiting.length) parts.push(`Waiting for an admin (approve with: weft-server nodes approve ID):\n${table(['ID', 'NAME', 'USER', 'IPV4', 'JOINED'], waiting.map((n) => [n.id, n.name, n.user, n.ipv4, n.createdAt]))}`);
      show(null, () => parts.join('\n\n') || 'No device is waiting.');
      break;
    }
    case 'nodes approve': {
      const code = arg(p, 0, 'ID or CODE');
      if (/^\d+$/.test(code)) {
        // A node id: a device waiting for an admin's approval.
        const n = await call<Node>(t, 'POST', `/api/v1/nodes/${code}/approve`);
        show(n, () => `Approved: ${n.name} (${n.ipv4}) of ${n.user} is in the mesh now.`);
        break;
      }
      const user = str(p, 'user') ?? (await ownerOf(t, code, reach, io));
      const n = await call<Node>(t, 'POST', `/api/v1/logins/${encodeURIComponent(code)}/approve`, { user });
      show(n, () => `Approved: ${n.name} (${n.ipv4}) joined as ${n.user}. See it with: weft-server nodes list${reach}`);
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
        preApproved: p.flags.has('pre-approved'),
        tags: str(p, 'tags')?.split(',').filter(Boolean) ?? [],
        ...(exp !== undefined ? { expiresIn: parseDuration(exp) } : {}),
      });
      if (json) {
        show(k, () => '');
        break;
      }
      const { serverUrl } = await call<ServerInfo>(t, 'GET', '/api/v1/server');
      show(k, () => `${k.key}\n\nAuth key for ${k.user} (${k.reusable ? 'reusable' : 'single use'}${k.ephemeral ? ', ephemeral' : ''}${k.preApproved ? ', pre-approved' : ''}, expires ${k.expiresAt ?? 'never'}).\nThis is the only time the key is shown. Join a device with:\n  weft up --server ${shellWord(serverUrl)} --auth-key ${k.key}`);
      break;
    }
    case 'authkeys revoke': {
      const k = await call<AuthKey>(t, 'DELETE', `/api/v1/authkeys/${id(p, 0)}`);
      show(k, () => `Revoked auth key ${k.prefix}.`);
      break;
    }
    case 'audit list': {
      await auditList(t, p, show);
      break;
    }
    case 'audit export': {
      await auditExport(t, p, stdout);
      break;
    }
    case 'apikeys list': {
      const { items } = await call<{ items: ApiKey[] }>(t, 'GET', '/api/v1/apikeys');
      show(items, () => table(['ID', 'PREFIX', 'SCOPES', 'OWNER', 'DESCRIPTION', 'LAST USED', 'EXPIRES', 'STATE'], items.map((k) => [k.id, k.prefix, k.scopes.join(','), k.owner, k.description, ago(k.lastUsedAt), k.expiresAt ?? 'never', k.revoked ? 'revoked' : 'active'])));
      break;
    }
    case 'scim token': {
      const sub = arg(p, 0, 'create, list or revoke (weft-server scim token create)');
      if (sub === 'list') {
        const items = (await call<{ items: ApiKey[] }>(t, 'GET', '/api/v1/apikeys')).items.filter((k) => k.scopes.includes('scim'));
        show(items, () => table(['ID', 'PREFIX', 'DESCRIPTION', 'LAST USED', 'EXPIRES', 'STATE'], items.map((k) => [k.id, k.prefix, k.description, ago(k.lastUsedAt), k.expiresAt ?? 'never', k.revoked ? 'revoked' : 'active'])));
      } else if (sub === 'create') {
        const exp = str(p, 'expiration');
        const k = await call<CreatedApiKey>(t, 'POST', '/api/v1/apikeys', { scopes: ['scim'], description: str(p, 'description'), ...(exp !== undefined ? { expiresIn: parseDuration(exp) } : {}) });
        const { serverUrl } = await call<ServerInfo>(t, 'GET', '/api/v1/server');
        show(k, () => `${k.key}\n\nSCIM token ${k.prefix}. This is the only time it is shown (the server keeps only its hash).\nIn the identity provider: tenant URL ${serverUrl.replace(/\/$/, '')}/scim/v2, secret token the line above.`);
      } else if (sub === 'revoke') {
        const target = id(p, 1);
        const found = (await call<{ items: ApiKey[] }>(t, 'GET', '/api/v1/apikeys')).items.find((k) => k.id === target);
        if (found && !found.scopes.includes('scim')) throw new UsageError(`key ${target} (${found.prefix}) is an API key, not a SCIM token; revoke it with: weft-server apikeys revoke ${target}`);
        const k = await call<ApiKey>(t, 'DELETE', `/api/v1/apikeys/${target}`);
        show(k, () => `Revoked SCIM token ${k.prefix}.`);
      } else {
        throw new UsageError(`unknown command "scim token ${sub}" (create, list, revoke)`);
      }
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
    case 'admin set-password': {
      const user = str(p, 'user') ?? 'admin';
      const password = await readPassword();
      if (password.length === 0) throw new UsageError('no password given (type it at the prompt, or pipe it on stdin); nothing was changed');
      const r = await call<PasswordSet>(t, 'PUT', `/api/v1/users/${encodeURIComponent(user)}/password`, { password });
      const { serverUrl } = await call<ServerInfo>(t, 'GET', '/api/v1/server');
      show(r, () => `${r.created ? `Created user ${r.user}, an admin, with that password.` : `Set the password of ${r.user} (an admin); their earlier password sessions were signed out.`}\nSign in at ${serverUrl}/auth/login`);
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

/** A destructive command asks first on a terminal; elsewhere it needs --yes, so a script says it meant it. */
async function confirm(p: Parsed, io: Prompt, question: string): Promise<void> {
  if (p.flags.has('yes')) return;
  const answer = await io(`${question}\nType yes to go on: `);
  if (answer === undefined) throw new UsageError(`${question}\nNot on a terminal: add --yes to go on`);
  if (answer.trim().toLowerCase() !== 'yes') throw new UsageError('not confirmed; nothing was changed');
}

function operationText(verb: string, r: UserOperation): string {
  const nodes = r.nodes.length ? r.nodes.map((n) => n.name).join(', ') : 'none';
  const keys = r.authKeys.length ? r.authKeys.map((k) => k.prefix).join(', ') : 'none';
  const apiKeys = r.apiKeys.length ? r.apiKeys.map((k) => k.prefix).join(', ') : 'none';
  if (verb === 'resume') return `Resumed ${r.user.name}; devices let back: ${nodes}.`;
  const done = verb === 'suspend' ? `Suspended ${r.user.name}; devices cut off: ${nodes}` : `Offboarded ${r.user.name}; devices deleted: ${nodes}`;
  return `${done}; auth keys revoked: ${keys}; API keys revoked: ${apiKeys}; web sessions ended: ${r.webSessions}.\nAudit group ${r.groupId}.`;
}

function keyState(k: AuthKey): string {
  if (k.revoked) return 'revoked';
  if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return 'expired';
  if (!k.reusable && k.usedCount > 0) return 'used';
  return 'valid';
}
