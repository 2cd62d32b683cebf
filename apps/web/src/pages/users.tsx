/**
 * Users and their lifecycle: suspend (reversible), resume, offboard (final), each confirmed with
 * everything the server does (state/users.ts): devices cut off, auth keys and owned API keys
 * revoked, web sessions ended.
 */
import { useState, type FormEvent } from 'react';
import type { User, UserOperation } from '@weft/protocol';
import { api } from '../api/client.js';
import { ErrorText, useList, when } from '../components/common.js';
import { DataTable, type Column } from '../components/data-table.js';
import { useConfirmAction } from '../components/dialog.js';

type Op = { op: 'suspend' | 'resume' | 'offboard'; user: User };

const TEXT = {
  suspend: {
    title: 'Suspend',
    body: 'Every device of the user is cut off at once (out of every peer list, disconnected) and refused until you resume them. Their auth keys and the API keys they created are revoked, and their web sessions end. Resume brings the devices back; the revoked keys stay revoked and they sign in again.',
    danger: true,
  },
  resume: { title: 'Resume', body: 'Their devices may reconnect and peers see them again. Revoked auth keys stay revoked.', danger: false },
  offboard: {
    title: 'Offboard',
    body: 'Final, cannot be undone: every device of the user is deleted (peers drop it, it is disconnected), their auth keys and the API keys they created are revoked, and their web sessions end. The user stays listed as offboarded for the audit history; the name cannot be reused.',
    danger: true,
  },
} as const;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export function Users() {
  const r = useList<User>('/api/v1/users');
  const confirm = useConfirmAction<Op>(r.reload);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await api('POST', '/api/v1/users', { name: name.trim() });
      setName('');
      r.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const columns: Column<User>[] = [
    { header: 'Name', cell: (u) => u.name },
    { header: 'Email', cell: (u) => u.email ?? '—' },
    { header: 'Status', cell: (u) => <span className={`status ${u.status}`}>{u.status}</span> },
    { header: 'Created', cell: (u) => when(u.createdAt) },
    {
      header: 'Actions',
      className: 'actions',
      cell: (u) => (
        <>
          {u.status === 'active' && (
            <button type="button" onClick={() => confirm.ask({ op: 'suspend', user: u })} aria-label={`Suspend ${u.name}`}>
              Suspend
            </button>
          )}
          {u.status === 'suspended' && (
            <button type="button" onClick={() => confirm.ask({ op: 'resume', user: u })} aria-label={`Resume ${u.name}`}>
              Resume
            </button>
          )}
          {u.status !== 'offboarded' && (
            <button type="button" className="danger" onClick={() => confirm.ask({ op: 'offboard', user: u })} aria-label={`Offboard ${u.name}`}>
              Offboard
            </button>
          )}
        </>
      ),
    },
  ];
  return (
    <>
      <h1>Users</h1>
      <form className="toolbar" onSubmit={create}>
        <label>
          New user <input value={name} onChange={(e) => setName(e.target.value)} required placeholder="alice" />
        </label>
        <button type="submit">Create user</button>
      </form>
      <ErrorText error={error ?? r.error} />
      {result && <p role="status" className="notice">{result}</p>}
      <DataTable columns={columns} rows={r.data ?? undefined} rowKey={(u) => u.id} loading={r.loading} empty="No users yet. Create one above; devices belong to users." />
      {confirm.dialog(({ op, user }) => ({
        title: `${TEXT[op].title} ${user.name}?`,
        body: <p>{TEXT[op].body}</p>,
        confirm: `${TEXT[op].title} ${user.name}`,
        danger: TEXT[op].danger,
        onConfirm: async () => {
          const res = await api<UserOperation>('POST', `/api/v1/users/${encodeURIComponent(user.name)}/${op}`);
          setResult(op === 'resume' ? `Resume: ${res.user.name} (${plural(res.nodes.length, 'device')} back).` : `${TEXT[op].title}: ${res.user.name} (${plural(res.nodes.length, 'device')}, ${plural(res.authKeys.length, 'auth key')} and ${plural(res.apiKeys.length, 'API key')} revoked, ${plural(res.webSessions, 'web session')} ended).`);
        },
      }))}
    </>
  );
}
