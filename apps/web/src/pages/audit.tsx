/** The audit log: filters (actor, action prefix, target, since/until) and the id cursor ("Load more"). */
import { useState, type FormEvent } from 'react';
import type { AuditEvent, AuditPage } from '@weft/protocol';
import { api, query } from '../api/client.js';
import { ErrorText, useLoad, when } from '../components/common.js';
import { DataTable, type Column } from '../components/data-table.js';

const PAGE = 100;
const dayAgo = () => new Date(Date.now() - 86400_000).toISOString().slice(0, 16);

interface Filters {
  actor: string;
  action: string;
  target: string;
  since: string;
  until: string;
}

const COLUMNS: Column<AuditEvent>[] = [
  { header: 'Time', cell: (e) => when(e.at) },
  { header: 'Actor', cell: (e) => e.actorName ?? e.actor },
  { header: 'Origin', cell: (e) => e.origin ?? '—' },
  { header: 'Action', className: 'mono', cell: (e) => e.action },
  { header: 'Target', cell: (e) => e.target ?? '—' },
  { header: 'Address', className: 'mono', cell: (e) => e.ip ?? '—' },
];

/** datetime-local values are local time without a zone: sent as full ISO instants. */
const iso = (local: string) => (local ? new Date(local).toISOString() : undefined);

export function Audit() {
  const [draft, setDraft] = useState<Filters>({ actor: '', action: '', target: '', since: dayAgo(), until: '' });
  const [filters, setFilters] = useState(draft);
  const [more, setMore] = useState<{ items: AuditEvent[]; next: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const params = { actor: filters.actor, action: filters.action, target: filters.target, since: iso(filters.since), until: iso(filters.until), limit: PAGE };
  const path = `/api/v1/audit${query(params)}`;
  const r = useLoad(() => api<AuditPage>('GET', path), path);
  const items = [...(r.data?.items ?? []), ...(more?.items ?? [])];
  const next = more ? more.next : (r.data?.next ?? null);

  const apply = (e: FormEvent) => {
    e.preventDefault();
    setMore(null);
    setFilters(draft);
  };
  const loadMore = async () => {
    if (!next) return;
    try {
      const page = await api<AuditPage>('GET', `/api/v1/audit${query({ ...params, after: next })}`);
      setMore({ items: [...(more?.items ?? []), ...page.items], next: page.next });
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const field = (k: keyof Filters, label: string, type = 'text', placeholder = '') => (
    <label>
      {label} <input type={type} value={draft[k]} placeholder={placeholder} onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} />
    </label>
  );
  return (
    <>
      <h1>Audit log</h1>
      <form className="toolbar filters" onSubmit={apply}>
        {field('actor', 'Actor', 'text', 'apikey:weft-api-…')}
        {field('action', 'Action', 'text', 'user.')}
        {field('target', 'Target', 'text', 'user:alice')}
        {field('since', 'Since', 'datetime-local')}
        {field('until', 'Until', 'datetime-local')}
        <button type="submit">Apply</button>
      </form>
      <ErrorText error={error ?? r.error} />
      <DataTable columns={COLUMNS} rows={r.data ? items : undefined} rowKey={(e) => e.id} loading={r.loading} empty="No events match." testId="audit" />
      {next && (
        <div className="pager">
          <button type="button" onClick={() => void loadMore()}>
            Load more
          </button>
        </div>
      )}
    </>
  );
}
