/** API keys (REST and this UI): create with scopes (the key is shown once), revoke. */
import { useState, type FormEvent } from 'react';
import type { ApiKey, ApiScope, CreatedApiKey } from '@weft/protocol';
import { api } from '../api/client.js';
import { Empty, ErrorText, SecretOnce, useLoad, when } from '../components/common.js';
import { ConfirmDialog, Dialog } from '../components/dialog.js';

export function ApiKeys() {
  const r = useLoad(() => api<{ items: ApiKey[] }>('GET', '/api/v1/apikeys'), 'apikeys');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  return (
    <>
      <h1>API keys</h1>
      <div className="toolbar">
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create API key
        </button>
      </div>
      <ErrorText error={r.error} />
      {r.data && r.data.items.length === 0 ? (
        <Empty>No API keys.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-busy={r.loading}>
            <thead>
              <tr>
                <th scope="col">Prefix</th>
                <th scope="col">Scopes</th>
                <th scope="col">Description</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {r.data?.items.map((k) => (
                <tr key={k.id}>
                  <td className="mono">{k.prefix}</td>
                  <td>{k.scopes.join(', ')}</td>
                  <td>{k.description ?? '—'}</td>
                  <td>{when(k.lastUsedAt)}</td>
                  <td>{k.revoked ? 'revoked' : when(k.expiresAt)}</td>
                  <td className="actions">
                    {!k.revoked && (
                      <button type="button" className="danger" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.prefix}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
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
      {created && (
        <Dialog title="API key created" onClose={() => setCreated(null)}>
          <SecretOnce label={`API key with scopes ${created.scopes.join(', ')}.`} secret={created.key} />
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={() => setCreated(null)} autoFocus>
              Done
            </button>
          </div>
        </Dialog>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke ${revoking.prefix}?`}
          body={<p>Everything using this key is refused from now on. If it is the key you signed in with, you are signed out.</p>}
          confirm="Revoke key"
          danger
          onConfirm={async () => void (await api('DELETE', `/api/v1/apikeys/${revoking.id}`))}
          onClose={() => setRevoking(null)}
          onDone={() => {
            setRevoking(null);
            r.reload();
          }}
        />
      )}
    </>
  );
}

function CreateDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (k: CreatedApiKey) => void }) {
  const [scope, setScope] = useState<ApiScope>('read');
  const [description, setDescription] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      onCreated(await api<CreatedApiKey>('POST', '/api/v1/apikeys', { scopes: [scope], ...(description ? { description } : {}) }));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Dialog title="Create API key" onClose={onClose}>
      <form onSubmit={submit}>
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
        <ErrorText error={error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
