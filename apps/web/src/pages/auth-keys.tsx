/** Auth keys (`weft up --auth-key`): create (the key is shown once), list by prefix, revoke. */
import { useState } from 'react';
import type { AuthKey, CreatedAuthKey, User } from '@weft/protocol';
import { api } from '../api/client.js';
import { badTag, parseTags } from '../components/tag-input.js';
import { ErrorText, Tags, useLoad, when } from '../components/common.js';
import { DataTable, type Column } from '../components/data-table.js';
import { FormDialog, SecretDialog, useConfirmAction } from '../components/dialog.js';

const EXPIRY = [
  { label: '1 hour', s: 3600 },
  { label: '1 day', s: 86400 },
  { label: '30 days', s: 30 * 86400 },
  { label: 'never', s: 0 },
];

export function AuthKeys() {
  const r = useLoad(async () => {
    const [keys, users] = await Promise.all([api<{ items: AuthKey[] }>('GET', '/api/v1/authkeys'), api<{ items: User[] }>('GET', '/api/v1/users')]);
    return { keys: keys.items, users: users.items.filter((u) => u.status === 'active') };
  }, 'authkeys');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedAuthKey | null>(null);
  const revoke = useConfirmAction<AuthKey>(r.reload);
  const columns: Column<AuthKey>[] = [
    { header: 'Prefix', className: 'mono', cell: (k) => k.prefix },
    { header: 'User', cell: (k) => k.user },
    { header: 'Options', cell: (k) => [k.reusable && 'reusable', k.ephemeral && 'ephemeral'].filter(Boolean).join(', ') || 'one use' },
    { header: 'Tags', cell: (k) => <Tags tags={k.tags} /> },
    { header: 'Used', cell: (k) => k.usedCount },
    { header: 'Expires', cell: (k) => (k.revoked ? 'revoked' : when(k.expiresAt)) },
    {
      header: 'Actions',
      className: 'actions',
      cell: (k) =>
        !k.revoked && (
          <button type="button" className="danger" onClick={() => revoke.ask(k)} aria-label={`Revoke ${k.prefix}`}>
            Revoke
          </button>
        ),
    },
  ];
  return (
    <>
      <h1>Auth keys</h1>
      <div className="toolbar">
        <button type="button" className="primary" onClick={() => setCreating(true)} disabled={!r.data}>
          Create auth key
        </button>
      </div>
      <ErrorText error={r.error} />
      <DataTable columns={columns} rows={r.data?.keys} rowKey={(k) => k.id} loading={r.loading} empty="No auth keys. Create one to join servers and CI machines with no person in the loop." />
      {creating && r.data && (
        <CreateDialog
          users={r.data.users}
          onClose={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            r.reload();
          }}
        />
      )}
      {created && (
        <SecretDialog title="Auth key created" label={`Auth key for ${created.user}.`} secret={created.key} onClose={() => setCreated(null)}>
          <p className="hint">
            On the machine: <code>weft up --server {location.origin} --auth-key …</code>
          </p>
        </SecretDialog>
      )}
      {revoke.dialog((k) => ({
        title: `Revoke ${k.prefix}?`,
        body: <p>Machines can no longer join with it. Devices that already joined stay.</p>,
        confirm: 'Revoke key',
        danger: true,
        onConfirm: async () => void (await api('DELETE', `/api/v1/authkeys/${k.id}`)),
      }))}
    </>
  );
}

function CreateDialog({ users, onClose, onCreated }: { users: User[]; onClose: () => void; onCreated: (k: CreatedAuthKey) => void }) {
  const [user, setUser] = useState(users[0]?.name ?? '');
  const [reusable, setReusable] = useState(false);
  const [ephemeral, setEphemeral] = useState(false);
  const [tags, setTags] = useState('');
  const [expiresIn, setExpiresIn] = useState(3600);
  const create = async () => {
    const tagList = parseTags(tags);
    const bad = badTag(tagList);
    if (bad) throw new Error(bad);
    onCreated(await api<CreatedAuthKey>('POST', '/api/v1/authkeys', { user, reusable, ephemeral, tags: tagList, expiresIn }));
  };
  return (
    <FormDialog title="Create auth key" submit="Create" disabled={users.length === 0} onClose={onClose} onSubmit={create}>
      <label htmlFor="ak-user">User</label>
      <select id="ak-user" value={user} onChange={(e) => setUser(e.target.value)} autoFocus>
        {users.map((u) => (
          <option key={u.id} value={u.name}>
            {u.name}
          </option>
        ))}
      </select>
      <label className="check">
        <input type="checkbox" checked={reusable} onChange={(e) => setReusable(e.target.checked)} /> Reusable
      </label>
      <label className="check">
        <input type="checkbox" checked={ephemeral} onChange={(e) => setEphemeral(e.target.checked)} /> Ephemeral (deleted when offline)
      </label>
      <label htmlFor="ak-tags">Tags</label>
      <input id="ak-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="tag:ci tag:db" />
      <label htmlFor="ak-exp">Expires after</label>
      <select id="ak-exp" value={expiresIn} onChange={(e) => setExpiresIn(Number(e.target.value))}>
        {EXPIRY.map((x) => (
          <option key={x.s} value={x.s}>
            {x.label}
          </option>
        ))}
      </select>
      {users.length === 0 && <ErrorText error="Create a user first: an auth key joins devices as one user." />}
    </FormDialog>
  );
}
