/** The `weft-relay` program: --help, --version, bad flags, STUN on the port it prints, a taken port, SIGTERM. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bindingRequest, reusePortSupported } from '@weft/relay';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../../bin/weft-relay.mjs');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => res({ code, stdout, stderr }));
  });
}

describe('weft-relay', () => {
  it.each([['--help'], ['-h'], ['help']])('%s exits 0 with usage on stdout that names the STUN-only and the relay forms', async (flag) => {
    const r = await run([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: weft-relay \[--stun-listen HOST:PORT\]/);
    expect(r.stdout).toContain('with --server, the\n  packet relay');
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect((await run(['--version'])).stdout).toBe(`weft-relay ${pkg.version}\n`);
  });

  it.each([
    [['--bogus', '1'], /unknown argument --bogus/],
    [['--stun-listen'], /flag --stun-listen needs a value/],
    [['--stun-listen', 'nope'], /"stun-listen" \(flag --stun-listen\): "nope" is not HOST:PORT/],
    [['--stun-listen=off'], /off would leave weft-relay nothing to do/],
    [['--listen', '127.0.0.1:0'], /"listen" \(flag --listen\) is for the packet relay, which needs --server URL/],
    [['--server', 'ftp://x'], /"server" \(flag --server\): "ftp:\/\/x" is not an http:\/\/ or https:\/\/ URL/],
    [['--server', 'http://127.0.0.1:1,ftp://x'], /"server" \(flag --server\): "ftp:\/\/x" is not an http:\/\/ or https:\/\/ URL, e\.g\. https:\/\/weft\.example\.com \(several: comma-separated\)/],
    [['--server', 'http://127.0.0.1:1'], /"mesh-secret-file" is needed with --server/],
    [['--server', 'http://127.0.0.1:1', '--mesh-secret-file', '/nonexistent/mesh.secret'], /cannot read \/nonexistent\/mesh.secret: ENOENT/],
    [['--server', 'http://127.0.0.1:1', '--workers', '2'], /the packet relay runs in one process/],
  ])('%j exits 2 naming what is wrong', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('WEFT_STUN_LISTEN is read, and a bad value names it', async () => {
    const r = await run([], { WEFT_STUN_LISTEN: '1.2.3.4' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"stun-listen" (environment variable WEFT_STUN_LISTEN)');
  });

  it('answers STUN on the port it prints, and exits 0 on SIGTERM', async () => {
    const p = spawn(process.execPath, [BIN, '--stun-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    for (let i = 0; i < 300 && !/STUN \(udp\) on/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    const port = Number(/STUN \(udp\) on 127\.0\.0\.1:(\d+)/.exec(err)?.[1]);
    expect(port, err).toBeGreaterThan(0);
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    try {
      expect(await bindingRequest({ host: '127.0.0.1', port, socket: sock })).toEqual({ family: 'IPv4', address: '127.0.0.1', port: sock.address().port });
    } finally {
      sock.close();
    }
    const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toContain('"responses":1');
  });

  it('--workers 2: two processes answer on one port (SO_REUSEPORT), or on a Node without it, exit 2 saying what is needed', async () => {
    if (!reusePortSupported()) {
      const r = await run(['--stun-listen', '127.0.0.1:0', '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('needs Node.js 22.12 or newer');
      return;
    }
    const p = spawn(process.execPath, [BIN, '--stun-listen', '127.0.0.1:0', '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    for (let i = 0; i < 300 && !/STUN \(udp\) on/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    expect(err).toContain('(2 processes)');
    const port = Number(/STUN \(udp\) on 127\.0\.0\.1:(\d+)/.exec(err)?.[1]);
    // The kernel hashes each client address to one process: enough clients reach both.
    for (let i = 0; i < 16; i++) await bindingRequest({ host: '127.0.0.1', port });
    const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    const answered = [...err.matchAll(/"responses":(\d+)/g)].map((m) => Number(m[1]));
    expect(answered).toHaveLength(2);
    expect(answered.reduce((a, b) => a + b)).toBe(16);
    expect(Math.min(...answered)).toBeGreaterThan(0);
  });

  it.each([['0'], ['x'], ['1.5'], ['9999']])('--workers %s exits 2 naming it', async (n) => {
    const r = await run(['--workers', n]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`"workers" (flag --workers): "${n}" is not a whole number from 1 to 256`);
  });

  it('a taken port exits 2 saying so', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    try {
      const r = await run(['--stun-listen', `127.0.0.1:${taken.address().port}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`cannot listen for STUN on udp 127.0.0.1:${taken.address().port}: the port is in use`);
    } finally {
      taken.close();
    }
  });
});
