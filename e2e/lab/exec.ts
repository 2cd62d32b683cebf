/**
 * Running one command to completion, in the root namespace or inside a lab namespace, with a hard
 * time limit. The command gets its own process group so a timeout kills everything it started.
 */
import { spawn } from 'node:child_process';

export interface ExecOptions {
  /** Default 30 s. On expiry the whole process group gets SIGKILL and `timedOut` is set. */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed. Default: empty stdin. */
  input?: string;
  /** Added to the lab's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

export interface ExecResult {
  /** Null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export class ExecError extends Error {
  override name = 'ExecError';
  constructor(
    readonly argv: string[],
    readonly result: ExecResult,
  ) {
    const why = result.timedOut ? `timed out after ${result.durationMs} ms` : `exited ${result.code ?? result.signal}`;
    const out = (result.stderr.trim() || result.stdout.trim()).slice(-2000);
    super(`${argv.join(' ')}: ${why}${out ? `\n${out}` : ''}`);
  }
}

/** `ip netns exec NS cmd args...`, or just `cmd args...` when `ns` is null. */
export function nsArgv(ns: string | null, cmd: string, args: readonly string[]): string[] {
  return ns === null ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
}

/** Kills a process group, ignoring "already gone". */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Never rejects on a non-zero exit; see `ExecResult`. Rejects only if the binary cannot be started. */
export function execIn(ns: string | null, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
  const argv = nsArgv(ns, cmd, args);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? '');
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        durationMs: Date.now() - started,
      });
    };
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    // 'close' waits for stdout/stderr to drain; a background grandchild holding the pipes open must
    // not hang us, so after 'exit' give the streams a short grace and then stop listening.
    child.on('close', (code, signal) => finish(code, signal));
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, 250).unref();
    });
  });
}

/** Like `execIn` but rejects with `ExecError` unless the command exits 0. */
export async function execOkIn(ns: string | null, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await execIn(ns, cmd, args, opts);
  if (r.code !== 0 || r.timedOut) throw new ExecError(nsArgv(ns, cmd, args), r);
  return r;
}
