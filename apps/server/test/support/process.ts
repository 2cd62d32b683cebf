/** Real `weft-server` processes for tests that need more than one replica. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

export const SERVER_BIN = resolve(import.meta.dirname, '../../bin/weft-server.mjs');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

/**
 * Servers not stopped yet; whatever a test left running (it failed or timed out) is stopped after
 * its file. Benchmarks import this module outside vitest, where there is no file to hook.
 */
const running = new Set<ServerProcess>();
if (process.env.VITEST) afterAll(async () => {
  // Newest first: a server started on another's data dir stops before that dir is removed.
  for (const s of [...running].reverse()) await s.stop();
});

export interface ServerProcess {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** Stops the server (SIGTERM) if it still runs, then removes the data dir if spawnServer made it. */
  stop: () => Promise<void>;
}

/**
 * Starts `weft-server serve` on a free loopback port and waits for /readyz. Without
 * `existingDataDir` it gets a fresh temp data dir that stop() removes; the caller owns an existing one.
 */
export async function spawnServer(env: Record<string, string> = {}, existingDataDir?: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  const dataDir = existingDataDir ?? mkdtempSync(join(tmpdir(), 'weft-proc-'));
  const removeDataDir = () => {
    if (!existingDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  // STUN on a free port (tests run in parallel: nothing may take 3478); `extraArgs` can override it.
  const proc = spawn(process.execPath, [SERVER_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--stun-listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn', ...extraArgs], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const server: ServerProcess = { url, dataDir, proc, output: () => out, stop: () => stop() };
  running.add(server);
  const exited = new Promise<void>((res) => (proc.exitCode !== null || proc.signalCode !== null ? res() : proc.once('exit', () => res())));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    removeDataDir();
    running.delete(server);
  };
  // A fresh embedded database takes a few seconds to create, and much longer on a loaded machine.
  const deadline = Date.now() + 100_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`weft-server exited with ${proc.exitCode}:\n${out}`);
    }
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`weft-server not ready after 100 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return server;
}

/** Runs the admin CLI and returns exit code and output. */
export async function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [SERVER_BIN, ...args], { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    if (opts.input !== undefined) p.stdin!.end(opts.input);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('exit', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}
