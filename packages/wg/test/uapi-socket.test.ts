import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { UapiClient, uapiRequest, WgError } from '../src/index.js';
import { hex, PUB_2 } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-uapi-'));
let server: Server | undefined;

afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake wireguard-go: records requests, answers with `reply`, split into small chunks. */
function fake(name: string, reply: (req: string) => string, requests: string[] = []): Promise<string> {
  const path = join(dir, `${name}.sock`);
  rmSync(path, { force: true });
  server = createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      if (!buf.endsWith('\n\n')) return;
      requests.push(buf);
      const out = reply(buf);
      for (let i = 0; i < out.length; i += 7) c.write(out.slice(i, i + 7));
    });
  });
  return new Promise((r) => server!.listen(path, () => r(path)));
}

describe('UAPI socket I/O', () => {
  it('sends a get and reassembles a chunked reply', async () => {
    const requests: string[] = [];
    const path = await fake('get', () => `listen_port=51820\npublic_key=${hex(PUB_2)}\nrx_bytes=5\nerrno=0\n\n`, requests);
    const state = await new UapiClient(path).get();
    expect(requests).toEqual(['get=1\n\n']);
    expect(state.listenPort).toBe(51820);
    expect(state.peers[0]?.rxBytes).toBe(5);
  });

  it('surfaces errno from a set', async () => {
    const path = await fake('set', () => 'errno=-22\n\n');
    await expect(new UapiClient(path).set({ listenPort: 1 })).rejects.toMatchObject({ code: 'uapi_errno', fields: { errno: -22 } });
  });

  it('reports a missing socket as uapi_unavailable (retryable)', async () => {
    const err = await uapiRequest(join(dir, 'absent.sock'), 'get=1\n\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WgError);
    expect((err as WgError).code).toBe('uapi_unavailable');
    expect((err as WgError).retryable).toBe(true);
  });

  it('times out a silent server', async () => {
    const path = await fake('silent', () => '');
    await expect(uapiRequest(path, 'get=1\n\n', 100)).rejects.toMatchObject({ code: 'uapi_protocol' });
  });
});
