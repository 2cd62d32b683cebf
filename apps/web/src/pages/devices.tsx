/**
 * Devices at fleet scale: the server searches, filters, sorts and pages (GET /api/v1/nodes with
 * q/status/sort/order/limit/offset); one request per view, again after each action.
 */
import { useEffect, useState, type FormEvent } from 'react';
import type { Node, NodePage, NodeSort } from '@weft/protocol';
import { api, query } from '../api/client.js';
import { ago, Empty, ErrorText, Tags, useLoad } from '../components/common.js';
import { ConfirmDialog, Dialog, FormDialog } from '../components/dialog.js';
import { badTag, parseTags } from '../components/tag-input.js';

export const PAGE_SIZE = 50;

type Action = { kind: 'rename' | 'tags' | 'expire' | 'delete' | 'expiry'; node: Node } | null;

const COLUMNS: { label: string; sort?: NodeSort }[] = [
  { label: 'Name', sort: 'name' },
  { label: 'User', sort: 'user' },
  { label: 'Address', sort: 'ipv4' },
  { label: 'Tags' },
  { label: 'Status', sort: 'online' },
  { label: 'Last seen', sort: 'lastSeen' },
  { label: 'Key expires', sort: 'expiresAt' },
  { label: 'Actions' },
];

export function Devices() {
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [sort, setSort] = useState<NodeSort>('name');
  const [order, setOrder] = useState<'asc' | 'desc'>('asc');
  const [offset, setOffset] = useState(0);
  const [action, setAction] = useState<Action>(null);

  // Typing searches after a short pause, not per keystroke.
  useEffect(() => {
    const t = setTimeout(() => {
      setQ(search.trim());
      setOffset(0);
    }, 250);
    return () => clearTimeout(t);
  }, [search]);

  const path = `/api/v1/nodes${query({ q, status, sort, order, limit: PAGE_SIZE, offset })}`;
  const r = useLoad(() => api<NodePage>('GET', path), path);
  const page = r.data;

  const sortBy = (s: NodeSort) => {
    if (s === sort) setOrder(order === 'asc' ? 'desc' : 'asc');
    else {
      setSort(s);
      setOrder(s === 'lastSeen' || s === 'online' ? 'desc' : 'asc');
    }
    setOffset(0);
  };
  const done = () => {
    setAction(null);
    r.reload();
  };

  return (
    <>
      <h1>Devices</h1>
      <div className="toolbar" role="search">
        <label>
          Search <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="name, user, address or tag" />
        </label>
        <label>
          Status{' '}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setOffset(0);
            }}
          >
            <option value="">all</option>
            <option value="online">online</option>
            <option value="offline">offline</option>
            <option value="expired">expired</option>
          </select>
        </label>
        <span className="count" aria-live="polite">
          {page ? `${page.total} device${page.total === 1 ? '' : 's'}` : ''}
        </span>
      </div>
      <ErrorText error={r.error} />
      {page && page.total === 0 ? (
        <Empty>{q || status ? 'No device matches.' : 'No devices yet. Approve one on Pending devices, or join one with an auth key.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading} data-testid="devices">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c.label} scope="col" aria-sort={c.sort === sort ? (order === 'asc' ? 'ascending' : 'descending') : undefined}>
                    {c.sort ? (
                      <button type="button" className="sort" onClick={() => sortBy(c.sort!)}>
                        {c.label}
                        {c.sort === sort ? (order === 'asc' ? ' ▲' : ' ▼') : ''}
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {page?.items.map((n) => (
                <tr key={n.id}>
                  <td>
                    <span className="name">{n.name}</span>
                    {n.hostname !== n.name && <span className="sub">{n.hostname}</span>}
                  </td>
                  <td>{n.user}</td>
                  <td className="mono">{n.ipv4}</td>
                  <td>
                    <Tags tags={n.tags} />
                  </td>
                  <td>
                    <span className={`status ${n.online ? 'online' : n.expired ? 'expired' : 'offline'}`}>{n.online ? 'online' : n.expired ? 'expired' : 'offline'}</span>
                  </td>
                  <td>{n.online ? 'now' : ago(n.lastSeen)}</td>
                  <td>{n.expiresAt === null ? 'never' : n.expired ? 'expired' : new Date(n.expiresAt).toISOString().slice(0, 10)}</td>
                  <td className="actions">
                    <button type="button" onClick={() => setAction({ kind: 'expiry', node: n })} aria-label={`Key expiry of ${n.name}`}>
                      Key expiry
                    </button>
                    <button type="button" onClick={() => setAction({ kind: 'rename', node: n })} aria-label={`Rename ${n.name}`}>
                      Rename
                    </button>
                    <button type="button" onClick={() => setAction({ kind: 'tags', node: n })} aria-label={`Tags of ${n.name}`}>
                      Tags
                    </button>
                    <button type="button" onClick={() => setAction({ kind: 'expire', node: n })} aria-label={`Expire ${n.name}`} disabled={n.expired}>
                      Expire
                    </button>
                    <button type="button" className="danger" onClick={() => setAction({ kind: 'delete', node: n })} aria-label={`Delete ${n.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page && page.total > PAGE_SIZE && (
        <div className="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            Previous
          </button>
          <span>
            {offset + 1}–{offset + page.items.length} of {page.total}
          </span>
          <button type="button" disabled={page.next === null} onClick={() => page.next !== null && setOffset(page.next)}>
            Next
          </button>
        </div>
      )}
      {action?.kind === 'expiry' && <KeyExpiryDialog node={action.node} onClose={() => setAction(null)} onDone={done} />}
      {action?.kind === 'rename' && <RenameDialog node={action.node} onClose={() => setAction(null)} onDone={done} />}
      {action?.kind === 'tags' && <TagsDialog node={action.node} onClose={() => setAction(null)} onDone={done} />}
      {action?.kind === 'expire' && (
        <ConfirmDialog
          title={`Expire ${action.node.name}?`}
          body={<p>Its key stops working now: the device is cut off until it signs in again with <code>weft login</code>.</p>}
          confirm="Expire key"
          danger
          onConfirm={async () => void (await api('POST', `/api/v1/nodes/${action.node.id}/expire`))}
          onClose={() => setAction(null)}
          onDone={done}
        />
      )}
      {action?.kind === 'delete' && (
        <ConfirmDialog
          title={`Delete ${action.node.name}?`}
          body={<p>Every peer drops it at once, and it cannot reconnect. Joining again makes a new device.</p>}
          confirm="Delete device"
          danger
          onConfirm={async () => void (await api('DELETE', `/api/v1/nodes/${action.node.id}`))}
          onClose={() => setAction(null)}
          onDone={done}
        />
      )}
    </>
  );
}

function RenameDialog({ node, onClose, onDone }: { node: Node; onClose: () => void; onDone: () => void }) {
  const [name, setName] = useState(node.name);
  return (
    <FormDialog
      title={`Rename ${node.name}`}
      submit="Rename"
      onClose={onClose}
      onSubmit={async () => {
        await api('POST', `/api/v1/nodes/${node.id}/rename`, { name });
        onDone();
      }}
    >
      <label htmlFor="rename">New name</label>
      <input id="rename" value={name} onChange={(e) => setName(e.target.value)} required maxLength={63} autoFocus />
    </FormDialog>
  );
}

/**
 * Replaces a device's tags (PUT /api/v1/nodes/:id/tags). The server judges them against the
 * stored policy's tagOwners; its refusal (an undefined tag, one the admin does not own) is shown
 * here, naming the tag, and nothing changed.
 */
function TagsDialog({ node, onClose, onDone }: { node: Node; onClose: () => void; onDone: () => void }) {
  const [text, setText] = useState(node.tags.join(', '));
  return (
    <FormDialog
      title={`Tags of ${node.name}`}
      submit="Save tags"
      onClose={onClose}
      onSubmit={async () => {
        const tags = parseTags(text);
        const bad = badTag(tags);
        if (bad) throw new Error(bad);
        await api('PUT', `/api/v1/nodes/${node.id}/tags`, { tags });
        onDone();
      }}
    >
      <label htmlFor="node-tags">Tags (comma or space separated; empty for none)</label>
      <input id="node-tags" value={text} onChange={(e) => setText(e.target.value)} placeholder="tag:web, tag:db" autoFocus />
    </FormDialog>
  );
}

/**
 * Per-device key expiry: extend by some days (an expired device is back at once), turn expiry
 * back on, or disable it. Disabling is asked twice: a key that never expires stays valid on a lost
 * or stolen device until someone deletes it.
 */
function KeyExpiryDialog({ node, onClose, onDone }: { node: Node; onClose: () => void; onDone: () => void }) {
  const [days, setDays] = useState('30');
  const [confirmDisable, setConfirmDisable] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const change = async (body: { extendDays: number } | { disabled: boolean }) => {
    try {
      await api('POST', `/api/v1/nodes/${node.id}/expiry`, body);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await change({ extendDays: Number(days) });
  };
  const now = node.expiresAt === null ? 'never expires (expiry disabled)' : node.expired ? `expired ${node.expiresAt}` : `expires ${node.expiresAt}`;
  return (
    <Dialog title={`Key expiry of ${node.name}`} onClose={onClose}>
      <p>Its key {now}.</p>
      <form onSubmit={submit}>
        <label htmlFor="extend-days">Extend by days (1-180)</label>
        <input id="extend-days" type="number" min={1} max={180} step={1} value={days} onChange={(e) => setDays(e.target.value)} required autoFocus />
        <ErrorText error={error} />
        {confirmDisable && (
          <p role="alert">
            Disable key expiry for {node.name}? Its key then never expires: a lost device stays in the mesh until it is deleted.
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          {node.expiresAt === null ? (
            <button type="button" onClick={() => void change({ disabled: false })}>
              Enable expiry
            </button>
          ) : confirmDisable ? (
            <button type="button" className="danger" onClick={() => void change({ disabled: true })}>
              Yes, disable expiry
            </button>
          ) : (
            <button type="button" className="danger" onClick={() => setConfirmDisable(true)}>
              Disable expiry
            </button>
          )}
          <button type="submit" className="primary">
            Extend
          </button>
        </div>
      </form>
    </Dialog>
  );
}
