/** Users and their lifecycle: suspend (reversible), resume, offboard (final), each confirmed. */
import { useState, type FormEvent } from 'react';
import type { User, UserOperation } from '@weft/protocol';
import { api } from '../api/client.js';
import { Empty, ErrorText, useLoad, when } from '../components/common.js';
import { ConfirmDialog } from '../components/dialog.js';

type Op = { op: 'suspend' | 'resume' | 'offboard'; user: User } | null;

const TEXT = {
  suspend: { title: 'Suspend', body: 'Every device of the user is cut off at once and refused until you resume them; their auth keys are revoked.', danger: true },
  resume: { title: 'Resume', body: 'Their devices may reconnect and peers see them again. Revoked auth keys stay revoked.', danger: false },
  offboard: { title: 'Offboard', body: 'Final: every device of the user is deleted and their auth keys revoked. The user stays listed as offboarded for the audit history; the name cannot be reused.', danger: true },
} as const;

export function Users() {
  const r = useLoad(() => api<{ items: User[] }>('GET', '/api/v1/users'), 'users');
  const [op, setOp] = useState<Op>(null);
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
      {r.data && r.data.items.length === 0 ? (
        <Empty>No users yet. Create one above; devices belong to users.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading}>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {r.data?.items.map((u) => (
                <tr key={u.id}>
                  <td>{u.name}</td>
                  <td>{u.email ?? '—'}</td>
                  <td>
                    <span className={`status ${u.status}`}>{u.status}</span>
                  </td>
                  <td>{when(u.createdAt)}</td>
                  <td className="actions">
                    {u.status === 'active' && (
                      <button type="button" onClick={() => setOp({ op: 'suspend', user: u })} aria-label={`Suspend ${u.name}`}>
                        Suspend
                      </button>
                    )}
                    {u.status === 'suspended' && (
                      <button type="button" onClick={() => setOp({ op: 'resume', user: u })} aria-label={`Resume ${u.name}`}>
                        Resume
                      </button>
                    )}
                    {u.status !== 'offboarded' && (
                      <button type="button" className="danger" onClick={() => setOp({ op: 'offboard', user: u })} aria-label={`Offboard ${u.name}`}>
                        Offboard
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {op && (
        <ConfirmDialog
          title={`${TEXT[op.op].title} ${op.user.name}?`}
          body={<p>{TEXT[op.op].body}</p>}
          confirm={`${TEXT[op.op].title} ${op.user.name}`}
          danger={TEXT[op.op].danger}
          onConfirm={async () => {
            const res = await api<UserOperation>('POST', `/api/v1/users/${encodeURIComponent(op.user.name)}/${op.op}`);
            setResult(`${TEXT[op.op].title}: ${res.user.name} (${res.nodes.length} device${res.nodes.length === 1 ? '' : 's'}, ${res.authKeys.length} auth key${res.authKeys.length === 1 ? '' : 's'} revoked).`);
          }}
          onClose={() => setOp(null)}
          onDone={() => {
            setOp(null);
            r.reload();
          }}
        />
      )}
    </>
  );
}
