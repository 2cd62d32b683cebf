/**
 * weft-server behind Debian's HAProxy terminating TLS, configured by deploy/haproxy/weft-tls.cfg
 * (addresses and paths substituted): HTTPS verified against the test's CA at the proxy, the agent
 * WebSocket upgraded through it, and the client address taken from X-Forwarded-For because the
 * proxy is in `trustedProxies` (a client's own X-Forwarded-For is replaced, not believed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, makeCa, type TestCa } from '../../../../test-support/test-ca.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { freePort } from '../support/process.js';
import { startServer, type TestServer } from '../support/server.js';

const HAPROXY = '/usr/sbin/haproxy';
const CONFIG = resolve(import.meta.dirname, '../../../../deploy/haproxy/weft-tls.cfg');

/** One request through the proxy, from `localAddress`, trusting `ca`. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca: string; localAddress: string }): Promise<{ status: number; body: any }> {
  return new Promise((res, rej) => {
    const req = httpsRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, localAddress: opts.localAddress }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', rej);
    req.end(opts.body);
  });
}

describe('behind HAProxy terminating TLS (deploy/haproxy/weft-tls.cfg)', () => {
  let dir: string;
  let ca: TestCa;
  let server: TestServer;
  let haproxy: ChildProcess;
  let haproxyOut = '';
  let proxyUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-haproxy-'));
    ca = makeCa(dir, 'proxy-ca');
    const leaf = issue(ca, dir, 'proxy', ['localhost', '127.0.0.1']);
    const pem = join(dir, 'weft.pem');
    writeFileSync(pem, Buffer.concat([leaf.cert, leaf.key]), { mode: 0o600 });
    // The proxy connects to the server from 127.0.0.1; only that address is believed.
    server = await startServer('pglite', { trustedProxies: ['127.0.0.1'] });
    const backendPort = Number(new URL(server.url).port);
    const port = await freePort();
    const cfg = readFileSync(CONFIG, 'utf8')
      .replace('bind :443 ', `bind 127.0.0.1:${port} `)
      .replaceAll('/etc/haproxy/weft.pem', pem)
      .replace('127.0.0.1:8080 check', `127.0.0.1:${backendPort} check`);
    expect(cfg).toContain(`127.0.0.1:${port}`);
    expect(cfg).toContain(`127.0.0.1:${backendPort} check`);
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    haproxy = spawn(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d) => (haproxyOut += d));
    haproxy.stderr!.on('data', (d) => (haproxyOut += d));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (haproxy.exitCode !== null) throw new Error(`haproxy exited ${haproxy.exitCode}:\n${haproxyOut}`);
      const up = await new Promise<boolean>((r) => {
        const s = connect(port, '127.0.0.1', () => { s.end(); r(true); });
        s.on('error', () => r(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error(`haproxy not listening after 20 s:\n${haproxyOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    proxyUrl = `https://localhost:${port}`;
  }, 120_000);

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const gone = new Promise((r) => haproxy.once('exit', r));
      haproxy.kill('SIGTERM');
      await gone;
    }
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS at the proxy and audits the client address from X-Forwarded-For, not a forged one', async () => {
    expect(await request(`${proxyUrl}/healthz`, { ca: ca.pem, localAddress: '127.0.0.3' })).toEqual({ status: 200, body: { status: 'ok' } });
    const created = await request(`${proxyUrl}/api/v1/users`, {
      method: 'POST', ca: ca.pem, localAddress: '127.0.0.3', body: JSON.stringify({ name: 'via-proxy' }),
      // What a client may claim itself: the proxy drops it before adding the real address.
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const audit = await server.api('GET', '/api/v1/audit?action=user.create');
    const event = (audit.body.items as { target: string; ip: string | null }[]).find((e) => e.target === 'user:via-proxy');
    expect(event?.ip).toBe('127.0.0.3');
  });

  it('passes the agent WebSocket upgrade through: register and a netmap over wss', async () => {
    const key = (await server.api('POST', '/api/v1/authkeys', { user: 'via-proxy', reusable: true })).body.key as string;
    const agent = new SimAgent(proxyUrl, 'behind-proxy', ca.pem);
    await agent.register(key);
    await agent.connect();
    await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap through the proxy');
    const peer = new SimAgent(proxyUrl, 'behind-proxy-2', ca.pem);
    await peer.register(key);
    await agent.waitFor(() => agent.peers.has(peer.self!.id), 10_000, 'a delta through the proxy');
    agent.close();
  });
});
