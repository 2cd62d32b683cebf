/**
 * API keys (REST and this UI): create with scopes (the key is shown once), revoke. SCIM tokens
 * (scope `scim`, made for an identity provider) are listed here too, labelled as such; the owner
 * is the user who created the key ("—": made from the admin socket).
 */
import { useState } from 'react';
import type { ApiKey, ApiScope, CreatedApiKey } from '@weft/protocol';
import { api } from '../api/client.js';
import { ErrorText, useList, when } from '../components/common.js';
import { DataTable, type Column } from '../components/data-table.js';
import { FormDialog, SecretDialog, useConfirmAction } from '../components/dialog.js';

export function ApiKeys() {
  const r = useList<ApiKey>('/api/v1/apikeys');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const revoke = useConfirmAction<ApiKey>(r.reload);
  const columns: Column<ApiKey>[] = [
    { header: 'Prefix', className: 'mono', cell: (k) => k.prefix },
    { header: 'Scopes', cell: (k) => scopesLabel(k.scopes) },
    { header: 'Owner', cell: (k) => k.owner ?? '—' },
    { header: 'Description', cell: (k) => k.description ?? '—' },
    { header: 'Last used', cell: (k) => when(k.lastUsedAt) },
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
      <h1>API keys</h1>
      <div className="toolbar">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create API key
        </button>
      </div>
      <ErrorText error={r.error} />
      <DataTable columns={columns} rows={r.data ?? undefined} rowKey={(k) => k.id} loading={r.loading} empty="No API keys." />
      {creating && (
        <CreateDialog
          onClose={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            r.reload();
          }}
        />
      )}
      {created && <SecretDialog title="API key created" label={`API key with scopes ${created.scopes.join(', ')}.`} secret={created.key} onClose={() => setCreated(null)} />}
      {revoke.dialog((k) => ({
        title: `Revoke ${k.prefix}?`,
        body: <p>Everything using this key is refused from now on. If it is the key you signed in with, you are signed out.</p>,
        confirm: 'Revoke key',
        danger: true,
        onConfirm: async () => void (await api('DELETE', `/api/v1/apikeys/${k.id}`)),
      }))}
    </>
  );
}

/** `scim` alone is a SCIM provisioning token, not a REST key: say so rather than show a bare scope name. */
export function scopesLabel(scopes: ApiScope[]): string {
  return scopes.map((s) => (s === 'scim' ? 'scim (SCIM provisioning token)' : s)).join(', ');
}

function CreateDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (k: CreatedApiKey) => void }) {
  const [scope, setScope] = useState<ApiScope>('read');
  const [description, setDescription] = useState('');
  return (
    <FormDialog
      title="Create API key"
      submit="Create"
      onClose={onClose}
      onSubmit={async () => onCreated(await api<CreatedApiKey>('POST', '/api/v1/apikeys', { scopes: [scope], ...(description ? { description } : {}) }))}
    >
      <fieldset>
        <legend>Scope</legend>
        <label className="check">
          <input type="radio" name="scope" checked={scope === 'read'} onChange={() => setScope('read')} autoFocus /> read (lists and reads only)
        </label>
        <label className="check">
          <input type="radio" name="scope" checked={scope === 'admin'} onChange={() => setScope('admin')} /> admin (every change)
        </label>
      </fieldset>
      <label htmlFor="apk-desc">Description</label>
      <input id="apk-desc" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={200} placeholder="dashboards" />
    </FormDialog>
  );
}
