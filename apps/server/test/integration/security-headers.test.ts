/** Response headers that keep browsers from framing, sniffing or leaking what the server sends. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { startServer, type TestServer } from '../support/server.js';

describe('security headers', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('pglite');
  });
  afterAll(async () => s?.close());

  it('the login page cannot be framed, cached, sniffed or leak its URL to another site as a referrer', async () => {
    const a = new SimAgent(s.url, 'framed');
    const pending = await a.register();
    expect(pending.status).toBe('pending');
    // Not signed in: the login URL leads to the sign-in page, which comes back to it.
    const res = await fetch(`${s.url}/login/${(pending as { code: string }).code}`);
    expect(res.status).toBe(200);
    expect(res.url).toContain('/auth/login?next=');
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // Its forms post only to this server, and it runs no script at all.
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(res.headers.get('content-security-policy')).not.toContain('script-src');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // same-origin, not no-referrer: the URL never leaves this origin, and our own form posts keep
    // a real Origin header for the CSRF check (no-referrer makes browsers send "Origin: null").
    expect(res.headers.get('referrer-policy')).toBe('same-origin');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('API answers, errors included, carry nosniff', async () => {
    for (const [path, headers, status] of [
      ['/api/v1/users', { authorization: `Bearer ${s.readKey}` }, 200],
      ['/api/v1/users', {}, 401],
      ['/api/v1/no-such-route', {}, 404],
      ['/readyz', {}, 200],
    ] as const) {
      const res = await fetch(s.url + path, { headers });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBeNull();
    }
  });

  it('a refused agent upgrade carries nosniff too', async () => {
    const headers = await new Promise<{ status: number; nosniff: unknown }>((resolve, reject) => {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/agent/v1`);
      ws.on('open', () => reject(new Error('upgraded without a machine token')));
      ws.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0, nosniff: res.headers['x-content-type-options'] });
        ws.terminate();
      });
      ws.on('error', () => {});
    });
    expect(headers).toEqual({ status: 401, nosniff: 'nosniff' });
  });
});
