/** The audit log: filters (actor, action prefix, target, since/until) and the id cursor ("Load more"). */
import { useState, type FormEvent } from 'react';
import type { AuditEvent, AuditPage } from '@weft/protocol';
import { api, query } from '../api/client.js';
import { Empty, ErrorText, useLoad, when } from '../components/common.js';

const PAGE = 100;
const dayAgo = () => new Date(Date.now() - 86400_000).toISOString().slice(0, 16);

interface Filters {
  actor: string;
  action: string;
  target: string;
  since: string;
  until: string;
}

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
      {r.data && items.length === 0 ? (
        <Empty>No events match.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading} data-testid="audit">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Origin</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Address</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td>{when(e.at)}</td>
                  <td>{e.actorName ?? e.actor}</td>
                  <td>{e.origin ?? '—'}</td>
                  <td className="mono">{e.action}</td>
                  <td>{e.target ?? '—'}</td>
                  <td className="mono">{e.ip ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
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
