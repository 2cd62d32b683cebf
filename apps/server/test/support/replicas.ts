/**
 * Several replicas on one throwaway Postgres, as the integration tests set them up: in-process
 * (`buildApp` listening on loopback, its state at hand) or as server processes (spawnServer) with
 * an admin API key made through the CLI, and a REST caller for either.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import WebSocket from 'ws';
import { openDatabase, type Database } from '@weft/db';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { buildApp, type App, type AppOptions } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { cli, type ServerProcess } from './process.js';

export interface Replica { app: App; db: Database; url: string }

/** A replica in this process on `databaseUrl`, listening on a free loopback port. */
export async function inProcessReplica(databaseUrl: string, opts: Omit<AppOptions, 'db' | 'serverUrl'> = {}): Promise<Replica> {
  const db = await openDatabase({ databaseUrl });
  const app = await buildApp({ db, serverUrl: 'http://127.0.0.1', ...opts });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.app.server.address();
  return { app, db, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

/** Closes in-process replicas (any not started yet are skipped). */
export async function closeReplicas(replicas: ReadonlyArray<Replica | undefined>): Promise<void> {
  for (const r of replicas) {
    await r?.app.app.close();
    await r?.db.close();
  }
}

/** An admin API key made with `weft-server apikeys create` on a server process's data dir. */
export async function adminKeyFor(s: ServerProcess): Promise<string> {
  const created = await cli(['apikeys', 'create', '--scopes', 'admin', '--json', '--data-dir', s.dataDir]);
  expect(created.code, created.stderr).toBe(0);
  return JSON.parse(created.stdout).key as string;
}

export type RestCall = (s: { url: string }, method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/** A REST caller with the bearer key `key()` holds at call time (set in beforeAll). */
export function restApi(key: () => string): RestCall {
  return async (s, method, path, body) => {
    const res = await fetch(s.url + path, {
      method,
      headers: { authorization: `Bearer ${key()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}

/** A simulated agent registered and connected to `url`, once it has its first netmap. */
export async function joinedAgent(url: string, name: string, authKey: string): Promise<SimAgent> {
  const a = new SimAgent(url, name);
  await a.register(authKey);
  await a.connect();
  await a.waitFor(() => a.received.some((m) => m.msg.type === 'netmap'), 10_000, `${name} netmap`);
  return a;
}

/** Polls `pred` every 50 ms until true; throws naming `what` after `ms`. */
export async function until(pred: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TwoReplicas {
  r1: Replica;
  r2: Replica;
  /** An API key with the read scope. */
  key: string;
  /** A simulated agent joined through `r` (closed after the file). */
  agent(r: Replica, name: string, authKey: string): Promise<SimAgent>;
  /** A reusable auth key for the user `fleet`. */
  authKey(): Promise<string>;
}

/**
 * Two in-process replicas on one fresh Postgres for the file (vitest beforeAll/afterAll), a read
 * key and a user `fleet`; the agents joined through `agent` are closed with them.
 */
export function useTwoReplicas(opts: Omit<AppOptions, 'db' | 'serverUrl'> = {}): TwoReplicas {
  const agents: SimAgent[] = [];
  const t = {
    agent: async (r: Replica, name: string, authKey: string) => {
      const a = await joinedAgent(r.url, name, authKey);
      agents.push(a);
      return a;
    },
    authKey: async () => (await t.r1.app.state.authKeys.create(SYSTEM, { user: 'fleet', reusable: true })).key,
  } as TwoReplicas;
  beforeAll(async () => {
    const url = await createTestDatabase();
    t.r1 = await inProcessReplica(url, opts);
    t.r2 = await inProcessReplica(url, opts);
    t.key = (await t.r1.app.state.apiKeys.create(SYSTEM, { scopes: ['read'] })).key;
    await t.r1.app.state.users.create(SYSTEM, { name: 'fleet' });
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await closeReplicas([t.r1, t.r2]);
  });
  return t;
}

/** The outcome of a WebSocket upgrade to `url` with `authorization`: 101, or the refusal's status and problem+json. */
export function upgradeOutcome(url: string, authorization: string): Promise<{ status: number; body?: any }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers: { authorization } });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
  });
}
