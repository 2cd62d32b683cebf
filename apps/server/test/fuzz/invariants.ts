/**
 * What the fuzz tier holds the server to, and how a broken promise is reported: every failure
 * names the seed, the route or message, and the exact input, so it can be replayed.
 */
import type { PrismaClient } from '@weft/db';
import { Errors } from '../../src/errors.js';

/**
 * Columns that record telemetry (when a key was last used, when a node was last seen, a replica's
 * heartbeat and the presence counter it bumps), not state.
 */
const TELEMETRY = new Set(['api_keys.last_used_at', 'nodes.online', 'nodes.last_seen', 'nodes.presence_seq', 'replicas.heartbeat_at']);
/**
 * Tables that are presence or telemetry, not state: a socket the server closes for a bad message
 * ends its session row, as any disconnect does (the node's own rows must not change); link
 * reports (`node_links`) are written in batches a few seconds after a valid `links` message, so
 * a row may land while a later message is judged.
 */
const TELEMETRY_TABLES = new Set(['node_sessions', 'node_links']);

const snapshotQueries = new WeakMap<PrismaClient, string>();

/**
 * Every row of every table (but migrations and telemetry), one JSON text per row, in one query:
 * equal snapshots = nothing written.
 */
export async function dbSnapshot(prisma: PrismaClient): Promise<Record<string, string[]>> {
  let sql = snapshotQueries.get(prisma);
  if (!sql) {
    const cols = await prisma.$queryRawUnsafe<{ table_name: string; column_name: string }[]>(
      "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> '_prisma_migrations' ORDER BY c.table_name, c.ordinal_position",
    );
    const byTable = new Map<string, string[]>();
    for (const c of cols) {
      if (TELEMETRY_TABLES.has(c.table_name)) continue;
      const list = byTable.get(c.table_name) ?? [];
      list.push(c.column_name);
      byTable.set(c.table_name, list);
    }
    sql = [...byTable]
      .map(([t, all]) => {
        const kept = all.filter((c) => !TELEMETRY.has(`${t}.${c}`)).map((c) => `'${c}', "${c}"`);
        return `SELECT '${t}' AS t, coalesce(json_agg(json_build_object(${kept.join(', ')}) ORDER BY "${all[0]}")::text, '[]') AS rows FROM "${t}"`;
      })
      .join(' UNION ALL ');
    snapshotQueries.set(prisma, sql);
  }
  const out: Record<string, string[]> = {};
  for (const { t, rows } of await prisma.$queryRawUnsafe<{ t: string; rows: string }[]>(sql)) {
    out[t] = (JSON.parse(rows) as unknown[]).map((r) => JSON.stringify(r));
  }
  return out;
}

/** What changed between two snapshots, in a line per table; empty = nothing. */
export function snapshotDiff(before: Record<string, string[]>, after: Record<string, string[]>): string {
  const lines: string[] = [];
  for (const t of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = new Set(before[t] ?? []);
    const a = new Set(after[t] ?? []);
    const added = [...a].filter((r) => !b.has(r));
    const removed = [...b].filter((r) => !a.has(r));
    if (added.length || removed.length) lines.push(`${t}: +${added.length} -${removed.length}${added.length ? ' e.g. +' + added[0]!.slice(0, 300) : ' e.g. -' + removed[0]!.slice(0, 300)}`);
  }
  return lines.join('; ');
}

const CATALOGUE = new Map(Object.values(Errors).map((d) => [d.code, d]));

/** Ways a 4xx reply breaks the problem+json contract, each as { rule, detail }; empty = it keeps it. */
export function problemViolations(status: number, contentType: string | null, body: unknown): { rule: string; detail: string }[] {
  const out: { rule: string; detail: string }[] = [];
  if (!contentType?.startsWith('application/problem+json')) out.push({ rule: 'content-type problem+json', detail: `content-type is ${contentType}` });
  if (typeof body !== 'object' || body === null) return [...out, { rule: 'a JSON object', detail: 'body is not a JSON object' }];
  const p = body as Record<string, unknown>;
  const def = CATALOGUE.get(p.code as string);
  if (!def) out.push({ rule: 'code from the catalogue', detail: `code ${JSON.stringify(p.code)} is not in apps/server/src/errors.ts` });
  else {
    if (def.status !== status) out.push({ rule: 'status as catalogued', detail: `code ${def.code} is catalogued as ${def.status}, sent with ${status}` });
    if (p.retryable !== def.retryable) out.push({ rule: 'retryable as catalogued', detail: `retryable ${String(p.retryable)}, catalogue says ${def.retryable} for ${def.code}` });
  }
  if (p.status !== status) out.push({ rule: 'body status = HTTP status', detail: `body status ${String(p.status)}, HTTP ${status}` });
  if (typeof p.title !== 'string') out.push({ rule: 'has a title', detail: 'no title' });
  if (typeof p.detail === 'string' && /[\r\n]/.test(p.detail)) out.push({ rule: 'detail is one line', detail: `detail spans several lines: ${JSON.stringify(p.detail.slice(0, 200))}` });
  return out;
}

export interface Failure {
  /** Which promise was broken. */
  invariant: string;
  /** Route template ("POST /api/v1/users") or message type. */
  target: string;
  /** Case number within this seed's run. */
  index: number;
  /** The exact input, ready to replay. */
  input: string;
  /** What came back. */
  observed: string;
}

/** Failures grouped by invariant and target: the first example of each and how often it recurred. */
export class FailureLog {
  private readonly groups = new Map<string, { first: Failure; count: number }>();
  constructor(
    readonly suite: string,
    readonly seed: number,
    readonly runs: number,
    /** Command that replays this run. */
    readonly replay: string,
  ) {}

  add(f: Failure): void {
    const key = `${f.invariant} | ${f.target}`;
    const g = this.groups.get(key);
    if (g) g.count++;
    else this.groups.set(key, { first: f, count: 1 });
  }

  get size(): number {
    return this.groups.size;
  }

  report(): string {
    if (!this.groups.size) return '';
    const lines = [`${this.suite}: ${this.groups.size} broken invariant(s) with WEFT_FUZZ_SEED=${this.seed} (${this.runs} cases); replay: ${this.replay}`];
    for (const { first: f, count } of this.groups.values()) {
      lines.push('', `- ${f.invariant}: ${f.target} (${count}x, first at case ${f.index})`, `  input:    ${f.input}`, `  observed: ${f.observed}`);
    }
    return lines.join('\n');
  }
}

/** JSON.stringify that shows every character, control characters escaped, and cuts long text. */
export function show(value: unknown, max = 600): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}
