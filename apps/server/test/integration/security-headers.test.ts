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

  it('the login page cannot be framed, cached, sniffed or leak its URL as a referrer', async () => {
    const a = new SimAgent(s.url, 'framed');
    const pending = await a.register();
    expect(pending.status).toBe('pending');
    const res = await fetch(`${s.url}/login/${(pending as { code: string }).code}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    // The page still works: its script may call the API on this origin.
    expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
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
