/** Devices waiting for a person (`weft up` without a key): approve one as a device of a user. */
import { useState, type FormEvent } from 'react';
import type { PendingLogin, User } from '@weft/protocol';
import { api } from '../api/client.js';
import { Empty, ErrorText, useLoad, when } from '../components/common.js';
import { Dialog } from '../components/dialog.js';

export function Pending() {
  const r = useLoad(async () => {
    const [logins, users] = await Promise.all([api<{ items: PendingLogin[] }>('GET', '/api/v1/logins'), api<{ items: User[] }>('GET', '/api/v1/users')]);
    return { logins: logins.items.filter((l) => !l.approved), users: users.items.filter((u) => u.status === 'active') };
  }, 'pending');
  const [approving, setApproving] = useState<PendingLogin | null>(null);
  return (
    <>
      <h1>Pending devices</h1>
      <ErrorText error={r.error} />
      {r.data && r.data.logins.length === 0 ? (
        <Empty>No device is waiting. A machine that runs <code>weft up</code> without an auth key appears here.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading}>
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Hostname</th>
                <th scope="col">Node key</th>
                <th scope="col">Expires</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {r.data?.logins.map((l) => (
                <tr key={l.code}>
                  <td className="mono">{l.code}</td>
                  <td>{l.hostname}</td>
                  <td className="mono" title={l.nodeKey}>{l.nodeKey.slice(0, 20)}…</td>
                  <td>{when(l.expiresAt)}</td>
                  <td className="actions">
                    <button type="button" className="primary" onClick={() => setApproving(l)} aria-label={`Approve ${l.hostname}`}>
                      Approve
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {approving && r.data && (
        <ApproveDialog
          login={approving}
          users={r.data.users}
          onClose={() => setApproving(null)}
          onDone={() => {
            setApproving(null);
            r.reload();
          }}
        />
      )}
    </>
  );
}

function ApproveDialog({ login, users, onClose, onDone }: { login: PendingLogin; users: User[]; onClose: () => void; onDone: () => void }) {
  const [user, setUser] = useState(users[0]?.name ?? '');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api('POST', `/api/v1/logins/${encodeURIComponent(login.code)}/approve`, { user });
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Dialog title={`Approve ${login.hostname}`} onClose={onClose}>
      <form onSubmit={submit}>
        <p>
          Code <code>{login.code}</code>; compare it with what the device printed.
        </p>
        {users.length === 0 ? (
          <p className="error">There is no active user to own the device: create one on Users first.</p>
        ) : (
          <>
            <label htmlFor="owner">Owner</label>
            <select id="owner" value={user} onChange={(e) => setUser(e.target.value)} autoFocus>
              {users.map((u) => (
                <option key={u.id} value={u.name}>
                  {u.name}
                </option>
              ))}
            </select>
          </>
        )}
        <ErrorText error={error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={users.length === 0}>
            Approve device
          </button>
        </div>
      </form>
    </Dialog>
  );
}
