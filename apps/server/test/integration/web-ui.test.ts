/** The admin UI at `/`: index.html at the UI's routes, hashed assets, and nothing else shadowed. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_PATHS } from '@weft/protocol/ui-paths';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { UI_CSP } from '../../src/web-ui.js';
import { startServer, type TestServer } from '../support/server.js';

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-AbC123.js"></script></head><body><div id="root"></div></body></html>';

describe('admin UI serving', () => {
  let s: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), INDEX);
    writeFileSync(join(dir, 'assets', 'index-AbC123.js'), 'console.log("ui")');
    writeFileSync(join(dir, 'assets', 'index-DeF456.css'), 'body{margin:0}');
    s = await startServer('pglite', { webDir: dir });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every client route with index.html under a CSP that allows no inline script, revalidated', async () => {
    for (const path of UI_PATHS) {
      const res = await fetch(s.url + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe('text/html; charset=utf-8');
      expect(await res.text(), path).toBe(INDEX);
      expect(res.headers.get('content-security-policy'), path).toBe(UI_CSP);
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
    }
    expect(UI_CSP).not.toContain('unsafe');
    expect(UI_CSP).toContain("script-src 'self'");
    const etag = (await fetch(s.url + '/')).headers.get('etag')!;
    expect((await fetch(s.url + '/devices', { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(s.url + '/', { method: 'HEAD' })).status).toBe(200);
  });

  it('serves hashed assets with their content type, cached as immutable; an unknown one is a 404 problem', async () => {
    const js = await fetch(`${s.url}/assets/index-AbC123.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await js.text()).toBe('console.log("ui")');
    expect((await fetch(`${s.url}/assets/index-DeF456.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    for (const path of ['/assets/nope.js', '/assets/..%2Findex.html', '/assets/']) {
      const res = await fetch(s.url + path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/problem+json');
    }
  });

  it('never shadows the API, the agent, the login page or the health checks; unknown paths stay 404 problems', async () => {
    const api = await fetch(`${s.url}/api/v1/users`);
    expect(api.status).toBe(401);
    expect(api.headers.get('content-type')).toContain('application/problem+json');
    expect((await fetch(`${s.url}/api/v1/no-such-route`)).status).toBe(404);
    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${s.url}/agent/v1`)).status).not.toBe(200);
    const pending = await new SimAgent(s.url, 'ui-login').register();
    const login = await fetch(`${s.url}/login/${(pending as { code: string }).code}`);
    // The device login page (signed out: the server's sign-in, coming back to it), never the UI's index.html.
    const loginText = await login.text();
    expect(loginText).toContain('Sign in to Weft');
    expect(loginText).toContain(`value="/login/${(pending as { code: string }).code}"`);
    expect(loginText).not.toContain('<script');
    for (const path of ['/nope', '/devices/1', '/index.html', '/metrics']) {
      const res = await fetch(s.url + path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/problem+json');
    }
  });
});

describe('admin UI not built', () => {
  it('a server without a build serves no UI and everything else as usual', async () => {
    const s = await startServer('pglite', { webDir: join(tmpdir(), 'weft-no-such-web-dir') });
    try {
      expect((await fetch(s.url + '/')).status).toBe(404);
      expect((await s.api('GET', '/api/v1/users')).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
