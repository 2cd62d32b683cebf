/**
 * `weft-server relay-secret` against a real `weft-server serve` on embedded PGlite (which holds the
 * data directory's lock, so the secret comes through its admin socket): the file is 0600 and holds
 * the deployment's secret, a real standalone `weft-relay` started with that file links to the
 * server and its clients are accepted, a second run without --force refuses and changes nothing,
 * the export is audited without the secret, no API key gets it over TCP, and with no server
 * running the embedded database gives the same secret directly. On Postgres, the database itself:
 * a secret made there is the one a server started on it uses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayPeer } from '../../../../test-support/relay-peer.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { cli, freePort, spawnServer, type ServerProcess } from '../support/process.js';
import { startServer, type TestServer } from '../support/server.js';

const RELAY_BIN = resolve(import.meta.dirname, '../../../relay/bin/weft-relay.mjs');

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('weft-server relay-secret', () => {
  // Made in beforeAll, so a run that filters these tests out leaves nothing behind.
  let work: string;
  let dataDir: string;
  let secretFile: string;
  let server: ServerProcess;
  let relay: ChildProcess | undefined;
  const audits = async () => JSON.parse((await cli(['audit', 'list', '--action', 'relay.secret_export', '--json', '--data-dir', dataDir])).stdout).items as any[];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'weft-relay-secret-'));
    dataDir = join(work, 'data');
    secretFile = join(work, 'mesh.secret');
    server = await spawnServer({}, dataDir);
  }, 120_000);
  afterAll(async () => {
    if (relay && relay.exitCode === null) relay.kill('SIGKILL');
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('writes the secret 0600 through the running server, and a standalone weft-relay with that file links and accepts clients', async () => {
    const r = await cli(['relay-secret', '--out', secretFile, '--data-dir', dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote the relay mesh secret to ${secretFile} (mode 0600)`);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(Buffer.from(secret, 'base64')).toHaveLength(32);
    expect(r.stdout).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);

    const port = await freePort();
    relay = spawn(process.execPath, [RELAY_BIN, '--server', server.url, '--mesh-secret-file', secretFile, '--listen', `127.0.0.1:${port}`, '--stun-listen', '127.0.0.1:0', '--name', 'region-secret'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let relayOut = '';
    relay.stdout!.on('data', (d) => (relayOut += d));
    relay.stderr!.on('data', (d) => (relayOut += d));
    expect(relayOut).not.toContain(secret);

    await cli(['users', 'create', 'ops', '--data-dir', dataDir]);
    const key = JSON.parse((await cli(['authkeys', 'create', '--user', 'ops', '--reusable', '--json', '--data-dir', dataDir])).stdout).key as string;
    const a = new SimAgent(server.url, 'secret-a');
    const b = new SimAgent(server.url, 'secret-b');
    for (const n of [a, b]) {
      await n.register(key);
      await n.connect();
      await n.waitFor(() => n.received.some((m) => m.msg.type === 'netmap'), 20_000, 'netmap');
    }
    // Until it links to the server, the relay refuses every client (503): a client getting in is the link.
    const relayUrl = `http://127.0.0.1:${port}`;
    const ra = await until(() => RelayPeer.open(relayUrl, a.machine.privateKey), `weft-relay accepting a client (its output: ${relayOut})`);
    const rb = await RelayPeer.open(relayUrl, b.machine.privateKey);
    const before = rb.packets.length;
    await until(async () => {
      ra.send(b.node.publicKey as never, Buffer.from('through the region'));
      await new Promise((res) => setTimeout(res, 50));
      return rb.packets.length > before ? true : undefined;
    }, 'a packet from a to b through weft-relay');
    expect(rb.packets.at(-1)!.packet.toString()).toBe('through the region');
    ra.close();
    rb.close();
    a.close();
    b.close();
    expect(relayOut).not.toContain(secret);
    expect(server.output()).not.toContain(secret);
  }, 120_000);

  it('a second run without --force refuses, leaves the file as it is and audits nothing', async () => {
    writeFileSync(secretFile, 'kept as it is\n', { mode: 0o600 });
    const before = statSync(secretFile);
    const exported = (await audits()).length;
    const r = await cli(['relay-secret', '--out', secretFile, '--data-dir', dataDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${secretFile} exists; it was left as it is. Add --force to replace it`);
    expect(readFileSync(secretFile, 'utf8')).toBe('kept as it is\n');
    expect(statSync(secretFile).mtimeMs).toBe(before.mtimeMs);
    expect((await audits()).length).toBe(exported);
  }, 60_000);

  it('--force replaces the file (0600 again); --print writes the secret alone to stdout; each export is audited without the secret', async () => {
    const exported = (await audits()).length;
    const forced = await cli(['relay-secret', '--out', secretFile, '--force', '--data-dir', dataDir]);
    expect(forced.code, forced.stderr).toBe(0);
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(Buffer.from(secret, 'base64')).toHaveLength(32);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const printed = await cli(['relay-secret', '--print', '--data-dir', dataDir]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(`${secret}\n`);
    const events = await audits();
    expect(events.length).toBe(exported + 2);
    expect(events.at(-1)).toMatchObject({ actor: 'local-socket', origin: 'cli', action: 'relay.secret_export', detail: { created: false } });
    expect(JSON.stringify(events)).not.toContain(secret);
  }, 60_000);

  it('no API key gets the secret over TCP (403 forbidden, names the admin socket)', async () => {
    const apiKey = (await cli(['apikeys', 'create', '--scopes', 'admin', '--data-dir', dataDir])).stdout.split('\n')[0]!;
    const res = await fetch(`${server.url}/api/v1/relay/secret`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(403);
    const body = await res.json();
    expect(body).toMatchObject({ code: 'forbidden', retryable: false });
    expect(body.detail).toContain('admin socket');
  }, 60_000);

  it('usage errors exit 2 naming what is wrong; --help exits 0', async () => {
    const none = await cli(['relay-secret', '--data-dir', dataDir]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('relay-secret needs --out FILE');
    const both = await cli(['relay-secret', '--out', join(work, 'x'), '--data-dir', dataDir, '--database-url', 'postgres://x/y']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give one of --data-dir, --socket, --database-url');
    const nowhere = await cli(['relay-secret', '--out', join(work, 'y'), '--data-dir', join(work, 'no-such-dir')]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('there is no weft-server data directory');
    const help = await cli(['relay-secret', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('weft-server relay-secret --out FILE');
  }, 60_000);

  it('with the server stopped, the embedded database gives the same secret directly (and --print prints it alone)', async () => {
    const secret = readFileSync(secretFile, 'utf8').trim();
    if (relay && relay.exitCode === null) relay.kill('SIGTERM');
    await server.stop();
    const offline = join(work, 'offline.secret');
    const r = await cli(['relay-secret', '--out', offline, '--data-dir', dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(offline, 'utf8').trim()).toBe(secret);
    expect(statSync(offline).mode & 0o777).toBe(0o600);
    const printed = await cli(['relay-secret', '--print', '--data-dir', dataDir]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(`${secret}\n`);
  }, 120_000);
});

describe('weft-server relay-secret on Postgres', () => {
  let work: string;
  let s: TestServer | undefined;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'weft-relay-secret-pg-'));
  });
  afterAll(async () => {
    await s?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('on a database with no secret yet it makes one, and the server started on it uses that one; again while it runs, the same', async () => {
    const url = await createTestDatabase();
    const first = join(work, 'first.secret');
    const made = await cli(['relay-secret', '--out', first, '--database-url', url]);
    expect(made.code, made.stderr).toBe(0);
    expect(statSync(first).mode & 0o777).toBe(0o600);
    const secret = readFileSync(first, 'utf8').trim();
    s = await startServer('postgres', {}, url);
    expect(s.relayMeshSecret!.toString('base64')).toBe(secret);
    const again = join(work, 'again.secret');
    const running = await cli(['relay-secret', '--out', again, '--database-url', url]);
    expect(running.code, running.stderr).toBe(0);
    expect(readFileSync(again, 'utf8').trim()).toBe(secret);
    const events = (await s.api('GET', '/api/v1/audit?action=relay.secret_export')).body.items;
    expect(events.map((e: any) => e.detail)).toEqual([{ created: true }, { created: false }]);
    expect(JSON.stringify(events)).not.toContain(secret);
  }, 120_000);
});
