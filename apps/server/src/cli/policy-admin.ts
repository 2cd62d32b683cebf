/**
 * `weft-server policy get|set FILE|check FILE|history|rollback VERSION|explain SRC DST[:PORT]`:
 * the stored policy on a running server (the admin socket, or --server URL --api-key KEY). Human
 * output by default, `--json` for scripts. Rejections print like a compiler, FILE:LINE:COL: message.
 * `set` and `rollback` send If-Match with the version in force when they start (`--if-match N`
 * to name the version the edit was made from), so an edit made meanwhile by someone else is
 * refused (412), never overwritten.
 *
 * Exit codes, as the admin CLI's: 0 ok (for explain: allowed), 1 the server refused (a rejected
 * policy, a stale version; for explain: denied), 2 usage (or a FILE that cannot be read), 3 server unreachable.
 */
import { readFile } from 'node:fs/promises';
import type { ActivePolicy, Explanation, PolicyCheck, PolicyHistoryPage, PolicyWrite, Problem } from '@weft/protocol';
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import { COMMON_BOOL, COMMON_STRING, ExitCode, str, targetOf } from './admin.js';
import { parseArgs, UsageError, type Parsed } from './args.js';
import { call, ProblemError, ServerUnreachable, type Target } from './client.js';
import { POLICY_USAGE } from './help.js';
import { table } from './table.js';

type Write = (s: string) => Promise<void>;

export const POLICY_ADMIN_VERBS = ['get', 'set', 'check', 'history', 'rollback', 'explain'] as const;

/** Flags of these verbs that take a value. */
export const POLICY_VALUE_FLAGS = [...COMMON_STRING, 'if-match', 'proto', 'limit', 'before', 'nodes'];

export async function policyAdmin(argv: string[], out: Write, err: Write): Promise<number> {
  const safeErr = (s: string) => err(terminalSafeLines(s) + '\n');
  try {
    return await run(argv, out, safeErr);
  } catch (e) {
    if (e instanceof UsageError) {
      await safeErr(`weft-server: ${e.message}\n\n${POLICY_USAGE}`);
      return ExitCode.Usage;
    }
    if (e instanceof ServerUnreachable) {
      await safeErr(`weft-server: ${e.message}`);
      return ExitCode.Unreachable;
    }
    if (e instanceof ProblemError) {
      await safeErr(problemText(e.problem, e.where));
      return ExitCode.Refused;
    }
    throw e;
  }
}

/** A refusal; a rejected policy's problems as `WHERE:LINE:COL: message`, WHERE the file (or version) sent. */
function problemText(p: Problem, where: string | undefined): string {
  const located = (p.errors ?? []).filter((f) => f.line !== undefined);
  if (p.code === 'policy_invalid' && located.length && where) {
    const n = located.length;
    return [`weft-server: ${where} rejected (${n} problem${n === 1 ? '' : 's'}); the policy in force is unchanged:`, ...located.map((f) => `  ${where}:${f.line}:${f.col}: ${f.message}`)].join('\n');
  }
  const detail = p.detail ?? p.title;
  // A field whose message the detail already says is not repeated.
  return [`weft-server: ${detail} (${p.code})`, ...(p.errors ?? []).filter((f) => !detail.includes(f.message)).map((f) => `  ${f.path}: ${f.message}`)].join('\n');
}

