/**
 * How the admin UI talks to the server, and the ONE place that knows how its requests are
 * authenticated. Everything else calls `api()` and never sees a credential.
 *
 * The browser session (apps/server/src/web): the person signs in on the server's own page
 * (`/auth/login`: a local account, or the identity provider over OIDC), which sets an HttpOnly,
 * SameSite session cookie the UI never reads. `GET /auth/session` says who is signed in and gives
 * the CSRF token, which every state-changing request carries as `X-CSRF-Token`; it is held in
 * memory only. A 401 from any request (the session ended, expired or was revoked) shows sign-in.
 */
import type { Problem, WebSession } from '@weft/protocol';

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
let session: WebSession | null = null;

/** Called when the person is signed out (by signOut() or by a 401). Returns the unsubscribe. */
export function onSignedOut(fn: Listener): () => void {
  listeners.add(fn);
  return () => void listeners.delete(fn);
}

function signedOut(): void {
  session = null;
  for (const fn of [...listeners]) fn();
}

/** Asks the server who is signed in (the cookie goes by itself); null when nobody is. */
export async function loadSession(): Promise<WebSession | null> {
  const res = await fetch('/auth/session', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  session = res.ok ? ((await res.json()) as WebSession) : null;
  return session;
}

export function currentSession(): WebSession | null {
  return session;
}

/** The server's sign-in page, coming back to where the person is now. */
export function signInUrl(): string {
  return `/auth/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

export async function signOut(): Promise<void> {
  const token = session?.csrfToken;
  if (token) {
    await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json', 'x-csrf-token': token } }).catch(() => {});
  }
  signedOut();
}

/** `extra` carries request headers such as If-Match (never a credential: those are added here). */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { ...extra, accept: 'application/json' };
  if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrfToken;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  if (res.status === 401) signedOut();
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
