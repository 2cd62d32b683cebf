/**
 * INTERIM sign-in: an admin API key, until the browser session of the identity work replaces it
 * (api/client.ts says what changes then).
 */
import { useState, type FormEvent } from 'react';
import { signIn } from '../api/client.js';

export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(key.trim());
      onSignedIn();
    } catch (err) {
      setError((err as { status?: number }).status === 403 ? 'That key can only read: the admin UI needs an admin API key.' : (err as Error).message);
      setBusy(false);
    }
  };
  return (
    <main className="sign-in">
      <h1>Weft admin</h1>
      <form onSubmit={submit}>
        <label htmlFor="api-key">Admin API key</label>
        <input id="api-key" type="password" autoComplete="off" required value={key} onChange={(e) => setKey(e.target.value)} autoFocus />
        <p className="hint">
          Create one with <code>weft-server apikeys create --scopes admin</code>. It is kept in this tab only, until you sign out or close it.
        </p>
        {error && <p className="error" role="alert">{error}</p>}
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
