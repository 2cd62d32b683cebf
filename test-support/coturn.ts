/**
 * Debian coturn's `turnserver` in STUN-only mode on a loopback UDP port, for interop tests and
 * bench:stun: a temp config, no daemon mode, killed and its temp files removed by `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindingRequest } from '@weft/relay';

export interface Coturn {
  port: number;
  proc: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Fails with what to install when coturn is missing (scripts/install-test-deps.sh installs it). */
export function requireCoturn(): void {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8' });
  if (r.error) throw new Error('turnserver not found: install Debian coturn (apt-get install coturn, or bash scripts/install-test-deps.sh)');
}

/** A UDP port free on 127.0.0.1 right now. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts `turnserver --stun-only` on 127.0.0.1 and resolves once it answers a Binding request. */
export async function startCoturn(opts: { threads?: number } = {}): Promise<Coturn> {
  requireCoturn();
  const dir = mkdtempSync(join(tmpdir(), 'weft-coturn-'));
  const port = await freeUdpPort();
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(
    conf,
    [
      'listening-ip=127.0.0.1',
      `listening-port=${port}`,
      'stun-only',
      'no-tcp',
      'no-tls',
      'no-dtls',
      'no-cli',
      `userdb=${join(dir, 'turndb')}`,
      `pidfile=${join(dir, 'turnserver.pid')}`,
      'log-file=stdout',
      'simple-log',
      ...(opts.threads ? [`relay-threads=${opts.threads}`] : []),
      '',
    ].join('\n'),
  );
  const proc = spawn('turnserver', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  proc.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const forced = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(forced);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`turnserver exited with ${proc.exitCode}:\n${out}`);
      const ok = await bindingRequest({ host: '127.0.0.1', port, timeoutMs: 300 }).then(() => true, () => false);
      if (ok) break;
      if (i > 50) throw new Error(`turnserver on udp 127.0.0.1:${port} did not answer within 15 s:\n${out}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, proc, output: () => out, stop };
}
