/**
 * How the admin UI talks to the server, and the ONE place that knows how its requests are
 * authenticated. Everything else calls `api()` and never sees a credential.
 *
 * INTERIM SIGN-IN, to be replaced by the browser session of the identity work (an HttpOnly,
 * SameSite session cookie from the local admin account or OIDC, plus a CSRF token on every
 * state-changing request): the person pastes an admin API key; it is kept in sessionStorage only
 * (gone with the tab; never localStorage, never in a URL) and sent as `Authorization: Bearer`.
 * When the session lands: drop `KEY_STORAGE` and the bearer header, send `credentials:
 * 'same-origin'` and the CSRF header, make `signIn` go to the session's sign-in page and
 * `signOut` end the session. A 401 from any request forgets the credential and shows sign-in.
 */
import type { Problem } from '@weft/protocol';

const KEY_STORAGE = 'weft.adminApiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem>,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
  get code(): string | undefined {
    return this.problem.code;
  }
}

type Listener = () => void;
const listeners = new Set<Listener>();

/** Called when the person is signed out (by signOut() or by a 401). Returns the unsubscribe. */
export function onSignedOut(fn: Listener): () => void {
  listeners.add(fn);
  return () => void listeners.delete(fn);
}

export function isSignedIn(): boolean {
  return sessionStorage.getItem(KEY_STORAGE) !== null;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY_STORAGE);
  for (const fn of [...listeners]) fn();
}

/** Checks the key against the server (an admin-only route) before keeping it. */
export async function signIn(apiKey: string): Promise<void> {
  const res = await fetch('/api/v1/apikeys', { headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' } });
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  sessionStorage.setItem(KEY_STORAGE, apiKey);
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  if (res.status === 401) signOut();
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  return (await res.json()) as T;
}

async function problemOf(res: Response): Promise<Partial<Problem>> {
  try {
    return (await res.json()) as Partial<Problem>;
  } catch {
    return { title: res.statusText };
  }
}

/** A query string from the set values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