async function run(argv: string[], out: Write, err: Write): Promise<number> {
  const p = parseArgs(argv, { string: POLICY_VALUE_FLAGS.filter((f) => f !== 'nodes'), boolean: [...COMMON_BOOL, 'diff'] });
  const [verb, ...args] = p.positional;
  const t = targetOf(p);
  const json = p.flags.has('json');
  const show = (value: unknown, human: () => string) => out((json ? JSON.stringify(value, null, 2) : terminalSafeLines(human())) + '\n');
  const expect = (n: number, what: string) => {
    if (args.length < n) throw new UsageError(`policy ${verb} needs ${what}`);
    if (args.length > n) throw new UsageError(`unexpected argument "${args[n]}"`);
  };

  switch (verb) {
    case 'get': {
      expect(0, 'no arguments');
      const a = await call<ActivePolicy>(t, 'GET', '/api/v1/policy');
      if (json) await show(a, () => '');
      else if (a.default) await err('No policy is stored: every node may reach every node (version 0). Store one with: weft-server policy set FILE\n');
      else {
        // The text alone on stdout, so `policy get > FILE` gives a file to edit and `policy set`.
        await out(terminalSafeLines(a.text!) + (a.text!.endsWith('\n') ? '' : '\n'));
        await err(`policy version ${a.version}, written ${a.createdAt} by ${a.author!.label}${a.restoredFrom ? ` (the text of version ${a.restoredFrom})` : ''}\n`);
      }
      return ExitCode.Ok;
    }
    case 'check': {
      expect(1, 'FILE');
      const file = args[0]!;
      const c = await call<PolicyCheck>(t, 'POST', '/api/v1/policy/check', { text: await readText(file) });
      if (json) await show(c, () => '');
      else if (c.valid) await out(terminalSafeLines(`${file}: valid against the ${c.nodes} node${c.nodes === 1 ? '' : 's'} on the server${c.tests ? `; its ${c.tests} test${c.tests === 1 ? '' : 's'} pass` : ''}.`) + '\n');
      else await err(terminalSafeLines([`${file}: rejected (${c.errors.length} problem${c.errors.length === 1 ? '' : 's'}):`, ...c.errors.map((e) => `  ${file}:${e.line}:${e.col}: ${e.message}`)].join('\n')) + '\n');
      return c.valid ? ExitCode.Ok : ExitCode.Refused;
    }
    case 'set': {
      expect(1, 'FILE');
      const file = args[0]!;
      const text = await readText(file);
      const ifMatch = await ifMatchOf(p, t);
      const w = await write(t, 'PUT', '/api/v1/policy', { text }, ifMatch, file);
      await show(w, () => w.changed
        ? `Policy version ${w.version} is in force (from ${file}; it replaced version ${ifMatch}).\n${w.diff.trimEnd()}`
        : `${file} is the policy in force already (version ${w.version}); nothing changed.`);
      return ExitCode.Ok;
    }
    case 'rollback': {
      expect(1, 'VERSION');
      const version = positiveInt(args[0]!, 'VERSION');
      const ifMatch = await ifMatchOf(p, t);
      const w = await write(t, 'POST', '/api/v1/policy/rollback', { version }, ifMatch, `policy v${version}`);
      await show(w, () => w.changed
        ? `Policy version ${w.version} is in force: the text of version ${version} (it replaced version ${ifMatch}).\n${w.diff.trimEnd()}`
        : `Version ${version}'s text is the policy in force already (version ${w.version}); nothing changed.`);
      return ExitCode.Ok;
    }
    case 'history': {
      expect(0, 'no arguments');
      const q = new URLSearchParams();
      const limit = str(p, 'limit');
      const before = str(p, 'before');
      if (limit !== undefined) q.set('limit', String(positiveInt(limit, '--limit')));
      if (before !== undefined) q.set('before', String(positiveInt(before, '--before')));
      const page = await call<PolicyHistoryPage>(t, 'GET', `/api/v1/policy/history${q.size ? `?${q}` : ''}`);
      await show(page, () => {
        if (!page.items.length) return 'No policy versions stored: every node may reach every node (version 0).';
        const rows = table(['VERSION', 'TIME', 'AUTHOR', 'ORIGIN', 'CHANGE', 'NOTE'], page.items.map((i) => [i.version, i.createdAt, i.author.label, i.author.origin, `+${i.added} -${i.removed}`, i.restoredFrom ? `rollback to v${i.restoredFrom}` : '']));
        const diffs = p.flags.has('diff') ? '\n\n' + page.items.map((i) => i.diff).join('\n') : '';
        const more = page.next !== null ? `\nOlder versions: weft-server policy history --before ${page.next}` : '';
        return rows + diffs + more;
      });
      return ExitCode.Ok;
    }
    case 'explain': {
      expect(2, 'SRC and DST[:PORT]');
      const { dst, port } = splitPort(args[1]!);
      const proto = str(p, 'proto');
      const e = await call<Explanation>(t, 'POST', '/api/v1/policy/explain', { src: args[0], dst, ...(port !== undefined ? { port } : {}), ...(proto !== undefined ? { proto } : {}) });
      await show(e, () => explanationText(e, proto ?? 'tcp'));
      return e.allowed ? ExitCode.Ok : ExitCode.Refused;
    }
    default:
      throw new UsageError(verb ? `unknown policy command "${verb}"` : 'policy needs a command');
  }
}

