/** Small shared pieces: loading a resource once per view, empty and error states, time labels. */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api } from '../api/client.js';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  /** Load again (after an action); no polling anywhere. */
  reload: () => void;
}

/** One request per view and per change of `key`; the answer of a superseded request is dropped. */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (err: unknown) => live && setState((s) => ({ data: s.data, error: (err as Error).message, loading: false })),
    );
    return () => {
      live = false;
    };
    // `load` is recreated every render; `key` says when it asks for something else.
  }, [key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A list endpoint that answers `{ items }`, loaded once per view (and on reload). */
export function useList<T>(path: string): Loaded<T[]> {
  return useLoad(async () => (await api<{ items: T[] }>('GET', path)).items, path);
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function ErrorText({ error }: { error: string | null }) {
  return error ? <p className="error" role="alert">{error}</p> : null;
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${until(-s)}`;
  if (s < 60) return 'just now';
  return `${until(s)} ago`;
}

function until(s: number): string {
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

export function Tags({ tags }: { tags: string[] }) {
  return (
    <>
      {tags.map((t) => (
        <span key={t} className="tag">
          {t}
        </span>
      ))}
    </>
  );
}

/** Shows a secret once (auth or API key) with a copy button; nothing keeps it after close. */
export function SecretOnce({ label, secret }: { label: string; secret: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="secret">
      <p>{label} It is shown only now: copy it before closing.</p>
      <code data-testid="secret">{secret}</code>
      <button
        type="button"
        onClick={() => {
          void navigator.clipboard?.writeText(secret).then(() => setCopied(true), () => undefined);
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}
