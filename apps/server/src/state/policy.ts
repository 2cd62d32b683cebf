/**
 * The access policy's lifecycle: every version stored (policy_versions, append-only), the newest in
 * force, none stored = the default (every node reaches every node, reported as version 0).
 *
 * A write (set, rollback) is judged by @weft/policy before anything is written: a policy with
 * `tests` against the current users and nodes (the tests run on its compilation), one without by
 * parsing alone (compiling refuses nothing); a rejected one changes nothing and the active policy
 * stays. The judging runs outside the transaction (a large fleet's compile takes
 * a second, and on the embedded database an open transaction holds the only connection); the
 * nodes may change before the commit, as they may at any time after it, which the mapper handles
 * for every policy it is given. Writers then serialise on the policy write lock, check If-Match
 * against the newest version under it, and append version + 1: of two writers from one version,
 * exactly one commits and the other is refused with 412, never a lost update.
 *
 * The diff against the previous version is computed at write time and stored: versions never
 * change, so it never goes stale, and the history reads one row per version instead of two texts.
 */
import { evaluate, explain, ExplainRefused, parsePolicy, PolicyRejected, type Explanation as EngineExplanation, type PolicyError, type Pos } from '@weft/policy';
import type { ActivePolicy, ExplainRequest, Explanation, PolicyAuthor, PolicyCheck, PolicyHistoryItem, PolicyHistoryPage, PolicyHistoryQuery, PolicyProblem, PolicyVersion, PolicyWrite } from '@weft/protocol';
import type { PolicyVersion as DbPolicyVersion } from '@weft/db';
import { ApiError, Errors } from '../errors.js';
import { POLICY_HISTORY_PAGE } from '../tunables.js';
import { actorLabel, audit, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import { loadDirectoryGroups, loadPolicyInputs } from './policy-inputs.js';
import { unifiedDiff } from './unified-diff.js';

/** Arbitrary constant naming the policy write lock in pg_advisory_xact_lock ("poli"). */
const POLICY_WRITE_LOCK = 0x706f6c69;

const DEFAULT: ActivePolicy = { version: 0, default: true, text: null, createdAt: null, author: null, restoredFrom: null };

const versionName = (v: number) => (v === 0 ? 'policy v0 (none: the default)' : `policy v${v}`);

export class PolicyStore {
  constructor(private readonly ctx: StateContext) {}

  /** The SCIM directory's groups, as the policy sees them (policy-inputs.ts `loadDirectoryGroups`). */
  directoryGroups(): Promise<Map<string, string[]>> {
    return loadDirectoryGroups(this.ctx.prisma);
  }

  /** The policy in force; null when none is stored (every node reaches every node). */
  async active(tx?: Tx): Promise<{ version: number; text: string } | null> {
    const row = await (tx ?? this.ctx.prisma).policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true, text: true } });
    return row ?? null;
  }

  /** `GET /api/v1/policy`. */
  async current(): Promise<ActivePolicy> {
    const row = await this.ctx.prisma.policyVersion.findFirst({ orderBy: { version: 'desc' } });
    return row ? activeDto(row) : DEFAULT;
  }

  /** Judges `text` against the current users and nodes; writes nothing. */
  async check(text: string): Promise<PolicyCheck> {
    const [nodes, directoryGroups] = await Promise.all([loadPolicyInputs(this.ctx.prisma), loadDirectoryGroups(this.ctx.prisma)]);
    const tests = countTests(text, directoryGroups);
    try {
      evaluate(text, nodes, { directoryGroups });
      return { valid: true, errors: [], nodes: nodes.nodes.length, tests };
    } catch (err) {
      if (!(err instanceof PolicyRejected)) throw err;
      return { valid: false, errors: err.errors.map(problem), nodes: nodes.nodes.length, tests };
    }
  }

  /** Makes `text` the policy in force, if `ifMatch` is the version in force now. */
  async set(text: string, ifMatch: number, actor: Actor): Promise<PolicyWrite> {
    return this.write({ text, ifMatch, actor, action: 'policy.set', restoredFrom: null });
  }

  /** Makes a new version with `toVersion`'s text (judged again: the nodes may have changed since). */
  async rollback(toVersion: number, ifMatch: number, actor: Actor): Promise<PolicyWrite> {
    const old = await this.ctx.prisma.policyVersion.findUnique({ where: { version: toVersion } });
    if (!old) throw versionNotFound(toVersion, await this.newest());
    return this.write({ text: old.text, ifMatch, actor, action: 'policy.rollback', restoredFrom: toVersion });
  }

  async version(version: number): Promise<PolicyVersion> {
    const row = await this.ctx.prisma.policyVersion.findUnique({ where: { version } });
    if (!row) throw versionNotFound(version, await this.newest());
    return versionDto(row);
  }

  /** Newest first; `before` is the previous page's `next`. */
  async history(q: PolicyHistoryQuery): Promise<PolicyHistoryPage> {
    const limit = q.limit ?? POLICY_HISTORY_PAGE;
    const rows = await this.ctx.prisma.policyVersion.findMany({
      where: q.before ? { version: { lt: q.before } } : {},
      orderBy: { version: 'desc' },
      take: limit + 1,
      omit: { text: true },
    });
    const items = rows.slice(0, limit).map(historyDto);
    return { items, next: rows.length > limit ? items.at(-1)!.version : null };
  }

  /** May `src` reach `dst`, by the policy in force. */
  async explain(q: ExplainRequest): Promise<Explanation> {
    const [active, nodes, directoryGroups] = await Promise.all([this.active(), loadPolicyInputs(this.ctx.prisma), loadDirectoryGroups(this.ctx.prisma)]);
    let e: EngineExplanation;
    try {
      e = explain(active ? parsePolicy(active.text, { directoryGroups }) : null, nodes, { src: q.src, dst: q.dst, ...(q.port !== undefined ? { port: q.port } : {}), ...(q.proto !== undefined ? { proto: q.proto } : {}) });
    } catch (err) {
      if (err instanceof ExplainRefused) throw new ApiError(Errors.invalidRequest, `${err.field}: ${err.message}`, { errors: [{ path: `body.${err.field}`, message: err.message }] });
      throw err;
    }
    const lines = active ? active.text.split('\n') : [];
    const rule = (p: Pos) => ({ line: p.line, col: p.col, text: (lines[p.line - 1] ?? '').trim() });
    return {
      ...e,
      version: active?.version ?? 0,
      rule: e.rule ? rule(e.rule) : null,
      pairs: e.pairs.map((p) => ({ ...p, rules: p.rules.map(rule) })),
    };
  }

  private async newest(): Promise<number> {
    return (await this.active())?.version ?? 0;
  }

  private async write(w: { text: string; ifMatch: number; actor: Actor; action: string; restoredFrom: number | null }): Promise<PolicyWrite> {
    // Refused early when stale, before the (costly) judging; checked again under the lock.
    const seen = await this.newest();
    if (seen !== w.ifMatch) throw conflict(w.ifMatch, seen);
    const directoryGroups = await loadDirectoryGroups(this.ctx.prisma);
    if (countTests(w.text, directoryGroups)) judge(w.text, await loadPolicyInputs(this.ctx.prisma), directoryGroups);
    else judgeText(w.text, directoryGroups);
    const r = await this.ctx.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${POLICY_WRITE_LOCK})`);
      const prev = await tx.policyVersion.findFirst({ orderBy: { version: 'desc' } });
      const version = prev?.version ?? 0;
      if (version !== w.ifMatch) throw conflict(w.ifMatch, version);
      if (prev && prev.text === w.text) return { row: prev, changed: false };
      const diff = unifiedDiff(prev?.text ?? '', w.text, versionName(version), versionName(version + 1));
      const row = await tx.policyVersion.create({
        data: {
          version: version + 1,
          text: w.text,
          diff,
          author: actorLabel(w.actor),
          authorType: w.actor.type,
          authorId: w.actor.id ?? null,
          authorName: w.actor.name ?? null,
          origin: w.actor.origin,
          restoredFrom: w.restoredFrom,
        },
      });
      const { added, removed } = diffStat(diff);
      await audit(tx, w.actor, w.action, 'policy', { version: row.version, ...(w.restoredFrom !== null ? { restoredFrom: w.restoredFrom } : {}), added, removed }, {
        before: { version }, after: { version: row.version },
      });
      await this.ctx.record(tx, { kind: 'policy-changed', version: row.version });
      return { row, changed: true };
    }, TX_OPTIONS);
    if (r.changed) this.ctx.emit({ kind: 'policy-changed', version: r.row.version });
    return { ...activeDto(r.row), changed: r.changed, diff: r.changed ? r.row.diff : '' };
  }
}

/**
 * The acceptance check of a policy without `tests`: parsing it is the whole check. Compiling
 * refuses nothing (only `tests` look at the nodes), so a write need not load and compile every
 * node before it answers: at 10,000 nodes that was 2-3 s before the PUT returned, and the mapper
 * compiles the stored policy anyway (in place, for the rules that changed).
 */
function judgeText(text: string, directoryGroups: Map<string, string[]>): void {
  try {
    parsePolicy(text, { directoryGroups });
  } catch (err) {
    if (!(err instanceof PolicyRejected)) throw err;
    throw rejected(err);
  }
}

/** Throws policy_invalid with every problem located, or returns: the whole acceptance check. */
function judge(text: string, nodes: Awaited<ReturnType<typeof loadPolicyInputs>>, directoryGroups: Map<string, string[]>): void {
  try {
    evaluate(text, nodes, { directoryGroups });
  } catch (err) {
    if (!(err instanceof PolicyRejected)) throw err;
    throw rejected(err);
  }
}

function rejected(err: PolicyRejected): ApiError {
  const n = err.errors.length;
  const first = err.errors[0]!;
  return new ApiError(Errors.policyInvalid, `policy rejected (${n} problem${n === 1 ? '' : 's'}), the active policy stays in force; ${first.pos.line}:${first.pos.col}: ${first.message}${n > 1 ? ` (and ${n - 1} more in errors)` : ''}`, {
    errors: err.errors.map((e) => ({ path: 'body.text', line: e.pos.line, col: e.pos.col, message: e.message })),
  });
}

function problem(e: PolicyError): PolicyProblem {
  return { line: e.pos.line, col: e.pos.col, message: e.message };
}

/** How many `tests` entries a policy holds (0 when it does not parse). */
function countTests(text: string, directoryGroups: Map<string, string[]>): number {
  try {
    return parsePolicy(text, { directoryGroups }).tests.length;
  } catch {
    return 0;
  }
}

function conflict(sent: number, active: number): ApiError {
  return new ApiError(Errors.policyVersionConflict, `the active policy is version ${active}, the edit was made from version ${sent} (If-Match); fetch it again (weft-server policy get) and redo the edit on it`, {
    headers: { etag: etag(active) },
  });
}

function versionNotFound(version: number, newest: number): ApiError {
  const hint = version === 0
    ? 'version 0 is the built-in default (every node reaches every node), not a stored policy; to allow everything, set {"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}'
    : newest === 0 ? 'no policy has been stored yet' : `versions are 1 to ${newest}; see weft-server policy history`;
  return new ApiError(Errors.policyVersionNotFound, `no policy version ${version}: ${hint}`);
}

export function etag(version: number): string {
  return `"${version}"`;
}

function author(r: Pick<DbPolicyVersion, 'author' | 'authorType' | 'authorId' | 'authorName' | 'origin'>): PolicyAuthor {
  return { label: r.author, type: r.authorType, id: r.authorId, name: r.authorName, origin: r.origin };
}

function activeDto(r: DbPolicyVersion): ActivePolicy {
  return { version: r.version, default: false, text: r.text, createdAt: r.createdAt.toISOString(), author: author(r), restoredFrom: r.restoredFrom };
}

function versionDto(r: DbPolicyVersion): PolicyVersion {
  return { version: r.version, text: r.text, diff: r.diff, createdAt: r.createdAt.toISOString(), author: author(r), restoredFrom: r.restoredFrom };
}

function historyDto(r: Omit<DbPolicyVersion, 'text'>): PolicyHistoryItem {
  return { version: r.version, diff: r.diff, createdAt: r.createdAt.toISOString(), author: author(r), restoredFrom: r.restoredFrom, ...diffStat(r.diff) };
}

function diffStat(diff: string): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  // After the two header lines, every line starts with its kind (" ", "-", "+", "@", "\\").
  for (const line of diff.split('\n').slice(2)) {
    if (line.startsWith('+')) added++;
    else if (line.startsWith('-')) removed++;
  }
  return { added, removed };
}
