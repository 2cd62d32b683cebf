/**
 * Devices waiting: for a person (`weft up` without a key: approve one as a device of a user), and,
 * when the tailnet requires it, for an admin's approval (nodes already, in no netmap until approved).
 */
import { useState, type FormEvent } from 'react';
import type { Node, NodePage, PendingLogin, User } from '@weft/protocol';
import { api } from '../api/client.js';
import { Empty, ErrorText, useLoad, when } from '../components/common.js';
import { Dialog } from '../components/dialog.js';

export function Pending() {
  const r = useLoad(async () => {
    const [logins, users, waiting] = await Promise.all([
      api<{ items: PendingLogin[] }>('GET', '/api/v1/logins'),
      api<{ items: User[] }>('GET', '/api/v1/users'),
      api<NodePage>('GET', '/api/v1/nodes?status=pending&sort=id&limit=1000'),
    ]);
    return { logins: logins.items.filter((l) => !l.approved), users: users.items.filter((u) => u.status === 'active'), waiting: waiting.items };
  }, 'pending');
  const [approving, setApproving] = useState<PendingLogin | null>(null);
  const [approveError, setApproveError] = useState<string | null>(null);
  const approveNode = async (n: Node) => {
    try {
      setApproveError(null);
      await api('POST', `/api/v1/nodes/${n.id}/approve`);
      r.reload();
    } catch (err) {
      setApproveError((err as Error).message);
    }
  };
  return (
    <>
      <h1>Pending devices</h1>
      <ErrorText error={r.error} />
      {r.data && r.data.waiting.length > 0 && (
        <>
          <h2>Waiting for an admin</h2>
          <p>These devices signed in or used an auth key, and wait for an admin: new devices need approval on this network.</p>
          <ErrorText error={approveError} />
          <div className="table-wrap">
            <table data-testid="awaiting-approval">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">User</th>
                  <th scope="col">Address</th>
                  <th scope="col">Node key</th>
                  <th scope="col">Joined</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {r.data.waiting.map((n) => (
                  <tr key={n.id}>
                    <td>
                      <span className="name">{n.name}</span>
                      {n.hostname !== n.name && <span className="sub">{n.hostname}</span>}
                    </td>
                    <td>{n.user}</td>
                    <td className="mono">{n.ipv4}</td>
                    <td className="mono" title={n.nodeKey}>{n.nodeKey.slice(0, 20)}…</td>
                    <td>{when(n.createdAt)}</td>
                    <td className="actions">
                      <button type="button" className="primary" onClick={() => void approveNode(n)} aria-label={`Approve ${n.name}`}>
                        Approve
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h2>Waiting for sign-in</h2>
        </>
      )}
      {r.data && r.data.logins.length === 0 && r.data.waiting.length > 0 ? (
        <Empty>No device is waiting for sign-in.</Empty>
      ) : r.data && r.data.logins.length === 0 ? (
        <Empty>No device is waiting. A machine that runs <code>weft up</code> without an auth key appears here.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading}>
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Hostname</th>
                <th scope="col">OS</th>
                <th scope="col">Key fingerprint</th>
                <th scope="col">Expires</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {r.data?.logins.map((l) => (
                <tr key={l.code}>
                  <td className="mono">{l.code}</td>
                  <td>{l.hostname}</td>
                  <td>{l.os ?? 'not reported'}</td>
                  <td className="mono" title={l.nodeKey}>{l.fingerprint}</td>
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
          Code <code>{login.code}</code> and key fingerprint <code>{login.fingerprint}</code>; compare them with what the device printed.
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