/** PUT or rollback with If-Match; a rejection names `where` (the file, or the version restored). */
async function write(t: Target, method: string, path: string, body: unknown, ifMatch: number, where: string): Promise<PolicyWrite> {
  try {
    return await call<PolicyWrite>(t, method, path, body, { 'if-match': `"${ifMatch}"` });
  } catch (e) {
    if (e instanceof ProblemError) throw new ProblemError(e.problem, where);
    throw e;
  }
}

/** --if-match N, else the version in force now. */
async function ifMatchOf(p: Parsed, t: Target): Promise<number> {
  const given = str(p, 'if-match');
  if (given !== undefined) {
    if (!/^\d{1,10}$/.test(given)) throw new UsageError(`--if-match must be a version number, got "${given}"`);
    return Number(given);
  }
  return (await call<ActivePolicy>(t, 'GET', '/api/v1/policy')).version;
}

/** A file named on the command line; unreadable is a usage error (exit 2). */
export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function positiveInt(text: string, what: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) < 1 || Number(text) > 2 ** 31 - 1) throw new UsageError(`${what} must be a number from 1, got "${text}"`);
  return Number(text);
}

/**
 * DST[:PORT]: the port follows the last colon when it is digits. An IPv6 address takes no port
 * unless bracketed ([fd7a::1]:22); `tag:web` has none, `tag:web:22` has 22.
 */
export function splitPort(text: string): { dst: string; port?: number } {
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracket) return { dst: bracket[1]!, ...(bracket[2] !== undefined ? { port: portOf(bracket[2]) } : {}) };
  if (/^[0-9a-fA-F:.]+$/.test(text) && (text.match(/:/g) ?? []).length >= 2) return { dst: text };
  const m = /^(.+):(\d{1,5})$/.exec(text);
  return m ? { dst: m[1]!, port: portOf(m[2]!) } : { dst: text };
}

function portOf(text: string): number {
  const n = Number(text);
  if (n > 65535) throw new UsageError(`port ${text} is not 0-65535`);
  return n;
}

function explanationText(e: Explanation, proto: string): string {
  const who = (x: Explanation['src']) => (x.kind === 'ip' ? x.name : `${x.kind} ${x.name} (${x.addresses.join(', ')})`);
  const what = `${proto}${e.port !== null ? ` port ${e.port}` : ''} from ${who(e.src)} to ${who(e.dst)}`;
  const lines: string[] = [];
  if (e.default) lines.push(`allowed: ${what}: no policy is stored, so every node may reach every node (the default).`);
  else if (e.allowed) lines.push(`allowed: ${what}, by the rule at line ${e.rule!.line}: ${e.rule!.text}`);
  else lines.push(`denied: ${what}: ${e.pairs.some((p) => p.allowed) ? 'only some of the address pairs are allowed' : 'no rule allows it'}.`);
  // Address by address only where it says more: results that differ, ports, or a note.
  const mixed = e.pairs.some((p) => p.allowed !== e.pairs[0]!.allowed);
  if (mixed || e.port === null || e.pairs.some((p) => p.note)) {
    for (const p of e.pairs) {
      const rule = p.rules[0] ? ` (line ${p.rules[0].line}${p.rules.length > 1 ? `; also ${p.rules.slice(1).map((r) => r.line).join(', ')}` : ''})` : '';
      const ports = p.ports ? ` ports ${p.ports.length ? p.ports.join(', ') : 'none'}` : '';
      lines.push(`  ${p.src} -> ${p.dst}: ${p.allowed ? 'allowed' : 'denied'}${ports}${rule}${p.note ? ` (${p.note})` : ''}`);
    }
  }
  return lines.join('\n');
}
