/** The `weft-server` admin CLI against a real server process on the embedded database, and that process's lifecycle. */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countEntries, notOwnerOnly } from '../../../../test-support/modes.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { cli, spawnServer, type ServerProcess } from '../support/process.js';

describe('weft-server admin CLI and process lifecycle (embedded database)', () => {
  let s: ServerProcess;
  const local = (...args: string[]) => cli([...args, '--data-dir', s.dataDir]);
  beforeAll(async () => {
    s = await spawnServer();
  });
  afterAll(async () => s?.stop());

  it('prints where it listens and how to add the first user', () => {
    expect(s.output()).toContain(`listening on ${s.url}`);
    expect(s.output()).toContain('weft-server users create');
  });

  it('admin set-password: the first-start hint names it; the password comes from stdin (never argv); the account signs in', async () => {
    expect(s.output()).toContain(`weft-server admin set-password --user admin --data-dir ${s.dataDir}`);
    const set = await cli(['admin', 'set-password', '--data-dir', s.dataDir], { input: 'a long enough password\n' });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('Created user admin, an admin');
    expect(set.stdout).toContain(`Sign in at ${s.url}/auth/login`);
    const short = await cli(['admin', 'set-password', '--data-dir', s.dataDir], { input: 'short\n' });
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('at least 12 characters');
    expect((await cli(['admin', 'set-password', '--password', 'x', '--data-dir', s.dataDir])).stderr).toContain('unknown flag --password');
    const res = await fetch(`${s.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'a long enough password' }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ user: { name: 'admin' }, role: 'admin' });
  });

  it('the admin socket is owner-only', () => {
    expect(statSync(join(s.dataDir, 'weft-server.sock')).mode & 0o777).toBe(0o600);
  });

  it('manages users, auth keys and API keys with --json and human output', async () => {
    const created = await local('users', 'create', 'alice', '--json');
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'alice' });
    const key = await local('authkeys', 'create', '--user', 'alice', '--reusable', '--json');
    expect(key.code, key.stderr).toBe(0);
    const parsed = JSON.parse(key.stdout);
    expect(parsed.key).toMatch(/^weft-auth-/);
    expect(parsed.reusable).toBe(true);
    const api = await local('apikeys', 'create', '--scopes', 'admin', '--json');
    const apiKey = JSON.parse(api.stdout).key as string;
    expect(apiKey).toMatch(/^weft-api-/);
    // Any server, by URL and API key.
    const remote = await cli(['users', 'list', '--server', s.url, '--api-key', apiKey]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout).toMatch(/ID\s+NAME/);
    expect(remote.stdout).toContain('alice');
    const keys = await local('authkeys', 'list');
    expect(keys.stdout).toContain(parsed.prefix);
    expect(keys.stdout).not.toContain(parsed.key);
  });

  it('scim token create shows the token once, it works only at /scim/v2, list shows it without the secret, revoke ends it', async () => {
    const made = await local('scim', 'token', 'create', '--description', 'entra');
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.split('\n')[0]!;
    expect(token).toMatch(/^weft-api-[0-9a-f]{12}-/);
    expect(made.stdout).toContain('/scim/v2');
    expect(made.stdout).toContain('only time it is shown');
    const users = await fetch(`${s.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } });
    expect(users.status).toBe(200);
    expect((await fetch(`${s.url}/api/v1/users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    const listed = await local('scim', 'token', 'list', '--json');
    const items = JSON.parse(listed.stdout) as { id: number; prefix: string; scopes: string[]; description: string }[];
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ scopes: ['scim'], description: 'entra' });
    expect(listed.stdout).not.toContain(token);
    expect(token.startsWith(items[0]!.prefix)).toBe(true);
    const api = JSON.parse((await local('apikeys', 'create', '--scopes', 'read', '--json')).stdout) as { id: number };
    const wrong = await local('scim', 'token', 'revoke', String(api.id));
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('not a SCIM token');
    const revoked = await local('scim', 'token', 'revoke', String(items[0]!.id));
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await fetch(`${s.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });

  it('adds a node-less peer: wg-quick config and QR for the WireGuard app, other nodes see it', async () => {
    const key = JSON.parse((await local('authkeys', 'create', '--user', 'alice', '--json')).stdout).key;
    const laptop = new SimAgent(s.url, 'alice-laptop');
    await laptop.register(key);
    await laptop.connect();
    await laptop.waitFor(() => laptop.received.length > 0);
    laptop.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.10:41641'] }));
    await new Promise((r) => setTimeout(r, 500));
    const out = join(s.dataDir, 'phone.conf');
    const png = join(s.dataDir, 'phone.png');
    // An existing file at --out is replaced (not written through), 0600, with no temporary file left.
    writeFileSync(out, 'old\n', { mode: 0o644 });
    const r = await local('nodes', 'add-peer', 'alice-phone', '--user', 'alice', '--out', out, '--qr-png', png, '--json');
    expect(r.code, r.stderr).toBe(0);
    const { node, ...rest } = JSON.parse(r.stdout);
    expect(rest).toEqual({ out, qrPng: png });
    const config = readFileSync(out, 'utf8');
    expect(config).toMatch(/^\[Interface\]\nPrivateKey = [A-Za-z0-9+/]{43}=\n/);
    expect(node).toMatchObject({ name: 'alice-phone', user: 'alice' });
    expect(config).toContain(`Address = ${node.ipv4}/32, ${node.ipv6}/128`);
    expect(config).toContain(`AllowedIPs = ${laptop.self!.ipv4}/32`);
    expect(config).toContain('Endpoint = 192.0.2.10:41641');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(statSync(png).mode & 0o777).toBe(0o600);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(readdirSync(s.dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // The server has the public key only; the laptop gets the phone in its netmap.
    await laptop.waitFor(() => laptop.peers.has(node.id), 5000, 'phone in laptop netmap');
    expect(laptop.peers.get(node.id)!.nodeKey).toBe(node.nodeKey);
    const human = await local('nodes', 'add-peer', 'alice-tablet', '--user', 'alice');
    expect(human.stdout).toContain('[Interface]');
    expect(human.stdout).toContain('█');
    laptop.close();
  });

  it('add-peer --out keeps the private key out of stdout: no config, no QR code, only where it went', async () => {
    const out = join(s.dataDir, 'watch.conf');
    const r = await local('nodes', 'add-peer', 'alice-watch', '--user', 'alice', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const privateKey = /PrivateKey = (\S+)/.exec(readFileSync(out, 'utf8'))![1]!;
    expect(r.stdout).not.toContain(privateKey);
    expect(r.stdout).not.toContain('PrivateKey');
    expect(r.stdout).not.toContain('█');
    expect(r.stderr).not.toContain(privateKey);
    expect(r.stdout).toContain(`is in ${out} (mode 0600)`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it('an --out path that cannot be written fails before a node is added', async () => {
    const r = await local('nodes', 'add-peer', 'alice-nowhere', '--user', 'alice', '--out', join(s.dataDir, 'no-such-dir', 'x.conf'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ENOENT');
    const names = (JSON.parse((await local('nodes', 'list', '--json')).stdout) as { name: string }[]).map((n) => n.name);
    expect(names).not.toContain('alice-nowhere');
  });

  it('terminal escapes in values from the server are shown escaped in human output; --json stays exact', async () => {
    const evil = 'x\u001b]0;pwned\u0007\u202e';
    const created = await local('apikeys', 'create', '--scopes', 'read', '--description', evil, '--json');
    expect(created.code, created.stderr).toBe(0);
    const human = await local('apikeys', 'list');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('x\\x1b]0;pwned\\x07\\u202e');
    expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    const json = await local('apikeys', 'list', '--json');
    expect((JSON.parse(json.stdout) as { description: string | null }[]).map((k) => k.description)).toContain(evil);
  });

  it('exit codes mean something: refused 1, usage 2, unreachable 3', async () => {
    const dup = await local('users', 'create', 'alice');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('user_exists');
    const usage = await local('users', 'frobnicate');
    expect(usage.code).toBe(2);
    expect((await local('authkeys', 'create')).stderr).toContain('--user');
    const gone = await cli(['users', 'list', '--data-dir', '/nonexistent']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('is weft-server serve running');
    const badKey = await cli(['users', 'list', '--server', s.url, '--api-key', 'weft-api-000000000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('unauthenticated');
  });

  it('a bad config value stops start-up naming the key', async () => {
    const r = await cli(['serve', '--listen', 'not-a-port', '--data-dir', s.dataDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"listen" (flag --listen)');
  });

  it('everything it writes in its data dir is owner-only (database, lock, admin socket)', () => {
    const names = readdirSync(s.dataDir);
    expect(names).toEqual(expect.arrayContaining(['db', 'db.lock', 'weft-server.sock']));
    expect(countEntries(s.dataDir)).toBeGreaterThan(100);
    expect(notOwnerOnly(s.dataDir)).toEqual([]);
  });

  it('refuses to start on a data dir open to group or others, saying how to fix it, and creates nothing in it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-open-dir-'));
    try {
      chmodSync(dir, 0o755);
      // Embedded database, and Postgres (the dir still holds the admin socket): checked before either is opened.
      for (const extra of [[], ['--database-url', 'postgres://127.0.0.1:1/never-reached']]) {
        const r = await cli(['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, ...extra]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toBe(
          `weft-server: failed to start: the data directory ${dir} is open to group or others (mode 0755); ` +
            `it holds the database and the admin socket and must be owner-only: run chmod 700 ${dir} (DATA_DIR_NOT_PRIVATE)\n`,
        );
        expect(readdirSync(dir)).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shuts down cleanly on SIGTERM and comes back with its data', async () => {
    const other = await spawnServer();
    let again: ServerProcess | undefined;
    try {
      const created = await cli(['users', 'create', 'persisted', '--data-dir', other.dataDir]);
      expect(created.code).toBe(0);
      // A connected agent is told the server is going away (1001), not dropped (1006).
      const key = JSON.parse((await cli(['authkeys', 'create', '--user', 'persisted', '--json', '--data-dir', other.dataDir])).stdout).key;
      const agent = new SimAgent(other.url, 'stays');
      await agent.register(key);
      await agent.connect();
      await agent.waitFor(() => agent.received.length > 0);
      const exited = new Promise<number | null>((r) => other.proc.once('exit', (code) => r(code)));
      other.proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      await agent.waitFor(() => agent.closed !== null);
      expect(agent.closed!.code).toBe(1001);
      again = await spawnServer({}, other.dataDir);
      const list = await cli(['users', 'list', '--json', '--data-dir', other.dataDir]);
      expect(JSON.parse(list.stdout).map((u: { name: string }) => u.name)).toEqual(['persisted']);
    } finally {
      await again?.stop();
      await other.stop(); // removes the data dir both used
    }
  }, 180_000); // two servers, one after the other (the first creating its database), and four CLI runs
});
