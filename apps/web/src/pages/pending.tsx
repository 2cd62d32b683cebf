/**
 * Devices waiting: for a person (`weft up` without a key: approve one as a device of a user), and,
 * when the tailnet requires it, for an admin's approval (nodes already, in no netmap until approved).
 */
import { useState } from 'react';
import type { Node, NodePage, PendingLogin, User } from '@weft/protocol';
import { api } from '../api/client.js';
import { ErrorText, useLoad, when } from '../components/common.js';
import { DataTable, type Column } from '../components/data-table.js';
import { FormDialog } from '../components/dialog.js';

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
  const approveButton = (label: string, onClick: () => void) => (
    <button type="button" className="primary" onClick={onClick} aria-label={`Approve ${label}`}>
      Approve
    </button>
  );
  const waitingColumns: Column<Node>[] = [
    {
      header: 'Name',
      cell: (n) => (
        <>
          <span className="name">{n.name}</span>
          {n.hostname !== n.name && <span className="sub">{n.hostname}</span>}
        </>
      ),
    },
    { header: 'User', cell: (n) => n.user },
    { header: 'Address', className: 'mono', cell: (n) => n.ipv4 },
    { header: 'Node key', className: 'mono', cell: (n) => <span title={n.nodeKey}>{n.nodeKey.slice(0, 20)}…</span> },
    { header: 'Joined', cell: (n) => when(n.createdAt) },
    { header: 'Actions', className: 'actions', cell: (n) => approveButton(n.name, () => void approveNode(n)) },
  ];
  const loginColumns: Column<PendingLogin>[] = [
    { header: 'Code', className: 'mono', cell: (l) => l.code },
    { header: 'Hostname', cell: (l) => l.hostname },
    { header: 'OS', cell: (l) => l.os ?? 'not reported' },
    { header: 'Key fingerprint', className: 'mono', cell: (l) => <span title={l.nodeKey}>{l.fingerprint}</span> },
    { header: 'Expires', cell: (l) => when(l.expiresAt) },
    { header: 'Actions', className: 'actions', cell: (l) => approveButton(l.hostname, () => setApproving(l)) },
  ];
  return (
    <>
      <h1>Pending devices</h1>
      <ErrorText error={r.error} />
      {r.data && r.data.waiting.length > 0 && (
        <>
          <h2>Waiting for an admin</h2>
          <p>These devices signed in or used an auth key, and wait for an admin: new devices need approval on this network.</p>
          <ErrorText error={approveError} />
          <DataTable columns={waitingColumns} rows={r.data.waiting} rowKey={(n) => n.id} loading={r.loading} empty={null} testId="awaiting-approval" />
          <h2>Waiting for sign-in</h2>
        </>
      )}
      <DataTable
        columns={loginColumns}
        rows={r.data?.logins}
        rowKey={(l) => l.code}
        loading={r.loading}
        empty={r.data && r.data.waiting.length > 0 ? 'No device is waiting for sign-in.' : <>No device is waiting. A machine that runs <code>weft up</code> without an auth key appears here.</>}
      />
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
  return (
    <FormDialog
      title={`Approve ${login.hostname}`}
      submit="Approve device"
      disabled={users.length === 0}
      onClose={onClose}
      onSubmit={async () => {
        await api('POST', `/api/v1/logins/${encodeURIComponent(login.code)}/approve`, { user });
        onDone();
      }}
    >
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
    </FormDialog>
  );
}
