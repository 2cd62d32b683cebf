/** A real control server on a loopback port, on embedded PGlite or a fresh Postgres database. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '@weft/db';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { buildApp, type App, type AppOptions } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';

export type Backend = 'pglite' | 'postgres';
export const BACKENDS: Backend[] = ['pglite', 'postgres'];

export interface TestServer extends App {
  url: string;
  adminKey: string;
  readKey: string;
  /** Admin-authorised JSON request (an `authorization` in `headers` replaces the admin key); returns status, parsed body and headers. */
  api: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; type: string | null; headers: Headers }>;
  close: () => Promise<void>;
}

/**
 * Builds a server on an open database and listens on a loopback port, with the test defaults
 * (fast patches). For tests that restart a server on a database they keep.
 */
export async function listenOn(db: Database, opts: Partial<Omit<AppOptions, 'db' | 'serverUrl'>> = {}): Promise<{ app: App; url: string }> {
  const app = await buildApp({ ...opts, db, serverUrl: 'http://127.0.0.1', patchIntervalMs: opts.patchIntervalMs ?? 20 });
  try {
    await app.app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    await app.app.close().catch(() => {});
    throw err;
  }
  const addr = app.app.server.address();
  return { app, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

/** `databaseUrl` (postgres only): use that database instead of a fresh one, e.g. for two replicas on one database. */
export async function startServer(backend: Backend, opts: Partial<Omit<AppOptions, 'db' | 'serverUrl'>> = {}, databaseUrl?: string): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-srv-'));
  let db: Database | undefined;
  let listening: { app: App; url: string };
  try {
    db = await openDatabase(backend === 'pglite' ? { dataDir: dir } : { databaseUrl: databaseUrl ?? (await createTestDatabase()) });
    listening = await listenOn(db, { ...opts, ephemeralTimeoutS: opts.ephemeralTimeoutS ?? 1 });
  } catch (err) {
    // Leave nothing behind when start-up fails: no open database, no temp dir.
    await db?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { app: built, url } = listening;
  const openDb = db;
  const adminKey = (await built.state.apiKeys.create(SYSTEM, { scopes: ['admin'] })).key;
  const readKey = (await built.state.apiKeys.create(SYSTEM, { scopes: ['read'] })).key;
  const api: TestServer['api'] = async (method, path, body, headers = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: leave as text */
    }
    return { status: res.status, body: parsed, type: res.headers.get('content-type'), headers: res.headers };
  };
  return {
    ...built,
    url,
    adminKey,
    readKey,
    api,
    close: async () => {
      await built.app.close();
      await openDb.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
