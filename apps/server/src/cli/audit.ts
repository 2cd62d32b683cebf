/**
 * `weft-server audit list|export`: reading the audit log. `list` shows one page (a table, or
 * --json); `export` walks every page from --since and writes one JSON object per line to stdout,
 * waiting for the pipe to drain between pages, so a large export runs in constant memory and is
 * complete when the reader gets EOF.
 */
import { once } from 'node:events';
import type { AuditEvent, AuditPage } from '@weft/protocol';
import { parseDuration, UsageError, type Parsed } from './args.js';
import { call, type Target } from './client.js';
import { table } from './table.js';

export interface Stdout { write(s: string): boolean; once(ev: 'drain', f: () => void): unknown; writableNeedDrain?: boolean; destroyed?: boolean }

const EXPORT_PAGE = 1000;

const flag = (p: Parsed, name: string) => {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};

/** "2026-12-01T10:00:00Z" as is; "15m", "24h", "7d" as that long ago. */
export function parseTime(text: string, name: string): string {
  if (/^\d+[smhd]?$/.test(text.trim())) return new Date(Date.now() - parseDuration(text) * 1000).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(text)) throw new UsageError(`--${name} "${text}" is not a time: use ISO 8601 (2026-12-01T10:00:00Z) or a duration ago (15m, 24h, 7d)`);
  return new Date(t).toISOString();
}

function query(p: Parsed, extra: Record<string, string | undefined>): URLSearchParams {
  const q = new URLSearchParams();
  const since = flag(p, 'since');
  const until = flag(p, 'until');
  if (since) q.set('since', parseTime(since, 'since'));
  if (until) q.set('until', parseTime(until, 'until'));
  for (const name of ['action', 'actor', 'target'] as const) {
    const v = flag(p, name);
    if (v !== undefined) q.set(name, v);
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) q.set(k, v);
  return q;
}

export async function auditList(t: Target, p: Parsed, show: (value: unknown, human: () => string) => void): Promise<void> {
  const limit = flag(p, 'limit');
  if (limit !== undefined && !/^\d+$/.test(limit)) throw new UsageError(`--limit must be a number, got "${limit}"`);
  const page = await call<AuditPage>(t, 'GET', `/api/v1/audit?${query(p, { limit })}`);
  show(page, () => {
    const rows = page.items.map((e) => [e.id, e.at, e.actor, e.origin ?? '-', e.action, e.target ?? '-', summary(e)]);
    const more = page.next ? `\nMore: add --since ${page.items.at(-1)!.at} (or --json and page with after=${page.next}).` : '';
    return page.items.length ? table(['ID', 'TIME', 'ACTOR', 'ORIGIN', 'ACTION', 'TARGET', 'DETAIL'], rows) + more : 'No audit events match.';
  });
}

export async function auditExport(t: Target, p: Parsed, stdout: Stdout): Promise<void> {
  if (!flag(p, 'since')) throw new UsageError('audit export needs --since TIME (e.g. --since 30d, or --since 1970-01-01T00:00:00Z for everything)');
  let after: string | undefined;
  for (;;) {
    const page = await call<AuditPage>(t, 'GET', `/api/v1/audit?${query(p, { limit: String(EXPORT_PAGE), after })}`);
    for (const e of page.items) {
      if (stdout.destroyed) return; // the reader went away (head, a closed pipe)
      if (!stdout.write(JSON.stringify(e) + '\n')) await once(stdout as unknown as NodeJS.EventEmitter, 'drain');
    }
    if (!page.next) return;
    after = page.next;
  }
}

function summary(e: AuditEvent): string {
  const d = e.detail as Record<string, unknown> | null;
  if (!d) return '';
  const nodes = Array.isArray(d.nodes) ? `nodes: ${(d.nodes as { name?: string }[]).map((n) => n.name ?? String(n)).join(',') || '-'}` : '';
  const keys = Array.isArray(d.authKeys) ? ` authkeys: ${(d.authKeys as { prefix?: string }[]).map((k) => k.prefix).join(',') || '-'}` : '';
  return (nodes + keys).trim() || JSON.stringify(d).slice(0, 60);
}
