/** The STUN service embedded in a real `weft-server serve` process: answers on its port, can be off, a taken port stops start-up naming the key. */
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindingRequest } from '@weft/relay';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, spawnServer, type ServerProcess } from '../support/process.js';

const started: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

/** The `STUN (udp): ...` start-up line (printed just after /readyz starts answering). */
async function stunLine(s: ServerProcess): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = /STUN \(udp\): (\S+)/.exec(s.output());
    if (m) return m[1]!;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no STUN line in:\n${s.output()}`);
}

describe('weft-server STUN service', () => {
  it('answers a Binding request with the client address and port it saw', async () => {
    const s = await spawnServer(); // --stun-listen 127.0.0.1:0
    started.push(s);
    const at = await stunLine(s);
    const port = Number(at.split(':').at(-1));
    expect(port).toBeGreaterThan(0);
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    try {
      expect(await bindingRequest({ host: '127.0.0.1', port, socket: sock })).toEqual({ family: 'IPv4', address: '127.0.0.1', port: sock.address().port });
    } finally {
      sock.close();
    }
  });

  it('--stun-listen off starts no STUN service and says so', async () => {
    const s = await spawnServer({}, undefined, ['--stun-listen', 'off']);
    started.push(s);
    expect(await stunLine(s)).toBe('off');
  });

  it('a STUN port in use stops start-up (exit 2) with a message naming stun-listen, before touching the data dir', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'weft-stun-')), 'data');
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    try {
      const r = await cli(['serve', '--listen', '127.0.0.1:0', '--stun-listen', `127.0.0.1:${taken.address().port}`, '--data-dir', dataDir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`cannot listen for STUN on udp 127.0.0.1:${taken.address().port}: the port is in use`);
      expect(r.stderr).toContain('"stun-listen" (config stunListen, WEFT_STUN_LISTEN, --stun-listen)');
      expect(readdirSync(join(dataDir, '..'))).toEqual([]);
    } finally {
      taken.close();
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    }
  });
});
