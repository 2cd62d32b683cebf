/**
 * The server serving HTTPS and WSS itself, with a CA the test makes (openssl): the certificate is
 * served and verified, a client trusting another CA is refused, a renewed pair reaches new
 * connections without a restart while an open agent socket stays up, a broken new pair keeps the
 * old one, and the metrics gauge carries the served certificate's not-after.
 */
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type Server as TlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@weft/db';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { SYSTEM } from '../../src/state/index.js';
import { loadTlsPair, TlsReloader } from '../../src/tls.js';
import { issue, makeCa, type TestCa } from '../../../../test-support/test-ca.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { spawn } from 'node:child_process';
import { freePort, SERVER_BIN } from '../support/process.js';

/** The leaf the server presents to a fresh connection, verified against `ca`. */
function servedCert(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const raw = s.getPeerCertificate().raw;
      s.end();
      resolve(new X509Certificate(raw));
    });
    s.on('error', reject);
  });
}

function getJson(url: string, ca: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    }).on('error', reject);
  });
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TLS served by weft-server', () => {
  let dir: string;
  let ca: TestCa;
  let other: TestCa;
  let db: Database;
  let built: App;
  let reloader: TlsReloader;
  let port: number;
  let url: string;
  const warnings: string[] = [];
  const certFile = () => join(dir, 'live.pem');
  const keyFile = () => join(dir, 'live.key');

  /** Installs a fresh leaf as the live pair, by rename (as certbot and cert-manager do). */
  const installLeaf = (label: string, validity?: { notBefore?: Date; notAfter?: Date }) => {
    const leaf = issue(ca, dir, label, ['localhost', '127.0.0.1'], validity);
    writeFileSync(certFile() + '.tmp', leaf.cert);
    writeFileSync(keyFile() + '.tmp', leaf.key);
    renameSync(keyFile() + '.tmp', keyFile());
    renameSync(certFile() + '.tmp', certFile());
    return leaf;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-tls-'));
    ca = makeCa(dir, 'test-ca');
    other = makeCa(dir, 'other-ca');
    installLeaf('first');
    const pair = loadTlsPair(certFile(), keyFile());
    db = await openDatabase({ dataDir: join(dir, 'data') });
    const log = { warn: (obj: { reason?: string }) => warnings.push(obj.reason ?? ''), info: () => {}, debug: () => {}, error: () => {}, fatal: () => {}, trace: () => {}, child: () => log, level: 'info', silent: () => {} };
    built = await buildApp({ db, serverUrl: 'https://localhost', https: pair, metrics: { token: 'x'.repeat(32) } });
    reloader = new TlsReloader({
      certPath: certFile(), keyPath: keyFile(), initial: pair, pollMs: 100, log: log as never,
      apply: (p) => {
        (built.app.server as unknown as TlsServer).setSecureContext({ cert: p.cert, key: p.key });
        built.metrics?.tlsCertificate(p.notAfter);
      },
    });
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    port = (built.app.server.address() as { port: number }).port;
    url = `https://localhost:${port}`;
  });

  afterAll(async () => {
    reloader?.close();
    await built?.app.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS verified against the CA that signed its certificate', async () => {
    expect(await getJson(`${url}/healthz`, ca.pem)).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('a client trusting another CA is refused by its own verification', async () => {
    const err = await getJson(`${url}/healthz`, other.pem).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('exports the served certificate not-after as weft_tls_certificate_not_after_seconds', async () => {
    const notAfter = Math.floor(new Date((await servedCert(port, ca.pem)).validTo).getTime() / 1000);
    const text = await built.metrics!.registry.metrics();
    expect(text).toContain(`weft_tls_certificate_not_after_seconds ${notAfter}`);
  });

  it('reloads a renewed pair for new connections while an open agent WebSocket stays up; a broken pair keeps the old one', async () => {
    const { key } = await built.state.authKeys.create(SYSTEM, { user: await userName(built), reusable: true });
    const agent = new SimAgent(url, 'tls-agent', ca.pem);
    await agent.register(key);
    await agent.connect();
    await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap over wss');
    const before = await servedCert(port, ca.pem);

    const renewed = installLeaf('second', { notAfter: new Date(Date.now() + 90 * 86400_000) });
    const renewedSerial = new X509Certificate(renewed.cert).serialNumber;
    await until(async () => (await servedCert(port, ca.pem)).serialNumber === renewedSerial, 10_000, 'the renewed certificate on a new connection');
    expect(before.serialNumber).not.toBe(renewedSerial);
    expect(await built.metrics!.registry.metrics()).toContain(
      `weft_tls_certificate_not_after_seconds ${Math.floor(new Date(new X509Certificate(renewed.cert).validTo).getTime() / 1000)}`,
    );
    // The socket opened under the old certificate is the same socket, still delivering.
    expect(agent.closed).toBeNull();
    const seen = agent.received.length;
    const second = new SimAgent(url, 'tls-agent-2', ca.pem);
    await second.register(key);
    await agent.waitFor(() => agent.received.length > seen, 10_000, 'a delta on the old socket after the reload');
    expect(agent.closed).toBeNull();

    // A key that does not belong to the new certificate: refused, logged, old pair still served.
    const stray = issue(ca, dir, 'stray', ['localhost']);
    writeFileSync(keyFile(), stray.key);
    await until(() => warnings.some((w) => w.includes('does not belong to the certificate')), 10_000, 'the refused reload to be logged');
    expect((await servedCert(port, ca.pem)).serialNumber).toBe(renewedSerial);
    agent.close();
  });

  it('start-up refuses an unreadable or mismatched pair, naming the key and where it came from', () => {
    const a = issue(ca, dir, 'cfg-a', ['localhost']);
    const b = issue(ca, dir, 'cfg-b', ['localhost']);
    const load = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      try {
        loadConfig(argv, env);
        return 'loaded';
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
    };
    expect(load(['--tls-cert', a.certFile, '--tls-key', a.keyFile])).toBe('loaded');
    expect(load(['--tls-cert', join(dir, 'missing.pem'), '--tls-key', a.keyFile])).toMatch(/"tls-cert" \(flag --tls-cert\): cannot read .*missing\.pem: no such file/);
    expect(load(['--tls-key', b.keyFile], { WEFT_TLS_CERT: a.certFile })).toMatch(
      /"tls-cert" \(environment variable WEFT_TLS_CERT\) and "tls-key" \(flag --tls-key\): the key in .*cfg-b\.key does not belong to the certificate in .*cfg-a\.pem/,
    );
    expect(load(['--tls-cert', a.keyFile, '--tls-key', a.keyFile])).toMatch(/"tls-cert" \(flag --tls-cert\): .* is not a PEM certificate/);
    expect(load(['--tls-cert', a.certFile])).toMatch(/"tls-key" \(config\): is needed too/);
  });
});

async function userName(app: App): Promise<string> {
  const users = await app.state.users.list();
  if (users.length > 0) return users[0]!.name;
  return (await app.state.users.create(SYSTEM, { name: 'tls' })).name;
}

describe('weft-server serve --tls-cert --tls-key', () => {
  it('listens on https, says so, and serves a renewed certificate without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-tls-serve-'));
    const ca = makeCa(dir, 'serve-ca');
    const first = issue(ca, dir, 'one', ['localhost', '127.0.0.1']);
    const port = await freePort();
    const proc = spawn(process.execPath, [SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--stun-listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'),
      '--log-level', 'info', '--tls-cert', join(dir, 'one.pem'), '--tls-key', join(dir, 'one.key')], {
      env: { ...process.env, WEFT_TEST_TLS_POLL_MS: '100' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await until(async () => {
        if (proc.exitCode !== null) throw new Error(`weft-server exited ${proc.exitCode}:\n${out}`);
        return (await getJson(`https://localhost:${port}/readyz`, ca.pem).catch(() => null))?.status === 200;
      }, 100_000, 'weft-server ready on https');
      expect(out).toContain(`listening on https://127.0.0.1:${port}`);
      expect(out).toContain(`Agents and browsers use https://127.0.0.1:${port}`);
      expect((await servedCert(port, ca.pem)).serialNumber).toBe(new X509Certificate(first.cert).serialNumber);
      // Renewed in place (same file names, as the config names them).
      const second = issue(ca, dir, 'one', ['localhost', '127.0.0.1']);
      const serial = new X509Certificate(second.cert).serialNumber;
      await until(async () => (await servedCert(port, ca.pem)).serialNumber === serial, 20_000, 'the renewed certificate');
      // The log line reaches our pipe after the new context is in force (CI once read it too early).
      await until(async () => out.includes('TLS certificate reloaded'), 10_000, 'the reload logged');
    } finally {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
