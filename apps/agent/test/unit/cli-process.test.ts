/**
 * The `weft` program as a person runs it: help at every level, --version, and `weft status`'s exit
 * code per state, against a stand-in daemon answering the local API on a unix socket.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '@weft/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/args.js';
import { ExitCode, statusExitCode } from '../../src/cli/exit-codes.js';
import type { State, Status } from '../../src/status.js';

const BIN = fileURLToPath(new URL('../../bin/weft.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function weft(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

// Each case starts real processes (the bundle, or tsx when the sources changed since the build),
// on a shared 2-core machine: a generous bound, not a timing assertion.
describe('weft help and version', { timeout: 60_000 }, () => {
  it('answers --help with exit 0 at every level', async () => {
    const levels = [['--help'], ['-h'], ['help'], ['help', '--help'], [], ...Object.keys(commands).flatMap((c) => [[c, '--help'], ['help', c]])];
    const results = await Promise.all(levels.map((l) => weft(l)));
    results.forEach((r, i) => {
      expect({ argv: levels[i], code: r.code, stderr: r.stderr }).toEqual({ argv: levels[i], code: 0, stderr: '' });
      expect(r.stdout).toMatch(/weft/);
    });
  });

  it('--version prints the package version and the control protocol version', async () => {
    const r = await weft(['--version']);
    expect(r.code).toBe(0);
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(r.stdout).toBe(`weft ${version} (control protocol ${PROTOCOL_VERSION})\n`);
  });
});

describe('weft status exit code', { timeout: 60_000 }, () => {
  const socket = join(dir, 'weftd.sock');
  let state: State = 'running';
  let server: Server;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      const s: Status = {
        version: 1, state, online: state === 'running', server: 'http://10.77.0.1:8080', controlChannel: { scheme: 'http', caFile: null, warning: null }, self: null,
        interface: { name: 'weft0', backend: 'userspace', up: state === 'running', listenPort: 41641, mtu: 1280, mtuMode: 'fixed' },
        login: null, lastError: null, firewall: { state: 'off', rules: 0, skippedRules: [], error: null }, peers: [], skippedPeers: [],
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(s));
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('is 4 with a hint naming the real systemd unit when no daemon answers', async () => {
    const r = await weft(['status', '--socket', join(dir, 'nothing.sock')]);
    expect(r.code).toBe(ExitCode.DaemonNotRunning);
    expect(r.stderr).toContain('sudo systemctl start weft ');
  });

  it('is 0 only while running, and prints the status in every state', async () => {
    for (const s of ['running', 'starting', 'needs-login', 'stopped', 'revoked', 'expired'] as const) {
      state = s;
      const json = await weft(['status', '--json'], { WEFT_SOCKET: socket });
      expect({ s, code: json.code }).toEqual({ s, code: statusExitCode(s) });
      expect((JSON.parse(json.stdout) as Status).state).toBe(s);
      const text = await weft(['status', '--socket', socket]);
      expect({ s, code: text.code }).toEqual({ s, code: statusExitCode(s) });
    }
    expect(statusExitCode('stopped')).not.toBe(ExitCode.Ok);
  });
});
